/**
 * The vault as health and retention read it, against two real buckets on the local S3 server: the
 * primary, and a vault holding replicas under the same keys (as S3 Replication writes them),
 * tagged by the vault's verifier or not yet. A replica here is a CopyObject of the primary's
 * objects: the bytes and keys replication would carry, without the primary's tags (replication
 * carries none). The vault that cannot be read is an endpoint nothing listens on (a region down).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CopyObjectCommand, CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { listBackups } from '../../runtime/listing.ts';
import type { VaultReader } from '../../runtime/vault.ts';
import { Logger } from '@aws-lambda-powertools/logger';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { serializeManifest } from '../../catalog/manifest.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { mergeTags, verificationTags, type VerificationStatus } from '../../runtime/verification.ts';
import { checkHealth } from '../../functions/backup-health/handler.ts';
import { runRetention } from '../../functions/enforce-retention/handler.ts';
import type { RetentionRunResult } from '../../functions/enforce-retention/enforce.ts';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';
import { syntheticManifest } from '../support/synthetic-manifest.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const VAULT_BUCKET = 'pgkeep-test-vault-123456789012-eu-west-1';
/** Day 1 is 2026-03-01 02:00 UTC; now is day 12, ten hours after its backup. */
const FIRST = Date.parse('2026-03-01T02:00:00.000Z');
const NOW = new Date(FIRST + 11 * DAY + 10 * HOUR);
const DAILIES_ONLY = { daily: 7, weekly: 0, monthly: 0, yearly: 0, timezone: 'UTC', minVerified: 1, unverifiedGraceHours: 24 };

let localS3: LocalS3;
let s3: S3Client;

beforeAll(async () => {
  localS3 = await startLocalS3({ bucket: 'pgkeep-test-primary' });
  s3 = localS3.client();
  await s3.send(new CreateBucketCommand({ Bucket: VAULT_BUCKET }));
});

afterAll(async () => {
  await localS3?.stop();
});

/** Days 1…12 of `database`, verified in the primary; `replica(day)` says what the vault holds of each. */
async function givenTwelveDays(database: string, replica: (day: number) => VerificationStatus | 'untagged' | 'absent'): Promise<string[]> {
  const ids: string[] = [];
  for (let day = 1; day <= 12; day += 1) {
    const startedAt = new Date(FIRST + (day - 1) * DAY);
    const backupId = newBackupId(startedAt);
    ids.push(backupId);
    const { dataKey, manifestKey } = backupObjectKeys(database, backupId);
    await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: dataKey, Body: Buffer.alloc(64, day) }));
    await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: manifestKey, Body: serializeManifest(syntheticManifest(database, backupId, 64)) }));
    const tags = verificationTags({ status: 'verified', method: 'sha256', at: new Date(startedAt.getTime() + HOUR) });
    await mergeTags(s3, localS3.bucket, dataKey, tags);
    const state = replica(day);
    if (state === 'absent') continue;
    for (const key of [dataKey, manifestKey]) {
      await s3.send(new CopyObjectCommand({ Bucket: VAULT_BUCKET, Key: key, CopySource: `${localS3.bucket}/${key}` }));
      if (state !== 'untagged')
        await mergeTags(s3, VAULT_BUCKET, key, verificationTags({ status: state, method: 'sha256', at: new Date(startedAt.getTime() + 2 * HOUR) }));
    }
  }
  return ids;
}

async function primaryBackupIds(database: string): Promise<string[]> {
  return (await listBackups(s3, { bucket: localS3.bucket, database })).map((backup) => backup.backupId);
}

/** A vault whose region is down: nothing listens on its endpoint (port 9 on loopback, "discard", closed). */
function unreachableVault(): VaultReader {
  return {
    s3: new S3Client({ endpoint: 'http://127.0.0.1:9', region: 'eu-west-1', credentials: localS3.credentials, forcePathStyle: true, maxAttempts: 1 }),
    bucket: VAULT_BUCKET,
  };
}

async function retain(database: string, vault: VaultReader | undefined) {
  const metrics = collectingSink();
  const [result] = await runRetention({
    s3,
    metrics,
    logger: new Logger({ logLevel: 'SILENT' }),
    bucket: localS3.bucket,
    environment: 'test',
    databases: [database],
    policy: DAILIES_ONLY,
    dryRun: false,
    objectLock: false,
    incompleteGraceHours: 48,
    ...(vault ? { offsite: vault } : {}),
    now: () => NOW,
  });
  return { result: result as RetentionRunResult, metrics: metrics.published };
}

async function health(database: string, vault: VaultReader) {
  const metrics = collectingSink();
  const [result] = await checkHealth({
    s3,
    metrics,
    logger: new Logger({ logLevel: 'SILENT' }),
    bucket: localS3.bucket,
    environment: 'test',
    databases: [database],
    baselineCount: 7,
    vault,
    now: () => NOW,
  });
  return { result: result!, metricNames: metrics.published.map((datum) => datum.MetricName) };
}

