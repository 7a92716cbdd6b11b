import { createHash, type Hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { pinnedVersionId } from '../catalog/manifest.ts';
import { isNoSuchObject } from '../runtime/s3-errors.ts';
import type { S3ChecksumMode } from './config.ts';
import { combineCrc64Nvme, crc64Nvme, crc64NvmeToBase64 } from './crc64nvme.ts';
import { MAX_PARTS, partSizeFor } from './part-sizes.ts';

/**
 * An S3 multipart upload fed from a stream of unknown length, with bounded memory.
 *
 * Why not `@aws-sdk/lib-storage`'s Upload: it uses one fixed part size (so a stream either wastes
 * memory or hits the 10,000-part cap), and it cannot send a precomputed full-object CRC64NVME with
 * CompleteMultipartUpload, which is what makes S3 itself reject a corrupted upload.
 *
 * Memory: at most `maxPartsInFlight` parts uploading plus one filling. `write` resolves only when
 * there is room, so awaiting it propagates backpressure to the producer (zstd, then pg_dump).
 * Every byte is hashed once for SHA-256 (the manifest's end-to-end checksum) and once for
 * CRC64NVME (per part; the full-object CRC is combined from the part CRCs).
 *
 * Chunks are kept as they arrive and copied into a part buffer only when a part is full. Copying
 * each chunk straight into a buffer allocated when its part begins looks leaner, but measured worse:
 * the longer-lived 8 MiB buffers pushed V8 into a full mark-compact per part (~45 per 3 GB database,
 * +1 CPU-second). Measurements: docs/performance.md.
 */
export interface MultipartTarget {
  bucket: string;
  key: string;
  checksum: S3ChecksumMode;
  kmsKeyId: string | undefined;
  contentType: string;
}

export interface MultipartOptions {
  initialPartSizeBytes: number;
  maxPartsInFlight: number;
  /**
   * Send parts as UNSIGNED-PAYLOAD instead of with a SigV4 SHA-256 of the body (S3's "unsigned
   * payload option", https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html),
   * as AWS's Java SDK does over HTTPS: that hash is a second SHA-256 pass over every byte
   * (~0.5 CPU-seconds per 500 MB of backup). Set it only when TLS protects the connection. It takes
   * effect only with CRC64NVME checksums on, where S3 checks each part against its checksum header
   * (covered by the signature) and the whole object at completion.
   */
  skipPayloadSigningOverTls?: boolean;
  /** Cancels in-flight requests (e.g. on SIGTERM). */
  signal?: AbortSignal;
  /**
   * The client's per-attempt request timeout (task/s3.ts). A part gets that plus one second per
   * MiB of its body, so that a part is never cut off on a slow but working link (1 MiB/s is far
   * below what a task gets from S3), but one that stalls still fails, and is retried, in bounded time.
   */
  requestTimeoutMs?: number;
  onPartUploaded?: (progress: { partNumber: number; partBytes: number; uploadedBytes: number }) => void;
}

export interface UploadedObject {
  key: string;
  bytes: number;
  partCount: number;
  sha256: string;
  crc64nvme: string;
  s3ChecksumEnforced: boolean;
  etag: string | undefined;
  versionId: string | undefined;
  encryption: { mode: 'sse-kms' | 'sse-s3' | 'none' | 'unknown'; kmsKeyId?: string };
}

/**
 * What a failed backup's upload turned into, as S3 says, not as pgkeep hoped:
 * - aborted: S3 removed the upload and its parts;
 * - completed: S3 had completed the upload (its answer was lost, or the task was stopped while it
 *   ran), so a data object without a manifest exists: "data-only" in the catalog, never a backup;
 * - not-aborted: the abort failed (S3 unreachable); the parts stay until the lifecycle rule removes them;
 * - unknown: S3 no longer knows the upload, and whether an object exists could not be checked.
 */
export type CleanupOutcome =
  | { kind: 'aborted'; attempts: number }
  | { kind: 'completed'; bytes: number | undefined }
  | { kind: 'not-aborted'; attempts: number; error: Error }
  | { kind: 'unknown'; error: Error };

export class UploadIntegrityError extends Error {
  override name = 'UploadIntegrityError';
}

const ABORT_RETRY_DELAYS_MS = [0, 1_000, 3_000, 7_000];
/**
 * Everything cleanup may take: ECS sends SIGKILL stopTimeout after SIGTERM (infra/task-definition.ts
 * sets 120 s, the Fargate maximum; the ECS default is 30 s, "ContainerDefinition stopTimeout",
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html). 30 s
 * leaves room for closing the database session and publishing the failure metric.
 */
export const CLEANUP_BUDGET_MS = 30_000;
const MAX_ABORT_ATTEMPT_MS = 10_000;
const PART_SECONDS_PER_MIB = 1;

export class StreamingMultipartUpload {
  private readonly sha256: Hash = createHash('sha256');
  private readonly completedParts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private pendingChunks: Buffer[] = [];
  private pendingBytes = 0;
  private nextPartNumber = 1;
  private fullObjectCrc = 0n;
  private bytesAccepted = 0;
  private bytesUploaded = 0;
  private failure: Error | undefined;
  private completing = false;
  /** S3 completed the upload but its answer was lost; the object was found and checked instead. */
  completedDespiteLostAnswer = false;

  private constructor(
    private readonly s3: S3Client,
    private readonly target: MultipartTarget,
    private readonly options: MultipartOptions,
    readonly uploadId: string,
  ) {}

  static async create(s3: S3Client, target: MultipartTarget, options: MultipartOptions): Promise<StreamingMultipartUpload> {
    const created = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: target.bucket,
        Key: target.key,
        ContentType: target.contentType,
        ...(target.checksum === 'crc64nvme' ? { ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' } : {}),
        ...(target.kmsKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: target.kmsKeyId, BucketKeyEnabled: true } : {}),
      }),
      { abortSignal: options.signal },
    );
    if (!created.UploadId) throw new Error(`S3 returned no upload id for ${target.key}.`);
    return new StreamingMultipartUpload(s3, target, options, created.UploadId);
  }

  get acceptedBytes(): number {
    return this.bytesAccepted;
  }

  get uploadedBytes(): number {
    return this.bytesUploaded;
  }

  /** Accepts the next bytes of the object; resolves when the caller may send more. */
  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    if (chunk.length === 0) return;
    this.sha256.update(chunk);
    this.pendingChunks.push(chunk);
    this.pendingBytes += chunk.length;
    this.bytesAccepted += chunk.length;
    for (let size = this.currentPartSize(); this.pendingBytes >= size; size = this.currentPartSize()) {
      await this.dispatchPart(this.takePendingBytes(size));
    }
  }

  /** Uploads what is left, completes the upload, and checks that S3 holds exactly what was sent. */
  async complete(): Promise<UploadedObject> {
    this.throwIfFailed();
    // A zero-byte stream still needs one (empty) part: S3 accepts a last part below 5 MiB.
    if (this.pendingBytes > 0 || this.nextPartNumber === 1) await this.dispatchPart(this.takePendingBytes(this.pendingBytes));
    await Promise.all(this.inFlight);
    this.throwIfFailed();

    const parts = [...this.completedParts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const enforced = this.target.checksum === 'crc64nvme';
    const crc64nvme = crc64NvmeToBase64(this.fullObjectCrc);
    this.completing = true;
    let completed: { VersionId?: string; ETag?: string; ServerSideEncryption?: string; SSEKMSKeyId?: string };
    try {
      completed = await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.target.bucket,
          Key: this.target.key,
          UploadId: this.uploadId,
          MultipartUpload: { Parts: parts },
          // S3 rejects the completion (HTTP 400) if the object it assembled has another size...
          MpuObjectSize: this.bytesAccepted,
          // ...or, when checksums are on, another CRC64NVME than the bytes we produced.
          ...(enforced ? { ChecksumCRC64NVME: crc64nvme, ChecksumType: 'FULL_OBJECT' } : {}),
        }),
        { abortSignal: this.options.signal },
      );
    } catch (error) {
      // S3 may have completed the upload although its answer never arrived (the connection broke
      // while S3 assembled the object; the SDK's retry then gets NoSuchUpload, since the upload
      // is gone once complete). The object, checked below against what was sent, says which.
      if (this.options.signal?.aborted || !isLostAnswer(error)) throw error;
      const found = await this.headObject(undefined).catch(() => undefined);
      if (!found) throw error;
      completed = { VersionId: found.VersionId, ETag: found.ETag, ServerSideEncryption: found.ServerSideEncryption, SSEKMSKeyId: found.SSEKMSKeyId };
      this.completedDespiteLostAnswer = true;
    }

    // Belt and braces: some S3-compatible stores complete an upload they did not fully assemble
    // (one seen in testing silently completed a 0-byte object when it could not parse the part
    // list). An object that is not exactly what we sent must never get a manifest.
    const versionId = pinnedVersionId(completed.VersionId);
    const head = await this.headObject(versionId);
    if (head.ContentLength !== this.bytesAccepted) {
      throw new UploadIntegrityError(
        `S3 reports ${head.ContentLength ?? 'no'} bytes for s3://${this.target.bucket}/${this.target.key} after completing the upload, but ${this.bytesAccepted} bytes were sent.`,
      );
    }
    if (enforced && head.ChecksumCRC64NVME !== undefined && head.ChecksumCRC64NVME !== crc64nvme) {
      throw new UploadIntegrityError(
        `S3 reports CRC64NVME ${head.ChecksumCRC64NVME} for s3://${this.target.bucket}/${this.target.key}, but the bytes sent have ${crc64nvme}.`,
      );
    }

    return {
      key: this.target.key,
      bytes: this.bytesAccepted,
      partCount: parts.length,
      sha256: this.sha256.digest('hex'),
      crc64nvme,
      s3ChecksumEnforced: enforced,
      etag: completed.ETag,
      versionId,
      encryption: describeEncryption(completed.ServerSideEncryption, completed.SSEKMSKeyId),
    };
  }

  /**
   * Removes the upload and its stored parts, so a failed backup leaves no partial object. Waits for
   * in-flight part uploads first (cancel them with the signal), because S3 may keep a part whose
   * upload was still running when the abort arrived. Retries, since the usual reason to abort is
   * that S3 was unreachable a moment ago; the bucket's lifecycle rule removes what still remains.
   * All of it within `budgetMs`, and it finds out what became of the upload: NoSuchUpload
   * does not mean "aborted": it is also what S3 answers once the upload was completed, so then the
   * key is checked for an object.
   */
  async cleanUp(onRetry?: (attempt: number, error: Error) => void, budgetMs = CLEANUP_BUDGET_MS): Promise<CleanupOutcome> {
    const deadline = Date.now() + budgetMs;
    const outcome = await this.abortUpload(onRetry, deadline);
    if (outcome.kind === 'aborted') return { kind: 'aborted', attempts: outcome.attempts };
    if (outcome.kind === 'failed') return { kind: 'not-aborted', attempts: outcome.attempts, error: outcome.error };
    // An upload pgkeep never asked to complete cannot have become an object.
    if (!this.completing) return { kind: 'aborted', attempts: outcome.attempts };
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.target.bucket, Key: this.target.key }), {
        abortSignal: AbortSignal.timeout(Math.max(1_000, Math.min(this.attemptTimeoutMs(), deadline - Date.now()))),
      });
      return { kind: 'completed', bytes: head.ContentLength };
    } catch (error) {
      if (isNoSuchObject(error)) return { kind: 'aborted', attempts: outcome.attempts };
      return { kind: 'unknown', error: error as Error };
    }
  }

  private async abortUpload(
    onRetry: ((attempt: number, error: Error) => void) | undefined,
    deadline: number,
  ): Promise<{ kind: 'aborted' | 'gone'; attempts: number } | { kind: 'failed'; attempts: number; error: Error }> {
    // In-flight parts were cancelled by the signal; waiting is bounded by the request timeouts too.
    await settledWithin(this.inFlight, Math.max(0, deadline - Date.now()));
    let lastError = new Error('no attempt fitted in the cleanup time');
    let attempts = 0;
    for (const delay of ABORT_RETRY_DELAYS_MS) {
      if (Date.now() + delay + 1_000 > deadline) break;
      if (delay > 0) await sleep(delay);
      attempts += 1;
      try {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.target.key, UploadId: this.uploadId }), {
          abortSignal: AbortSignal.timeout(Math.min(this.attemptTimeoutMs(), deadline - Date.now())),
        });
        return { kind: 'aborted', attempts };
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchUpload') return { kind: 'gone', attempts };
        lastError = error as Error;
        onRetry?.(attempts, lastError);
      }
    }
    return { kind: 'failed', attempts, error: lastError };
  }

  private attemptTimeoutMs(): number {
    return Math.min(this.options.requestTimeoutMs ?? MAX_ABORT_ATTEMPT_MS, MAX_ABORT_ATTEMPT_MS);
  }

  private async headObject(versionId: string | undefined) {
    return this.s3.send(
      new HeadObjectCommand({
        Bucket: this.target.bucket,
        Key: this.target.key,
        ...(versionId ? { VersionId: versionId } : {}),
        ...(this.target.checksum === 'crc64nvme' ? { ChecksumMode: 'ENABLED' } : {}),
      }),
      { abortSignal: this.options.signal },
    );
  }

  private currentPartSize(): number {
    return partSizeFor(Math.min(this.nextPartNumber, MAX_PARTS), this.options.initialPartSizeBytes);
  }

  private takePendingBytes(size: number): Buffer {
    const part = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.pendingChunks.shift();
      if (!chunk) throw new Error('internal: fewer pending bytes than counted');
      const needed = size - filled;
      if (chunk.length > needed) {
        chunk.copy(part, filled, 0, needed);
        this.pendingChunks.unshift(chunk.subarray(needed));
        filled += needed;
      } else {
        chunk.copy(part, filled);
        filled += chunk.length;
      }
    }
    this.pendingBytes -= size;
    return part;
  }

  private async dispatchPart(body: Buffer): Promise<void> {
    while (this.inFlight.size >= this.options.maxPartsInFlight) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const partNumber = this.nextPartNumber;
    if (partNumber > MAX_PARTS) throw new Error(`The backup exceeds S3's ${MAX_PARTS}-part limit at ${this.bytesAccepted} bytes.`);
    this.nextPartNumber += 1;

    const partCrc = crc64Nvme(body);
    this.fullObjectCrc = partNumber === 1 ? partCrc : combineCrc64Nvme(this.fullObjectCrc, partCrc, body.length);
    const checksum = this.target.checksum === 'crc64nvme' ? { ChecksumAlgorithm: 'CRC64NVME' as const, ChecksumCRC64NVME: crc64NvmeToBase64(partCrc) } : {};

    const command = new UploadPartCommand({
      Bucket: this.target.bucket,
      Key: this.target.key,
      UploadId: this.uploadId,
      PartNumber: partNumber,
      Body: body,
      ContentLength: body.length,
      ...checksum,
    });
    if (this.options.skipPayloadSigningOverTls && checksum.ChecksumCRC64NVME) {
      // The signer takes a preset x-amz-content-sha256 as the payload hash instead of hashing the body.
      command.middlewareStack.add(
        (next) => (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
          return next(args);
        },
        { step: 'build', name: 'pgkeepUnsignedPayload' },
      );
    }
    const requestTimeout =
      this.options.requestTimeoutMs === undefined ? undefined : this.options.requestTimeoutMs + Math.ceil(body.length / 2 ** 20) * PART_SECONDS_PER_MIB * 1000;
    const upload = this.s3
      .send(command, { abortSignal: this.options.signal, ...(requestTimeout ? { requestTimeout } : {}) })
      .then((response) => {
        if (!response.ETag) throw new Error(`S3 returned no ETag for part ${partNumber}.`);
        this.completedParts.push({
          PartNumber: partNumber,
          ETag: response.ETag,
          ...(checksum.ChecksumCRC64NVME ? { ChecksumCRC64NVME: checksum.ChecksumCRC64NVME } : {}),
        });
        this.bytesUploaded += body.length;
        this.options.onPartUploaded?.({ partNumber, partBytes: body.length, uploadedBytes: this.bytesUploaded });
      })
      .catch((error: unknown) => {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      });
    const tracked = upload.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

/** The connection broke or timed out, or S3 no longer knows the upload: it may have completed. */
function isLostAnswer(error: unknown): boolean {
  const { name = '', message = '', code = '' } = error as { name?: string; message?: string; code?: string };
  return name === 'NoSuchUpload' || /ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|socket hang up|TimeoutError|aborted/i.test(`${name} ${code} ${message}`);
}

function describeEncryption(serverSideEncryption: string | undefined, kmsKeyId: string | undefined): UploadedObject['encryption'] {
  if (serverSideEncryption === 'aws:kms' || serverSideEncryption === 'aws:kms:dsse') return { mode: 'sse-kms', ...(kmsKeyId ? { kmsKeyId } : {}) };
  if (serverSideEncryption === 'AES256') return { mode: 'sse-s3' };
  // S3 always encrypts new objects; a store that does not say is reported as unknown, not "none".
  return { mode: 'unknown' };
}

/**
 * Waits until every promise has settled or `ms` have passed, whichever comes first, and clears its
 * timer either way: a timer left running would hold the process open for the rest of the cleanup
 * budget after the parts had long finished.
 */
async function settledWithin(promises: Iterable<Promise<unknown>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([Promise.allSettled(promises), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
