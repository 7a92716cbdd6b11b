/**
 * The pgkeep container's entry point: `main.mjs <command>`, with `backup` as the default.
 *
 *   backup   stream pg_dump into S3 (configured by PG* and PGKEEP_* variables)
 *   restore  restore a backup into a new (or, confirmed, an existing) database
 *   drill    restore each database's newest verified backup into a throwaway cluster and compare
 *
 * It ends with one of the exit codes in catalog/exit-codes.ts, which says what each means and what
 * to do; the infrastructure's stop notifications match the same table.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EXIT } from '../catalog/exit-codes.ts';
import { METRIC } from '../catalog/metrics.ts';
import { cloudWatchSink, metricData, type MetricValue, type MetricsSink } from '../runtime/metrics.ts';
import { runBackup } from './backup.ts';
import { failureMetrics, publishBackupMetrics, successMetrics } from './backup-metrics.ts';
import { loadBackupConfig, type BackupConfig } from './config.ts';
import { loadDrillConfig, runDrill } from './drill.ts';
import { BackupFailure, redactSecrets } from './errors.ts';
import { createTaskLogger } from './logger.ts';
import { ArchivedBackupError, resolveBackup, restoreBackup, type RestoreResult } from './restore.ts';
import { loadRestoreConfig } from './restore-config.ts';
import { createS3Client } from './s3.ts';

interface CommandContext {
  logger: Logger;
  signal: AbortSignal;
}

const COMMANDS: Record<string, (context: CommandContext) => Promise<number>> = {
  backup: backupCommand,
  restore: restoreCommand,
  drill: drillCommand,
};

async function backupCommand({ logger, signal }: CommandContext): Promise<number> {
  let config: BackupConfig | undefined;
  try {
    config = loadBackupConfig(process.env);
    logger.appendKeys({ database: config.catalogDatabase, environment: config.environment });
    const result = await runBackup(config, { s3: createS3Client(config.s3, { requestTimeoutMs: config.s3RequestTimeoutMs }), logger, signal });
    await publishBackupMetrics(config, successMetrics(result.manifest, result.durationMs), logger, backupMetricsSink());
    const { object, dump } = result.manifest;
    logger.info('backup completed', {
      backupId: result.manifest.backupId,
      bucket: config.s3.bucket,
      key: object.key,
      manifestKey: result.manifestKey,
      bytes: object.bytes,
      uncompressedBytes: dump.uncompressedBytes,
      compressionRatio: dump.uncompressedBytes !== null && object.bytes > 0 ? Number((dump.uncompressedBytes / object.bytes).toFixed(2)) : null,
      sha256: object.sha256,
      crc64nvme: object.crc64nvme,
      partCount: object.partCount,
      tables: result.manifest.tables.length,
      durationMs: result.durationMs,
      throughputMBps: dump.uncompressedBytes === null ? null : Number((dump.uncompressedBytes / 1e6 / Math.max(result.durationMs / 1000, 0.001)).toFixed(1)),
    });
    return EXIT.ok;
  } catch (error) {
    if (config) await publishBackupMetrics(config, failureMetrics, logger, backupMetricsSink());
    return reportFailure(logger, 'backup', error, signal);
  }
}

/**
 * The failure metric is published after cleanup, often within ECS's stopTimeout after SIGTERM and
 * on a network that may be what failed: so it gets a short deadline (2 attempts of 5 s), not the
 * SDK's default of none.
 */
function backupMetricsSink(): MetricsSink {
  return cloudWatchSink(
    new CloudWatchClient({
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 5_000, throwOnRequestTimeout: true, socketTimeout: 5_000 },
    }),
  );
}

async function restoreCommand({ logger, signal }: CommandContext): Promise<number> {
  let publish: (values: MetricValue[]) => Promise<void> = () => Promise.resolve();
  try {
    const config = loadRestoreConfig(process.env);
    logger.appendKeys({ database: config.sourceDatabase, environment: config.environment });
    publish = (values) =>
      config.metrics === 'off'
        ? Promise.resolve()
        : cloudWatchSink()
            .publish(metricData({ environment: config.environment, database: config.sourceDatabase }, values))
            .catch((error: unknown) => logger.warn('could not publish restore metrics', { error: (error as Error).message }));
    const s3 = createS3Client(config.s3);
    const resolved = await resolveBackup(s3, config.s3.bucket, config.sourceDatabase, config.selector, { forceUnverified: config.forceUnverified });
    const skipped = resolved.skipped ?? [];
    for (const skip of skipped) logger.warn('skipped a backup', { backupId: skip.backupId, reason: skip.reason, chosen: resolved.manifest.backupId });
    logger.info('backup chosen', {
      backupId: resolved.manifest.backupId,
      startedAt: resolved.manifest.startedAt,
      key: resolved.manifest.object.key,
      bytes: resolved.manifest.object.bytes,
      verification: resolved.verification?.status ?? 'none',
      ...(skipped.length > 0 ? { skipped: skipped.map((skip) => skip.backupId) } : {}),
    });
    const result = await restoreBackup(s3, config, resolved, logger, signal);
    const matched = result.comparison.mismatches.length === 0;
    await publish([
      { name: METRIC.restoreSucceeded, value: matched ? 1 : 0, unit: 'Count' },
      { name: METRIC.restoreDurationSeconds, value: result.restoreSeconds, unit: 'Seconds' },
      { name: METRIC.restoreMismatches, value: result.comparison.mismatches.length, unit: 'Count' },
      { name: METRIC.restoreTablesComparedWithEstimate, value: result.comparison.tablesComparedWithEstimate, unit: 'Count' },
      { name: METRIC.restoreTablesNotCompared, value: result.comparison.tablesNotCompared.length, unit: 'Count' },
    ]);
    (matched ? logger.info.bind(logger) : logger.error.bind(logger))(matched ? 'restore completed' : 'restore completed with differences from the manifest', {
      backupId: resolved.manifest.backupId,
      targetDatabase: result.targetDatabase,
      createdTarget: result.createdTarget,
      restoreSeconds: Number(result.restoreSeconds.toFixed(3)),
      sha256: result.sha256,
      tablesCompared: result.comparison.tablesCompared,
      tablesComparedWithEstimate: result.comparison.tablesComparedWithEstimate,
      tablesNotCompared: result.comparison.tablesNotCompared,
      mismatches: result.comparison.mismatches,
      ...(result.replacement ? { replaced: result.replacement.swapped } : {}),
      ...(matched ? {} : { remedy: differencesRemedy(result) }),
    });
    return matched ? EXIT.ok : EXIT.restoredWithDifferences;
  } catch (error) {
    if (!(error instanceof ArchivedBackupError)) await publish([{ name: METRIC.restoreFailed, value: 1, unit: 'Count' }]);
    return reportFailure(logger, 'restore', error, signal);
  }
}

