import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ConnectionSettings } from './config.ts';
import { BackupFailure } from './errors.ts';
import { connectToSource } from './source-database.ts';

/**
 * The restore's target database: whether an existing one is empty, and replace mode.
 *
 * Replace mode never restores over the target's objects. It restores into a new database under a
 * temporary name, compares it with the manifest, gives it what belongs to the database rather than
 * to its contents (owner, privileges, settings, connection limit, comment; encoding, locale and
 * tablespace at creation), and only then swaps the names in one short transaction, after ending
 * the sessions connected to the target. Until that transaction commits the target is exactly as
 * it was: a restore that fails, is stopped or differs from the manifest never touched it.
 *
 * Why not `pg_restore --clean`: it drops objects one by one in reverse dependency order, which
 * fails on partitioned tables with primary keys ("cannot drop inherited constraint"), waits
 * without limit for every lock the applications hold, and with `--jobs` cannot run in one
 * transaction, so a failed parallel replace left a half-dropped target. Dropping every object
 * first in one transaction has the last two problems and must know every kind of object there is.
 * The cost of the swap: the server briefly holds both databases, and the restore user must be
 * able to create, rename and drop databases (CREATEDB and the target's owner, or a superuser).
 */

const APPLICATION_NAME = 'pgkeep-restore';
/** Objects with lower OIDs were made by initdb (FirstNormalObjectId). */
const FIRST_USER_OID = 16384;
const SAMPLE_SIZE = 8;
const SWAP_ATTEMPTS = 3;
/** How long pg_terminate_backend waits for each ended session to exit. */
const TERMINATE_WAIT_MS = 10_000;

