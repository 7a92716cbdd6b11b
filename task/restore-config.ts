import { isBackupId, parseBackupKey } from '../catalog/keys.ts';
import { readConnection, readS3Settings, settingsReader, type BackupConfig, type ConnectionSettings, type Environment } from './config.ts';
import { BackupFailure } from './errors.ts';

/**
 * Settings of the `restore` command, all from the environment, so that the ECS console's "Run
 * task" with container overrides is all a user needs. The target connection comes from a secret,
 * as for the backup.
 */
export type BackupSelector = { kind: 'latest' } | { kind: 'at-or-before'; at: Date } | { kind: 'backup-id'; backupId: string };
export type ArchiveTier = 'Expedited' | 'Standard' | 'Bulk';

export interface RestoreConfig {
  s3: BackupConfig['s3'];
  environment: string;
  /** Catalog name of the database whose backup is restored. */
  sourceDatabase: string;
  selector: BackupSelector;
  /** The server to restore into; `database` is the one to connect to for CREATE DATABASE. */
  target: ConnectionSettings;
  /** Explicit target database name; default: a new one named after the source and the backup time. */
  targetDatabase: string | undefined;
  mode: 'new' | 'replace';
  /** Must repeat the target database's name for replace mode. */
  confirm: string | undefined;
  /** Restore a backup whose verification failed. */
  forceUnverified: boolean;
  /** Skip ownership and privileges (restoring where the source's roles do not exist). */
  noOwner: boolean;
  /** More than 1: download to ephemeral storage, then `pg_restore -j`. */
  jobs: number;
  archive: { tier: ArchiveTier; wait: boolean; retrievalDays: number; pollSeconds: number; maxWaitHours: number };
  metrics: 'cloudwatch' | 'off';
}

export function loadRestoreConfig(env: Environment): RestoreConfig {
  const reader = settingsReader(env);
  const { problems, read, integer, boolean, oneOf } = reader;
  const s3 = readS3Settings(reader, { readsBucketRegion: true });
  const environment = read('PGKEEP_ENVIRONMENT') ?? 'default';

  const backupRaw = read('PGKEEP_RESTORE_BACKUP') ?? 'latest';
  let selector: BackupSelector = { kind: 'latest' };
  let sourceFromKey: string | undefined;
  const parsedKey = parseBackupKey(backupRaw);
  if (backupRaw === 'latest') selector = { kind: 'latest' };
  else if (parsedKey) {
    selector = { kind: 'backup-id', backupId: parsedKey.backupId };
    sourceFromKey = parsedKey.database;
  } else if (isBackupId(backupRaw)) selector = { kind: 'backup-id', backupId: backupRaw };
  else if (/^\d{4}-\d{2}-\d{2}/.test(backupRaw)) {
    const parsed = parseTimestamp(backupRaw);
    if (parsed instanceof Date) selector = { kind: 'at-or-before', at: parsed };
    else problems.push(`PGKEEP_RESTORE_BACKUP="${backupRaw}" ${parsed.problem}`);
  } else
    problems.push(`PGKEEP_RESTORE_BACKUP="${backupRaw}" is invalid: expected latest, a timestamp such as 2026-11-20T06:00:00Z, a backup id or a backup key.`);

  const sourceDatabase = read('PGKEEP_RESTORE_SOURCE') ?? sourceFromKey ?? '';
  if (!sourceDatabase) problems.push('PGKEEP_RESTORE_SOURCE is not set: expected the name of the database whose backup to restore.');
  if (sourceFromKey && sourceDatabase !== sourceFromKey)
    problems.push(`PGKEEP_RESTORE_BACKUP is a backup of "${sourceFromKey}", but PGKEEP_RESTORE_SOURCE says "${sourceDatabase}".`);

  // The target server: PGHOST etc. (from the target secret) or PGKEEP_DATABASE_URL. Its database
  // is only where the task connects to create the target; it defaults to "postgres".
  const target = readConnection((name) => (name === 'PGDATABASE' ? (read(name) ?? 'postgres') : read(name)), problems) ?? undefined;
  const targetDatabase = read('PGKEEP_RESTORE_TARGET_DATABASE');
  if (targetDatabase !== undefined && Buffer.byteLength(targetDatabase) > 63)
    problems.push("PGKEEP_RESTORE_TARGET_DATABASE is longer than PostgreSQL's 63-byte limit for names.");
  const mode = oneOf('PGKEEP_RESTORE_MODE', ['new', 'replace'] as const, 'new');
  const confirm = read('PGKEEP_RESTORE_CONFIRM');
  if (mode === 'replace' && targetDatabase === undefined)
    problems.push('PGKEEP_RESTORE_MODE=replace needs PGKEEP_RESTORE_TARGET_DATABASE: name the database to replace.');
  if (mode === 'replace' && confirm === undefined)
    problems.push('PGKEEP_RESTORE_MODE=replace needs PGKEEP_RESTORE_CONFIRM set to the target database name, to confirm that its contents will be replaced.');
  const tierRaw = read('PGKEEP_RESTORE_ARCHIVE_TIER') ?? 'Standard';
  const tier = (['Expedited', 'Standard', 'Bulk'] as const).find((candidate) => candidate.toLowerCase() === tierRaw.toLowerCase());
  if (!tier) problems.push(`PGKEEP_RESTORE_ARCHIVE_TIER="${tierRaw}" is invalid: expected Expedited, Standard or Bulk.`);

  const config: RestoreConfig = {
    s3,
    environment,
    sourceDatabase,
    selector,
    target: target ?? { host: '', port: 5432, user: '', password: undefined, database: 'postgres', sslMode: undefined, sslRootCert: undefined },
    targetDatabase,
    mode,
    confirm,
    forceUnverified: boolean('PGKEEP_RESTORE_FORCE_UNVERIFIED', false),
    noOwner: boolean('PGKEEP_RESTORE_NO_OWNER', false),
    jobs: integer('PGKEEP_RESTORE_JOBS', 1, 1, 64),
    archive: {
      tier: tier ?? 'Standard',
      wait: boolean('PGKEEP_RESTORE_WAIT_FOR_ARCHIVE', false),
      retrievalDays: 3,
      pollSeconds: integer('PGKEEP_RESTORE_ARCHIVE_POLL_SECONDS', 300, 1, 3600),
      maxWaitHours: integer('PGKEEP_RESTORE_ARCHIVE_MAX_WAIT_HOURS', 48, 0, 240),
    },
    metrics: oneOf('PGKEEP_METRICS', ['cloudwatch', 'off'] as const, 'cloudwatch'),
  };
  if (problems.length > 0) {
    throw new BackupFailure(
      'configuration',
      `The restore task is misconfigured:\n  - ${problems.join('\n  - ')}`,
      'Fix the settings above (see "Restore" in README.md) and run the task again. Nothing was read or written.',
    );
  }
  return config;
}

