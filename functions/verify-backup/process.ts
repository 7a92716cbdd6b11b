import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
import { HeadObjectCommand, PutObjectRetentionCommand } from '@aws-sdk/client-s3';
import { backupObjectKeys, parseBackupKey } from '../../catalog/keys.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { metricData, type MetricsSink } from '../../runtime/metrics.ts';
import { NEWER_SCHEMA_STATUS, mergeTags, readVerification, verificationTags, type VerificationStatus } from '../../runtime/verification.ts';
import type { AlertSink } from '../shared/alerts.ts';
import { ManifestGoneError, verifyBackup, type VerificationReport } from './verify.ts';

export interface VerifyDependencies {
  s3: S3Client;
  metrics: MetricsSink;
  alerts: AlertSink;
  logger: Logger;
  environment: string;
  maxStreamBytes: number;
  now?: () => Date;
  /** primary (default): the task's backups. vault: their copies in the vault (docs/vault.md). */
  site?: 'primary' | 'vault';
  /** vault: every verified copy stays locked at least this many days from its arrival. */
  vaultLockDays?: number;
}

/**
 * duplicate: already verified (a repeated event). manifestGone: deleted before it could be checked.
 * awaitingData (vault only): the manifest's copy is there, its data object's not yet; the data
 * object's own event completes the check.
 */
export type ProcessedManifest = VerificationReport & { duplicate: boolean; manifestGone?: boolean; awaitingData?: boolean };

type MetricOf = Record<VerificationStatus, (typeof METRIC)[keyof typeof METRIC]>;
const STATUS_METRIC: Record<'primary' | 'vault', MetricOf> = {
  primary: {
    verified: METRIC.backupVerified,
    failed: METRIC.backupVerificationFailed,
    unverifiable: METRIC.backupUnverifiable,
    // Unverifiable for now, for a reason the alert names: the unverifiable alarm is the one whose
    // runbook covers it (upgrade the functions, re-verify), and it is no failure.
    'newer-schema': METRIC.backupUnverifiable,
  },
  vault: {
    verified: METRIC.offsiteVerified,
    failed: METRIC.offsiteVerificationFailed,
    unverifiable: METRIC.offsiteUnverifiable,
    'newer-schema': METRIC.offsiteUnverifiable,
  },
};

/**
 * Verifies the backup behind one new manifest and records the outcome: tags on the data object
 * (what retention and restore trust) and on the manifest, one metric, and an alert unless verified.
 *
 * Idempotent: S3 can deliver an event twice. The manifest's verification tag, written last, marks
 * the work done; a second delivery finds it and publishes nothing again. (A crash between the
 * metric and that tag can count once more on the retry: at least once, never silently zero.)
 * The exception is a "newer-schema" verdict: it is re-checked, so that re-delivering the event
 * after upgrading the stack gives the backup its real verdict.
 * A malformed manifest or a missing data object is a reported failure, not an error, so it never
 * turns into a Lambda retry loop.
 */
export async function processManifest(
  dependencies: VerifyDependencies,
  event: { bucket: string; manifestKey: string; deadline?: Date },
): Promise<ProcessedManifest> {
  const { s3, logger } = dependencies;
  const site = dependencies.site ?? 'primary';
  const now = dependencies.now ?? (() => new Date());
  const previous = await readVerification(s3, event.bucket, event.manifestKey).catch(() => undefined);
  // "Written by a newer pgkeep" was the verdict of a verifier that could not read the manifest;
  // this one may be able to (the stack was upgraded since), so it checks again.
  if (previous && previous.status !== NEWER_SCHEMA_STATUS) {
    logger.info('already verified; duplicate event ignored', { manifestKey: event.manifestKey, status: previous.status, verifiedAt: previous.verifiedAt });
    return { ...reportFromKey(event.manifestKey), status: previous.status, method: previous.method ?? 'none', duplicate: true };
  }

  let report: VerificationReport;
  try {
    report = await verifyBackup({
      s3,
      bucket: event.bucket,
      manifestKey: event.manifestKey,
      maxStreamBytes: dependencies.maxStreamBytes,
      ...(event.deadline ? { deadline: event.deadline } : {}),
      site,
    });
  } catch (error) {
    // Nothing claims a backup any more (deleted by hand or by retention): nothing to verify or
    // count, and retrying would only fail the same way.
    if (!(error instanceof ManifestGoneError)) throw error;
    logger.warn('manifest deleted before verification; nothing to verify', { manifestKey: event.manifestKey });
    return { ...reportFromKey(event.manifestKey), status: 'failed', problems: [error.message], duplicate: false, manifestGone: true };
  }
  // Replication copies each object by itself, and the small manifest usually lands before its
  // data: that is a copy still on its way, not a broken one. Nothing is recorded, so the data
  // object's own event (the vault verifier runs on both) checks it; a copy that never arrives is
  // the off-site stale alarm's and the replication-failed alarm's business.
  if (site === 'vault' && report.manifest && !report.dataObjectExists) {
    logger.info('copy of the manifest arrived before its data object; the data object will be checked when it arrives', {
      manifestKey: event.manifestKey,
      dataKey: report.dataKey,
    });
    return { ...report, duplicate: false, awaitingData: true };
  }
  const tags = verificationTags({ status: report.status, method: report.method, at: now() });
  if (report.dataObjectExists && report.dataKey) await mergeTags(s3, event.bucket, report.dataKey, tags);
  if (site === 'vault' && report.status === 'verified' && report.dataKey && dependencies.vaultLockDays) {
    for (const key of [report.dataKey, event.manifestKey]) await extendLock(s3, event.bucket, key, dependencies.vaultLockDays, logger);
  }

  const scope = { environment: dependencies.environment, database: report.database ?? 'unknown' };
  await dependencies.metrics.publish(metricData(scope, [{ name: STATUS_METRIC[site][report.status], value: 1, unit: 'Count' }], now()));
  if (report.status !== 'verified') await dependencies.alerts.notify(describeProblem(dependencies.environment, event.bucket, report, site));
  await mergeTags(s3, event.bucket, event.manifestKey, tags);

  const log = report.status === 'verified' ? logger.info.bind(logger) : logger.error.bind(logger);
  log(site === 'vault' ? `off-site copy ${report.status}` : `backup ${report.status}`, {
    manifestKey: report.manifestKey,
    dataKey: report.dataKey,
    database: report.database,
    backupId: report.backupId,
    method: report.method,
    problems: report.problems,
    remedy: report.remedy || undefined,
  });
  return { ...report, duplicate: false };
}

