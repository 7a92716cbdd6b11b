/**
 * backup-health against the local S3 server, with synthetic catalogs: health reads only the
 * listing (keys, sizes) and the verification tags on data objects, never a manifest's content, so
 * each backup here is a data object of a chosen size beside a placeholder manifest, tagged the
 * way verify-backup tags it. Every test uses its own database name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { mergeTags, verificationTags, type VerificationStatus } from '../../runtime/verification.ts';
import { parseDatabases } from '../../catalog/function-settings.ts';
import { checkHealth } from '../../functions/backup-health/handler.ts';
import { assessDatabaseHealth, healthMetrics, median } from '../../functions/backup-health/health.ts';
import { recordAwsCalls } from '../support/aws-call-recorder.ts';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const BASELINE_COUNT = 7;

let localS3: LocalS3;
let s3: S3Client;
/** What the function's code uses; its calls are recorded for the authorization model, the set-up's are not. */
let healthS3: S3Client;

beforeAll(async () => {
  localS3 = await startLocalS3({ bucket: 'pgkeep-health-test' });
  s3 = localS3.client();
  healthS3 = recordAwsCalls('backup-health', localS3.client());
});

afterAll(async () => {
  await localS3?.stop();
});

/** A finished backup as the listing sees it; `status` tags it as verify-backup would, or leaves it untagged. */
async function givenBackup(database: string, { startedAt, bytes, status }: { startedAt: Date; bytes: number; status?: VerificationStatus }): Promise<string> {
  const backupId = newBackupId(startedAt);
  const { dataKey, manifestKey } = backupObjectKeys(database, backupId);
  await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: dataKey, Body: Buffer.alloc(bytes, 7) }));
  await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: manifestKey, Body: '{"placeholder":"health reads no manifest"}' }));
  if (status) await mergeTags(s3, localS3.bucket, dataKey, verificationTags({ status, method: 'sha256', at: new Date(startedAt.getTime() + HOUR) }));
  return backupId;
}

function assess(database: string) {
  return assessDatabaseHealth(healthS3, { bucket: localS3.bucket, database, now: NOW, baselineCount: BASELINE_COUNT });
}

