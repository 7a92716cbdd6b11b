import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
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
}

/** duplicate: already verified (a repeated event). manifestGone: deleted before it could be checked. */
export type ProcessedManifest = VerificationReport & { duplicate: boolean; manifestGone?: boolean };

const STATUS_METRIC: Record<VerificationStatus, (typeof METRIC)[keyof typeof METRIC]> = {
  verified: METRIC.backupVerified,
  failed: METRIC.backupVerificationFailed,
  unverifiable: METRIC.backupUnverifiable,
  // Unverifiable for now, for a reason the alert names: the unverifiable alarm is the one whose
  // runbook covers it (upgrade the functions, re-verify), and it is no failure.
  'newer-schema': METRIC.backupUnverifiable,
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
    });
  } catch (error) {
    // Nothing claims a backup any more (deleted by hand or by retention): nothing to verify or
    // count, and retrying would only fail the same way.
    if (!(error instanceof ManifestGoneError)) throw error;
    logger.warn('manifest deleted before verification; nothing to verify', { manifestKey: event.manifestKey });
    return { ...reportFromKey(event.manifestKey), status: 'failed', problems: [error.message], duplicate: false, manifestGone: true };
  }
  const tags = verificationTags({ status: report.status, method: report.method, at: now() });
  if (report.dataObjectExists && report.dataKey) await mergeTags(s3, event.bucket, report.dataKey, tags);

  const scope = { environment: dependencies.environment, database: report.database ?? 'unknown' };
  await dependencies.metrics.publish(metricData(scope, [{ name: STATUS_METRIC[report.status], value: 1, unit: 'Count' }], now()));
  if (report.status !== 'verified') await dependencies.alerts.notify(describeProblem(dependencies.environment, event.bucket, report));
  await mergeTags(s3, event.bucket, event.manifestKey, tags);

  const log = report.status === 'verified' ? logger.info.bind(logger) : logger.error.bind(logger);
  log(`backup ${report.status}`, {
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

export function describeProblem(environment: string, bucket: string, report: VerificationReport): { subject: string; message: string } {
  const what =
    report.status === 'failed'
      ? 'FAILED verification'
      : report.status === 'newer-schema'
        ? 'could not be verified: written by a newer pgkeep'
        : 'could not be verified';
  return {
    subject: `pgkeep ${environment}: backup of ${report.database ?? 'unknown database'} ${what}`,
    message: [
      `The backup ${report.backupId ?? '(unknown id)'} of database "${report.database ?? 'unknown'}" in environment ${environment} ${what}.`,
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
