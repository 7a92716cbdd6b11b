import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SampleDatabaseSummary } from '../../dev/sample-database.ts';
import { createSampleDatabase } from '../../dev/sample-database.ts';
import type { ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { startThrowawayCluster } from '../../task/throwaway-cluster.ts';

const execFileAsync = promisify(execFile);
const PG15_BIN_DIR = '/usr/lib/postgresql/15/bin';
const MB = 1024 * 1024;

let cluster: ThrowawayCluster;
const openClients: pg.Client[] = [];

async function connectTo(database: string): Promise<pg.Client> {
  await cluster.createDatabase(database);
  const client = new pg.Client(cluster.connectionString(database));
  await client.connect();
  openClients.push(client);
  return client;
}

async function count(client: pg.Client, sql: string): Promise<number> {
  const result = await client.query<{ count: string }>(sql);
  return Number(result.rows[0]?.count);
}

beforeAll(async () => {
  // pg_dump 15 is used below, so the server must be 15 too (a newer server would refuse it).
  cluster = await startThrowawayCluster({ binDir: PG15_BIN_DIR });
});

afterAll(async () => {
  await Promise.all(openClients.map((client) => client.end().catch(() => undefined)));
  await cluster?.stop();
});

describe('createSampleDatabase with the default size', () => {
  let client: pg.Client;
  let summary: SampleDatabaseSummary;
  const progress: string[] = [];

  beforeAll(async () => {
    client = await connectTo('sample_default');
    summary = await createSampleDatabase(client, { onProgress: (message) => progress.push(message) });
  });

  it('creates the sales, inventory, analytics, public and non-ASCII schemas with their tables', async () => {
    const result = await client.query<{ name: string }>(`
      SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
      ORDER BY 1`);

    expect(result.rows.map((row) => row.name)).toEqual([
      'analytics.events',
      'analytics.events_2024_01',
      'analytics.events_2024_02',
      'analytics.events_2024_03',
      'analytics.events_2024_04',
      'analytics.events_default',
      'données.clients_été',
      'inventory.products',
      'inventory.stock_levels',
      'inventory.warehouses',
      'public.app_settings',
      'public.documents',
      'sales.customers',
      'sales.order_lines',
      'sales.orders',
      'sales.refunds',
    ]);
    expect(summary.tables).toBe(16);
  });

  it('gives the non-ASCII table non-ASCII columns and values', async () => {
    const result = await client.query<{ prénom: string }>(`SELECT "prénom" FROM "données"."clients_été" WHERE "prénom" ~ '[^[:ascii:]]' LIMIT 1`);

    expect(result.rows[0]?.prénom).toMatch(/[^\x20-\x7e]/);
  });

  it('has an enum, domains with CHECKs and a plpgsql trigger function', async () => {
    const enumLabels = await client.query<{ labels: string[] }>(`SELECT enum_range(NULL::public.order_status)::text[] AS labels`);
    const domainsWithChecks = await count(
      client,
      `SELECT count(*) FROM pg_type t JOIN pg_constraint c ON c.contypid = t.oid WHERE t.typtype = 'd' AND c.contype = 'c' AND t.typnamespace = 'public'::regnamespace`,
    );
    const triggers = await client.query<{ name: string }>(`
      SELECT tgrelid::regclass || ':' || tgname || ':' || p.proname || ':' || l.lanname AS name
      FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_language l ON l.oid = p.prolang
      WHERE NOT tgisinternal ORDER BY 1`);

    expect(enumLabels.rows[0]?.labels).toEqual(['pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded']);
    expect(domainsWithChecks).toBe(2);
    expect(triggers.rows.map((row) => row.name)).toEqual([
      'inventory.stock_levels:stock_levels_touch:touch_updated_at:plpgsql',
      'sales.orders:orders_touch:touch_updated_at:plpgsql',
    ]);
  });

  it('partitions analytics.events by month with rows in every partition, the default included', async () => {
    const partitions = await client.query<{ partition: string; bound: string }>(`
      SELECT c.oid::regclass::text AS partition, pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'analytics.events'::regclass ORDER BY 1`);
    const partitionsWithRows = await client.query<{ partition: string }>(
      'SELECT DISTINCT tableoid::regclass::text AS partition FROM analytics.events ORDER BY 1',
    );
    const partitionedKind = await client.query<{ relkind: string }>(`SELECT relkind FROM pg_class WHERE oid = 'analytics.events'::regclass`);

    expect(partitionedKind.rows[0]?.relkind).toBe('p');
    expect(partitions.rows).toHaveLength(5);
    expect(partitions.rows.filter((row) => row.bound === 'DEFAULT').map((row) => row.partition)).toEqual(['analytics.events_default']);
    expect(partitionsWithRows.rows).toEqual(partitions.rows.map(({ partition }) => ({ partition })));
  });

  it('has a view and a materialized view created WITH DATA', async () => {
    const views = await count(client, `SELECT count(*) FROM pg_views WHERE schemaname = 'sales' AND viewname = 'customer_order_totals'`);
    const matview = await client.query<{ ispopulated: boolean }>(`SELECT ispopulated FROM pg_matviews WHERE matviewname = 'monthly_revenue'`);
    const matviewRows = await count(client, 'SELECT count(*) FROM analytics.monthly_revenue');

    expect(views).toBe(1);
    expect(matview.rows[0]?.ispopulated).toBe(true);
    expect(matviewRows).toBeGreaterThan(0);
  });

  it('has identity, generated and sequence-backed columns that compute and count correctly', async () => {
    const identityColumns = await count(client, `SELECT count(*) FROM pg_attribute WHERE attidentity <> '' AND NOT attisdropped`);
    const generatedColumns = await client.query<{ name: string }>(`
      SELECT attrelid::regclass || '.' || attname AS name FROM pg_attribute WHERE attgenerated = 's' ORDER BY 1`);
    const productDefault = await client.query<{ expr: string }>(
      `SELECT pg_get_expr(adbin, adrelid) AS expr FROM pg_attrdef WHERE adrelid = 'inventory.products'::regclass`,
    );
    const wrongTotals = await count(client, 'SELECT count(*) FROM sales.orders WHERE total <> subtotal + tax');
    const inserted = await client.query<{ id: string; max: string }>(`
      WITH new_order AS (
        INSERT INTO sales.orders (customer_id, ordered_at, currency, subtotal, tax, shipping_address)
        VALUES (1, now(), 'EUR', 10, 2, '{}') RETURNING id
      ) SELECT (SELECT id FROM new_order) AS id, (SELECT max(id) FROM sales.orders) AS max`);
    await client.query('DELETE FROM sales.orders WHERE id = $1', [inserted.rows[0]?.id]);

    expect(identityColumns).toBeGreaterThanOrEqual(4);
    expect(generatedColumns.rows.map((row) => row.name)).toEqual(['sales.order_lines.line_total', 'sales.orders.total']);
    expect(productDefault.rows.map((row) => row.expr)).toContain(`nextval('inventory.product_id_seq'::regclass)`);
    expect(wrongTotals).toBe(0);
    // The loaded orders used explicit ids; a new one must get the next free id, not collide.
    expect(BigInt(inserted.rows[0]?.id ?? 0)).toBeGreaterThan(BigInt(inserted.rows[0]?.max ?? 0));
  });

  it('has valid foreign keys, btree and GIN indexes and a table comment', async () => {
    const foreignKeys = await count(client, `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated`);
    const ginIndexes = await client.query<{ name: string }>(`
      SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
      WHERE a.amname = 'gin' AND c.relkind = 'i' ORDER BY 1`);
    const orphanLines = await count(client, 'SELECT count(*) FROM sales.order_lines l WHERE NOT EXISTS (SELECT FROM sales.orders o WHERE o.id = l.order_id)');
    const comment = await client.query<{ comment: string | null }>(`SELECT obj_description('sales.orders'::regclass, 'pg_class') AS comment`);

    expect(foreignKeys).toBeGreaterThanOrEqual(6);
    expect(ginIndexes.rows.map((row) => row.name)).toContain('products_attributes_gin');
    expect(orphanLines).toBe(0);
    expect(comment.rows[0]?.comment).toMatch(/order/);
  });

  it('stores two large objects referenced from public.documents', async () => {
    const largeObjects = await count(client, 'SELECT count(*) FROM pg_largeobject_metadata');
    const referenced = await count(client, 'SELECT count(*) FROM public.documents d JOIN pg_largeobject_metadata m ON m.oid = d.content');

    expect(largeObjects).toBe(2);
    expect(referenced).toBe(2);
  });

  it('leaves sales.refunds empty', async () => {
    expect(await count(client, 'SELECT count(*) FROM sales.refunds')).toBe(0);
  });

  it('varies text values instead of repeating one string', async () => {
    const distinctNotes = await count(client, 'SELECT count(DISTINCT notes) FROM (SELECT notes FROM sales.orders WHERE notes IS NOT NULL LIMIT 1000) sample');

    expect(distinctNotes).toBeGreaterThan(990);
  });

  it('loads over a hundred thousand rows and about 40 MB, and says so in its summary', async () => {
    const rowsInTables = await count(
      client,
      `
      SELECT (SELECT count(*) FROM sales.orders) + (SELECT count(*) FROM sales.order_lines) + (SELECT count(*) FROM sales.customers)
           + (SELECT count(*) FROM analytics.events) + (SELECT count(*) FROM inventory.stock_levels) AS count`,
    );
    const databaseBytes = await count(client, 'SELECT pg_database_size(current_database()) AS count');

    expect(summary.rows).toBeGreaterThanOrEqual(rowsInTables);
    expect(rowsInTables).toBeGreaterThan(100_000);
    expect(summary.bytes).toBe(databaseBytes);
    expect(summary.bytes).toBeGreaterThan(40 * MB * 0.5);
    expect(summary.bytes).toBeLessThan(40 * MB * 1.5);
  });

  it('leaves planner statistics for the fact tables', async () => {
    const estimate = await count(client, `SELECT reltuples::bigint AS count FROM pg_class WHERE oid = 'sales.order_lines'::regclass`);
    const actual = await count(client, 'SELECT count(*) FROM sales.order_lines');

    expect(estimate).toBeGreaterThan(actual * 0.9);
    expect(estimate).toBeLessThan(actual * 1.1);
  });

  it('reports progress in megabytes toward the target', () => {
    expect(progress).toContainEqual(expect.stringMatching(/^sample database: \d+\/40 MB$/));
    expect(progress.at(-1)).toMatch(/^sample database: done/);
  });

  it('survives pg_dump -Fc, and pg_restore --list reads the archive', async () => {
    const dumpDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-sample-dump-'));
    try {
      const dumpFile = path.join(dumpDir, 'sample.dump');
      const env = { ...process.env, ...cluster.env('sample_default') };
      await execFileAsync(path.join(PG15_BIN_DIR, 'pg_dump'), ['-Fc', '-f', dumpFile], { env });

      const { stdout: listing } = await execFileAsync(path.join(PG15_BIN_DIR, 'pg_restore'), ['--list', dumpFile], { env });

      expect(listing).toMatch(/TABLE DATA données clients_été/);
      expect(listing).toMatch(/MATERIALIZED VIEW DATA analytics monthly_revenue/);
      expect(listing).toMatch(/TABLE DATA analytics events_default/);
      expect(listing.match(/ BLOB - \d+ /g)).toHaveLength(2);
    } finally {
      await rm(dumpDir, { recursive: true, force: true });
    }
  });

  it('refuses to fill a database that is not empty', async () => {
    await expect(createSampleDatabase(client)).rejects.toThrow(/needs an empty database.*Create a fresh database/);
  });
});

describe('createSampleDatabase with sizeMb', () => {
  it('grows the fact tables to about the requested 100 MB', async () => {
    const client = await connectTo('sample_100mb');

    const summary = await createSampleDatabase(client, { sizeMb: 100 });
    const orders = await count(client, 'SELECT count(*) FROM sales.orders');

    expect(summary.bytes).toBeGreaterThan(100 * MB * 0.5);
    expect(summary.bytes).toBeLessThan(100 * MB * 1.5);
    expect(orders).toBeGreaterThan(60_000);
  });

  it('still creates every table when sizeMb is below the fixed part, just without orders', async () => {
    const client = await connectTo('sample_1mb');

    const summary = await createSampleDatabase(client, { sizeMb: 1 });
    const orders = await count(client, 'SELECT count(*) FROM sales.orders');
    const matviewPopulated = await client.query<{ ispopulated: boolean }>(`SELECT ispopulated FROM pg_matviews WHERE matviewname = 'monthly_revenue'`);
    const firstNewOrder = await client.query<{ id: string }>(`
      INSERT INTO sales.orders (customer_id, ordered_at, currency, subtotal, tax, shipping_address)
      VALUES (1, now(), 'EUR', 10, 2, '{}') RETURNING id`);

    expect(summary.tables).toBe(16);
    expect(orders).toBe(0);
    expect(matviewPopulated.rows[0]?.ispopulated).toBe(true);
    expect(firstNewOrder.rows[0]?.id).toBe('1');
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY])('rejects sizeMb %s with advice, before touching the database', async (sizeMb) => {
    const client = await connectTo(`sample_invalid_${openClients.length}`);

    await expect(createSampleDatabase(client, { sizeMb })).rejects.toThrow(/sizeMb must be a number of megabytes/);
    expect(await count(client, `SELECT count(*) FROM pg_namespace WHERE nspname = 'sales'`)).toBe(0);
  });
});
