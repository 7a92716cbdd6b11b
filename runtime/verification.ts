// runtime/: code the task and the functions share that talks to AWS (the SDK), so it cannot live in
// catalog/, which stays pure for the infra to import at synth time. infra/ never imports runtime/.
import { GetObjectTaggingCommand, PutObjectTaggingCommand, type S3Client, type Tag } from '@aws-sdk/client-s3';

/**
 * Verification outcomes are recorded as S3 object tags on the data object (and its manifest), so
 * that retention, restore and health can trust a backup without re-reading it, and lifecycle rules
 * could filter on them. Tags are merged, never replaced: retention adds its own tier tag.
 */
export const VERIFICATION_TAG = 'pgkeep:verification';
export const VERIFIED_AT_TAG = 'pgkeep:verified-at';
export const VERIFICATION_METHOD_TAG = 'pgkeep:verification-method';

/**
 * verified: the bytes match the manifest. failed: they do not, or the manifest is broken.
 * unverifiable: the check could not finish (no store checksum, too large to hash in time).
 * newer-schema: "unverifiable: written by a newer pgkeep", a manifest whose schemaVersion this
 * version cannot read. Not verified (it never counts as a good backup), not failed (nothing says
 * it is bad), and not final: a verifier that can read it re-checks it (see NEWER_SCHEMA_STATUS).
 */
export type VerificationStatus = 'verified' | 'failed' | 'unverifiable' | 'newer-schema';
export type VerificationMethod = 'crc64nvme' | 'sha256' | 'none';
const STATUSES: readonly string[] = ['verified', 'failed', 'unverifiable', 'newer-schema'];

/** The one status a later verifier must not take as the final word (it re-checks the backup). */
export const NEWER_SCHEMA_STATUS = 'newer-schema' satisfies VerificationStatus;

export interface VerificationRecord {
  status: VerificationStatus;
  method: VerificationMethod | undefined;
  verifiedAt: string | undefined;
}

export function verificationFromTags(tags: readonly Tag[] | undefined): VerificationRecord | undefined {
  const value = (key: string): string | undefined => tags?.find((tag) => tag.Key === key)?.Value;
  const status = value(VERIFICATION_TAG);
  if (!status || !STATUSES.includes(status)) return undefined;
  return { status: status as VerificationStatus, method: value(VERIFICATION_METHOD_TAG) as VerificationMethod | undefined, verifiedAt: value(VERIFIED_AT_TAG) };
}

export async function readTags(s3: S3Client, bucket: string, key: string): Promise<Tag[]> {
  return (await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))).TagSet ?? [];
}

export async function readVerification(s3: S3Client, bucket: string, key: string): Promise<VerificationRecord | undefined> {
  return verificationFromTags(await readTags(s3, bucket, key));
}

/** Sets tags on an object, keeping every other tag it has (read, merge, write). */
export async function mergeTags(s3: S3Client, bucket: string, key: string, updates: Record<string, string>): Promise<void> {
  const merged = new Map((await readTags(s3, bucket, key)).map((tag) => [tag.Key ?? '', tag.Value ?? '']));
  for (const [tagKey, tagValue] of Object.entries(updates)) merged.set(tagKey, tagValue);
  await s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: key, Tagging: { TagSet: [...merged].map(([Key, Value]) => ({ Key, Value })) } }));
}

export function verificationTags(record: { status: VerificationStatus; method: VerificationMethod; at: Date }): Record<string, string> {
  return { [VERIFICATION_TAG]: record.status, [VERIFICATION_METHOD_TAG]: record.method, [VERIFIED_AT_TAG]: record.at.toISOString() };
}
