/**
 * The backup fault matrix: every fault injected from outside the task, into real servers, while
 * the task runs as its own process (dev/task-process.ts), as in the container.
 *
 * - PostgreSQL: a throwaway cluster; faults by pg_terminate_backend, a database setting, a table
 *   lock held by another session, or a TCP proxy (test/support/tcp-fault-proxy.ts) that cuts or
 *   black-holes the task's connections.
 * - S3: moto_server, through an HTTP proxy per case (test/support/s3-fault-proxy.ts) that kills,
 *   black-holes, delays, holds or loses answers. moto, not fauxqs: "no upload left" is
 *   ListMultipartUploads, which only moto implements.
 * - CloudWatch: a loopback endpoint that records PutMetricData, so the BackupFailed metric is real.
 *
 * For every case: the exit code; the failure line's stage and remedy, both the specific ones for
 * that fault; no manifest for a failed backup; no multipart upload left wherever S3 was reachable
 * when the task cleaned up. SIGKILL leaves the task no cleanup: those cases assert what is left
 * and that nothing of it can be mistaken for a backup.
 *
 * Cases run concurrently (most of their time is waiting for timeouts), each on its own proxy and
 * catalog name; cases that look at database sessions or hold locks get their own database.
 * Deadlines and timeouts are shortened through the task's own settings.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, it, type ExpectStatic } from 'vitest';
import { listCatalogEntries } from '../../runtime/listing.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { startTask, type RunningTask, type TaskExit, type TaskLogLine } from '../../dev/task-process.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { catalogState, childPid, createIncompressibleDatabase, openUploads, withClient } from '../support/backup-harness.ts';
import { startLocalCloudWatch, type LocalCloudWatch } from '../support/local-cloudwatch.ts';
import { startMotoS3, type MotoS3 } from '../support/moto-s3.ts';
import {
  isAbortUpload,
  isCompleteUpload,
  isCreateUpload,
  isPartUpload,
  startS3FaultProxy,
  type RecordedRequest,
  type S3FaultProxy,
} from '../support/s3-fault-proxy.ts';
import { startTcpFaultProxy, type TcpFaultProxy } from '../support/tcp-fault-proxy.ts';

let cluster: ThrowawayCluster;
let moto: MotoS3;
/** Shaped like the stacks' bucket (Object Lock, CRC64NVME): for the case whose outcome hangs on the checksum check. */
let locked: MotoS3;
let s3: S3Client;
let cloudWatch: LocalCloudWatch;
const proxies: S3FaultProxy[] = [];
const tcpProxies: TcpFaultProxy[] = [];

/** ~28 MiB of incompressible rows: with 6 MiB parts and 2 in flight, pg_dump is still running when the first part is held. */
const SHARED = 'bulk';
const OWN_DATABASES = ['terminated_session', 'terminated_dump', 'idle_timeout', 'cut_connection'] as const;
const LOCKED_DATABASES = ['locked_timeout', 'locked_sigterm'] as const;

beforeAll(async () => {
  // Most cases use an unversioned bucket without S3 checksums: moto computes CRC64NVME in Python
  // (test/support/moto-python), seconds per 30 MB completion on a loaded machine, and these cases
  // are about failures, not checksums (test/task/backup.integration.test.ts covers those).
  [cluster, moto, cloudWatch] = await Promise.all([
    startThrowawayCluster(),
    startMotoS3({ bucket: 'pgkeep-faults', shape: { kind: 'unversioned' } }),
    startLocalCloudWatch(),
  ]);
  locked = await moto.addBucket('pgkeep-faults-locked', { kind: 'object-lock', mode: 'GOVERNANCE', days: 1 });
  s3 = moto.client();
  for (const name of [SHARED, ...OWN_DATABASES]) await createIncompressibleDatabase(cluster, name, 28);
  for (const name of LOCKED_DATABASES) {
    await cluster.createDatabase(name);
    await withClient(cluster.connectionString(name), (client) =>
      client.query("CREATE TABLE accounts AS SELECT g AS id, 'account ' || g AS owner FROM generate_series(1, 1000) g"),
    );
  }
  // What RDS parameter groups often set; pgkeep must turn it off for its own session, as pg_dump does.
  await withClient(cluster.connectionString(), (client) => client.query("ALTER DATABASE idle_timeout SET idle_in_transaction_session_timeout = '1s'"));
});

