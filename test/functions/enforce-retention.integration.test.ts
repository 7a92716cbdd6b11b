/**
 * enforce-retention against a real S3-protocol store (the local S3 server, with object tagging)
 * through the real SDK: 40 days of synthetic backups of `orders`, then a dry run, a real run and a
 * second real run, with the whole bucket (keys, ETags, sizes, tags) snapshotted before and after
 * each. Retention reads listings, tags and the manifests of what it would delete (never data), so
 * the data objects are small stand-ins beside manifests the schema accepts; the layout,
 * verification tags and sidecars are the ones pgkeep writes.
 *
 * The calendar is fixed, and what GFS must keep is written out by hand below rather than computed
 * with planRetention, so a wrong plan cannot agree with itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { backupObjectKeys, databasePrefix, newBackupId } from '../../catalog/keys.ts';
import {
  VERIFICATION_METHOD_TAG,
  VERIFICATION_TAG,
  VERIFIED_AT_TAG,
  mergeTags,
  readTags,
  verificationTags,
  type VerificationStatus,
} from '../../runtime/verification.ts';
import { enforceRetention, type RetentionRunResult } from '../../functions/enforce-retention/enforce.ts';
import { TIER_TAG, type RetentionPolicy, type RetentionTier } from '../../catalog/retention-policy.ts';
import { recordAwsCalls } from '../support/aws-call-recorder.ts';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import { syntheticManifest } from '../support/synthetic-manifest.ts';
import { serializeManifest } from '../../catalog/manifest.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const DATABASE = 'orders';
const UNTOUCHED_DATABASE = 'billing';
/** Day 1 is Wednesday 2025-12-10, day 40 is Sunday 2026-01-18: the run spans a month and a year end. */
const FIRST_BACKUP = new Date('2025-12-10T02:00:00.000Z');
const BACKUP_DAYS = 40;
const NOW = new Date('2026-01-18T12:00:00.000Z');
const POLICY: RetentionPolicy = { daily: 7, weekly: 4, monthly: 12, yearly: 3, timezone: 'UTC', minVerified: 3, unverifiedGraceHours: 24 };
/** The handler's default. */
const INCOMPLETE_GRACE_HOURS = 48;

/** Sunday 2025-12-28 is the newest day of ISO week 2025-W52, and Thursday 2026-01-15 a recent day. */
const FAILED_DAYS = new Set(['2025-12-28', '2026-01-15']);
/** The newest backup, ten hours old: verification has not tagged it yet. */
const PENDING_DAY = '2026-01-18';
const SIDECAR_OF_DELETED_DAY = '2025-12-20';
const SIDECAR_OF_KEPT_DAY = '2025-12-27';

/**
 * The plan, by hand, for this calendar (ISO weeks: 2025-W52 = Dec 22–28, 2026-W01 = Dec 29–Jan 4,
 * W02 = Jan 5–11, W03 = Jan 12–18). Only verified backups fill slots; the newest verified one is
 * Saturday Jan 17. The tier is the longest-lived slot a backup fills.
 *   daily 7:    Jan 17, 16, 14, 13, 12, 11, 10  (Jan 15 failed, so the seventh day is Jan 10)
 *   weekly 4:   W03 → Jan 17, W02 → Jan 11, W01 → Jan 4, W52 → Dec 27 (Sunday Dec 28 failed)
 *   monthly 12: 2026-01 → Jan 17, 2025-12 → Dec 31 (only two months exist)
 *   yearly 3:   2026 → Jan 17, 2025 → Dec 31 (only two years exist)
 *   floor 3:    Jan 17, 16, 14, already kept
 *   Jan 18:     pending, within its grace period and newer than the newest verified backup: no tier
 */
const EXPECTED_KEPT: ReadonlyMap<string, RetentionTier | undefined> = new Map<string, RetentionTier | undefined>([
  ['2026-01-18', undefined],
  ['2026-01-17', 'yearly'],
  ['2026-01-16', 'daily'],
  ['2026-01-14', 'daily'],
  ['2026-01-13', 'daily'],
  ['2026-01-12', 'daily'],
  ['2026-01-11', 'weekly'],
  ['2026-01-10', 'daily'],
  ['2026-01-04', 'weekly'],
  ['2025-12-31', 'yearly'],
  ['2025-12-27', 'weekly'],
]);

