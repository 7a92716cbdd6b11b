/**
 * StreamingMultipartUpload against a mocked S3 client.
 *
 * The mock stands in for S3's checksum behaviour (CRC64NVME per part and for the full object,
 * ChecksumMode on HeadObject), server-side encryption responses and failures on demand, none of
 * which the local S3 server (fauxqs) implements. Only the S3 client is mocked; the uploader's
 * part splitting, hashing and CRC combination run for real, and every expected checksum below is
 * recomputed independently from the bytes the test wrote.
 *
 * `node:timers/promises` is replaced too, only so that abort's retry back-off (1 s, 3 s, 7 s) is
 * recorded instead of waited out; vitest's fake timers do not cover that module.
 */
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { createHash } from 'node:crypto';
import type * as TimersPromises from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCommand,
  type UploadPartCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { crc64NvmeToBase64 } from '../../task/crc64nvme.ts';
import { StreamingMultipartUpload, UploadIntegrityError, type MultipartTarget } from '../../task/multipart-upload.ts';
import { mulberry32 } from '../support/seeded-random.ts';

const { recordedSleeps } = vi.hoisted(() => ({ recordedSleeps: [] as number[] }));

vi.mock('node:timers/promises', async (importOriginal) => {
  const original = await importOriginal<typeof TimersPromises>();
  return {
    ...original,
    setTimeout: (delay?: number) => {
      recordedSleeps.push(delay ?? 0);
      return Promise.resolve();
    },
  };
});

const MiB = 2 ** 20;
const UPLOAD_ID = 'upload-id-1';
const BUCKET = 'acme-db-backups';
const KEY = 'backups/shop/20261123T183254.123Z-3f9a2c.dump.zst';

const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
const s3Mock = mockClient(s3);

function target(overrides: Partial<MultipartTarget> = {}): MultipartTarget {
  return { bucket: BUCKET, key: KEY, checksum: 'crc64nvme', kmsKeyId: undefined, contentType: 'application/zstd', ...overrides };
}

function pseudoRandomBytes(length: number, seed: number): Buffer {
  const random = mulberry32(seed);
  const bytes = Buffer.alloc(length);
  for (let offset = 0; offset < length; offset += 1) bytes[offset] = Math.floor(random() * 256);
  return bytes;
}

