import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
import { backupObjectKeys, newBackupId } from '../catalog/keys.ts';
import { isNoSuchObject } from '../runtime/s3-errors.ts';
import { MANIFEST_SCHEMA_VERSION, serializeManifest, type Manifest, type TableStats } from '../catalog/manifest.ts';
import { libpqEnvironment, type BackupConfig } from './config.ts';
import { startDumpPipeline, type DumpPipelineExit, type ProcessExit } from './dump-pipeline.ts';
import { BackupFailure, redactSecrets, type FailureStage } from './errors.ts';
import { StreamingMultipartUpload, UploadIntegrityError, type CleanupOutcome } from './multipart-upload.ts';
import { findPgBinaries, pickPgDumpForServer, probePgBinaryAt, type PgBinary } from './postgres-binaries.ts';
import { explainS3Error, putJsonObject, reachesS3OverTls } from './s3.ts';
import {
  backendPid,
  cancelBackendQuery,
  closeSession,
  collectTableStats,
  connectToSource,
  describeServer,
  exportSnapshot,
  prepareSnapshotSession,
  type ServerDescription,
} from './source-database.ts';
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
/** Closing the database sessions and cancelling the task's own query, each at most this long. */
const SESSION_CLEANUP_MS = 5_000;

/**
 * One backup: a consistent snapshot of the database, streamed through zstd into a multipart
 * upload, then — only once S3 holds exactly the bytes sent — its manifest. On any failure the
 * upload is aborted and no manifest is written, so nothing half-done ever looks like a backup; the
 * failure then says what S3 really holds (aborted, not abortable, or completed without manifest).
 *
 * It always ends: SIGTERM, PGKEEP_BACKUP_DEADLINE_SECONDS and the database ending the task's own
 * session each stop it at once (`stop`), and every S3 request has its own deadline (task/s3.ts).
 */
