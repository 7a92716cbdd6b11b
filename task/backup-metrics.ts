import type { Logger } from '@aws-lambda-powertools/logger';
import type { Manifest } from '../catalog/manifest.ts';
import { METRIC } from '../catalog/metrics.ts';
import { cloudWatchSink, metricData, type MetricValue, type MetricsSink } from '../runtime/metrics.ts';
import type { BackupConfig } from './config.ts';
import { redactSecrets } from './errors.ts';

export function successMetrics(manifest: Manifest, durationMs: number): MetricValue[] {
  const seconds = Math.max(durationMs / 1000, 0.001);
  const values: MetricValue[] = [
    { name: METRIC.backupSucceeded, value: 1, unit: 'Count' },
    { name: METRIC.backupBytes, value: manifest.object.bytes, unit: 'Bytes' },
    { name: METRIC.backupDurationSeconds, value: Number(seconds.toFixed(3)), unit: 'Seconds' },
  ];
  const uncompressed = manifest.dump.uncompressedBytes;
  if (uncompressed !== null) {
    values.push({ name: METRIC.backupThroughputMBps, value: Number((uncompressed / 1e6 / seconds).toFixed(2)), unit: 'None' });
    if (manifest.object.bytes > 0)
      values.push({ name: METRIC.backupCompressionRatio, value: Number((uncompressed / manifest.object.bytes).toFixed(3)), unit: 'None' });
  }
  return values;
}

export const failureMetrics: MetricValue[] = [{ name: METRIC.backupFailed, value: 1, unit: 'Count' }];

/** Publishing metrics must never change a backup's outcome: a failure to publish is a warning. */
export async function publishBackupMetrics(config: BackupConfig, values: MetricValue[], logger: Logger, sink?: MetricsSink): Promise<void> {
  if (config.metrics === 'off') return;
  try {
    await (sink ?? cloudWatchSink()).publish(metricData({ environment: config.environment, database: config.catalogDatabase }, values));
  } catch (error) {
    logger.warn('could not publish backup metrics to CloudWatch; the backup outcome stands', {
      error: redactSecrets((error as Error).message),
      remedy: 'Allow the task role cloudwatch:PutMetricData for namespace pgkeep, or set PGKEEP_METRICS=off.',
    });
  }
}
