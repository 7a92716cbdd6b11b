import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, RestoreObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
import type pg from 'pg';
import {
  futureDatedByMs,
  findNewestBackupAtOrBefore,
  isCompleteBackup,
  listBackups,
  listCatalogEntries,
  type Backup,
  type CatalogEntry,
} from '../runtime/listing.ts';
import { ManifestError, parseManifest, pinnedVersionId, type Manifest } from '../catalog/manifest.ts';
import { readVerification, type VerificationRecord } from '../runtime/verification.ts';
import { feedArchive } from './archive-reader.ts';
import { libpqEnvironment, type ConnectionSettings } from './config.ts';
import { BackupFailure, redactSecrets } from './errors.ts';
import { findPgBinaries, type PgBinary } from './postgres-binaries.ts';
import { makeScratchDirectory } from './scratch-directory.ts';
import type { ArchiveTier, BackupSelector, RestoreConfig } from './restore-config.ts';
import { defaultTargetDatabase } from './restore-config.ts';
import { connectToSource } from './source-database.ts';
import { carryOverProperties, checkCanReplace, createReplacementDatabase, describeUserObjects, findUserObjects, swapIn } from './restore-target.ts';

const APPLICATION_NAME = 'pgkeep-restore';

export interface ResolvedBackup {
  backup: Backup;
  manifest: Manifest;
  verification: VerificationRecord | undefined;
  /** Newer backups that "latest" passed over, newest first, each with why. */
  skipped?: SkippedBackup[];
}

export interface SkippedBackup {
  backupId: string;
  reason: string;
}

export interface TableComparison {
  /** Tables whose manifest count is exact, counted and compared exactly. */
  tablesCompared: number;
  /**
   * Tables the backup only estimated (larger than PGKEEP_EXACT_COUNT_MAX_MB): counted exactly in
   * the restored database and compared with the planner estimate, within ESTIMATE_TOLERANCE.
   */
  tablesComparedWithEstimate: number;
  /** Tables with nothing in the manifest to compare with (no estimate), each with its restored count. */
  tablesNotCompared: string[];
  mismatches: string[];
}

/**
 * How far a restored table's exact count may be from the manifest's planner estimate (reltuples)
 * before it is reported as a difference. reltuples is refreshed only by VACUUM and ANALYZE, and
 * autovacuum analyzes a table once about 10 % of it has changed, so an estimate 10-20 % behind a
 * growing table is normal; a restore that lost most of a table is far outside this.
 */
export const ESTIMATE_TOLERANCE = 0.25;

export interface RestoreResult {
  backup: ResolvedBackup;
  targetDatabase: string;
  createdTarget: boolean;
  restoreSeconds: number;
  sha256: string;
  comparison: TableComparison;
  /** Replace mode: the database replaced, and whether the restored copy took its place. */
  replacement?: { target: string; swapped: boolean; sessionsEnded: number };
}

/** The backup exists but sits in an archive storage class: a retrieval was requested or is running. */
export class ArchivedBackupError extends BackupFailure {
  override name = 'ArchivedBackupError';
}

// ---------------------------------------------------------------------------------------------
// Which backup

export interface SelectionOptions {
  /** "latest" also considers backups whose verification failed. */
  forceUnverified?: boolean;
  /** The task's clock; a backup's start time may not lie ahead of it (nor of its objects' LastModified). */
  now?: Date;
}

export async function resolveBackup(
  s3: S3Client,
  bucket: string,
  database: string,
  selector: BackupSelector,
  options: SelectionOptions = {},
): Promise<ResolvedBackup> {
  const location = { bucket, database };
  if (selector.kind === 'latest') return resolveLatest(s3, bucket, database, options);
  const backup =
    selector.kind === 'at-or-before'
      ? await findNewestBackupAtOrBefore(s3, location, selector.at)
      : (await listBackups(s3, location)).find((candidate) => candidate.backupId === selector.backupId);
  if (!backup)
    throw noBackup(bucket, database, selector.kind === 'at-or-before' ? `backup at or before ${selector.at.toISOString()}` : `backup ${selector.backupId}`);
  const manifest = await readManifest(s3, bucket, database, backup);
  const verification = await readVerification(s3, bucket, backup.dataKey).catch(() => undefined);
  return { backup, manifest, verification };
}

