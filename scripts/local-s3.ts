import { S3Client } from '@aws-sdk/client-s3';
import { startFauxqs } from 'fauxqs';

/**
 * A real S3-protocol server on loopback, for the local run, the benchmark and the tests.
 *
 * fauxqs (in memory) rather than s3rver: it implements AbortMultipartUpload (s3rver answers 405),
 * ListObjectsV2 and multipart ETags. Neither stores checksums, tags or versions; behaviour that
 * depends on those is covered with SDK mocks in the tests. It accepts request bodies up to 11 MiB,
 * which bounds the part sizes usable against it (pgkeep starts at 8 MiB).
 */
export interface LocalS3 {
  endpoint: string;
  bucket: string;
  region: string;
  /** Credentials the server accepts (it checks none; the SDK needs some to sign). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  client(): S3Client;
  /** Environment for a process (the backup task) that should use this server. */
  taskEnvironment(): Record<string, string>;
  stop(): Promise<void>;
}

export async function startLocalS3(options: { bucket?: string; port?: number } = {}): Promise<LocalS3> {
  const bucket = options.bucket ?? 'pgkeep-local';
  const server = await startFauxqs({ port: options.port ?? 0, logger: false });
  server.createBucket(bucket);
  const region = 'us-east-1';
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local-secret' };
  const endpoint = `http://127.0.0.1:${server.port}`;
  let stopped = false;
  return {
    endpoint,
    bucket,
    region,
    credentials,
    client: () => new S3Client({ endpoint, region, credentials, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
    taskEnvironment: () => ({
      PGKEEP_BUCKET: bucket,
      PGKEEP_S3_ENDPOINT: endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.stop();
    },
  };
}