interface SeededBackup {
  day: string;
  backupId: string;
  dataKey: string;
  manifestKey: string;
  verification: VerificationStatus | undefined;
  verifiedAt: Date | undefined;
}

interface StoredObject {
  etag: string | undefined;
  size: number | undefined;
  tags: Record<string, string>;
}

type BucketSnapshot = Map<string, StoredObject>;

/** The store of the describe block that runs (they run one after the other). */
let store: LocalS3;
let s3: S3Client;
/** What the function's code uses; its calls are recorded for the authorization model, the set-up's are not. */
let retentionS3: S3Client;
const backups: SeededBackup[] = [];
let sidecarOfDeleted: string;
let sidecarOfKept: string;
let staleLeftoverKey: string;
let freshLeftoverKey: string;
const billingKeys: string[] = [];

let beforeDryRun: BucketSnapshot;
let afterDryRun: BucketSnapshot;
let afterRealRun: BucketSnapshot;
let afterSecondRun: BucketSnapshot;
let dryRun: RetentionRunResult;
let realRun: RetentionRunResult;
let secondRun: RetentionRunResult;

/** Seeds the calendar into a fresh store, then runs the same plan three times, snapshotting the bucket around each. */
async function seedAndRun(start: () => Promise<LocalS3>): Promise<void> {
  // Arrange
  store = await start();
  backups.length = 0;
  billingKeys.length = 0;
  s3 = store.client();
  // objectLock: false; the dry run's calls are a subset of the real run's.
  retentionS3 = recordAwsCalls('enforce-retention', store.client(), { settings: { PGKEEP_OBJECT_LOCK: 'false', PGKEEP_RETENTION_DRY_RUN: 'false' } });
  for (let index = 0; index < BACKUP_DAYS; index += 1) {
    const startedAt = new Date(FIRST_BACKUP.getTime() + index * DAY);
    const day = startedAt.toISOString().slice(0, 10);
    const verification: VerificationStatus | undefined = day === PENDING_DAY ? undefined : FAILED_DAYS.has(day) ? 'failed' : 'verified';
    backups.push(await putBackup(DATABASE, startedAt, suffix(index), verification));
  }
  sidecarOfDeleted = await putSidecar(backupOn(SIDECAR_OF_DELETED_DAY));
  sidecarOfKept = await putSidecar(backupOn(SIDECAR_OF_KEPT_DAY));
  staleLeftoverKey = await putDataOnly(new Date(NOW.getTime() - 5 * DAY), 'dead01');
  freshLeftoverKey = await putDataOnly(new Date(NOW.getTime() - HOUR), 'dead02');
  // Two failed and one verified: were billing's catalog ever processed, its failed backups would go.
  for (const [index, verification] of (['failed', 'failed', 'verified'] as const).entries()) {
    const backup = await putBackup(UNTOUCHED_DATABASE, new Date(Date.UTC(2025, 10, 1 + index, 3)), suffix(100 + index), verification);
    billingKeys.push(backup.dataKey, backup.manifestKey);
  }

  // Act: the same plan three times, each followed by a look at the whole bucket.
  const run = (dryRunOnly: boolean): Promise<RetentionRunResult> =>
    enforceRetention({
      s3: retentionS3,
      bucket: store.bucket,
      database: DATABASE,
      policy: POLICY,
      now: NOW,
      dryRun: dryRunOnly,
      objectLock: false,
      incompleteGraceHours: INCOMPLETE_GRACE_HOURS,
      logger: new Logger({ logLevel: 'SILENT' }),
    });
  beforeDryRun = await snapshot();
  dryRun = await run(true);
  afterDryRun = await snapshot();
  realRun = await run(false);
  afterRealRun = await snapshot();
  secondRun = await run(false);
  afterSecondRun = await snapshot();
}

/**
 * Both stores: fauxqs, whose tagging is pgkeep's own emulation (dev/local-s3.ts), and moto,
 * an Object-Lock bucket shaped like the stacks' (versioned, default retention), where S3 must
 * accept every tag and delete retention makes, and a delete leaves a delete marker. The plan is
 * run with objectLock: false there, because this calendar lies in the past while moto locks from
 * the real time of each write (everything would be locked); Object Lock is the next block's.
 */