describe('assessDatabaseHealth', () => {
  it('reports no age and no ratio for a database without backups, and publishes no age, so the stale alarm treats it as missing data', async () => {
    // Arrange: nothing in the bucket for this database.

    // Act
    const health = await assess('never-backed-up');

    // Assert
    expect(health).toMatchObject({
      backups: 0,
      newestVerified: undefined,
      ageSeconds: null,
      sizeBytes: null,
      sizeRatio: null,
      newerUnverified: 0,
      futureDated: [],
    });
    expect(healthMetrics(health)).toEqual([{ name: METRIC.futureDatedBackups, value: 0, unit: 'Count' }]);
  });

  it('gives a fresh verified backup its age since it started, with no ratio when nothing came before it', async () => {
    // Arrange
    const startedAt = new Date(NOW.getTime() - 90 * 60 * 1000);
    const backupId = await givenBackup('fresh', { startedAt, bytes: 4096, status: 'verified' });

    // Act
    const health = await assess('fresh');

    // Assert
    expect(health.ageSeconds).toBe(5400);
    expect(health.newestVerified).toEqual({ backupId, startedAt: startedAt.toISOString(), bytes: 4096 });
    expect(health.sizeBytes).toBe(4096);
    expect(health.sizeRatio).toBeNull();
    expect(health.recentMedianBytes).toBeNull();
    expect(healthMetrics(health)).toEqual([
      { name: METRIC.newestVerifiedBackupAgeSeconds, value: 5400, unit: 'Seconds' },
      { name: METRIC.newestVerifiedBackupBytes, value: 4096, unit: 'Bytes' },
      { name: METRIC.futureDatedBackups, value: 0, unit: 'Count' },
    ]);
  });

  it('gives a backup that started three days ago an age of three days', async () => {
    // Arrange
    await givenBackup('stale', { startedAt: new Date(NOW.getTime() - 3 * DAY), bytes: 2048, status: 'verified' });

    // Act
    const health = await assess('stale');

    // Assert
    expect(health.ageSeconds).toBe(259_200);
  });

  it('shows a sudden 90% drop in size as a ratio of about 0.1 to the median of the verified backups before it', async () => {
    // Arrange: a week of daily ~100 KB backups, then one of ~10 KB.
    const earlierSizes = [99_000, 101_000, 100_500, 99_500, 100_000, 98_000, 102_000];
    for (const [index, bytes] of earlierSizes.entries()) {
      await givenBackup('shrunk', { startedAt: new Date(NOW.getTime() - (8 - index) * DAY), bytes, status: 'verified' });
    }
    await givenBackup('shrunk', { startedAt: new Date(NOW.getTime() - HOUR), bytes: 10_000, status: 'verified' });

    // Act
    const health = await assess('shrunk');

    // Assert
    expect(health.backups).toBe(8);
    expect(health.recentMedianBytes).toBe(100_000);
    expect(health.sizeBytes).toBe(10_000);
    expect(health.sizeRatio).toBeCloseTo(0.1, 4);
    expect(healthMetrics(health)).toContainEqual({ name: METRIC.newestVerifiedBackupSizeRatio, value: health.sizeRatio, unit: 'None' });
  });

  it('compares with only the most recent verified backups, as many as the baseline count', async () => {
    // Arrange: old 1 MB backups beyond the baseline window must not pull the median up.
    for (let index = 0; index < 3; index += 1) {
      await givenBackup('window', { startedAt: new Date(NOW.getTime() - (20 - index) * DAY), bytes: 1_000_000, status: 'verified' });
    }
    for (let index = 0; index < BASELINE_COUNT; index += 1) {
      await givenBackup('window', { startedAt: new Date(NOW.getTime() - (8 - index) * DAY), bytes: 20_000, status: 'verified' });
    }
    await givenBackup('window', { startedAt: new Date(NOW.getTime() - HOUR), bytes: 20_000, status: 'verified' });

    // Act
    const health = await assess('window');

    // Assert
    expect(health.recentMedianBytes).toBe(20_000);
    expect(health.sizeRatio).toBe(1);
  });

  it('skips newer backups that failed, could not be verified or are not verified yet, and counts them', async () => {
    // Arrange
    const olderStart = new Date(NOW.getTime() - 2 * DAY);
    const verifiedId = await givenBackup('skips-unverified', { startedAt: olderStart, bytes: 50_000, status: 'verified' });
    await givenBackup('skips-unverified', { startedAt: new Date(NOW.getTime() - 30 * HOUR), bytes: 50_000, status: 'failed' });
    await givenBackup('skips-unverified', { startedAt: new Date(NOW.getTime() - 20 * HOUR), bytes: 50_000, status: 'unverifiable' });
    await givenBackup('skips-unverified', { startedAt: new Date(NOW.getTime() - 10 * HOUR), bytes: 50_000 });

    // Act
    const health = await assess('skips-unverified');

    // Assert
    expect(health.backups).toBe(4);
    expect(health.newestVerified?.backupId).toBe(verifiedId);
    expect(health.ageSeconds).toBe(2 * 86_400);
    expect(health.newerUnverified).toBe(3);
    expect(health.sizeRatio).toBeNull();
  });

  it('does not count a data object without its manifest (a backup in progress or one that failed) as a backup', async () => {
    // Arrange
    await givenBackup('in-progress', { startedAt: new Date(NOW.getTime() - DAY), bytes: 3000, status: 'verified' });
    const unfinished = backupObjectKeys('in-progress', newBackupId(new Date(NOW.getTime() - HOUR)));
    await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: unfinished.dataKey, Body: Buffer.alloc(100) }));

    // Act
    const health = await assess('in-progress');

    // Assert
    expect(health.backups).toBe(1);
    expect(health.ageSeconds).toBe(86_400);
    expect(health.newerUnverified).toBe(0);
  });
});