function differencesRemedy(result: RestoreResult): string {
  if (result.replacement && !result.replacement.swapped) {
    return `"${result.replacement.target}" was not replaced: it is unchanged. The restored copy, "${result.targetDatabase}", does not match the backup's manifest: check each difference above there, then drop it (DROP DATABASE "${result.targetDatabase}").`;
  }
  return "The restored database does not match the backup's manifest: do not put it into service before checking each difference above.";
}

async function drillCommand({ logger, signal }: CommandContext): Promise<number> {
  try {
    const config = loadDrillConfig(process.env);
    logger.appendKeys({ environment: config.environment });
    const s3 = createS3Client(config.s3);
    const recordS3 = config.recordS3.region === config.s3.region ? s3 : createS3Client(config.recordS3);
    const outcomes = await runDrill(config, { s3, recordS3, logger, signal });
    if (config.metrics === 'cloudwatch') {
      const sink = cloudWatchSink();
      for (const outcome of outcomes) {
        const values: MetricValue[] = [
          { name: outcome.ok ? METRIC.drillSucceeded : METRIC.drillFailed, value: 1, unit: 'Count' },
          { name: METRIC.drillMismatches, value: outcome.mismatches.length, unit: 'Count' },
          { name: METRIC.drillTablesComparedWithEstimate, value: outcome.tablesComparedWithEstimate, unit: 'Count' },
          { name: METRIC.drillTablesNotCompared, value: outcome.tablesNotCompared.length, unit: 'Count' },
          ...(outcome.restoreSeconds !== undefined ? [{ name: METRIC.drillRestoreSeconds, value: outcome.restoreSeconds, unit: 'Seconds' as const }] : []),
        ];
        await sink
          .publish(metricData({ environment: config.environment, database: outcome.database }, values))
          .catch((error: unknown) => logger.warn('could not publish drill metrics', { error: (error as Error).message }));
      }
    }
    logger.info('drill finished', {
      databases: outcomes.length,
      passed: outcomes.filter((outcome) => outcome.ok).map((outcome) => outcome.database),
      failed: outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.database),
    });
    return outcomes.every((outcome) => outcome.ok) ? EXIT.ok : EXIT.failed;
  } catch (error) {
    return reportFailure(logger, 'drill', error, signal);
  }
}

function reportFailure(logger: Logger, command: string, error: unknown, signal: AbortSignal): number {
  if (error instanceof BackupFailure) {
    logger.error(`${command} failed`, { stage: error.stage, error: redactSecrets(error.message), remedy: error.remedy });
    if (error.stage === 'configuration' || error.stage === 'refused') return EXIT.misconfigured;
    if (error.stage === 'archived') return EXIT.archived;
    if (error.stage === 'interrupted') return EXIT.interrupted;
    return EXIT.failed;
  }
  logger.error(`${command} failed`, {
    stage: 'unexpected',
    error: redactSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error)),
    remedy: `This is a pgkeep bug or an unanticipated condition; nothing half-done was kept. Run the ${command} again and report the log.`,
  });
  return signal.aborted ? EXIT.interrupted : EXIT.failed;
}

async function main(argv: readonly string[]): Promise<number> {
  const commandName = argv[0] ?? 'backup';
  const logger = createTaskLogger(commandName);
  routeProcessWarningsTo(logger);
  const command = COMMANDS[commandName];
  if (!command) {
    logger.error('unknown command', { command: commandName, remedy: `Run one of: ${Object.keys(COMMANDS).join(', ')}.` });
    return EXIT.misconfigured;
  }

  const stop = new AbortController();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // A second signal means "now": the first one is already cleaning up.
      process.exit(EXIT.interrupted);
    }
    signalled = true;
    logger.warn(`stop requested; aborting the ${commandName} and cleaning up`, { signal });
    stop.abort(new Error(`received ${signal}`));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return command({ logger, signal: stop.signal });
}

/** Node prints warnings as plain text on stderr; here they become structured log lines. */
function routeProcessWarningsTo(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => logger.warn('runtime warning', { warning: warning.message.split('\n')[0] }));
}

process.exit(await main(process.argv.slice(2)));
