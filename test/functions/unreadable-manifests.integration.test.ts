/**
 * Manifests this pgkeep cannot read, against the local S3 server through the real SDK: one of a
 * newer schema (what a rolling upgrade produces: a new task image beside older functions), and a
 * malformed one. Verification must say "written by a newer pgkeep", never "failed", and keep the
 * whole reason; retention must never delete what it cannot read; health must count neither as a
 * verified backup. Every test uses its own database name.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import { serializeManifest } from '../../catalog/manifest.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { VERIFICATION_TAG, mergeTags, readTags, verificationTags, type VerificationStatus } from '../../runtime/verification.ts';
import { assessDatabaseHealth } from '../../functions/backup-health/health.ts';
import { enforceRetention } from '../../functions/enforce-retention/enforce.ts';
import type { RetentionPolicy } from '../../catalog/retention-policy.ts';
import { collectingAlertSink } from '../../functions/shared/alerts.ts';
import { processManifest, type VerifyDependencies } from '../../functions/verify-backup/process.ts';
import { recordAwsCalls } from '../support/aws-call-recorder.ts';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';
import { newerSchemaManifestText, syntheticManifest } from '../support/synthetic-manifest.ts';

const DAY = 86_400_000;
/** One daily slot and a floor of one: everything but the newest verified backup is deletable. */
const POLICY: RetentionPolicy = { daily: 1, weekly: 0, monthly: 0, yearly: 0, timezone: 'UTC', minVerified: 1, unverifiedGraceHours: 24 };
const silentLogger = new Logger({ logLevel: 'SILENT' });

let localS3: LocalS3;
let s3: S3Client;

beforeAll(async () => {
  localS3 = await startLocalS3({ bucket: 'pgkeep-unreadable-test' });
  s3 = localS3.client();
});

afterAll(async () => {
  await localS3?.stop();
});

type ManifestKind = 'readable' | 'newer-schema' | 'malformed' | 'none';

/**
 * A backup `daysAgo` days old (by the real clock, as S3 stamps LastModified): a small data object,
 * a manifest of the given kind whose checksums match the data when readable, and the verdict tag
 * an earlier verifier left, if any. `data: false` leaves only the manifest (a manifest-only entry).
 */
async function givenBackup(
  database: string,
  daysAgo: number,
  manifest: ManifestKind,
  status?: VerificationStatus,
  { data = true } = {},
): Promise<{ backupId: string; dataKey: string; manifestKey: string }> {
  const backupId = newBackupId(new Date(Date.now() - daysAgo * DAY));
  const { dataKey, manifestKey } = backupObjectKeys(database, backupId);
  const body = Buffer.from(`synthetic dump of ${database} ${backupId}\n`.repeat(4));
  if (data) await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: dataKey, Body: body }));
  const readable = syntheticManifest(database, backupId, body.length);
  readable.object.sha256 = createHash('sha256').update(body).digest('hex');
  const text = {
    readable: serializeManifest(readable),
    'newer-schema': newerSchemaManifestText(database, backupId, body.length),
    malformed: '{"schemaVersion":1,"backupId":"?"}',
    none: '',
  }[manifest];
  if (manifest !== 'none') await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: manifestKey, Body: text }));
  if (status) {
    const tags = verificationTags({ status, method: 'sha256', at: new Date() });
    if (data) await mergeTags(s3, localS3.bucket, dataKey, tags);
    await mergeTags(s3, localS3.bucket, manifestKey, tags);
  }
  return { backupId, dataKey, manifestKey };
}

function verifyDependencies() {
  const metrics = collectingSink();
  const alerts = collectingAlertSink();
  const deps: VerifyDependencies = {
    s3: recordAwsCalls('verify-backup', localS3.client()),
    metrics,
    alerts,
    logger: silentLogger,
    environment: 'test',
    maxStreamBytes: 2 ** 20,
  };
  return { deps, metrics, alerts };
}

async function tagOf(key: string): Promise<string | undefined> {
  return (await readTags(s3, localS3.bucket, key)).find((tag) => tag.Key === VERIFICATION_TAG)?.Value;
}

function retention(database: string) {
  // A minute ahead of the real clock, so the objects just written count as written before "now".
  return enforceRetention({
    s3: recordAwsCalls('enforce-retention', localS3.client(), { settings: { PGKEEP_OBJECT_LOCK: 'false', PGKEEP_RETENTION_DRY_RUN: 'false' } }),
    bucket: localS3.bucket,
    database,
    policy: POLICY,
    now: new Date(Date.now() + 60_000),
    dryRun: false,
    objectLock: false,
    incompleteGraceHours: 0,
    logger: silentLogger,
  });
}

