/**
 * The restore drill on backups the real backup command wrote (run as its own process against a
 * throwaway PostgreSQL and moto_server). The drill itself runs in-process, as the drill command
 * runs it, with an S3 client configured as the task configures its own (task/s3.ts), so it sends
 * exactly what the task would; each test can see the throwaway cluster it started and check that
 * it was stopped and removed. Every scenario has its own catalog name.
 *
 * Against moto only: the drill's record is audit evidence that must be written to a bucket under
 * Object Lock (which refuses writes without a checksum), and fauxqs models neither that nor
 * versions. A bucket without versioning on the same server holds the backup that is corrupted
 * after verification: on a versioned bucket an overwrite leaves the version the manifest records
 * intact, which is what the drill reads.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { DRILL_ROOT_PREFIX, encodeDatabaseSegment } from '../../catalog/keys.ts';
import type { Backup } from '../../runtime/listing.ts';
import { recordAwsCalls } from '../support/aws-call-recorder.ts';
import { loadDrillConfig, runDrill, type DrillOutcome } from '../../task/drill.ts';
import { createS3Client } from '../../task/s3.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { backUpWithTask, createIncompressibleDatabase, createTinyShop, markBackupVerified, withClient } from '../support/backup-harness.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import { startS3FaultProxy, type S3FaultProxy } from '../support/s3-fault-proxy.ts';

const SOURCE_DATABASE = 'tiny';

let source: ThrowawayCluster;
/** Versioned, Object Lock with default retention: the stacks' bucket with `objectLock`. */
let locked: MotoS3;
let unversioned: MotoS3;
let proxy: S3FaultProxy;
let s3: S3Client;

beforeAll(async () => {
  [source, locked] = await Promise.all([startThrowawayCluster(), startMotoS3({ bucket: 'pgkeep-drill-test' })]);
  unversioned = await locked.addBucket('pgkeep-drill-test-unversioned', { kind: 'unversioned' });
  proxy = await startS3FaultProxy(locked.endpoint);
  s3 = locked.client();
  await source.createDatabase(SOURCE_DATABASE);
  await withClient(source.connectionString(SOURCE_DATABASE), createTinyShop);
});

afterAll(async () => {
  await proxy?.stop();
  await locked?.stop();
  await source?.stop();
});

function backUp(catalogName: string, bucket: MotoS3 = locked, sourceDatabase = SOURCE_DATABASE, settings: Record<string, string> = {}): Promise<Backup> {
  return backUpWithTask(s3, bucket, { ...source.env(sourceDatabase), ...settings }, catalogName);
}

function markVerified(backup: Backup, bucket: MotoS3 = locked): Promise<void> {
  return markBackupVerified(s3, bucket.bucket, backup);
}

async function flipMiddleByte(bucket: string, key: string): Promise<void> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
}

/** Runs the drill for one database as the drill command would, recording the throwaway clusters it starts. */
async function drill(database: string, options: { bucket?: MotoS3; endpoint?: string } = {}): Promise<{ outcome: DrillOutcome; clusters: ThrowawayCluster[] }> {
  const bucket = options.bucket ?? locked;
  const config = loadDrillConfig({
    ...bucket.taskEnvironment(),
    ...(options.endpoint ? { PGKEEP_S3_ENDPOINT: options.endpoint } : {}),
    PGKEEP_ENVIRONMENT: 'test',
    PGKEEP_DRILL_DATABASES: JSON.stringify([database]),
  });
  const clusters: ThrowawayCluster[] = [];
  const outcomes = await runDrill(config, {
    // Its own client, so the drill's calls are recorded for the authorization model and the set-up's are not.
    s3: recordAwsCalls('drill', createS3Client(config.s3, { credentials: bucket.credentials })),
    logger: new Logger({ serviceName: 'pgkeep-drill-test', logLevel: 'SILENT' }),
    signal: new AbortController().signal,
    startCluster: async () => {
      const cluster = await startThrowawayCluster();
      clusters.push(cluster);
      return cluster;
    },
  });
  expect(outcomes).toHaveLength(1);
  return { outcome: outcomes[0]!, clusters };
}