/** Splits bytes into irregular chunks, from single bytes to a few MiB. */
function irregularChunks(bytes: Buffer, seed: number): Buffer[] {
  const random = mulberry32(seed);
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length;) {
    const pick = random();
    const size = pick < 0.2 ? 1 + Math.floor(random() * 16) : pick < 0.8 ? 1 + Math.floor(random() * 256 * 1024) : 1 + Math.floor(random() * 3 * MiB);
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/** Gives pending promise chains (and the uploader's CRC work) time to run. */
async function letPendingWorkRun(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
}

function partBody(input: UploadPartCommandInput): Buffer {
  return input.Body as Buffer;
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Expected checksums come from the SDK's implementation, independent of the uploader's own. */
async function crcBase64(bytes: Uint8Array): Promise<string> {
  const checksum = new Crc64Nvme();
  checksum.update(bytes);
  return Buffer.from(await checksum.digest()).toString('base64');
}

/** S3 that accepts everything and reports back exactly the object it was sent. */
function mockWellBehavedS3(options: { headChecksum?: (bytes: Buffer) => Promise<string | undefined> } = {}): void {
  const receivedParts = new Map<number, Buffer>();
  s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: UPLOAD_ID });
  s3Mock.on(UploadPartCommand).callsFake((input: UploadPartCommandInput) => {
    receivedParts.set(input.PartNumber ?? 0, partBody(input));
    return Promise.resolve({ ETag: `"etag-${input.PartNumber}"` });
  });
  s3Mock
    .on(CompleteMultipartUploadCommand)
    .resolves({ ETag: '"whole-etag-4"', VersionId: 'version-7', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:us-east-1:111122223333:key/k' });
  s3Mock.on(HeadObjectCommand).callsFake(async () => {
    const stored = Buffer.concat([...receivedParts.entries()].sort(([a], [b]) => a - b).map(([, body]) => body));
    return { ContentLength: stored.length, ChecksumCRC64NVME: options.headChecksum ? await options.headChecksum(stored) : await crcBase64(stored) };
  });
}

beforeEach(() => {
  s3Mock.reset();
  recordedSleeps.length = 0;
});

afterEach(() => {
  s3Mock.reset();
});

describe('with CRC64NVME checksums, a ~20 MiB stream in irregular chunks and 6 MiB first parts', () => {
  const stream = pseudoRandomBytes(20 * MiB + 12_345, 1);
  const chunks = irregularChunks(stream, 2);

  async function uploadStream(): Promise<Awaited<ReturnType<StreamingMultipartUpload['complete']>>> {
    mockWellBehavedS3();
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    for (const chunk of chunks) await upload.write(chunk);
    return upload.complete();
  }

  it('asks S3 for a full-object CRC64NVME upload', async () => {
    await uploadStream();

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(1);
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0]?.args[0].input).toEqual({
      Bucket: BUCKET,
      Key: KEY,
      ContentType: 'application/zstd',
      ChecksumAlgorithm: 'CRC64NVME',
      ChecksumType: 'FULL_OBJECT',
    });
  });

  it('sends parts of 6, 6, 6 MiB and the rest, in order, that together are the stream', async () => {
    await uploadStream();

    const inputs = s3Mock.commandCalls(UploadPartCommand).map((call) => call.args[0].input);
    expect(inputs.map((input) => [input.PartNumber, partBody(input).length, input.ContentLength])).toEqual([
      [1, 6 * MiB, 6 * MiB],
      [2, 6 * MiB, 6 * MiB],
      [3, 6 * MiB, 6 * MiB],
      [4, 2 * MiB + 12_345, 2 * MiB + 12_345],
    ]);
    expect(Buffer.concat(inputs.map(partBody)).equals(stream)).toBe(true);
    expect(inputs.every((input) => input.UploadId === UPLOAD_ID && input.Bucket === BUCKET && input.Key === KEY)).toBe(true);
  });

  it("gives every part the CRC64NVME of that part's bytes", async () => {
    await uploadStream();

    for (const call of s3Mock.commandCalls(UploadPartCommand)) {
      const input = call.args[0].input;
      expect(input.ChecksumAlgorithm).toBe('CRC64NVME');
      expect(input.ChecksumCRC64NVME).toBe(await crcBase64(partBody(input)));
    }
  });

  it('completes with the CRC64NVME of the whole stream, its size and the parts with their checksums', async () => {
    await uploadStream();

    const partInputs = s3Mock.commandCalls(UploadPartCommand).map((call) => call.args[0].input);
    const completeCalls = s3Mock.commandCalls(CompleteMultipartUploadCommand);
    expect(completeCalls).toHaveLength(1);
    expect(completeCalls[0]?.args[0].input).toEqual({
      Bucket: BUCKET,
      Key: KEY,
      UploadId: UPLOAD_ID,
      MpuObjectSize: stream.length,
      ChecksumCRC64NVME: await crcBase64(stream),
      ChecksumType: 'FULL_OBJECT',
      MultipartUpload: {
        Parts: await Promise.all(
          partInputs.map(async (input) => ({
            PartNumber: input.PartNumber,
            ETag: `"etag-${input.PartNumber}"`,
            ChecksumCRC64NVME: await crcBase64(partBody(input)),
          })),
        ),
      },
    });
  });

  it('checks the stored object with HeadObject, checksums enabled, at the version just written', async () => {
    await uploadStream();

    expect(s3Mock.commandCalls(HeadObjectCommand).map((call) => call.args[0].input)).toEqual([
      { Bucket: BUCKET, Key: KEY, VersionId: 'version-7', ChecksumMode: 'ENABLED' },
    ]);
  });

  it('reports what was stored: size, parts, SHA-256 and CRC64NVME of the stream, and S3 enforcing the checksum', async () => {
    const uploaded = await uploadStream();

    expect(uploaded).toEqual({
      key: KEY,
      bytes: stream.length,
      partCount: 4,
      sha256: sha256Hex(stream),
      crc64nvme: await crcBase64(stream),
      s3ChecksumEnforced: true,
      etag: '"whole-etag-4"',
      versionId: 'version-7',
      encryption: { mode: 'sse-kms', kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/k' },
    });
  });
});

describe('with checksums turned off', () => {
  it('sends no checksum fields in any request, but still reports the CRC64NVME of the stream', async () => {
    mockWellBehavedS3();
    const stream = pseudoRandomBytes(7 * MiB, 3);
    const upload = await StreamingMultipartUpload.create(s3, target({ checksum: 'none' }), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });

    await upload.write(stream);
    const uploaded = await upload.complete();

    const inputs = s3Mock.calls().map((call) => JSON.stringify(call.args[0].input, (key, value: unknown) => (key === 'Body' ? undefined : value)));
    expect(inputs).toHaveLength(5); // create, 2 parts, complete, head
    for (const input of inputs) expect(input).not.toMatch(/Checksum/);
    expect(uploaded).toMatchObject({ bytes: 7 * MiB, partCount: 2, s3ChecksumEnforced: false, crc64nvme: await crcBase64(stream), sha256: sha256Hex(stream) });
  });
});

