/**
 * enforce-retention against a mocked S3 client, and parsePolicy.
 *
 * The mock stands in for what the local S3 server does not implement: S3 Object Lock (HeadObject
 * reporting ObjectLockRetainUntilDate), DeleteObjects answering 200 with per-key Errors (S3 applies
 * one request's keys independently), and a GetObjectTagging refused with AccessDenied. Only the S3
 * client is mocked; listing, planning, deleting, tagging and metrics run pgkeep's real code. The
 * real-store behaviour is in enforce-retention.integration.test.ts.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
  type DeleteObjectsCommandInput,
  type DeleteObjectsCommandOutput,
  type GetObjectCommandInput,
  type GetObjectCommandOutput,
  type GetObjectTaggingCommandInput,
  type GetObjectTaggingCommandOutput,
  type HeadObjectCommandInput,
  type HeadObjectCommandOutput,
  type ListObjectsV2CommandInput,
  type ListObjectsV2CommandOutput,
  type _Object,
} from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { backupObjectKeys, databasePrefix, newBackupId } from '../../catalog/keys.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { verificationTags } from '../../runtime/verification.ts';
import { enforceRetention, type RetentionRunResult } from '../../functions/enforce-retention/enforce.ts';
import { parsePolicy } from '../../catalog/function-settings.ts';
import { runRetention } from '../../functions/enforce-retention/handler.ts';
import type { RetentionPolicy } from '../../catalog/retention-policy.ts';
import { syntheticManifestTextFor } from '../support/synthetic-manifest.ts';

const BUCKET = 'acme-db-backups';
const DAY = 86_400_000;
/** Six daily backups, Jan 1–6 2026 at 02:00 UTC; the run is on the last day at noon. */
const FIRST_BACKUP = new Date('2026-01-01T02:00:00.000Z');
const NOW = new Date('2026-01-06T12:00:00.000Z');
/** Three dailies and nothing else, so Jan 1–3 are outside every slot and the floor. */
const POLICY: RetentionPolicy = { daily: 3, weekly: 0, monthly: 0, yearly: 0, timezone: 'UTC', minVerified: 1, unverifiedGraceHours: 24 };
const LOCKED_UNTIL = new Date('2026-07-01T00:00:00.000Z');

const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
const s3Mock = mockClient(s3);
const silentLogger = new Logger({ logLevel: 'SILENT' });

interface FakeBackup {
  database: string;
  day: string;
  dataKey: string;
  manifestKey: string;
  bytes: number;
}

interface FakeBucket {
  /** Data keys whose HeadObject reports an Object Lock retain-until date. */
  lockedUntil?: ReadonlyMap<string, Date>;
  /** Data keys whose GetObjectTagging is refused. */
  tagsDenied?: ReadonlySet<string>;
  /** Keys DeleteObjects reports as not deleted. */
  undeletable?: ReadonlySet<string>;
}

/** Six verified daily backups of a database, each a different size. */
function dailyBackups(database: string): FakeBackup[] {
  return Array.from({ length: 6 }, (_, index) => {
    const startedAt = new Date(FIRST_BACKUP.getTime() + index * DAY);
    const { dataKey, manifestKey } = backupObjectKeys(database, newBackupId(startedAt, index.toString(16).padStart(6, '0')));
    return { database, day: startedAt.toISOString().slice(0, 10), dataKey, manifestKey, bytes: 1_000 * (index + 1) };
  });
}

function on(backups: readonly FakeBackup[], day: string): FakeBackup {
  const backup = backups.find((candidate) => candidate.day === day);
  if (!backup) throw new Error(`no fake backup on ${day}`);
  return backup;
}

function accessDenied(): S3ServiceException {
  return new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' });
}