describe('median', () => {
  it.each([
    [[7], 7],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[10, 10], 10],
    [[100_000, 1, 99_000, 101_000, 98_000], 99_000],
  ])('of %j is %d', (values, expected) => {
    expect(median(values)).toBe(expected);
  });

  it('does not reorder the values it is given', () => {
    const values = [3, 1, 2];

    median(values);

    expect(values).toEqual([3, 1, 2]);
  });

  it('refuses an empty list', () => {
    expect(() => median([])).toThrow(RangeError);
  });
});

describe('parseDatabases', () => {
  it('reads a JSON array of database names', () => {
    expect(parseDatabases('["orders","billing"]')).toEqual(['orders', 'billing']);
  });

  it.each([
    ['a string', '"orders"'],
    ['an object', '{"databases":["orders"]}'],
    ['a number', '42'],
    ['null', 'null'],
    ['an array with an empty name', '["orders",""]'],
    ['an array with a number', '["orders",7]'],
    ['an empty array', '[]'],
  ])('rejects %s, saying what it expects', (_label, raw) => {
    expect(() => parseDatabases(raw)).toThrow('PGKEEP_DATABASES must be a non-empty JSON array of database names');
  });

  it('rejects text that is not JSON, with an example of what it expects', () => {
    expect(() => parseDatabases('orders,billing')).toThrow(/PGKEEP_DATABASES is not JSON: expected an array of database names, e\.g\. \["orders","billing"\]/);
  });
});

describe('checkHealth', () => {
  it("publishes each database's metrics with its Environment and Database dimensions, and no age for a database without a verified backup", async () => {
    // Arrange
    await givenBackup('orders', { startedAt: new Date(NOW.getTime() - 2 * HOUR), bytes: 8000, status: 'verified' });
    await givenBackup('billing', { startedAt: new Date(NOW.getTime() - 5 * HOUR), bytes: 6000, status: 'verified' });
    await givenBackup('unverified-only', { startedAt: new Date(NOW.getTime() - HOUR), bytes: 6000, status: 'failed' });
    const metrics = collectingSink();

    // Act
    const results = await checkHealth({
      s3: healthS3,
      metrics,
      logger: new Logger({ logLevel: 'SILENT' }),
      bucket: localS3.bucket,
      environment: 'prod',
      databases: ['orders', 'billing', 'unverified-only'],
      baselineCount: BASELINE_COUNT,
      now: () => NOW,
    });

    // Assert
    expect(results.map((health) => [health.database, health.ageSeconds])).toEqual([
      ['orders', 7200],
      ['billing', 18_000],
      ['unverified-only', null],
    ]);
    const published = metrics.published.map((datum) => ({
      name: datum.MetricName,
      value: datum.Value,
      timestamp: datum.Timestamp,
      dimensions: datum.Dimensions,
    }));
    const dimensions = (database: string) => [
      { Name: 'Environment', Value: 'prod' },
      { Name: 'Database', Value: database },
    ];
    expect(published).toEqual([
      { name: METRIC.newestVerifiedBackupAgeSeconds, value: 7200, timestamp: NOW, dimensions: dimensions('orders') },
      { name: METRIC.newestVerifiedBackupBytes, value: 8000, timestamp: NOW, dimensions: dimensions('orders') },
      { name: METRIC.futureDatedBackups, value: 0, timestamp: NOW, dimensions: dimensions('orders') },
      { name: METRIC.newestVerifiedBackupAgeSeconds, value: 18_000, timestamp: NOW, dimensions: dimensions('billing') },
      { name: METRIC.newestVerifiedBackupBytes, value: 6000, timestamp: NOW, dimensions: dimensions('billing') },
      { name: METRIC.futureDatedBackups, value: 0, timestamp: NOW, dimensions: dimensions('billing') },
      { name: METRIC.futureDatedBackups, value: 0, timestamp: NOW, dimensions: dimensions('unverified-only') },
    ]);
  });
});
