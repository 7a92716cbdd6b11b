/**
 * The moto-backed S3 the integration suites use beside fauxqs (test/support/moto-s3.ts): what it
 * models that the suites rely on, and the CRC64NVME stand-in without which moto would report a
 * CRC32 under the name CRC64NVME.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startMotoS3, type MotoS3 } from './moto-s3.ts';
import { mulberry32, seededBytes } from './seeded-random.ts';

let moto: MotoS3;
let s3: S3Client;

beforeAll(async () => {
  moto = await startMotoS3({ bucket: 'moto-self-test' });
  s3 = moto.client();
});

afterAll(async () => {
  await moto?.stop();
});

const randomBytes = (seed: number, length: number): Buffer => seededBytes(mulberry32(seed), length);

async function sdkCrc64Nvme(bytes: Uint8Array): Promise<string> {
  const checksum = new Crc64Nvme();
  checksum.update(bytes);
  return Buffer.from(await checksum.digest()).toString('base64');
}

/** A one-part upload with FULL_OBJECT CRC64NVME: moto computes that checksum itself on completion. */
async function crc64NvmeMotoReports(client: S3Client, bucket: string, key: string, body: Buffer): Promise<string | undefined> {
  const { UploadId } = await client.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' }),
  );
  const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: body, ChecksumAlgorithm: 'CRC64NVME' }));
  await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag, ChecksumCRC64NVME: part.ChecksumCRC64NVME }] },
    }),
  );
  return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }))).ChecksumCRC64NVME;
}

describe('moto_server with the CRC64NVME stand-in', () => {
  // The stand-in chains 1 KiB lanes from 2 KiB on and runs byte by byte below that and in the tail.
  it.each([
    ['no bytes', Buffer.alloc(0)],
    ['one byte', Buffer.from([0xa5])],
    ['"123456789" (the standard check input)', Buffer.from('123456789')],
    ['2047 bytes', randomBytes(1, 2047)],
    ['2048 bytes', randomBytes(2, 2048)],
    ['2049 bytes', randomBytes(3, 2049)],
    ['1 MiB and 7 bytes', randomBytes(4, 2 ** 20 + 7)],
    ['8 MiB and 13 bytes (a whole first part)', randomBytes(5, 8 * 2 ** 20 + 13)],
  ])('reports the CRC64NVME the AWS SDK computes, for %s', async (label, body) => {
    const reported = await crc64NvmeMotoReports(s3, moto.bucket, `crc/${label}`, body);

    expect(reported).toBe(await sdkCrc64Nvme(body));
  });

  it('is needed: without it moto reports a CRC32 (4 bytes) under the name CRC64NVME', async () => {
    const bare = await startMotoS3({ bucket: 'moto-without-stand-in', shape: { kind: 'unversioned' }, withoutCrc64NvmeStandIn: true });
    try {
      const body = Buffer.from('123456789');

      const reported = await crc64NvmeMotoReports(bare.client(), bare.bucket, 'probe', body);

      expect(reported).not.toBe(await sdkCrc64Nvme(body));
      expect(Buffer.from(reported ?? '', 'base64')).toHaveLength(4);
    } finally {
      await bare.stop();
    }
  });
});

describe('the buckets moto_server is set up with', () => {
  it('by default a versioned bucket with Object Lock default retention (GOVERNANCE, 35 days) that refuses a PutObject carrying no checksum', async () => {
    // Arrange: a client that sends no checksum unless an operation requires one (as the task's does).
    const checksumOnlyWhenRequired = new S3Client({
      endpoint: moto.endpoint,
      region: moto.region,
      credentials: moto.credentials,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });

    // Act
    const refused = checksumOnlyWhenRequired.send(new PutObjectCommand({ Bucket: moto.bucket, Key: 'lock/plain', Body: 'no checksum' }));
    const accepted = await checksumOnlyWhenRequired.send(
      new PutObjectCommand({ Bucket: moto.bucket, Key: 'lock/checked', Body: 'with checksum', ChecksumAlgorithm: 'CRC64NVME' }),
    );

    // Assert
    await expect(refused).rejects.toMatchObject({ name: 'MissingUploadObjectWithObjectLockHeaders' });
    expect(accepted.VersionId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: moto.bucket }))).Status).toBe('Enabled');
    const lock = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: moto.bucket }));
    expect(lock.ObjectLockConfiguration).toMatchObject({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 35 } } });
    const head = await s3.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: 'lock/checked' }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(head.ObjectLockRetainUntilDate!.getTime() - head.LastModified!.getTime()).toBe(35 * 86_400_000);
  });

  it('on request an unversioned bucket, whose completed uploads have version id "null"', async () => {
    const plain = await moto.addBucket('moto-self-test-unversioned', { kind: 'unversioned' });
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: plain.bucket, Key: 'object' }));
    const part = await s3.send(new UploadPartCommand({ Bucket: plain.bucket, Key: 'object', UploadId, PartNumber: 1, Body: 'bytes' }));

    const completed = await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: plain.bucket, Key: 'object', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }),
    );

    expect(completed.VersionId).toBe('null');
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: plain.bucket }))).Status).toBeUndefined();
  });

  it('lists open multipart uploads, and none once an upload is aborted (fauxqs answers ListMultipartUploads with an object listing)', async () => {
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: moto.bucket, Key: 'uploads/open', ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' }),
    );
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: moto.bucket, Prefix: 'uploads/' }));

    await s3.send(new AbortMultipartUploadCommand({ Bucket: moto.bucket, Key: 'uploads/open', UploadId }));
    const afterAbort = await s3.send(new ListMultipartUploadsCommand({ Bucket: moto.bucket, Prefix: 'uploads/' }));

    expect(open.Uploads?.map((upload) => [upload.Key, upload.UploadId])).toEqual([['uploads/open', UploadId]]);
    expect(afterAbort.Uploads ?? []).toEqual([]);
  });
});

describe('starting and stopping moto_server', () => {
  it('stops the server: its endpoint refuses connections afterwards', async () => {
    const other = await startMotoS3({ bucket: 'moto-stopped', shape: { kind: 'unversioned' } });
    const client = other.client();
    await client.send(new ListBucketsCommand({}));

    await other.stop();

    await expect(client.send(new ListBucketsCommand({}))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('fails, saying how to install it, when moto_server is not on PATH (the moto suites never skip)', async () => {
    await expect(startMotoS3({ searchPath: '/nonexistent' })).rejects.toThrow(/moto_server is not on PATH.*pip install 'moto\[server\]==5\.2\.1'/);
  });
});