/** A bucket holding the backups, every data object tagged verified, answering as S3 does. */
function givenBucket(backups: readonly FakeBackup[], { lockedUntil = new Map(), tagsDenied = new Set(), undeletable = new Set() }: FakeBucket = {}): void {
  const objects: _Object[] = backups.flatMap((backup) => [
    { Key: backup.dataKey, Size: backup.bytes, StorageClass: 'STANDARD' },
    { Key: backup.manifestKey, Size: 900, StorageClass: 'STANDARD' },
  ]);
  const verified = Object.entries(verificationTags({ status: 'verified', method: 'crc64nvme', at: FIRST_BACKUP })).map(([Key, Value]) => ({ Key, Value }));
  s3Mock.on(ListObjectsV2Command).callsFake((input: ListObjectsV2CommandInput): Partial<ListObjectsV2CommandOutput> => {
    const contents = objects.filter((object) => object.Key?.startsWith(input.Prefix ?? '')).sort((a, b) => ((a.Key ?? '') < (b.Key ?? '') ? -1 : 1));
    return { Contents: contents, KeyCount: contents.length, IsTruncated: false };
  });
  s3Mock.on(GetObjectTaggingCommand).callsFake((input: GetObjectTaggingCommandInput): Partial<GetObjectTaggingCommandOutput> => {
    if (tagsDenied.has(input.Key ?? '')) throw accessDenied();
    return { TagSet: verified };
  });
  s3Mock.on(HeadObjectCommand).callsFake((input: HeadObjectCommandInput): Partial<HeadObjectCommandOutput> => {
    const until = lockedUntil.get(input.Key ?? '');
    return until ? { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: until } : {};
  });
  s3Mock.on(DeleteObjectsCommand).callsFake((input: DeleteObjectsCommandInput): Partial<DeleteObjectsCommandOutput> => {
    const keys = (input.Delete?.Objects ?? []).map((object) => object.Key ?? '');
    return {
      Deleted: keys.filter((key) => !undeletable.has(key)).map((Key) => ({ Key })),
      Errors: keys.filter((key) => undeletable.has(key)).map((Key) => ({ Key, Code: 'AccessDenied', Message: 'Access Denied' })),
    };
  });
  // Retention reads the manifest of each backup it would delete; these all read.
  s3Mock.on(GetObjectCommand).callsFake((input: GetObjectCommandInput): Partial<GetObjectCommandOutput> => {
    const text = syntheticManifestTextFor(input.Key ?? '');
    return { ContentLength: text.length, Body: { transformToString: () => Promise.resolve(text) } as unknown as GetObjectCommandOutput['Body'] };
  });
  s3Mock.on(PutObjectTaggingCommand).resolves({});
}

function keysSentToDeleteObjects(): string[] {
  return s3Mock.commandCalls(DeleteObjectsCommand).flatMap((call) => (call.args[0].input.Delete?.Objects ?? []).map((object) => object.Key ?? ''));
}

function enforce(database: string, objectLock: boolean): Promise<RetentionRunResult> {
  return enforceRetention({
    s3,
    bucket: BUCKET,
    database,
    policy: POLICY,
    now: NOW,
    dryRun: false,
    objectLock,
    incompleteGraceHours: 48,
    logger: silentLogger,
  });
}

beforeEach(() => {
  s3Mock.reset();
});

describe('enforceRetention with S3 Object Lock', () => {
  it('keeps an old verified backup still under Object Lock, with the lock as its reason, and never asks S3 to delete it', async () => {
    // Arrange
    const backups = dailyBackups('orders');
    const locked = on(backups, '2026-01-01');
    givenBucket(backups, { lockedUntil: new Map([[locked.dataKey, LOCKED_UNTIL]]) });

    // Act
    const result = await enforce('orders', true);

    // Assert
    const decision = result.decisions.find((candidate) => candidate.startedAt.getTime() === FIRST_BACKUP.getTime());
    expect(decision?.action).toBe('keep');
    expect(decision?.reasons).toEqual([`under S3 Object Lock until ${LOCKED_UNTIL.toISOString()}`]);
    expect(s3Mock.commandCalls(HeadObjectCommand, { Key: locked.dataKey })).toHaveLength(1);
    const sent = keysSentToDeleteObjects();
    expect(sent).not.toContain(locked.dataKey);
    expect(sent).not.toContain(locked.manifestKey);
    // The unlocked backups outside the slots do go: the lock, not the policy, saved Jan 1.
    const unlockedOld = [on(backups, '2026-01-02'), on(backups, '2026-01-03')];
    expect(new Set(sent)).toEqual(new Set(unlockedOld.flatMap((backup) => [backup.manifestKey, backup.dataKey])));
    expect(result.deleted).toBe(2);
    expect(result.errors).toEqual([]);
  });

  it('does not read retention dates when Object Lock is off', async () => {
    // Arrange
    givenBucket(dailyBackups('orders'));

    // Act
    await enforce('orders', false);

    // Assert
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });
});

describe('enforceRetention when DeleteObjects fails for one key', () => {
  it('reports the key that was not deleted and does not count its backup as deleted', async () => {
    // Arrange
    const backups = dailyBackups('orders');
    const stuck = on(backups, '2026-01-02');
    givenBucket(backups, { undeletable: new Set([stuck.dataKey]) });

    // Act
    const result = await enforce('orders', false);

    // Assert
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toContain(stuck.dataKey);
    expect(result.errors[0]).toContain('AccessDenied');
    expect(result.deletions.map((deletion) => deletion.keys).flat()).toContain(stuck.dataKey);
    const removed = [on(backups, '2026-01-01'), on(backups, '2026-01-03')];
    expect(result.deleted).toBe(removed.length);
    expect(result.deletedBytes).toBe(removed.reduce((total, backup) => total + backup.bytes, 0));
  });
});

