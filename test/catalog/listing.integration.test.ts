import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import {
  CLOCK_SKEW_TOLERANCE_MS,
  futureDatedByMs,
  findNewestBackup,
  findNewestBackupAtOrBefore,
  listBackups,
  listCatalogDatabases,
  listCatalogEntries,
  type DatabaseLocation,
} from '../../runtime/listing.ts';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';

/** These run against a real S3-protocol server (fauxqs on loopback), so paging, prefixes and
 * delimiters behave as S3 serves them rather than as a mock imagines them. */

const BULK_BACKUP_COUNT = 2_600; // 5,200 objects: more than five 1,000-key pages
const PUT_CONCURRENCY = 50;

let localS3: LocalS3;
let s3: S3Client;

function suffixFor(index: number): string {
  return index.toString(16).padStart(6, '0');
}

async function putObject(key: string, body: string): Promise<void> {
  const bytes = Buffer.from(body);
  // An explicit length, so the SDK does not take an empty body for a stream of unknown length.
  await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: key, Body: bytes, ContentLength: bytes.length }));
}

async function putAll(objects: readonly { key: string; body: string }[]): Promise<void> {
  for (let start = 0; start < objects.length; start += PUT_CONCURRENCY) {
    await Promise.all(objects.slice(start, start + PUT_CONCURRENCY).map(({ key, body }) => putObject(key, body)));
  }
}

/** Writes a finished backup (data object, then manifest) and returns its id. */
async function putCompleteBackup(database: string, startedAt: Date, suffix: string, dataBody = 'data'): Promise<string> {
  const backupId = newBackupId(startedAt, suffix);
  const { dataKey, manifestKey } = backupObjectKeys(database, backupId);
  await putObject(dataKey, dataBody);
  await putObject(manifestKey, '{}');
  return backupId;
}

function at(database: string): DatabaseLocation {
  return { bucket: localS3.bucket, database };
}

beforeAll(async () => {
  localS3 = await startLocalS3({ bucket: 'pgkeep-listing-test' });
  s3 = localS3.client();
});

afterAll(async () => {
  s3?.destroy();
  await localS3?.stop();
});

describe('a database with more backups than one listing page holds', () => {
  const database = 'bulk';
  const expectedIds: string[] = [];

  beforeAll(async () => {
    const firstStart = Date.parse('2019-12-31T23:00:00.000Z');
    const objects: { key: string; body: string }[] = [];
    for (let index = 0; index < BULK_BACKUP_COUNT; index += 1) {
      // Hourly backups crossing year boundaries, plus an index-dependent millisecond offset.
      const backupId = newBackupId(new Date(firstStart + index * 3_600_000 + (index % 997)), suffixFor(index));
      expectedIds.push(backupId);
      const { dataKey, manifestKey } = backupObjectKeys(database, backupId);
      objects.push({ key: dataKey, body: 'x'.repeat(index % 7) }, { key: manifestKey, body: '{}' });
    }
    await putAll(objects);
  });

  it('really spans several pages of the S3 listing', async () => {
    const firstPage = await s3.send(new ListObjectsV2Command({ Bucket: localS3.bucket, Prefix: 'backups/bulk/' }));

    expect(firstPage.KeyCount).toBe(1_000);
    expect(firstPage.IsTruncated).toBe(true);
  });

  it('lists every backup exactly once, oldest first', async () => {
    const backups = await listBackups(s3, at(database));

    expect(backups.map((backup) => backup.backupId)).toEqual(expectedIds);
  });

  it('gives each backup its start time, keys and data size', async () => {
    const backups = await listBackups(s3, at(database));
    const last = backups.at(-1);
    const lastIndex = BULK_BACKUP_COUNT - 1;

    expect(backups.every((backup, index) => index === 0 || backup.startedAt.getTime() > (backups[index - 1]?.startedAt.getTime() ?? Infinity))).toBe(true);
    expect(last).toMatchObject({
      database,
      state: 'complete',
      ...backupObjectKeys(database, expectedIds[lastIndex] ?? ''),
      dataBytes: lastIndex % 7,
    });
    expect(last?.manifestLastModified).toBeInstanceOf(Date);
  });

  it('finds the newest one on the last page', async () => {
    const newest = await findNewestBackup(s3, at(database));

    expect(newest?.backupId).toBe(expectedIds.at(-1));
  });
});

