import type { S3Client } from '@aws-sdk/client-s3';
import { futureDatedByMs, listBackups } from '../../runtime/listing.ts';
import { METRIC } from '../../catalog/metrics.ts';
import type { MetricValue } from '../../runtime/metrics.ts';
import { readVerification } from '../../runtime/verification.ts';
import { readOffsiteCopy, type VaultReader } from '../../runtime/vault.ts';

/**
 * How one database's backups stand: the age and size of its newest *verified* backup, and that
 * size relative to the median of the verified backups before it (a sudden drop means a backup
 * that "succeeded" but is missing data). Unverified backups never count: a fresh backup that
 * failed verification must not hide the fact that the last good one is getting old. Nor do
 * future-dated ones (a start time ahead of S3's clock): they are counted apart, and alarmed on.
 */
export interface DatabaseHealth {
  database: string;
  /** Finished backups (manifest and data present). */
  backups: number;
  newestVerified: { backupId: string; startedAt: string; bytes: number } | undefined;
  ageSeconds: number | null;
  sizeBytes: number | null;
  /** null when there is no earlier verified backup to compare with. */
  sizeRatio: number | null;
  recentMedianBytes: number | null;
  /** Backups newer than the newest verified one: failed, unverifiable or not yet verified. */
  newerUnverified: number;
  /** Finished backups whose start time lies ahead of the S3 clock (futureDatedByMs), newest first.
   * None of them counts: not as the newest, not for the age, not in the size baseline. */
  futureDated: { backupId: string; aheadSeconds: number }[];
  /** With a vault: the newest backup whose replica the vault's verifier tagged verified, and its
   * age; both absent when there is none, or `offsiteUnreadable` says why the vault could not be read. */
  newestOffsiteVerified?: { backupId: string; startedAt: string } | undefined;
  offsiteAgeSeconds?: number | null;
  offsiteUnreadable?: string;
}

export interface AssessOptions {
  bucket: string;
  database: string;
  now: Date;
  /** How many earlier verified backups form the size baseline. */
  baselineCount: number;
  /** Upper bound on tag reads per database per run (cost bound for huge catalogs). */
  maxTagReads?: number;
  /** The vault, when the environment has one: its replicas' tags are read too. */
  vault?: VaultReader;
}

export async function assessDatabaseHealth(s3: S3Client, options: AssessOptions): Promise<DatabaseHealth> {
  const backups = await listBackups(s3, { bucket: options.bucket, database: options.database });
  // A task clock a year ahead makes a backup "the newest" and its age 0 for a year. Its start
  // time is a lie and its real age unknown, so it is judged by the listing alone (no tag read)
  // and then left out: the real backups say how fresh the database's backups are.
  const futureDated = backups
    .map((backup) => ({ backupId: backup.backupId, aheadMs: futureDatedByMs(backup, options.now) }))
    .filter((backup): backup is { backupId: string; aheadMs: number } => backup.aheadMs !== undefined)
    .map(({ backupId, aheadMs }) => ({ backupId, aheadSeconds: Math.round(aheadMs / 1000) }))
    .reverse();
  const skipped = new Set(futureDated.map((backup) => backup.backupId));
  const verified: { backupId: string; startedAt: Date; bytes: number }[] = [];
  let newerUnverified = 0;
  let tagReads = 0;
  for (let index = backups.length - 1; index >= 0 && verified.length <= options.baselineCount; index -= 1) {
    if (tagReads >= (options.maxTagReads ?? 200)) break;
    const backup = backups[index];
    if (!backup || skipped.has(backup.backupId)) continue;
    tagReads += 1;
    const verification = await readVerification(s3, options.bucket, backup.dataKey);
    if (verification?.status === 'verified') verified.push({ backupId: backup.backupId, startedAt: backup.startedAt, bytes: backup.dataBytes });
    else if (verified.length === 0) newerUnverified += 1;
  }

  const offsite = options.vault
    ? await newestOffsiteVerified(
        options.vault,
        backups.filter((backup) => !skipped.has(backup.backupId)),
        options,
      )
    : undefined;

  const [newest, ...earlier] = verified;
  const recentMedianBytes = earlier.length > 0 ? median(earlier.map((backup) => backup.bytes)) : null;
  return {
    database: options.database,
    backups: backups.length,
    newestVerified: newest ? { backupId: newest.backupId, startedAt: newest.startedAt.toISOString(), bytes: newest.bytes } : undefined,
    ageSeconds: newest ? Math.max(0, Math.round((options.now.getTime() - newest.startedAt.getTime()) / 1000)) : null,
    sizeBytes: newest ? newest.bytes : null,
    sizeRatio: newest && recentMedianBytes ? Number((newest.bytes / recentMedianBytes).toFixed(4)) : null,
    recentMedianBytes,
    newerUnverified,
    futureDated,
    ...(offsite
      ? {
          newestOffsiteVerified: offsite.newest ? { backupId: offsite.newest.backupId, startedAt: offsite.newest.startedAt.toISOString() } : undefined,
          offsiteAgeSeconds: offsite.newest ? Math.max(0, Math.round((options.now.getTime() - offsite.newest.startedAt.getTime()) / 1000)) : null,
          ...(offsite.unreadable !== undefined ? { offsiteUnreadable: offsite.unreadable } : {}),
        }
      : {}),
  };
}