const ZONE_EXAMPLES = 'write it in UTC with Z (2026-11-20T06:00:00Z) or with an offset (2026-11-20T07:00:00+01:00), so it means the same instant everywhere.';
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * An RFC 3339 date-time (seconds and fractions optional, as ISO 8601 allows), or what is wrong with
 * it. RFC 3339 (section 5.6) lets a space stand for the "T" and allows lower-case t and z; a time
 * without a zone is refused because it would mean different instants on different machines. Every
 * field is range-checked here: Date.parse would roll 2026-02-30 over to March 2.
 */
export function parseTimestamp(text: string): Date | { problem: string } {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return { problem: `has no time of day and no time zone: ${ZONE_EXAMPLES}` };
  const match = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$/i.exec(text);
  if (!match) return { problem: 'is invalid: expected latest, a timestamp such as 2026-11-20T06:00:00Z, a backup id or a backup key.' };
  const [, year, month, day, hour, minute, second = '00', fraction = '', zone] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string | undefined,
    string | undefined,
    string | undefined,
  ];
  const invalid = (what: string): { problem: string } => ({ problem: `is not a valid date and time: ${what}.` });
  const [y, mo, d, h, mi, s] = [year, month, day, hour, minute, second].map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12) return invalid(`month ${month} does not exist`);
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d < 1 || d > daysInMonth) return invalid(`${MONTHS[mo - 1]} ${year} has no day ${day}`);
  if (h > 23) return invalid(`hour ${hour} does not exist`);
  if (mi > 59) return invalid(`minute ${minute} does not exist`);
  // A leap second (:60) has no representation in JavaScript's or S3's clocks.
  if (s > 59) return invalid(`second ${second} does not exist`);
  if (zone === undefined) return { problem: `has no time zone: ${ZONE_EXAMPLES}` };
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const [offsetHours, offsetRest] = zone.slice(1).split(':').map(Number) as [number, number];
    if (offsetHours > 23 || offsetRest > 59) return invalid(`offset ${zone} does not exist`);
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (offsetHours * 60 + offsetRest);
  }
  const milliseconds = fraction ? Math.floor(Number(`0${fraction}`) * 1000) : 0;
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, milliseconds) - offsetMinutes * 60_000);
}

/** `<source>_<yyyymmdd_hhmmss>` of the backup's start, within PostgreSQL's 63-byte name limit. */
export function defaultTargetDatabase(sourceDatabase: string, backupStartedAt: Date): string {
  const stamp = backupStartedAt.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  const suffix = `_${stamp}`;
  let base = sourceDatabase;
  while (Buffer.byteLength(base + suffix) > 63) base = [...base].slice(0, -1).join('');
  return base + suffix;
}
