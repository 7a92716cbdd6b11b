/**
 * Which backup a restore picks, and what it says when the one it would pick cannot be trusted, end
 * to end: the restore task runs as its own process against moto_server and a real PostgreSQL (a
 * throwaway cluster), restoring backups the real backup command wrote. Damage is done the way it
 * happens: a manifest rewritten or cut short, a newer pgkeep's manifest, a verification verdict,
 * a data object deleted, a task clock running ahead.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import type { Backup } from '../../runtime/listing.ts';
import { mergeTags, verificationTags } from '../../runtime/verification.ts';
import { startTask, type TaskExit } from '../../dev/task-process.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { backUpWithTask, markBackupVerified, withClient } from '../support/backup-harness.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import { logLine, restoreFailureOf } from '../support/restore-harness.ts';

let cluster: ThrowawayCluster;
let moto: MotoS3;
let s3: S3Client;
const SOURCE = 'shop';

beforeAll(async () => {
  [cluster, moto] = await Promise.all([startThrowawayCluster(), startMotoS3({ bucket: 'pgkeep-restore-selection-test' })]);
  s3 = moto.client();
  await cluster.createDatabase(SOURCE);
  await withClient(cluster.connectionString(SOURCE), async (client) => {
    await client.query('CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)');
    await client.query("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g");
  });
});

afterAll(async () => {
  await moto?.stop();
  await cluster?.stop();
});

function backUp(catalogName: string): Promise<Backup> {
  return backUpWithTask(s3, moto, cluster.env(SOURCE), catalogName);
}

function restore(catalogName: string, settings: Record<string, string> = {}): Promise<TaskExit> {
  return startTask({
    command: 'restore',
    env: {
      ...moto.taskEnvironment(),
      ...cluster.env('postgres'),
      PGKEEP_ENVIRONMENT: 'test',
      PGKEEP_METRICS: 'off',
      PGKEEP_RESTORE_SOURCE: catalogName,
      ...settings,
    },
  }).exited;
}

const stringContaining = (text: string): unknown => expect.stringContaining(text) as unknown;

async function manifestText(backup: Backup): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket: moto.bucket, Key: backup.manifestKey }))).Body!.transformToString();
}

async function putManifest(backup: Backup, text: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: moto.bucket, Key: backup.manifestKey, Body: text }));
}

/** An older backup that verify-backup passed, and a newer one: the setting of every scenario. */
async function olderVerifiedAndNewer(catalogName: string): Promise<{ older: Backup; newer: Backup }> {
  const older = await backUp(catalogName);
  await markBackupVerified(s3, moto.bucket, older);
  const newer = await backUp(catalogName);
  return { older, newer };
}

describe('restoring "latest" when the newest manifest is malformed', () => {
  it.each([
    ['a field is invalid', (text: string) => text.replace(/"sha256": "[0-9a-f]{64}"/, '"sha256": "not-a-digest"'), 'object.sha256'],
    ['it is cut short', (text: string) => text.slice(0, Math.floor(text.length / 2)), 'is not valid JSON'],
    [
      'a newer pgkeep wrote it',
      (text: string) => text.replace('"schemaVersion": 1', '"schemaVersion": 2'),
      'schemaVersion 2, newer than this pgkeep understands',
    ],
  ])('(%s): refuses with exit 2, naming the backup, the problem and the newest verified backup to restore instead', async (label, damage, problem) => {
    // Arrange
    const catalogName = `malformed-${label.replace(/\W+/g, '-')}`;
    const { older, newer } = await olderVerifiedAndNewer(catalogName);
    const original = await manifestText(newer);
    const damaged = damage(original);
    expect(damaged).not.toBe(original);
    await putManifest(newer, damaged);

    // Act
    const exit = await restore(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(2);
    const failure = restoreFailureOf(exit);
    expect(failure.stage).toBe('refused');
    expect(failure.error).toContain(newer.backupId);
    expect(failure.error).toContain(problem);
    expect(failure.remedy).toContain(`PGKEEP_RESTORE_BACKUP=${older.backupId}`);
    expect(String(failure.remedy)).not.toMatch(/pgkeep bug/);
  });
});

describe('restoring "latest" skips, and says so, a newer backup that', () => {
  it('failed verification: restores the newest one before it and names both', async () => {
    // Arrange
    const catalogName = 'skip-failed-verification';
    const { older, newer } = await olderVerifiedAndNewer(catalogName);
    await mergeTags(s3, moto.bucket, newer.dataKey, verificationTags({ status: 'failed', method: 'crc64nvme', at: new Date() }));

    // Act
    const exit = await restore(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'skipped a backup')).toMatchObject({
      backupId: newer.backupId,
      chosen: older.backupId,
      reason: stringContaining('failed verification'),
    });
    expect(logLine(exit, 'backup chosen')).toMatchObject({ backupId: older.backupId, skipped: [newer.backupId] });
  });

  it('lost its data object: restores the newest one before it and names both', async () => {
    // Arrange
    const catalogName = 'skip-data-gone';
    const { older, newer } = await olderVerifiedAndNewer(catalogName);
    await s3.send(new DeleteObjectCommand({ Bucket: moto.bucket, Key: newer.dataKey }));

    // Act
    const exit = await restore(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'skipped a backup')).toMatchObject({
      backupId: newer.backupId,
      chosen: older.backupId,
      reason: stringContaining('data object is gone'),
    });
    expect(logLine(exit, 'backup chosen')).toMatchObject({ backupId: older.backupId, skipped: [newer.backupId] });
  });

  it('claims to start in the future (a task clock that ran ahead): restores the newest believable one and names both', async () => {
    // Arrange: a complete, self-consistent backup whose id says it starts two hours from now.
    const catalogName = 'skip-future-dated';
    const older = await backUp(catalogName);
    const startedAt = new Date(Date.now() + 2 * 3_600_000);
    const futureId = newBackupId(startedAt, 'f0f0f0');
    const keys = backupObjectKeys(catalogName, futureId);
    const manifest = JSON.parse(await manifestText(older)) as Record<string, unknown> & { object: Record<string, unknown> };
    const data = await (await s3.send(new GetObjectCommand({ Bucket: moto.bucket, Key: older.dataKey }))).Body!.transformToByteArray();
    const written = await s3.send(new PutObjectCommand({ Bucket: moto.bucket, Key: keys.dataKey, Body: data }));
    manifest.backupId = futureId;
    manifest.startedAt = startedAt.toISOString();
    manifest.finishedAt = new Date(startedAt.getTime() + 60_000).toISOString();
    manifest.object = { ...manifest.object, key: keys.dataKey, versionId: written.VersionId };
    await s3.send(new PutObjectCommand({ Bucket: moto.bucket, Key: keys.manifestKey, Body: JSON.stringify(manifest) }));

    // Act
    const exit = await restore(catalogName);

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(logLine(exit, 'skipped a backup')).toMatchObject({ backupId: futureId, chosen: older.backupId, reason: stringContaining('ahead of the S3 clock') });
    expect(logLine(exit, 'backup chosen')).toMatchObject({ backupId: older.backupId, skipped: [futureId] });
  });
});

describe('restoring from a catalog name without backups', () => {
  it('says in plain words that there is no finished backup, and where it looked', async () => {
    const exit = await restore('never-backed-up');

    expect(exit.code).toBe(1);
    const failure = restoreFailureOf(exit);
    expect(failure.error).toBe(`s3://${moto.bucket} holds no finished backup of database "never-backed-up".`);
  });
});
