import { parse as parseConnectionUrl } from 'pg-connection-string';
import { encodeDatabaseSegment } from '../catalog/keys.ts';
import { bucketNameProblem } from './bucket-name.ts';
import { BackupFailure, EXAMPLE_DATABASE_URL, registerSecret } from './errors.ts';
import { MIN_INITIAL_PART_SIZE_MIB } from './part-sizes.ts';

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

export interface ConnectionSettings {
  /** A host name, an IP address, or (as in libpq) a directory holding the Unix socket. */
  host: string;
  port: number;
  user: string;
  password: string | undefined;
  database: string;
  sslMode: SslMode | undefined;
  sslRootCert: string | undefined;
}

export type S3ChecksumMode = 'crc64nvme' | 'none';

export interface BackupConfig {
  connection: ConnectionSettings;
  /** The name the backups are catalogued under (the key layout's database segment). */
  catalogDatabase: string;
  environment: string;
  s3: {
    bucket: string;
    endpoint: string | undefined;
    region: string;
    forcePathStyle: boolean;
    checksum: S3ChecksumMode;
    kmsKeyId: string | undefined;
    /** The bucket is under S3 Object Lock: S3 refuses any upload there that carries no checksum. */
    objectLock: boolean;
  };
  compression: { level: number; threads: number };
  upload: { initialPartSizeBytes: number; maxPartsInFlight: number };
  /** Tables larger than this get a planner estimate instead of an exact count(*). */
  exactCountMaxBytes: number;
  lockWaitTimeoutSeconds: number;
  /** The whole backup (connect to manifest) must finish within this, or it is abandoned and cleaned up. */
  deadlineMs: number;
  /** Every S3 request (one attempt) must finish, or show progress, within this; the SDK then retries it. */
  s3RequestTimeoutMs: number;
  /** Use exactly this pg_dump instead of choosing one by server version. */
  pgDumpPath: string | undefined;
  /** Extra directories searched for pg_dump, before the usual ones. */
  pgBinDirs: string[];
  progressIntervalMs: number;
  /** Publish backup metrics to CloudWatch (namespace pgkeep), or not at all. */
  metrics: 'cloudwatch' | 'off';
}

export type Environment = Readonly<Record<string, string | undefined>>;

/** Performance defaults, measured on 2 vCPUs with `npm run bench` (docs/performance.md says why). */
export const PIPELINE_DEFAULTS = {
  compressionLevel: 3,
  /** 0 = one zstd worker per core. */
  compressionThreads: 0,
  partSizeMib: 8,
  partsInFlight: 2,
} as const;

/**
 * A backup holds a snapshot (and so holds back VACUUM) on the production database for as long as
 * it runs: it must end, one way or the other. 6 hours is several times what a 100 GB database
 * takes here (docs/performance.md) and well short of a daily schedule.
 */
export const BACKUP_DEADLINE_DEFAULT_SECONDS = 21_600;
/** S3 answers a small request in well under a second; 30 s without a byte is a dead connection. */
export const S3_REQUEST_TIMEOUT_DEFAULT_SECONDS = 30;

