import { spawn } from 'node:child_process';
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
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';
import { REPO_ROOT } from '../../dev/task-process.ts';

let server: LocalS3;
let s3: S3Client;
beforeAll(async () => {
  server = await startLocalS3({ bucket: 'tags' });
  s3 = server.client();
});
afterAll(async () => server?.stop());

const tagsOf = async (key: string): Promise<Record<string, string>> =>
  Object.fromEntries(
    ((await s3.send(new GetObjectTaggingCommand({ Bucket: 'tags', Key: key }))).TagSet ?? []).map((tag): [string, string] => [tag.Key ?? '', tag.Value ?? '']),
  );
const put = (key: string, body: string, tagging?: string): Promise<unknown> =>
  s3.send(new PutObjectCommand({ Bucket: 'tags', Key: key, Body: body, ...(tagging ? { Tagging: tagging } : {}) }));

describe("the local S3 server's object tagging (which fauxqs alone lacks)", () => {
  it('stores tags beside the object without touching its bytes', async () => {
    await put('backups/a/x.dump.zst', 'hello world');

    await s3.send(
      new PutObjectTaggingCommand({
        Bucket: 'tags',
        Key: 'backups/a/x.dump.zst',
        Tagging: {
          TagSet: [
            { Key: 'pgkeep:verification', Value: 'verified' },
            { Key: 'note', Value: '<&">' },
          ],
        },
      }),
    );

    expect(await tagsOf('backups/a/x.dump.zst')).toEqual({ 'pgkeep:verification': 'verified', note: '<&">' });
    const body = await (await s3.send(new GetObjectCommand({ Bucket: 'tags', Key: 'backups/a/x.dump.zst' }))).Body!.transformToString();
    expect(body).toBe('hello world');
  });

  it('answers NoSuchKey for tags of an object that does not exist, and creates nothing', async () => {
    await expect(
      s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'missing', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } })),
    ).rejects.toMatchObject({ name: 'NoSuchKey' });
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

describe('npm run local-s3 (the server on its own, for running the task by hand)', () => {
  it('prints the endpoint, the bucket and the env vars to export, serves that bucket, and stops on Ctrl-C', async () => {
    // Arrange
    const child = spawn(process.execPath, ['--import', 'tsx', 'dev/local-s3-server.ts', '--bucket', 'by-hand'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    try {
      await expect.poll(() => output, { timeout: 60_000 }).toContain('npm run build:task');

      // Act
      const env = Object.fromEntries([...output.matchAll(/^ {2}export (\w+)=(.*)$/gm)].map((match) => [match[1] ?? '', match[2] ?? '']));
      const client = new S3Client({
        endpoint: env.PGKEEP_S3_ENDPOINT,
        region: env.AWS_REGION,
        forcePathStyle: true,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '' },
      });
      await client.send(new PutObjectCommand({ Bucket: env.PGKEEP_BUCKET, Key: 'hello', Body: 'by hand' }));
      const body = await (await client.send(new GetObjectCommand({ Bucket: env.PGKEEP_BUCKET, Key: 'hello' }))).Body!.transformToString();
      client.destroy();

      // Assert
      expect(env).toMatchObject({
        PGKEEP_BUCKET: 'by-hand',
        PGKEEP_S3_ENDPOINT: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) as unknown,
        PGKEEP_METRICS: 'off',
      });
      expect(output).toContain(`Local S3 server at ${env.PGKEEP_S3_ENDPOINT}, bucket by-hand`);
      expect(body).toBe('by hand');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
