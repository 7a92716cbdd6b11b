import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, RestoreObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
import type pg from 'pg';
import { findNewestBackupAtOrBefore, listBackups, type Backup } from '../catalog/listing.ts';
import { parseManifest, pinnedVersionId, type Manifest } from '../catalog/manifest.ts';
import { readVerification, type VerificationRecord } from '../catalog/verification.ts';
import { feedArchive } from './archive-reader.ts';
import { libpqEnvironment, type ConnectionSettings } from './config.ts';
import { BackupFailure, redactSecrets } from './errors.ts';
import { findPgBinaries, type PgBinary } from './postgres-binaries.ts';
import { makeScratchDirectory } from './scratch-directory.ts';
import type { ArchiveTier, BackupSelector, RestoreConfig } from './restore-config.ts';
import { defaultTargetDatabase } from './restore-config.ts';
import { connectToSource } from './source-database.ts';

const APPLICATION_NAME = 'pgkeep-restore';

export interface ResolvedBackup {
  backup: Backup;
  manifest: Manifest;
  verification: VerificationRecord | undefined;
}

export interface TableComparison {
  tablesCompared: number;
  /** Planner estimates in the manifest are not compared (they are not counts). */
  estimatesSkipped: number;
  mismatches: string[];
}

export interface RestoreResult {
  backup: ResolvedBackup;
  targetDatabase: string;
  createdTarget: boolean;
  restoreSeconds: number;
  sha256: string;
  comparison: TableComparison;
}

/** The backup exists but sits in an archive storage class: a retrieval was requested or is running. */
export class ArchivedBackupError extends BackupFailure {
  override name = 'ArchivedBackupError';
}

// ---------------------------------------------------------------------------------------------
// Which backup

export async function resolveBackup(s3: S3Client, bucket: string, database: string, selector: BackupSelector): Promise<ResolvedBackup> {
  const location = { bucket, database };
  let backup: Backup | undefined;
  if (selector.kind === 'at-or-before') backup = await findNewestBackupAtOrBefore(s3, location, selector.at);
  else {
    const backups = await listBackups(s3, location);
    backup = selector.kind === 'latest' ? backups.at(-1) : backups.find((candidate) => candidate.backupId === selector.backupId);
  }
  if (!backup) {
    const which = selector.kind === 'latest' ? 'any backup' : selector.kind === 'at-or-before' ? `a backup at or before ${selector.at.toISOString()}` : `backup ${selector.backupId}`;
    throw new BackupFailure('restore', `s3://${bucket} holds no finished ${which} of database "${database}".`, 'Check PGKEEP_RESTORE_SOURCE (the catalog name) and PGKEEP_RESTORE_BACKUP; list the backups with `aws s3 ls s3://BUCKET/backups/<database>/`.');
  }
  const manifestObject = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backup.manifestKey }));
  const manifest = parseManifest(await manifestObject.Body!.transformToString(), backup.manifestKey);
  const verification = await readVerification(s3, bucket, backup.dataKey).catch(() => undefined);
  return { backup, manifest, verification };
}

/** The newest backup that verify-backup marked verified: what the drill proves restorable. */
export async function resolveNewestVerified(s3: S3Client, bucket: string, database: string): Promise<ResolvedBackup | undefined> {
  const backups = await listBackups(s3, { bucket, database });
  for (let index = backups.length - 1; index >= 0; index -= 1) {
    const backup = backups[index]!;
    const verification = await readVerification(s3, bucket, backup.dataKey);
    if (verification?.status !== 'verified') continue;
    const manifestObject = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backup.manifestKey }));
    return { backup, manifest: parseManifest(await manifestObject.Body!.transformToString(), backup.manifestKey), verification };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Archived objects

const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);
const RETRIEVAL_TIME: Record<string, Record<ArchiveTier, string>> = {
  GLACIER: { Expedited: '1-5 minutes', Standard: '3-5 hours', Bulk: '5-12 hours' },
  DEEP_ARCHIVE: { Expedited: 'not offered for Deep Archive (use Standard)', Standard: 'up to 12 hours', Bulk: 'up to 48 hours' },
};

