/**
 * The restore drill on backups the real backup command wrote (run as its own process against a
 * throwaway PostgreSQL and the local S3 server). The drill itself runs in-process, as the drill
 * command runs it, so each test can see the throwaway cluster it started and check that it was
 * stopped and removed. Every scenario has its own catalog name.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import type pg from 'pg';
import { DRILL_ROOT_PREFIX, encodeDatabaseSegment } from '../catalog/keys.ts';
import type { Backup } from '../catalog/listing.ts';
import { mergeTags, verificationTags } from '../catalog/verification.ts';
import { recordAwsCalls } from '../scripts/aws-call-recorder.ts';
import { startLocalS3, type LocalS3 } from '../scripts/local-s3.ts';
import { loadDrillConfig, runDrill, type DrillOutcome } from '../task/drill.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../task/throwaway-cluster.ts';
import { backUpWithTask, withClient } from './support/backup-harness.ts';

const SOURCE_DATABASE = 'tiny';

let source: ThrowawayCluster;
let localS3: LocalS3;
let s3: S3Client;

beforeAll(async () => {
  [source, localS3] = await Promise.all([startThrowawayCluster(), startLocalS3({ bucket: 'pgkeep-drill-test' })]);
  s3 = localS3.client();
  await source.createDatabase(SOURCE_DATABASE);
  await withClient(source.connectionString(SOURCE_DATABASE), createTinyDatabase);
});

afterAll(async () => {
  await localS3?.stop();
  await source?.stop();
});

async function createTinyDatabase(client: pg.Client): Promise<void> {
  await client.query('CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL)');
  await client.query('CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric(10, 2) NOT NULL)');
  await client.query("INSERT INTO customers SELECT g, 'customer ' || md5(g::text) FROM generate_series(1, 2000) g");
  await client.query('INSERT INTO orders SELECT g, 1 + g % 2000, (g % 997) / 3.0 FROM generate_series(1, 10000) g');
}

function backUp(catalogName: string): Promise<Backup> {
  return backUpWithTask(s3, localS3, source.env(SOURCE_DATABASE), catalogName);
}

/** What verify-backup records on a backup that passed its check. */
async function markVerified(backup: Backup): Promise<void> {
  await mergeTags(s3, localS3.bucket, backup.dataKey, verificationTags({ status: 'verified', method: 'sha256', at: new Date() }));
}

async function flipMiddleByte(key: string): Promise<void> {
  const object = await s3.send(new GetObjectCommand({ Bucket: localS3.bucket, Key: key }));
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
  await s3.send(new PutObjectCommand({ Bucket: localS3.bucket, Key: key, Body: bytes }));
}

/** Runs the drill for one database, recording the throwaway clusters it starts. */
async function drill(database: string): Promise<{ outcome: DrillOutcome; clusters: ThrowawayCluster[] }> {
  const config = loadDrillConfig({ ...localS3.taskEnvironment(), PGKEEP_ENVIRONMENT: 'test', PGKEEP_DRILL_DATABASES: JSON.stringify([database]) });
  const clusters: ThrowawayCluster[] = [];
  const outcomes = await runDrill(config, {
    // Its own client, so the drill's calls are recorded for the authorization model and the set-up's are not.
    s3: recordAwsCalls('drill', localS3.client()),
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

async function drillRecords(database: string): Promise<{ key: string; record: Record<string, unknown> }[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: localS3.bucket, Prefix: `${DRILL_ROOT_PREFIX}${encodeDatabaseSegment(database)}/` }));
  const records: { key: string; record: Record<string, unknown> }[] = [];
  for (const { Key: key } of listed.Contents ?? []) {
    const object = await s3.send(new GetObjectCommand({ Bucket: localS3.bucket, Key: key }));
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
  it('restores the newest verified backup into a throwaway cluster, compares every table and records a passing drill', async () => {
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
    expect(records[0]!.record).toMatchObject({ kind: 'pgkeep-restore-drill', database, ok: true, backupId: backup.backupId, tablesCompared: 2, sha256Verified: true, mismatches: [] });
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

  it('fails on a verified backup whose object was corrupted afterwards, and still stops and removes its throwaway cluster', async () => {
    // Arrange: verified first, damaged later (rewriting the object drops its tags, so they are set again).
    const database = 'drill-corrupted';
    const backup = await backUp(database);
    await flipMiddleByte(backup.dataKey);
    await markVerified(backup);

    // Act
    const { outcome, clusters } = await drill(database);

    // Assert
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain(backup.dataKey);
    expect(outcome.error).toMatch(/SHA-256/);
    expect(outcome.restoreSeconds).toBeUndefined();
    const [entry] = await drillRecords(database);
    expect(entry!.record).toMatchObject({ database, ok: false, backupId: backup.backupId, sha256Verified: false });
    expect(clusters).toHaveLength(1);
    expectStoppedAndRemoved(clusters[0]!);
  });
});
