import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
import { backupObjectKeys, newBackupId } from '../catalog/keys.ts';
import { MANIFEST_SCHEMA_VERSION, serializeManifest, type Manifest, type TableStats } from '../catalog/manifest.ts';
import { libpqEnvironment, type BackupConfig } from './config.ts';
import { startDumpPipeline, type DumpPipelineExit, type ProcessExit } from './dump-pipeline.ts';
import { BackupFailure, redactSecrets } from './errors.ts';
import { StreamingMultipartUpload, UploadIntegrityError } from './multipart-upload.ts';
import { findPgBinaries, pickPgDumpForServer, probePgBinaryAt, type PgBinary } from './postgres-binaries.ts';
import { explainS3Error, putJsonObject, reachesS3OverTls } from './s3.ts';
import { collectTableStats, connectToSource, describeServer, exportSnapshot, type ServerDescription } from './source-database.ts';
import { PGKEEP_VERSION } from './version.ts';

export interface BackupDependencies {
  s3: S3Client;
  logger: Logger;
  /** Aborted when the task must stop (SIGTERM): the backup is abandoned and cleaned up. */
  signal: AbortSignal;
  now?: () => Date;
}

export interface BackupResult {
  manifest: Manifest;
  manifestKey: string;
  durationMs: number;
}

const APPLICATION_NAME = 'pgkeep-backup';

/**
 * One backup: a consistent snapshot of the database, streamed through zstd into a multipart
 * upload, then — only once S3 holds exactly the bytes sent — its manifest. On any failure the
 * upload is aborted and no manifest is written, so nothing half-done ever looks like a backup.
 */