/**
 * Glacier Instant Retrieval and warmer classes restore directly. Glacier Flexible Retrieval and
 * Deep Archive need a retrieval first: request it (once), then either wait for it or stop with a
 * message saying how long it takes and how to resume.
 */
export async function ensureReadable(s3: S3Client, bucket: string, key: string, archive: RestoreConfig['archive'], logger: Logger, signal: AbortSignal, versionId?: string): Promise<void> {
  // The version the restore will read, which on a versioned bucket need not be the current one.
  const version = versionId ? { VersionId: versionId } : {};
  for (let waitedMs = 0; ; ) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...version }));
    const storageClass = head.StorageClass ?? 'STANDARD';
    if (!ARCHIVE_CLASSES.has(storageClass) && head.ArchiveStatus === undefined) return;
    const restore = head.Restore ?? '';
    if (/ongoing-request="false"/.test(restore)) return; // a retrieved copy is available
    const tier: ArchiveTier = storageClass === 'DEEP_ARCHIVE' && archive.tier === 'Expedited' ? 'Standard' : archive.tier;
    const eta = RETRIEVAL_TIME[storageClass]?.[tier] ?? 'hours';
    if (!/ongoing-request="true"/.test(restore)) {
      // Intelligent-Tiering's archive tiers move the object back to its frequent-access tier for
      // good, so a retrieval there takes no number of days (S3 rejects one).
      const restoreRequest = storageClass === 'INTELLIGENT_TIERING' ? { GlacierJobParameters: { Tier: tier } } : { Days: archive.retrievalDays, GlacierJobParameters: { Tier: tier } };
      await s3.send(new RestoreObjectCommand({ Bucket: bucket, Key: key, ...version, RestoreRequest: restoreRequest }));
      logger.info('retrieval requested for an archived backup', { key, storageClass, tier, expectedTime: eta });
    }
    if (!archive.wait || waitedMs >= archive.maxWaitHours * 3_600_000) {
      throw new ArchivedBackupError(
        'archived',
        `s3://${bucket}/${key} is in ${storageClass}; a ${tier} retrieval ${restore ? 'is in progress' : 'was requested'} and takes ${eta}.`,
        `Run the same restore again once it is retrieved (the copy stays readable for ${archive.retrievalDays} days), or set PGKEEP_RESTORE_WAIT_FOR_ARCHIVE=true to wait in the task.`,
      );
    }
    logger.info('waiting for the archived backup to be retrieved', { key, storageClass, tier, expectedTime: eta, waitedMinutes: Math.round(waitedMs / 60_000) });
    await sleep(archive.pollSeconds * 1000, undefined, { signal });
    waitedMs += archive.pollSeconds * 1000;
  }
}

// ---------------------------------------------------------------------------------------------
// The target database

async function withDatabase<T>(connection: ConnectionSettings, database: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectToSource({ ...connection, database }, APPLICATION_NAME);
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the target if it does not exist; refuses a non-empty one unless replace mode is confirmed. */
export async function prepareTarget(config: Pick<RestoreConfig, 'target' | 'mode' | 'confirm'>, targetDatabase: string): Promise<{ created: boolean }> {
  const exists = await withDatabase(config.target, config.target.database, async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [targetDatabase])).rowCount === 1);
  if (!exists) {
    await withDatabase(config.target, config.target.database, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(targetDatabase)}`));
    return { created: true };
  }
  const userRelations = await withDatabase(config.target, targetDatabase, async (client) => {
    const { rows } = await client.query<{ count: string }>(`SELECT count(*) AS count FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'`);
    return Number(rows[0]?.count ?? 0);
  });
  if (userRelations === 0) return { created: false };
  if (config.mode !== 'replace') {
    throw new BackupFailure(
      'refused',
      `The target database "${targetDatabase}" already exists and is not empty (${userRelations} relations). pgkeep never restores over existing data by default.`,
      `Restore into a new database (leave PGKEEP_RESTORE_TARGET_DATABASE unset), or replace it deliberately: PGKEEP_RESTORE_MODE=replace and PGKEEP_RESTORE_CONFIRM=${targetDatabase}.`,
    );
  }
  if (config.confirm !== targetDatabase) {
    throw new BackupFailure('refused', `PGKEEP_RESTORE_CONFIRM="${config.confirm ?? ''}" does not match the target database "${targetDatabase}"; nothing was changed.`, `To replace "${targetDatabase}", set PGKEEP_RESTORE_CONFIRM=${targetDatabase} exactly.`);
  }
  return { created: false };
}