export function describeProblem(
  environment: string,
  bucket: string,
  report: VerificationReport,
  site: 'primary' | 'vault' = 'primary',
): { subject: string; message: string } {
  const what =
    report.status === 'failed'
      ? 'FAILED verification'
      : report.status === 'newer-schema'
        ? 'could not be verified: written by a newer pgkeep'
        : 'could not be verified';
  const subject = site === 'vault' ? 'off-site copy in the vault of a backup' : 'backup';
  return {
    subject: `pgkeep ${environment}: ${subject} of ${report.database ?? 'unknown database'} ${what}`,
    message: [
      `The ${subject} ${report.backupId ?? '(unknown id)'} of database "${report.database ?? 'unknown'}" in environment ${environment} ${what}.`,
      ...(site === 'vault'
        ? [
            '',
            'This is the copy S3 Replication made in the vault; the backup in the primary bucket is not affected. Until a copy is verified, retention in the primary keeps the backup.',
            'Replicate the backup again with S3 Batch Replication, or run a new backup (docs/operations.md#off-site-verification-failed).',
          ]
        : []),
      '',
      `Manifest: s3://${bucket}/${report.manifestKey}`,
      `Data object: ${report.dataKey ? `s3://${bucket}/${report.dataKey}` : '(none)'}`,
      `Check: ${report.method}`,
      '',
      report.status === 'failed' ? 'What did not match:' : 'Why:',
      ...report.problems.map((problem) => `  - ${problem}`),
      '',
      `What to do: ${report.remedy}`,
    ].join('\n'),
  };
}

/**
 * A copy of a source object under its own Object Lock arrives with the source's retention, which
 * overrides the vault's default ("copying of locked objects and their retention metadata",
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-replication).
 * Extending a retain-until date is allowed in either mode to anyone who may place a retention
 * (object-lock-overview.html#object-lock-retention-periods), so the copy's own mode is kept and its
 * date moved to its arrival plus the vault's days, never earlier than it is.
 */
async function extendLock(s3: VerifyDependencies['s3'], bucket: string, key: string, days: number, logger: Logger): Promise<void> {
  // HeadObject reports the lock to a caller with s3:GetObjectRetention (object-lock-managing.html#object-lock-managing-view).
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  const current = { Mode: head.ObjectLockMode, RetainUntilDate: head.ObjectLockRetainUntilDate };
  if (!head.LastModified || !current.Mode) {
    logger.warn('copy has no Object Lock retention to extend; the vault bucket has a default retention, so this should not happen', { key });
    return;
  }
  const wanted = new Date(head.LastModified.getTime() + days * 86_400_000);
  if (current.RetainUntilDate && current.RetainUntilDate.getTime() >= wanted.getTime()) return;
  await s3.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: key, Retention: { Mode: current.Mode, RetainUntilDate: wanted } }));
  logger.info('extended the copy’s lock to the vault’s', { key, mode: current.Mode, from: current.RetainUntilDate?.toISOString(), to: wanted.toISOString() });
}

/** What the key alone says about a backup (for a duplicate event, which is not re-checked). */
function reportFromKey(manifestKey: string): VerificationReport {
  const parsed = parseBackupKey(manifestKey);
  return {
    manifestKey,
    database: parsed?.database,
    backupId: parsed?.backupId,
    dataKey: parsed ? backupObjectKeys(parsed.database, parsed.backupId).dataKey : undefined,
    dataObjectExists: true,
    status: 'verified',
    method: 'none',
    problems: [],
    remedy: '',
    manifest: undefined,
  };
}
