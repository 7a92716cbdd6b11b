import { Logger } from '@aws-lambda-powertools/logger';
import { S3Client } from '@aws-sdk/client-s3';
import { METRIC } from '../../catalog/metrics.ts';
import { cloudWatchSink, metricData, type MetricsSink } from '../../runtime/metrics.ts';
import { functionSettings } from '../../catalog/function-settings.ts';
import { enforceRetention, type RetentionRunResult } from './enforce.ts';
import type { RetentionPolicy } from '../../catalog/retention-policy.ts';
import { vaultS3Client, type VaultReader } from '../../runtime/vault.ts';

/**
 * enforce-retention: scheduled daily. Its settings, and their defaults, are
 * functionSettings.enforceRetention (catalog/function-settings.ts); the stack sets them.
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
  /** Set when PGKEEP_RETENTION_REQUIRE_OFFSITE is on and a vault is configured: nothing is
   * deleted before its off-site copy is verified. */
  offsite?: VaultReader;
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
      dependencies.logger.info(outcome.dryRun ? 'retention dry run' : 'retention enforced', {
        database,
        kept: outcome.kept,
        deleted: outcome.deleted,
        wouldDelete: outcome.dryRun ? outcome.deletions.length : undefined,
        deletedBytes: outcome.deletedBytes,
        tiersTagged: outcome.tiersTagged,
        errors: outcome.errors.length,
        keptUnreadable: outcome.keptUnreadable.length,
        keptAwaitingOffsite: dependencies.offsite ? outcome.keptAwaitingOffsite : undefined,
      });
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
            ...(dependencies.offsite ? [{ name: METRIC.retentionKeptAwaitingOffsite, value: outcome.keptAwaitingOffsite, unit: 'Count' as const }] : []),
          ];
    await dependencies.metrics.publish(metricData(scope, values, now)).catch((error: unknown) => {
      dependencies.logger.warn('could not publish retention metrics', { database, error: (error as Error).message });
    });
  }
  return results;
}

const logger = new Logger({ serviceName: 'pgkeep-enforce-retention' });

export const handler = async (): Promise<{ databases: number; deleted: number; errors: number; dryRun: boolean }> => {
  const settings = functionSettings.enforceRetention.parse(process.env);
  const dryRun = settings.PGKEEP_RETENTION_DRY_RUN;
  const results = await runRetention({
    s3: new S3Client({}),
    metrics: cloudWatchSink(),
    logger,
    bucket: settings.PGKEEP_BUCKET,
    environment: settings.PGKEEP_ENVIRONMENT,
    databases: settings.PGKEEP_DATABASES,
    policy: settings.PGKEEP_RETENTION_POLICY,
    dryRun,
    objectLock: settings.PGKEEP_OBJECT_LOCK,
    incompleteGraceHours: settings.PGKEEP_INCOMPLETE_GRACE_HOURS,
    // Require-offsite without a vault has nothing to wait for; the stack sets both or neither.
    ...(settings.PGKEEP_RETENTION_REQUIRE_OFFSITE && settings.PGKEEP_VAULT_BUCKET && settings.PGKEEP_VAULT_REGION
      ? { offsite: { s3: vaultS3Client(settings.PGKEEP_VAULT_REGION), bucket: settings.PGKEEP_VAULT_BUCKET } }
      : {}),
  });
  return {
    databases: results.length,
    deleted: results.reduce((total, result) => total + ('deleted' in result ? result.deleted : 0), 0),
    errors: results.reduce((total, result) => total + ('errors' in result ? result.errors.length : 1), 0),
    dryRun,
  };
};
