import { parse as parseConnectionUrl } from 'pg-connection-string';
import { encodeDatabaseSegment } from '../catalog/keys.ts';
import { bucketNameProblem } from './bucket-name.ts';
import {
  parseDecimalInteger,
  readBackupTuning,
  readS3Checksum,
  settingsReader,
  type Environment,
  type S3ChecksumMode,
  type SettingsReader,
} from '../catalog/task-settings.ts';
import { BackupFailure, EXAMPLE_DATABASE_URL, registerSecret } from './errors.ts';

// The settings themselves (names, defaults, the reader) are catalog/task-settings.ts; these are
// the names the task's other modules and scripts have long imported from here.
export { BACKUP_SETTINGS, PIPELINE_DEFAULTS, S3_REQUEST_TIMEOUT_DEFAULT_SECONDS, parseDecimalInteger, settingsReader } from '../catalog/task-settings.ts';
export type { Environment, S3ChecksumMode, SettingsReader } from '../catalog/task-settings.ts';

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

const DEFAULT_REGION = 'us-east-1';

export function loadBackupConfig(env: Environment): BackupConfig {
  const reader = settingsReader(env);
  const { problems, read, required, oneOf } = reader;

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
    ...readBackupTuning(reader),
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

/** The task's own region: where it runs, and where its metrics and logs go. */
export function taskRegion(read: SettingsReader['read']): string {
  return read('AWS_REGION') ?? read('AWS_DEFAULT_REGION') ?? DEFAULT_REGION;
}

/**
 * The bucket and how to reach it: shared by every task command. `readsBucketRegion`: the restore
 * and the drill may read a bucket in another region (the vault, catalog/vault.ts), named by
 * PGKEEP_BUCKET_REGION; the backup writes only to the bucket beside it, so it takes no such setting.
 */
export function readS3Settings(reader: SettingsReader, { readsBucketRegion = false }: { readsBucketRegion?: boolean } = {}): BackupConfig['s3'] {
  const { problems, read, required, boolean } = reader;
  const bucket = required('PGKEEP_BUCKET', 'the name of the backup bucket');
  const bucketProblem = bucket ? bucketNameProblem(bucket) : undefined;
  if (bucketProblem) {
    problems.push(
      `PGKEEP_BUCKET="${bucket}" is not a valid S3 bucket name: ${bucketProblem} (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).`,
    );
  }
  const endpoint = read('PGKEEP_S3_ENDPOINT');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    problems.push(`PGKEEP_S3_ENDPOINT="${endpoint}" is invalid: expected an http(s):// URL of an S3-compatible store.`);
  }
  const objectLock = boolean('PGKEEP_OBJECT_LOCK', false);
  const checksum = readS3Checksum(reader, endpoint, objectLock);

  return {
    bucket,
    endpoint,
    region: (readsBucketRegion ? readBucketRegion(reader) : undefined) ?? taskRegion(read),
    forcePathStyle: boolean('PGKEEP_S3_FORCE_PATH_STYLE', endpoint !== undefined),
    checksum,
    kmsKeyId: read('PGKEEP_KMS_KEY_ID'),
    objectLock,
  };
}

/** PGKEEP_BUCKET_REGION, checked for the shape of an AWS region name (us-east-1, eu-central-2, us-gov-west-1). */
function readBucketRegion({ read, problems }: SettingsReader): string | undefined {
  const region = read('PGKEEP_BUCKET_REGION');
  if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    problems.push(`PGKEEP_BUCKET_REGION="${region}" is invalid: expected an AWS region name such as eu-west-1.`);
    return undefined;
  }
  return region;
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
