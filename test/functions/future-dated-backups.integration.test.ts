/**
 * A backup made by a task whose clock ran a year ahead: its id (its start time) lies a year after
 * the LastModified S3 stamped on its objects. On moto_server (test/support/moto-s3.ts), which
 * stamps LastModified with its own clock as S3 does, through the real SDK: the backups below are
 * written now, and their ids say when the "task" thought it was.
 *
 * Health must not take it for the newest backup (age 0 for a year), and must say it is there;
 * retention must neither delete it nor let it take the floor and the slots from the real backups.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import { serializeManifest } from '../../catalog/manifest.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { mergeTags, verificationTags } from '../../runtime/verification.ts';
import { checkHealth } from '../../functions/backup-health/handler.ts';
import { enforceRetention } from '../../functions/enforce-retention/enforce.ts';
import type { RetentionPolicy } from '../../catalog/retention-policy.ts';
import { recordAwsCalls } from '../support/aws-call-recorder.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import { syntheticManifest } from '../support/synthetic-manifest.ts';

const DAY = 86_400_000;
const YEAR = 365 * DAY;
const silentLogger = new Logger({ logLevel: 'SILENT' });

let moto: MotoS3;
let s3: S3Client;

beforeAll(async () => {
  moto = await startMotoS3({ bucket: 'pgkeep-future-dated-test', shape: { kind: 'unversioned' } });
  s3 = moto.client();
}, 120_000);

afterAll(async () => {
  await moto?.stop();
});

/** A verified backup written now, whose id says it started at `claimedStart`. */
async function givenVerifiedBackup(database: string, claimedStart: Date, bytes: number): Promise<string> {
  const backupId = newBackupId(claimedStart);
  const { dataKey, manifestKey } = backupObjectKeys(database, backupId);
  await s3.send(new PutObjectCommand({ Bucket: moto.bucket, Key: dataKey, Body: Buffer.alloc(bytes, 1) }));
  await s3.send(new PutObjectCommand({ Bucket: moto.bucket, Key: manifestKey, Body: serializeManifest(syntheticManifest(database, backupId, bytes)) }));
  await mergeTags(s3, moto.bucket, dataKey, verificationTags({ status: 'verified', method: 'crc64nvme', at: new Date() }));
  return backupId;
}

describe('backup-health with a backup whose task clock ran a year ahead', () => {
  it('takes the newest real backup for the newest, leaves the future-dated one out of the size baseline, and publishes FutureDatedBackups 1', async () => {
    // Arrange: real backups two and three days ago (by their ids: written now, as if restored
    // from elsewhere; only a start time AHEAD of S3's clock is suspect), and one claiming next year.
    const database = 'future-health';
    const now = new Date();
    await givenVerifiedBackup(database, new Date(now.getTime() - 3 * DAY), 4000);
    const newestReal = await givenVerifiedBackup(database, new Date(now.getTime() - 2 * DAY), 4000);
    const futureDated = await givenVerifiedBackup(database, new Date(now.getTime() + YEAR), 40);
    const metrics = collectingSink();

    // Act
    const [health] = await checkHealth({
      s3: recordAwsCalls('backup-health', moto.client()),
      metrics,
      logger: silentLogger,
      bucket: moto.bucket,
      environment: 'test',
      databases: [database],
      baselineCount: 7,
      now: () => now,
    });

    // Assert
    expect(health?.newestVerified?.backupId).toBe(newestReal);
    expect(health?.ageSeconds).toBe(2 * 86_400);
    expect(health?.recentMedianBytes).toBe(4000);
    expect(health?.sizeRatio).toBe(1);
    expect(health?.futureDated).toEqual([{ backupId: futureDated, aheadSeconds: expect.closeTo(YEAR / 1000, -2) as unknown }]);
    expect(metrics.published.find((datum) => datum.MetricName === METRIC.futureDatedBackups)?.Value).toBe(1);
    expect(metrics.published.find((datum) => datum.MetricName === METRIC.newestVerifiedBackupAgeSeconds)?.Value).toBe(2 * 86_400);
  });

  it("does not flag a backup whose start time is within the clock-skew tolerance of S3's", async () => {
    // Arrange: a task clock two minutes fast.
    const database = 'slightly-fast-clock';
    const now = new Date();
    const backupId = await givenVerifiedBackup(database, new Date(now.getTime() + 2 * 60_000), 4000);
    const metrics = collectingSink();

    // Act
    const [health] = await checkHealth({
      s3: moto.client(),
      metrics,
      logger: silentLogger,
      bucket: moto.bucket,
      environment: 'test',
      databases: [database],
      baselineCount: 7,
      now: () => new Date(now.getTime() + 3 * 60_000),
    });

    // Assert
    expect(health?.newestVerified?.backupId).toBe(backupId);
    expect(health?.futureDated).toEqual([]);
    expect(metrics.published.find((datum) => datum.MetricName === METRIC.futureDatedBackups)?.Value).toBe(0);
  });
});

describe('enforce-retention with a backup whose task clock ran a year ahead', () => {
  it('keeps it, but neither as the newest verified backup nor in a slot: the real backups keep the floor and the daily slot', async () => {
    // Arrange
    const database = 'future-retention';
    const now = new Date();
    const oldest = await givenVerifiedBackup(database, new Date(now.getTime() - 3 * DAY), 1000);
    const older = await givenVerifiedBackup(database, new Date(now.getTime() - 2 * DAY), 1000);
    const newestReal = await givenVerifiedBackup(database, new Date(now.getTime() - DAY), 1000);
    const futureDated = await givenVerifiedBackup(database, new Date(now.getTime() + YEAR), 1000);
    const policy: RetentionPolicy = { daily: 1, weekly: 0, monthly: 0, yearly: 0, timezone: 'UTC', minVerified: 1, unverifiedGraceHours: 24 };

    // Act
    const result = await enforceRetention({
      s3: recordAwsCalls('enforce-retention', moto.client(), { settings: { PGKEEP_OBJECT_LOCK: 'false', PGKEEP_RETENTION_DRY_RUN: 'true' } }),
      bucket: moto.bucket,
      database,
      policy,
      now,
      dryRun: true,
      objectLock: false,
      incompleteGraceHours: 48,
      logger: silentLogger,
    });

    // Assert
    const decision = (backupId: string) => result.decisions.find((candidate) => candidate.backupId === backupId);
    expect(result.deletions.map((deletion) => deletion.backupId).sort()).toEqual([oldest, older].sort());
    expect(decision(newestReal)).toMatchObject({ action: 'keep', reasons: expect.arrayContaining(['newest verified backup']) as unknown });
    expect(decision(futureDated)).toMatchObject({
      action: 'keep',
      tier: undefined,
      reasons: [expect.stringMatching(/^future-dated: it claims to have started 365 days after S3 stored it/)],
    });
  });
});
