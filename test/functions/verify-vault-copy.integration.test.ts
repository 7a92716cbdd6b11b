/**
 * The vault verifier (verify-backup with PGKEEP_VERIFY_SITE=vault, docs/vault.md) against copies of
 * real backups: the backup task writes into a primary bucket shaped like the prod example's
 * (versioned, Object Lock GOVERNANCE 35 days, CRC64NVME), and each test copies its own backup into a
 * second Object-Lock bucket the way S3 Replication would, then damages the copy or leaves part of it
 * out, and runs the function's code on the copy's S3 events.
 *
 * What stands in for S3 Replication (moto_server has none): the same bytes with a CRC64NVME and the
 * source object's Object Lock mode and date, which replication carries over
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-replication),
 * and without the source's tags (the replication role cannot read them; catalog/vault.ts).
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC } from '../../catalog/metrics.ts';
import { objectCreatedEvent } from '../../dev/s3-event.ts';
import { collectingAlertSink } from '../../functions/shared/alerts.ts';
import { handleS3Event } from '../../functions/verify-backup/handler.ts';
import type { VerifyDependencies } from '../../functions/verify-backup/process.ts';
import type { Backup } from '../../runtime/listing.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { readTags, VERIFICATION_TAG } from '../../runtime/verification.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { backUpWithTask, createTinyShop, withClient } from '../support/backup-harness.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';

const CATALOG = { intact: 'vault-intact', truncated: 'vault-truncated', flipped: 'vault-flipped', late: 'vault-late-data', early: 'vault-early-data' } as const;
const VAULT_LOCK_DAYS = 60;
const DAY_MS = 86_400_000;

let cluster: ThrowawayCluster;
let primary: MotoS3;
let vault: MotoS3;
let s3: S3Client;
const backups = new Map<string, Backup>();

beforeAll(async () => {
  [cluster, primary] = await Promise.all([startThrowawayCluster(), startMotoS3({ bucket: 'pgkeep-verify-vault-primary' })]);
  vault = await primary.addBucket('pgkeep-verify-vault-copies', { kind: 'object-lock', mode: 'GOVERNANCE', days: 1 });
  s3 = primary.client();
  await cluster.createDatabase('shop');
  await withClient(cluster.connectionString('shop'), createTinyShop);
  for (const name of Object.values(CATALOG)) backups.set(name, await backUpWithTask(s3, primary, cluster.env('shop'), name));
}, 300_000);

afterAll(async () => {
  await primary?.stop();
  await cluster?.stop();
});

const backupOf = (name: string): Backup => backups.get(name)!;

/** What S3 Replication writes for one object: its bytes (optionally altered), a CRC64NVME, its lock; no tags. */
async function replicate(key: string, alter: (bytes: Buffer) => Buffer = (bytes) => bytes): Promise<void> {
  const source = await s3.send(new GetObjectCommand({ Bucket: primary.bucket, Key: key }));
  const retention = { Mode: source.ObjectLockMode, RetainUntilDate: source.ObjectLockRetainUntilDate };
  const body = alter(Buffer.from(await source.Body!.transformToByteArray()));
  await s3.send(
    new PutObjectCommand({
      Bucket: vault.bucket,
      Key: key,
      Body: body,
      ChecksumAlgorithm: 'CRC64NVME',
      ...(retention.Mode && retention.RetainUntilDate ? { ObjectLockMode: retention.Mode, ObjectLockRetainUntilDate: retention.RetainUntilDate } : {}),
    }),
  );
}

function vaultVerifier() {
  const metrics = collectingSink();
  const alerts = collectingAlertSink();
  const deps: VerifyDependencies = {
    // Not recorded for the authorization model: its recordings are the primary verifier's, whose
    // role and bucket differ; the vault verifier's calls are its service-path checks there.
    s3: vault.client(),
    metrics,
    alerts,
    logger: new Logger({ logLevel: 'SILENT' }),
    environment: 'test',
    maxStreamBytes: 64 * 2 ** 20,
    site: 'vault',
    vaultLockDays: VAULT_LOCK_DAYS,
  };
  const onArrival = (key: string) => handleS3Event(deps, objectCreatedEvent(vault.bucket, key));
  return { onArrival, metrics, alerts };
}

async function verdictOf(key: string): Promise<string | undefined> {
  return (await readTags(s3, vault.bucket, key)).find((tag) => tag.Key === VERIFICATION_TAG)?.Value;
}

const metricNames = (published: readonly { MetricName?: string | undefined }[]) => published.map((datum) => datum.MetricName);

