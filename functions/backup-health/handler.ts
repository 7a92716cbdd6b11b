import { Logger } from '@aws-lambda-powertools/logger';
import { S3Client } from '@aws-sdk/client-s3';
import { cloudWatchSink, metricData, type MetricsSink } from '../../runtime/metrics.ts';
import { functionSettings } from '../../catalog/function-settings.ts';
import { vaultS3Client, type VaultReader } from '../../runtime/vault.ts';
import { assessDatabaseHealth, healthMetrics, type DatabaseHealth } from './health.ts';

/**
 * backup-health: scheduled (hourly). Its settings, and their defaults, are
 * functionSettings.backupHealth (catalog/function-settings.ts); the stack sets them.
 */
export interface HealthDependencies {
  s3: S3Client;
  metrics: MetricsSink;
  logger: Logger;
  bucket: string;
  environment: string;
  databases: string[];
  baselineCount: number;
  /** The environment's vault, if it has one (PGKEEP_VAULT_BUCKET and PGKEEP_VAULT_REGION). */
  vault?: VaultReader;
  now?: () => Date;
}

export async function checkHealth(dependencies: HealthDependencies): Promise<DatabaseHealth[]> {
  const now = dependencies.now?.() ?? new Date();
  const results: DatabaseHealth[] = [];
  for (const database of dependencies.databases) {
    const health = await assessDatabaseHealth(dependencies.s3, {
      bucket: dependencies.bucket,
      database,
      now,
      baselineCount: dependencies.baselineCount,
      ...(dependencies.vault ? { vault: dependencies.vault } : {}),
    });
    await dependencies.metrics.publish(metricData({ environment: dependencies.environment, database }, healthMetrics(health), now));
    if (health.futureDated.length > 0) {
      dependencies.logger.error(
        `backup-health: ${health.futureDated.length} backup(s) of ${database} claim a start time ahead of S3's clock, so their age is unknown and none counts as fresh. Fix the backup task's clock (NTP), then follow docs/operations.md#backup-future-dated.`,
        { database, futureDated: health.futureDated },
      );
    }
    if (dependencies.vault && !health.newestOffsiteVerified) {
      dependencies.logger.warn(
        health.offsiteUnreadable !== undefined
          ? 'the vault could not be read: no off-site age is published, so the off-site stale alarm fires (missing data counts as breaching)'
          : 'no backup has a verified copy in the vault: no off-site age is published, so the off-site stale alarm fires (missing data counts as breaching)',
        { database, vaultBucket: dependencies.vault.bucket, error: health.offsiteUnreadable },
      );
    }
    if (health.newestVerified) dependencies.logger.info('backup health', { ...health });
    else dependencies.logger.warn('no verified backup: the stale alarm fires (missing data counts as breaching)', { ...health });
    results.push(health);
  }
  return results;
}

const logger = new Logger({ serviceName: 'pgkeep-backup-health' });

export const handler = async (): Promise<{ databases: number; withoutVerifiedBackup: string[] }> => {
  const settings = functionSettings.backupHealth.parse(process.env);
  const results = await checkHealth({
    s3: new S3Client({}),
    metrics: cloudWatchSink(),
    logger,
    bucket: settings.PGKEEP_BUCKET,
    environment: settings.PGKEEP_ENVIRONMENT,
    databases: settings.PGKEEP_DATABASES,
    baselineCount: settings.PGKEEP_HEALTH_BASELINE_COUNT,
    ...(settings.PGKEEP_VAULT_BUCKET && settings.PGKEEP_VAULT_REGION
      ? { vault: { s3: vaultS3Client(settings.PGKEEP_VAULT_REGION), bucket: settings.PGKEEP_VAULT_BUCKET } }
      : {}),
  });
  return { databases: results.length, withoutVerifiedBackup: results.filter((result) => !result.newestVerified).map((result) => result.database) };
};