const STORES = [
  { name: 'fauxqs', start: () => startLocalS3({ bucket: 'pgkeep-retention-test' }) },
  { name: 'moto (an Object-Lock bucket)', start: () => startMotoS3({ bucket: 'pgkeep-retention-test' }) },
] as const;

describe.each(STORES)('enforce-retention on $name', ({ start }) => {
  beforeAll(() => seedAndRun(start));
  afterAll(async () => {
    await store?.stop();
  });

  describe('enforce-retention on a real store: 40 daily backups, GFS 7/4/12/3', () => {
    it('a dry run changes nothing in the bucket, neither objects nor tags, and lists what it would delete', () => {
      expect(afterDryRun).toEqual(beforeDryRun);
      expect(dryRun.errors).toEqual([]);
      expect(dryRun.tiersTagged).toBe(0);
      expect(dryRun.deleted).toBe(0);
      expect(dryRun.deletedBytes).toBe(0);
      // Every backup outside the hand-written plan. Both leftovers stay: their objects were written
      // (today) after this calendar's NOW, so by their last write they are within the grace period
      // (the real-time case is the next describe block).
      const expectedIds = backups.filter((backup) => !EXPECTED_KEPT.has(backup.day)).map((backup) => backup.backupId);
      expect(dryRun.deletions.map((deletion) => deletion.backupId).sort()).toEqual(expectedIds.sort());
      expect(dryRun.deletions).toHaveLength(BACKUP_DAYS - EXPECTED_KEPT.size);
    });

    it('the real run deletes exactly the keys the dry run listed, and adds nothing', () => {
      const deletedKeys = [...afterDryRun.keys()].filter((key) => !afterRealRun.has(key));
      const addedKeys = [...afterRealRun.keys()].filter((key) => !afterDryRun.has(key));
      const plannedKeys = dryRun.deletions.flatMap((deletion) => deletion.keys);

      expect(new Set(deletedKeys)).toEqual(new Set(plannedKeys));
      expect(deletedKeys).toHaveLength(plannedKeys.length);
      expect(addedKeys).toEqual([]);
      expect(realRun.deletions).toEqual(dryRun.deletions);
      expect(realRun.errors).toEqual([]);
      expect(realRun.deleted).toBe(dryRun.deletions.length);
      expect(realRun.deletedBytes).toBe(dryRun.deletions.reduce((total, deletion) => total + deletion.bytes, 0));
    });

    it('keeps exactly the hand-computed GFS set, each backup whole, and the leftover still within its grace period', () => {
      const expectedKeys = new Set([
        ...backups.filter((backup) => EXPECTED_KEPT.has(backup.day)).flatMap((backup) => [backup.dataKey, backup.manifestKey]),
        sidecarOfKept,
        freshLeftoverKey,
        staleLeftoverKey,
        ...billingKeys,
      ]);

      expect(new Set(afterRealRun.keys())).toEqual(expectedKeys);
      for (const backup of backups) {
        const kept = EXPECTED_KEPT.has(backup.day);
        expect(afterRealRun.has(backup.dataKey), `data of ${backup.day}`).toBe(kept);
        expect(afterRealRun.has(backup.manifestKey), `manifest of ${backup.day}`).toBe(kept);
      }
      expect(afterRealRun.has(sidecarOfDeleted)).toBe(false);
      expect(afterRealRun.has(sidecarOfKept)).toBe(true);
      expect(afterRealRun.has(staleLeftoverKey)).toBe(true);
      expect(afterRealRun.has(freshLeftoverKey)).toBe(true);
    });

    it('leaves no data without a manifest nor a manifest without data, except the leftover within its grace period', () => {
      const ordersKeys = [...afterRealRun.keys()].filter((key) => key.startsWith(databasePrefix(DATABASE)));
      const dataStems = new Set(ordersKeys.filter((key) => key.endsWith('.dump.zst')).map((key) => key.slice(0, -'.dump.zst'.length)));
      const manifestStems = new Set(ordersKeys.filter((key) => key.endsWith('.manifest.json')).map((key) => key.slice(0, -'.manifest.json'.length)));

      const dataOnly = [...dataStems].filter((stem) => !manifestStems.has(stem)).map((stem) => `${stem}.dump.zst`);
      const manifestOnly = [...manifestStems].filter((stem) => !dataStems.has(stem));

      expect(dataOnly.sort()).toEqual([freshLeftoverKey, staleLeftoverKey].sort());
      expect(manifestOnly).toEqual([]);
    });

    it('does not touch another database: billing keeps every object and tag', () => {
      for (const key of billingKeys) expect(afterSecondRun.get(key), key).toEqual(beforeDryRun.get(key));
    });

    it('tags each kept backup with its decision’s tier, merged into the verification tags', () => {
      for (const backup of backups.filter((candidate) => EXPECTED_KEPT.has(candidate.day))) {
        const decision = realRun.decisions.find((candidate) => candidate.backupId === backup.backupId);
        const tags = afterRealRun.get(backup.dataKey)?.tags;
        const expectedTier = EXPECTED_KEPT.get(backup.day);

        expect(decision?.action, backup.day).toBe('keep');
        expect(decision?.tier, backup.day).toBe(expectedTier);
        expect(tags?.[TIER_TAG], backup.day).toBe(expectedTier);
        if (backup.verification) {
          expect(tags, backup.day).toMatchObject({
            [VERIFICATION_TAG]: backup.verification,
            [VERIFICATION_METHOD_TAG]: 'sha256',
            [VERIFIED_AT_TAG]: backup.verifiedAt?.toISOString(),
          });
        }
      }
      expect(afterRealRun.get(backupOn(PENDING_DAY).dataKey)?.tags).toEqual({});
      expect(realRun.tiersTagged).toBe([...EXPECTED_KEPT.values()].filter((tier) => tier !== undefined).length);
    });

    it('is idempotent: a second run at the same time deletes and tags nothing more', () => {
      expect(secondRun.deletions).toEqual([]);
      expect(secondRun.deleted).toBe(0);
      expect(secondRun.tiersTagged).toBe(0);
      expect(secondRun.errors).toEqual([]);
      expect(secondRun.kept).toBe(EXPECTED_KEPT.size);
      expect(afterSecondRun).toEqual(afterRealRun);
    });
  });

  describe('enforce-retention on leftovers of incomplete backups, in real time', () => {
    const LONG_RUN_DATABASE = 'long-running';
    const runAt = (now: Date): Promise<RetentionRunResult> =>
      enforceRetention({
        s3: retentionS3,
        bucket: store.bucket,
        database: LONG_RUN_DATABASE,
        policy: POLICY,
        now,
        dryRun: true,
        objectLock: false,
        incompleteGraceHours: INCOMPLETE_GRACE_HOURS,
        logger: new Logger({ logLevel: 'SILENT' }),
      });

    it('spares a data object written just now by a backup that started days ago (its manifest is seconds away), and removes it once it has lain unclaimed past the grace period', async () => {
      // Arrange: a backup that started 5 days ago and has just uploaded its data; no manifest yet.
      const startedAt = new Date(Date.now() - 5 * DAY);
      const { dataKey } = backupObjectKeys(LONG_RUN_DATABASE, newBackupId(startedAt, 'abcdef'));
      await putObject(dataKey, 'PGDMP a long backup');

      // Act
      const now = await runAt(new Date(Date.now() + HOUR));
      const later = await runAt(new Date(Date.now() + (INCOMPLETE_GRACE_HOURS + 1) * HOUR));

      // Assert
      expect(now.deletions).toEqual([]);
      expect(later.deletions.map((deletion) => deletion.keys)).toEqual([[dataKey]]);
      expect(later.deletions[0]?.reasons[0]).toContain('data object without a manifest');
    });
  });
});

