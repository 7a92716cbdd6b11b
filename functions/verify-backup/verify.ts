import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseBackupKey, backupObjectKeys } from '../../catalog/keys.ts';
import { isNoSuchObject } from '../../runtime/s3-errors.ts';
import { ManifestError, NewerManifestError, parseManifest, type Manifest } from '../../catalog/manifest.ts';
import type { VerificationMethod, VerificationStatus } from '../../runtime/verification.ts';

/**
 * Checks one backup against its manifest: the data object exists, has the manifest's size, and
 * its checksum matches. Cheap by default: where S3 reports the full-object CRC64NVME, comparing it
 * costs one HeadObject whatever the size. Where the store reports none, the object is streamed
 * and its SHA-256 recomputed (bounded memory), unless that cannot finish in the time allowed, in
 * which case the answer is "unverifiable", never a pass.
 */
export interface VerificationReport {
  manifestKey: string;
  database: string | undefined;
  backupId: string | undefined;
  /** The data object the manifest names (or would name); undefined if the key is not pgkeep's. */
  dataKey: string | undefined;
  dataObjectExists: boolean;
  status: VerificationStatus;
  method: VerificationMethod;
  /** What did not match, one sentence each; empty when verified. */
  problems: string[];
  /** What an operator should do; empty when verified. */
  remedy: string;
  manifest: Manifest | undefined;
}

export interface VerifyOptions {
  s3: S3Client;
  bucket: string;
  manifestKey: string;
  /** Largest object to stream when the store reports no checksum. */
  maxStreamBytes: number;
  /** When streaming must be done by (e.g. the Lambda's deadline less a margin). */
  deadline?: Date;
  /** primary (default): the bucket the task wrote. vault: a copy S3 Replication made of it. */
  site?: 'primary' | 'vault';
}

const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/** The manifest named by the event no longer exists (deleted before verification ran). */
export class ManifestGoneError extends Error {
  override name = 'ManifestGoneError';
}

