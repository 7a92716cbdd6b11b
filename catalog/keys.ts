/**
 * The S3 key layout shared by the backup task, the Lambdas and the restore task.
 *
 *   backups/<database segment>/<backup id>.dump.zst        the data object
 *   backups/<database segment>/<backup id>.manifest.json   its manifest (written last)
 *
 * A backup id starts with its UTC start time, zero-padded to fixed width, so plain
 * lexicographic key order (the order S3 lists in) is chronological order.
 */

export const BACKUP_ROOT_PREFIX = 'backups/';
export const DATA_OBJECT_SUFFIX = '.dump.zst';
export const MANIFEST_SUFFIX = '.manifest.json';
/** Restore-drill records: audit evidence, kept apart from backups so retention never removes them. */
export const DRILL_ROOT_PREFIX = 'drills/';

/** `20261123T183254.123Z-3f9a2c`: UTC start time to the millisecond, then a random suffix so two
 * backups of one database started in the same millisecond still get distinct keys. */
const BACKUP_ID_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-([0-9a-f]{6})$/;

/** Characters kept verbatim in a database segment. Everything else (including `.`, `%`, `/`,
 * spaces and any non-ASCII character) is percent-encoded as UTF-8, so a segment is always a
 * single path component, never `.` or `..`, and decodes back to exactly the original name. */
const VERBATIM_SEGMENT_CHARACTER = /[A-Za-z0-9_-]/;

export class CatalogKeyError extends Error {
  override name = 'CatalogKeyError';
}

export function encodeDatabaseSegment(database: string): string {
  if (database.length === 0) throw new CatalogKeyError('The database name is empty; give the name under which its backups are catalogued.');
  if (database.includes('\u0000')) throw new CatalogKeyError('The database name contains a NUL character, which PostgreSQL does not allow.');
  // A lone surrogate has no UTF-8 form (Buffer.from writes U+FFFD instead), so two names would share a segment.
  if (/\p{Cs}/u.test(database))
    throw new CatalogKeyError('The database name contains an unpaired UTF-16 surrogate, which is not valid text; PostgreSQL names are UTF-8.');
  let segment = '';
  for (const character of database) {
    if (VERBATIM_SEGMENT_CHARACTER.test(character)) {
      segment += character;
    } else {
      for (const byte of Buffer.from(character, 'utf8')) segment += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return segment;
}

export function decodeDatabaseSegment(segment: string): string {
  if (!/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(segment)) {
    throw new CatalogKeyError(`"${segment}" is not a database segment written by pgkeep.`);
  }
  const bytes: number[] = [];
  for (let index = 0; index < segment.length; index += 1) {
    if (segment[index] === '%') {
      bytes.push(Number.parseInt(segment.slice(index + 1, index + 3), 16));
      index += 2;
    } else {
      bytes.push(segment.charCodeAt(index));
    }
  }
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    throw new CatalogKeyError(`"${segment}" is not a database segment written by pgkeep (its bytes are not UTF-8).`);
  }
  // Only the canonical encoding of a name is accepted, so one database has exactly one prefix.
  if (encodeDatabaseSegment(decoded) !== segment) throw new CatalogKeyError(`"${segment}" is not the canonical segment for a database name.`);
  return decoded;
}

export function databasePrefix(database: string): string {
  return `${BACKUP_ROOT_PREFIX}${encodeDatabaseSegment(database)}/`;
}

export function newBackupId(startedAt: Date, randomSuffix: string = randomHex(6)): string {
  if (!/^[0-9a-f]{6}$/.test(randomSuffix)) throw new CatalogKeyError('A backup id suffix is 6 lowercase hex digits.');
  const iso = startedAt.toISOString(); // 2026-11-23T18:32:54.123Z, always UTC and fixed width for years 0000-9999
  const compact = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 23)}Z`;
  return `${compact}-${randomSuffix}`;
}

/** `drills/<database segment>/<drill id>.json`; drill ids sort chronologically like backup ids. */
export function drillRecordKey(database: string, drillStartedAt: Date, randomSuffix: string = randomHex(6)): string {
  return `${DRILL_ROOT_PREFIX}${encodeDatabaseSegment(database)}/${newBackupId(drillStartedAt, randomSuffix)}.json`;
}

export function isBackupId(candidate: string): boolean {
  return startTimeOf(candidate) !== undefined;
}

/** The UTC instant encoded at the start of a backup id (when the backup started). */
export function backupIdTime(backupId: string): Date {
  const startedAt = startTimeOf(backupId);
  if (!startedAt) throw new CatalogKeyError(`"${backupId}" is not a pgkeep backup id (expected e.g. 20261123T183254.123Z-3f9a2c).`);
  return startedAt;
}

/** Only ids newBackupId can produce count: digits that name no real instant (month 13, 30 February,
 * 24:00, second 60) would otherwise parse to an invalid or shifted date. */
function startTimeOf(candidate: string): Date | undefined {
  const match = BACKUP_ID_PATTERN.exec(candidate);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, millisecond, suffix] = match;
  const startedAt = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}.${millisecond}Z`);
  if (Number.isNaN(startedAt.getTime()) || suffix === undefined || newBackupId(startedAt, suffix) !== candidate) return undefined;
  return startedAt;
}

