import { PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { S3_REQUEST_TIMEOUT_DEFAULT_SECONDS, type BackupConfig } from './config.ts';
import { BackupFailure, type FailureStage } from './errors.ts';

/** How many times the SDK sends one request before giving up (the first try and 5 retries). */
export const S3_MAX_ATTEMPTS = 6;

export interface S3ClientOptions extends Pick<S3ClientConfig, 'credentials'> {
  /** Per attempt: time to S3's answer, and the longest silence on the socket. Default 30 s. */
  requestTimeoutMs?: number;
}

/**
 * `credentials`: only for callers that run a command in-process against a local server (tests); the task uses its role's.
 *
 * Every request has a deadline. Without one, a black-holed S3 (the connection open, nothing
 * answered) hangs the backup for ever, with its snapshot open on the production database: the
 * SDK's Node handler has no timeout by default ("Defaults to 0, which disables the timeout",
 * @smithy/types NodeHttpHandlerOptions). So: `connectionTimeout` for the TCP/TLS connect,
 * `requestTimeout` + `throwOnRequestTimeout` for the time until S3 answers (cleared once the
 * response headers arrive, so a long download is not cut), and `socketTimeout` for a silent socket
 * (a download that stops mid-body). A timed-out attempt is a TimeoutError, which the SDK's standard
 * retry strategy treats as transient and retries, up to S3_MAX_ATTEMPTS.
 */
export function createS3Client(s3: BackupConfig['s3'], options: S3ClientOptions = {}): S3Client {
  const { requestTimeoutMs = S3_REQUEST_TIMEOUT_DEFAULT_SECONDS * 1000, ...clientOptions } = options;
  return new S3Client({
    ...clientOptions,
    // The NodeHttpHandler's options, which the client accepts in place of a handler instance.
    requestHandler: {
      connectionTimeout: Math.min(requestTimeoutMs, 10_000),
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
      socketTimeout: requestTimeoutMs,
    },
    region: s3.region,
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: s3.forcePathStyle,
    // Checksums are sent explicitly where pgkeep wants them (CRC64NVME per part and for the whole
    // object); the SDK's automatic CRC32 would only add a second, weaker checksum. It would also
    // switch streaming bodies to aws-chunked encoding, which some S3-compatible stores mangle.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A long backup must survive S3's occasional 503 SlowDown / 500 InternalError on a part.
    maxAttempts: S3_MAX_ATTEMPTS,
  });
}

/**
 * Writes a small JSON object (a manifest, a drill record) with the backups' checksum and
 * encryption settings. The checksum is not optional under Object Lock: S3 refuses a PutObject that
 * carries neither Content-MD5 nor a checksum header to a bucket with default retention, which is
 * why PGKEEP_S3_CHECKSUM=none is refused there (task/config.ts).
 */
export async function putJsonObject(s3: S3Client, settings: BackupConfig['s3'], key: string, body: string, abortSignal?: AbortSignal): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: settings.bucket,
      Key: key,
      Body: body,
      ContentType: 'application/json',
      ...(settings.checksum === 'crc64nvme' ? { ChecksumAlgorithm: 'CRC64NVME' } : {}),
      ...(settings.kmsKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: settings.kmsKeyId, BucketKeyEnabled: true } : {}),
    }),
    { abortSignal },
  );
}

/**
 * Whether requests to S3 travel over TLS: AWS's own endpoints always do (the SDK's default), a
 * custom S3-compatible endpoint only when its URL says https.
 */
export function reachesS3OverTls(endpoint: string | undefined): boolean {
  return endpoint === undefined || /^https:\/\//i.test(endpoint);
}

