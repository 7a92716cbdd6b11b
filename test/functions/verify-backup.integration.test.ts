/**
 * verify-backup against backups the real backup task wrote: the task runs as its own process
 * against a throwaway PostgreSQL and an S3 server, then each test damages its own backup (its own
 * catalog name) the way things go wrong in a bucket and runs the function's code on it.
 *
 * Twice, because verification has two paths and each needs its own kind of store:
 * - fauxqs reports no checksums, like the S3-compatible stores `npm start` and PGKEEP_S3_ENDPOINT
 *   users run, so the manifest says s3ChecksumEnforced: false and verification recomputes SHA-256;
 * - moto, shaped like the stacks' bucket (versioned, Object Lock, the task sending CRC64NVME),
 *   stores and reports the full-object CRC64NVME, so verification compares it in one HeadObject.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import type pg from 'pg';
import type { Backup } from '../../runtime/listing.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { VERIFICATION_TAG, readTags } from '../../runtime/verification.ts';
import { collectingAlertSink } from '../../functions/shared/alerts.ts';
import { handleS3Event } from '../../functions/verify-backup/handler.ts';
import { processManifest, type VerifyDependencies } from '../../functions/verify-backup/process.ts';
import { verifyBackup } from '../../functions/verify-backup/verify.ts';
import { recordAwsCalls } from '../support/aws-call-recorder.ts';
import { objectCreatedEvent } from '../../dev/s3-event.ts';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';
import { startMotoS3 } from '../support/moto-s3.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { backUpWithTask, manifestOf, withClient } from '../support/backup-harness.ts';

const SOURCE_DATABASE = 'tiny';
/** One catalog name per test, so no test sees another's damage or tags. */
const CATALOG = {
  intact: 'verify-intact',
  flipped: 'verify-flipped',
  missingData: 'verify-missing-data',
  schemaOnlyManifest: 'verify-bad-manifest',
  invalidJsonManifest: 'verify-invalid-json',
  // A space and a '+', which S3 event keys encode ('+' and %2B), on top of pgkeep's own %XX.
  redelivered: 'verify again+1',
  tooLarge: 'verify-too-large',
  replacedWithoutCrc: 'verify-replaced-without-crc',
} as const;
const STATUS_METRICS: readonly string[] = [METRIC.backupVerified, METRIC.backupVerificationFailed, METRIC.backupUnverifiable];

/** The two stores, and the check verification can make on each. */
const STORES = [
  { name: 'on a store that reports no checksums (fauxqs): SHA-256 recomputed', method: 'sha256', start: () => startLocalS3({ bucket: 'pgkeep-verify-test' }) },
  {
    name: 'on an Object-Lock bucket with S3 checksums (moto): CRC64NVME compared',
    method: 'crc64nvme',
    start: () => startMotoS3({ bucket: 'pgkeep-verify-test' }),
  },
] as const;

let cluster: ThrowawayCluster;
/** The store of the describe block that runs (they run one after the other). */
let store: LocalS3;
let s3: S3Client;
const backups = new Map<string, Backup>();

beforeAll(async () => {
  cluster = await startThrowawayCluster();
  await cluster.createDatabase(SOURCE_DATABASE);
  await withClient(cluster.connectionString(SOURCE_DATABASE), createTinyDatabase);
});

afterAll(async () => {
  await cluster?.stop();
});

/** Starts the store and has the task write one backup per catalog name into it. */
async function startStoreWithBackups(start: () => Promise<LocalS3>): Promise<void> {
  store = await start();
  s3 = store.client();
  backups.clear();
  // Two at a time: the machine has two cores.
  const names = Object.values(CATALOG);
  for (let first = 0; first < names.length; first += 2) {
    await Promise.all(names.slice(first, first + 2).map(runBackup));
  }
}

async function createTinyDatabase(client: pg.Client): Promise<void> {
  await client.query('CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL)');
  await client.query('CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric(10, 2) NOT NULL)');
  await client.query('CREATE TABLE audit_log (id serial PRIMARY KEY, note text)');
  await client.query("INSERT INTO customers SELECT g, 'customer ' || md5(g::text) FROM generate_series(1, 2000) g");
  await client.query('INSERT INTO orders SELECT g, 1 + g % 2000, (g % 997) / 3.0 FROM generate_series(1, 10000) g');
}

async function runBackup(catalogName: string): Promise<void> {
  backups.set(catalogName, await backUpWithTask(s3, store, cluster.env(SOURCE_DATABASE), catalogName));
}

function backupOf(catalogName: string): Backup {
  const backup = backups.get(catalogName);
  if (!backup) throw new Error(`no backup was made for ${catalogName}`);
  return backup;
}

function dependencies(overrides: Partial<VerifyDependencies> = {}) {
  const metrics = collectingSink();
  const alerts = collectingAlertSink();
  const deps: VerifyDependencies = {
    // Its own client, so the function's calls are recorded for the authorization model and the set-up's are not.
    s3: recordAwsCalls('verify-backup', store.client()),
    metrics,
    alerts,
    logger: new Logger({ logLevel: 'SILENT' }),
    environment: 'test',
    maxStreamBytes: 64 * 2 ** 20,
    ...overrides,
  };
  return { deps, metrics, alerts };
}