/** Every setting the backup task reads, with what it expects; the README's table mirrors this. */
export const BACKUP_SETTINGS = {
  PGKEEP_BUCKET: 'name of the S3 bucket that receives the backups (required); S3 bucket naming rules apply',
  PGKEEP_ENVIRONMENT: 'environment name recorded in the manifest, e.g. prod (required)',
  PGKEEP_DATABASE_URL: 'postgresql:// connection URL; alternative to the PG* variables (PGPASSWORD still supplies a missing password)',
  PGKEEP_DATABASE_NAME: 'name the backups are catalogued under; default: the database name',
  PGKEEP_S3_ENDPOINT: 'URL of an S3-compatible store; default: AWS S3',
  PGKEEP_S3_FORCE_PATH_STYLE: 'true|false; default: true when PGKEEP_S3_ENDPOINT is set',
  PGKEEP_S3_CHECKSUM: 'crc64nvme|none: have S3 verify per-part and full-object CRC64NVME; default: crc64nvme on AWS or with PGKEEP_OBJECT_LOCK=true, otherwise none with PGKEEP_S3_ENDPOINT; none is refused with PGKEEP_OBJECT_LOCK=true',
  PGKEEP_OBJECT_LOCK: 'true|false: the bucket is under S3 Object Lock, which refuses uploads without a checksum (set by the stacks); default false',
  PGKEEP_KMS_KEY_ID: 'KMS key id, ARN or alias for SSE-KMS; default: the bucket default encryption',
  PGKEEP_COMPRESSION_LEVEL: `zstd level 1-19; default ${PIPELINE_DEFAULTS.compressionLevel}`,
  PGKEEP_COMPRESSION_THREADS: `zstd worker threads, 0 = one per core; default ${PIPELINE_DEFAULTS.compressionThreads}`,
  PGKEEP_PART_SIZE_MIB: `first multipart part size in MiB (>= 6, so that doubling reaches 5 TiB within 10,000 parts); default ${PIPELINE_DEFAULTS.partSizeMib}`,
  PGKEEP_PARTS_IN_FLIGHT: `parts uploaded concurrently (memory is about (this + 1) x part size); default ${PIPELINE_DEFAULTS.partsInFlight}`,
  PGKEEP_EXACT_COUNT_MAX_MB: 'tables larger than this get a planner row estimate instead of count(*); default 1024',
  PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS: 'give up if a table lock cannot be had within this time; default 600',
  PGKEEP_BACKUP_DEADLINE_SECONDS: `the whole backup must finish within this, or it is stopped, its upload aborted and the snapshot released; default ${BACKUP_DEADLINE_DEFAULT_SECONDS} (6 hours)`,
  PGKEEP_S3_REQUEST_TIMEOUT_SECONDS: `an S3 request that gets no answer (or, for a part, makes no progress) within this is cancelled and retried, up to 6 attempts; default ${S3_REQUEST_TIMEOUT_DEFAULT_SECONDS}`,
  PGKEEP_PG_DUMP_PATH: 'use exactly this pg_dump file, never another (missing, not executable or not pg_dump: a configuration error); default: the newest installed whose major is at least the server major',
  PGKEEP_PG_BIN_DIRS: 'extra directories (colon-separated) searched for pg_dump first',
  PGKEEP_PROGRESS_SECONDS: 'seconds between progress log lines; default 30',
  PGKEEP_METRICS: 'cloudwatch|off: publish backup succeeded/failed, bytes, duration, throughput and compression ratio; default cloudwatch',
} as const;

const DEFAULT_REGION = 'us-east-1';

/**
 * A whole number written the plain way: decimal digits, optionally signed. Number() alone also
 * takes "0x10", "8.0", "1e1", "0b11" and " " (as 16, 8, 10, 3 and 0), none of which an operator
 * writing a setting means as that number.
 */
