/**
 * The restore command end to end: the task runs as its own process (as ECS runs it, configured
 * only through the environment) against a real PostgreSQL (a throwaway cluster from this
 * machine's binaries) and moto_server, restoring backups that the real backup command wrote.
 * Every scenario backs up under its own catalog name, so no test sees another's backups, damage
 * or tags. Restores go into the same cluster as the sources, so source and restored database can
 * be compared directly.
 *
 * Against moto only. Most scenarios use the stacks' bucket shape with `objectLock` (versioned,
 * Object Lock default retention), where the restore reads the version its manifest records. Damage
 * to a backup's object needs a bucket without versions (an S3-compatible store, or one never
 * versioned): there an overwrite replaces the only copy; on a versioned bucket it cannot touch the
 * recorded version, which another test shows. fauxqs would add nothing the unversioned moto bucket
 * does not: the restore reads the same way whatever checksums the store keeps.
 */
import { execFile } from 'node:child_process';
import { readFileSync, watch } from 'node:fs';
import { appendFile, chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { Backup } from '../../runtime/listing.ts';
import { parseManifest } from '../../catalog/manifest.ts';
import { mergeTags, verificationTags } from '../../runtime/verification.ts';
import { createSampleDatabase } from '../../dev/sample-database.ts';
import { startTask, type TaskExit, type TaskLogLine } from '../../dev/task-process.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { backUpWithTask, childPid, createIncompressibleDatabase, schemaOf, withClient } from '../support/backup-harness.ts';
import { startLocalCloudWatch, type LocalCloudWatch } from '../support/local-cloudwatch.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import { fingerprintOf, logLine, restoreFailureOf, userRelations } from '../support/restore-harness.ts';
import { isObjectDownload, startS3FaultProxy, type S3FaultProxy } from '../support/s3-fault-proxy.ts';

const SOURCE = { tiny: 'tiny', evolving: 'evolving', sample: 'sample', bulk: 'bulk' } as const;
const execFileAsync = promisify(execFile);
const TINY_ROWS = { customers: 2000, orders: 10_000, audit_log: 25 };

let cluster: ThrowawayCluster;
/** Versioned, Object Lock with default retention: the stacks' bucket with `objectLock`. */
let locked: MotoS3;
let unversioned: MotoS3;
let proxy: S3FaultProxy;
let s3: S3Client;

beforeAll(async () => {
  [cluster, locked] = await Promise.all([startThrowawayCluster(), startMotoS3({ bucket: 'pgkeep-restore-test' })]);
  unversioned = await locked.addBucket('pgkeep-restore-test-unversioned', { kind: 'unversioned' });
  proxy = await startS3FaultProxy(locked.endpoint);
  s3 = locked.client();
  await cluster.createDatabase(SOURCE.tiny);
  await withClient(connectionTo(SOURCE.tiny), (client) => createTinyDatabase(client, TINY_ROWS));
  await cluster.createDatabase(SOURCE.evolving);
  await withClient(connectionTo(SOURCE.evolving), (client) => client.query('CREATE TABLE events (id serial PRIMARY KEY, happened text NOT NULL)'));
  await cluster.createDatabase(SOURCE.sample);
  await withClient(connectionTo(SOURCE.sample), (client) => createSampleDatabase(client, { sizeMb: 20 }));
  // ~8 MiB of incompressible rows: a download big enough to be stopped half-way.
  await createIncompressibleDatabase(cluster, SOURCE.bulk, 8);
});

afterAll(async () => {
  await proxy?.stop();
  await locked?.stop();
  await cluster?.stop();
});

// ---------------------------------------------------------------------------------------------
// Arrange and inspect

function connectionTo(database: string): string {
  return cluster.connectionString(database);
}

async function createTinyDatabase(client: pg.Client, rows: { customers: number; orders: number; audit_log: number }): Promise<void> {
  await client.query('CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL)');
  await client.query('CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric(10, 2) NOT NULL)');
  await client.query('CREATE TABLE audit_log (id serial PRIMARY KEY, note text)');
  await client.query("INSERT INTO customers SELECT g, 'customer ' || md5(g::text) FROM generate_series(1, $1::int) g", [rows.customers]);
  await client.query('INSERT INTO orders SELECT g, 1 + g % $2::int, (g % 997) / 3.0 FROM generate_series(1, $1::int) g', [rows.orders, rows.customers]);
  await client.query("INSERT INTO audit_log (note) SELECT 'note ' || g FROM generate_series(1, $1::int) g", [rows.audit_log]);
}

/** Runs the real backup command for `source`, catalogued as `catalogName`; returns the new backup. */
function backUp(source: string, catalogName: string, bucket: MotoS3 = locked): Promise<Backup> {
  return backUpWithTask(s3, bucket, cluster.env(source), catalogName);
}

/** The restore task's environment, as a user would set it in the ECS console's "Run task". */
function restoreEnvironment(catalogName: string, settings: Record<string, string> = {}, bucket: MotoS3 = locked): Record<string, string> {
  return {
    ...bucket.taskEnvironment(),
    ...cluster.env('postgres'),
    PGKEEP_ENVIRONMENT: 'test',
    PGKEEP_RESTORE_SOURCE: catalogName,
    ...settings,
  };
}

function restore(catalogName: string, settings: Record<string, string> = {}, bucket: MotoS3 = locked): Promise<TaskExit> {
  return startTask({ command: 'restore', env: restoreEnvironment(catalogName, settings, bucket) }).exited;
}

/** `<catalog name>_<yyyymmdd_hhmmss>` of the backup's start (UTC): the default target's name. */
function defaultTargetName(catalogName: string, startedAt: Date): string {
  const iso = startedAt.toISOString(); // 2026-11-23T18:32:54.123Z
  return `${catalogName}_${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

async function databaseExists(name: string): Promise<boolean> {
  return withClient(connectionTo('postgres'), async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
}

async function databasesNamedLike(catalogName: string): Promise<string[]> {
  return withClient(connectionTo('postgres'), async (client) => {
    const { rows } = await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE starts_with(datname, $1 || '_') ORDER BY 1", [catalogName]);
    return rows.map((row) => row.datname);
  });
}

/** Row count of every user table (partitions by themselves), keyed by schema.table. */
async function rowCounts(database: string): Promise<Record<string, number>> {
  return withClient(connectionTo(database), async (client) => {
    const counts: Record<string, number> = {};
    for (const { schema, table } of await userRelations(client, ['r'])) {
      const { rows } = await client.query<{ count: string }>(
        `SELECT count(*) AS count FROM ONLY ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)}`,
      );
      counts[`${schema}.${table}`] = Number(rows[0]?.count);
    }
    return counts;
  });
}

async function relationCount(database: string): Promise<number> {
  return withClient(connectionTo(database), async (client) => (await userRelations(client, ['r'])).length);
}

/** A byte in the middle of the object inverted; the size stays the same, as with silent corruption. */
async function flipMiddleByte(key: string, bucket: MotoS3): Promise<void> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: key }));
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
  await s3.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: key, Body: bytes }));
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A zombie (exited, not yet reaped) counts as gone. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------

describe('restoring into a new database', () => {
  it('restores the latest backup into <source>_<backup time>, with every table and row count of the source', async () => {
    // Arrange
    const catalogName = 'restore-latest';
    const backup = await backUp(SOURCE.tiny, catalogName);

    // Act
    const exit = await restore(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(exit.otherOutput).toEqual([]);
    const completed = logLine(exit, 'restore completed');
    const expectedTarget = defaultTargetName(catalogName, backup.startedAt);
    expect(completed).toMatchObject({ backupId: backup.backupId, targetDatabase: expectedTarget, createdTarget: true, mismatches: [] });
    expect(completed.tablesCompared).toBe(3);
    expect(await databaseExists(expectedTarget)).toBe(true);
    expect(await rowCounts(expectedTarget)).toEqual({
      'public.audit_log': TINY_ROWS.audit_log,
      'public.customers': TINY_ROWS.customers,
      'public.orders': TINY_ROWS.orders,
    });
    expect(await rowCounts(expectedTarget)).toEqual(await rowCounts(SOURCE.tiny));
  });

  it('restores, for a timestamp, the newest backup that started at or before it', async () => {
    // Arrange: three backups, each with 100 more events than the one before.
    const catalogName = 'restore-at-time';
    const backups: Backup[] = [];
    for (let round = 1; round <= 3; round += 1) {
      await withClient(connectionTo(SOURCE.evolving), (client) =>
        client.query("INSERT INTO events (happened) SELECT 'round ' || $1 FROM generate_series(1, 100)", [round]),
      );
      backups.push(await backUp(SOURCE.evolving, catalogName));
    }
    const [, second, third] = backups as [Backup, Backup, Backup];
    const between = new Date((second.startedAt.getTime() + third.startedAt.getTime()) / 2);
    expect(between.getTime()).toBeGreaterThan(second.startedAt.getTime());
    expect(between.getTime()).toBeLessThan(third.startedAt.getTime());

    // Act
    const exit = await restore(catalogName, { PGKEEP_RESTORE_BACKUP: between.toISOString() });

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'backup chosen').backupId).toBe(second.backupId);
    const target = defaultTargetName(catalogName, second.startedAt);
    expect(logLine(exit, 'restore completed').targetDatabase).toBe(target);
    expect(await rowCounts(target)).toEqual({ 'public.events': 200 });
  });

  it('restores into a database identical to the source: schema, rows, large objects and sequences', async () => {
    // Arrange: partitions, enums, domains, views, materialized views, functions, triggers,
    // sequences, generated columns, large objects, jsonb, arrays and non-ASCII identifiers.
    const catalogName = 'restore-fidelity';
    const backup = await backUp(SOURCE.sample, catalogName);

    // Act
    const exit = await restore(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    const target = defaultTargetName(catalogName, backup.startedAt);
    expect(logLine(exit, 'restore completed').targetDatabase).toBe(target);
    expect(await schemaOf(connectionTo(target))).toBe(await schemaOf(connectionTo(SOURCE.sample)));
    const restored = await fingerprintOf(connectionTo(target));
    const source = await fingerprintOf(connectionTo(SOURCE.sample));
    expect(restored).toEqual(source);
    // The comparison must have covered what the sample database is made of.
    expect(Object.keys(source)).toEqual(
      expect.arrayContaining([
        'rows of données.clients_été',
        'rows of analytics.events_2024_01',
        'rows of analytics.monthly_revenue',
        'sequence inventory.product_id_seq',
      ]),
    );
    expect(source['large objects']).toMatch(/^2 objects/);
  });

  it('restores in parallel (PGKEEP_RESTORE_JOBS=2) through a temporary file that it removes', async () => {
    // Arrange: a private, empty TMPDIR whose entries are watched while the task runs.
    const catalogName = 'restore-parallel';
    const backup = await backUp(SOURCE.tiny, catalogName);
    const temporaryDirectory = await mkdtemp(join(tmpdir(), 'pgkeep-restore-tmpdir-'));
    const created: string[] = [];
    const watcher = watch(temporaryDirectory, (_event, name) => {
      if (name && !created.includes(name)) created.push(name);
    });

    try {
      // Act (tsx's own compile cache would otherwise land in TMPDIR too)
      const exit = await restore(catalogName, { PGKEEP_RESTORE_JOBS: '2', TMPDIR: temporaryDirectory, TSX_DISABLE_CACHE: '1' });

      // Assert
      expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
      expect(logLine(exit, 'restoring').jobs).toBe(2);
      const target = defaultTargetName(catalogName, backup.startedAt);
      expect(await rowCounts(target)).toEqual(await rowCounts(SOURCE.tiny));
      expect(created.some((name) => name.startsWith('pgkeep-restore-'))).toBe(true);
      expect(await readdir(temporaryDirectory)).toEqual([]);
    } finally {
      watcher.close();
      await rm(temporaryDirectory, { recursive: true, force: true });
    }
  });
});

describe('restoring from a versioned bucket', () => {
  it.each([
    ['into a new database', {}],
    [
      'over an existing database (replace mode proves the object first)',
      { PGKEEP_RESTORE_TARGET_DATABASE: 'versioned_replace', PGKEEP_RESTORE_MODE: 'replace', PGKEEP_RESTORE_CONFIRM: 'versioned_replace' },
    ],
  ])('restores the version its manifest records, %s, although the key was overwritten after the backup', async (_label, settings) => {
    // Arrange: a later write to the key (a mistake, or an attacker without s3:DeleteObjectVersion)
    // makes damaged bytes the current version; Object Lock keeps the recorded one.
    const catalogName = `restore-versioned${'PGKEEP_RESTORE_MODE' in settings ? '-replace' : ''}`;
    const backup = await backUp(SOURCE.tiny, catalogName);
    const manifest = parseManifest(await (await s3.send(new GetObjectCommand({ Bucket: locked.bucket, Key: backup.manifestKey }))).Body!.transformToString());
    expect(manifest.object.versionId).toBeDefined();
    await flipMiddleByte(backup.dataKey, locked);
    const current = await s3.send(new HeadObjectCommand({ Bucket: locked.bucket, Key: backup.dataKey }));
    expect(current.VersionId).not.toBe(manifest.object.versionId);
    if ('PGKEEP_RESTORE_TARGET_DATABASE' in settings) await cluster.createDatabase(settings.PGKEEP_RESTORE_TARGET_DATABASE);

    // Act
    const exit = await restore(catalogName, { ...settings, PGKEEP_S3_ENDPOINT: proxy.endpoint });

    // Assert: every read of the data object, including the archive-tier check, named that version.
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    const completed = logLine(exit, 'restore completed');
    expect(completed.mismatches).toEqual([]);
    expect(await rowCounts(String(completed.targetDatabase))).toEqual(await rowCounts(SOURCE.tiny));
    const reads = proxy.requests.filter(
      (request) => request.path.endsWith(backup.dataKey) && (request.method === 'GET' || request.method === 'HEAD') && !request.query.has('tagging'),
    );
    expect(reads.length).toBeGreaterThan(1);
    expect(reads.map((request) => request.query.get('versionId'))).toEqual(reads.map(() => manifest.object.versionId));
  });
});

describe('restoring over an existing database', () => {
  async function createOccupiedTarget(name: string): Promise<void> {
    await cluster.createDatabase(name);
    await withClient(connectionTo(name), (client) => createTinyDatabase(client, { customers: 10, orders: 20, audit_log: 1 }));
  }

  it('refuses a non-empty target by default, says how to replace it, and leaves it unchanged', async () => {
    // Arrange
    const catalogName = 'restore-refuse';
    await backUp(SOURCE.tiny, catalogName);
    await createOccupiedTarget('occupied');
    const before = await fingerprintOf(connectionTo('occupied'));

    // Act
    const exit = await restore(catalogName, { PGKEEP_RESTORE_TARGET_DATABASE: 'occupied' });

    // Assert
    expect(exit.code).toBe(2);
    const failure = restoreFailureOf(exit);
    expect(failure.stage).toBe('refused');
    expect(failure.error).toContain('"occupied" already exists and is not empty');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_MODE=replace');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_CONFIRM=occupied');
    expect(await fingerprintOf(connectionTo('occupied'))).toEqual(before);
  });

  it('refuses to replace when PGKEEP_RESTORE_CONFIRM does not repeat the target name, and leaves it unchanged', async () => {
    // Arrange
    const catalogName = 'restore-replace-unconfirmed';
    await backUp(SOURCE.tiny, catalogName);
    await createOccupiedTarget('replace_unconfirmed');
    const before = await fingerprintOf(connectionTo('replace_unconfirmed'));

    // Act
    const exit = await restore(catalogName, {
      PGKEEP_RESTORE_TARGET_DATABASE: 'replace_unconfirmed',
      PGKEEP_RESTORE_MODE: 'replace',
      PGKEEP_RESTORE_CONFIRM: 'replace_unconfirme',
    });

    // Assert
    expect(exit.code).toBe(2);
    const failure = restoreFailureOf(exit);
    expect(failure.stage).toBe('refused');
    expect(failure.error).toContain('does not match the target database "replace_unconfirmed"');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_CONFIRM=replace_unconfirmed');
    expect(await fingerprintOf(connectionTo('replace_unconfirmed'))).toEqual(before);
  });

  it("replaces the target's contents with the backup's when replace mode is confirmed", async () => {
    // Arrange
    const catalogName = 'restore-replace';
    await backUp(SOURCE.tiny, catalogName);
    await createOccupiedTarget('replace_me');
    expect(await fingerprintOf(connectionTo('replace_me'))).not.toEqual(await fingerprintOf(connectionTo(SOURCE.tiny)));

    // Act
    const exit = await restore(catalogName, {
      PGKEEP_RESTORE_TARGET_DATABASE: 'replace_me',
      PGKEEP_RESTORE_MODE: 'replace',
      PGKEEP_RESTORE_CONFIRM: 'replace_me',
    });

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'restore completed')).toMatchObject({ targetDatabase: 'replace_me', createdTarget: false, mismatches: [] });
    expect(await fingerprintOf(connectionTo('replace_me'))).toEqual(await fingerprintOf(connectionTo(SOURCE.tiny)));
  });
});

describe('a backup that must not be trusted', () => {
  it('stops at a corrupted object (a bucket without versions), naming it, and drops the new database it had started to fill', async () => {
    // Arrange
    const catalogName = 'restore-corrupt';
    const backup = await backUp(SOURCE.tiny, catalogName, unversioned);
    await flipMiddleByte(backup.dataKey, unversioned);
    expect((await s3.send(new HeadObjectCommand({ Bucket: unversioned.bucket, Key: backup.dataKey }))).ContentLength).toBe(backup.dataBytes);

    // Act
    const exit = await restore(catalogName, {}, unversioned);

    // Assert
    expect(exit.code).toBe(1);
    const failure = restoreFailureOf(exit);
    expect(['checksum', 'restore']).toContain(failure.stage);
    expect(failure.error).toContain(backup.dataKey);
    const target = defaultTargetName(catalogName, backup.startedAt);
    expect(logLine(exit, 'restoring')).toMatchObject({ targetDatabase: target, createdTarget: true });
    expect(await databaseExists(target)).toBe(false);
    expect(await databasesNamedLike(catalogName)).toEqual([]);
  });

  it('leaves an existing target untouched when replacing it from a corrupted object (a bucket without versions)', async () => {
    // Arrange
    const catalogName = 'restore-corrupt-replace';
    const backup = await backUp(SOURCE.tiny, catalogName, unversioned);
    await flipMiddleByte(backup.dataKey, unversioned);
    await cluster.createDatabase('corrupt_replace_target');
    await withClient(connectionTo('corrupt_replace_target'), (client) => createTinyDatabase(client, { customers: 10, orders: 20, audit_log: 1 }));
    const before = await fingerprintOf(connectionTo('corrupt_replace_target'));

    // Act
    const exit = await restore(
      catalogName,
      { PGKEEP_RESTORE_TARGET_DATABASE: 'corrupt_replace_target', PGKEEP_RESTORE_MODE: 'replace', PGKEEP_RESTORE_CONFIRM: 'corrupt_replace_target' },
      unversioned,
    );

    // Assert
    expect(exit.code).toBe(1);
    const failure = restoreFailureOf(exit);
    expect(failure.stage).toBe('checksum');
    expect(failure.error).toContain(backup.dataKey);
    expect(await fingerprintOf(connectionTo('corrupt_replace_target'))).toEqual(before);
  });

  it('leaves an existing target untouched when the object was swapped for another valid archive that pg_restore alone would accept (a bucket without versions)', async () => {
    // Arrange: the data object now holds another database's backup; it decompresses and restores
    // cleanly, so only its checksum tells it apart, and that is known only after the last byte.
    const catalogName = 'restore-swapped-replace';
    const backup = await backUp(SOURCE.tiny, catalogName, unversioned);
    const donor = await backUp(SOURCE.evolving, 'restore-swapped-donor', unversioned);
    const donorObject = await s3.send(new GetObjectCommand({ Bucket: unversioned.bucket, Key: donor.dataKey }));
    await s3.send(new PutObjectCommand({ Bucket: unversioned.bucket, Key: backup.dataKey, Body: Buffer.from(await donorObject.Body!.transformToByteArray()) }));
    await cluster.createDatabase('swapped_replace_target');
    await withClient(connectionTo('swapped_replace_target'), (client) => createTinyDatabase(client, { customers: 10, orders: 20, audit_log: 1 }));
    const before = await fingerprintOf(connectionTo('swapped_replace_target'));

    // Act
    const exit = await restore(
      catalogName,
      { PGKEEP_RESTORE_TARGET_DATABASE: 'swapped_replace_target', PGKEEP_RESTORE_MODE: 'replace', PGKEEP_RESTORE_CONFIRM: 'swapped_replace_target' },
      unversioned,
    );

    // Assert
    expect(exit.code).toBe(1);
    const failure = restoreFailureOf(exit);
    expect(failure.stage).toBe('checksum');
    expect(failure.error).toContain(backup.dataKey);
    expect(await fingerprintOf(connectionTo('swapped_replace_target'))).toEqual(before);
  });

  it('reports row counts that differ from the manifest, listing each difference, and exits 4', async () => {
    // Arrange: the manifest claims one order more than the backup holds.
    const catalogName = 'restore-mismatch';
    const backup = await backUp(SOURCE.tiny, catalogName);
    const manifestObject = await s3.send(new GetObjectCommand({ Bucket: locked.bucket, Key: backup.manifestKey }));
    const manifest = JSON.parse(await manifestObject.Body!.transformToString()) as { tables: { schema: string; table: string; rows: number }[] };
    const orders = manifest.tables.find((table) => table.schema === 'public' && table.table === 'orders')!;
    orders.rows = TINY_ROWS.orders + 1;
    const rewritten = JSON.stringify(manifest, null, 2);
    expect(() => parseManifest(rewritten)).not.toThrow();
    await s3.send(new PutObjectCommand({ Bucket: locked.bucket, Key: backup.manifestKey, Body: rewritten }));

    // Act
    const exit = await restore(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(4);
    const report = logLine(exit, 'restore completed with differences from the manifest');
    expect(report.mismatches).toEqual([`table public.orders has ${TINY_ROWS.orders} rows; the manifest says ${TINY_ROWS.orders + 1}`]);
    expect(report.remedy).toContain('do not put it into service');
    expect(exit.logs.some((line) => line.message === 'restore completed')).toBe(false);
  });

  it('refuses a backup that failed verification unless PGKEEP_RESTORE_FORCE_UNVERIFIED=true', async () => {
    // Arrange
    const catalogName = 'restore-failed-verification';
    const backup = await backUp(SOURCE.tiny, catalogName);
    await mergeTags(s3, locked.bucket, backup.dataKey, verificationTags({ status: 'failed', method: 'crc64nvme', at: new Date() }));

    // Act
    const refused = await restore(catalogName);
    const nothingCreated = await databasesNamedLike(catalogName);
    const forced = await restore(catalogName, { PGKEEP_RESTORE_FORCE_UNVERIFIED: 'true' });

    // Assert
    expect(refused.code).toBe(2);
    const failure = restoreFailureOf(refused);
    expect(failure.stage).toBe('refused');
    expect(failure.error).toContain('failed verification');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_FORCE_UNVERIFIED=true');
    expect(nothingCreated).toEqual([]);

    expect(forced.code, JSON.stringify(forced.logs)).toBe(0);
    const target = defaultTargetName(catalogName, backup.startedAt);
    expect(logLine(forced, 'restore completed').targetDatabase).toBe(target);
    expect(await rowCounts(target)).toEqual(await rowCounts(SOURCE.tiny));
  });
});

describe('a restore that is stopped', () => {
  it('exits 143 on SIGTERM mid-restore and drops the half-restored database', async () => {
    // Arrange: the download stalls after its first bytes, when pg_restore has created the tables
    // and is waiting for rows.
    const catalogName = 'restore-sigterm';
    const backup = await backUp(SOURCE.bulk, catalogName);
    const target = defaultTargetName(catalogName, backup.startedAt);
    proxy.holdObjectDownloads({ afterBytes: 256 * 1024 });
    const task = startTask({ command: 'restore', env: restoreEnvironment(catalogName, { PGKEEP_S3_ENDPOINT: proxy.endpoint }) });
    try {
      await proxy.waitForRequest((request) => isObjectDownload(request) && request.path.includes(catalogName));
      await task.waitForLog((line) => line.message === 'restoring');
      await waitFor(async () => (await databaseExists(target)) && (await relationCount(target)) > 0, `${target} holds restored tables`);
      const pgRestorePid = await childPid(task.child.pid!, 'pg_restore');

      // Act
      task.child.kill('SIGTERM');
      const exit = await task.exited;

      // Assert
      expect(exit.code, JSON.stringify(exit.logs)).toBe(143);
      expect(restoreFailureOf(exit).stage).toBe('interrupted');
      expect(exit.logs.some((line) => line.message === 'dropped the half-restored database' && line.targetDatabase === target)).toBe(true);
      expect(await databaseExists(target)).toBe(false);
      expect(isAlive(pgRestorePid)).toBe(false);
    } finally {
      proxy.releaseObjectDownloads();
    }
  });

  it("exits 143 on SIGTERM during a parallel restore's download, dropping the new database and the temporary file", async () => {
    // Arrange
    const catalogName = 'restore-sigterm-parallel';
    const backup = await backUp(SOURCE.bulk, catalogName);
    const target = defaultTargetName(catalogName, backup.startedAt);
    const temporaryDirectory = await mkdtemp(join(tmpdir(), 'pgkeep-restore-tmpdir-'));
    proxy.holdObjectDownloads({ afterBytes: 256 * 1024 });
    const task = startTask({
      command: 'restore',
      env: restoreEnvironment(catalogName, {
        PGKEEP_S3_ENDPOINT: proxy.endpoint,
        PGKEEP_RESTORE_JOBS: '2',
        TMPDIR: temporaryDirectory,
        TSX_DISABLE_CACHE: '1',
      }),
    });
    try {
      await proxy.waitForRequest((request) => isObjectDownload(request) && request.path.includes(catalogName));
      await task.waitForLog((line) => line.message === 'restoring');
      await waitFor(async () => (await readdir(temporaryDirectory)).length > 0, 'the download has started into TMPDIR');

      // Act
      task.child.kill('SIGTERM');
      const exit = await Promise.race([task.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000))]);

      // Assert: ECS waits 30 s (stopTimeout) before it kills the task outright.
      expect(exit, 'the task was still running 30 s after SIGTERM').toBeDefined();
      expect(exit!.code, JSON.stringify(exit!.logs)).toBe(143);
      expect(restoreFailureOf(exit!).stage).toBe('interrupted');
      expect(await databaseExists(target)).toBe(false);
      expect(await readdir(temporaryDirectory)).toEqual([]);
    } finally {
      if (task.child.exitCode === null) task.child.kill('SIGKILL');
      proxy.releaseObjectDownloads();
      await rm(temporaryDirectory, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Issue 12: failures that tell the truth

/** Rewrites a backup's manifest (a newer version on the versioned bucket, which the restore reads). */
async function rewriteManifest(
  backup: Backup,
  edit: (manifest: { tables: { schema: string; table: string; rows: number | null; rowsSource: string }[] }) => void,
): Promise<void> {
  const object = await s3.send(new GetObjectCommand({ Bucket: locked.bucket, Key: backup.manifestKey }));
  const manifest = JSON.parse(await object.Body!.transformToString()) as Parameters<typeof edit>[0];
  edit(manifest);
  const rewritten = JSON.stringify(manifest, null, 2);
  expect(() => parseManifest(rewritten)).not.toThrow();
  await s3.send(new PutObjectCommand({ Bucket: locked.bucket, Key: backup.manifestKey, Body: rewritten }));
}

describe("a pg_restore failure names pg_restore's error and the remedy that fits it, not zstd's broken pipe", () => {
  /**
   * Another server, as when restoring into a new RDS instance: it has none of the source's roles
   * or tablespaces. Each backup holds 4 MiB of incompressible rows after the failing statement, so
   * zstd is still writing when pg_restore stops, and dies of the broken pipe.
   */
  let targetServer: ThrowawayCluster;
  let tablespaceDir: string;
  const RESTORER = { user: 'restorer', password: 'restorer-password-1' };

  beforeAll(async () => {
    targetServer = await startThrowawayCluster();
    await withClient(targetServer.connectionString('postgres'), async (client) => {
      await client.query('CREATE ROLE clerk');
      await client.query(`CREATE ROLE ${RESTORER.user} LOGIN CREATEDB PASSWORD '${RESTORER.password}'`);
    });
    // An object in template1 is copied into every database the restore creates.
    await withClient(targetServer.connectionString('template1'), (client) =>
      client.query("CREATE FUNCTION public.order_total(integer) RETURNS integer LANGUAGE sql AS 'SELECT $1'"),
    );

    await withClient(connectionTo('postgres'), async (client) => {
      await client.query('CREATE ROLE shop_owner');
      await client.query('CREATE ROLE clerk');
    });
    await createIncompressibleDatabase(cluster, 'owned_by_shop_owner', 4);
    await withClient(connectionTo('owned_by_shop_owner'), (client) => client.query('ALTER TABLE ledger OWNER TO shop_owner'));
    await createIncompressibleDatabase(cluster, 'owned_by_clerk', 4);
    await withClient(connectionTo('owned_by_clerk'), (client) => client.query('ALTER TABLE ledger OWNER TO clerk; ALTER TABLE noise OWNER TO clerk'));
    // The server runs as the postgres OS user when the tests run as root; it must own the location.
    tablespaceDir = await mkdtemp(join(tmpdir(), 'pgkeep-tablespace-'));
    if (process.getuid?.() === 0) {
      const { stdout } = await execFileAsync('id', ['-u', 'postgres']);
      const { stdout: gid } = await execFileAsync('id', ['-g', 'postgres']);
      await chown(tablespaceDir, Number(stdout.trim()), Number(gid.trim()));
    }
    await withClient(connectionTo('postgres'), (client) => client.query(`CREATE TABLESPACE fast_ssd LOCATION '${tablespaceDir}'`));
    await createIncompressibleDatabase(cluster, 'in_tablespace', 4);
    await withClient(connectionTo('in_tablespace'), (client) => client.query('ALTER TABLE ledger SET TABLESPACE fast_ssd'));
    await createIncompressibleDatabase(cluster, 'with_function', 4);
    await withClient(connectionTo('with_function'), (client) =>
      client.query("CREATE FUNCTION public.order_total(integer) RETURNS integer LANGUAGE sql AS 'SELECT $1'"),
    );
  });

  afterAll(async () => {
    await targetServer?.stop();
    // The shared cluster's checkpoints still write to the tablespace until it is dropped.
    await withClient(connectionTo('postgres'), async (client) => {
      await client.query('DROP DATABASE IF EXISTS in_tablespace');
      await client.query('DROP TABLESPACE IF EXISTS fast_ssd');
    });
    if (tablespaceDir) await rm(tablespaceDir, { recursive: true, force: true });
  });

  function restoreIntoTargetServer(catalogName: string, settings: Record<string, string> = {}): Promise<TaskExit> {
    return restore(catalogName, { ...targetServer.env('postgres'), ...settings });
  }

  function expectPgRestoreError(exit: TaskExit, pgRestoreError: string): TaskLogLine {
    expect(exit.code, JSON.stringify(exit.logs)).toBe(1);
    const failure = restoreFailureOf(exit);
    expect(failure.stage).toBe('restore');
    expect(failure.error).toMatch(/^pg_restore \S+ failed: /);
    expect(failure.error).toContain(pgRestoreError);
    expect(`${String(failure.error)} ${String(failure.remedy)}`).not.toMatch(/zstd|damaged/);
    return failure;
  }

  it('a role the target lacks: create it, or restore without ownership (PGKEEP_RESTORE_NO_OWNER=true), which then succeeds', async () => {
    // Arrange
    const catalogName = 'restore-missing-role';
    await backUp('owned_by_shop_owner', catalogName);

    // Act
    const exit = await restoreIntoTargetServer(catalogName);
    const withoutOwnership = await restoreIntoTargetServer(catalogName, { PGKEEP_RESTORE_NO_OWNER: 'true' });

    // Assert
    const failure = expectPgRestoreError(exit, 'role "shop_owner" does not exist');
    expect(failure.remedy).toContain('CREATE ROLE shop_owner');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_NO_OWNER=true');
    expect(withoutOwnership.code, JSON.stringify(withoutOwnership.logs)).toBe(0);
  });

  it('a target user that is neither superuser nor a member of the owning role: restore without ownership (which then succeeds) or as a superuser', async () => {
    // Arrange: the role exists on the target; the restoring user is not a superuser.
    const catalogName = 'restore-not-member';
    await backUp('owned_by_clerk', catalogName);
    const asRestorer = { PGUSER: RESTORER.user, PGPASSWORD: RESTORER.password };

    // Act
    const exit = await restoreIntoTargetServer(catalogName, asRestorer);
    const withoutOwnership = await restoreIntoTargetServer(catalogName, { ...asRestorer, PGKEEP_RESTORE_NO_OWNER: 'true' });

    // Assert
    const failure = expectPgRestoreError(exit, 'must be member of role "clerk"');
    expect(failure.remedy).toContain(`user ${RESTORER.user} is neither a superuser nor a member of role clerk`);
    expect(failure.remedy).toContain('PGKEEP_RESTORE_NO_OWNER=true');
    expect(failure.remedy).not.toContain('CREATE ROLE');
    expect(withoutOwnership.code, JSON.stringify(withoutOwnership.logs)).toBe(0);
  });

  it('a target user that is a member of the owning role, which may not create objects in the new database: restore without ownership or as a superuser', async () => {
    // Arrange: ALTER ... OWNER TO needs the membership and also the new owner's CREATE privilege
    // on the schema, which a role cannot have in a database created moments before.
    const catalogName = 'restore-member-without-create';
    await backUp('owned_by_clerk', catalogName);
    await withClient(targetServer.connectionString('postgres'), (client) => client.query(`GRANT clerk TO ${RESTORER.user}`));

    // Act
    const exit = await restoreIntoTargetServer(catalogName, { PGUSER: RESTORER.user, PGPASSWORD: RESTORER.password });

    // Assert
    const failure = expectPgRestoreError(exit, 'permission denied for schema public');
    expect(failure.remedy).toContain(`user ${RESTORER.user} lacks a privilege`);
    expect(failure.remedy).toContain('superuser');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_NO_OWNER=true');
  });

  it('a tablespace the target lacks: create it there', async () => {
    // Arrange
    const catalogName = 'restore-missing-tablespace';
    await backUp('in_tablespace', catalogName);

    // Act
    const exit = await restoreIntoTargetServer(catalogName);

    // Assert
    const failure = expectPgRestoreError(exit, 'Tablespace "fast_ssd" does not exist');
    expect(failure.remedy).toContain('CREATE TABLESPACE fast_ssd');
    expect(failure.remedy).not.toContain('PGKEEP_RESTORE_NO_OWNER');
  });

  it('an object the new database already has (copied from template1): remove it there, or restore where it is absent', async () => {
    // Arrange
    const catalogName = 'restore-conflict';
    const backup = await backUp('with_function', catalogName);

    // Act
    const exit = await restoreIntoTargetServer(catalogName);

    // Assert
    const failure = expectPgRestoreError(exit, 'function "order_total" already exists');
    expect(failure.remedy).toContain('template1');
    expect(failure.remedy).not.toContain('PGKEEP_RESTORE_NO_OWNER');
    const target = defaultTargetName(catalogName, backup.startedAt);
    expect(
      await withClient(
        targetServer.connectionString('postgres'),
        async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [target])).rowCount,
      ),
    ).toBe(0);
  });
});

describe('a parallel restore whose download fills the ephemeral storage', () => {
  // Mounting a small tmpfs (the task's /tmp, as Fargate's ephemeral storage) needs root.
  const canMount = process.getuid?.() === 0;

  /** Writes into `file` until its filesystem refuses with ENOSPC. */
  async function fillFilesystem(file: string): Promise<void> {
    for (let chunk = 1024 * 1024; chunk >= 4096; chunk /= 4) {
      try {
        for (;;) await appendFile(file, Buffer.alloc(chunk, 1));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  }

  it.skipIf(!canMount)(
    'says the ephemeral storage is full and how to give it more or restore without disk, removes the download and drops the new database',
    async () => {
      // Arrange: a 32 MiB /tmp passes the free-space check (the archive is ~17 MiB uncompressed); once the download
      // has begun, another writer on the same storage takes the rest.
      const catalogName = 'restore-enospc';
      const backup = await backUp(SOURCE.bulk, catalogName);
      const target = defaultTargetName(catalogName, backup.startedAt);
      const ephemeral = await mkdtemp(join(tmpdir(), 'pgkeep-ephemeral-'));
      await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=1777', 'tmpfs', ephemeral]);
      proxy.holdObjectDownloads({ afterBytes: 256 * 1024 });
      const task = startTask({
        command: 'restore',
        env: restoreEnvironment(catalogName, { PGKEEP_S3_ENDPOINT: proxy.endpoint, PGKEEP_RESTORE_JOBS: '2', TMPDIR: ephemeral, TSX_DISABLE_CACHE: '1' }),
      });
      try {
        await proxy.waitForRequest((request) => isObjectDownload(request) && request.path.includes(catalogName));
        await fillFilesystem(join(ephemeral, 'another-writer'));

        // Act
        proxy.releaseObjectDownloads();
        const exit = await task.exited;

        // Assert
        expect(exit.code, JSON.stringify(exit.logs)).toBe(1);
        const failure = restoreFailureOf(exit);
        expect(failure.stage).toBe('restore');
        expect(failure.error).toContain(ephemeral);
        expect(failure.error).toContain('no space left');
        expect(failure.remedy).toContain('restore.ephemeralStorageGiB');
        expect(failure.remedy).toContain('PGKEEP_RESTORE_JOBS=1');
        expect(failure.remedy).not.toContain('bug');
        expect(await databaseExists(target), JSON.stringify(exit.logs)).toBe(false);
        expect(await readdir(ephemeral)).toEqual(['another-writer']);
      } finally {
        if (task.child.exitCode === null) task.child.kill('SIGKILL');
        proxy.releaseObjectDownloads();
        await execFileAsync('umount', [ephemeral]).catch(() => undefined);
        await rm(ephemeral, { recursive: true, force: true });
      }
    },
  );
});

describe('tables whose row count the manifest only estimates (larger than PGKEEP_EXACT_COUNT_MAX_MB)', () => {
  let cloudWatch: LocalCloudWatch;
  beforeAll(async () => {
    cloudWatch = await startLocalCloudWatch();
    // Planner estimates exist once a table has been analyzed.
    await withClient(connectionTo(SOURCE.tiny), (client) => client.query('ANALYZE'));
  });
  afterAll(async () => {
    await cloudWatch?.stop();
  });

  /** Every table above a 0 MiB threshold: the manifest holds only planner estimates. */
  function backUpWithEstimates(catalogName: string): Promise<Backup> {
    return backUpWithTask(s3, locked, { ...cluster.env(SOURCE.tiny), PGKEEP_EXACT_COUNT_MAX_MB: '0' }, catalogName);
  }

  function restoreWithMetrics(catalogName: string): Promise<TaskExit> {
    return restore(catalogName, { PGKEEP_METRICS: 'cloudwatch', AWS_ENDPOINT_URL_CLOUDWATCH: cloudWatch.endpoint });
  }

  function published(catalogName: string, name: string): number[] {
    return cloudWatch.metrics.filter((metric) => metric.name === name && metric.dimensions.Database === catalogName).map((metric) => metric.value);
  }

  it('counts them in the restored database and compares the count with the estimate, saying so in the log and the metrics', async () => {
    // Arrange
    const catalogName = 'restore-estimates';
    await backUpWithEstimates(catalogName);

    // Act
    const exit = await restoreWithMetrics(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'restore completed')).toMatchObject({ tablesCompared: 0, tablesComparedWithEstimate: 3, tablesNotCompared: [], mismatches: [] });
    expect(published(catalogName, 'RestoreTablesComparedWithEstimate')).toEqual([3]);
    expect(published(catalogName, 'RestoreTablesNotCompared')).toEqual([0]);
  });

  it('reports a restored table with far fewer rows than its estimate as a difference, and exits 4', async () => {
    // Arrange: the estimate says 50 times the rows the backup holds (98 % missing).
    const catalogName = 'restore-estimate-far-off';
    const backup = await backUpWithEstimates(catalogName);
    await rewriteManifest(backup, (manifest) => {
      manifest.tables.find((table) => table.table === 'orders')!.rows = TINY_ROWS.orders * 50;
    });

    // Act
    const exit = await restoreWithMetrics(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(4);
    const report = logLine(exit, 'restore completed with differences from the manifest');
    expect(report.mismatches).toEqual([
      expect.stringMatching(
        new RegExp(
          `^table public\\.orders has ${TINY_ROWS.orders} rows; the manifest's planner estimate \\(not an exact count\\) is ${TINY_ROWS.orders * 50}, more than 25 % away`,
        ),
      ),
    ]);
    expect(published(catalogName, 'RestoreMismatches')).toEqual([1]);
  });

  it('names a table with no estimate at all (never analyzed) as not compared, in the log and the metrics', async () => {
    // Arrange
    const catalogName = 'restore-no-estimate';
    const backup = await backUpWithEstimates(catalogName);
    await rewriteManifest(backup, (manifest) => {
      manifest.tables.find((table) => table.table === 'audit_log')!.rows = null;
    });

    // Act
    const exit = await restoreWithMetrics(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    const completed = logLine(exit, 'restore completed');
    expect(completed).toMatchObject({ tablesComparedWithEstimate: 2, mismatches: [] });
    expect(completed.tablesNotCompared).toEqual([
      `public.audit_log: restored with ${TINY_ROWS.audit_log} rows; the manifest has no count or estimate to compare with`,
    ]);
    expect(published(catalogName, 'RestoreTablesNotCompared')).toEqual([1]);
  });
});