export async function runBackup(config: BackupConfig, dependencies: BackupDependencies): Promise<BackupResult> {
  const { s3, logger, signal } = dependencies;
  const now = dependencies.now ?? (() => new Date());
  const startedAt = now();
  const backupId = newBackupId(startedAt);
  const { dataKey, manifestKey } = backupObjectKeys(config.catalogDatabase, backupId);
  throwIfInterrupted(signal, 'connect');

  const progress: BackupProgress = { stage: 'connect', waitingOn: 'database', dumpedBytes: undefined, uploadedBytes: 0 };
  const deadline = AbortSignal.timeout(config.deadlineMs);
  /** Aborted, with the failure as its reason, when the database ends the task's own session. */
  const sessionLost = new AbortController();
  const stop = AbortSignal.any([signal, deadline, sessionLost.signal]);
  /** Throws why the backup was stopped, if it was. */
  const throwIfStopped = (): void => {
    throwIfInterrupted(signal, progress.stage === 'dump' && progress.waitingOn === 's3' ? 'upload' : progress.stage);
    if (sessionLost.signal.aborted) throw sessionLost.signal.reason as BackupFailure;
    if (deadline.aborted) throw deadlineFailure(config, progress);
  };

  // Connecting has its own 30 s timeout; a stop must not wait for it.
  const connecting = connectToSource(config.connection, APPLICATION_NAME);
  const client = await Promise.race([
    connecting,
    new Promise<never>((_resolve, reject) => stop.addEventListener('abort', () => reject(new Error('stopped while connecting')), { once: true })),
  ]).catch((error: unknown) => {
    void connecting.then(
      (late) => closeSession(late, SESSION_CLEANUP_MS),
      () => undefined,
    );
    throwIfStopped();
    throw error;
  });
  // Without a listener, a session the server ends while idle in its transaction
  // (idle_in_transaction_session_timeout, pg_terminate_backend) crashes Node ("Unhandled 'error'
  // event") with no failure line, no metric and the upload left behind.
  const onSessionError = (error: Error): void => {
    if (!sessionLost.signal.aborted) sessionLost.abort(sessionLostFailure(error));
  };
  client.on('error', onSessionError);
  let upload: StreamingMultipartUpload | undefined;
  let completedKey: string | undefined;
  let manifestAttempted = false;
  let killPipeline: (() => void) | undefined;
  let ownPid: number | undefined;
  let sessionQueryRunning = false;
  try {
    progress.stage = 'snapshot';
    await prepareSnapshotSession(client, config.lockWaitTimeoutSeconds);
    ownPid = await backendPid(client);
    const server = await describeServer(client);
    progress.stage = 'version-check';
    const pgDump = await choosePgDump(config, server);
    logger.info('connected', { serverVersion: server.serverVersion, inRecovery: server.inRecovery, pgDump: pgDump.path, pgDumpVersion: pgDump.version });
    throwIfStopped();

    progress.stage = 'snapshot';
    const snapshotId = await exportSnapshot(client).catch((error: unknown) => {
      throwIfStopped();
      throw new BackupFailure(
        'snapshot',
        `Could not export a snapshot: ${redactSecrets((error as Error).message)}`,
        'The backup user needs a normal (not replication-only) connection; on a standby, pg_export_snapshot needs PostgreSQL 10 or newer.',
        { cause: error },
      );
    });
    throwIfStopped();

    // The upload is created before pg_dump starts, so a denied or missing bucket fails fast,
    // before the database has been read at all.
    progress.stage = 'upload';
    progress.waitingOn = 's3';
    upload = await StreamingMultipartUpload.create(
      s3,
      { bucket: config.s3.bucket, key: dataKey, checksum: config.s3.checksum, kmsKeyId: config.s3.kmsKeyId, contentType: 'application/zstd' },
      {
        initialPartSizeBytes: config.upload.initialPartSizeBytes,
        maxPartsInFlight: config.upload.maxPartsInFlight,
        skipPayloadSigningOverTls: reachesS3OverTls(config.s3.endpoint),
        signal: stop,
        requestTimeoutMs: config.s3RequestTimeoutMs,
      },
    ).catch((error: unknown) => {
      throwIfStopped();
      throw explainS3Error(error, 'upload', config.s3.bucket, dataKey);
    });
    logger.info('upload started', { key: dataKey, bucket: config.s3.bucket });

    progress.stage = 'dump';
    progress.waitingOn = 'database';
    const pipeline = startDumpPipeline({
      pgDumpPath: pgDump.path,
      libpqEnvironment: libpqEnvironment(config.connection, APPLICATION_NAME),
      snapshotId,
      lockWaitTimeoutSeconds: config.lockWaitTimeoutSeconds,
      compressionLevel: config.compression.level,
      compressionThreads: config.compression.threads,
    });
    killPipeline = () => pipeline.kill('SIGKILL');
    const stopPipeline = (): void => pipeline.kill('SIGTERM');
    stop.addEventListener('abort', stopPipeline, { once: true });

    // Counted inside the exported snapshot while pg_dump streams from it.
    sessionQueryRunning = true;
    const tableStats: Promise<TableStats[] | BackupFailure> = collectTableStats(client, config.exactCountMaxBytes)
      .catch((error: unknown) => {
        if (isSessionEnding(error)) onSessionError(error as Error);
        if (sessionLost.signal.aborted) return sessionLost.signal.reason as BackupFailure;
        if ((error as { code?: string }).code === '55P03') {
          return new BackupFailure('snapshot', `Counting rows failed: ${redactSecrets((error as Error).message)}`, LOCK_TIMEOUT_REMEDY, { cause: error });
        }
        return new BackupFailure(
          'snapshot',
          `Counting rows failed: ${redactSecrets((error as Error).message)}`,
          'Grant the backup user SELECT on every table it backs up (on RDS, the pg_read_all_data role).',
          { cause: error },
        );
      })
      .finally(() => {
        sessionQueryRunning = false;
      });

    const reportProgress = setInterval(() => {
      logger.info('backup progress', {
        dumpedBytes: pipeline.uncompressedBytesSoFar(),
        uploadedBytes: upload?.uploadedBytes,
        elapsedSeconds: Math.round((now().getTime() - startedAt.getTime()) / 1000),
      });
    }, config.progressIntervalMs);
    let exit: DumpPipelineExit;
    try {
      try {
        for await (const chunk of pipeline.output) {
          // While write() waits, S3 is the bottleneck; while the loop waits, the database is.
          progress.waitingOn = 's3';
          await upload.write(chunk as Buffer);
          progress.waitingOn = 'database';
          progress.uploadedBytes = upload.uploadedBytes;
        }
      } catch (error) {
        pipeline.kill('SIGKILL');
        await pipeline.exited;
        progress.stage = 'upload';
        throwIfStopped();
        throw explainS3Error(error, 'upload', config.s3.bucket, dataKey);
      }
      exit = await pipeline.exited;
    } finally {
      clearInterval(reportProgress);
      stop.removeEventListener('abort', stopPipeline);
      progress.dumpedBytes = pipeline.uncompressedBytesSoFar() ?? progress.dumpedBytes;
    }
    throwIfStopped();
    throwIfPipelineFailed(exit, pgDump);
    progress.stage = 'snapshot';
    const tables = await tableStats;
    if (tables instanceof BackupFailure) throw tables;
    await client.query('COMMIT').catch((error: unknown) => {
      throwIfStopped();
      throw sessionLostFailure(error as Error);
    });
    throwIfStopped();

    progress.stage = 'complete';
    progress.waitingOn = 's3';
    const uploaded = await upload.complete().catch((error: unknown) => {
      throwIfStopped();
      if (error instanceof UploadIntegrityError)
        throw new BackupFailure(
          'complete',
          error.message,
          'Run the backup again; if it repeats, the S3-compatible store is not assembling multipart uploads correctly.',
          { cause: error },
        );
      throw explainS3Error(error, 'complete', config.s3.bucket, dataKey);
    });
    if (upload.completedDespiteLostAnswer) {
      logger.warn('S3 completed the upload, but its answer was lost; the object was found and checked against what was sent', {
        key: dataKey,
        bytes: uploaded.bytes,
      });
    }
    upload = undefined; // completed: nothing to abort any more
    completedKey = uploaded.key;

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
    progress.stage = 'manifest';
    manifestAttempted = true;
    await writeManifest(s3, config, manifestKey, manifest, stop).catch((error: unknown) => {
      throwIfStopped();
      throw error;
    });
    return { manifest, manifestKey, durationMs: Date.parse(manifest.finishedAt) - startedAt.getTime() };
  } catch (error) {
    killPipeline?.();
    // The row count may be waiting for a lock: closing the connection would not stop it (see cancelBackendQuery).
    if (sessionQueryRunning && ownPid !== undefined && !sessionLost.signal.aborted) {
      const cancel = await cancelBackendQuery(config.connection, APPLICATION_NAME, ownPid, SESSION_CLEANUP_MS);
      if (cancel.error)
        logger.warn("could not cancel the backup session's query; the server ends it when the lock it waits for is released", {
          pid: ownPid,
          error: cancel.error,
        });
    }
    let cleanup: Cleanup = { kind: 'nothing-uploaded' };
    if (upload) {
      const uploadId = upload.uploadId;
      const outcome = await upload.cleanUp((attempt, abortError) =>
        logger.warn('could not abort the multipart upload yet; retrying', { key: dataKey, uploadId, attempt, error: redactSecrets(abortError.message) }),
      );
      if (outcome.kind === 'aborted') logger.info('multipart upload aborted', { key: dataKey, uploadId, attempts: outcome.attempts });
      else if (outcome.kind === 'completed')
        logger.warn('S3 had completed the upload: the data object exists without a manifest', { key: dataKey, uploadId, bytes: outcome.bytes });
      else if (outcome.kind === 'not-aborted')
        logger.warn('could not abort the multipart upload; the bucket lifecycle rule removes incomplete uploads', {
          key: dataKey,
          uploadId,
          error: redactSecrets(outcome.error.message),
        });
      else
        logger.warn('S3 no longer knows the multipart upload, and whether the data object exists could not be checked', {
          key: dataKey,
          uploadId,
          error: redactSecrets(outcome.error.message),
        });
      cleanup = { ...outcome, uploadId };
    } else if (completedKey) {
      const manifestStored = manifestAttempted ? await objectExists(s3, config.s3.bucket, manifestKey) : false;
      cleanup =
        manifestStored === true
          ? { kind: 'manifest-stored' }
          : manifestStored === false
            ? { kind: 'completed', bytes: undefined }
            : { kind: 'manifest-unknown' };
    }
    throw withCleanup(error, cleanup, config.s3.bucket, completedKey ?? dataKey, manifestKey, progress.stage);
  } finally {
    client.off('error', onSessionError);
    // A late 'error' (the server closing while we end) must not crash the process either.
    client.on('error', () => undefined);
    await closeSession(client, SESSION_CLEANUP_MS);
  }
}