function noBackup(bucket: string, database: string, which: string): BackupFailure {
  return new BackupFailure(
    'restore',
    `s3://${bucket} holds no finished ${which} of database "${database}".`,
    'Check PGKEEP_RESTORE_SOURCE (the catalog name) and PGKEEP_RESTORE_BACKUP; list the backups with `aws s3 ls s3://BUCKET/backups/<database>/`.',
  );
}

/**
 * The newest backup that can be trusted to be what it says: "latest" passes over, and names, a
 * backup whose data object is gone, whose start time lies ahead of the clocks (its real age is
 * unknown, so it may be older than the one before it) or whose verification failed. A manifest
 * that cannot be read is not passed over: that is damage someone must look at, so the restore
 * stops and names the backup to use instead.
 */
async function resolveLatest(s3: S3Client, bucket: string, database: string, options: SelectionOptions): Promise<ResolvedBackup> {
  const now = options.now ?? new Date();
  const entries = await listCatalogEntries(s3, { bucket, database });
  const skipped: SkippedBackup[] = [];
  for (let index = entries.length - 1; index >= 0; index -= 1) {
    const entry = entries[index]!;
    if (entry.state === 'manifest-only') {
      skipped.push({ backupId: entry.backupId, reason: `its data object is gone (only its manifest ${entry.manifestKey} is left), so it cannot be restored` });
      continue;
    }
    // In progress, or failed before its manifest: never a backup.
    if (!isCompleteBackup(entry)) continue;
    const ahead = futureDatedByMs(entry, now);
    if (ahead !== undefined) {
      skipped.push({
        backupId: entry.backupId,
        reason: `its start time (${entry.startedAt.toISOString()}) lies ${formatDuration(ahead)} ahead of the S3 clock (its objects were written ${lastWritten(entry)}): the clock of the task that made it was wrong, so its real age is unknown`,
      });
      continue;
    }
    const verification = await readVerification(s3, bucket, entry.dataKey).catch(() => undefined);
    if (verification?.status === 'failed' && !options.forceUnverified) {
      skipped.push({
        backupId: entry.backupId,
        reason: `it failed verification (${verification.method ?? 'unknown check'}, ${verification.verifiedAt ?? 'unknown time'})`,
      });
      continue;
    }
    const manifest = await readManifest(s3, bucket, database, entry);
    return { backup: entry, manifest, verification, skipped };
  }
  if (skipped.length === 0) throw noBackup(bucket, database, 'backup');
  const failedVerification = skipped.some((skip) => skip.reason.startsWith('it failed verification'));
  throw new BackupFailure(
    'refused',
    `s3://${bucket} holds no backup of database "${database}" that "latest" can restore; it passed over ${skipped.map((skip) => `${skip.backupId}: ${skip.reason}`).join('; ')}.`,
    `${failedVerification ? 'Set PGKEEP_RESTORE_FORCE_UNVERIFIED=true to restore a backup that failed verification anyway (its SHA-256 is still checked), or name' : 'Name'} a backup you trust with PGKEEP_RESTORE_BACKUP=<backup id>; run a new backup now.`,
  );
}

function lastWritten(entry: CatalogEntry): string {
  const times = [entry.dataLastModified, entry.manifestLastModified].filter((time): time is Date => time !== undefined);
  return times.length === 0 ? 'at an unknown time' : `at ${new Date(Math.min(...times.map((time) => time.getTime()))).toISOString()}`;
}

function formatDuration(milliseconds: number): string {
  const minutes = Math.round(milliseconds / 60_000);
  if (minutes < 120) return `${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} hours` : `${Math.round(hours / 24)} days`;
}

/**
 * The backup's manifest, or a refusal naming the backup, the problem and the newest verified
 * backup before it. A manifest that does not describe the backup whose key it sits under (copied
 * from another) is as untrustworthy as one that does not parse.
 */
