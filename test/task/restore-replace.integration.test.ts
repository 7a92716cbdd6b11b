/**
 * Replace mode and the target's emptiness, end to end: the restore task runs as its own process
 * (configured only through the environment, as ECS runs it) against a real PostgreSQL (a throwaway
 * cluster from this machine's binaries) and moto_server, restoring backups the real backup command
 * wrote. Each scenario has its own catalog name and its own target database.
 *
 * What replace mode promises: the target ends up holding exactly the backup, keeps what belongs
 * to the database rather than to its contents (owner, privileges, settings, comment, locale), and
 * a replace that fails, is stopped or differs from the manifest leaves the target as it was.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups, type Backup } from '../../runtime/listing.ts';
import { parseManifest } from '../../catalog/manifest.ts';
import { startTask, type TaskExit } from '../../dev/task-process.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { backUpWithTask, createIncompressibleDatabase, schemaOf, withClient } from '../support/backup-harness.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import { isObjectDownload, startS3FaultProxy, type S3FaultProxy } from '../support/s3-fault-proxy.ts';
import { databaseNames, fingerprintOf, logLine, restoreFailureOf } from '../support/restore-harness.ts';

let cluster: ThrowawayCluster;
let moto: MotoS3;
let s3: S3Client;
let proxy: S3FaultProxy;

const SOURCE = { partitioned: 'partitioned', tiny: 'tiny' } as const;

beforeAll(async () => {
  [cluster, moto] = await Promise.all([startThrowawayCluster(), startMotoS3({ bucket: 'pgkeep-restore-replace-test' })]);
  s3 = moto.client();
  proxy = await startS3FaultProxy(moto.endpoint);
  await cluster.createDatabase(SOURCE.partitioned);
  await withClient(connectionTo(SOURCE.partitioned), (client) => createPartitionedDatabase(client, 1000));
  await cluster.createDatabase(SOURCE.tiny);
  await withClient(connectionTo(SOURCE.tiny), (client) => createTinyDatabase(client, 500));
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
  await cluster?.stop();
});

function connectionTo(database: string): string {
  return cluster.connectionString(database);
}

/**
 * Range partitions with a sub-partitioned partition and default partitions, all under a
 * primary key; foreign keys from a plain table and from a partitioned table to a partitioned one;
 * table inheritance with a primary key and a check constraint on the parent.
 */
async function createPartitionedDatabase(client: pg.Client, rows: number): Promise<void> {
  await client.query(`
    CREATE TABLE measurements (id integer, taken_on date, kind integer NOT NULL, value numeric, PRIMARY KEY (id, taken_on)) PARTITION BY RANGE (taken_on);
    CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY RANGE (taken_on);
    CREATE TABLE measurements_2026_h1 PARTITION OF measurements_2026 FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
    CREATE TABLE measurements_2026_h2 PARTITION OF measurements_2026 DEFAULT;
    CREATE TABLE measurements_later PARTITION OF measurements DEFAULT;
    CREATE TABLE measurement_notes (id integer PRIMARY KEY, measurement_id integer NOT NULL, taken_on date NOT NULL, note text,
      FOREIGN KEY (measurement_id, taken_on) REFERENCES measurements ON DELETE CASCADE);
    CREATE TABLE measurement_flags (id integer, taken_on date, flag text, PRIMARY KEY (id, taken_on),
      FOREIGN KEY (id, taken_on) REFERENCES measurements) PARTITION BY RANGE (taken_on);
    CREATE TABLE measurement_flags_all PARTITION OF measurement_flags FOR VALUES FROM (MINVALUE) TO (MAXVALUE);
    CREATE TABLE cities (name text PRIMARY KEY, population integer CHECK (population >= 0));
    CREATE TABLE capitals (state text NOT NULL) INHERITS (cities);
    ALTER TABLE capitals ADD PRIMARY KEY (name);
  `);
  await client.query("INSERT INTO measurements SELECT g, date '2025-06-01' + (g % 500), g % 3, g / 7.0 FROM generate_series(1, $1::int) g", [rows]);
  await client.query("INSERT INTO measurement_notes SELECT g, g, date '2025-06-01' + (g % 500), 'note ' || g FROM generate_series(1, $1::int / 10) g", [rows]);
  await client.query("INSERT INTO measurement_flags SELECT g, date '2025-06-01' + (g % 500), 'flag' FROM generate_series(1, $1::int / 20) g", [rows]);
  await client.query("INSERT INTO cities SELECT 'city ' || g, g FROM generate_series(1, $1::int / 10) g", [rows]);
  await client.query("INSERT INTO capitals SELECT 'capital ' || g, g, 'state ' || g FROM generate_series(1, $1::int / 100) g", [rows]);
}