afterAll(async () => {
  await Promise.all([...proxies, ...tcpProxies].map((proxy) => proxy.stop()));
  await cloudWatch?.stop();
  await moto?.stop();
  await cluster?.stop();
});

async function newProxy(): Promise<S3FaultProxy> {
  const proxy = await startS3FaultProxy(moto.endpoint);
  proxies.push(proxy);
  return proxy;
}

function startBackup(
  catalogName: string,
  proxy: S3FaultProxy,
  options: { database?: string; env?: Record<string, string>; bucket?: MotoS3 } = {},
): RunningTask {
  const bucket = options.bucket ?? moto;
  return startTask({
    command: 'backup',
    env: {
      ...cluster.env(options.database ?? SHARED),
      ...bucket.taskEnvironment(),
      ...(bucket === moto ? { PGKEEP_S3_CHECKSUM: 'none' } : {}),
      PGKEEP_S3_ENDPOINT: proxy.endpoint,
      PGKEEP_ENVIRONMENT: 'test',
      PGKEEP_DATABASE_NAME: catalogName,
      PGKEEP_PART_SIZE_MIB: '6',
      // Short enough for the black-hole cases to finish soon, long enough for moto on a loaded machine.
      PGKEEP_S3_REQUEST_TIMEOUT_SECONDS: '10',
      PGKEEP_PROGRESS_SECONDS: '1',
      PGKEEP_METRICS: 'cloudwatch',
      AWS_ENDPOINT_URL_CLOUDWATCH: cloudWatch.endpoint,
      ...options.env,
    },
  });
}

const forCatalog =
  (catalogName: string) =>
  (request: RecordedRequest): boolean =>
    request.path.includes(`/${catalogName}/`);
const firstPart =
  (catalogName: string) =>
  (request: RecordedRequest): boolean =>
    isPartUpload(request) && forCatalog(catalogName)(request);
const isManifestPut = (request: RecordedRequest): boolean => request.method === 'PUT' && request.path.endsWith('.manifest.json');

function failureOf(exit: TaskExit): TaskLogLine {
  const failure = exit.logs.find((line) => line.message === 'backup failed');
  if (!failure)
    throw new Error(
      `no failure line was logged; exit ${exit.code}, logs: ${JSON.stringify(exit.logs.map((line) => line.message))}, other output: ${exit.otherOutput.slice(0, 5).join(' | ')}`,
    );
  return failure;
}

/** The four things every failure must show, and the BackupFailed metric. */
async function expectFailedBackup(
  expect: ExpectStatic,
  exit: TaskExit,
  catalogName: string,
  expected: { code: number; stage: string; error: RegExp; remedy: RegExp; uploadsLeft?: number },
): Promise<void> {
  expect(exit.code).toBe(expected.code);
  const failure = failureOf(exit);
  expect({ stage: failure.stage, error: String(failure.error), remedy: String(failure.remedy) }).toEqual({
    stage: expected.stage,
    error: expected.error.exec(String(failure.error))?.input,
    remedy: expected.remedy.exec(String(failure.remedy))?.input,
  });
  expect(exit.otherOutput).toEqual([]);
  expect((await catalogState(s3, moto.bucket, catalogName)).manifests).toBe(0);
  expect(await openUploads(s3, moto.bucket, catalogName)).toHaveLength(expected.uploadsLeft ?? 0);
  expect(
    cloudWatch.metrics.filter((metric) => metric.name === METRIC.backupFailed && metric.dimensions.Database === catalogName).map((metric) => metric.value),
  ).toEqual([1]);
}

/** The task's sessions (its own and pg_dump's) still on the server, waited for a little: a backend exits just after its client. */
async function taskBackendsLeft(database: string): Promise<number> {
  let count = 0;
  for (let attempt = 0; attempt < 20; attempt += 1) {
    count = await withClient(cluster.connectionString(), async (client) => {
      const { rows } = await client.query<{ count: string }>(
        "SELECT count(*) AS count FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgkeep-backup%'",
        [database],
      );
      return Number(rows[0]?.count);
    });
    if (count === 0) return 0;
    await sleep(250);
  }
  return count;
}

