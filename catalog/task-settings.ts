/**
 * Every setting of the backup, restore and drill task: its environment variable, what it expects
 * and its default (BACKUP_SETTINGS, RESTORE_SETTINGS, DRILL_SETTINGS; the README's tables mirror
 * them, test/docs.test.ts checks), and the reader that checks them.
 *
 * Pure, so both sides use it: the task reads its settings through it (task/config.ts,
 * task/restore-config.ts, task/drill.ts), and the infrastructure checks each database's
 * `overrides` at synth time with `overrideProblems`, the same reader on the same settings, so a
 * value the task would refuse fails `cdk synth` with the task's own words instead of every
 * scheduled run.
 */

export type Environment = Readonly<Record<string, string | undefined>>;

/** With doubling every 1,000 parts (task/part-sizes.ts), a first part of 6 MiB is the smallest
 * whole number of MiB that still reaches 5 TiB (5 MiB tops out at 4.88 TiB). */
export const MIN_INITIAL_PART_SIZE_MIB = 6;

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
  PGKEEP_S3_CHECKSUM:
    'crc64nvme|none: have S3 verify per-part and full-object CRC64NVME; default: crc64nvme on AWS or with PGKEEP_OBJECT_LOCK=true, otherwise none with PGKEEP_S3_ENDPOINT; none is refused with PGKEEP_OBJECT_LOCK=true',
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
  PGKEEP_PG_DUMP_PATH:
    'use exactly this pg_dump file, never another (missing, not executable or not pg_dump: a configuration error); default: the newest installed whose major is at least the server major',
  PGKEEP_PG_BIN_DIRS: 'extra directories (colon-separated) searched for pg_dump first',
  PGKEEP_PROGRESS_SECONDS: 'seconds between progress log lines; default 30',
  PGKEEP_METRICS: 'cloudwatch|off: publish backup succeeded/failed, bytes, duration, throughput and compression ratio; default cloudwatch',
} as const;

/** Every setting of the `restore` command (task/restore-config.ts reads them), beside the connection's. */
export const RESTORE_SETTINGS = {
  PGKEEP_RESTORE_SOURCE: 'catalog name of the database whose backup to restore (required unless PGKEEP_RESTORE_BACKUP is a key)',
  PGKEEP_RESTORE_BACKUP:
    'latest (default: the newest backup that is complete, not future-dated and did not fail verification); a timestamp with a time zone (the newest backup at or before it, e.g. 2026-11-20T06:00:00Z or 2026-11-20 06:00:00Z); a backup id; or a backup key',
  PGKEEP_RESTORE_TARGET_DATABASE: 'database to restore into; default: a new database <source>_<backup time>',
  PGKEEP_RESTORE_MODE:
    'new (default: the target must not exist or hold no user objects) or replace (restore into a copy beside the target, compare it, then swap it in by renaming; the target is untouched until then)',
  PGKEEP_RESTORE_CONFIRM: 'replace mode only: must repeat the target database name',
  PGKEEP_RESTORE_FORCE_UNVERIFIED: 'true to restore a backup whose verification failed; default false',
  PGKEEP_RESTORE_NO_OWNER: 'true to skip ownership and privileges (when the source roles do not exist on the target); default false',
  PGKEEP_RESTORE_JOBS: 'parallel pg_restore jobs; above 1 the archive is first downloaded to ephemeral storage; default 1 (streaming)',
  PGKEEP_RESTORE_ARCHIVE_TIER: 'retrieval tier for archived backups: Expedited, Standard (default) or Bulk',
  PGKEEP_RESTORE_WAIT_FOR_ARCHIVE: 'true to wait for an archived backup to be retrieved, then restore; default false (request and exit 3)',
  PGKEEP_RESTORE_ARCHIVE_MAX_WAIT_HOURS: 'how long to wait for a retrieval; default 48',
  PGKEEP_RESTORE_ARCHIVE_POLL_SECONDS: 'seconds between checks while waiting for a retrieval; default 300',
  PGKEEP_BUCKET_REGION:
    "region of PGKEEP_BUCKET, e.g. the vault's when restoring from the vault; default: the task's own region (AWS_REGION); metrics and logs stay in the task's region",
} as const;