interface BackupProgress {
  stage: FailureStage;
  /** Which side the backup waits for while it streams: what was slow if the deadline passes. */
  waitingOn: 'database' | 's3';
  dumpedBytes: number | undefined;
  uploadedBytes: number;
}

type Cleanup =
  | (CleanupOutcome & { uploadId: string })
  | { kind: 'nothing-uploaded' }
  | { kind: 'completed'; bytes: number | undefined }
  | { kind: 'manifest-stored' }
  | { kind: 'manifest-unknown' };

const LOCK_TIMEOUT_REMEDY =
  'A table stayed locked longer than PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS (a long migration or VACUUM FULL?). Run the backup again when it is released, or raise the timeout.';

/** What the failure line adds about what S3 holds now: only what S3 said, never what was hoped. */
function cleanupSentence(cleanup: Cleanup, bucket: string, key: string, manifestKey: string): string {
  const target = `s3://${bucket}/${key}`;
  switch (cleanup.kind) {
    case 'nothing-uploaded':
      return 'Nothing was uploaded.';
    case 'aborted':
      return 'The upload was aborted and no manifest was written.';
    case 'not-aborted':
      return `No manifest was written, but the multipart upload ${cleanup.uploadId} of ${target} could not be aborted (${redactSecrets(cleanup.error.message)}): the bucket's lifecycle rule removes it after its AbortIncompleteMultipartUpload days (1 by default), or remove it now with aws s3api abort-multipart-upload --bucket ${bucket} --key ${key} --upload-id ${cleanup.uploadId}.`;
    case 'completed':
      return `No manifest was written, but S3 had completed the upload, so ${target} exists: a data object without a manifest is not a backup (the catalog lists it as data-only; verification and restore ignore it), and enforce-retention deletes it after its grace period.`;
    case 'unknown':
      return `No manifest was written. S3 no longer knows the multipart upload ${cleanup.uploadId}, and whether ${target} exists could not be checked (${redactSecrets(cleanup.error.message)}); if it exists it is data-only, not a backup, and enforce-retention deletes it after its grace period.`;
    case 'manifest-unknown':
      return `S3 had completed ${target}, and whether it stored the manifest s3://${bucket}/${manifestKey} before the backup stopped could not be checked: if that manifest exists, the backup is complete and usable; if not, the data object is data-only, not a backup, and enforce-retention deletes it after its grace period.`;
    case 'manifest-stored':
      return `S3 had stored the manifest s3://${bucket}/${manifestKey} before the backup stopped: that backup is complete and usable.`;
  }
}