async function readManifest(s3: S3Client, bucket: string, database: string, backup: Backup): Promise<Manifest> {
  let problem: string;
  let newerSchema = false;
  try {
    const text = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backup.manifestKey }))).Body!.transformToString();
    const manifest = parseManifest(text, backup.manifestKey);
    if (manifest.backupId === backup.backupId && manifest.database === database) return manifest;
    problem = `${backup.manifestKey} describes backup ${manifest.backupId} of "${manifest.database}", not the backup its key names`;
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    problem = error.message.replace(/\.$/, '');
    newerSchema = /newer than this pgkeep understands/.test(error.message);
  }
  const alternative = await newestVerifiedBefore(s3, bucket, database, backup);
  const instead = alternative
    ? `restore the newest verified backup before it instead: PGKEEP_RESTORE_BACKUP=${alternative.backupId} (started ${alternative.startedAt.toISOString()})`
    : 'no earlier backup is marked verified: name one you trust with PGKEEP_RESTORE_BACKUP=<backup id> (list them with `aws s3 ls s3://BUCKET/backups/<database>/`)';
  throw new BackupFailure(
    'refused',
    `Backup ${backup.backupId} of database "${database}" cannot be restored: ${problem}. Nothing was changed.`,
    newerSchema
      ? `Upgrade pgkeep to restore it, or ${instead}.`
      : `Its manifest was damaged or not written by pgkeep, so nothing vouches for its data: ${instead}, and find out what wrote s3://${bucket}/${backup.manifestKey}.`,
  );
}

async function newestVerifiedBefore(s3: S3Client, bucket: string, database: string, backup: Backup): Promise<Backup | undefined> {
  const now = new Date();
  const older = (await listBackups(s3, { bucket, database })).filter(
    (candidate) => candidate.backupId < backup.backupId && futureDatedByMs(candidate, now) === undefined,
  );
  for (const candidate of older.reverse()) {
    if ((await readVerification(s3, bucket, candidate.dataKey).catch(() => undefined))?.status !== 'verified') continue;
    try {
      const text = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: candidate.manifestKey }))).Body!.transformToString();
      if (parseManifest(text, candidate.manifestKey).backupId === candidate.backupId) return candidate;
    } catch {
      // Not one to recommend either.
    }
  }
  return undefined;
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
export async function ensureReadable(
  s3: S3Client,
  bucket: string,
  key: string,
  archive: RestoreConfig['archive'],
  logger: Logger,
  signal: AbortSignal,
  versionId?: string,
): Promise<void> {
  // The version the restore will read, which on a versioned bucket need not be the current one.
  const version = versionId ? { VersionId: versionId } : {};
  for (let waitedMs = 0; ;) {
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
      const restoreRequest =
        storageClass === 'INTELLIGENT_TIERING'
          ? { GlacierJobParameters: { Tier: tier } }
          : { Days: archive.retrievalDays, GlacierJobParameters: { Tier: tier } };
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
    logger.info('waiting for the archived backup to be retrieved', {
      key,
      storageClass,
      tier,
      expectedTime: eta,
      waitedMinutes: Math.round(waitedMs / 60_000),
    });
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

/**
 * Creates the target if it does not exist; refuses a non-empty one unless replace mode is
 * confirmed. `replacing`: the target exists and replace mode will restore beside it and swap the
 * copy in (restore-target.ts).
 */
export async function prepareTarget(
  config: Pick<RestoreConfig, 'target' | 'mode' | 'confirm' | 'targetDatabase'>,
  targetDatabase: string,
): Promise<{ created: boolean; replacing: boolean }> {
  const exists = await withDatabase(
    config.target,
    config.target.database,
    async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [targetDatabase])).rowCount === 1,
  );
  if (!exists) {
    await withDatabase(config.target, config.target.database, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(targetDatabase)}`));
    return { created: true, replacing: false };
  }
  if (config.mode === 'replace') {
    if (config.confirm !== targetDatabase) {
      throw new BackupFailure(
        'refused',
        `PGKEEP_RESTORE_CONFIRM="${config.confirm ?? ''}" does not match the target database "${targetDatabase}"; nothing was changed.`,
        `To replace "${targetDatabase}", set PGKEEP_RESTORE_CONFIRM=${targetDatabase} exactly.`,
      );
    }
    await checkCanReplace(config.target, targetDatabase);
    return { created: false, replacing: true };
  }
  const found = await findUserObjects(config.target, targetDatabase);
  if (found.count === 0) return { created: false, replacing: false };
  const replaceDeliberately = `replace it deliberately: PGKEEP_RESTORE_MODE=replace, PGKEEP_RESTORE_TARGET_DATABASE=${targetDatabase} and PGKEEP_RESTORE_CONFIRM=${targetDatabase}`;
  throw new BackupFailure(
    'refused',
    `The target database "${targetDatabase}" already exists and is not empty (${describeUserObjects(found)}). pgkeep never restores over existing data by default; nothing was changed.`,
    config.targetDatabase === undefined
      ? `"${targetDatabase}" is the default target for this backup (<source>_<backup time>), so an earlier restore of this backup may have made it. Use that database; or drop it (DROP DATABASE "${targetDatabase}") and run the restore again; or set PGKEEP_RESTORE_TARGET_DATABASE to a database that does not exist yet; or ${replaceDeliberately}.`
      : `Restore into a new database (set PGKEEP_RESTORE_TARGET_DATABASE to a name that does not exist yet, or leave it unset for one named after the backup), or ${replaceDeliberately}.`,
  );
}

export async function dropDatabase(connection: ConnectionSettings, database: string): Promise<void> {
  await withDatabase(connection, connection.database, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`));
}

