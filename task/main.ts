/**
 * The pgkeep container's entry point: `main.js <command>`; `backup` is the default command.
 *
 * Exit codes: 0 done; 1 failed (the log says what and what to do); 2 misconfigured (nothing was
 * touched); 143 stopped by SIGTERM (cleaned up, nothing kept).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { runBackup } from './backup.ts';
import { failureMetrics, publishBackupMetrics, successMetrics } from './backup-metrics.ts';
import { loadBackupConfig, type BackupConfig } from './config.ts';
import { BackupFailure, redactSecrets } from './errors.ts';
import { createTaskLogger } from './logger.ts';
import { createS3Client } from './s3.ts';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_MISCONFIGURED = 2;
export const EXIT_INTERRUPTED = 143;

const COMMANDS = ['backup'] as const;

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] ?? 'backup';
  const logger = createTaskLogger(command);
  routeProcessWarningsTo(logger);
  if (!(COMMANDS as readonly string[]).includes(command)) {
    logger.error('unknown command', { command, remedy: `Run one of: ${COMMANDS.join(', ')}.` });
    return EXIT_MISCONFIGURED;
  }

  const stop = new AbortController();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // A second signal means "now": the first one is already cleaning up.
      process.exit(EXIT_INTERRUPTED);
    }
    signalled = true;
    logger.warn('stop requested; aborting the backup and cleaning up', { signal });
    stop.abort(new Error(`received ${signal}`));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let config: BackupConfig | undefined;
  try {
    config = loadBackupConfig(process.env);
    logger.appendKeys({ database: config.catalogDatabase, environment: config.environment });
    const result = await runBackup(config, { s3: createS3Client(config.s3), logger, signal: stop.signal });
    await publishBackupMetrics(config, successMetrics(result.manifest, result.durationMs), logger);
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
    return EXIT_OK;
  } catch (error) {
    if (config) await publishBackupMetrics(config, failureMetrics, logger);
    if (error instanceof BackupFailure) {
      logger.error('backup failed', { stage: error.stage, error: redactSecrets(error.message), remedy: error.remedy });
      if (error.stage === 'configuration') return EXIT_MISCONFIGURED;
      if (error.stage === 'interrupted') return EXIT_INTERRUPTED;
      return EXIT_FAILED;
    }
    logger.error('backup failed', {
      stage: 'unexpected',
      error: redactSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error)),
      remedy: 'This is a pgkeep bug or an unanticipated condition; nothing was kept (no manifest). Run the backup again and report the log.',
    });
    return signalled ? EXIT_INTERRUPTED : EXIT_FAILED;
  }
}

/** Node prints warnings as plain text on stderr; here they become structured log lines. */
function routeProcessWarningsTo(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => logger.warn('runtime warning', { warning: warning.message.split('\n')[0] }));
}

process.exit(await main(process.argv.slice(2)));