export async function dropDatabase(connection: ConnectionSettings, database: string): Promise<void> {
  await withDatabase(connection, connection.database, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`));
}

// ---------------------------------------------------------------------------------------------
// Comparing with the manifest

export async function compareWithManifest(connection: ConnectionSettings, database: string, manifest: Manifest): Promise<TableComparison> {
  return withDatabase(connection, database, async (client) => {
    const mismatches: string[] = [];
    let tablesCompared = 0;
    let estimatesSkipped = 0;
    const { rows: present } = await client.query<{ schema: string; table: string }>(`SELECT n.nspname AS schema, c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`);
    const presentNames = new Set(present.map((row) => `${row.schema}.${row.table}`));
    const expectedNames = new Set(manifest.tables.map((table) => `${table.schema}.${table.table}`));
    for (const table of manifest.tables) {
      const name = `${table.schema}.${table.table}`;
      if (!presentNames.has(name)) {
        mismatches.push(`table ${name} is missing (the manifest lists ${table.rows ?? 'an unknown number of'} rows)`);
        continue;
      }
      if (table.rowsSource !== 'exact' || table.rows === null) {
        estimatesSkipped += 1;
        continue;
      }
      const { rows } = await client.query<{ count: string }>(`SELECT count(*) AS count FROM ONLY ${client.escapeIdentifier(table.schema)}.${client.escapeIdentifier(table.table)}`);
      const count = Number(rows[0]?.count ?? 0);
      tablesCompared += 1;
      if (count !== table.rows) mismatches.push(`table ${name} has ${count} rows; the manifest says ${table.rows}`);
    }
    for (const name of presentNames) if (!expectedNames.has(name)) mismatches.push(`table ${name} is not in the backup (it was in the target before the restore)`);
    return { tablesCompared, estimatesSkipped, mismatches };
  });
}

// ---------------------------------------------------------------------------------------------
// Streaming the archive into pg_restore

export function pickPgRestore(clients: PgBinary[], archiveMajor: number): PgBinary | undefined {
  return clients.filter((client) => client.major >= archiveMajor).sort((a, b) => b.major - a.major)[0];
}

function pgRestoreArguments(config: Pick<RestoreConfig, 'mode' | 'noOwner' | 'jobs'>, targetDatabase: string): string[] {
  const args = ['--exit-on-error', '--dbname', targetDatabase];
  if (config.mode === 'replace') args.push('--clean', '--if-exists');
  // One transaction: a failed replace leaves the old contents. pg_restore cannot combine it with -j.
  if (config.mode === 'replace' && config.jobs === 1) args.push('--single-transaction');
  if (config.noOwner) args.push('--no-owner', '--no-privileges');
  if (config.jobs > 1) args.push('--jobs', String(config.jobs));
  return args;
}

/** The body stops with the signal: every reader of it (proof, download, stream) is stopped by SIGTERM. */
async function getObjectStream(s3: S3Client, bucket: string, manifest: Manifest, signal: AbortSignal, ifMatch?: string): Promise<{ body: Readable; etag: string | undefined }> {
  const versionId = pinnedVersionId(manifest.object.versionId);
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.object.key, ...(versionId ? { VersionId: versionId } : {}), ...(ifMatch ? { IfMatch: ifMatch } : {}) }), { abortSignal: signal });
  return { body: addAbortSignal(signal, object.Body as Readable), etag: object.ETag };
}

async function sha256OfStream(body: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

function checksumFailure(bucket: string, manifest: Manifest, actual: { sha256: string; bytes: number }): BackupFailure {
  return new BackupFailure(
    'checksum',
    `s3://${bucket}/${manifest.object.key} has SHA-256 ${actual.sha256} over ${actual.bytes} bytes; its manifest says ${manifest.object.sha256} over ${manifest.object.bytes} bytes. The object is corrupt or was replaced.`,
    'Nothing restored from it was kept. Restore an earlier backup (PGKEEP_RESTORE_BACKUP=<timestamp or backup id>); on a versioned bucket a noncurrent version may hold the original object.',
  );
}

