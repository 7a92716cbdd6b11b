import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
  UploadPartCommand,
  type ObjectLockRetentionMode,
} from '@aws-sdk/client-s3';
import { localTaskEnvironment, type LocalS3 } from '../../dev/local-s3.ts';
import { crc64Nvme, crc64NvmeToBase64 } from '../../task/crc64nvme.ts';

/**
 * moto_server (https://docs.getmoto.org, 5.2) on loopback, for the suites whose assertions depend
 * on S3 semantics that fauxqs (dev/local-s3.ts) does not model: versioning, Object Lock
 * (moto refuses a PutObject without Content-MD5 or a checksum on a bucket with default retention,
 * as S3 does), stored checksums, ListMultipartUploads and GetObjectAttributes.
 *
 * It has LocalS3's shape, so a suite can run against either server. It starts as a child process
 * on a port the server picks itself (so no other process can take it between choosing and binding),
 * is waited for with a deadline, and is stopped by `stop()` or, if the test process dies first, by
 * an 'exit' hook, as throwaway PostgreSQL clusters are (task/throwaway-cluster.ts).
 *
 * moto computes CRC64NVME only with the compiled `awscrt` package, which cannot be installed here;
 * without it moto silently computes CRC32 and reports that as the CRC64NVME. So moto runs with
 * test/support/moto-python (a stand-in `awscrt.checksums.crc64nvme`) first on its PYTHONPATH, and
 * every start checks, with one multipart upload, that moto's full-object CRC64NVME equals
 * pgkeep's: no suite can pass because moto computed something else.
 */
export type BucketShape =
  /** Like the stacks' bucket with `objectLock`: versioned (Object Lock implies it) with default retention. */
  | { kind: 'object-lock'; mode: ObjectLockRetentionMode; days: number }
  /** Never versioned: S3 (and moto) answer version id "null". */
  | { kind: 'unversioned' };

export interface MotoS3 extends LocalS3 {
  shape: BucketShape;
  /** An SSE-KMS key ARN of the shape the stacks pass as PGKEEP_KMS_KEY_ID (see KMS_KEY_ARN). */
  kmsKeyArn: string;
  /** Another bucket on the same server. Stopping any of them stops the server. */
  addBucket(bucket: string, shape: BucketShape): Promise<MotoS3>;
}

export interface MotoS3Options {
  bucket?: string;
  /** Default: Object Lock, GOVERNANCE, 35 days (the prod example in infra/environments.ts). */
  shape?: BucketShape;
  /** Where moto_server is looked for; default PATH. */
  searchPath?: string;
  /** Only to show what moto does without the CRC64NVME stand-in: skips it and the start check. */
  withoutCrc64NvmeStandIn?: boolean;
}

export const DEFAULT_BUCKET_SHAPE: BucketShape = { kind: 'object-lock', mode: 'GOVERNANCE', days: 35 };

/**
 * moto's S3 accepts any SSE-KMS key id without consulting its KMS (it stores and echoes it), so a
 * key created in moto's KMS would be checked by nothing; the suites send an ARN of the stacks' shape.
 */
const KMS_KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

const HOST = '127.0.0.1';
/** moto imports all its services on start: about 1.5 s here, several seconds on a loaded machine. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 60_000;
const OUTPUT_TAIL_BYTES = 4_000;
const STAND_IN_DIR = fileURLToPath(new URL('./moto-python', import.meta.url));
export const MOTO_INSTALL_HINT =
  "Install moto 5.2 with its server (Python 3.9 or newer): pip install 'moto[server]==5.2.1', so that moto_server is on PATH, then run the tests again.";

/** Servers that may still run; one 'exit' listener kills them all, synchronously (see throwaway-cluster.ts). */
const liveServers = new Set<ChildProcess>();

function killLiveServersOnExit(): void {
  for (const child of liveServers) child.kill('SIGKILL');
  liveServers.clear();
}

function track(child: ChildProcess): void {
  if (liveServers.size === 0) process.on('exit', killLiveServersOnExit);
  liveServers.add(child);
}

function untrack(child: ChildProcess): void {
  liveServers.delete(child);
  if (liveServers.size === 0) process.off('exit', killLiveServersOnExit);
}