export function parseDecimalInteger(raw: string): number | undefined {
  if (!/^[+-]?\d+$/.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Reads and validates every setting before anything touches the database or the bucket.
 * All problems are reported together, each naming its variable and what it expects. */
/** Reads settings from an environment, collecting every problem instead of stopping at the first. */
export function settingsReader(env: Environment) {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const required = (name: string, expectation: string): string => {
    const value = read(name);
    if (value === undefined) problems.push(`${name} is not set: expected ${expectation}.`);
    return value ?? '';
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = parseDecimalInteger(raw);
    if (value === undefined || value < min || value > max) {
      problems.push(`${name}="${raw}" is invalid: expected a whole number from ${min} to ${max}.`);
      return fallback;
    }
    return value;
  };
  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    problems.push(`${name}="${raw}" is invalid: expected true or false.`);
    return fallback;
  };

  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name}="${raw}" is invalid: expected ${allowed.join(' or ')}.`);
    return fallback;
  };

  return { problems, read, required, integer, boolean, oneOf };
}

export type SettingsReader = ReturnType<typeof settingsReader>;

export function loadBackupConfig(env: Environment): BackupConfig {
  const reader = settingsReader(env);
  const { problems, read, required, integer, oneOf } = reader;

  const connection = readConnection(read, problems);
  const environment = required('PGKEEP_ENVIRONMENT', 'the environment name recorded in each manifest, e.g. prod');
  const s3 = readS3Settings(reader);

  const catalogDatabase = read('PGKEEP_DATABASE_NAME') ?? connection?.database ?? '';
  try {
    if (catalogDatabase) encodeDatabaseSegment(catalogDatabase);
  } catch (error) {
    problems.push(`PGKEEP_DATABASE_NAME is invalid: ${(error as Error).message}`);
  }

  const config: BackupConfig = {
    connection: connection ?? emptyConnection(),
    catalogDatabase,
    environment,
    s3,
    compression: {
      level: integer('PGKEEP_COMPRESSION_LEVEL', PIPELINE_DEFAULTS.compressionLevel, 1, 19),
      threads: integer('PGKEEP_COMPRESSION_THREADS', PIPELINE_DEFAULTS.compressionThreads, 0, 256),
    },
    upload: {
      initialPartSizeBytes: integer('PGKEEP_PART_SIZE_MIB', PIPELINE_DEFAULTS.partSizeMib, MIN_INITIAL_PART_SIZE_MIB, 512) * 2 ** 20,
      maxPartsInFlight: integer('PGKEEP_PARTS_IN_FLIGHT', PIPELINE_DEFAULTS.partsInFlight, 1, 16),
    },
    exactCountMaxBytes: integer('PGKEEP_EXACT_COUNT_MAX_MB', 1024, 0, 1e9) * 2 ** 20,
    lockWaitTimeoutSeconds: integer('PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS', 600, 1, 86_400),
    deadlineMs: integer('PGKEEP_BACKUP_DEADLINE_SECONDS', BACKUP_DEADLINE_DEFAULT_SECONDS, 1, 7 * 86_400) * 1000,
    s3RequestTimeoutMs: integer('PGKEEP_S3_REQUEST_TIMEOUT_SECONDS', S3_REQUEST_TIMEOUT_DEFAULT_SECONDS, 1, 600) * 1000,
    pgDumpPath: read('PGKEEP_PG_DUMP_PATH'),
    pgBinDirs: (read('PGKEEP_PG_BIN_DIRS') ?? '').split(':').filter(Boolean),
    progressIntervalMs: integer('PGKEEP_PROGRESS_SECONDS', 30, 1, 3600) * 1000,
    metrics: oneOf('PGKEEP_METRICS', ['cloudwatch', 'off'] as const, 'cloudwatch'),
  };

  if (problems.length > 0) {
    throw new BackupFailure(
      'configuration',
      `The backup task is misconfigured:\n  - ${problems.join('\n  - ')}`,
      'Fix the settings above (see the configuration table in README.md) and run the task again. Nothing was read or written.',
    );
  }
  return config;
}

/** The bucket and how to reach it: shared by every task command. */
export function readS3Settings(reader: SettingsReader): BackupConfig['s3'] {
  const { problems, read, required, boolean } = reader;
  const bucket = required('PGKEEP_BUCKET', 'the name of the backup bucket');
  const bucketProblem = bucket ? bucketNameProblem(bucket) : undefined;
  if (bucketProblem) {
    problems.push(`PGKEEP_BUCKET="${bucket}" is not a valid S3 bucket name: ${bucketProblem} (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).`);
  }
  const endpoint = read('PGKEEP_S3_ENDPOINT');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    problems.push(`PGKEEP_S3_ENDPOINT="${endpoint}" is invalid: expected an http(s):// URL of an S3-compatible store.`);
  }
  const objectLock = boolean('PGKEEP_OBJECT_LOCK', false);
  const checksumRaw = read('PGKEEP_S3_CHECKSUM')?.toLowerCase();
  // Under Object Lock S3 refuses every PutObject and UploadPart without Content-MD5 or a checksum
  // header, so there checksums are on whatever the endpoint, and "none" would break every backup.
  let checksum: S3ChecksumMode = endpoint === undefined || objectLock ? 'crc64nvme' : 'none';
  if (checksumRaw === 'crc64nvme' || checksumRaw === 'none') checksum = checksumRaw;
  else if (checksumRaw !== undefined) problems.push(`PGKEEP_S3_CHECKSUM="${checksumRaw}" is invalid: expected crc64nvme or none.`);
  if (objectLock && checksumRaw === 'none') {
    problems.push('PGKEEP_S3_CHECKSUM=none cannot be used with PGKEEP_OBJECT_LOCK=true: S3 refuses every upload without a checksum to a bucket under Object Lock; remove PGKEEP_S3_CHECKSUM (crc64nvme is the default there) or set it to crc64nvme.');
  }

  return {
    bucket,
    endpoint,
    region: read('AWS_REGION') ?? read('AWS_DEFAULT_REGION') ?? DEFAULT_REGION,
    forcePathStyle: boolean('PGKEEP_S3_FORCE_PATH_STYLE', endpoint !== undefined),
    checksum,
    kmsKeyId: read('PGKEEP_KMS_KEY_ID'),
    objectLock,
  };
}