/** Streams (or, with jobs > 1, downloads) the object into pg_restore; throws on any mismatch or error. */
async function restoreObject(s3: S3Client, config: RestoreConfig, manifest: Manifest, pgRestore: PgBinary, targetDatabase: string, logger: Logger, signal: AbortSignal): Promise<string> {
  const env = libpqEnvironment({ ...config.target, database: targetDatabase }, APPLICATION_NAME);
  const args = pgRestoreArguments(config, targetDatabase);
  let ifMatch: string | undefined;

  if (config.mode === 'replace') {
    // The checksum is known only after the last byte; an existing database must not be touched by
    // a corrupt object, so replace mode proves the whole object first, then restores exactly it.
    const first = await getObjectStream(s3, config.s3.bucket, manifest, signal);
    const proven = await sha256OfStream(first.body);
    if (proven.sha256 !== manifest.object.sha256 || proven.bytes !== manifest.object.bytes) throw checksumFailure(config.s3.bucket, manifest, proven);
    ifMatch = first.etag;
    logger.info('object checksum proven before replacing the target', { key: manifest.object.key });
  }

  if (config.jobs > 1) {
    const needed = (manifest.dump.uncompressedBytes ?? manifest.object.bytes * 6) * 1.1;
    const directory = await makeScratchDirectory('pgkeep-restore-', "the parallel restore's download directory", { alternative: 'Or restore with PGKEEP_RESTORE_JOBS=1 (streaming, no disk).' });
    try {
      const free = await statfs(directory);
      if (free.bavail * free.bsize < needed) {
        throw new BackupFailure('restore', `Parallel restore needs about ${Math.ceil(needed / 2 ** 30)} GiB in ${tmpdir()}, which has ${Math.floor((free.bavail * free.bsize) / 2 ** 30)} GiB free.`, 'Raise the task\'s ephemeral storage (up to 200 GiB on Fargate), or restore with PGKEEP_RESTORE_JOBS=1 (streaming, no disk).');
      }
      const archivePath = join(directory, 'archive.dump');
      const object = await getObjectStream(s3, config.s3.bucket, manifest, signal, ifMatch);
      const hash = createHash('sha256');
      let bytes = 0;
      object.body.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      const zstd = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
      const zstdExit = new Promise<number | null>((resolve) => zstd.once('close', resolve));
      await Promise.all([pipeline(object.body, zstd.stdin), pipeline(zstd.stdout, createWriteStream(archivePath))]);
      const actual = { sha256: hash.digest('hex'), bytes };
      if (actual.sha256 !== manifest.object.sha256 || actual.bytes !== manifest.object.bytes) throw checksumFailure(config.s3.bucket, manifest, actual);
      const zstdCode = await zstdExit;
      if (zstdCode !== 0) throw new BackupFailure('restore', `zstd could not decompress the backup (exit ${zstdCode}).`, 'The object is damaged although its checksum matched the manifest: report this; restore an earlier backup.');
      const status = await runProcess(pgRestore.path, [...args, archivePath], env, signal);
      if (status.code !== 0) throw pgRestoreFailure(status.stderr, pgRestore);
      return actual.sha256;
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }

  const object = await getObjectStream(s3, config.s3.bucket, manifest, signal, ifMatch);
  const read = await feedArchive(object.body, { binary: pgRestore.path, args, env, signal });
  const actual = { sha256: read.sha256, bytes: read.bytes };
  if (actual.sha256 !== manifest.object.sha256 || actual.bytes !== manifest.object.bytes) throw checksumFailure(config.s3.bucket, manifest, actual);
  if (read.decompressor.code !== 0) throw new BackupFailure('restore', `zstd could not decompress the backup: ${read.decompressor.stderr.trim()}`, 'The object is damaged although its checksum matched the manifest: report this; restore an earlier backup.');
  if (read.consumer.code !== 0) throw pgRestoreFailure(read.consumer.stderr, pgRestore);
  return actual.sha256;
}

function pgRestoreFailure(stderr: string, pgRestore: PgBinary): BackupFailure {
  const message = redactSecrets(stderr.trim().split('\n').slice(-8).join('\n'));
  const remedy = /role .* does not exist/i.test(message)
    ? 'The backup refers to roles the target server lacks: create them, or set PGKEEP_RESTORE_NO_OWNER=true to restore without ownership and privileges.'
    : /extension|could not open extension control file/i.test(message)
      ? 'The backup uses an extension the target server does not have installed: install it on the target, then restore again.'
      : 'Read pg_restore\'s message above, fix the cause on the target, and restore again.';
  return new BackupFailure('restore', `pg_restore ${pgRestore.version} failed: ${message}`, remedy);
}

function runProcess(binary: string, args: string[], env: Record<string, string>, signal: AbortSignal): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    // Aborting kills the child (SIGTERM); its 'error' then resolves this as a failure.
    const child = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr = (stderr + text).slice(-64 * 1024);
    });
    child.once('error', (error) => resolve({ code: null, stderr: error.message }));
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

