/**
 * How part uploads are signed: with UNSIGNED-PAYLOAD over TLS when CRC64NVME checksums are on
 * (S3's "unsigned payload option" for single-chunk transfers,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html), with the body's
 * SHA-256 otherwise.
 *
 * The real S3 client signs every request here; only its HTTP handler is replaced, by a recording
 * stand-in for S3's HTTPS endpoint (no TLS endpoint of S3 can run here, and the local S3-protocol
 * server neither checks signatures nor keeps checksums). It answers the five requests an upload
 * makes and keeps exactly what each one carried on the wire after signing.
 */
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { S3ChecksumMode } from '../../task/config.ts';
import { StreamingMultipartUpload } from '../../task/multipart-upload.ts';
import { reachesS3OverTls } from '../../task/s3.ts';
import { mulberry32 } from '../support/seeded-random.ts';

interface SignedRequest {
  method: string;
  query: Record<string, unknown>;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

/** S3's smallest part. */
const PART_BYTES = 5 * 1024 * 1024;

/** The SDK's handler interface, as far as the client uses it. */
function recordingS3Endpoint(): { client: S3Client; requests: SignedRequest[] } {
  const requests: SignedRequest[] = [];
  const stored: Buffer[] = [];
  let checksumOfObject = '';
  const respond = (statusCode: number, headers: Record<string, string>, xml = ''): { response: unknown } => ({
    response: { statusCode, headers, body: Readable.from(xml ? [Buffer.from(xml)] : []) },
  });
  const requestHandler = {
    handle(request: { method: string; query: Record<string, unknown>; headers: Record<string, string>; body?: unknown }) {
      const body = Buffer.isBuffer(request.body) || request.body instanceof Uint8Array ? Buffer.from(request.body) : undefined;
      requests.push({ method: request.method, query: { ...request.query }, headers: { ...request.headers }, body });
      if (request.method === 'POST' && 'uploads' in request.query) {
        return Promise.resolve(
          respond(200, {}, '<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>'),
        );
      }
      if (request.method === 'PUT' && 'partNumber' in request.query) {
        stored.push(body ?? Buffer.alloc(0));
        return Promise.resolve(respond(200, { etag: `"etag-${String(request.query.partNumber)}"` }));
      }
      if (request.method === 'POST' && 'uploadId' in request.query) {
        checksumOfObject = request.headers['x-amz-checksum-crc64nvme'] ?? '';
        return Promise.resolve(respond(200, {}, '<CompleteMultipartUploadResult><ETag>"whole-3"</ETag></CompleteMultipartUploadResult>'));
      }
      if (request.method === 'HEAD') {
        const length = String(stored.reduce((sum, part) => sum + part.length, 0));
        return Promise.resolve(respond(200, { 'content-length': length, ...(checksumOfObject ? { 'x-amz-checksum-crc64nvme': checksumOfObject } : {}) }));
      }
      return Promise.resolve(respond(501, {}));
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  };
  const client = new S3Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-secret' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler,
  });
  return { client, requests };
}

async function uploadThroughRecordingEndpoint(
  checksum: S3ChecksumMode,
  skipPayloadSigningOverTls: boolean,
): Promise<{ parts: SignedRequest[]; others: SignedRequest[] }> {
  const { client, requests } = recordingS3Endpoint();
  const random = mulberry32(7);
  const bytes = Buffer.alloc(Math.round(2.5 * PART_BYTES));
  for (let offset = 0; offset < bytes.length; offset += 4) bytes.writeUInt32LE(Math.floor(random() * 2 ** 32), offset);
  const upload = await StreamingMultipartUpload.create(
    client,
    { bucket: 'b', key: 'k', checksum, kmsKeyId: undefined, contentType: 'application/zstd' },
    { initialPartSizeBytes: PART_BYTES, maxPartsInFlight: 2, skipPayloadSigningOverTls },
  );

  await upload.write(bytes);
  await upload.complete();

  const parts = requests.filter((request) => request.method === 'PUT' && 'partNumber' in request.query);
  return { parts, others: requests.filter((request) => !parts.includes(request)) };
}

function signedHeaderNames(request: SignedRequest): string[] {
  const match = /SignedHeaders=([^,]+)/.exec(request.headers.authorization ?? '');
  return match?.[1]?.split(';') ?? [];
}

function sha256Hex(bytes: Buffer | undefined): string {
  return createHash('sha256')
    .update(bytes ?? Buffer.alloc(0))
    .digest('hex');
}

async function sdkCrc64NvmeBase64(bytes: Buffer | undefined): Promise<string> {
  const checksum = new Crc64Nvme();
  checksum.update(bytes ?? Buffer.alloc(0));
  return Buffer.from(await checksum.digest()).toString('base64');
}

describe('part uploads over TLS with CRC64NVME checksums', () => {
  it('are sent as UNSIGNED-PAYLOAD, with the part CRC64NVME header covered by the signature', async () => {
    const { parts } = await uploadThroughRecordingEndpoint('crc64nvme', true);

    expect(parts).toHaveLength(3);
    for (const part of parts) {
      expect(part.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(part.headers['x-amz-checksum-crc64nvme']).toBe(await sdkCrc64NvmeBase64(part.body));
      expect(signedHeaderNames(part)).toEqual(expect.arrayContaining(['x-amz-checksum-crc64nvme', 'x-amz-content-sha256']));
    }
  });

  it('leave the other requests of the upload signed as the SDK signs them', async () => {
    const { others } = await uploadThroughRecordingEndpoint('crc64nvme', true);

    expect(others.map((request) => request.method)).toEqual(['POST', 'POST', 'HEAD']);
    for (const request of others) expect(request.headers['x-amz-content-sha256']).not.toBe('UNSIGNED-PAYLOAD');
  });
});

describe('part uploads keep a signed payload (the SHA-256 of the body)', () => {
  it.each([
    ['without TLS', 'crc64nvme', false],
    ['without S3 checksums, whose CRC would be the only integrity check left', 'none', true],
  ] as const)('%s', async (_case, checksum, overTls) => {
    const { parts } = await uploadThroughRecordingEndpoint(checksum, overTls);

    expect(parts).toHaveLength(3);
    for (const part of parts) {
      expect(part.headers['x-amz-content-sha256']).toBe(sha256Hex(part.body));
      expect(signedHeaderNames(part)).toContain('x-amz-content-sha256');
    }
  });
});

describe('reachesS3OverTls', () => {
  it.each([
    ['AWS (no custom endpoint)', undefined, true],
    ['an https:// endpoint', 'https://s3.example.com', true],
    ['an HTTPS:// endpoint in capitals', 'HTTPS://s3.example.com:9000', true],
    ['an http:// endpoint', 'http://127.0.0.1:9000', false],
  ])('is %s → %s', (_label, endpoint, expected) => {
    expect(reachesS3OverTls(endpoint)).toBe(expected);
  });
});