describe('enforce-retention with off-site copies required', () => {
  it('deletes only the backups whose replica in the vault is verified, and counts the rest as awaiting off-site', async () => {
    // Arrange: replicas verified for days 1–3; day 4 replicated but not yet tagged; day 5 tagged failed; days 6–12 not replicated.
    const ids = await givenTwelveDays('outage', (day) => (day <= 3 ? 'verified' : day === 4 ? 'untagged' : day === 5 ? 'failed' : 'absent'));

    // Act
    const { result, metrics } = await retain('outage', { s3, bucket: VAULT_BUCKET });

    // Assert: daily 7 alone would delete days 1–5.
    expect(result.deleted).toBe(3);
    expect(await primaryBackupIds('outage')).toEqual(ids.slice(3));
    expect(result.keptAwaitingOffsite).toBe(2);
    const reasonsOf = (index: number) => result.decisions.find((decision) => decision.backupId === ids[index])?.reasons;
    expect(reasonsOf(3)).toEqual([
      "kept: its off-site copy in the vault is not verified yet (its replica is not tagged by the vault verifier yet); deleted once the vault's verifier has verified it",
    ]);
    expect(reasonsOf(4)).toEqual([
      "kept: its off-site copy in the vault is not verified yet (its replica is tagged failed); deleted once the vault's verifier has verified it",
    ]);
    expect(metrics.find((datum) => datum.MetricName === METRIC.retentionKeptAwaitingOffsite)?.Value).toBe(2);
  });

  it('deletes nothing it would otherwise delete when the vault cannot be read', async () => {
    // Arrange
    const ids = await givenTwelveDays('vault-down', () => 'verified');

    // Act
    const { result } = await retain('vault-down', unreachableVault());

    // Assert
    expect(result.deleted).toBe(0);
    expect(await primaryBackupIds('vault-down')).toEqual(ids);
    expect(result.keptAwaitingOffsite).toBe(5);
    expect(result.decisions[11]?.reasons[0]).toMatch(/^kept: its off-site copy in the vault is not verified yet \(the vault could not be read: /);
  });

  it('deletes what GFS alone deletes, and publishes no off-site metric, when off-site copies are not required', async () => {
    // Arrange
    const ids = await givenTwelveDays('no-vault', () => 'absent');

    // Act
    const { result, metrics } = await retain('no-vault', undefined);

    // Assert
    expect(result.deleted).toBe(5);
    expect(await primaryBackupIds('no-vault')).toEqual(ids.slice(5));
    expect(metrics.some((datum) => datum.MetricName === METRIC.retentionKeptAwaitingOffsite)).toBe(false);
  });
});

describe('backup-health with a vault', () => {
  it('publishes the age of the newest backup whose replica is verified', async () => {
    // Arrange: the vault has verified replicas up to day 9; days 10–12 are not replicated yet.
    const ids = await givenTwelveDays('health-offsite', (day) => (day <= 9 ? 'verified' : 'absent'));

    // Act
    const { result, metricNames } = await health('health-offsite', { s3, bucket: VAULT_BUCKET });

    // Assert: day 9 started 3 days and 10 hours before now.
    expect(result.newestOffsiteVerified?.backupId).toBe(ids[8]);
    expect(result.offsiteAgeSeconds).toBe((3 * DAY + 10 * HOUR) / 1000);
    expect(metricNames).toContain(METRIC.newestOffsiteVerifiedBackupAgeSeconds);
  });

  it('publishes no off-site age when no replica is verified', async () => {
    // Arrange
    await givenTwelveDays('health-none-verified', (day) => (day % 2 === 0 ? 'untagged' : 'failed'));

    // Act
    const { result, metricNames } = await health('health-none-verified', { s3, bucket: VAULT_BUCKET });

    // Assert
    expect(result.newestOffsiteVerified).toBeUndefined();
    expect(result.offsiteUnreadable).toBeUndefined();
    expect(metricNames).not.toContain(METRIC.newestOffsiteVerifiedBackupAgeSeconds);
    expect(metricNames).toContain(METRIC.newestVerifiedBackupAgeSeconds);
  });

  it('publishes no off-site age, and says why, when the vault cannot be read', async () => {
    // Arrange
    await givenTwelveDays('health-vault-down', () => 'absent');

    // Act
    const { result, metricNames } = await health('health-vault-down', unreachableVault());

    // Assert
    expect(result.offsiteUnreadable).toMatch(/ECONNREFUSED/);
    expect(metricNames).not.toContain(METRIC.newestOffsiteVerifiedBackupAgeSeconds);
  });
});