async function waitFor(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Holds ACCESS EXCLUSIVE on a table, as a long migration does, until released. */
async function lockTable(database: string, table: string): Promise<{ release(): Promise<void> }> {
  const { default: pg } = await import('pg');
  const holder = new pg.Client({ connectionString: cluster.connectionString(database) });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  return { release: async () => holder.query('ROLLBACK').then(() => holder.end()) };
}

async function terminate(database: string, which: 'pg_dump' | 'task session'): Promise<void> {
  await withClient(cluster.connectionString(), async (client) => {
    // pg_dump is blocked mid-COPY (its output is held); the task's session sits idle in its transaction.
    const filter = which === 'pg_dump' ? "query LIKE 'COPY %'" : "query NOT LIKE 'COPY %' AND state = 'idle in transaction'";
    const { rows } = await client.query<{ terminated: boolean }>(
      `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgkeep-backup' AND ${filter}`,
      [database],
    );
    if (rows.length !== 1 || !rows[0]?.terminated) throw new Error(`expected to terminate exactly one ${which} backend, got ${JSON.stringify(rows)}`);
  });
}

describe.concurrent('the backup task under faults', () => {
  describe('S3 faults', () => {
    it('killed S3 endpoint mid-upload: retries, fails at the upload naming the network path, and aborts the upload once S3 is back', async ({ expect }) => {
      const proxy = await newProxy();
      proxy.holdPartUploads();
      const task = startBackup('s3-killed', proxy);
      await proxy.waitForRequest(firstPart('s3-killed'));

      await proxy.goDown();
      await task.waitForLog((line) => line.message === 'could not abort the multipart upload yet; retrying');
      await proxy.comeBack();
      proxy.releasePartUploads();
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 's3-killed', {
        code: 1,
        stage: 'upload',
        error: /^Could not reach S3 for s3:\/\/pgkeep-faults\/backups\/s3-killed\//,
        remedy: /^Check the network path to S3 .* The upload was aborted and no manifest was written\.$/,
      });
    });

    it('black-holed S3: each request times out after PGKEEP_S3_REQUEST_TIMEOUT_SECONDS and is retried, then the upload fails and is aborted', async ({
      expect,
    }) => {
      const proxy = await newProxy();
      const task = startBackup('s3-black-hole', proxy, { env: { PGKEEP_S3_REQUEST_TIMEOUT_SECONDS: '2' } });
      await proxy.waitForRequest((request) => isCreateUpload(request) && forCatalog('s3-black-hole')(request));
      proxy.blackHole();
      // The abort's first attempt times out in the black hole too; then the route heals.
      await task.waitForLog((line) => line.message === 'could not abort the multipart upload yet; retrying', 90_000);
      proxy.heal();
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 's3-black-hole', {
        code: 1,
        stage: 'upload',
        error: /^Could not reach S3 .*TimeoutError/,
        remedy: /^Check the network path to S3 .* The upload was aborted and no manifest was written\.$/,
      });
      // The mechanism: the same part was sent again after each timeout (the SDK's retries).
      const firstPartAttempts = proxy.requests.filter((request) => isPartUpload(request) && request.query.get('partNumber') === '1');
      expect(firstPartAttempts.length).toBeGreaterThanOrEqual(3);
    });

    it('slow S3 past PGKEEP_BACKUP_DEADLINE_SECONDS: stops at the deadline, says S3 was the slow side, aborts and releases the snapshot', async ({
      expect,
    }) => {
      const proxy = await newProxy();
      // Each part answered after 20 s (within the 30 s request timeout, so never retried): slow, not
      // dead. No part is answered before the 15 s deadline, so the task is still in the upload stage
      // then whatever the machine's speed: ~28 MiB is more than the 3 parts of 6 MiB it can hold
      // (2 in flight, 1 filling), so pg_dump is still writing. (With 8 s, a fast machine had the
      // first two parts answered and the rest buffered, and was stopped in the complete stage.)
      proxy.delayRequests(isPartUpload, 20_000);
      const task = startBackup('s3-slow', proxy, { env: { PGKEEP_BACKUP_DEADLINE_SECONDS: '15', PGKEEP_S3_REQUEST_TIMEOUT_SECONDS: '30' } });
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 's3-slow', {
        code: 1,
        stage: 'upload',
        error: /^The backup did not finish within PGKEEP_BACKUP_DEADLINE_SECONDS=15: it was stopped in the upload stage, waiting for S3/,
        remedy: /^S3 accepted the data too slowly: .*raise PGKEEP_BACKUP_DEADLINE_SECONDS\. The upload was aborted and no manifest was written\.$/,
      });
    });

    it('lost CompleteMultipartUpload answer: S3 completed, the task finds and checks the object, and finishes the backup with its manifest', async ({
      expect,
    }) => {
      const proxy = await newProxy();
      // Every attempt's answer is lost (the SDK retries CompleteMultipartUpload): S3 completes the first.
      const isThisComplete = (request: RecordedRequest): boolean => isCompleteUpload(request) && forCatalog('complete-answer-lost')(request);
      const [lost] = Array.from({ length: 6 }, () => proxy.loseAnswer(isThisComplete, 'drop'));
      // The stacks' bucket: the object found is checked by size and by S3's own CRC64NVME of it.
      const exit = await startBackup('complete-answer-lost', proxy, { bucket: locked, env: { PGKEEP_S3_REQUEST_TIMEOUT_SECONDS: '60' } }).exited;

      expect((await lost!).status).toBe(200); // S3 did complete it
      expect(exit.code).toBe(0);
      expect(
        exit.logs.some((line) => line.message === 'S3 completed the upload, but its answer was lost; the object was found and checked against what was sent'),
      ).toBe(true);
      expect(await catalogState(s3, locked.bucket, 'complete-answer-lost')).toEqual({ manifests: 1, dataObjects: 1 });
      expect(await openUploads(s3, locked.bucket, 'complete-answer-lost')).toEqual([]);
      expect(exit.logs.some((line) => line.message === 'multipart upload aborted')).toBe(false);
    });
  });

  describe('PostgreSQL faults', () => {
    it("terminated dump backend: fails at the dump, says the database ended pg_dump's session", async ({ expect }) => {
      const proxy = await newProxy();
      proxy.holdPartUploads();
      const task = startBackup('dump-terminated', proxy, { database: 'terminated_dump' });
      await proxy.waitForRequest(firstPart('dump-terminated'));

      await terminate('terminated_dump', 'pg_dump');
      proxy.releasePartUploads();
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 'dump-terminated', {
        code: 1,
        stage: 'dump',
        error: /^pg_dump 15\.\d+ exited with code 1: [\s\S]*(server closed the connection unexpectedly|terminating connection due to administrator command)/,
        remedy: /^The database ended pg_dump's session .* The upload was aborted and no manifest was written\.$/,
      });
      expect(await taskBackendsLeft('terminated_dump')).toBe(0);
    });

    it('terminated snapshot session: no crash; fails at the snapshot naming pg_terminate_backend, aborts the upload, publishes BackupFailed', async ({
      expect,
    }) => {
      const proxy = await newProxy();
      proxy.holdPartUploads();
      const task = startBackup('session-terminated', proxy, { database: 'terminated_session' });
      await proxy.waitForRequest(firstPart('session-terminated'));

      await terminate('terminated_session', 'task session');
      const exit = await task.exited;
      proxy.releasePartUploads();

      await expectFailedBackup(expect, exit, 'session-terminated', {
        code: 1,
        stage: 'snapshot',
        error: /^The database ended the backup's own session, .*terminating connection due to administrator command/,
        remedy: /^Something terminated the session \(pg_terminate_backend.* The upload was aborted and no manifest was written\.$/,
      });
      expect(await taskBackendsLeft('terminated_session')).toBe(0);
    });

    it('idle_in_transaction_session_timeout set on the database: the task turns it off for its own session, as pg_dump does, and the backup succeeds', async ({
      expect,
    }) => {
      const proxy = await newProxy();
      proxy.holdPartUploads();
      const task = startBackup('idle-timeout', proxy, { database: 'idle_timeout' });
      await proxy.waitForRequest(firstPart('idle-timeout'));
      // Idle in its transaction for 2.5 s: more than twice the database's 1 s timeout.
      await sleep(2_500);
      proxy.releasePartUploads();
      const exit = await task.exited;

      expect({ code: exit.code, failure: exit.logs.find((line) => line.message === 'backup failed') }).toEqual({ code: 0, failure: undefined });
      expect(await catalogState(s3, moto.bucket, 'idle-timeout')).toEqual({ manifests: 1, dataObjects: 1 });
    });

    it('PostgreSQL connections cut mid-dump: fails at the snapshot, saying the connection broke', async ({ expect }) => {
      const proxy = await newProxy();
      const pgProxy = await startTcpFaultProxy(cluster.port);
      tcpProxies.push(pgProxy);
      proxy.holdPartUploads();
      const task = startBackup('pg-cut', proxy, { database: 'cut_connection', env: { PGPORT: String(pgProxy.port) } });
      await proxy.waitForRequest(firstPart('pg-cut'));

      pgProxy.cutConnections();
      const exit = await task.exited;
      proxy.releasePartUploads();

      await expectFailedBackup(expect, exit, 'pg-cut', {
        code: 1,
        stage: 'snapshot',
        error: /^The database ended the backup's own session, .*Connection terminated unexpectedly/,
        remedy: /^The connection to the database broke .* The upload was aborted and no manifest was written\.$/,
      });
    });

    it('lock wait timeout: fails at the dump naming the setting, and leaves no session of the task behind while the lock is still held', async ({ expect }) => {
      const lock = await lockTable('locked_timeout', 'accounts');
      try {
        const proxy = await newProxy();
        const exit = await startBackup('lock-timeout', proxy, { database: 'locked_timeout', env: { PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS: '1' } }).exited;

        await expectFailedBackup(expect, exit, 'lock-timeout', {
          code: 1,
          stage: 'dump',
          error: /lock/i,
          remedy: /^A table stayed locked longer than PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS .* The upload was aborted and no manifest was written\.$/,
        });
        // Before: the task's row count stayed queued behind the lock, holding the snapshot, until the holder committed.
        expect(await taskBackendsLeft('locked_timeout')).toBe(0);
      } finally {
        await lock.release();
      }
    });
  });

  describe('SIGTERM at each stage (ECS stopping the task): exit 143, nothing that looks like a backup', () => {
    it('connect: while the database does not answer, stops at once; nothing was uploaded', async ({ expect }) => {
      const proxy = await newProxy();
      const pgProxy = await startTcpFaultProxy(cluster.port);
      tcpProxies.push(pgProxy);
      pgProxy.blackHole();
      const task = startBackup('sigterm-connect', proxy, { env: { PGPORT: String(pgProxy.port) } });
      await waitFor(() => pgProxy.connectionCount() > 0, 'the task to connect', 90_000);

      task.child.kill('SIGTERM');
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 'sigterm-connect', {
        code: 143,
        stage: 'interrupted',
        error: /in the connect stage/,
        remedy: /^Run the backup again\. Nothing was uploaded\.$/,
      });
      expect(proxy.requests.filter(isCreateUpload)).toEqual([]);
    });

    it("dump: while pg_dump and the row count wait for a table lock, cancels the task's own query and leaves no session behind", async ({ expect }) => {
      const lock = await lockTable('locked_sigterm', 'accounts');
      try {
        const proxy = await newProxy();
        const task = startBackup('sigterm-dump', proxy, { database: 'locked_sigterm' });
        await waitFor(
          () =>
            withClient(cluster.connectionString(), async (client) => {
              const { rows } = await client.query<{ count: string }>(
                "SELECT count(*) AS count FROM pg_stat_activity WHERE datname = 'locked_sigterm' AND application_name = 'pgkeep-backup' AND wait_event_type = 'Lock'",
              );
              return Number(rows[0]?.count) === 2; // pg_dump's LOCK TABLE and the task's count(*)
            }),
          'pg_dump and the row count to wait for the lock',
          90_000,
        );

        task.child.kill('SIGTERM');
        const exit = await task.exited;

        await expectFailedBackup(expect, exit, 'sigterm-dump', {
          code: 143,
          stage: 'interrupted',
          error: /in the dump stage/,
          remedy: /^Run the backup again\. The upload was aborted and no manifest was written\.$/,
        });
        expect(await taskBackendsLeft('locked_sigterm')).toBe(0);
      } finally {
        await lock.release();
      }
    });

    it('upload: while a part is in flight, aborts the upload; pg_dump does not outlive the task', async ({ expect }) => {
      const proxy = await newProxy();
      proxy.holdPartUploads();
      const task = startBackup('sigterm-upload', proxy);
      await proxy.waitForRequest(firstPart('sigterm-upload'));
      const pgDumpPid = await childPid(task.child.pid!, 'pg_dump');

      task.child.kill('SIGTERM');
      const exit = await task.exited;
      proxy.releasePartUploads();

      await expectFailedBackup(expect, exit, 'sigterm-upload', {
        code: 143,
        stage: 'interrupted',
        error: /in the upload stage/,
        remedy: /^Run the backup again\. The upload was aborted and no manifest was written\.$/,
      });
      expect(() => process.kill(pgDumpPid, 0)).toThrow();
    });

    it('upload, S3 black-holed: gives up aborting within its cleanup budget and says the upload could not be aborted, naming it', async ({ expect }) => {
      const proxy = await newProxy();
      proxy.holdPartUploads();
      const task = startBackup('sigterm-black-hole', proxy, { env: { PGKEEP_S3_REQUEST_TIMEOUT_SECONDS: '2' } });
      await proxy.waitForRequest(firstPart('sigterm-black-hole'));
      proxy.blackHole();

      const stoppedAt = Date.now();
      task.child.kill('SIGTERM');
      const exit = await task.exited;
      const stopSeconds = (Date.now() - stoppedAt) / 1000;

      const left = await openUploads(s3, moto.bucket, 'sigterm-black-hole');
      const named = /the multipart upload (\S+) of s3:\/\/pgkeep-faults\/(\S+) could not be aborted/.exec(String(failureOf(exit).remedy));
      await expectFailedBackup(expect, exit, 'sigterm-black-hole', {
        code: 143,
        stage: 'interrupted',
        error: /in the upload stage/,
        remedy:
          /^Run the backup again\. No manifest was written, but the multipart upload \S+ of s3:\/\/pgkeep-faults\/\S+ could not be aborted .*aws s3api abort-multipart-upload --bucket pgkeep-faults --key \S+ --upload-id \S+\.$/,
        // On a loaded machine a timed-out CreateMultipartUpload may be retried and leave a second, unknown upload (see the report).
        uploadsLeft: left.length,
      });
      expect(left).toContainEqual({ uploadId: named?.[1], key: named?.[2] });
      expect(failureOf(exit).remedy).not.toMatch(/upload was aborted/);
      // Not a timing assertion: "does not hang", far inside ECS's 120 s stopTimeout (infra/task-definition.ts).
      expect(stopSeconds).toBeLessThan(60);
      for (const upload of left) await s3.send(new AbortMultipartUploadCommand({ Bucket: moto.bucket, Key: upload.key, UploadId: upload.uploadId }));
    });

    it('complete, before S3 saw it: aborts the upload', async ({ expect }) => {
      const proxy = await newProxy();
      proxy.holdRequests(isCompleteUpload);
      const task = startBackup('sigterm-complete', proxy);
      await proxy.waitForRequest((request) => isCompleteUpload(request) && forCatalog('sigterm-complete')(request));

      task.child.kill('SIGTERM');
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 'sigterm-complete', {
        code: 143,
        stage: 'interrupted',
        error: /in the complete stage/,
        remedy: /^Run the backup again\. The upload was aborted and no manifest was written\.$/,
      });
      expect(await catalogState(s3, moto.bucket, 'sigterm-complete')).toEqual({ manifests: 0, dataObjects: 0 });
    });

    it('complete, after S3 completed it but before the answer arrived: says the data object exists without a manifest (data-only), not "aborted"', async ({
      expect,
    }) => {
      const proxy = await newProxy();
      const completed = proxy.loseAnswer((request) => isCompleteUpload(request) && forCatalog('sigterm-completed')(request), 'hold');
      const task = startBackup('sigterm-completed', proxy);
      await completed;

      task.child.kill('SIGTERM');
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 'sigterm-completed', {
        code: 143,
        stage: 'interrupted',
        error: /in the complete stage/,
        remedy:
          /^Run the backup again\. No manifest was written, but S3 had completed the upload, so s3:\/\/pgkeep-faults\/backups\/sigterm-completed\/.*\.dump\.zst exists: .*data-only/,
      });
      expect(exit.logs.some((line) => line.message === 'multipart upload aborted')).toBe(false);
      expect((await listCatalogEntries(s3, { bucket: moto.bucket, database: 'sigterm-completed' })).map((entry) => entry.state)).toEqual(['data-only']);
      expect(proxy.requests.filter(isAbortUpload)).toHaveLength(1);
    });

    it('manifest: while the manifest is being written, says the data object exists without a manifest', async ({ expect }) => {
      const proxy = await newProxy();
      proxy.holdRequests(isManifestPut);
      const task = startBackup('sigterm-manifest', proxy);
      await proxy.waitForRequest((request) => isManifestPut(request) && forCatalog('sigterm-manifest')(request));

      task.child.kill('SIGTERM');
      const exit = await task.exited;

      await expectFailedBackup(expect, exit, 'sigterm-manifest', {
        code: 143,
        stage: 'interrupted',
        error: /in the manifest stage/,
        remedy:
          /^Run the backup again\. No manifest was written, but S3 had completed the upload, so .* exists: a data object without a manifest is not a backup/,
      });
      expect((await listCatalogEntries(s3, { bucket: moto.bucket, database: 'sigterm-manifest' })).map((entry) => entry.state)).toEqual(['data-only']);
    });
  });

  describe('SIGKILL (no cleanup possible): what is left is recognisably not a backup', () => {
    it('upload: leaves only an incomplete multipart upload, which lists as nothing and which the bucket lifecycle rule aborts after 1 day', async ({
      expect,
    }) => {
      const proxy = await newProxy();
      proxy.holdPartUploads();
      const task = startBackup('sigkill-upload', proxy);
      await proxy.waitForRequest(firstPart('sigkill-upload'));
      const pgDumpPid = await childPid(task.child.pid!, 'pg_dump');

      task.child.kill('SIGKILL');
      const exit = await task.exited;
      proxy.releasePartUploads();

      expect(exit.signal).toBe('SIGKILL');
      expect(await catalogState(s3, moto.bucket, 'sigkill-upload')).toEqual({ manifests: 0, dataObjects: 0 });
      const left = await openUploads(s3, moto.bucket, 'sigkill-upload');
      expect(left).toHaveLength(1); // infra/lifecycle.ts: abortIncompleteMultipartUploadAfter (1 day by default)
      await s3.send(new AbortMultipartUploadCommand({ Bucket: moto.bucket, Key: left[0]!.key, UploadId: left[0]!.uploadId }));
      await waitFor(() => {
        try {
          process.kill(pgDumpPid, 0);
          return false;
        } catch {
          return true; // pg_dump ends on the broken pipe once its reader is gone
        }
      }, 'the orphaned pg_dump to end');
    });

    it('complete, after S3 completed it: leaves a data object without a manifest, which the catalog lists as data-only', async ({ expect }) => {
      const proxy = await newProxy();
      const completed = proxy.loseAnswer((request) => isCompleteUpload(request) && forCatalog('sigkill-completed')(request), 'hold');
      const task = startBackup('sigkill-completed', proxy);
      await completed;

      task.child.kill('SIGKILL');
      const exit = await task.exited;

      expect(exit.signal).toBe('SIGKILL');
      expect(await catalogState(s3, moto.bucket, 'sigkill-completed')).toEqual({ manifests: 0, dataObjects: 1 });
      expect((await listCatalogEntries(s3, { bucket: moto.bucket, database: 'sigkill-completed' })).map((entry) => entry.state)).toEqual(['data-only']);
      expect(await openUploads(s3, moto.bucket, 'sigkill-completed')).toEqual([]);
    });
  });
});