export async function verifyBackup({ s3, bucket, manifestKey, maxStreamBytes, deadline, site = 'primary' }: VerifyOptions): Promise<VerificationReport> {
  const parsedKey = parseBackupKey(manifestKey);
  const dataKey = parsedKey ? backupObjectKeys(parsedKey.database, parsedKey.backupId).dataKey : undefined;
  const base = { manifestKey, database: parsedKey?.database, backupId: parsedKey?.backupId, dataKey, dataObjectExists: false, manifest: undefined };
  const failed = (problems: string[], remedy: string, extra: Partial<VerificationReport> = {}): VerificationReport => ({
    ...base,
    status: 'failed',
    method: 'none',
    problems,
    remedy,
    ...extra,
  });
  const object = `s3://${bucket}/${dataKey ?? '?'}`;

  if (!parsedKey || parsedKey.kind !== 'manifest' || !dataKey) {
    return failed(
      [`${manifestKey} is not a manifest key of pgkeep's layout (backups/<database>/<backup id>.manifest.json).`],
      'Only pgkeep should write under backups/; remove the foreign object, or fix the S3 notification filter.',
    );
  }

  const dataHead = await headIfExists(s3, bucket, dataKey);
  const withData = { dataObjectExists: dataHead !== undefined };

  let manifest: Manifest;
  try {
    const manifestObject = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey })).catch((error: unknown) => {
      if ((error as { name?: string }).name === 'NoSuchKey') throw new ManifestGoneError(`${manifestKey} no longer exists.`);
      throw error;
    });
    if ((manifestObject.ContentLength ?? 0) > MAX_MANIFEST_BYTES)
      throw new ManifestError(`${manifestKey} is ${manifestObject.ContentLength} bytes, far larger than any manifest pgkeep writes.`);
    manifest = parseManifest(await manifestObject.Body!.transformToString(), manifestKey);
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    if (error instanceof NewerManifestError) {
      // Not a broken backup: one this version cannot judge (a newer task image beside these
      // functions). "failed" would be false, and retention deletes failed backups.
      return {
        ...base,
        ...withData,
        status: 'newer-schema',
        method: 'none',
        problems: [error.message],
        remedy:
          `This backup was written by ${error.writtenBy ? `pgkeep ${error.writtenBy}` : 'a newer pgkeep'} (manifest schemaVersion ${error.schemaVersion}); these functions are older. ` +
          'Deploy the same pgkeep version to the stack (pipeline), then re-verify it (docs/operations.md#backup-unverifiable). Until then it does not count as a verified backup; retention keeps it.',
      };
    }
    return failed(
      // Each problem names its field and says what is wrong with it: the whole sentence is the reason.
      error.problems.length > 0 ? error.problems.map((problem) => `manifest field ${problem}`) : [error.message],
      `The manifest of backup ${parsedKey.backupId} (${parsedKey.database}) is malformed, so the backup cannot be trusted: do not restore from it. Run a new backup now, and read the logs of the task run that wrote it.`,
      withData,
    );
  }

  if (manifest.database !== parsedKey.database || manifest.backupId !== parsedKey.backupId) {
    return failed(
      [`the manifest at ${manifestKey} describes backup ${manifest.backupId} of database "${manifest.database}", not the backup its key names.`],
      'A manifest was copied or renamed by hand. Do not restore from it; remove the stray manifest and run a new backup.',
      { ...withData, manifest },
    );
  }
  if (!dataHead) {
    return failed(
      [`the data object ${object} named by the manifest does not exist.`],
      'The backup was deleted or its upload never completed. Run a new backup now. On a versioned bucket, a noncurrent version of the object may still exist: list object versions to recover it.',
      { ...withData, manifest },
    );
  }

  const report = (status: VerificationStatus, method: VerificationMethod, problems: string[], remedy: string): VerificationReport => ({
    ...base,
    ...withData,
    manifest,
    status,
    method,
    problems,
    remedy,
  });
  if (dataHead.ContentLength !== manifest.object.bytes) {
    return report(
      'failed',
      'none',
      [`${object} holds ${dataHead.ContentLength} bytes; the manifest says ${manifest.object.bytes}.`],
      'The object was truncated or replaced after the backup finished. Do not restore from it; run a new backup, and restore from the previous verified one if needed.',
    );
  }
  if (dataHead.ChecksumCRC64NVME !== undefined) {
    if (dataHead.ChecksumCRC64NVME === manifest.object.crc64nvme) return report('verified', 'crc64nvme', [], '');
    return report(
      'failed',
      'crc64nvme',
      [`S3 reports CRC64NVME ${dataHead.ChecksumCRC64NVME} for ${object}; the manifest says ${manifest.object.crc64nvme}.`],
      'The object does not hold the bytes the backup produced (corrupted or replaced). Do not restore from it; run a new backup. A versioned bucket may still hold the original as a noncurrent version.',
    );
  }
  // s3ChecksumEnforced describes the task's upload to the primary bucket. A copy carries whatever
  // checksum replication gave it; without one, its SHA-256 is what can prove it (below).
  if (manifest.object.s3ChecksumEnforced && site === 'primary') {
    return report(
      'failed',
      'crc64nvme',
      [`S3 reports no CRC64NVME for ${object}, although it was uploaded with checksums enforced.`],
      'The object was replaced by a copy without checksums, or the bucket is not the one the backup wrote to. Treat the backup as unverified: run the restore drill on it, and run a new backup.',
    );
  }

  // The store keeps no checksum (S3-compatible endpoints, the local run): recompute SHA-256.
  if (manifest.object.bytes > maxStreamBytes) {
    return report(
      'unverifiable',
      'none',
      [`${object} is ${manifest.object.bytes} bytes, more than the ${maxStreamBytes} this function streams, and the store reports no checksum.`],
      'The upload-time check cannot prove this backup here. The weekly restore drill re-hashes the whole object; run it now, or raise the limit and the function timeout.',
    );
  }
  const streamed = await sha256OfObject(s3, bucket, dataKey, deadline);
  if (streamed === 'deadline') {
    return report(
      'unverifiable',
      'sha256',
      [`hashing ${object} did not finish before the function's deadline.`],
      "Raise the verify function's timeout or lower PGKEEP_VERIFY_MAX_STREAM_MB; the weekly restore drill re-hashes the whole object.",
    );
  }
  if (streamed.bytes !== manifest.object.bytes || streamed.sha256 !== manifest.object.sha256) {
    return report(
      'failed',
      'sha256',
      [
        `${object} has SHA-256 ${streamed.sha256} over ${streamed.bytes} bytes; the manifest says ${manifest.object.sha256} over ${manifest.object.bytes} bytes.`,
      ],
      'The object does not hold the bytes the backup produced (corrupted or replaced). Do not restore from it; run a new backup.',
    );
  }
  return report('verified', 'sha256', [], '');
}

async function headIfExists(s3: S3Client, bucket: string, key: string) {
  try {
    return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  } catch (error) {
    if (isNoSuchObject(error)) return undefined;
    throw error;
  }
}

async function sha256OfObject(s3: S3Client, bucket: string, key: string, deadline: Date | undefined): Promise<{ sha256: string; bytes: number } | 'deadline'> {
  const controller = new AbortController();
  const timer = deadline ? setTimeout(() => controller.abort(), Math.max(0, deadline.getTime() - Date.now())) : undefined;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: controller.signal });
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of object.Body as Readable) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { sha256: hash.digest('hex'), bytes };
  } catch (error) {
    if (controller.signal.aborted) return 'deadline';
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