describe('enforce-retention under S3 Object Lock (moto: GOVERNANCE default retention of 35 days)', () => {
  const LOCKED_DATABASE = 'ledger';
  /** Only the three newest days have slots: without Object Lock, the seven backups before them would go. */
  const LOCK_POLICY: RetentionPolicy = { daily: 3, weekly: 0, monthly: 0, yearly: 0, timezone: 'UTC', minVerified: 1, unverifiedGraceHours: 24 };
  let locked: MotoS3;
  /** Ten verified backups, one a day, the oldest first, written just now: locked for 35 days from now. */
  const seeded: SeededBackup[] = [];

  beforeAll(async () => {
    locked = await startMotoS3({ bucket: 'pgkeep-retention-lock-test' });
    store = locked;
    s3 = locked.client();
    retentionS3 = recordAwsCalls('enforce-retention', locked.client(), { settings: { PGKEEP_OBJECT_LOCK: 'true', PGKEEP_RETENTION_DRY_RUN: 'false' } });
    const today = Date.now();
    for (let daysAgo = 10; daysAgo >= 1; daysAgo -= 1)
      seeded.push(await putBackup(LOCKED_DATABASE, new Date(today - daysAgo * DAY), suffix(200 + daysAgo), 'verified'));
    // The oldest backup's lock is extended (S3 allows extending, never shortening, a GOVERNANCE lock without bypass).
    await s3.send(
      new PutObjectRetentionCommand({
        Bucket: locked.bucket,
        Key: seeded[0]!.dataKey,
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(today + 60 * DAY) },
      }),
    );
  });

  afterAll(async () => {
    await locked?.stop();
  });

  const runAt = (now: Date): Promise<RetentionRunResult> =>
    enforceRetention({
      s3: retentionS3,
      bucket: locked.bucket,
      database: LOCKED_DATABASE,
      policy: LOCK_POLICY,
      now,
      dryRun: false,
      objectLock: true,
      incompleteGraceHours: INCOMPLETE_GRACE_HOURS,
      logger: new Logger({ logLevel: 'SILENT' }),
    });

  async function retainUntilOf(key: string): Promise<Date> {
    const head = await s3.send(new HeadObjectCommand({ Bucket: locked.bucket, Key: key }));
    if (!head.ObjectLockRetainUntilDate) throw new Error(`${key} is not under Object Lock`);
    return head.ObjectLockRetainUntilDate;
  }

  it('deletes nothing while every backup is locked, saying for each that Object Lock holds it until the date S3 reports', async () => {
    // Arrange
    const keysBefore = [...(await snapshot()).keys()];

    // Act
    const result = await runAt(new Date());

    // Assert
    expect(result.errors).toEqual([]);
    expect(result.deletions).toEqual([]);
    expect([...(await snapshot()).keys()]).toEqual(keysBefore);
    for (const backup of seeded) {
      const decision = result.decisions.find((candidate) => candidate.backupId === backup.backupId);
      expect(decision?.action, backup.day).toBe('keep');
      expect(decision?.reasons, backup.day).toContain(`under S3 Object Lock until ${(await retainUntilOf(backup.dataKey)).toISOString()}`);
    }
  });

  it("as a dry run (the prod example starts as one), plans the same deletions once the default retention has run out, reads each planned backup's manifest, and deletes nothing", async () => {
    // Arrange: the settings the prod example deploys (Object Lock on, dry run), so the authorization
    // model checks these calls against that role, which has no s3:DeleteObject.
    const dryRunS3 = recordAwsCalls('enforce-retention', locked.client(), { settings: { PGKEEP_OBJECT_LOCK: 'true', PGKEEP_RETENTION_DRY_RUN: 'true' } });
    const keysBefore = [...(await snapshot()).keys()];
    const unprotected = seeded.slice(1, -3);

    // Act
    const result = await enforceRetention({
      s3: dryRunS3,
      bucket: locked.bucket,
      database: LOCKED_DATABASE,
      policy: LOCK_POLICY,
      now: new Date(Date.now() + 36 * DAY),
      dryRun: true,
      objectLock: true,
      incompleteGraceHours: INCOMPLETE_GRACE_HOURS,
      logger: new Logger({ logLevel: 'SILENT' }),
    });

    // Assert
    expect(result.errors).toEqual([]);
    expect(result.keptUnreadable).toEqual([]);
    expect(result.deletions.map((deletion) => deletion.backupId).sort()).toEqual(unprotected.map((backup) => backup.backupId).sort());
    expect([...(await snapshot()).keys()]).toEqual(keysBefore);
  });

  it('once the default retention has run out, deletes what GFS does not keep but a backup whose lock was extended, and S3 keeps each deleted version under a delete marker', async () => {
    // Arrange
    const [extended, ...rest] = seeded as [SeededBackup, ...SeededBackup[]];
    const newestThree = rest.slice(-3);
    const unprotected = rest.slice(0, -3);
    const afterDefaultRetention = new Date(Date.now() + 36 * DAY);
    expect((await retainUntilOf(unprotected[0]!.dataKey)).getTime()).toBeLessThan(afterDefaultRetention.getTime());

    // Act
    const result = await runAt(afterDefaultRetention);

    // Assert
    expect(result.errors).toEqual([]);
    expect(result.deletions.map((deletion) => deletion.backupId).sort()).toEqual(unprotected.map((backup) => backup.backupId).sort());
    const extendedDecision = result.decisions.find((decision) => decision.backupId === extended.backupId);
    expect(extendedDecision?.reasons).toEqual([`under S3 Object Lock until ${(await retainUntilOf(extended.dataKey)).toISOString()}`]);
    const remaining = new Set((await snapshot()).keys());
    expect([...remaining].sort()).toEqual([extended, ...newestThree].flatMap((backup) => [backup.dataKey, backup.manifestKey]).sort());
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: locked.bucket, Prefix: databasePrefix(LOCKED_DATABASE) }));
    for (const backup of unprotected) {
      expect(
        versions.DeleteMarkers?.filter((marker) => marker.Key === backup.dataKey && marker.IsLatest),
        backup.day,
      ).toHaveLength(1);
      expect(
        versions.Versions?.filter((version) => version.Key === backup.dataKey),
        backup.day,
      ).toHaveLength(1);
    }
  });
});