async function tagsOf(key: string): Promise<Record<string, string>> {
  return Object.fromEntries((await readTags(s3, store.bucket, key)).map((tag): [string, string] => [tag.Key ?? '', tag.Value ?? '']));
}

function statusMetricsIn(published: readonly { MetricName?: string | undefined }[]): string[] {
  return published.map((datum) => datum.MetricName ?? '').filter((name) => STATUS_METRICS.includes(name));
}

/**
 * Rewrites the data object with one byte inverted in the middle: same size, different content.
 * With `withCrc64Nvme`, S3 stores the CRC64NVME of the damaged bytes (the write a careful
 * tool would make); without it, the checksum the client's defaults give (none, or CRC32).
 */
async function flipMiddleByte(key: string, options: { withCrc64Nvme?: boolean } = {}): Promise<void> {
  const object = await s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
  await s3.send(
    new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: bytes, ...(options.withCrc64Nvme ? { ChecksumAlgorithm: 'CRC64NVME' as const } : {}) }),
  );
}

describe.each(STORES)('verify-backup on a backup the task wrote, $name', ({ method, start }) => {
  beforeAll(() => startStoreWithBackups(start));
  afterAll(async () => {
    await store?.stop();
  });

  it(`verifies an intact backup by its ${method} and tags the data object verified`, async () => {
    // Arrange
    const backup = backupOf(CATALOG.intact);
    const manifest = await manifestOf(s3, store.bucket, backup);
    const { deps, metrics, alerts } = dependencies();

    // Act
    const result = await processManifest(deps, { bucket: store.bucket, manifestKey: backup.manifestKey });

    // Assert
    expect(manifest.object.s3ChecksumEnforced).toBe(method === 'crc64nvme');
    expect(result).toMatchObject({ status: 'verified', method, problems: [], duplicate: false, dataObjectExists: true, dataKey: backup.dataKey });
    expect(await tagsOf(backup.dataKey)).toMatchObject({ [VERIFICATION_TAG]: 'verified', 'pgkeep:verification-method': method });
    expect(await tagsOf(backup.manifestKey)).toMatchObject({ [VERIFICATION_TAG]: 'verified' });
    expect(statusMetricsIn(metrics.published)).toEqual([METRIC.backupVerified]);
    expect(alerts.sent).toEqual([]);
  });

  it('fails a backup whose data object had a byte flipped (same size), naming the object', async () => {
    // Arrange
    const backup = backupOf(CATALOG.flipped);
    await flipMiddleByte(backup.dataKey, { withCrc64Nvme: method === 'crc64nvme' });
    const head = await s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: backup.dataKey }));
    expect(head.ContentLength).toBe(backup.dataBytes);
    const { deps, metrics, alerts } = dependencies();

    // Act
    const result = await processManifest(deps, { bucket: store.bucket, manifestKey: backup.manifestKey });

    // Assert
    expect(result.status).toBe('failed');
    expect(result.method).toBe(method);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toContain(`s3://${store.bucket}/${backup.dataKey}`);
    expect(result.remedy).toContain('Do not restore from it');
    expect(await tagsOf(backup.dataKey)).toMatchObject({ [VERIFICATION_TAG]: 'failed' });
    expect(statusMetricsIn(metrics.published)).toEqual([METRIC.backupVerificationFailed]);
    expect(alerts.sent).toHaveLength(1);
    expect(alerts.sent[0]?.message).toContain(backup.dataKey);
  });

  it('fails a backup whose data object is gone, saying so, and tags the manifest instead', async () => {
    // Arrange
    const backup = backupOf(CATALOG.missingData);
    await s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: backup.dataKey }));
    const { deps, metrics, alerts } = dependencies();

    // Act
    const result = await processManifest(deps, { bucket: store.bucket, manifestKey: backup.manifestKey });

    // Assert
    expect(result.status).toBe('failed');
    expect(result.dataObjectExists).toBe(false);
    expect(result.problems).toEqual([`the data object s3://${store.bucket}/${backup.dataKey} named by the manifest does not exist.`]);
    expect(result.remedy).toContain('Run a new backup');
    expect(await tagsOf(backup.manifestKey)).toMatchObject({ [VERIFICATION_TAG]: 'failed' });
    expect(statusMetricsIn(metrics.published)).toEqual([METRIC.backupVerificationFailed]);
    expect(alerts.sent).toHaveLength(1);
  });

  it.each([
    ['a manifest with only a schemaVersion', CATALOG.schemaOnlyManifest, '{"schemaVersion":1}', /^manifest field backupId: /],
    ['a manifest that is not JSON', CATALOG.invalidJsonManifest, '{"schemaVersion": 1,', /is not valid JSON/],
  ])('fails %s, naming what is wrong, without throwing', async (_label, catalogName, manifestText, expectedProblem) => {
    // Arrange
    const backup = backupOf(catalogName);
    await s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: backup.manifestKey, Body: manifestText }));
    const { deps, metrics, alerts } = dependencies();

    // Act
    const result = await processManifest(deps, { bucket: store.bucket, manifestKey: backup.manifestKey });

    // Assert
    expect(result.status).toBe('failed');
    expect(result.problems).toEqual(expect.arrayContaining([expect.stringMatching(expectedProblem)]));
    expect(result.remedy).toContain('malformed');
    expect(result.remedy).toContain('do not restore from it');
    expect(statusMetricsIn(metrics.published)).toEqual([METRIC.backupVerificationFailed]);
    expect(alerts.sent).toHaveLength(1);
    expect(await tagsOf(backup.manifestKey)).toMatchObject({ [VERIFICATION_TAG]: 'failed' });
  });

  it('recognises a second delivery of the same S3 event: nothing is counted or alerted twice', async () => {
    // Arrange: a damaged backup, so the first delivery both counts and alerts.
    const backup = backupOf(CATALOG.redelivered);
    expect(backup.manifestKey).toContain('/verify%20again%2B1/');
    await flipMiddleByte(backup.dataKey);
    const event = objectCreatedEvent(store.bucket, backup.manifestKey);
    const { deps, metrics, alerts } = dependencies();

    // Act
    const [first] = await handleS3Event(deps, event);
    const [second] = await handleS3Event(deps, event);

    // Assert
    expect(first).toMatchObject({ manifestKey: backup.manifestKey, database: CATALOG.redelivered, status: 'failed', duplicate: false });
    expect(second).toMatchObject({ manifestKey: backup.manifestKey, status: 'failed', duplicate: true });
    expect(statusMetricsIn(metrics.published)).toEqual([METRIC.backupVerificationFailed]);
    expect(alerts.sent).toHaveLength(1);
  });

  if (method === 'sha256') {
    it('reports an object larger than it may stream as unverifiable, never verified', async () => {
      // Arrange
      const backup = backupOf(CATALOG.tooLarge);
      const maxStreamBytes = 1024;
      expect(backup.dataBytes).toBeGreaterThan(maxStreamBytes);
      const { deps, metrics, alerts } = dependencies({ maxStreamBytes });

      // Act
      const result = await processManifest(deps, { bucket: store.bucket, manifestKey: backup.manifestKey });

      // Assert
      expect(result.status).toBe('unverifiable');
      expect(result.problems[0]).toContain(`more than the ${maxStreamBytes} this function streams`);
      expect(result.remedy).toContain('restore drill');
      expect(await tagsOf(backup.dataKey)).toMatchObject({ [VERIFICATION_TAG]: 'unverifiable' });
      expect(statusMetricsIn(metrics.published)).toEqual([METRIC.backupUnverifiable]);
      expect(alerts.sent).toHaveLength(1);
      expect(alerts.sent[0]?.subject).toContain('could not be verified');
    });

    it('reports unverifiable, never verified, when hashing cannot finish before the deadline', async () => {
      // Arrange: verifyBackup itself reads no tags, so the intact backup can be checked again.
      const backup = backupOf(CATALOG.intact);
      const alreadyPassed = new Date(Date.now() - 1000);

      // Act
      const report = await verifyBackup({ s3, bucket: store.bucket, manifestKey: backup.manifestKey, maxStreamBytes: 64 * 2 ** 20, deadline: alreadyPassed });

      // Assert
      expect(report.status).toBe('unverifiable');
      expect(report.method).toBe('sha256');
      expect(report.problems[0]).toContain("did not finish before the function's deadline");
    });
  } else {
    it('verifies a backup of any size in one HeadObject, so neither the stream limit nor the deadline applies', async () => {
      // Arrange
      const backup = backupOf(CATALOG.tooLarge);
      const maxStreamBytes = 1024;
      expect(backup.dataBytes).toBeGreaterThan(maxStreamBytes);

      // Act
      const report = await verifyBackup({ s3, bucket: store.bucket, manifestKey: backup.manifestKey, maxStreamBytes, deadline: new Date(Date.now() - 1000) });

      // Assert
      expect(report).toMatchObject({ status: 'verified', method: 'crc64nvme', problems: [] });
    });

    it('fails a backup whose object was replaced by a copy S3 keeps no CRC64NVME for, although the manifest says S3 enforced it', async () => {
      // Arrange: rewritten with the SDK's default checksum (CRC32), as a hand copy would be.
      const backup = backupOf(CATALOG.replacedWithoutCrc);
      await flipMiddleByte(backup.dataKey);
      const { deps, alerts } = dependencies();

      // Act
      const result = await processManifest(deps, { bucket: store.bucket, manifestKey: backup.manifestKey });

      // Assert
      expect(result).toMatchObject({ status: 'failed', method: 'crc64nvme' });
      expect(result.problems).toEqual([
        `S3 reports no CRC64NVME for s3://${store.bucket}/${backup.dataKey}, although it was uploaded with checksums enforced.`,
      ]);
      expect(result.remedy).toContain('restore drill');
      expect(alerts.sent).toHaveLength(1);
    });
  }
});
