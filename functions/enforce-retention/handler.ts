import { Logger } from '@aws-lambda-powertools/logger';
import { S3Client } from '@aws-sdk/client-s3';
import { METRIC } from '../../catalog/metrics.ts';
import { cloudWatchSink, metricData, type MetricsSink } from '../../runtime/metrics.ts';
import { catalogScope, numberSetting, requiredSetting } from '../shared/settings.ts';
import { enforceRetention, type RetentionRunResult } from './enforce.ts';
import { validatePolicy, type RetentionPolicy } from '../../catalog/retention-policy.ts';

/**
 * enforce-retention: scheduled daily. Settings (set by the stack): PGKEEP_BUCKET,
 * PGKEEP_ENVIRONMENT, PGKEEP_DATABASES (JSON array), PGKEEP_RETENTION_POLICY (JSON: daily,
 * weekly, monthly, yearly, timezone, minVerified, unverifiedGraceHours), PGKEEP_RETENTION_DRY_RUN
 * (true|false), PGKEEP_OBJECT_LOCK (true|false), PGKEEP_INCOMPLETE_GRACE_HOURS (default 48).
 */
export interface RetentionDependencies {
  s3: S3Client;
  metrics: MetricsSink;
  logger: Logger;
  bucket: string;
  environment: string;
  databases: string[];
  policy: RetentionPolicy;
  dryRun: boolean;
  objectLock: boolean;
  incompleteGraceHours: number;
  now?: () => Date;
}

/** One database's failure (e.g. a tag that cannot be read) stops only that database's run. */
export async function runRetention(dependencies: RetentionDependencies): Promise<(RetentionRunResult | { database: string; error: string })[]> {
  const now = dependencies.now?.() ?? new Date();
  const results: (RetentionRunResult | { database: string; error: string })[] = [];
  for (const database of dependencies.databases) {
    const scope = { environment: dependencies.environment, database };
    let outcome: RetentionRunResult | { database: string; error: string };
    try {
      outcome = await enforceRetention({ ...dependencies, database, now });
      dependencies.logger.info(outcome.dryRun ? 'retention dry run' : 'retention enforced', { database, kept: outcome.kept, deleted: outcome.deleted, wouldDelete: outcome.dryRun ? outcome.deletions.length : undefined, deletedBytes: outcome.deletedBytes, tiersTagged: outcome.tiersTagged, errors: outcome.errors.length, keptUnreadable: outcome.keptUnreadable.length });
    } catch (error) {
      outcome = { database, error: (error as Error).message };
      dependencies.logger.error('retention skipped for this database: nothing was deleted', { database, error: outcome.error });
    }
    results.push(outcome);
    // Publishing is separate, so its failure neither misreports what happened nor stops the
    // databases after this one.
    const values =
      'error' in outcome
        ? [{ name: METRIC.retentionErrors, value: 1, unit: 'Count' as const }]
        : [
            { name: METRIC.retentionKept, value: outcome.kept, unit: 'Count' as const },
            { name: METRIC.retentionDeleted, value: outcome.deleted, unit: 'Count' as const },
            { name: METRIC.retentionDeletedBytes, value: outcome.deletedBytes, unit: 'Bytes' as const },
            { name: METRIC.retentionErrors, value: outcome.errors.length, unit: 'Count' as const },
          ];
    await dependencies.metrics.publish(metricData(scope, values, now)).catch((error: unknown) => {
      dependencies.logger.warn('could not publish retention metrics', { database, error: (error as Error).message });
    });
  }
  return results;
}

export function parsePolicy(raw: string): RetentionPolicy {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('PGKEEP_RETENTION_POLICY is not JSON: expected an object such as {"daily":7,"weekly":4,"monthly":12,"yearly":3,"timezone":"UTC","minVerified":3,"unverifiedGraceHours":24}.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('PGKEEP_RETENTION_POLICY must be a JSON object with daily, weekly, monthly, yearly, timezone, minVerified and unverifiedGraceHours.');
  }
  const policy = parsed as RetentionPolicy;
  validatePolicy(policy);
  return policy;
}

function booleanSetting(name: string): boolean {
  const raw = process.env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new Error(`${name}="${raw}" is invalid: expected true or false.`);
}

const logger = new Logger({ serviceName: 'pgkeep-enforce-retention' });

export const handler = async (): Promise<{ databases: number; deleted: number; errors: number; dryRun: boolean }> => {
  const dryRun = booleanSetting('PGKEEP_RETENTION_DRY_RUN');
  const results = await runRetention({
    s3: new S3Client({}),
    metrics: cloudWatchSink(),
    logger,
    ...catalogScope(process.env),
    policy: parsePolicy(requiredSetting(process.env, 'PGKEEP_RETENTION_POLICY', 'the retention policy as JSON')),
    dryRun,
    objectLock: booleanSetting('PGKEEP_OBJECT_LOCK'),
    incompleteGraceHours: numberSetting(process.env, 'PGKEEP_INCOMPLETE_GRACE_HOURS', 48),
  });
  return {
    databases: results.length,
    deleted: results.reduce((total, result) => total + ('deleted' in result ? result.deleted : 0), 0),
    errors: results.reduce((total, result) => total + ('errors' in result ? result.errors.length : 1), 0),
    dryRun,
  };
};