describe('runRetention when a verification tag cannot be read', () => {
  it('deletes nothing of that database, reports it, publishes RetentionErrors, and still processes the next database', async () => {
    // Arrange
    const orders = dailyBackups('orders');
    const billing = dailyBackups('billing');
    // A backup in the middle: tags before it were read fine, and it would itself be kept.
    givenBucket([...orders, ...billing], { tagsDenied: new Set([on(orders, '2026-01-04').dataKey]) });
    const metrics = collectingSink();

    // Act
    const results = await runRetention({
      s3,
      metrics,
      logger: silentLogger,
      bucket: BUCKET,
      environment: 'prod',
      databases: ['orders', 'billing'],
      policy: POLICY,
      dryRun: false,
      objectLock: false,
      incompleteGraceHours: 48,
      now: () => NOW,
    });

    // Assert
    expect(results).toHaveLength(2);
    expect(results[0]).toEqual({ database: 'orders', error: expect.stringContaining('Access Denied') as unknown });
    const sent = keysSentToDeleteObjects();
    expect(sent.filter((key) => key.startsWith(databasePrefix('orders')))).toEqual([]);
    expect(s3Mock.commandCalls(PutObjectTaggingCommand).filter((call) => call.args[0].input.Key?.startsWith(databasePrefix('orders')))).toEqual([]);

    expect(results[1]).toMatchObject({ database: 'billing', deleted: 3, errors: [] });
    expect(new Set(sent)).toEqual(
      new Set(['2026-01-01', '2026-01-02', '2026-01-03'].flatMap((day) => [on(billing, day).manifestKey, on(billing, day).dataKey])),
    );

    const retentionErrors = metrics.published.filter((datum) => datum.MetricName === METRIC.retentionErrors);
    const forDatabase = (database: string) =>
      retentionErrors.filter((datum) => datum.Dimensions?.some((dimension) => dimension.Name === 'Database' && dimension.Value === database));
    expect(forDatabase('orders')).toHaveLength(1);
    expect(forDatabase('orders')[0]).toMatchObject({ Value: 1, Unit: 'Count', Timestamp: NOW });
    expect(forDatabase('billing').map((datum) => datum.Value)).toEqual([0]);
  });
});

describe('parsePolicy', () => {
  const valid = { daily: 7, weekly: 4, monthly: 12, yearly: 3, timezone: 'Europe/Berlin', minVerified: 3, unverifiedGraceHours: 24 };

  it('accepts a valid policy as given', () => {
    expect(parsePolicy(JSON.stringify(valid))).toEqual(valid);
  });

  it('rejects text that is not JSON, naming the setting and showing the expected shape', () => {
    expect(() => parsePolicy('daily=7,weekly=4')).toThrow(/PGKEEP_RETENTION_POLICY is not JSON: expected an object such as \{"daily":7/);
  });

  it.each(['null', '[]', '7', '"daily"'])('rejects JSON that is not an object (%s)', (raw) => {
    expect(() => parsePolicy(raw)).toThrow(/PGKEEP_RETENTION_POLICY must be a JSON object with daily, weekly/);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['daily below zero', { ...valid, daily: -1 }, /retention\.daily must be a whole number ≥ 0 \(got -1\)/],
    ['weekly given as a string', { ...valid, weekly: '4' }, /retention\.weekly must be a whole number ≥ 0 \(got 4\)/],
    ['monthly with a fraction', { ...valid, monthly: 1.5 }, /retention\.monthly must be a whole number ≥ 0 \(got 1\.5\)/],
    ['yearly missing', { ...valid, yearly: undefined }, /retention\.yearly must be a whole number ≥ 0 \(got undefined\)/],
    ['unverifiedGraceHours null', { ...valid, unverifiedGraceHours: null }, /retention\.unverifiedGraceHours must be a whole number ≥ 0 \(got null\)/],
    ['minVerified of zero', { ...valid, minVerified: 0 }, /retention\.minVerified must be at least 1/],
    ['timezone that does not exist', { ...valid, timezone: 'Mars/Olympus_Mons' }, /retention\.timezone "Mars\/Olympus_Mons" is not an IANA time zone/],
    [
      'timezone missing (Intl would fall back to the host zone)',
      { ...valid, timezone: undefined },
      /retention\.timezone must be an IANA time zone name such as "UTC"/,
    ],
  ])('rejects %s, naming the field', (_case, policy, message) => {
    expect(() => parsePolicy(JSON.stringify(policy))).toThrow(message);
  });
});