describe('incomplete backups', () => {
  const database = 'partial';
  let completeId: string;
  let dataOnlyId: string;
  let manifestOnlyId: string;

  beforeAll(async () => {
    completeId = await putCompleteBackup(database, new Date('2026-03-01T00:00:00.000Z'), 'aaaaaa');
    dataOnlyId = newBackupId(new Date('2026-03-02T00:00:00.000Z'), 'bbbbbb');
    await putObject(backupObjectKeys(database, dataOnlyId).dataKey, 'still uploading');
    manifestOnlyId = newBackupId(new Date('2026-03-03T00:00:00.000Z'), 'cccccc');
    await putObject(backupObjectKeys(database, manifestOnlyId).manifestKey, '{}');
  });

  it('are not backups: only the complete one is listed', async () => {
    const backups = await listBackups(s3, at(database));

    expect(backups.map((backup) => backup.backupId)).toEqual([completeId]);
  });

  it('are not the newest backup, even when newer than the complete one', async () => {
    expect((await findNewestBackup(s3, at(database)))?.backupId).toBe(completeId);
  });

  it('appear as catalog entries in their state, with only the keys that exist', async () => {
    const entries = await listCatalogEntries(s3, at(database));

    expect(entries.map(({ backupId, state }) => ({ backupId, state }))).toEqual([
      { backupId: completeId, state: 'complete' },
      { backupId: dataOnlyId, state: 'data-only' },
      { backupId: manifestOnlyId, state: 'manifest-only' },
    ]);
    expect(entries[1]).toMatchObject({ dataKey: backupObjectKeys(database, dataOnlyId).dataKey, dataBytes: 'still uploading'.length });
    expect(entries[1]?.manifestKey).toBeUndefined();
    expect(entries[2]).toMatchObject({ manifestKey: backupObjectKeys(database, manifestOnlyId).manifestKey });
    expect(entries[2]?.dataKey).toBeUndefined();
  });
});

describe('neighbouring databases', () => {
  const names = ['shop', 'shop2', 'a', 'a/b'] as const;
  const idsByDatabase = new Map<string, string>();

  beforeAll(async () => {
    for (const [index, database] of names.entries()) {
      idsByDatabase.set(database, await putCompleteBackup(database, new Date(Date.UTC(2026, 4, 1 + index)), suffixFor(index)));
    }
    // Objects pgkeep did not write, inside and beside shop's prefix.
    await putObject('backups/shop/README.txt', 'not a backup');
    await putObject(`backups/shop/nested/${idsByDatabase.get('shop2') ?? ''}.dump.zst`, 'not a backup');
    await putObject(`backups/shop.eu/${idsByDatabase.get('shop2') ?? ''}.dump.zst`, 'not a pgkeep segment');
    await putObject(`backups/shop${idsByDatabase.get('shop2') ?? ''}.dump.zst`, 'no segment at all');
  });

  it.each(names)("list only %s's own backup", async (database) => {
    const entries = await listCatalogEntries(s3, at(database));

    expect(entries.map((entry) => [entry.database, entry.backupId])).toEqual([[database, idsByDatabase.get(database)]]);
  });
});