describe('server-side encryption', () => {
  it('asks for SSE-KMS with a bucket key when a KMS key is configured', async () => {
    mockWellBehavedS3();

    await StreamingMultipartUpload.create(s3, target({ kmsKeyId: 'alias/backups' }), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0]?.args[0].input).toMatchObject({
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'alias/backups',
      BucketKeyEnabled: true,
    });
  });

  it('leaves encryption to the bucket default when no KMS key is configured', async () => {
    mockWellBehavedS3();

    await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });

    const input = s3Mock.commandCalls(CreateMultipartUploadCommand)[0]?.args[0].input;
    expect(input).not.toHaveProperty('ServerSideEncryption');
    expect(input).not.toHaveProperty('SSEKMSKeyId');
    expect(input).not.toHaveProperty('BucketKeyEnabled');
  });

  it.each([
    ['aws:kms with a key', { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: 'arn:k' }, { mode: 'sse-kms', kmsKeyId: 'arn:k' }],
    ['aws:kms without a key', { ServerSideEncryption: 'aws:kms' as const }, { mode: 'sse-kms' }],
    ['AES256', { ServerSideEncryption: 'AES256' as const }, { mode: 'sse-s3' }],
    ['nothing', {}, { mode: 'unknown' }],
  ])('is reported from what S3 says when completing: %s', async (_label, completeResponse, expected) => {
    mockWellBehavedS3();
    s3Mock.on(CompleteMultipartUploadCommand).resolves(completeResponse);
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    await upload.write(Buffer.from('some bytes'));

    const uploaded = await upload.complete();

    expect(uploaded.encryption).toEqual(expected);
  });
});

describe('memory', () => {
  it('stops accepting bytes while maxPartsInFlight parts are uploading and one more is full', async () => {
    mockWellBehavedS3();
    const releases: Deferred[] = [];
    let outstanding = 0;
    let mostOutstanding = 0;
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      outstanding += 1;
      mostOutstanding = Math.max(mostOutstanding, outstanding);
      const release = deferred();
      releases.push(release);
      await release.promise;
      outstanding -= 1;
      return { ETag: `"etag-${input.PartNumber}"` };
    });
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 5 * 6 * MiB });
    const upload = await StreamingMultipartUpload.create(s3, target({ checksum: 'none' }), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    const part = Buffer.alloc(6 * MiB, 7);

    await upload.write(part);
    await upload.write(part);
    let thirdWriteResolved = false;
    const thirdWrite = upload.write(part).then(() => {
      thirdWriteResolved = true;
    });
    await letPendingWorkRun();

    expect(s3Mock.commandCalls(UploadPartCommand)).toHaveLength(2);
    expect(thirdWriteResolved).toBe(false);

    releases[0]?.resolve();
    await thirdWrite;

    expect(s3Mock.commandCalls(UploadPartCommand)).toHaveLength(3);

    const fourthWrite = upload.write(part);
    const fifthWriteAfterFourth = fourthWrite.then(() => upload.write(part));
    for (let index = 1; index < 5; index += 1) {
      await letPendingWorkRun();
      releases[index]?.resolve();
    }
    await fifthWriteAfterFourth;
    const completing = upload.complete();
    await letPendingWorkRun();
    for (const release of releases) release.resolve();
    await completing;

    expect(s3Mock.commandCalls(UploadPartCommand)).toHaveLength(5);
    expect(mostOutstanding).toBe(2);
  });
});

describe('integrity check after completion', () => {
  it('rejects when S3 reports another size than was sent, naming both sizes', async () => {
    mockWellBehavedS3();
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 0 });
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    await upload.write(Buffer.alloc(1234, 1));

    const completing = upload.complete();

    await expect(completing).rejects.toThrow(UploadIntegrityError);
    await expect(completing).rejects.toThrow(/S3 reports 0 bytes for s3:\/\/acme-db-backups\/.*but 1234 bytes were sent/);
  });

  it('rejects when S3 reports another CRC64NVME than the bytes sent have', async () => {
    mockWellBehavedS3({ headChecksum: () => Promise.resolve(crc64NvmeToBase64(12_345n)) });
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    const bytes = Buffer.alloc(1234, 1);
    await upload.write(bytes);

    const completing = upload.complete();

    await expect(completing).rejects.toThrow(UploadIntegrityError);
    await expect(completing).rejects.toThrow(`S3 reports CRC64NVME ${crc64NvmeToBase64(12_345n)}`);
    await expect(completing).rejects.toThrow(`the bytes sent have ${await crcBase64(bytes)}`);
  });
});

