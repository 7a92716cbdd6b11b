import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectTaggingCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { startLocalS3, type LocalS3 } from '../scripts/local-s3.ts';

let server: LocalS3;
let s3: S3Client;
beforeAll(async () => {
  server = await startLocalS3({ bucket: 'tags' });
  s3 = server.client();
});
afterAll(async () => server?.stop());

const tagsOf = async (key: string): Promise<Record<string, string>> =>
  Object.fromEntries(((await s3.send(new GetObjectTaggingCommand({ Bucket: 'tags', Key: key }))).TagSet ?? []).map((tag): [string, string] => [tag.Key ?? '', tag.Value ?? '']));
const put = (key: string, body: string, tagging?: string): Promise<unknown> => s3.send(new PutObjectCommand({ Bucket: 'tags', Key: key, Body: body, ...(tagging ? { Tagging: tagging } : {}) }));

describe('the local S3 server\'s object tagging (which fauxqs alone lacks)', () => {
  it('stores tags beside the object without touching its bytes', async () => {
    await put('backups/a/x.dump.zst', 'hello world');

    await s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'backups/a/x.dump.zst', Tagging: { TagSet: [{ Key: 'pgkeep:verification', Value: 'verified' }, { Key: 'note', Value: '<&">' }] } }));

    expect(await tagsOf('backups/a/x.dump.zst')).toEqual({ 'pgkeep:verification': 'verified', note: '<&">' });
    const body = await (await s3.send(new GetObjectCommand({ Bucket: 'tags', Key: 'backups/a/x.dump.zst' }))).Body!.transformToString();
    expect(body).toBe('hello world');
  });

  it('answers NoSuchKey for tags of an object that does not exist, and creates nothing', async () => {
    await expect(s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'missing', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    await expect(s3.send(new GetObjectCommand({ Bucket: 'tags', Key: 'missing' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
  });

  it('refuses more than 10 tags, as S3 does', async () => {
    await put('eleven', 'x');
    const TagSet = Array.from({ length: 11 }, (_, index) => ({ Key: `k${index}`, Value: 'v' }));

    await expect(s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'eleven', Tagging: { TagSet } }))).rejects.toMatchObject({ name: 'InvalidTag' });
  });

  it('replaces tags when the object is overwritten, and takes x-amz-tagging from the new write', async () => {
    await put('rewritten', 'one', 'a=1');
    expect(await tagsOf('rewritten')).toEqual({ a: '1' });

    await put('rewritten', 'two');
    expect(await tagsOf('rewritten')).toEqual({});
  });

  it('forgets tags when the object is deleted, singly or in bulk, and on DeleteObjectTagging', async () => {
    await put('single', 'x', 'a=1');
    await put('bulk', 'x', 'a=1');
    await put('untag', 'x', 'a=1');

    await s3.send(new DeleteObjectCommand({ Bucket: 'tags', Key: 'single' }));
    await s3.send(new DeleteObjectsCommand({ Bucket: 'tags', Delete: { Objects: [{ Key: 'bulk' }] } }));
    await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'tags', Key: 'untag' }));
    await put('single', 'again');
    await put('bulk', 'again');

    expect(await tagsOf('single')).toEqual({});
    expect(await tagsOf('bulk')).toEqual({});
    expect(await tagsOf('untag')).toEqual({});
  });

  it('gives a completed multipart upload a fresh tag set', async () => {
    await put('multipart', 'old', 'a=1');
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'tags', Key: 'multipart' }));
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: 'tags', Key: 'multipart', UploadId, PartNumber: 1, Body: 'new' }));

    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'tags', Key: 'multipart', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } }));

    expect(await tagsOf('multipart')).toEqual({});
  });
});