describe('verify-backup on a manifest written by a newer pgkeep', () => {
  it('records "newer-schema" (unverifiable: written by a newer pgkeep), never "failed", and keeps the whole reason in the result, the alert and the log', async () => {
    // Arrange
    const backup = await givenBackup('newer-verify', 0, 'newer-schema');
    const { deps, metrics, alerts } = verifyDependencies();

    // Act
    const result = await processManifest(deps, { bucket: localS3.bucket, manifestKey: backup.manifestKey });

    // Assert
    expect(result.status).toBe('newer-schema');
    expect(result.problems).toEqual([expect.stringContaining('has schemaVersion 2, newer than this pgkeep understands (1); it was written by pgkeep 9.0.0')]);
    expect(result.remedy).toContain('Deploy the same pgkeep version');
    expect(await tagOf(backup.dataKey)).toBe('newer-schema');
    expect(await tagOf(backup.manifestKey)).toBe('newer-schema');
    expect(metrics.published.map((datum) => datum.MetricName)).toEqual([METRIC.backupUnverifiable]);
    expect(alerts.sent).toHaveLength(1);
    expect(alerts.sent[0]?.subject).toContain('written by a newer pgkeep');
    expect(alerts.sent[0]?.subject).not.toContain('FAILED');
    expect(alerts.sent[0]?.message).toContain('schemaVersion 2, newer than this pgkeep understands (1)');
  });

  it('checks a "newer-schema" backup again when its event is delivered again, so an upgraded verifier gives it its real verdict', async () => {
    // Arrange: an older verifier left "newer-schema"; the upgraded one can read the manifest.
    const backup = await givenBackup('newer-reverify', 0, 'readable', 'newer-schema');
    const { deps, metrics } = verifyDependencies();

    // Act
    const result = await processManifest(deps, { bucket: localS3.bucket, manifestKey: backup.manifestKey });

    // Assert
    expect(result).toMatchObject({ status: 'verified', method: 'sha256', duplicate: false });
    expect(await tagOf(backup.dataKey)).toBe('verified');
    expect(metrics.published.map((datum) => datum.MetricName)).toEqual([METRIC.backupVerified]);
  });

  it('still fails a malformed manifest, naming each field and what is wrong with it', async () => {
    // Arrange
    const backup = await givenBackup('malformed-verify', 0, 'malformed');
    const { deps } = verifyDependencies();

    // Act
    const result = await processManifest(deps, { bucket: localS3.bucket, manifestKey: backup.manifestKey });

    // Assert
    expect(result.status).toBe('failed');
    expect(result.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^manifest field backupId: expected a pgkeep backup id/),
        expect.stringMatching(/^manifest field database: /),
      ]),
    );
  });
});

describe('enforce-retention never deletes what it cannot read', () => {
  it('keeps backups whose manifest is malformed or of a newer schema, whatever an older verifier tagged them, and still deletes a readable failed one', async () => {
    // Arrange
    const database = 'unreadable-retention';
    const readableFailed = await givenBackup(database, 6, 'readable', 'failed');
    const malformed = await givenBackup(database, 5, 'malformed', 'failed');
    const newerTaggedFailed = await givenBackup(database, 4, 'newer-schema', 'failed');
    const newerTagged = await givenBackup(database, 3, 'newer-schema', 'newer-schema');
    const oldVerified = await givenBackup(database, 2, 'readable', 'verified');
    const newestVerified = await givenBackup(database, 1, 'readable', 'verified');

    // Act
    const result = await retention(database);

    // Assert
    const decision = (backupId: string) => result.decisions.find((candidate) => candidate.backupId === backupId);
    expect(result.deletions.map((deletion) => deletion.backupId).sort()).toEqual([readableFailed.backupId, oldVerified.backupId].sort());
    expect(decision(malformed.backupId)).toMatchObject({
      action: 'keep',
      reasons: [expect.stringMatching(/^its manifest cannot be read \(.*is invalid: backupId: .*\); retention never deletes what it cannot read$/)],
    });
    expect(decision(newerTaggedFailed.backupId)).toMatchObject({
      action: 'keep',
      reasons: [expect.stringContaining('schemaVersion 2, newer than this pgkeep understands')],
    });
    expect(decision(newerTagged.backupId)).toMatchObject({ action: 'keep', reasons: [expect.stringContaining('written by a newer pgkeep')] });
    expect(decision(newestVerified.backupId)?.action).toBe('keep');
    expect(result.keptUnreadable.map((kept) => kept.backupId).sort()).toEqual([malformed.backupId, newerTaggedFailed.backupId].sort());
    expect(result.errors).toEqual([]);
  });

  it('keeps a manifest without data when it cannot read the manifest (a newer layout may keep the data elsewhere), and removes a readable one', async () => {
    // Arrange
    const database = 'unreadable-leftovers';
    await givenBackup(database, 1, 'readable', 'verified');
    const newerLeftover = await givenBackup(database, 3, 'newer-schema', undefined, { data: false });
    const readableLeftover = await givenBackup(database, 2, 'readable', undefined, { data: false });

    // Act
    const result = await retention(database);

    // Assert
    expect(result.deletions.map((deletion) => deletion.backupId)).toEqual([readableLeftover.backupId]);
    expect(result.keptUnreadable).toEqual([
      {
        backupId: newerLeftover.backupId,
        manifestKey: newerLeftover.manifestKey,
        reason: expect.stringContaining('newer than this pgkeep understands') as unknown,
      },
    ]);
  });
});

describe('backup-health on manifests it cannot vouch for', () => {
  it('counts neither a newer-schema nor a malformed backup as verified: the age is that of the last verified one', async () => {
    // Arrange
    const database = 'unreadable-health';
    const verified = await givenBackup(database, 3, 'readable', 'verified');
    await givenBackup(database, 2, 'malformed', 'failed');
    await givenBackup(database, 1, 'newer-schema', 'newer-schema');

    // Act
    const health = await assessDatabaseHealth(recordAwsCalls('backup-health', localS3.client()), {
      bucket: localS3.bucket,
      database,
      now: new Date(),
      baselineCount: 7,
    });

    // Assert
    expect(health.newestVerified?.backupId).toBe(verified.backupId);
    expect(health.newerUnverified).toBe(2);
    expect(health.ageSeconds).toBeGreaterThanOrEqual(3 * 86_400 - 60);
  });
});