export interface BackupObjectKeys {
  dataKey: string;
  manifestKey: string;
}

export function backupObjectKeys(database: string, backupId: string): BackupObjectKeys {
  if (!isBackupId(backupId)) throw new CatalogKeyError(`"${backupId}" is not a pgkeep backup id.`);
  const stem = `${databasePrefix(database)}${backupId}`;
  return { dataKey: `${stem}${DATA_OBJECT_SUFFIX}`, manifestKey: `${stem}${MANIFEST_SUFFIX}` };
}

export type BackupObjectKind = 'data' | 'manifest';

export interface ParsedBackupKey {
  database: string;
  backupId: string;
  kind: BackupObjectKind;
}

/** Parses a key of the layout above; anything else (foreign objects, drill records, typos) is undefined. */
export function parseBackupKey(key: string): ParsedBackupKey | undefined {
  if (!key.startsWith(BACKUP_ROOT_PREFIX)) return undefined;
  const rest = key.slice(BACKUP_ROOT_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || rest.indexOf('/', slash + 1) !== -1) return undefined;
  const fileName = rest.slice(slash + 1);
  const kind: BackupObjectKind | undefined = fileName.endsWith(DATA_OBJECT_SUFFIX) ? 'data' : fileName.endsWith(MANIFEST_SUFFIX) ? 'manifest' : undefined;
  if (!kind) return undefined;
  const backupId = fileName.slice(0, fileName.length - (kind === 'data' ? DATA_OBJECT_SUFFIX : MANIFEST_SUFFIX).length);
  if (!isBackupId(backupId)) return undefined;
  try {
    return { database: decodeDatabaseSegment(rest.slice(0, slash)), backupId, kind };
  } catch {
    return undefined;
  }
}

/** For any key under a database prefix whose file name starts with a backup id and a dot (a
 * future sidecar such as a drill record), the backup it belongs to; the data object and the
 * manifest are parsed by parseBackupKey. */
export function parseSiblingKey(key: string): { database: string; backupId: string } | undefined {
  if (!key.startsWith(BACKUP_ROOT_PREFIX)) return undefined;
  const rest = key.slice(BACKUP_ROOT_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || rest.indexOf('/', slash + 1) !== -1) return undefined;
  const fileName = rest.slice(slash + 1);
  const dot = fileName.indexOf('.', fileName.indexOf('Z-'));
  const backupId = dot > 0 ? fileName.slice(0, dot) : '';
  if (!isBackupId(backupId)) return undefined;
  try {
    return { database: decodeDatabaseSegment(rest.slice(0, slash)), backupId };
  } catch {
    return undefined;
  }
}

function randomHex(length: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(Math.ceil(length / 2))))
    .toString('hex')
    .slice(0, length);
}