describe('a failed part upload', () => {
  const internalError = (): Error => Object.assign(new Error('We encountered an internal error. Please try again.'), { name: 'InternalError' });

  it('makes the next write reject with the S3 error', async () => {
    mockWellBehavedS3();
    s3Mock.on(UploadPartCommand).rejects(internalError());
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    await upload.write(Buffer.alloc(6 * MiB));
    await letPendingWorkRun();

    await expect(upload.write(Buffer.from('more'))).rejects.toMatchObject({ name: 'InternalError' });
  });

  it('makes complete reject without completing the upload', async () => {
    mockWellBehavedS3();
    s3Mock.on(UploadPartCommand).rejects(internalError());
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    await upload.write(Buffer.alloc(6 * MiB + 10));

    await expect(upload.complete()).rejects.toMatchObject({ name: 'InternalError' });
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('is cleaned up by abort, which removes the upload by its id', async () => {
    mockWellBehavedS3();
    s3Mock.on(UploadPartCommand).rejects(internalError());
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    await upload.write(Buffer.alloc(6 * MiB));
    await expect(upload.complete()).rejects.toThrow();

    const outcome = await upload.cleanUp();

    expect(outcome).toEqual({ kind: 'aborted', attempts: 1 });
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand).map((call) => call.args[0].input)).toEqual([{ Bucket: BUCKET, Key: KEY, UploadId: UPLOAD_ID }]);
    expect(recordedSleeps).toEqual([]);
  });
});

describe('abort', () => {
  const networkError = (attempt: number): Error =>
    Object.assign(new Error(`connect ETIMEDOUT (attempt ${attempt})`), { name: 'TimeoutError', code: 'ETIMEDOUT' });

  async function startedUpload(): Promise<StreamingMultipartUpload> {
    mockWellBehavedS3();
    return StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
  }

  it('retries while S3 is unreachable, backing off 1 s then 3 s, and succeeds on the third attempt', async () => {
    const upload = await startedUpload();
    s3Mock.on(AbortMultipartUploadCommand).rejectsOnce(networkError(1)).rejectsOnce(networkError(2)).resolves({});

    const outcome = await upload.cleanUp();

    expect(outcome).toEqual({ kind: 'aborted', attempts: 3 });
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(3);
    expect(recordedSleeps).toEqual([1_000, 3_000]);
  });

  it('gives up after four attempts and returns the last error', async () => {
    const upload = await startedUpload();
    s3Mock.on(AbortMultipartUploadCommand).rejectsOnce(networkError(1)).rejectsOnce(networkError(2)).rejectsOnce(networkError(3)).rejects(networkError(4));

    const outcome = await upload.cleanUp();

    expect(outcome).toMatchObject({ kind: 'not-aborted', attempts: 4 });
    expect(outcome.kind === 'not-aborted' ? outcome.error.message : undefined).toBe('connect ETIMEDOUT (attempt 4)');
    expect(recordedSleeps).toEqual([1_000, 3_000, 7_000]);
  });

  it('counts an upload S3 no longer knows (NoSuchUpload) as aborted', async () => {
    const upload = await startedUpload();
    s3Mock.on(AbortMultipartUploadCommand).rejects(Object.assign(new Error('The specified upload does not exist.'), { name: 'NoSuchUpload' }));

    const outcome = await upload.cleanUp();

    expect(outcome).toEqual({ kind: 'aborted', attempts: 1 });
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
    expect(recordedSleeps).toEqual([]);
  });

  it('waits for parts still uploading before removing the upload, so S3 cannot keep a late part', async () => {
    const upload = await startedUpload();
    const release = deferred();
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      await release.promise;
      return { ETag: `"etag-${input.PartNumber}"` };
    });
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
    await upload.write(Buffer.alloc(6 * MiB));

    const aborting = upload.cleanUp();
    await letPendingWorkRun();

    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0);
    release.resolve();
    expect(await aborting).toEqual({ kind: 'aborted', attempts: 1 });
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
  });
});

describe('an empty stream', () => {
  it('is uploaded as exactly one empty part', async () => {
    mockWellBehavedS3();
    const upload = await StreamingMultipartUpload.create(s3, target(), { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 2 });
    await upload.write(Buffer.alloc(0));

    const uploaded = await upload.complete();

    const parts = s3Mock.commandCalls(UploadPartCommand).map((call) => call.args[0].input);
    expect(parts.map((input) => [input.PartNumber, partBody(input).length])).toEqual([[1, 0]]);
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)[0]?.args[0].input).toMatchObject({ MpuObjectSize: 0, ChecksumCRC64NVME: crc64NvmeToBase64(0n) });
    expect(uploaded).toMatchObject({ bytes: 0, partCount: 1, sha256: sha256Hex(Buffer.alloc(0)), crc64nvme: crc64NvmeToBase64(0n) });
  });
});