async function createTinyDatabase(client: pg.Client, rows: number): Promise<void> {
  await client.query('CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL)');
  await client.query('CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric(10, 2) NOT NULL)');
  await client.query("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, $1::int) g", [rows]);
  await client.query('INSERT INTO orders SELECT g, 1 + g % $1::int, g / 3.0 FROM generate_series(1, $1::int * 2) g', [rows]);
}

function backUp(source: string, catalogName: string): Promise<Backup> {
  return backUpWithTask(s3, moto, cluster.env(source), catalogName);
}

function restoreEnvironment(catalogName: string, settings: Record<string, string>): Record<string, string> {
  return {
    ...moto.taskEnvironment(),
    ...cluster.env('postgres'),
    PGKEEP_ENVIRONMENT: 'test',
    PGKEEP_METRICS: 'off',
    PGKEEP_RESTORE_SOURCE: catalogName,
    ...settings,
  };
}

function restore(catalogName: string, settings: Record<string, string> = {}): Promise<TaskExit> {
  return startTask({ command: 'restore', env: restoreEnvironment(catalogName, settings) }).exited;
}

function replaceSettings(target: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PGKEEP_RESTORE_TARGET_DATABASE: target, PGKEEP_RESTORE_MODE: 'replace', PGKEEP_RESTORE_CONFIRM: target, ...extra };
}

/** What belongs to the database itself rather than to its contents. */
async function databaseProperties(name: string): Promise<Record<string, unknown>> {
  return withClient(connectionTo('postgres'), async (client) => {
    const { rows } = await client.query(
      `SELECT pg_get_userbyid(d.datdba) AS owner, d.datacl::text AS acl, d.datconnlimit AS connection_limit, pg_encoding_to_char(d.encoding) AS encoding,
              d.datcollate AS collate, d.datctype AS ctype, d.datlocprovider AS locale_provider, shobj_description(d.oid, 'pg_database') AS comment,
              (SELECT array_agg(coalesce(r.rolname, '(all roles)') || ': ' || array_to_string(s.setconfig, '; ') ORDER BY r.rolname NULLS FIRST)
                 FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) AS settings
       FROM pg_database d WHERE d.datname = $1`,
      [name],
    );
    return rows[0] as Record<string, unknown>;
  });
}