function withCleanup(error: unknown, cleanup: Cleanup, bucket: string, key: string, manifestKey: string, stage: FailureStage): BackupFailure {
  const sentence = cleanupSentence(cleanup, bucket, key, manifestKey);
  if (error instanceof BackupFailure) {
    return new BackupFailure(error.stage, error.message, `${error.remedy} ${sentence}`, { cause: error.cause });
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new BackupFailure(
    stage,
    `Unexpected error: ${redactSecrets(message)}`,
    `This is a pgkeep bug or an unanticipated condition. Run the backup again and report the log. ${sentence}`,
    { cause: error },
  );
}

/** Whether S3 holds the key: undefined when S3 did not say (a timeout, a denial), which is not "no". */
async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean | undefined> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: AbortSignal.timeout(SESSION_CLEANUP_MS) });
    return true;
  } catch (error) {
    return isNoSuchObject(error) ? false : undefined;
  }
}

/** The server ends a session with an error of class 57 (operator intervention), 25P03 or 57P05, or the connection just drops. */
function isSessionEnding(error: unknown): boolean {
  const { code, message = '' } = error as { code?: string; message?: string };
  return code === '57P01' || code === '57P02' || code === '57P03' || code === '25P03' || code === '57P05' || /Connection terminated/i.test(message);
}

function sessionLostFailure(error: Error): BackupFailure {
  const { code } = error as { code?: string };
  const detail = redactSecrets(error.message);
  const what = `The database ended the backup's own session, which holds the snapshot pg_dump reads and counts the rows for the manifest: ${detail}.`;
  const remedy =
    code === '57P01'
      ? 'Something terminated the session (pg_terminate_backend, often a job that ends long transactions, or a server shutdown): exempt the backup user or application_name pgkeep-backup from such jobs, then run the backup again.'
      : code === '25P03' || code === '57P05'
        ? 'A session timeout ended it although pgkeep turns idle_in_transaction_session_timeout off for its own session: check that nothing in between (a pooler such as PgBouncer in transaction mode) resets session settings, then run the backup again.'
        : 'The connection to the database broke (a failover, a restart, or the network): run the backup again once the database is reachable.';
  return new BackupFailure('snapshot', what, remedy, { cause: error });
}

