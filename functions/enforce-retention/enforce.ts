import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
import { futureDatedByMs, listCatalogEntries, type CatalogEntry } from '../../runtime/listing.ts';
import { ManifestError, parseManifest } from '../../catalog/manifest.ts';
import { readTags, mergeTags, verificationFromTags } from '../../runtime/verification.ts';
import { readOffsiteCopy, type VaultReader } from '../../runtime/vault.ts';
import {
  TIER_TAG,
  planRetention,
  type RetentionCandidate,
  type RetentionDecision,
  type RetentionPolicy,
  type RetentionTier,
} from '../../catalog/retention-policy.ts';

export interface RetentionRunOptions {
  s3: S3Client;
  bucket: string;
  database: string;
  policy: RetentionPolicy;
  now: Date;
  /** Decide and report, delete and tag nothing. */
  dryRun: boolean;
  /** Read S3 Object Lock retain-until dates (needs s3:GetObjectRetention). */
  objectLock: boolean;
  /** Objects of an incomplete backup (data without manifest, or the reverse) older than this are removed. */
  incompleteGraceHours: number;
  /** The vault, when a backup may be deleted only once its off-site copy is verified (rule 8). */
  offsite?: VaultReader;
  logger: Logger;
}

export interface PlannedDeletion {
  backupId: string;
  keys: string[];
  bytes: number;
  reasons: string[];
}

export interface RetentionRunResult {
  database: string;
  dryRun: boolean;
  decisions: RetentionDecision[];
  /** Every deletion, complete backups and incomplete leftovers alike, with all keys of each. */
  deletions: PlannedDeletion[];
  kept: number;
  deleted: number;
  deletedBytes: number;
  tiersTagged: number;
  errors: string[];
  /** Backups (and manifest-only leftovers) kept only because their manifest cannot be read. */
  keptUnreadable: { backupId: string; manifestKey: string; reason: string }[];
  /** Backups the plan keeps only because their off-site copy is not verified (rule 8). */
  keptAwaitingOffsite: number;
}