// ---------------------------------------------------------------------------------------------
// Comparing with the manifest

/**
 * Every table the manifest lists is counted in the restored database, also those the backup only
 * estimated: the count(*) that PGKEEP_EXACT_COUNT_MAX_MB spares the production source is a read of
 * a database this task has just written, with no users yet, and it costs a fraction of the restore.
 * Left out, those tables (most of the rows of a large database) would pass unchecked.
 */
export async function compareWithManifest(connection: ConnectionSettings, database: string, manifest: Manifest): Promise<TableComparison> {
  return withDatabase(connection, database, async (client) => {
    const comparison: TableComparison = { tablesCompared: 0, tablesComparedWithEstimate: 0, tablesNotCompared: [], mismatches: [] };
    const { rows: present } = await client.query<{
      schema: string;
      table: string;
    }>(`SELECT n.nspname AS schema, c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`);
    const presentNames = new Set(present.map((row) => `${row.schema}.${row.table}`));
    const expectedNames = new Set(manifest.tables.map((table) => `${table.schema}.${table.table}`));
    for (const table of manifest.tables) {
      const name = `${table.schema}.${table.table}`;
      if (!presentNames.has(name)) {
        comparison.mismatches.push(`table ${name} is missing (the manifest lists ${table.rows ?? 'an unknown number of'} rows)`);
        continue;
      }
      const { rows } = await client.query<{ count: string }>(
        `SELECT count(*) AS count FROM ONLY ${client.escapeIdentifier(table.schema)}.${client.escapeIdentifier(table.table)}`,
      );
      const count = Number(rows[0]?.count ?? 0);
      const compared = compareCount(name, count, table);
      if (compared.kind === 'not-compared') {
        comparison.tablesNotCompared.push(compared.note);
        continue;
      }
      if (compared.kind === 'exact') comparison.tablesCompared += 1;
      else comparison.tablesComparedWithEstimate += 1;
      if (compared.mismatch) comparison.mismatches.push(compared.mismatch);
    }
    for (const name of presentNames)
      if (!expectedNames.has(name)) comparison.mismatches.push(`table ${name} is not in the backup (it was in the target before the restore)`);
    return comparison;
  });
}

type CountComparison = { kind: 'exact' | 'estimate'; mismatch: string | undefined } | { kind: 'not-compared'; note: string };

/** One restored table's exact count against what the manifest says: an exact count, an estimate, or nothing. */
export function compareCount(name: string, count: number, table: Pick<Manifest['tables'][number], 'rows' | 'rowsSource'>): CountComparison {
  if (table.rows === null) return { kind: 'not-compared', note: `${name}: restored with ${count} rows; the manifest has no count or estimate to compare with` };
  if (table.rowsSource === 'exact')
    return { kind: 'exact', mismatch: count === table.rows ? undefined : `table ${name} has ${count} rows; the manifest says ${table.rows}` };
  const withinTolerance = Math.abs(count - table.rows) <= ESTIMATE_TOLERANCE * table.rows;
  return {
    kind: 'estimate',
    mismatch: withinTolerance
      ? undefined
      : `table ${name} has ${count} rows; the manifest's planner estimate (not an exact count) is ${table.rows}, more than ${ESTIMATE_TOLERANCE * 100} % away: rows may be missing`,
  };
}

// ---------------------------------------------------------------------------------------------
// Streaming the archive into pg_restore

export function pickPgRestore(clients: PgBinary[], archiveMajor: number): PgBinary | undefined {
  return clients.filter((client) => client.major >= archiveMajor).sort((a, b) => b.major - a.major)[0];
}