function deadlineFailure(config: BackupConfig, progress: BackupProgress): BackupFailure {
  const seconds = config.deadlineMs / 1000;
  const slowSide =
    progress.stage === 'dump' || progress.stage === 'upload'
      ? progress.waitingOn
      : progress.stage === 'complete' || progress.stage === 'manifest'
        ? 's3'
        : 'database';
  const stage: FailureStage =
    slowSide === 's3' ? (progress.stage === 'dump' ? 'upload' : progress.stage) : progress.stage === 'upload' ? 'dump' : progress.stage;
  return new BackupFailure(
    stage,
    `The backup did not finish within PGKEEP_BACKUP_DEADLINE_SECONDS=${seconds}: it was stopped in the ${stage} stage, waiting for ${slowSide === 's3' ? 'S3' : 'the database'} (${progress.uploadedBytes} bytes uploaded).`,
    slowSide === 's3'
      ? 'S3 accepted the data too slowly: check the network path to S3 (VPC endpoint or NAT gateway) and the S3 errors logged above; if the database has simply grown, raise PGKEEP_BACKUP_DEADLINE_SECONDS.'
      : 'The database delivered the data too slowly (load, a lock, or a server that stopped answering): check the database; if it has simply grown, raise PGKEEP_BACKUP_DEADLINE_SECONDS.',
  );
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
    process.spawnError
      ? `${name} could not be started (${process.spawnError.message})`
      : process.signal
        ? `${name} was killed by ${process.signal}`
        : `${name} exited with code ${process.code}`;
  // zstd first: if it died, pg_dump's failure (a broken pipe) is only the consequence.
  if (exit.zstd.spawnError || exit.zstd.code !== 0) {
    throw new BackupFailure(
      'compress',
      `${describe('zstd', exit.zstd)}. ${lastLines(exit.zstd.stderr)}`.trim(),
      exit.zstd.spawnError
        ? 'Install zstd (the pgkeep image includes it).'
        : 'Check the task has enough memory for the zstd level and threads, then run the backup again.',
    );
  }
  if (exit.pgDump.spawnError || exit.pgDump.code !== 0) {
    const stderr = redactSecrets(lastLines(exit.pgDump.stderr));
    const remedy = exit.pgDump.signal
      ? 'pg_dump was stopped from outside (out of memory, or killed by an operator). Run the backup again.'
      : /lock/i.test(stderr)
        ? LOCK_TIMEOUT_REMEDY
        : /terminating connection|server closed the connection|connection to server .* (lost|closed)/i.test(stderr)
          ? "The database ended pg_dump's session (pg_terminate_backend, a failover or restart, or the network): run the backup again once the database is reachable, and exempt the backup user from jobs that end long transactions."
          : "Read pg_dump's message above, fix the cause and run the backup again.";
    throw new BackupFailure('dump', `${describe(`pg_dump ${pgDump.version}`, exit.pgDump)}${stderr ? `: ${stderr}` : ''}`, remedy);
  }
}

async function writeManifest(s3: S3Client, config: BackupConfig, manifestKey: string, manifest: Manifest, signal: AbortSignal): Promise<void> {
  try {
    await putJsonObject(s3, config.s3, manifestKey, serializeManifest(manifest), signal);
  } catch (error) {
    const failure = explainS3Error(error, 'manifest', config.s3.bucket, manifestKey);
    // What S3 holds now (the data object, and whether the manifest landed after all) is checked
    // and said by the caller's cleanup, which asks S3 instead of assuming the PUT had no effect.
    throw new BackupFailure('manifest', failure.message, failure.remedy, { cause: error });
  }
}

function throwIfInterrupted(signal: AbortSignal, stage: FailureStage): void {
  if (signal.aborted) {
    // Stopped while connecting, the backup has not reached the code that reports what S3 holds
    // (withCleanup); nothing can have been uploaded yet, so it says so here.
    throw new BackupFailure(
      'interrupted',
      `The backup was stopped by a signal (ECS sends SIGTERM when a task is stopped or its deployment replaced) in the ${stage} stage, before it finished.`,
      stage === 'connect' ? 'Run the backup again. Nothing was uploaded.' : 'Run the backup again.',
    );
  }
}

function lastLines(text: string, count = 8): string {
  return text
    .trim()
    .split('\n')
    .filter((line) => !/^\s*$/.test(line))
    .slice(-count)
    .join('\n');
}