function findOnPath(command: string, searchPath: string): string | undefined {
  for (const directory of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(directory, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

export async function startMotoS3(options: MotoS3Options = {}): Promise<MotoS3> {
  const executable = findOnPath('moto_server', options.searchPath ?? process.env.PATH ?? '');
  if (!executable) throw new Error(`moto_server is not on PATH, and the integration suites that check S3 semantics need it. ${MOTO_INSTALL_HINT}`);

  const pythonPath = options.withoutCrc64NvmeStandIn ? process.env.PYTHONPATH : [STAND_IN_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  const child = spawn(executable, ['-H', HOST, '-p', '0'], {
    // No __pycache__ written into the repository's stand-in directory.
    env: { ...process.env, ...(pythonPath ? { PYTHONPATH: pythonPath } : {}), PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => untrack(child));

  const stop = async (): Promise<void> => {
    // A child that never started (no pid) or has exited needs nothing.
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (await settlesWithin(exited, STOP_TIMEOUT_MS)) return;
    child.kill('SIGKILL');
    if (!(await settlesWithin(exited, STOP_TIMEOUT_MS)))
      throw new Error(`moto_server (pid ${child.pid}) did not exit within ${(2 * STOP_TIMEOUT_MS) / 1000} s of SIGTERM and SIGKILL.`);
  };

  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`moto_server did not start listening within ${START_TIMEOUT_MS / 1000} s. Its output:\n${output.slice(-OUTPUT_TAIL_BYTES)}`)),
        START_TIMEOUT_MS,
      );
      const read = (chunk: Buffer): void => {
        // Werkzeug logs every request; only the tail is kept, for error messages.
        output = (output + chunk.toString('utf8')).slice(-4 * OUTPUT_TAIL_BYTES);
        const listening = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
        if (listening) {
          clearTimeout(timer);
          resolve(Number(listening[1]));
        }
      };
      child.stdout?.on('data', read);
      child.stderr?.on('data', read);
      child.once('error', (error) => {
        clearTimeout(timer);
        untrack(child);
        reject(new Error(`moto_server (${executable}) could not be started: ${error.message}. ${MOTO_INSTALL_HINT}`));
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(
          new Error(
            `moto_server (${executable}) exited before it listened (code ${child.exitCode}, signal ${child.signalCode}). ${MOTO_INSTALL_HINT} Its output:\n${output.slice(-OUTPUT_TAIL_BYTES)}`,
          ),
        );
      });
    });

    const endpoint = `http://${HOST}:${port}`;
    const region = 'us-east-1';
    const credentials = { accessKeyId: 'moto', secretAccessKey: 'moto-secret' };
    const client = (): S3Client =>
      new S3Client({
        endpoint,
        region,
        credentials,
        forcePathStyle: true,
        // The SDK's default (WHEN_SUPPORTED): tests' own writes carry a CRC32, which an Object-Lock
        // bucket requires. What the task sends is decided by the task's own client (task/s3.ts).
        requestChecksumCalculation: 'WHEN_SUPPORTED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { connectionTimeout: 5_000, requestTimeout: REQUEST_TIMEOUT_MS },
      });
    const admin = client();
    await answersWithin(admin, START_TIMEOUT_MS, () => output);
    if (!options.withoutCrc64NvmeStandIn) await checkCrc64Nvme(admin);

    const bucketOn = async (bucket: string, shape: BucketShape): Promise<MotoS3> => {
      await createBucket(admin, bucket, shape);
      return {
        endpoint,
        bucket,
        region,
        credentials,
        shape,
        kmsKeyArn: KMS_KEY_ARN,
        client,
        taskEnvironment: () => ({
          ...localTaskEnvironment({ bucket, endpoint, region, credentials }),
          // As on AWS: S3 verifies CRC64NVME (moto stores and reports it), SSE-KMS with the
          // bucket's key, and the task knows whether the bucket is under Object Lock.
          PGKEEP_S3_CHECKSUM: 'crc64nvme',
          PGKEEP_KMS_KEY_ID: KMS_KEY_ARN,
          PGKEEP_OBJECT_LOCK: String(shape.kind === 'object-lock'),
        }),
        addBucket: bucketOn,
        stop,
      };
    };
    return await bucketOn(options.bucket ?? 'pgkeep-moto', options.shape ?? DEFAULT_BUCKET_SHAPE);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

async function settlesWithin(promise: Promise<void>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** The port is bound once Werkzeug says so; this waits until S3 requests are answered. */
async function answersWithin(s3: S3Client, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await s3.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(5_000) });
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(
          `moto_server listens but did not answer S3 requests within ${timeoutMs / 1000} s (${(error as Error).message}). Its output:\n${output().slice(-OUTPUT_TAIL_BYTES)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function createBucket(s3: S3Client, bucket: string, shape: BucketShape): Promise<void> {
  if (shape.kind === 'unversioned') {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    return;
  }
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: bucket,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: shape.mode, Days: shape.days } } },
    }),
  );
  const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
  if (versioning.Status !== 'Enabled')
    throw new Error(`moto created the Object-Lock bucket ${bucket} with versioning ${versioning.Status ?? 'off'}; S3 always versions such a bucket.`);
}

/**
 * One multipart upload whose full-object CRC64NVME moto computes itself (it ignores the value a
 * client sends with CompleteMultipartUpload), compared with pgkeep's own CRC64NVME.
 */
async function checkCrc64Nvme(s3: S3Client): Promise<void> {
  const bucket = 'pgkeep-moto-crc64nvme-check';
  const key = 'probe';
  const body = Buffer.from('123456789'.repeat(1000));
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const { UploadId } = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' }),
  );
  const part = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: body, ChecksumAlgorithm: 'CRC64NVME' }));
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag, ChecksumCRC64NVME: part.ChecksumCRC64NVME }] },
    }),
  );
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  const expected = crc64NvmeToBase64(crc64Nvme(body));
  if (head.ChecksumCRC64NVME !== expected) {
    throw new Error(
      `moto_server reports CRC64NVME ${head.ChecksumCRC64NVME ?? '(none)'} for a probe whose CRC64NVME is ${expected}: the stand-in in ${STAND_IN_DIR} ` +
        'is not loaded (a PYTHONPATH that moto_server ignores?) or computes wrongly, and no suite may rely on a CRC64NVME from moto until it does.',
    );
  }
}

/** All of moto_server (S3, CloudWatch, SNS, SQS, KMS, …) for a test that points every AWS SDK client of a process at it. */
export interface MotoServer {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Environment that points every AWS SDK client of a process at this server. */
  sdkEnvironment(): Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The same server startMotoS3 runs (the CRC64NVME stand-in and its start check, the deadlines,
 * the exit hook), for tests that create their own buckets, topics and queues. moto serves every
 * Region on one port; `region` is the one the clients sign for.
 */
export async function startMotoServer(region = 'eu-central-1'): Promise<MotoServer> {
  const server = await startMotoS3({ bucket: 'pgkeep-moto-server', shape: { kind: 'unversioned' } });
  return {
    endpoint: server.endpoint,
    region,
    credentials: server.credentials,
    sdkEnvironment: () => ({
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    }),
    stop: () => server.stop(),
  };
}