export async function withDatabase<T>(connection: ConnectionSettings, database: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectToSource({ ...connection, database }, APPLICATION_NAME);
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Where to run CREATE, ALTER and DROP DATABASE: never the database being renamed or dropped. */
export function maintenanceDatabase(configured: string, ...avoid: string[]): string {
  return [configured, 'postgres', 'template1'].find((candidate) => !avoid.includes(candidate)) ?? configured;
}

// ---------------------------------------------------------------------------------------------
// Is it empty?

export interface UserObjects {
  count: number;
  /** The first few, as PostgreSQL names them: "table public.orders", "function public.f(integer)". */
  sample: string[];
}

/**
 * Every object a user made in the connected database: anything with an OID above initdb's that is
 * neither part of an extension nor generated for another object (array and row types, indexes,
 * partitions, serial sequences, TOAST tables), plus extensions other than PL/pgSQL and large
 * objects. The public schema itself does not count; what is in it does. Temporary objects of
 * other sessions do not count: they vanish with their session and collide with nothing.
 */
const USER_OBJECTS_QUERY = `
  WITH objects(classid, objid) AS (
    SELECT 'pg_namespace'::regclass, oid FROM pg_namespace WHERE nspname <> 'public' AND nspname !~ '^pg_(toast|temp_)'
    UNION ALL SELECT 'pg_class'::regclass, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind NOT IN ('i', 'I', 't') AND n.nspname !~ '^pg_(toast|temp_)'
    UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc
    UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type
    UNION ALL SELECT 'pg_operator'::regclass, oid FROM pg_operator
    UNION ALL SELECT 'pg_opfamily'::regclass, oid FROM pg_opfamily
    UNION ALL SELECT 'pg_opclass'::regclass, oid FROM pg_opclass
    UNION ALL SELECT 'pg_collation'::regclass, oid FROM pg_collation
    UNION ALL SELECT 'pg_conversion'::regclass, oid FROM pg_conversion
    UNION ALL SELECT 'pg_ts_config'::regclass, oid FROM pg_ts_config
    UNION ALL SELECT 'pg_ts_dict'::regclass, oid FROM pg_ts_dict
    UNION ALL SELECT 'pg_ts_parser'::regclass, oid FROM pg_ts_parser
    UNION ALL SELECT 'pg_ts_template'::regclass, oid FROM pg_ts_template
    UNION ALL SELECT 'pg_statistic_ext'::regclass, oid FROM pg_statistic_ext
    UNION ALL SELECT 'pg_extension'::regclass, oid FROM pg_extension WHERE extname <> 'plpgsql'
    UNION ALL SELECT 'pg_language'::regclass, oid FROM pg_language
    UNION ALL SELECT 'pg_cast'::regclass, oid FROM pg_cast
    UNION ALL SELECT 'pg_transform'::regclass, oid FROM pg_transform
    UNION ALL SELECT 'pg_am'::regclass, oid FROM pg_am
    UNION ALL SELECT 'pg_foreign_data_wrapper'::regclass, oid FROM pg_foreign_data_wrapper
    UNION ALL SELECT 'pg_foreign_server'::regclass, oid FROM pg_foreign_server
    UNION ALL SELECT 'pg_event_trigger'::regclass, oid FROM pg_event_trigger
    UNION ALL SELECT 'pg_publication'::regclass, oid FROM pg_publication
    UNION ALL SELECT 'pg_default_acl'::regclass, oid FROM pg_default_acl
    UNION ALL SELECT 'pg_subscription'::regclass, oid FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  ), found AS (
    SELECT identified.type || ' ' || identified.identity AS description FROM objects, LATERAL pg_identify_object(objects.classid, objects.objid, 0) identified
    WHERE objects.objid >= ${FIRST_USER_OID}
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = objects.classid AND d.objid = objects.objid AND d.deptype IN ('e', 'i', 'a'))
    UNION ALL SELECT 'large object ' || oid FROM pg_largeobject_metadata
  )
  SELECT description, count(*) OVER () AS total FROM found ORDER BY description LIMIT ${SAMPLE_SIZE}`;

export async function findUserObjects(connection: ConnectionSettings, database: string): Promise<UserObjects> {
  return withDatabase(connection, database, async (client) => {
    const { rows } = await client.query<{ description: string; total: string }>(USER_OBJECTS_QUERY);
    return { count: Number(rows[0]?.total ?? 0), sample: rows.map((row) => row.description) };
  });
}

export function describeUserObjects({ count, sample }: UserObjects): string {
  const more = count > sample.length ? `, and ${count - sample.length} more` : '';
  return `${count} user object${count === 1 ? '' : 's'}: ${sample.join(', ')}${more}`;
}

// ---------------------------------------------------------------------------------------------
// Replace mode

/** A name that fits PostgreSQL's 63 bytes: the target's, shortened whole characters at a time. */
function derivedName(target: string, marker: string): string {
  const suffix = `_pgkeep_${marker}_${randomBytes(3).toString('hex')}`;
  let base = target;
  while (Buffer.byteLength(base + suffix) > 63) base = [...base].slice(0, -1).join('');
  return base + suffix;
}

/**
 * Before the long restore: can this user carry a replace through to the end? Renaming a database
 * takes its owner (or a member of the owning role) with CREATEDB, or a superuser.
 */
export async function checkCanReplace(connection: ConnectionSettings, target: string): Promise<void> {
  const { rows } = await withDatabase(connection, maintenanceDatabase(connection.database, target), (client) =>
    client.query<{ owner: string; owns: boolean; createdb: boolean; user: string }>(
      `SELECT pg_get_userbyid(d.datdba) AS owner, pg_has_role(current_user, d.datdba, 'USAGE') AS owns,
              (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user) AS createdb, current_user AS user
       FROM pg_database d WHERE d.datname = $1`,
      [target],
    ),
  );
  const row = rows[0];
  if (!row) return; // gone since it was looked at: the restore creates it
  const missing = [
    ...(row.owns ? [] : [`is not the owner of "${target}" (${row.owner}) nor a member of that role`]),
    ...(row.createdb ? [] : ['lacks CREATEDB']),
  ];
  if (missing.length > 0) {
    throw new BackupFailure(
      'refused',
      `Replace mode restores into a new database and then swaps it in by renaming, but the restore user "${row.user}" ${missing.join(' and ')}; nothing was changed.`,
      `Grant it what it lacks (GRANT ${row.owner} TO ${row.user}; ALTER ROLE ${row.user} CREATEDB), or restore into a new database (PGKEEP_RESTORE_MODE=new) and switch your applications over yourself.`,
    );
  }
}

interface DatabaseProperties {
  oid: number;
  owner: string;
  encoding: string;
  tablespace: string;
  comment: string | null;
  connectionLimit: number;
  allowConnections: boolean;
  /** False: the default privileges (a NULL datacl), which a new database has too. */
  explicitAcl: boolean;
  /** The whole pg_database row, whose locale columns differ between server versions. */
  row: Record<string, unknown>;
  acl: { grantee: string | null; privilege: string; grantable: boolean }[];
  settings: { role: string | null; config: string[] }[];
}

async function readProperties(client: pg.Client, database: string): Promise<DatabaseProperties> {
  const { rows } = await client.query<Omit<DatabaseProperties, 'acl' | 'settings'>>(
    `SELECT d.oid, pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding, t.spcname AS tablespace,
            shobj_description(d.oid, 'pg_database') AS comment, d.datconnlimit AS "connectionLimit", d.datallowconn AS "allowConnections",
            d.datacl IS NOT NULL AS "explicitAcl", to_jsonb(d) - 'datacl' AS row
     FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = $1`,
    [database],
  );
  const properties = rows[0];
  if (!properties)
    throw new BackupFailure('restore', `The database "${database}" disappeared during the replace.`, 'Find out who dropped it, then run the restore again.');
  const { rows: acl } = await client.query<DatabaseProperties['acl'][number]>(
    `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege, a.is_grantable AS grantable
     FROM pg_database d, LATERAL aclexplode(d.datacl) a WHERE d.oid = $1 ORDER BY 1 NULLS FIRST, 2`,
    [properties.oid],
  );
  const { rows: settings } = await client.query<DatabaseProperties['settings'][number]>(
    'SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END AS role, s.setconfig AS config FROM pg_db_role_setting s WHERE s.setdatabase = $1',
    [properties.oid],
  );
  return { ...properties, acl, settings };
}

/** Creates the database the backup is restored into, with the target's encoding, locale and tablespace. */
export async function createReplacementDatabase(connection: ConnectionSettings, target: string): Promise<string> {
  const replacement = derivedName(target, 'restoring');
  await withDatabase(connection, maintenanceDatabase(connection.database, target), async (client) => {
    const properties = await readProperties(client, target);
    const row = properties.row;
    const literal = (value: unknown): string => client.escapeLiteral(String(value));
    const options = [
      `TEMPLATE template0`,
      `ENCODING ${literal(properties.encoding)}`,
      `LC_COLLATE ${literal(row.datcollate)}`,
      `LC_CTYPE ${literal(row.datctype)}`,
    ];
    // PostgreSQL 15 added ICU as a database's locale provider, 17 the builtin one.
    if (row.datlocprovider === 'c') options.push('LOCALE_PROVIDER libc');
    if (row.datlocprovider === 'i') {
      options.push('LOCALE_PROVIDER icu', `ICU_LOCALE ${literal(row.daticulocale ?? row.datlocale)}`);
      if (typeof row.daticurules === 'string') options.push(`ICU_RULES ${literal(row.daticurules)}`);
    }
    if (row.datlocprovider === 'b') options.push('LOCALE_PROVIDER builtin', `BUILTIN_LOCALE ${literal(row.datlocale)}`);
    if (properties.tablespace !== 'pg_default') options.push(`TABLESPACE ${client.escapeIdentifier(properties.tablespace)}`);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(replacement)} ${options.join(' ')}`);
  });
  return replacement;
}

/** Settings whose value is a list that PostgreSQL quotes element by element (pg_dump's variable_is_guc_list_quote). */
const LIST_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** `name=value` from pg_db_role_setting as the SET clause that recreates it. */
export function setClause(entry: string, escapeIdentifier: (name: string) => string, escapeLiteral: (value: string) => string): string {
  const equals = entry.indexOf('=');
  const name = entry.slice(0, equals);
  const value = entry.slice(equals + 1);
  if (!LIST_SETTINGS.has(name.toLowerCase())) return `SET ${escapeIdentifier(name)} = ${escapeLiteral(value)}`;
  return `SET ${escapeIdentifier(name)} = ${splitSettingList(value).map(escapeLiteral).join(', ')}`;
}

/** `"$user", public, "Odd ""x"""` into its elements, unquoted (PostgreSQL's SplitGUCList). */
export function splitSettingList(value: string): string[] {
  const elements: string[] = [];
  let index = 0;
  const skipSpace = (): void => {
    while (index < value.length && /\s/.test(value[index]!)) index += 1;
  };
  skipSpace();
  while (index < value.length) {
    let element = '';
    if (value[index] === '"') {
      index += 1;
      while (index < value.length) {
        if (value[index] === '"') {
          if (value[index + 1] === '"') {
            element += '"';
            index += 2;
            continue;
          }
          index += 1;
          break;
        }
        element += value[index];
        index += 1;
      }
    } else {
      while (index < value.length && value[index] !== ',' && !/\s/.test(value[index]!)) {
        element += value[index];
        index += 1;
      }
    }
    elements.push(element);
    skipSpace();
    if (value[index] === ',') index += 1;
    skipSpace();
  }
  return elements;
}

/**
 * Gives the restored database what belongs to the database rather than to its contents, as the
 * target has it: owner, privileges, settings (for everyone and per role), connection limit,
 * whether connections are allowed, comment. The owner comes first, so that every GRANT is then
 * recorded as the owner's, as it is on the target.
 */
export async function carryOverProperties(connection: ConnectionSettings, target: string, replacement: string): Promise<void> {
  await withDatabase(connection, maintenanceDatabase(connection.database, target, replacement), async (client) => {
    const properties = await readProperties(client, target);
    const name = client.escapeIdentifier(replacement);
    const role = (grantee: string | null): string => (grantee === null ? 'PUBLIC' : client.escapeIdentifier(grantee));
    const statements = [`ALTER DATABASE ${name} OWNER TO ${client.escapeIdentifier(properties.owner)}`];
    if (properties.explicitAcl) {
      statements.push(`REVOKE ALL ON DATABASE ${name} FROM PUBLIC, ${client.escapeIdentifier(properties.owner)}`);
      for (const entry of properties.acl)
        statements.push(`GRANT ${entry.privilege} ON DATABASE ${name} TO ${role(entry.grantee)}${entry.grantable ? ' WITH GRANT OPTION' : ''}`);
    }
    for (const setting of properties.settings) {
      for (const entry of setting.config) {
        const clause = setClause(
          entry,
          (value) => client.escapeIdentifier(value),
          (value) => client.escapeLiteral(value),
        );
        statements.push(
          setting.role === null ? `ALTER DATABASE ${name} ${clause}` : `ALTER ROLE ${client.escapeIdentifier(setting.role)} IN DATABASE ${name} ${clause}`,
        );
      }
    }
    if (properties.connectionLimit !== -1) statements.push(`ALTER DATABASE ${name} CONNECTION LIMIT ${Number(properties.connectionLimit)}`);
    if (!properties.allowConnections) statements.push(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    if (properties.comment !== null) statements.push(`COMMENT ON DATABASE ${name} IS ${client.escapeLiteral(properties.comment)}`);
    for (const statement of statements) {
      try {
        await client.query(statement);
      } catch (error) {
        throw new BackupFailure(
          'restore',
          `Could not give the restored copy the target's database properties (${statement}): ${(error as Error).message}. "${target}" was not replaced and is unchanged.`,
          'Grant the restore user what the statement needs (or run the restore as a superuser), then run the restore again.',
          { cause: error },
        );
      }
    }
  });
}