/** Turns an S3 error into what an operator can act on. */
export function explainS3Error(error: unknown, stage: FailureStage, bucket: string, key: string): BackupFailure {
  const name = (error as { name?: string }).name ?? '';
  const message = (error as { message?: string }).message ?? String(error);
  const target = `s3://${bucket}/${key}`;
  const known: Record<string, [string, string]> = {
    AccessDenied: [
      `S3 denied access to ${target}: ${message}`,
      "Check that the task role may s3:PutObject (and s3:AbortMultipartUpload) under the backups/ prefix, that the bucket policy allows it, and that the role may use the bucket's KMS key (kms:GenerateDataKey).",
    ],
    NoSuchBucket: [
      `The bucket ${bucket} does not exist.`,
      "Check PGKEEP_BUCKET and its region (PGKEEP_BUCKET_REGION for the restore and the drill, else the task's AWS_REGION); deploy the storage stack first.",
    ],
    // A bucket in another region than the client's: S3 answers 301 PermanentRedirect (or, to a
    // request signed for the wrong region, AuthorizationHeaderMalformed naming the right one).
    PermanentRedirect: [
      `The bucket ${bucket} is in another region than the one the task addressed for ${target}: ${message}`,
      "Set PGKEEP_BUCKET_REGION to the bucket's region (for the vault, the region in its name pgkeep-<env>-vault-<account>-<region>), then run again.",
    ],
    AuthorizationHeaderMalformed: [
      `S3 refused the request for ${target} because it was signed for the wrong region: ${message}`,
      "Set PGKEEP_BUCKET_REGION to the region the message expects (the bucket's region), then run again.",
    ],
    InvalidAccessKeyId: [`The AWS access key used for ${target} is not valid.`, 'Check the task role / credentials the task runs with.'],
    SignatureDoesNotMatch: [`S3 rejected the request signature for ${target}.`, 'Check the AWS credentials and the region (AWS_REGION).'],
    CredentialsProviderError: [`No AWS credentials were found for ${target}.`, 'Run the task with a task role, or set AWS credentials in its environment.'],
    KMS: [
      `S3 could not use the KMS key for ${target}: ${message}`,
      'Check PGKEEP_KMS_KEY_ID and that the task role may kms:GenerateDataKey and kms:Decrypt with it.',
    ],
    BadDigest: [
      `S3 rejected ${target} because its checksum did not match the bytes received: ${message}`,
      'The data was damaged in transit. Run the backup again; if it repeats, check network middleboxes.',
    ],
    InvalidRequest: [
      `S3 rejected the upload of ${target}: ${message}`,
      'If the message mentions a checksum or size, the object S3 assembled differs from what was sent; run the backup again.',
    ],
  };
  // S3 says InvalidRequest "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object
  // requests with Object Lock parameters"; moto names it MissingUploadObjectWithObjectLockHeaders.
  if (/object ?lock/i.test(`${name} ${message}`) && /content-md5|checksum/i.test(message)) {
    return new BackupFailure(
      stage,
      `S3 refused ${target} because the bucket is under Object Lock and the request carried no checksum: ${message}`,
      'Set PGKEEP_OBJECT_LOCK=true (the pgkeep stacks set it), which turns S3 checksums on, and remove any PGKEEP_S3_CHECKSUM=none; then run again.',
      { cause: error },
    );
  }
  // HeadObject has no body, so the SDK names a 301 by its status code alone.
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const match = known[name] ?? (name.startsWith('KMS') ? known.KMS : status === 301 ? known.PermanentRedirect : undefined);
  if (match) return new BackupFailure(stage, match[0], match[1], { cause: error });
  if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|socket hang up|EPIPE|TimeoutError/i.test(`${name} ${message}`)) {
    return new BackupFailure(
      stage,
      `Could not reach S3 for ${target}: ${name} ${message}`.trim(),
      'Check the network path to S3 (VPC endpoint or NAT gateway) or PGKEEP_S3_ENDPOINT, then run the backup again.',
      { cause: error },
    );
  }
  return new BackupFailure(
    stage,
    `S3 request for ${target} failed: ${name ? `${name}: ` : ''}${message}`,
    'Check the bucket, the task role and the network path to S3, then run the backup again.',
    { cause: error },
  );
}