async function isConnectionAlive(client: pg.Client): Promise<boolean> {
  try {
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------

describe('replacing a database', () => {
  it('with partitioned tables, sub-partitions, inheritance and foreign keys to partitioned tables: the target then holds exactly the backup', async () => {
    // Arrange: the target has the same schema with other rows (the usual case: a database
    // replaced by an earlier backup of itself).
    const catalogName = 'replace-partitioned';
    await backUp(SOURCE.partitioned, catalogName);
    await cluster.createDatabase('partitioned_target');
    await withClient(connectionTo('partitioned_target'), (client) => createPartitionedDatabase(client, 300));
    expect(await fingerprintOf(connectionTo('partitioned_target'))).not.toEqual(await fingerprintOf(connectionTo(SOURCE.partitioned)));
    const databasesBefore = await databaseNames(connectionTo('postgres'));

    // Act
    const exit = await restore(catalogName, replaceSettings('partitioned_target'));

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'restore completed')).toMatchObject({ targetDatabase: 'partitioned_target', createdTarget: false, mismatches: [] });
    expect(await fingerprintOf(connectionTo('partitioned_target'))).toEqual(await fingerprintOf(connectionTo(SOURCE.partitioned)));
    expect(await schemaOf(connectionTo('partitioned_target'))).toBe(await schemaOf(connectionTo(SOURCE.partitioned)));
    // No temporary or previous copy is left behind.
    expect(await databaseNames(connectionTo('postgres'))).toEqual(databasesBefore);
  });

  it("keeps the database's owner, privileges, settings, connection limit and comment, and ends the sessions connected to it instead of waiting for them", async () => {
    // Arrange: database-level properties, an idle session and a session idle in a transaction that
    // holds a lock on a table (what a restore dropping objects in place would wait for forever).
    const catalogName = 'replace-properties';
    await backUp(SOURCE.tiny, catalogName);
    await cluster.createDatabase('properties_target');
    await withClient(connectionTo('postgres'), async (client) => {
      await client.query('CREATE ROLE app_owner');
      await client.query('CREATE ROLE reporting');
      await client.query('ALTER DATABASE properties_target OWNER TO app_owner');
      await client.query('REVOKE ALL ON DATABASE properties_target FROM PUBLIC');
      await client.query('GRANT CONNECT, TEMPORARY ON DATABASE properties_target TO reporting');
      await client.query('ALTER DATABASE properties_target CONNECTION LIMIT 50');
      await client.query('ALTER DATABASE properties_target SET search_path = \'$user\', public, "Odd Schema"');
      await client.query("ALTER DATABASE properties_target SET work_mem = '7MB'");
      await client.query("ALTER ROLE reporting IN DATABASE properties_target SET statement_timeout = '30s'");
      await client.query("COMMENT ON DATABASE properties_target IS 'the shop''s database'");
    });
    await withClient(connectionTo('properties_target'), (client) => createTinyDatabase(client, 20));
    const before = await databaseProperties('properties_target');
    const idle = new pg.Client({ connectionString: connectionTo('properties_target') });
    const locking = new pg.Client({ connectionString: connectionTo('properties_target') });
    for (const client of [idle, locking]) {
      await client.connect();
      client.on('error', () => undefined); // the session is ended from the server side
    }
    await locking.query('BEGIN');
    await locking.query('SELECT count(*) FROM orders');

    try {
      // Act
      const exit = await startTask({ command: 'restore', env: restoreEnvironment(catalogName, replaceSettings('properties_target')) }).exited;

      // Assert
      expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
      expect(logLine(exit, 'restore completed')).toMatchObject({ targetDatabase: 'properties_target', mismatches: [] });
      expect(logLine(exit, 'ended the sessions connected to the database being replaced')).toMatchObject({ targetDatabase: 'properties_target', sessions: 2 });
      expect(await fingerprintOf(connectionTo('properties_target'))).toEqual(await fingerprintOf(connectionTo(SOURCE.tiny)));
      expect(await databaseProperties('properties_target')).toEqual(before);
      expect(await isConnectionAlive(idle)).toBe(false);
      expect(await isConnectionAlive(locking)).toBe(false);
    } finally {
      await idle.end().catch(() => undefined);
      await locking.end().catch(() => undefined);
    }
  });

  it.each([1, 2])(
    'that fails part-way (a role the backup needs is gone; PGKEEP_RESTORE_JOBS=%i) leaves the target exactly as it was, and no copy behind',
    async (jobs) => {
      // Arrange: the backup's tables are owned by a role that no longer exists when it is restored.
      const catalogName = `replace-fails-${jobs}`;
      const role = `vanishing_owner_${jobs}`;
      const source = `owned_source_${jobs}`;
      const target = `fails_target_${jobs}`;
      await cluster.createDatabase(source);
      await withClient(connectionTo('postgres'), (client) => client.query(`CREATE ROLE ${role}`));
      await withClient(connectionTo(source), async (client) => {
        await createTinyDatabase(client, 200);
        await client.query(`ALTER TABLE customers OWNER TO ${role}`);
        await client.query(`ALTER TABLE orders OWNER TO ${role}`);
      });
      await backUp(source, catalogName);
      await withClient(connectionTo(source), (client) => client.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER`));
      await withClient(connectionTo('postgres'), (client) => client.query(`DROP ROLE ${role}`));
      await cluster.createDatabase(target);
      await withClient(connectionTo(target), (client) => createTinyDatabase(client, 30));
      const before = await fingerprintOf(connectionTo(target));
      const databasesBefore = await databaseNames(connectionTo('postgres'));

      // Act
      const exit = await restore(catalogName, replaceSettings(target, { PGKEEP_RESTORE_JOBS: String(jobs) }));

      // Assert
      expect(exit.code, JSON.stringify(exit.logs)).toBe(1);
      const failure = restoreFailureOf(exit);
      expect(failure.stage).toBe('restore');
      expect(failure.error).toContain(`role "${role}" does not exist`);
      expect(failure.remedy).toContain('PGKEEP_RESTORE_NO_OWNER=true');
      expect(await fingerprintOf(connectionTo(target))).toEqual(before);
      expect(await databaseNames(connectionTo('postgres'))).toEqual(databasesBefore);
    },
  );

  it('whose result differs from the manifest: leaves the target as it was, keeps the restored copy for inspection and names it, and exits 4', async () => {
    // Arrange: the manifest claims one order more than the backup holds.
    const catalogName = 'replace-differs';
    const backup = await backUp(SOURCE.tiny, catalogName);
    const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: moto.bucket, Key: backup.manifestKey }))).Body!.transformToString()) as {
      tables: { table: string; rows: number }[];
    };
    manifest.tables.find((table) => table.table === 'orders')!.rows += 1;
    const rewritten = JSON.stringify(manifest);
    expect(() => parseManifest(rewritten)).not.toThrow();
    await s3.send(new PutObjectCommand({ Bucket: moto.bucket, Key: backup.manifestKey, Body: rewritten }));
    await cluster.createDatabase('differs_target');
    await withClient(connectionTo('differs_target'), (client) => createTinyDatabase(client, 30));
    const before = await fingerprintOf(connectionTo('differs_target'));

    // Act
    const exit = await restore(catalogName, replaceSettings('differs_target'));

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(4);
    const report = logLine(exit, 'restore completed with differences from the manifest');
    expect(report.mismatches).toEqual([expect.stringContaining('table public.orders has')]);
    const copy = String(report.targetDatabase);
    expect(copy).not.toBe('differs_target');
    expect(report.remedy).toContain('"differs_target" was not replaced');
    expect(report.remedy).toContain(`"${copy}"`);
    expect(await fingerprintOf(connectionTo('differs_target'))).toEqual(before);
    expect(await fingerprintOf(connectionTo(copy))).toEqual(await fingerprintOf(connectionTo(SOURCE.tiny)));
  });
});

describe('a replace that is stopped', () => {
  it('exits 143 on SIGTERM, drops the copy it was restoring into, and leaves the target as it was', async () => {
    // Arrange: ~4 MiB of incompressible rows, whose download stalls after its first bytes.
    const catalogName = 'replace-sigterm';
    await createIncompressibleDatabase(cluster, 'bulk', 4);
    await backUp('bulk', catalogName);
    await cluster.createDatabase('sigterm_target');
    await withClient(connectionTo('sigterm_target'), (client) => createTinyDatabase(client, 30));
    const before = await fingerprintOf(connectionTo('sigterm_target'));
    const databasesBefore = await databaseNames(connectionTo('postgres'));
    proxy.holdObjectDownloads({ afterBytes: 256 * 1024 });
    const task = startTask({
      command: 'restore',
      env: restoreEnvironment(catalogName, { ...replaceSettings('sigterm_target'), PGKEEP_S3_ENDPOINT: proxy.endpoint }),
    });
    try {
      await task.waitForLog((line) => line.message === 'restoring');
      await proxy.waitForRequest((request) => isObjectDownload(request) && request.path.includes(catalogName));

      // Act
      task.child.kill('SIGTERM');
      const exit = await task.exited;

      // Assert
      expect(exit.code, JSON.stringify(exit.logs)).toBe(143);
      const failure = restoreFailureOf(exit);
      expect(failure.stage).toBe('interrupted');
      expect(failure.remedy).toContain('"sigterm_target" was not changed');
      expect(await fingerprintOf(connectionTo('sigterm_target'))).toEqual(before);
      expect(await databaseNames(connectionTo('postgres'))).toEqual(databasesBefore);
    } finally {
      proxy.releaseObjectDownloads();
    }
  });
});

describe('replacing a database as a restore user that is not a superuser', () => {
  const password = 'restorer-Pa55';

  async function createRole(name: string, options: string): Promise<Record<string, string>> {
    await withClient(connectionTo('postgres'), (client) => client.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}' ${options}`));
    return { PGUSER: name, PGPASSWORD: password };
  }

  it('that owns the target and has CREATEDB: replaces it', async () => {
    // Arrange
    const catalogName = 'replace-as-owner';
    await backUp(SOURCE.tiny, catalogName);
    const login = await createRole('owning_restorer', 'CREATEDB');
    await cluster.createDatabase('owned_target');
    await withClient(connectionTo('postgres'), (client) => client.query('ALTER DATABASE owned_target OWNER TO owning_restorer'));
    await withClient(connectionTo('owned_target'), (client) => createTinyDatabase(client, 30));
    const before = await databaseProperties('owned_target');

    // Act: the backup's objects belong to the superuser, which this user cannot give objects to.
    const exit = await restore(catalogName, { ...replaceSettings('owned_target', { PGKEEP_RESTORE_NO_OWNER: 'true' }), ...login });

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(await fingerprintOf(connectionTo('owned_target'))).toEqual(await fingerprintOf(connectionTo(SOURCE.tiny)));
    expect(await databaseProperties('owned_target')).toEqual(before);
  });

  it("that may not end another role's session on the target: says so, and leaves the target as it was and no copy behind", async () => {
    // Arrange: an application session of another role; the restore user lacks pg_signal_backend.
    const catalogName = 'replace-foreign-session';
    await backUp(SOURCE.tiny, catalogName);
    const login = await createRole('plain_restorer', 'CREATEDB');
    await withClient(connectionTo('postgres'), (client) => client.query(`CREATE ROLE application LOGIN PASSWORD '${password}'`));
    await cluster.createDatabase('busy_target');
    await withClient(connectionTo('postgres'), (client) => client.query('ALTER DATABASE busy_target OWNER TO plain_restorer'));
    await withClient(connectionTo('busy_target'), (client) => createTinyDatabase(client, 30));
    const before = await fingerprintOf(connectionTo('busy_target'));
    const databasesBefore = await databaseNames(connectionTo('postgres'));
    const application = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      user: 'application',
      password,
      database: 'busy_target',
      application_name: 'shop-api',
    });
    await application.connect();

    try {
      // Act
      const exit = await restore(catalogName, { ...replaceSettings('busy_target', { PGKEEP_RESTORE_NO_OWNER: 'true' }), ...login });

      // Assert
      expect(exit.code, JSON.stringify(exit.logs)).toBe(1);
      const failure = restoreFailureOf(exit);
      expect(failure.stage).toBe('restore');
      expect(failure.error).toContain('may not end the sessions connected to it (1: application (shop-api))');
      expect(failure.error).toContain('"busy_target" was not replaced and is unchanged');
      expect(failure.remedy).toContain('pg_signal_backend');
      expect(await isConnectionAlive(application)).toBe(true);
      expect(await fingerprintOf(connectionTo('busy_target'))).toEqual(before);
      expect(await databaseNames(connectionTo('postgres'))).toEqual(databasesBefore);
    } finally {
      await application.end().catch(() => undefined);
    }
  });

  it('that neither owns the target nor belongs to its owner role: refuses before restoring anything, naming what it lacks', async () => {
    // Arrange
    const catalogName = 'replace-not-owner';
    await backUp(SOURCE.tiny, catalogName);
    const login = await createRole('outside_restorer', 'CREATEDB');
    await cluster.createDatabase('foreign_target');
    await withClient(connectionTo('foreign_target'), (client) => createTinyDatabase(client, 30));
    const before = await fingerprintOf(connectionTo('foreign_target'));
    const databasesBefore = await databaseNames(connectionTo('postgres'));

    // Act
    const exit = await restore(catalogName, { ...replaceSettings('foreign_target'), ...login });

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(2);
    const failure = restoreFailureOf(exit);
    expect(failure.stage).toBe('refused');
    expect(failure.error).toContain(
      `the restore user "outside_restorer" is not the owner of "foreign_target" (${cluster.user}) nor a member of that role; nothing was changed`,
    );
    expect(exit.logs.some((line) => line.message === 'restoring')).toBe(false);
    expect(await fingerprintOf(connectionTo('foreign_target'))).toEqual(before);
    expect(await databaseNames(connectionTo('postgres'))).toEqual(databasesBefore);
  });
});