/** The `drill` command's own setting (task/drill.ts), beside the bucket's. */
export const DRILL_SETTINGS = {
  PGKEEP_DRILL_DATABASES: 'JSON array of the catalog names to drill, e.g. ["orders","billing"] (required)',
  PGKEEP_BUCKET_REGION: "region of PGKEEP_BUCKET, the bucket the drill reads backups from (e.g. the vault's); default: the task's own region (AWS_REGION)",
  PGKEEP_DRILL_RECORD_BUCKET:
    "bucket the drill records are written to, in the task's own region (the backup bucket, when PGKEEP_BUCKET names the vault, which the drill may only read); default: PGKEEP_BUCKET; required when PGKEEP_BUCKET_REGION names another region",
} as const;

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

/** The backup's tuning: the settings a database may override, read in the order the task reports them. */
export function readBackupTuning(reader: SettingsReader) {
  const { read, integer } = reader;
  return {
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
  };
}

export type S3ChecksumMode = 'crc64nvme' | 'none';

/**
 * PGKEEP_S3_CHECKSUM, whose default depends on where the backups go. Under Object Lock S3 refuses
 * every PutObject and UploadPart without Content-MD5 or a checksum header, so there checksums are
 * on whatever the endpoint, and "none" would break every backup.
 */
export function readS3Checksum(reader: SettingsReader, endpoint: string | undefined, objectLock: boolean): S3ChecksumMode {
  const { problems, read } = reader;
  const checksumRaw = read('PGKEEP_S3_CHECKSUM')?.toLowerCase();
  let checksum: S3ChecksumMode = endpoint === undefined || objectLock ? 'crc64nvme' : 'none';
  if (checksumRaw === 'crc64nvme' || checksumRaw === 'none') checksum = checksumRaw;
  else if (checksumRaw !== undefined) problems.push(`PGKEEP_S3_CHECKSUM="${checksumRaw}" is invalid: expected crc64nvme or none.`);
  if (objectLock && checksumRaw === 'none') {
    problems.push(
      'PGKEEP_S3_CHECKSUM=none cannot be used with PGKEEP_OBJECT_LOCK=true: S3 refuses every upload without a checksum to a bucket under Object Lock; remove PGKEEP_S3_CHECKSUM (crc64nvme is the default there) or set it to crc64nvme.',
    );
  }
  return checksum;
}

/** The task settings a database may override. Settings the infrastructure owns (bucket, key,
 * environment, catalog name) and ones that would bypass Secrets Manager (PGKEEP_DATABASE_URL) or
 * point away from AWS S3 (PGKEEP_S3_ENDPOINT) are deliberately absent. */
export const OVERRIDABLE_TASK_SETTINGS = [
  'PGKEEP_COMPRESSION_LEVEL',
  'PGKEEP_COMPRESSION_THREADS',
  'PGKEEP_PART_SIZE_MIB',
  'PGKEEP_PARTS_IN_FLIGHT',
  'PGKEEP_EXACT_COUNT_MAX_MB',
  'PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS',
  'PGKEEP_BACKUP_DEADLINE_SECONDS',
  'PGKEEP_S3_REQUEST_TIMEOUT_SECONDS',
  'PGKEEP_PROGRESS_SECONDS',
  'PGKEEP_S3_CHECKSUM',
  'PGKEEP_PG_DUMP_PATH',
  'PGKEEP_PG_BIN_DIRS',
] as const satisfies readonly (keyof typeof BACKUP_SETTINGS)[];

export type OverridableTaskSetting = (typeof OVERRIDABLE_TASK_SETTINGS)[number];

/**
 * What the task would refuse in a database's overrides (on an AWS S3 bucket, with or without Object
 * Lock, as the stacks deploy it): one sentence per problem, each naming its variable, exactly as
 * the task's configuration failure lists them. Empty when the task accepts them all.
 */
export function overrideProblems(overrides: Partial<Record<OverridableTaskSetting, string>>, options: { objectLock: boolean }): string[] {
  const reader = settingsReader(overrides);
  readS3Checksum(reader, undefined, options.objectLock);
  readBackupTuning(reader);
  return reader.problems;
}