export async function runBackup(config: BackupConfig, dependencies: BackupDependencies): Promise<BackupResult> {
  const { s3, logger, signal } = dependencies;
  const now = dependencies.now ?? (() => new Date());
  const startedAt = now();
  const backupId = newBackupId(startedAt);
  const { dataKey, manifestKey } = backupObjectKeys(config.catalogDatabase, backupId);
  throwIfInterrupted(signal);

  const client = await connectToSource(config.connection, APPLICATION_NAME);
  let upload: StreamingMultipartUpload | undefined;
  let killPipeline: (() => void) | undefined;
  try {
    const server = await describeServer(client);
    const pgDump = await choosePgDump(config, server);
    logger.info('connected', { serverVersion: server.serverVersion, inRecovery: server.inRecovery, pgDump: pgDump.path, pgDumpVersion: pgDump.version });

    const snapshotId = await exportSnapshot(client).catch((error: unknown) => {
      throw new BackupFailure('snapshot', `Could not export a snapshot: ${redactSecrets((error as Error).message)}`, 'The backup user needs a normal (not replication-only) connection; on a standby, pg_export_snapshot needs PostgreSQL 10 or newer.', { cause: error });
    });
    throwIfInterrupted(signal);

    // The upload is created before pg_dump starts, so a denied or missing bucket fails fast,
    // before the database has been read at all.
    upload = await StreamingMultipartUpload.create(
      s3,
      { bucket: config.s3.bucket, key: dataKey, checksum: config.s3.checksum, kmsKeyId: config.s3.kmsKeyId, contentType: 'application/zstd' },
      {
        initialPartSizeBytes: config.upload.initialPartSizeBytes,
        maxPartsInFlight: config.upload.maxPartsInFlight,
        skipPayloadSigningOverTls: reachesS3OverTls(config.s3.endpoint),
        signal,
      },
    ).catch((error: unknown) => {
      throw explainS3Error(error, 'upload', config.s3.bucket, dataKey);
    });
    logger.info('upload started', { key: dataKey, bucket: config.s3.bucket });

    const pipeline = startDumpPipeline({
      pgDumpPath: pgDump.path,
      libpqEnvironment: libpqEnvironment(config.connection, APPLICATION_NAME),
      snapshotId,
      lockWaitTimeoutSeconds: config.lockWaitTimeoutSeconds,
      compressionLevel: config.compression.level,
      compressionThreads: config.compression.threads,
    });
    killPipeline = () => pipeline.kill('SIGKILL');
    const stopOnSignal = (): void => pipeline.kill('SIGTERM');
    signal.addEventListener('abort', stopOnSignal, { once: true });

    // Counted inside the exported snapshot while pg_dump streams from it.
    const tableStats: Promise<TableStats[] | BackupFailure> = collectTableStats(client, config.exactCountMaxBytes).catch(
      (error: unknown) => new BackupFailure('snapshot', `Counting rows failed: ${redactSecrets((error as Error).message)}`, 'Grant the backup user SELECT on every table it backs up (on RDS, the pg_read_all_data role).', { cause: error }),
    );

    const progress = setInterval(() => {
      logger.info('backup progress', {
        dumpedBytes: pipeline.uncompressedBytesSoFar(),
        uploadedBytes: upload?.uploadedBytes,
        elapsedSeconds: Math.round((now().getTime() - startedAt.getTime()) / 1000),
      });
    }, config.progressIntervalMs);
    let exit: DumpPipelineExit;
    try {
      try {
        for await (const chunk of pipeline.output) await upload.write(chunk as Buffer);
      } catch (error) {
        pipeline.kill('SIGKILL');
        await pipeline.exited;
        throwIfInterrupted(signal);
        throw explainS3Error(error, 'upload', config.s3.bucket, dataKey);
      }
      exit = await pipeline.exited;
    } finally {
      clearInterval(progress);
      signal.removeEventListener('abort', stopOnSignal);
    }
    throwIfInterrupted(signal);
    throwIfPipelineFailed(exit, pgDump);
    const tables = await tableStats;
    if (tables instanceof BackupFailure) throw tables;
    await client.query('COMMIT');

    const uploaded = await upload.complete().catch((error: unknown) => {
      throwIfInterrupted(signal);
      if (error instanceof UploadIntegrityError) throw new BackupFailure('upload', error.message, 'The upload was aborted and no manifest was written. Run the backup again; if it repeats, the S3-compatible store is not assembling multipart uploads correctly.', { cause: error });
      throw explainS3Error(error, 'upload', config.s3.bucket, dataKey);
    });
    upload = undefined; // completed: nothing to abort any more

    const manifest: Manifest = {
      schemaVersion: MANIFEST_SCHEMA_VERSION,
      backupId,
      database: config.catalogDatabase,
      environment: config.environment,
      startedAt: startedAt.toISOString(),
      finishedAt: now().toISOString(),
      pgkeepVersion: PGKEEP_VERSION,
      source: {
        host: config.connection.host,
        port: config.connection.port,
        databaseName: config.connection.database,
        serverVersion: server.serverVersion,
        serverVersionNum: server.serverVersionNum,
        inRecovery: server.inRecovery,
      },
      dump: { tool: 'pg_dump', version: pgDump.version, major: pgDump.major, format: 'custom', snapshotId, uncompressedBytes: exit.uncompressedBytes ?? null },
      compression: { algorithm: 'zstd', level: config.compression.level, threads: config.compression.threads },
      encryption: uploaded.encryption,
      object: {
        key: uploaded.key,
        bytes: uploaded.bytes,
        sha256: uploaded.sha256,
        crc64nvme: uploaded.crc64nvme,
        partCount: uploaded.partCount,
        s3ChecksumEnforced: uploaded.s3ChecksumEnforced,
        ...(uploaded.etag ? { etag: uploaded.etag } : {}),
        ...(uploaded.versionId ? { versionId: uploaded.versionId } : {}),
      },
      tables,
    };
    await writeManifest(s3, config, manifestKey, manifest);
    return { manifest, manifestKey, durationMs: Date.parse(manifest.finishedAt) - startedAt.getTime() };
  } catch (error) {
    killPipeline?.();
    if (upload) {
      const uploadId = upload.uploadId;
      const outcome = await upload.abort((attempt, abortError) =>
        logger.warn('could not abort the multipart upload yet; retrying', { key: dataKey, uploadId, attempt, error: redactSecrets(abortError.message) }),
      );
      if (outcome.aborted) logger.info('multipart upload aborted', { key: dataKey, uploadId: upload.uploadId, attempts: outcome.attempts });
      else logger.warn('could not abort the multipart upload; the bucket lifecycle rule removes incomplete uploads after 1 day', { key: dataKey, uploadId: upload.uploadId, error: redactSecrets(outcome.error.message) });
    }
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function choosePgDump(config: BackupConfig, server: ServerDescription): Promise<PgBinary> {
  if (config.pgDumpPath) {
    // Exactly that file: falling back to another pg_dump would back up with a tool nobody chose.
    const { binary: chosen, problem } = await probePgBinaryAt('pg_dump', config.pgDumpPath);
    if (!chosen) {
      throw new BackupFailure(
        'configuration',
        `PGKEEP_PG_DUMP_PATH=${config.pgDumpPath} ${problem}.`,
        `Point PGKEEP_PG_DUMP_PATH at a pg_dump executable of major ${server.major} or newer (in the pgkeep image: /usr/lib/postgresql/<major>/bin/pg_dump), or unset it to let pgkeep choose. Nothing was dumped or uploaded.`,
      );
    }
    if (chosen.major < server.major) {
      throw new BackupFailure(
        'version-check',
        `PGKEEP_PG_DUMP_PATH=${config.pgDumpPath} is pg_dump ${chosen.version}, but the server runs PostgreSQL ${server.serverVersion}.`,
        `Point PGKEEP_PG_DUMP_PATH at a pg_dump of major ${server.major} or newer, or unset it to let pgkeep choose.`,
      );
    }
    return chosen;
  }
  const clients = await findPgBinaries('pg_dump', { extraDirs: config.pgBinDirs });
  const chosen = pickPgDumpForServer(clients, server.major);
  if (!chosen) {
    const found = clients.length > 0 ? clients.map((client) => `${client.version} (${client.path})`).join(', ') : 'none';
    throw new BackupFailure(
      'version-check',
      `The server runs PostgreSQL ${server.serverVersion}, but no installed pg_dump is that new (found: ${found}). pg_dump cannot dump a server of a newer major version.`,
      `Install a PostgreSQL ${server.major} (or newer) client — the pgkeep image ships the newest — or point PGKEEP_PG_BIN_DIRS at one. Nothing was uploaded.`,
    );
  }
  return chosen;
}

function throwIfPipelineFailed(exit: DumpPipelineExit, pgDump: PgBinary): void {
  const describe = (name: string, process: ProcessExit): string =>
    process.spawnError ? `${name} could not be started (${process.spawnError.message})` : process.signal ? `${name} was killed by ${process.signal}` : `${name} exited with code ${process.code}`;
  // zstd first: if it died, pg_dump's failure (a broken pipe) is only the consequence.
  if (exit.zstd.spawnError || exit.zstd.code !== 0) {
    throw new BackupFailure('compress', `${describe('zstd', exit.zstd)}. ${lastLines(exit.zstd.stderr)}`.trim(), exit.zstd.spawnError ? 'Install zstd (the pgkeep image includes it).' : 'The upload was aborted and no manifest was written. Check the task has enough memory for the zstd level and threads, then run the backup again.');
  }
  if (exit.pgDump.spawnError || exit.pgDump.code !== 0) {
    const stderr = redactSecrets(lastLines(exit.pgDump.stderr));
    const remedy = exit.pgDump.signal
      ? 'pg_dump was stopped from outside (out of memory, or killed by an operator). The upload was aborted and no manifest was written; run the backup again.'
      : /lock/i.test(stderr)
        ? 'A table stayed locked longer than PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS (a long migration or VACUUM FULL?). Run the backup again when it is released, or raise the timeout.'
        : 'Read pg_dump\'s message above; the upload was aborted and no manifest was written. Fix the cause and run the backup again.';
    throw new BackupFailure('dump', `${describe(`pg_dump ${pgDump.version}`, exit.pgDump)}${stderr ? `: ${stderr}` : ''}`, remedy);
  }
}

async function writeManifest(s3: S3Client, config: BackupConfig, manifestKey: string, manifest: Manifest): Promise<void> {
  try {
    await putJsonObject(s3, config.s3, manifestKey, serializeManifest(manifest));
  } catch (error) {
    const failure = explainS3Error(error, 'manifest', config.s3.bucket, manifestKey);
    throw new BackupFailure(
      'manifest',
      `${failure.message} The data object ${manifest.object.key} was uploaded but has no manifest, so it is not a backup.`,
      `${failure.remedy} The orphaned data object is ignored by verification and restore.`,
      { cause: error },
    );
  }
}

function throwIfInterrupted(signal: AbortSignal): void {
  if (signal.aborted) {
    throw new BackupFailure('interrupted', 'The backup was stopped by a signal (ECS sends SIGTERM when a task is stopped or its deployment replaced) before it finished.', 'Nothing was kept: the upload was aborted and no manifest was written. Run the backup again.');
  }
}

function lastLines(text: string, count = 8): string {
  return text.trim().split('\n').filter((line) => !/^\s*$/.test(line)).slice(-count).join('\n');
}