/**
 * Newest first, one GetObjectTagging per replica, until one is verified, within the same bound on
 * tag reads as the primary's loop. The first read the vault cannot answer ends the search: the
 * vault is down or refuses, and an older replica would only report an age that is not the truth.
 */
async function newestOffsiteVerified(
  vault: VaultReader,
  oldestFirst: readonly { backupId: string; startedAt: Date; dataKey: string }[],
  options: AssessOptions,
): Promise<{ newest?: { backupId: string; startedAt: Date }; unreadable?: string }> {
  const limit = options.maxTagReads ?? 200;
  for (let index = oldestFirst.length - 1, reads = 0; index >= 0 && reads < limit; index -= 1, reads += 1) {
    const backup = oldestFirst[index]!;
    const copy = await readOffsiteCopy(vault, backup.dataKey);
    if (copy.state === 'verified') return { newest: backup };
    if (copy.state === 'unknown') return { unreadable: copy.detail ?? 'the vault could not be read' };
  }
  return {};
}

/**
 * The metrics for one database. A database with no verified backup publishes no age: its stale
 * alarm treats missing data as breaching, so "never backed up" and "health check not running"
 * both alarm, and no sentinel value can be mistaken for a real age.
 */
export function healthMetrics(health: DatabaseHealth): MetricValue[] {
  const values: MetricValue[] = [];
  if (health.ageSeconds !== null) values.push({ name: METRIC.newestVerifiedBackupAgeSeconds, value: health.ageSeconds, unit: 'Seconds' });
  if (health.sizeBytes !== null) values.push({ name: METRIC.newestVerifiedBackupBytes, value: health.sizeBytes, unit: 'Bytes' });
  // With a vault, like the age above: none when there is no verified replica or the vault cannot
  // be read, so the off-site stale alarm (missing data is breaching) fires.
  if (health.offsiteAgeSeconds !== undefined && health.offsiteAgeSeconds !== null)
    values.push({ name: METRIC.newestOffsiteVerifiedBackupAgeSeconds, value: health.offsiteAgeSeconds, unit: 'Seconds' });
  if (health.sizeRatio !== null) values.push({ name: METRIC.newestVerifiedBackupSizeRatio, value: health.sizeRatio, unit: 'None' });
  // Every run, 0 when there are none: the alarm stays in ALARM while one is in the catalog and
  // turns OK once it is gone, not merely because an hour passed.
  values.push({ name: METRIC.futureDatedBackups, value: health.futureDated.length, unit: 'Count' });
  return values;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}