function pgRestoreArguments(config: Pick<RestoreConfig, 'noOwner' | 'jobs'>, targetDatabase: string): string[] {
  // Always into a database that holds nothing yet: replace mode restores beside the target and
  // swaps the copy in (restore-target.ts), so nothing needs --clean, and a failure drops the copy.
  const args = ['--exit-on-error', '--dbname', targetDatabase];
  if (config.noOwner) args.push('--no-owner', '--no-privileges');
  if (config.jobs > 1) args.push('--jobs', String(config.jobs));
  return args;
}

/** The body stops with the signal: every reader of it (proof, download, stream) is stopped by SIGTERM. */
async function getObjectStream(
  s3: S3Client,
  bucket: string,
  manifest: Manifest,
  signal: AbortSignal,
  ifMatch?: string,
): Promise<{ body: Readable; etag: string | undefined }> {
  const versionId = pinnedVersionId(manifest.object.versionId);
  const object = await s3.send(
    new GetObjectCommand({
      Bucket: bucket,
      Key: manifest.object.key,
      ...(versionId ? { VersionId: versionId } : {}),
      ...(ifMatch ? { IfMatch: ifMatch } : {}),
    }),
    { abortSignal: signal },
  );
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
async function restoreObject(
  s3: S3Client,
  config: RestoreConfig,
  manifest: Manifest,
  pgRestore: PgBinary,
  targetDatabase: string,
  createdTarget: boolean,
  logger: Logger,
  signal: AbortSignal,
): Promise<string> {
  const env = libpqEnvironment({ ...config.target, database: targetDatabase }, APPLICATION_NAME);
  const pgRestoreFailure = (stderr: string): PgRestoreFailure =>
    explainPgRestoreError(stderr, {
      pgRestoreVersion: pgRestore.version,
      noOwner: config.noOwner,
      targetUser: config.target.user,
      targetDatabase,
      createdTarget,
    });
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
    const directory = await makeScratchDirectory('pgkeep-restore-', "the parallel restore's download directory", {
      alternative: 'Or restore with PGKEEP_RESTORE_JOBS=1 (streaming, no disk).',
    });
    try {
      const free = await statfs(directory);
      if (free.bavail * free.bsize < needed) {
        throw new BackupFailure(
          'restore',
          `Parallel restore needs about ${Math.ceil(needed / 2 ** 30)} GiB in ${tmpdir()}, which has ${Math.floor((free.bavail * free.bsize) / 2 ** 30)} GiB free.`,
          moreEphemeralStorage(needed),
        );
      }
      const archivePath = join(directory, 'archive.dump');
      const object = await getObjectStream(s3, config.s3.bucket, manifest, signal, ifMatch);
      const hash = createHash('sha256');
      let bytes = 0;
      object.body.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      // zstd's stderr is kept for the failure message: the task's own output is JSON lines only.
      const zstd = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let zstdStderr = '';
      zstd.stderr.setEncoding('utf8');
      zstd.stderr.on('data', (text: string) => {
        zstdStderr = (zstdStderr + text).slice(-4096);
      });
      const zstdExit = new Promise<number | null>((resolve) => zstd.once('close', resolve));
      const [download, write] = await Promise.allSettled([pipeline(object.body, zstd.stdin), pipeline(zstd.stdout, createWriteStream(archivePath))]);
      if (download.status === 'rejected' || write.status === 'rejected') {
        zstd.kill('SIGTERM');
        const errors = [write, download].flatMap((settled) => (settled.status === 'rejected' ? [settled.reason as NodeJS.ErrnoException] : []));
        const full = errors.find((error) => error.code === 'ENOSPC' || error.code === 'EDQUOT');
        if (full) throw await ephemeralStorageFull(full, archivePath, manifest);
        // As before: the download's own error (a network failure, SIGTERM) comes first.
        throw (download.status === 'rejected' ? download.reason : errors[0]) as Error;
      }
      const actual = { sha256: hash.digest('hex'), bytes };
      if (actual.sha256 !== manifest.object.sha256 || actual.bytes !== manifest.object.bytes) throw checksumFailure(config.s3.bucket, manifest, actual);
      const zstdCode = await zstdExit;
      if (zstdCode !== 0)
        throw new BackupFailure(
          'restore',
          `zstd could not decompress the backup (exit ${zstdCode}): ${zstdStderr.trim()}`,
          'The object is damaged although its checksum matched the manifest, so the backup was stored this way: report this, and restore an earlier backup.',
        );
      const status = await runProcess(pgRestore.path, [...args, archivePath], env, signal);
      if (status.code !== 0) throw pgRestoreFailure(status.stderr);
      return actual.sha256;
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }

  const object = await getObjectStream(s3, config.s3.bucket, manifest, signal, ifMatch);
  const read = await feedArchive(object.body, { binary: pgRestore.path, args, env, signal });
  const actual = { sha256: read.sha256, bytes: read.bytes };
  if (actual.sha256 !== manifest.object.sha256 || actual.bytes !== manifest.object.bytes) throw checksumFailure(config.s3.bucket, manifest, actual);
  // When pg_restore stops early (a missing role, a conflict), zstd dies writing to it: that broken
  // pipe is a consequence, and pg_restore's own error is the cause to report.
  if (read.decompressor.code !== 0 && !read.decompressor.stoppedByConsumer) {
    const how = read.decompressor.signal ? `killed by ${read.decompressor.signal}` : `exit ${read.decompressor.code}`;
    throw new BackupFailure(
      'restore',
      `zstd could not decompress the backup (${how}): ${read.decompressor.stderr.trim()}`,
      'The object is damaged although its checksum matched the manifest, so the backup was stored this way: report this, and restore an earlier backup.',
    );
  }
  if (read.consumer.code !== 0) throw pgRestoreFailure(read.consumer.stderr);
  return actual.sha256;
}

function moreEphemeralStorage(neededBytes: number): string {
  return (
    `Give the restore task more ephemeral storage: raise restore.ephemeralStorageGiB (21 to 200 GiB; this backup needs about ${Math.ceil(neededBytes / 2 ** 30)} GiB in ${tmpdir()}) in the environment's pgkeep configuration and deploy, then restore again. ` +
    'Or restore with PGKEEP_RESTORE_JOBS=1, which streams the backup into pg_restore and needs no disk.'
  );
}

/** The filesystem under TMPDIR filled up while the archive was being written to it. */
async function ephemeralStorageFull(error: NodeJS.ErrnoException, archivePath: string, manifest: Manifest): Promise<BackupFailure> {
  const written = await stat(archivePath).then(
    (info) => info.size,
    () => 0,
  );
  const expected = manifest.dump.uncompressedBytes;
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return new BackupFailure(
    'restore',
    `The parallel restore's download filled the ephemeral storage: ${error.code} (no space left on device) in ${tmpdir()} after ${mib(written)} of the ${expected === null ? 'uncompressed archive' : `archive's ${mib(expected)}`}. The partial download was deleted.`,
    moreEphemeralStorage((expected ?? manifest.object.bytes * 6) * 1.1),
    { cause: error },
  );
}

/** What stopped pg_restore, as far as its message tells: each has its own remedy. */
export type PgRestoreReason =
  | 'missing-role'
  | 'not-member-of-role'
  | 'insufficient-privilege'
  | 'missing-tablespace'
  | 'object-exists'
  | 'missing-extension'
  | 'disk-full'
  | 'damaged-archive'
  | 'other';

/** pg_restore failed: its own error, with the remedy for the reason it gives. */
export class PgRestoreFailure extends BackupFailure {
  override name = 'PgRestoreFailure';
  constructor(
    readonly reason: PgRestoreReason,
    /** The role or tablespace the message names, when it names one. */
    readonly subject: string | undefined,
    message: string,
    remedy: string,
  ) {
    super('restore', message, remedy);
  }
}

export interface PgRestoreContext {
  pgRestoreVersion: string;
  /** PGKEEP_RESTORE_NO_OWNER: ownership and privileges were already skipped. */
  noOwner: boolean;
  /** The user pg_restore connected as. */
  targetUser: string;
  targetDatabase: string;
  /** The restore created the target, from the target server's template1. */
  createdTarget: boolean;
}

const quoteIdentifier = (name: string): string => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`);

export function explainPgRestoreError(stderr: string, context: PgRestoreContext): PgRestoreFailure {
  const message = redactSecrets(stderr.trim().split('\n').slice(-8).join('\n'));
  const failure = (reason: PgRestoreReason, remedy: string, subject?: string): PgRestoreFailure =>
    new PgRestoreFailure(reason, subject, `pg_restore ${context.pgRestoreVersion} failed: ${message}`, remedy);
  const user = quoteIdentifier(context.targetUser);

  const withoutOwnership = context.noOwner ? '' : `, or set PGKEEP_RESTORE_NO_OWNER=true (the objects then belong to ${user} and no privileges are restored)`;
  const notMember = /must be member of role "([^"]+)"/i.exec(message);
  if (notMember) {
    const role = quoteIdentifier(notMember[1]!);
    // GRANT role TO user alone is not enough: ALTER ... OWNER TO also needs the new owner's CREATE
    // privilege on the schema, which it cannot have in the database the restore has just created.
    return failure(
      'not-member-of-role',
      `The target user ${user} is neither a superuser nor a member of role ${role}, so it cannot make ${role} the owner of restored objects. Restore again connected as a superuser${withoutOwnership}.`,
      notMember[1],
    );
  }
  const missingRole = /role "([^"]+)" does not exist/i.exec(message);
  if (missingRole) {
    const role = quoteIdentifier(missingRole[1]!);
    return failure(
      'missing-role',
      context.noOwner
        ? `The target server has no role ${role}, which the backup names in an object that is restored even without ownership and privileges (a user mapping or a row-level security policy, for example). Create the role on the target server (CREATE ROLE ${role}), then restore again.`
        : `The target server has no role ${role}, which owns objects in the backup or holds privileges on them. Create it there (CREATE ROLE ${role}), or set PGKEEP_RESTORE_NO_OWNER=true to restore without ownership and privileges (the objects then belong to ${user}); then restore again.`,
      missingRole[1],
    );
  }
  const missingTablespace = /tablespace "([^"]+)" does not exist/i.exec(message);
  if (missingTablespace) {
    const tablespace = quoteIdentifier(missingTablespace[1]!);
    return failure(
      'missing-tablespace',
      `The backup puts tables or indexes in tablespace ${tablespace}, which the target server lacks. Create it there as a superuser (CREATE TABLESPACE ${tablespace} LOCATION '<an empty directory the server owns>'), then restore again; pgkeep has no setting to restore without tablespaces (pg_restore --no-tablespaces).`,
      missingTablespace[1],
    );
  }
  if (/already exists/i.test(message)) {
    return failure(
      'object-exists',
      context.createdTarget
        ? `The database the restore created already held that object: CREATE DATABASE copies the target server's template1, so an object someone added to template1 is in every new database. Drop it from template1 on the target server (or restore into a server whose template1 holds none of the backup's objects), then restore again; the half-restored database was dropped.`
        : `The target database "${context.targetDatabase}" already held that object, although it had no tables: restore into a new database (leave PGKEEP_RESTORE_TARGET_DATABASE unset), or drop the object from the target; then restore again.`,
    );
  }
  if (/permission denied|must be owner of|must be superuser/i.test(message)) {
    return failure(
      'insufficient-privilege',
      `The target user ${user} lacks a privilege this restore needs (pg_restore's message says which). Restore again connected as a superuser${withoutOwnership}.`,
    );
  }
  if (/extension|could not open extension control file/i.test(message)) {
    return failure(
      'missing-extension',
      'The backup uses an extension the target server does not have installed: install it on the target, then restore again.',
    );
  }
  if (/No space left on device|could not extend file/i.test(message)) {
    return failure(
      'disk-full',
      'The target server ran out of disk space: give its storage room for the whole restored database (indexes included), then restore again.',
    );
  }
  if (
    /could not read (from )?input file|unexpected end of file|did not find magic string|does not appear to be a valid archive|unrecognized data block type|could not uncompress|invalid compression code|corrupt/i.test(
      message,
    )
  ) {
    return failure(
      'damaged-archive',
      'The archive is damaged although its SHA-256 matched the manifest, so the backup was stored this way: report this, and restore an earlier backup (PGKEEP_RESTORE_BACKUP=<timestamp or backup id>).',
    );
  }
  return failure('other', "Read pg_restore's message above, fix the cause on the target, and restore again.");
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
    throw new BackupFailure(
      'refused',
      `Backup ${manifest.backupId} of "${manifest.database}" failed verification (${resolved.verification.method ?? 'unknown check'}, ${resolved.verification.verifiedAt ?? 'unknown time'}).`,
      'Restore an earlier backup, or set PGKEEP_RESTORE_FORCE_UNVERIFIED=true if you must try this one (the restore still checks its SHA-256).',
    );
  }
  if (resolved.verification?.status !== 'verified')
    logger.warn('restoring a backup that is not marked verified; its SHA-256 is checked during the restore', {
      backupId: manifest.backupId,
      verification: resolved.verification?.status ?? 'none',
    });

  const [pgRestore] = [pickPgRestore(await findPgBinaries('pg_restore'), manifest.dump.major)];
  if (!pgRestore) {
    throw new BackupFailure(
      'restore',
      `The backup was made by pg_dump ${manifest.dump.version}, and no installed pg_restore is that new.`,
      `Install a PostgreSQL ${manifest.dump.major} (or newer) client; the pgkeep image ships the newest.`,
    );
  }
  await ensureReadable(s3, config.s3.bucket, manifest.object.key, config.archive, logger, signal, pinnedVersionId(manifest.object.versionId));

  const targetDatabase = config.targetDatabase ?? defaultTargetDatabase(manifest.database, new Date(manifest.startedAt));
  const { created, replacing } = await prepareTarget(config, targetDatabase);
  // Replace mode restores into a copy beside the target; the target is not touched until the swap.
  const restoreInto = replacing ? await createReplacementDatabase(config.target, targetDatabase) : targetDatabase;
  const dropsOnFailure = created || replacing;
  const dropRestored = async (): Promise<void> => {
    try {
      await dropDatabase(config.target, restoreInto);
      logger.info('dropped the half-restored database', { targetDatabase: restoreInto });
    } catch (dropError) {
      logger.error('could not drop the half-restored database; drop it by hand', {
        targetDatabase: restoreInto,
        error: redactSecrets((dropError as Error).message),
      });
    }
  };
  logger.info('restoring', {
    backupId: manifest.backupId,
    key: manifest.object.key,
    targetDatabase,
    ...(replacing ? { restoringInto: restoreInto } : {}),
    createdTarget: created,
    mode: config.mode,
    jobs: config.jobs,
    pgRestore: pgRestore.version,
  });
  const started = Date.now();
  let sha256: string;
  try {
    sha256 = await restoreObject(s3, config, manifest, pgRestore, restoreInto, created, logger, signal);
  } catch (caught) {
    const remedy = replacing
      ? `"${targetDatabase}" was not changed (replace mode restores into a copy beside it); the partial copy was dropped. Run the restore again.`
      : created
        ? 'The half-restored database was dropped. Run the restore again.'
        : `The existing target "${targetDatabase}" may now hold part of the backup: drop it (or empty it), then run the restore again.`;
    const error = signal.aborted
      ? new BackupFailure('interrupted', 'The restore was stopped by a signal (ECS sends SIGTERM when a task is stopped) before it finished.', remedy)
      : caught;
    // A database this run created holds only a partial restore: it must not look like a good one.
    if (dropsOnFailure) await dropRestored();
    throw error;
  }
  const restoreSeconds = (Date.now() - started) / 1000;
  if (!replacing) {
    const comparison = await compareWithManifest(config.target, targetDatabase, manifest);
    return { backup: resolved, targetDatabase, createdTarget: created, restoreSeconds, sha256, comparison };
  }
  try {
    const comparison = await compareWithManifest(config.target, restoreInto, manifest);
    // A copy that differs from its manifest must not take the target's place; it stays for inspection.
    if (comparison.mismatches.length > 0)
      return {
        backup: resolved,
        targetDatabase: restoreInto,
        createdTarget: true,
        restoreSeconds,
        sha256,
        comparison,
        replacement: { target: targetDatabase, swapped: false, sessionsEnded: 0 },
      };
    await carryOverProperties(config.target, targetDatabase, restoreInto);
    const swap = await swapIn(config.target, targetDatabase, restoreInto);
    if (swap.sessionsEnded > 0) logger.warn('ended the sessions connected to the database being replaced', { targetDatabase, sessions: swap.sessionsEnded });
    logger.info('swapped the restored copy in', { targetDatabase, previousContents: swap.previous });
    try {
      await dropDatabase(config.target, swap.previous);
    } catch (dropError) {
      logger.warn('replaced, but could not drop the previous database; it is kept under another name', {
        targetDatabase,
        previousDatabase: swap.previous,
        error: redactSecrets((dropError as Error).message),
        remedy: `"${targetDatabase}" now holds the backup. Drop "${swap.previous}" (the contents it replaced) once nothing needs it: DROP DATABASE "${swap.previous}".`,
      });
    }
    return {
      backup: resolved,
      targetDatabase,
      createdTarget: false,
      restoreSeconds,
      sha256,
      comparison,
      replacement: { target: targetDatabase, swapped: true, sessionsEnded: swap.sessionsEnded },
    };
  } catch (error) {
    await dropRestored();
    throw error;
  }
}
