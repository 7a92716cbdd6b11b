// runtime/: code the task and the functions share that talks to AWS (the SDK), so it cannot live in
// catalog/, which stays pure for the infra to import at synth time. infra/ never imports runtime/.
import { paginateListObjectsV2, type S3Client, type _Object } from '@aws-sdk/client-s3';
import { BACKUP_ROOT_PREFIX, backupIdTime, databasePrefix, decodeDatabaseSegment, parseBackupKey, parseSiblingKey } from '../catalog/keys.ts';

/** One backup id's objects as found in the bucket. Only `complete` entries are backups. */
export interface CatalogEntry {
  database: string;
  backupId: string;
  startedAt: Date;
  dataKey?: string;
  manifestKey?: string;
  dataBytes?: number;
  dataStorageClass?: string;
  dataLastModified?: Date;
  manifestLastModified?: Date;
  /** Other objects of this backup (same stem, another suffix), deleted together with it. */
  siblingKeys: string[];
  /** complete: manifest and data present. data-only: in progress, or failed before its manifest
   * (never a backup). manifest-only: the data object is gone (never restorable). sidecars-only:
   * neither, just other objects of a backup that is gone. */
  state: 'complete' | 'data-only' | 'manifest-only' | 'sidecars-only';
}

export type Backup = CatalogEntry & { state: 'complete'; dataKey: string; manifestKey: string; dataBytes: number };

export interface DatabaseLocation {
  bucket: string;
  database: string;
}

/** Every catalog entry of a database, oldest first. Pages through the whole prefix: no 1,000-object cap. */
export async function listCatalogEntries(s3: S3Client, { bucket, database }: DatabaseLocation): Promise<CatalogEntry[]> {
  const entries = new Map<string, CatalogEntry>();
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: databasePrefix(database) })) {
    for (const object of page.Contents ?? []) addObject(entries, object);
  }
  return [...entries.values()].sort((a, b) => compareStrings(a.backupId, b.backupId));
}

/** The database's finished backups (manifest and data both present), oldest first. */
export async function listBackups(s3: S3Client, location: DatabaseLocation): Promise<Backup[]> {
  return (await listCatalogEntries(s3, location)).filter(isCompleteBackup);
}

export async function findNewestBackup(s3: S3Client, location: DatabaseLocation): Promise<Backup | undefined> {
  return (await listBackups(s3, location)).at(-1);
}

/** The newest finished backup that started at or before `at`: what "restore to a point in time" picks. */
export async function findNewestBackupAtOrBefore(s3: S3Client, location: DatabaseLocation, at: Date): Promise<Backup | undefined> {
  return newestAtOrBefore(await listBackups(s3, location), at);
}

export function newestAtOrBefore<T extends { startedAt: Date }>(backupsOldestFirst: readonly T[], at: Date): T | undefined {
  for (let index = backupsOldestFirst.length - 1; index >= 0; index -= 1) {
    const backup = backupsOldestFirst[index];
    if (backup && backup.startedAt.getTime() <= at.getTime()) return backup;
  }
  return undefined;
}

/** Catalog names of every database that has objects in the bucket. */
export async function listCatalogDatabases(s3: S3Client, bucket: string): Promise<string[]> {
  const databases: string[] = [];
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: BACKUP_ROOT_PREFIX, Delimiter: '/' })) {
    for (const { Prefix: prefix } of page.CommonPrefixes ?? []) {
      if (!prefix) continue;
      try {
        databases.push(decodeDatabaseSegment(prefix.slice(BACKUP_ROOT_PREFIX.length, -1)));
      } catch {
        // A prefix pgkeep did not write: not a database of ours.
      }
    }
  }
  return databases.sort(compareStrings);
}

/**
 * How far a backup's start time (its id, from the task's clock) may lie ahead of the S3 clock
 * before pgkeep stops believing it. S3 stamps LastModified when the upload completes, so a true
 * start time is always before it; a task clock that runs ahead (a bad NTP source, a wrong RTC)
 * makes the id lie. The AWS SDK corrects its own signing clock from S3's answers, so such a task
 * still uploads. Five minutes absorbs the skew NTP-synced hosts show and is far below any
 * schedule interval.
 */
export const CLOCK_SKEW_TOLERANCE_MS = 5 * 60_000;

/**
 * By how many milliseconds the backup claims to have started after the S3 clock (its objects'
 * LastModified) or after `now`, when that is more than the tolerance; undefined when its start time
 * is believable. A future-dated backup never counts as fresh, as the newest backup, or toward a
 * retention floor: its real age is unknown.
 */
export function futureDatedByMs(entry: Pick<CatalogEntry, 'startedAt' | 'dataLastModified' | 'manifestLastModified'>, now: Date): number | undefined {
  const references = [now, entry.dataLastModified, entry.manifestLastModified].filter((time): time is Date => time !== undefined);
  const earliest = Math.min(...references.map((time) => time.getTime()));
  const ahead = entry.startedAt.getTime() - earliest;
  return ahead > CLOCK_SKEW_TOLERANCE_MS ? ahead : undefined;
}

export function isCompleteBackup(entry: CatalogEntry): entry is Backup {
  return entry.state === 'complete';
}

function addObject(entries: Map<string, CatalogEntry>, object: _Object): void {
  if (!object.Key) return;
  const parsed = parseBackupKey(object.Key);
  const sibling = parsed ? undefined : parseSiblingKey(object.Key);
  const owner = parsed ?? sibling;
  if (!owner) return;
  const entry: CatalogEntry = entries.get(owner.backupId) ?? {
    database: owner.database,
    backupId: owner.backupId,
    startedAt: backupIdTime(owner.backupId),
    state: 'sidecars-only',
    siblingKeys: [],
  };
  entries.set(owner.backupId, entry);
  if (!parsed) {
    entry.siblingKeys.push(object.Key);
    return;
  }
  if (parsed.kind === 'data') {
    entry.dataKey = object.Key;
    entry.dataBytes = object.Size ?? 0;
    if (object.StorageClass) entry.dataStorageClass = object.StorageClass;
    if (object.LastModified) entry.dataLastModified = object.LastModified;
  } else {
    entry.manifestKey = object.Key;
    if (object.LastModified) entry.manifestLastModified = object.LastModified;
  }
  entry.state = entry.manifestKey ? (entry.dataKey ? 'complete' : 'manifest-only') : entry.dataKey ? 'data-only' : 'sidecars-only';
}

/** Code-unit order, which is S3's listing order for the ASCII keys pgkeep writes. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
