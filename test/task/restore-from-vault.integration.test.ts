/**
 * A restore from the vault (docs/vault.md): the restore task, as its own process, reads a backup
 * from a second bucket that holds what S3 Replication would have copied there, after the primary
 * copies are gone, and restores it into a new database on a real PostgreSQL.
 *
 * What stands in for AWS: moto_server holds both buckets, and "replication" is a CopyObject of the
 * same bytes with their checksum and without the source's tags (the replication role has no
 * s3:GetObjectVersionTagging; catalog/vault.ts). One thing CopyObject cannot do that replication
 * does: keep the object's version id ("the same key names and metadata, for example, creation
 * time, version ID", https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html). The
 * manifest pins the data object's version, so the primary bucket here is unversioned: its
 * manifests pin none, and the restore reads the copy by key. Reading a pinned version is
 * test/task/restore.integration.test.ts's business.
 */
import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTask, type TaskExit } from '../../dev/task-process.ts';
import type { Backup } from '../../runtime/listing.ts';
import { mergeTags, verificationTags } from '../../runtime/verification.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { backUpWithTask, createTinyShop, withClient } from '../support/backup-harness.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import { databaseNames, fingerprintOf, logLine } from '../support/restore-harness.ts';

let cluster: ThrowawayCluster;
let primary: MotoS3;
let vault: MotoS3;
let s3: S3Client;

const SOURCE = 'shop';

beforeAll(async () => {
  [cluster, primary] = await Promise.all([startThrowawayCluster(), startMotoS3({ bucket: 'pgkeep-vault-test-primary', shape: { kind: 'unversioned' } })]);
  // Unversioned, unlike the vault stack's bucket: moto refuses a CopyObject into an Object-Lock
  // bucket without a checksum header, which the SDK does not send for a copy. What the restore
  // reads (keys, bytes, tags) does not depend on the bucket's versioning once nothing is pinned.
  vault = await primary.addBucket('pgkeep-vault-test-vault', { kind: 'unversioned' });
  s3 = primary.client();
  await cluster.createDatabase(SOURCE);
  await withClient(cluster.connectionString(SOURCE), createTinyShop);
});

afterAll(async () => {
  await primary?.stop();
  await cluster?.stop();
});

/** What S3 Replication writes into the vault: the same bytes and checksum, no tags. */
async function replicate(backup: Backup): Promise<void> {
  for (const key of [backup.dataKey, backup.manifestKey]) {
    await s3.send(
      new CopyObjectCommand({
        Bucket: vault.bucket,
        Key: key,
        CopySource: `${primary.bucket}/${encodeURIComponent(key)}`,
        TaggingDirective: 'REPLACE',
      }),
    );
  }
}

/** The vault verifier's verdict on the copy (functions/verify-backup in vault mode). */
async function tagCopy(backup: Backup, status: 'verified' | 'failed'): Promise<void> {
  await mergeTags(s3, vault.bucket, backup.dataKey, verificationTags({ status, method: 'crc64nvme', at: new Date() }));
}

async function removeFromPrimary(backup: Backup): Promise<void> {
  for (const key of [backup.dataKey, backup.manifestKey]) await s3.send(new DeleteObjectCommand({ Bucket: primary.bucket, Key: key }));
  await expect(s3.send(new HeadObjectCommand({ Bucket: primary.bucket, Key: backup.dataKey }))).rejects.toThrow();
}

function restoreFromVault(catalogName: string, settings: Record<string, string> = {}): Promise<TaskExit> {
  const env = vault.taskEnvironment();
  return startTask({
    command: 'restore',
    env: {
      ...env,
      ...cluster.env('postgres'),
      // The overrides docs/operations.md#primary-gone gives: the vault's bucket and its region.
      PGKEEP_BUCKET: vault.bucket,
      PGKEEP_BUCKET_REGION: env.AWS_REGION ?? 'us-east-1',
      PGKEEP_ENVIRONMENT: 'test',
      PGKEEP_METRICS: 'off',
      PGKEEP_RESTORE_SOURCE: catalogName,
      ...settings,
    },
  }).exited;
}

describe('a restore from the vault', () => {
  it('restores the newest verified copy into a new database, with the primary copies gone, holding exactly the source data', async () => {
    const backup = await backUpWithTask(s3, primary, cluster.env(SOURCE), 'vault-shop');
    await replicate(backup);
    await tagCopy(backup, 'verified');
    await removeFromPrimary(backup);

    const exit = await restoreFromVault('vault-shop');

    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    const restored = (await databaseNames(cluster.connectionString('postgres'))).filter((name) => name.startsWith('vault-shop_'));
    expect(restored).toHaveLength(1);
    expect(await fingerprintOf(cluster.connectionString(restored[0]))).toEqual(await fingerprintOf(cluster.connectionString(SOURCE)));
  });

  it("passes over a copy the vault's verifier failed, and says so, restoring the one before it", async () => {
    const older = await backUpWithTask(s3, primary, cluster.env(SOURCE), 'vault-skip');
    const newer = await backUpWithTask(s3, primary, cluster.env(SOURCE), 'vault-skip');
    for (const backup of [older, newer]) await replicate(backup);
    await tagCopy(older, 'verified');
    await tagCopy(newer, 'failed');

    const exit = await restoreFromVault('vault-skip');

    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(JSON.stringify(exit.logs)).toContain(newer.backupId);
    expect(JSON.stringify(logLine(exit, 'restore completed'))).toContain(older.backupId);
  });
});