describe('point-in-time selection among three backups', () => {
  const database = 'timeline';
  const starts = ['2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z', '2026-06-03T00:00:00.000Z'].map((iso) => new Date(iso));
  const ids: string[] = [];

  beforeAll(async () => {
    for (const [index, startedAt] of starts.entries()) ids.push(await putCompleteBackup(database, startedAt, suffixFor(index)));
  });

  it('finds nothing before the first backup started', async () => {
    expect(await findNewestBackupAtOrBefore(s3, at(database), new Date('2026-05-31T23:59:59.999Z'))).toBeUndefined();
  });

  it('picks a backup when asked for exactly its start time', async () => {
    expect((await findNewestBackupAtOrBefore(s3, at(database), new Date('2026-06-02T00:00:00.000Z')))?.backupId).toBe(ids[1]);
  });

  it('picks the earlier backup when asked for a time between two', async () => {
    expect((await findNewestBackupAtOrBefore(s3, at(database), new Date('2026-06-02T23:59:59.999Z')))?.backupId).toBe(ids[1]);
  });

  it('picks the first backup one millisecond after it started', async () => {
    expect((await findNewestBackupAtOrBefore(s3, at(database), new Date('2026-06-01T00:00:00.001Z')))?.backupId).toBe(ids[0]);
  });

  it('picks the newest backup for a time after all of them', async () => {
    expect((await findNewestBackupAtOrBefore(s3, at(database), new Date('2030-01-01T00:00:00.000Z')))?.backupId).toBe(ids[2]);
  });

  it('finds nothing for a database with no backups', async () => {
    expect(await findNewestBackupAtOrBefore(s3, at('never-backed-up'), new Date('2030-01-01T00:00:00.000Z'))).toBeUndefined();
    expect(await findNewestBackup(s3, at('never-backed-up'))).toBeUndefined();
    expect(await listCatalogEntries(s3, at('never-backed-up'))).toEqual([]);
  });
});

describe('listCatalogDatabases', () => {
  beforeAll(async () => {
    await putCompleteBackup('my shop', new Date('2026-07-01T00:00:00.000Z'), 'dddddd');
    await putCompleteBackup('日本語 データ', new Date('2026-07-01T00:00:00.000Z'), 'eeeeee');
    await putCompleteBackup('e\u0301cole 🐘', new Date('2026-07-01T00:00:00.000Z'), 'ffffff');
  });

  it('decodes every database name, including spaces and non-ASCII, and skips prefixes pgkeep did not write', async () => {
    // The other suites' databases are in the same bucket; listing is independent of test order
    // because every suite's beforeAll has run before any test of this file.
    const databases = await listCatalogDatabases(s3, localS3.bucket);

    expect(databases).toEqual(expect.arrayContaining(['my shop', '日本語 データ', 'e\u0301cole 🐘', 'a/b', 'a', 'shop', 'shop2']));
    expect(databases).not.toContain('shop.eu');
    expect(databases.some((name) => name.includes('%'))).toBe(false);
    expect([...databases].sort()).toEqual(databases);
    expect(new Set(databases).size).toBe(databases.length);
  });
});

describe('futureDatedByMs: a start time ahead of the S3 clock', () => {
  const stored = new Date('2026-11-23T02:10:00.000Z');
  const now = new Date('2026-11-23T12:00:00.000Z');

  it('is undefined for a backup that started before S3 stored it (every honest backup)', () => {
    expect(futureDatedByMs({ startedAt: new Date('2026-11-23T02:00:00.000Z'), dataLastModified: stored, manifestLastModified: stored }, now)).toBeUndefined();
  });

  it('tolerates a task clock up to CLOCK_SKEW_TOLERANCE_MS fast', () => {
    expect(futureDatedByMs({ startedAt: new Date(stored.getTime() + CLOCK_SKEW_TOLERANCE_MS), dataLastModified: stored }, now)).toBeUndefined();
  });

  it('says by how much a backup claims to have started after the earliest of its objects was stored', () => {
    const startedAt = new Date(stored.getTime() + 365 * 86_400_000);

    expect(futureDatedByMs({ startedAt, dataLastModified: new Date(stored.getTime() + 60_000), manifestLastModified: stored }, now)).toBe(365 * 86_400_000);
  });

  it('judges by now when the listing gave no LastModified', () => {
    expect(futureDatedByMs({ startedAt: new Date(now.getTime() + 3_600_000) }, now)).toBe(3_600_000);
  });
});