async function drillRecords(database: string, bucket: MotoS3 = locked): Promise<{ key: string; record: Record<string, unknown> }[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: `${DRILL_ROOT_PREFIX}${encodeDatabaseSegment(database)}/` }));
  const records: { key: string; record: Record<string, unknown> }[] = [];
  for (const { Key: key } of listed.Contents ?? []) {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: key }));
    records.push({ key: key!, record: JSON.parse(await object.Body!.transformToString()) as Record<string, unknown> });
  }
  return records;
}

/** Its server no longer runs (a zombie awaiting its reaper counts as stopped) and its files are gone. */
function expectStoppedAndRemoved(cluster: ThrowawayCluster): void {
  expect(existsSync(cluster.dataDir)).toBe(false);
  expect(runningProcessesNaming(cluster.dataDir)).toEqual([]);
}

/** PIDs of live processes whose command line names this directory (postgres -D <dataDir>). */
function runningProcessesNaming(directory: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (commandLine.includes(directory) && state !== 'Z' && state !== 'X') pids.push(Number(entry));
    } catch {
      // The process ended while being looked at.
    }
  }
  return pids;
}

describe('the restore drill', () => {
  it('restores the newest verified backup into a throwaway cluster, compares every table and records a passing drill in the Object-Lock bucket', async () => {
    // Arrange
    const database = 'drill-verified';
    const backup = await backUp(database);
    await markVerified(backup);

    // Act
    const { outcome, clusters } = await drill(database);

    // Assert
    expect(outcome.error).toBeUndefined();
    expect(outcome).toMatchObject({ database, ok: true, backupId: backup.backupId, backupStartedAt: backup.startedAt.toISOString(), mismatches: [] });
    expect(outcome.tablesCompared).toBe(2);
    expect(outcome.restoreSeconds).toBeGreaterThan(0);
    const records = await drillRecords(database);
    expect(records.map((entry) => entry.key)).toEqual([outcome.recordKey]);
    expect(records[0]!.record).toMatchObject({
      kind: 'pgkeep-restore-drill',
      database,
      ok: true,
      backupId: backup.backupId,
      tablesCompared: 2,
      sha256Verified: true,
      mismatches: [],
    });
    expect(clusters).toHaveLength(1);
    expectStoppedAndRemoved(clusters[0]!);
  });

  it('fails, and records the failure, for a database whose only backup is not verified, starting no cluster', async () => {
    // Arrange
    const database = 'drill-unverified';
    await backUp(database);

    // Act
    const { outcome, clusters } = await drill(database);

    // Assert
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain('has no verified backup to drill');
    const records = await drillRecords(database);
    expect(records).toHaveLength(1);
    expect(records[0]!.record).toMatchObject({ database, ok: false, sha256Verified: false });
    expect(String(records[0]!.record.error)).toContain('no verified backup');
    expect(clusters).toEqual([]);
  });

  it('fails on a verified backup whose object was corrupted afterwards (a bucket without versions), and still stops and removes its throwaway cluster', async () => {
    // Arrange: verified first, damaged later (rewriting the object drops its tags, so they are set again).
    const database = 'drill-corrupted';
    const backup = await backUp(database, unversioned);
    await flipMiddleByte(unversioned.bucket, backup.dataKey);
    await markVerified(backup, unversioned);

    // Act
    const { outcome, clusters } = await drill(database, { bucket: unversioned });

    // Assert
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain(backup.dataKey);
    expect(outcome.error).toMatch(/SHA-256/);
    expect(outcome.restoreSeconds).toBeUndefined();
    const [entry] = await drillRecords(database, unversioned);
    expect(entry!.record).toMatchObject({ database, ok: false, backupId: backup.backupId, sha256Verified: false });
    expect(clusters).toHaveLength(1);
    expectStoppedAndRemoved(clusters[0]!);
  });

  it('fails when its record cannot be written, even though the restore passed: a drill without audit evidence has not passed', async () => {
    // Arrange: S3 denies the record's PutObject (a role without s3:PutObject on drills/).
    const database = 'drill-record-denied';
    const backup = await backUp(database);
    await markVerified(backup);
    const recordPrefix = `/${locked.bucket}/${DRILL_ROOT_PREFIX}${encodeDatabaseSegment(database)}/`;
    proxy.rejectRequests((request) => request.method === 'PUT' && request.path.startsWith(recordPrefix), {
      status: 403,
      code: 'AccessDenied',
      message: 'Access Denied',
    });

    // Act
    const { outcome, clusters } = await drill(database, { endpoint: proxy.endpoint });

    // Assert
    expect(outcome).toMatchObject({ ok: false, backupId: backup.backupId, mismatches: [], recordKey: undefined });
    expect(outcome.tablesCompared).toBe(2);
    expect(outcome.error).toMatch(
      /^The restore passed, but its drill record s3:\/\/pgkeep-drill-test\/drills\/drill-record-denied\/\S+ could not be written, so the drill left no audit evidence: S3 denied access/,
    );
    expect(outcome.error).toContain('s3:PutObject');
    expect(await drillRecords(database)).toEqual([]);
    expectStoppedAndRemoved(clusters[0]!);
  });

  it("records pg_restore's own error when the restore stops early, not the broken pipe zstd then dies of", async () => {
    // Arrange: a user mapping names a role; restoring without ownership and privileges still
    // creates it, and the throwaway cluster has none of production's roles. 4 MiB of rows follow
    // it, so zstd is still writing when pg_restore stops.
    const database = 'drill-missing-role';
    await createIncompressibleDatabase(source, 'with_user_mapping', 4);
    await withClient(source.connectionString('postgres'), (client) => client.query('CREATE ROLE reporting'));
    await withClient(source.connectionString('with_user_mapping'), async (client) => {
      await client.query('CREATE EXTENSION postgres_fdw');
      await client.query("CREATE SERVER warehouse FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'warehouse.internal', dbname 'dw')");
      await client.query("CREATE USER MAPPING FOR reporting SERVER warehouse OPTIONS (user 'reporting_ro')");
    });
    const backup = await backUp(database, locked, 'with_user_mapping');
    await markVerified(backup);

    // Act
    const { outcome, clusters } = await drill(database);

    // Assert
    expect(outcome.ok).toBe(false);
    const [entry] = await drillRecords(database);
    const recorded = String(entry!.record.error);
    expect(recorded).toMatch(/^pg_restore \S+ failed: /);
    expect(recorded).toContain('role "reporting" does not exist');
    expect(recorded).not.toMatch(/zstd|damaged/);
    // The drill already restores without ownership: its advice must not be to set that.
    expect(recorded).not.toContain('PGKEEP_RESTORE_NO_OWNER');
    expect(recorded).toContain('throwaway');
    expect(entry!.record).toMatchObject({ ok: false, backupId: backup.backupId, failedStage: 'restore' });
    expectStoppedAndRemoved(clusters[0]!);
  });

  it('compares tables the manifest only estimates with a count in the restored database, and records how each table was compared', async () => {
    // Arrange: with PGKEEP_EXACT_COUNT_MAX_MB=0 every table gets a planner estimate (it was analyzed).
    const database = 'drill-estimates';
    await withClient(source.connectionString(SOURCE_DATABASE), (client) => client.query('ANALYZE'));
    const backup = await backUp(database, locked, SOURCE_DATABASE, { PGKEEP_EXACT_COUNT_MAX_MB: '0' });
    await markVerified(backup);

    // Act
    const { outcome } = await drill(database);

    // Assert
    expect(outcome.error).toBeUndefined();
    expect(outcome).toMatchObject({ ok: true, tablesCompared: 0, tablesComparedWithEstimate: 2, tablesNotCompared: [] });
    const [entry] = await drillRecords(database);
    expect(entry!.record).toMatchObject({ ok: true, tablesCompared: 0, tablesComparedWithEstimate: 2, tablesNotCompared: [], mismatches: [] });
  });
});