export async function enforceRetention(options: RetentionRunOptions): Promise<RetentionRunResult> {
  const { s3, bucket, database, logger } = options;
  const entries = await listCatalogEntries(s3, { bucket, database });
  const complete = entries.filter((entry) => entry.state === 'complete');

  // Every verdict is read before anything is decided: a read failure aborts this database's run
  // (the error propagates), never a decision made on partial knowledge.
  const currentTiers = new Map<string, string | undefined>();
  const candidates: RetentionCandidate[] = [];
  for (const entry of complete) {
    const tags = await readTags(s3, bucket, entry.dataKey!);
    currentTiers.set(entry.backupId, tags.find((tag) => tag.Key === TIER_TAG)?.Value);
    const verification = verificationFromTags(tags)?.status ?? 'pending';
    const retainUntil = options.objectLock ? await retainUntilOf(s3, bucket, entry.dataKey!) : undefined;
    const futureDated = futureDatedByMs(entry, options.now);
    candidates.push({
      backupId: entry.backupId,
      startedAt: entry.startedAt,
      verification,
      bytes: entry.dataBytes ?? 0,
      ...(retainUntil ? { retainUntil } : {}),
      ...(futureDated !== undefined ? { futureDatedByMs: futureDated } : {}),
    });
  }
  const byId = new Map(entries.map((entry) => [entry.backupId, entry]));
  // Retention never deletes what it cannot read. Reading every manifest every day would cost a
  // GetObject per backup; only what the plan would delete is read, and the plan is made again
  // until nothing it deletes is unreadable (marking a backup unreadable only keeps it).
  const keptUnreadable: RetentionRunResult['keptUnreadable'] = [];
  const read = new Set<string>();
  // After one failed vault read (down, AccessDenied, timed out) the rest of this run's candidates
  // are 'unknown' too, unread: one more deadline each would only spend the function's time.
  let vaultFailure: string | undefined;
  let decisions = planRetention(candidates, options.policy, options.now);
  for (;;) {
    const unread = decisions.filter((decision) => decision.action === 'delete' && !read.has(decision.backupId));
    if (unread.length === 0) break;
    for (const decision of unread) {
      read.add(decision.backupId);
      const entry = byId.get(decision.backupId)!;
      const unreadable = await whyUnreadable(s3, bucket, entry.manifestKey!);
      const candidate = candidates.find((each) => each.backupId === decision.backupId)!;
      if (unreadable === undefined) {
        // Only what the plan would delete is looked up in the vault: one GetObjectTagging per
        // deletion candidate, not per backup.
        if (options.offsite) {
          candidate.offsite = vaultFailure ? { state: 'unknown', detail: vaultFailure } : await readOffsiteCopy(options.offsite, entry.dataKey!);
          if (candidate.offsite.state === 'unknown') vaultFailure ??= candidate.offsite.detail;
        }
        continue;
      }
      candidate.unreadable = unreadable;
      keptUnreadable.push({ backupId: entry.backupId, manifestKey: entry.manifestKey!, reason: unreadable });
    }
    decisions = planRetention(candidates, options.policy, options.now);
  }

  const deletions: PlannedDeletion[] = decisions
    .filter((decision) => decision.action === 'delete')
    .map((decision) => {
      const entry = byId.get(decision.backupId)!;
      return { backupId: decision.backupId, keys: keysOf(entry), bytes: entry.dataBytes ?? 0, reasons: decision.reasons };
    });
  for (const entry of entries.filter((candidate) => candidate.state !== 'complete')) {
    // Aged from the last write, not the start: a backup that ran for days writes its data object
    // only seconds before its manifest, and must not lose it in between.
    const lastWrite = Math.max(entry.startedAt.getTime(), entry.dataLastModified?.getTime() ?? 0, entry.manifestLastModified?.getTime() ?? 0);
    const ageHours = (options.now.getTime() - lastWrite) / 3_600_000;
    if (ageHours < options.incompleteGraceHours) continue;
    if (options.objectLock && entry.dataKey) {
      const retainUntil = await retainUntilOf(s3, bucket, entry.dataKey);
      if (retainUntil && retainUntil.getTime() > options.now.getTime()) continue;
    }
    if (entry.state === 'manifest-only') {
      // A manifest this version cannot read may describe data under a key it does not know (a
      // newer layout): it is not provably a leftover.
      const unreadable = await whyUnreadable(s3, bucket, entry.manifestKey!);
      if (unreadable !== undefined) {
        keptUnreadable.push({ backupId: entry.backupId, manifestKey: entry.manifestKey!, reason: unreadable });
        continue;
      }
    }
    deletions.push({
      backupId: entry.backupId,
      keys: keysOf(entry),
      bytes: entry.dataBytes ?? 0,
      reasons: [incompleteReason(entry, options.incompleteGraceHours)],
    });
  }

  for (const decision of decisions) {
    logger.info(decision.action === 'keep' ? 'keep' : options.dryRun ? 'would delete' : 'delete', {
      database,
      backupId: decision.backupId,
      startedAt: decision.startedAt.toISOString(),
      tier: decision.tier,
      reasons: decision.reasons,
    });
  }
  if (vaultFailure !== undefined) {
    logger.warn('the vault could not be read: every backup the plan would delete is kept until its off-site copy can be confirmed', {
      database,
      vaultBucket: options.offsite?.bucket,
      error: vaultFailure,
    });
  }
  for (const kept of keptUnreadable) {
    logger.warn(
      'kept: its manifest cannot be read, and retention never deletes what it cannot read. Upgrade pgkeep if it was written by a newer one; otherwise inspect it and delete it by hand (docs/operations.md#backup-verification-failed)',
      { database, ...kept },
    );
  }
  for (const deletion of deletions.filter((candidate) => !decisions.some((decision) => decision.backupId === candidate.backupId))) {
    logger.info(options.dryRun ? 'would delete' : 'delete', { database, backupId: deletion.backupId, keys: deletion.keys, reasons: deletion.reasons });
  }

  const errors: string[] = [];
  let tiersTagged = 0;
  if (!options.dryRun) {
    for (const deletion of deletions) errors.push(...(await deleteTogether(s3, bucket, deletion)));
    for (const decision of decisions) {
      const entry = byId.get(decision.backupId);
      if (decision.action !== 'keep' || !decision.tier || !entry?.dataKey || currentTiers.get(decision.backupId) === decision.tier) continue;
      try {
        await mergeTags(s3, bucket, entry.dataKey, { [TIER_TAG]: decision.tier satisfies RetentionTier });
        tiersTagged += 1;
      } catch (error) {
        errors.push(`could not tag ${entry.dataKey} as ${decision.tier}: ${(error as Error).message}`);
      }
    }
  }
  for (const error of errors) logger.error('retention error', { database, error });

  const failedKeys = new Set(errors.flatMap((error) => /^could not delete (\S+):/.exec(error)?.[1] ?? []));
  // A dry run deleted nothing; what it would delete is `deletions`.
  const done = options.dryRun ? [] : deletions.filter((deletion) => !deletion.keys.some((key) => failedKeys.has(key)));
  return {
    database,
    dryRun: options.dryRun,
    decisions,
    deletions,
    kept: decisions.filter((decision) => decision.action === 'keep').length,
    deleted: done.length,
    deletedBytes: done.reduce((total, deletion) => total + deletion.bytes, 0),
    tiersTagged,
    errors,
    keptUnreadable,
    keptAwaitingOffsite: decisions.filter((decision) => decision.awaitingOffsite).length,
  };
}