describe('the vault verifier', () => {
  it('verifies an intact copy, tags the copy (not the primary), and locks it for the vault’s days from its arrival', async () => {
    const backup = backupOf(CATALOG.intact);
    const { onArrival, metrics, alerts } = vaultVerifier();
    await replicate(backup.dataKey);
    await replicate(backup.manifestKey);

    const [result] = await onArrival(backup.manifestKey);

    expect(result).toMatchObject({ status: 'verified', duplicate: false });
    expect(await verdictOf(backup.dataKey)).toBe('verified');
    expect(await verdictOf(backup.manifestKey)).toBe('verified');
    expect(metricNames(metrics.published)).toEqual([METRIC.offsiteVerified]);
    expect(alerts.sent).toEqual([]);
    // The copy arrived with the primary's GOVERNANCE 35 days; it now lasts the vault's 60, in its own mode.
    for (const key of [backup.dataKey, backup.manifestKey]) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: vault.bucket, Key: key }));
      expect(head.ObjectLockMode).toBe('GOVERNANCE');
      expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThanOrEqual(head.LastModified!.getTime() + VAULT_LOCK_DAYS * DAY_MS - 1000);
    }
  });

  it('fails a truncated copy, alerts that the off-site copy (not the primary) is bad, and extends no lock', async () => {
    const backup = backupOf(CATALOG.truncated);
    const { onArrival, metrics, alerts } = vaultVerifier();
    await replicate(backup.dataKey, (bytes) => bytes.subarray(0, bytes.length - 100));
    await replicate(backup.manifestKey);
    const lockOf = async () => (await s3.send(new HeadObjectCommand({ Bucket: vault.bucket, Key: backup.dataKey }))).ObjectLockRetainUntilDate;
    const before = await lockOf();

    const [result] = await onArrival(backup.manifestKey);

    expect(result?.status).toBe('failed');
    expect(result?.problems.join(' ')).toMatch(/bytes; the manifest says/);
    expect(await verdictOf(backup.dataKey)).toBe('failed');
    expect(metricNames(metrics.published)).toEqual([METRIC.offsiteVerificationFailed]);
    expect(alerts.sent).toHaveLength(1);
    expect(alerts.sent[0]!.subject).toMatch(/off-site copy in the vault of a backup of vault-truncated FAILED verification/);
    expect(alerts.sent[0]!.message).toContain('the backup in the primary bucket is not affected');
    expect(await lockOf()).toEqual(before);
  });

  it('fails a copy with one byte flipped, although the size matches and the copy carries a checksum of its own bytes', async () => {
    const backup = backupOf(CATALOG.flipped);
    const { onArrival, metrics } = vaultVerifier();
    await replicate(backup.dataKey, (bytes) => {
      const copy = Buffer.from(bytes);
      const middle = Math.floor(copy.length / 2);
      copy[middle] = (copy[middle] ?? 0) ^ 0xff;
      return copy;
    });
    await replicate(backup.manifestKey);

    const [result] = await onArrival(backup.manifestKey);

    expect(result?.status).toBe('failed');
    expect(['crc64nvme', 'sha256']).toContain(result?.method);
    expect(await verdictOf(backup.dataKey)).toBe('failed');
    expect(metricNames(metrics.published)).toEqual([METRIC.offsiteVerificationFailed]);
  });

  it('records nothing for a manifest whose data has not been replicated yet, and verifies the copy when the data object arrives', async () => {
    const backup = backupOf(CATALOG.late);
    const { onArrival, metrics, alerts } = vaultVerifier();
    await replicate(backup.manifestKey);

    const [waiting] = await onArrival(backup.manifestKey);

    expect(waiting).toMatchObject({ awaitingData: true, dataObjectExists: false });
    expect(await verdictOf(backup.manifestKey)).toBeUndefined();
    expect(metrics.published).toEqual([]);
    expect(alerts.sent).toEqual([]);

    await replicate(backup.dataKey);
    const [arrived] = await onArrival(backup.dataKey);

    expect(arrived).toMatchObject({ status: 'verified', manifestKey: backup.manifestKey });
    expect(await verdictOf(backup.dataKey)).toBe('verified');
    expect(metricNames(metrics.published)).toEqual([METRIC.offsiteVerified]);
  });

  it('does nothing for a data object that arrives before its manifest, and verifies on the manifest’s arrival', async () => {
    const backup = backupOf(CATALOG.early);
    const { onArrival, metrics } = vaultVerifier();
    await replicate(backup.dataKey);

    expect(await onArrival(backup.dataKey)).toEqual([]);
    expect(await verdictOf(backup.dataKey)).toBeUndefined();

    await replicate(backup.manifestKey);
    const [result] = await onArrival(backup.manifestKey);

    expect(result?.status).toBe('verified');
    expect(metricNames(metrics.published)).toEqual([METRIC.offsiteVerified]);
  });
});
