import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { TableStats } from '../catalog/manifest.ts';
import type { ConnectionSettings } from './config.ts';
import { BackupFailure, redactSecrets } from './errors.ts';
import { parseServerVersionNum } from './postgres-binaries.ts';

export interface ServerDescription {
  serverVersion: string;
  serverVersionNum: number;
  major: number;
  inRecovery: boolean;
}

/** libpq's sslmode semantics mapped onto node-postgres, whose own PGSSLMODE handling verifies
 * certificates even for `require` (libpq does not, and RDS certificates are not in Node's store). */
function tlsOptions(connection: ConnectionSettings): false | ConnectionOptions {
  switch (connection.sslMode) {
    case undefined:
    case 'disable':
    case 'allow':
      return false;
    case 'prefer':
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full': {
      const ca = connection.sslRootCert ? readFileSync(connection.sslRootCert, 'utf8') : undefined;
      return {
        rejectUnauthorized: true,
        ...(ca ? { ca } : {}),
        ...(connection.sslMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
      };
    }
  }
}

export async function connectToSource(connection: ConnectionSettings, applicationName: string, connectTimeoutMs = 30_000): Promise<pg.Client> {
  const attempt = async (ssl: false | ConnectionOptions): Promise<pg.Client> => {
    const client = new pg.Client({
      host: connection.host,
      port: connection.port,
      user: connection.user,
      password: connection.password ?? '',
      database: connection.database,
      ssl,
      application_name: applicationName,
      connectionTimeoutMillis: connectTimeoutMs,
    });
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  };
  try {
    return await attempt(tlsOptions(connection));
  } catch (error) {
    // libpq's "prefer": try TLS first, fall back to plain text when the server offers no TLS.
    if (connection.sslMode === 'prefer' && /does not support SSL/i.test(String((error as Error).message))) {
      try {
        return await attempt(false);
      } catch (fallbackError) {
        throw explainConnectionError(fallbackError, connection);
      }
    }
    throw explainConnectionError(error, connection);
  }
}

/** Turns a driver error into what an operator can act on. */
export function explainConnectionError(error: unknown, connection: ConnectionSettings): BackupFailure {
  const { code, message } = error as { code?: string; message?: string };
  const where = `${connection.user}@${connection.host}:${connection.port}/${connection.database}`;
  const detail = redactSecrets(message ?? String(error));
  const known: Record<string, [string, string]> = {
    '28P01': [
      `PostgreSQL rejected the password for ${where}.`,
      'Check PGPASSWORD (or the password field of the Secrets Manager secret the task reads) and that the secret was not rotated without updating the task.',
    ],
    '28000': [
      `PostgreSQL refused the connection for ${where}: ${detail}.`,
      'Check pg_hba.conf / the security group allow this client, and that the user exists and may log in.',
    ],
    '3D000': [
      `The database "${connection.database}" does not exist on ${connection.host}:${connection.port}.`,
      'Check PGDATABASE (or the dbname field of the secret); list databases with `psql -l`.',
    ],
    '42501': [
      `The user ${connection.user} may not connect to or read ${connection.database}: ${detail}.`,
      'Grant the backup user CONNECT on the database and SELECT on every table (on RDS, the pg_read_all_data role).',
    ],
    '53300': [`${connection.host}:${connection.port} has no free connection slots.`, 'Raise max_connections or lower the number of clients, then retry.'],
    '57P03': [`${connection.host}:${connection.port} is starting up or shutting down.`, 'Retry once the server is available.'],
    ECONNREFUSED: [
      `Nothing accepts connections at ${connection.host}:${connection.port}.`,
      'Check PGHOST/PGPORT, that the server is running, and that the security group allows the task to reach it.',
    ],
    ENOTFOUND: [`The host name ${connection.host} does not resolve.`, 'Check PGHOST (or the host field of the secret) and the VPC DNS settings.'],
    ETIMEDOUT: [
      `Connecting to ${connection.host}:${connection.port} timed out.`,
      'Check the security group and routing between the task subnets and the database.',
    ],
  };
  // With no password, node-postgres cannot answer the server's password challenge: SCRAM fails
  // inside the driver ("SASL: ... client password must be a string"), MD5 as a wrong password.
  if (connection.password === undefined && (/client password must be a/.test(detail) || code === '28P01')) {
    return new BackupFailure(
      'connect',
      `${where} asks for a password, but none was given (neither PGPASSWORD nor a password in PGKEEP_DATABASE_URL).`,
      'Set PGPASSWORD, or put the password (URL-encoded) in PGKEEP_DATABASE_URL; in AWS, check the password field of the Secrets Manager secret the task reads.',
      { cause: error },
    );
  }
  const explained = (code && known[code]) ?? (/timeout/i.test(detail) ? known.ETIMEDOUT : undefined);
  if (explained) return new BackupFailure('connect', explained[0], explained[1], { cause: error });
  return new BackupFailure(
    'connect',
    `Could not connect to ${where}: ${detail}`,
    'Check the connection settings (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE) and that the server is reachable.',
    { cause: error },
  );
}

export async function describeServer(client: pg.Client): Promise<ServerDescription> {
  const { rows } = await client.query<{ server_version: string; server_version_num: string; in_recovery: boolean }>(
    "SELECT current_setting('server_version') AS server_version, current_setting('server_version_num') AS server_version_num, pg_is_in_recovery() AS in_recovery",
  );
  const row = rows[0];
  if (!row) throw new Error('The server did not report its version.');
  const serverVersionNum = Number(row.server_version_num);
  return { serverVersion: row.server_version, serverVersionNum, major: parseServerVersionNum(serverVersionNum).major, inRecovery: row.in_recovery };
}