describe('whether an existing target is empty', () => {
  it.each([
    ['a schema', 'holds_schema', 'CREATE SCHEMA reporting', 'schema reporting'],
    [
      'a function',
      'holds_function',
      'CREATE FUNCTION public.add_one(integer) RETURNS integer LANGUAGE sql AS $$ SELECT $1 + 1 $$',
      'function public.add_one(integer)',
    ],
    ['an enum type', 'holds_enum', "CREATE TYPE public.mood AS ENUM ('happy', 'sad')", 'type public.mood'],
    ['a domain', 'holds_domain', 'CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0)', 'type public.positive'],
    ['an extension', 'holds_extension', 'CREATE EXTENSION hstore', 'extension hstore'],
    ['a standalone sequence', 'holds_sequence', 'CREATE SEQUENCE public.invoice_numbers', 'sequence public.invoice_numbers'],
  ])(
    'a target holding only %s is not empty: the restore is refused, names what it found, and the target is unchanged',
    async (_label, target, statement, found) => {
      // Arrange
      const catalogName = 'empty-check';
      if (!(await backupExists(catalogName))) await backUp(SOURCE.tiny, catalogName);
      await cluster.createDatabase(target);
      await withClient(connectionTo(target), (client) => client.query(statement));

      // Act
      const exit = await restore(catalogName, { PGKEEP_RESTORE_TARGET_DATABASE: target });

      // Assert
      expect(exit.code, JSON.stringify(exit.logs)).toBe(2);
      const failure = restoreFailureOf(exit);
      expect(failure.stage).toBe('refused');
      expect(failure.error).toContain(`"${target}" already exists and is not empty`);
      expect(failure.error).toContain(found);
      expect(failure.remedy).toContain(`PGKEEP_RESTORE_CONFIRM=${target}`);
      const restoredTables = await withClient(
        connectionTo(target),
        async (client) => (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('customers', 'orders')")).rows[0]?.n,
      );
      expect(restoredTables).toBe(0);
    },
  );

  it('a target as CREATE DATABASE makes it (the public schema, PL/pgSQL) is empty: the backup is restored into it', async () => {
    const catalogName = 'empty-check';
    if (!(await backupExists(catalogName))) await backUp(SOURCE.tiny, catalogName);
    await cluster.createDatabase('fresh_target');

    const exit = await restore(catalogName, { PGKEEP_RESTORE_TARGET_DATABASE: 'fresh_target' });

    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'restore completed')).toMatchObject({ targetDatabase: 'fresh_target', createdTarget: false, mismatches: [] });
  });

  it('the default target, already there from an earlier restore of the same backup, is refused without telling the operator to leave unset what is unset', async () => {
    // Arrange
    const catalogName = 'restore-twice';
    await backUp(SOURCE.tiny, catalogName);
    const first = await restore(catalogName);
    expect(first.code, JSON.stringify(first.logs)).toBe(0);
    const target = String(logLine(first, 'restore completed').targetDatabase);

    // Act
    const second = await restore(catalogName);

    // Assert
    expect(second.code).toBe(2);
    const failure = restoreFailureOf(second);
    expect(failure.stage).toBe('refused');
    expect(failure.error).toContain(`"${target}" already exists and is not empty`);
    expect(failure.remedy).not.toContain('leave PGKEEP_RESTORE_TARGET_DATABASE unset');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_TARGET_DATABASE');
    expect(failure.remedy).toContain(`DROP DATABASE "${target}"`);
  });
});

async function backupExists(catalogName: string): Promise<boolean> {
  return (await listBackups(s3, { bucket: moto.bucket, database: catalogName })).length > 0;
}