export function readConnection(read: (name: string) => string | undefined, problems: string[]): ConnectionSettings | undefined {
  const url = read('PGKEEP_DATABASE_URL');
  const password = read('PGPASSWORD');
  registerSecret(password);
  if (url !== undefined) {
    if (!/^postgres(ql)?:\/\//i.test(url)) {
      problems.push(`PGKEEP_DATABASE_URL is invalid: expected a ${EXAMPLE_DATABASE_URL} URL.`);
      return undefined;
    }
    let parsed: ReturnType<typeof parseConnectionUrl>;
    try {
      parsed = parseConnectionUrl(url);
    } catch {
      problems.push(`PGKEEP_DATABASE_URL could not be parsed: expected a ${EXAMPLE_DATABASE_URL} URL.`);
      return undefined;
    }
    registerSecret(parsed.password);
    const settings = {
      host: parsed.host ?? '',
      port: parsed.port ? Number(parsed.port) : 5432,
      user: parsed.user ?? '',
      password: parsed.password || password,
      database: parsed.database ?? '',
      sslMode: undefined as SslMode | undefined,
      sslRootCert: read('PGSSLROOTCERT'),
    };
    // From the parser's query parameters: re-parsing with URL would throw (the password in its `input`)
    // on libpq's empty-host form for Unix sockets, postgresql://user:pw@/db?host=/run/postgresql.
    const urlSslMode = typeof parsed.sslmode === 'string' ? parsed.sslmode : read('PGSSLMODE');
    settings.sslMode = checkSslMode(urlSslMode, 'sslmode in PGKEEP_DATABASE_URL', problems);
    if (!settings.host) problems.push('PGKEEP_DATABASE_URL has no host.');
    if (!settings.user) problems.push('PGKEEP_DATABASE_URL has no user name.');
    if (!settings.database) problems.push('PGKEEP_DATABASE_URL names no database (…/database at the end).');
    if (!Number.isInteger(settings.port) || settings.port < 1 || settings.port > 65_535) problems.push('PGKEEP_DATABASE_URL has an invalid port.');
    return settings;
  }

  const host = read('PGHOST');
  const user = read('PGUSER');
  const database = read('PGDATABASE');
  if (host === undefined) problems.push('PGHOST is not set: expected the database server host (or set PGKEEP_DATABASE_URL).');
  if (user === undefined) problems.push('PGUSER is not set: expected the user the backup connects as.');
  if (database === undefined) problems.push('PGDATABASE is not set: expected the name of the database to back up.');
  const portRaw = read('PGPORT') ?? '5432';
  const port = parseDecimalInteger(portRaw) ?? Number.NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) problems.push(`PGPORT="${portRaw}" is invalid: expected a port number from 1 to 65535.`);
  return {
    host: host ?? '',
    port,
    user: user ?? '',
    password,
    database: database ?? '',
    sslMode: checkSslMode(read('PGSSLMODE'), 'PGSSLMODE', problems),
    sslRootCert: read('PGSSLROOTCERT'),
  };
}

function checkSslMode(value: string | null | undefined, name: string, problems: string[]): SslMode | undefined {
  if (value === undefined || value === null) return undefined;
  if ((SSL_MODES as readonly string[]).includes(value)) return value as SslMode;
  problems.push(`${name}="${value}" is invalid: expected one of ${SSL_MODES.join(', ')}.`);
  return undefined;
}

function emptyConnection(): ConnectionSettings {
  return { host: '', port: 5432, user: '', password: undefined, database: '', sslMode: undefined, sslRootCert: undefined };
}

/** The libpq environment for child processes (pg_dump): the password travels only here, never in argv. */
export function libpqEnvironment(connection: ConnectionSettings, applicationName: string): Record<string, string> {
  const env: Record<string, string> = {
    PGHOST: connection.host,
    PGPORT: String(connection.port),
    PGUSER: connection.user,
    PGDATABASE: connection.database,
    PGAPPNAME: applicationName,
    PGCONNECT_TIMEOUT: '30',
  };
  if (connection.password !== undefined) env.PGPASSWORD = connection.password;
  if (connection.sslMode !== undefined) env.PGSSLMODE = connection.sslMode;
  if (connection.sslRootCert !== undefined) env.PGSSLROOTCERT = connection.sslRootCert;
  return env;
}
