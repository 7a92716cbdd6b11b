import type pg from 'pg';
import type { TaskExit, TaskLogLine } from '../../dev/task-process.ts';
import { withClient } from './backup-harness.ts';

/**
 * Inspecting what a restore left on a real PostgreSQL server, shared by the restore suites that
 * need no more than a cluster's connection strings.
 */
export function logLine(exit: TaskExit, message: string): TaskLogLine {
  const line = exit.logs.find((candidate) => candidate.message === message);
  if (!line) throw new Error(`no "${message}" log line; exit ${exit.code}; logs: ${JSON.stringify(exit.logs)}`);
  return line;
}

export const restoreFailureOf = (exit: TaskExit): TaskLogLine => logLine(exit, 'restore failed');

export async function userRelations(client: pg.Client, kinds: string[]): Promise<{ schema: string; table: string }[]> {
  const { rows } = await client.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = ANY($1) AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
     ORDER BY 1, 2`,
    [kinds],
  );
  return rows;
}

/**
 * A digest of everything stored in a database: each table's (partitions and inheritance children
 * by themselves) and materialized view's rows, the large objects' contents and each sequence's
 * position. Two databases with equal fingerprints hold the same data.
 */
export async function fingerprintOf(connectionString: string): Promise<Record<string, string | null>> {
  return withClient(connectionString, async (client) => {
    const fingerprint: Record<string, string | null> = {};
    for (const { schema, table } of await userRelations(client, ['r', 'm'])) {
      const { rows } = await client.query<{ digest: string | null; count: string }>(
        `SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) AS digest, count(*) AS count FROM ONLY ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)} t`,
      );
      fingerprint[`rows of ${schema}.${table}`] = `${rows[0]?.count} rows, md5 ${rows[0]?.digest}`;
    }
    const { rows: largeObjects } = await client.query<{ digest: string | null; count: string }>(
      "SELECT md5(string_agg(oid::text || ':' || encode(lo_get(oid), 'hex'), ',' ORDER BY oid)) AS digest, count(*) AS count FROM pg_largeobject_metadata",
    );
    fingerprint['large objects'] = `${largeObjects[0]?.count} objects, md5 ${largeObjects[0]?.digest}`;
    const { rows: sequences } = await client.query<{ name: string; last_value: string | null }>(
      "SELECT schemaname || '.' || sequencename AS name, last_value::text AS last_value FROM pg_sequences ORDER BY 1",
    );
    for (const sequence of sequences) fingerprint[`sequence ${sequence.name}`] = sequence.last_value;
    return fingerprint;
  });
}

/** Names of the databases on the server, sorted. */
export async function databaseNames(maintenanceConnectionString: string): Promise<string[]> {
  return withClient(maintenanceConnectionString, async (client) =>
    (await client.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1')).rows.map((row) => row.datname),
  );
}