// ---------------------------------------------------------------------------------------------
// The whole restore

export async function restoreBackup(
  s3: S3Client,
  config: RestoreConfig,
  resolved: ResolvedBackup,
  logger: Logger,
  signal: AbortSignal,
): Promise<RestoreResult> {
  const { manifest } = resolved;
  if (resolved.verification?.status === 'failed' && !config.forceUnverified) {
    throw new BackupFailure('refused', `Backup ${manifest.backupId} of "${manifest.database}" failed verification (${resolved.verification.method ?? 'unknown check'}, ${resolved.verification.verifiedAt ?? 'unknown time'}).`, 'Restore an earlier backup, or set PGKEEP_RESTORE_FORCE_UNVERIFIED=true if you must try this one (the restore still checks its SHA-256).');
  }
  if (resolved.verification?.status !== 'verified') logger.warn('restoring a backup that is not marked verified; its SHA-256 is checked during the restore', { backupId: manifest.backupId, verification: resolved.verification?.status ?? 'none' });

  const [pgRestore] = [pickPgRestore(await findPgBinaries('pg_restore'), manifest.dump.major)];
  if (!pgRestore) {
    throw new BackupFailure('restore', `The backup was made by pg_dump ${manifest.dump.version}, and no installed pg_restore is that new.`, `Install a PostgreSQL ${manifest.dump.major} (or newer) client; the pgkeep image ships the newest.`);
  }
  await ensureReadable(s3, config.s3.bucket, manifest.object.key, config.archive, logger, signal, pinnedVersionId(manifest.object.versionId));

  const targetDatabase = config.targetDatabase ?? defaultTargetDatabase(manifest.database, new Date(manifest.startedAt));
  const { created } = await prepareTarget(config, targetDatabase);
  logger.info('restoring', { backupId: manifest.backupId, key: manifest.object.key, targetDatabase, createdTarget: created, mode: config.mode, jobs: config.jobs, pgRestore: pgRestore.version });
  const started = Date.now();
  let sha256: string;
  try {
    sha256 = await restoreObject(s3, config, manifest, pgRestore, targetDatabase, logger, signal);
  } catch (caught) {
    const error = signal.aborted
      ? new BackupFailure('interrupted', 'The restore was stopped by a signal (ECS sends SIGTERM when a task is stopped) before it finished.', created ? 'The half-restored database was dropped. Run the restore again.' : 'The target may hold a partial restore (replace mode restores in one transaction, which was rolled back). Run the restore again.')
      : caught;
    // A database this run created holds only a partial restore: it must not look like a good one.
    if (created) {
      await dropDatabase(config.target, targetDatabase).catch((dropError: unknown) => logger.error('could not drop the half-restored database; drop it by hand', { targetDatabase, error: redactSecrets((dropError as Error).message) }));
      logger.info('dropped the half-restored database', { targetDatabase });
    }
    throw error;
  }
  const restoreSeconds = (Date.now() - started) / 1000;
  const comparison = await compareWithManifest(config.target, targetDatabase, manifest);
  return { backup: resolved, targetDatabase, createdTarget: created, restoreSeconds, sha256, comparison };
}