/**
 * Readies the task's own session for a transaction that stays open as long as the dump runs.
 * pg_dump does the same on its own connection (setup_connection in pg_dump.c: SET
 * statement_timeout = 0, lock_timeout = 0, idle_in_transaction_session_timeout = 0, and
 * transaction_timeout = 0 from PostgreSQL 17), because a role or parameter group may set them,
 * and RDS parameter groups often set idle_in_transaction_session_timeout: this session sits idle
 * in its transaction for the whole dump once the row counts are done, and the server would end it.
 *
 * lock_timeout is the one exception: pg_dump waits at most --lock-wait-timeout for a table lock,
 * and so do the row counts here, instead of queueing behind a migration's lock for ever.
 * client_connection_check_interval (PostgreSQL 14+) makes the server notice, during a long
 * count, that this task is gone (SIGKILL, lost network), instead of counting on for nobody.
 * set_config only for the settings the server has, so older servers are not sent unknown names.
 */
export async function prepareSnapshotSession(client: pg.Client, lockWaitTimeoutSeconds: number): Promise<void> {
  const wanted: Record<string, string> = {
    statement_timeout: '0',
    idle_in_transaction_session_timeout: '0',
    transaction_timeout: '0',
    lock_timeout: `${lockWaitTimeoutSeconds}s`,
    client_connection_check_interval: '10s',
  };
  await client.query(`SELECT set_config(s.name, w.value, false) FROM pg_settings s JOIN json_each_text($1::json) w ON w.key = s.name`, [
    JSON.stringify(wanted),
  ]);
}

/** This session's backend process id, as pg_stat_activity and pg_cancel_backend know it. */
export async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return Number(rows[0]?.pid);
}

/**
 * Cancels what the session `pid` is running, from a second connection. Closing a connection does
 * not stop its query: a backend waiting for a lock does not read its socket, so the task's row
 * count would wait on, holding the snapshot, until the lock holder commits. node-postgres in pure
 * JavaScript has no documented cancel, so this uses the server's own pg_cancel_backend, which a
 * role may call on its own sessions. Bounded by `timeoutMs`; failing is reported, never thrown.
 */
export async function cancelBackendQuery(
  connection: ConnectionSettings,
  applicationName: string,
  pid: number,
  timeoutMs: number,
): Promise<{ cancelled: boolean; error?: string }> {
  const attempt = (async () => {
    const other = await connectToSource(connection, `${applicationName}-cancel`, timeoutMs);
    try {
      const { rows } = await other.query<{ cancelled: boolean }>('SELECT pg_cancel_backend($1) AS cancelled', [pid]);
      return { cancelled: rows[0]?.cancelled === true };
    } finally {
      await closeSession(other, timeoutMs);
    }
  })();
  const timer = new Promise<{ cancelled: boolean; error: string }>((resolve) =>
    setTimeout(() => resolve({ cancelled: false, error: `no answer within ${timeoutMs} ms` }), timeoutMs).unref(),
  );
  return Promise.race([attempt.catch((error: unknown) => ({ cancelled: false, error: redactSecrets((error as Error).message) })), timer]);
}

/**
 * Ends a session within `timeoutMs`. client.end() waits for the server to close its side, which
 * a black-holed or dead server never does; then the socket is destroyed instead.
 */
export async function closeSession(client: pg.Client, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    client.end().then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  // The connection's socket is not part of node-postgres's typed API.
  if (!ended) (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * Opens a repeatable-read transaction and exports its snapshot. pg_dump imports it with
 * --snapshot, and the row counts below run inside it, so the manifest describes exactly the data
 * in the dump. The transaction must stay open until pg_dump has finished.
 */
export async function exportSnapshot(client: pg.Client): Promise<string> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const { rows } = await client.query<{ snapshot: string }>('SELECT pg_export_snapshot() AS snapshot');
  const snapshot = rows[0]?.snapshot;
  if (!snapshot) throw new Error('The server returned no snapshot id.');
  return snapshot;
}

/**
 * Row counts for every user table pg_dump dumps (ordinary tables and partitions; not views,
 * partitioned parents, which hold no rows themselves, or extension-owned tables). Exact counts
 * for tables up to `exactCountMaxBytes`; above that the planner's estimate, marked as such,
 * because a count(*) of a huge table would double the dump's read load.
 */
export async function collectTableStats(client: pg.Client, exactCountMaxBytes: number): Promise<TableStats[]> {
  const { rows } = await client.query<{ schema: string; table: string; bytes: string; reltuples: number }>(`
    SELECT n.nspname AS schema, c.relname AS table, pg_total_relation_size(c.oid) AS bytes, c.reltuples::float8 AS reltuples
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_)'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY n.nspname, c.relname`);
  const stats: TableStats[] = [];
  for (const row of rows) {
    const bytes = Number(row.bytes);
    if (bytes <= exactCountMaxBytes) {
      const qualified = `${client.escapeIdentifier(row.schema)}.${client.escapeIdentifier(row.table)}`;
      // ONLY: with table inheritance, each child is counted as its own table.
      const counted = await client.query<{ count: string }>(`SELECT count(*) AS count FROM ONLY ${qualified}`);
      stats.push({ schema: row.schema, table: row.table, rows: Number(counted.rows[0]?.count ?? 0), rowsSource: 'exact', bytes });
    } else {
      // reltuples is -1 for a table never vacuumed or analyzed: there is no estimate to give.
      stats.push({ schema: row.schema, table: row.table, rows: row.reltuples >= 0 ? Math.round(row.reltuples) : null, rowsSource: 'estimate', bytes });
    }
  }
  return stats;
}