function suffix(index: number): string {
  return index.toString(16).padStart(6, '0');
}

function backupOn(day: string): SeededBackup {
  const backup = backups.find((candidate) => candidate.day === day);
  if (!backup) throw new Error(`no seeded backup on ${day}`);
  return backup;
}

async function putObject(key: string, body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: body }));
}

/** Distinct content per backup, a few hundred bytes, so sizes and ETags tell objects apart. */
function syntheticDump(database: string, backupId: string): string {
  return `PGDMP synthetic dump of ${database}, backup ${backupId}\n`.repeat(6);
}

async function putBackup(database: string, startedAt: Date, randomSuffix: string, verification: VerificationStatus | undefined): Promise<SeededBackup> {
  const backupId = newBackupId(startedAt, randomSuffix);
  const { dataKey, manifestKey } = backupObjectKeys(database, backupId);
  const dump = syntheticDump(database, backupId);
  await putObject(dataKey, dump);
  await putObject(manifestKey, serializeManifest(syntheticManifest(database, backupId, Buffer.byteLength(dump))));
  const verifiedAt = verification ? new Date(startedAt.getTime() + 20 * 60_000) : undefined;
  if (verification && verifiedAt) await mergeTags(s3, store.bucket, dataKey, verificationTags({ status: verification, method: 'sha256', at: verifiedAt }));
  return { day: startedAt.toISOString().slice(0, 10), backupId, dataKey, manifestKey, verification, verifiedAt };
}

async function putSidecar(backup: SeededBackup): Promise<string> {
  const key = `${databasePrefix(DATABASE)}${backup.backupId}.drill.json`;
  await putObject(key, JSON.stringify({ backupId: backup.backupId, restored: true }));
  return key;
}

/** A backup whose upload completed but whose manifest was never written. */
async function putDataOnly(startedAt: Date, randomSuffix: string): Promise<string> {
  const { dataKey } = backupObjectKeys(DATABASE, newBackupId(startedAt, randomSuffix));
  await putObject(dataKey, syntheticDump(DATABASE, dataKey));
  return dataKey;
}

async function snapshot(): Promise<BucketSnapshot> {
  const objects: BucketSnapshot = new Map();
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: store.bucket })) {
    for (const object of page.Contents ?? []) {
      if (!object.Key) continue;
      const tags = Object.fromEntries((await readTags(s3, store.bucket, object.Key)).map((tag) => [tag.Key ?? '', tag.Value ?? '']));
      objects.set(object.Key, { etag: object.ETag, size: object.Size, tags });
    }
  }
  return objects;
}