/** Larger than any manifest pgkeep writes (verify-backup uses the same bound). */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * Why this version cannot read a manifest (malformed, not JSON, of a newer schema, absurdly
 * large), in the reader's own words; undefined when it reads. A failure to fetch it is no answer
 * and propagates: the database's run stops, nothing is deleted on partial knowledge.
 */
async function whyUnreadable(s3: S3Client, bucket: string, manifestKey: string): Promise<string | undefined> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }));
  if ((object.ContentLength ?? 0) > MAX_MANIFEST_BYTES) {
    (object.Body as { destroy?: () => void } | undefined)?.destroy?.();
    return `${manifestKey} is ${object.ContentLength} bytes, far larger than any manifest pgkeep writes`;
  }
  try {
    parseManifest(await object.Body!.transformToString(), manifestKey);
    return undefined;
  } catch (error) {
    if (error instanceof ManifestError) return error.message;
    throw error;
  }
}

/** The manifest first: if the request is cut short, what remains is data without a manifest,
 * which nothing mistakes for a backup and the next run removes, never a manifest promising data
 * that is gone. S3 applies one DeleteObjects request's keys independently, hence the check. */
function keysOf(entry: CatalogEntry): string[] {
  return [entry.manifestKey, entry.dataKey, ...entry.siblingKeys].filter((key): key is string => key !== undefined);
}

async function deleteTogether(s3: S3Client, bucket: string, deletion: PlannedDeletion): Promise<string[]> {
  try {
    const response = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: deletion.keys.map((Key) => ({ Key })), Quiet: true } }));
    return (response.Errors ?? []).map((error) => `could not delete ${error.Key}: ${error.Code} ${error.Message}`);
  } catch (error) {
    return deletion.keys.map((key) => `could not delete ${key}: ${(error as Error).message}`);
  }
}

async function retainUntilOf(s3: S3Client, bucket: string, key: string): Promise<Date | undefined> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return head.ObjectLockRetainUntilDate;
}

function incompleteReason(entry: CatalogEntry, graceHours: number): string {
  switch (entry.state) {
    case 'data-only':
      return `data object without a manifest for over ${graceHours} h: a backup that failed after its upload completed, never a backup`;
    case 'manifest-only':
      return `manifest whose data object is gone, for over ${graceHours} h: not restorable`;
    default:
      return `objects of a backup whose data and manifest are gone, for over ${graceHours} h`;
  }
}