export interface Swap {
  previous: string;
  sessionsEnded: number;
}

/**
 * Swaps the restored copy in: in one transaction, ends the sessions on the target and renames
 * target to a temporary name and the copy to the target's. Renaming needs nobody connected to
 * either database; a session that connects between the ending and the rename fails the rename
 * (it waits 5 s for them to go), so it is tried again a few times.
 */
export async function swapIn(connection: ConnectionSettings, target: string, replacement: string): Promise<Swap> {
  const previous = derivedName(target, 'previous');
  return withDatabase(connection, maintenanceDatabase(connection.database, target, replacement), async (client) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ ended: string }>(
          // Sessions of roles, not autovacuum workers (no role; the rename stops them itself, and only
          // a superuser may end them). backend_type is NULL for other roles' sessions unless the
          // user may read their statistics.
          "SELECT count(pg_terminate_backend(pid, $2)) AS ended FROM pg_stat_activity WHERE datname = ANY($1) AND usesysid IS NOT NULL AND coalesce(backend_type, 'client backend') = 'client backend' AND pid <> pg_backend_pid()",
          [[target, replacement], TERMINATE_WAIT_MS],
        );
        await client.query(`ALTER DATABASE ${client.escapeIdentifier(target)} RENAME TO ${client.escapeIdentifier(previous)}`);
        await client.query(`ALTER DATABASE ${client.escapeIdentifier(replacement)} RENAME TO ${client.escapeIdentifier(target)}`);
        await client.query('COMMIT');
        return { previous, sessionsEnded: Number(rows[0]?.ended ?? 0) };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        const code = (error as { code?: string }).code;
        if (code === '55006' && attempt < SWAP_ATTEMPTS) continue;
        const sessions = await describeSessions(client, target);
        const why =
          code === '42501'
            ? `the restore user may not end the sessions connected to it (${sessions}): ${(error as Error).message}`
            : code === '55006'
              ? `sessions kept connecting to it while it was being renamed (${sessions})`
              : (error as Error).message;
        throw new BackupFailure(
          'restore',
          `The backup was restored and matched its manifest, but swapping it in for "${target}" failed: ${why}. "${target}" was not replaced and is unchanged.`,
          code === '42501'
            ? 'Stop the applications connected to it, or grant the restore user pg_signal_backend (sessions of superusers only a superuser may end), then run the restore again.'
            : 'Stop the applications that connect to it for the moment of the swap, then run the restore again.',
          { cause: error },
        );
      }
    }
  });
}

async function describeSessions(client: pg.Client, database: string): Promise<string> {
  const { rows } = await client
    .query<{ who: string }>(
      "SELECT coalesce(usename, backend_type) || CASE WHEN application_name <> '' THEN ' (' || application_name || ')' ELSE '' END AS who FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY 1",
      [database],
    )
    .catch(() => ({ rows: [] as { who: string }[] }));
  return rows.length === 0 ? 'none left now' : `${rows.length}: ${rows.map((row) => row.who).join(', ')}`;
}
