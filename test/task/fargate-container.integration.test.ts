/**
 * Fargate's container rules (issue 11, part 5): the bundled task commands (the file the image runs)
 * run the way ECS runs the container on Fargate, and must still work:
 *
 * - as the image's user (`USER node`: uid/gid 1000 in the node images), never root;
 * - on a read-only root filesystem (the task definitions' readonlyRootFilesystem: true);
 * - with /tmp mounted the way ECS mounts the task's empty volume for this image. AWS documents that
 *   such a bind mount is owned by root with mode 0755 unless the image declares the path with
 *   VOLUME, whose directory (owner and mode) ECS then copies ("By default, the volume permissions
 *   are set to 0755 and the owner as root. These permissions can be customized in the Dockerfile.":
 *   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html, "Considerations").
 *   The test reads which case applies, and the mode, from task/Dockerfile itself;
 * - with nothing else writable, and with exactly the container's environment: the image's (base
 *   image and Dockerfile ENV), what Fargate adds, and the task definition's environment and secrets
 *   as synthesized from the example `dev` environment by the real CDK app. Replaced, because they
 *   only exist in AWS: the bucket (the local S3 server's), the KMS key ARN (a placeholder of the same
 *   form; the local server ignores SSE-KMS), the connection ECS would inject from Secrets Manager
 *   (the throwaway cluster's), and AWS access (static credentials for the task role's, the S3 and
 *   CloudWatch endpoints on loopback). Restores add what an operator adds as container overrides.
 *
 * Each command runs in its own emulated container (test/support/fargate-container.ts says how, and
 * what it cannot emulate), and each run must end with its success log lines and exit code 0, attempt
 * no write outside /tmp (strace logs every refused one: a cache, PostgreSQL's default socket
 * directory, HOME...), and leave nothing behind in /tmp or running. Real parts throughout: PostgreSQL
 * (with TLS, since the task definitions say PGSSLMODE=require), the S3-protocol server, the AWS SDK.
 * Only CloudWatch is a recorder on loopback, because there is none here.
 *
 * Defect 3 is what this catches: without VOLUME ["/tmp"] in the image, /tmp is root's with mode
 * 0755 on Fargate, and the parallel restore and the drill, which need a directory there, fail.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNewestBackup, type Backup } from '../../runtime/listing.ts';
import { parsePgkeepConfig } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import { buildTaskBundle } from '../../task/build.ts';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';
import type { TaskLogLine } from '../../dev/task-process.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { synthesizeEnvironment } from '../support/fixtures/infra-synth.ts';
import { countRows, createTinyShop, markBackupVerified, withClient } from '../support/backup-harness.ts';
import {
  assertCanEmulateFargate,
  assertEmulatedShape,
  containerEnvironment,
  ecsTmpVolume,
  imageFilesParent,
  nodeVisibleInContainer,
  parseRefusedWrites,
  readImageSpec,
  refusedWritesOutsideTmp,
  runInFargateContainer,
  taskDefinitionFor,
  writableMounts,
  type ContainerRun,
  type ImageSpec,
  type TemplateTaskDefinition,
  type VolumeMount,
} from '../support/fargate-container.ts';
import { startLocalCloudWatch, type LocalCloudWatch } from '../support/local-cloudwatch.ts';

const execFileAsync = promisify(execFile);

const ENVIRONMENT = 'dev';
/** The dev example's one database: its secret's dbname is the source database's name here too. */
const DATABASE = 'orders';
const TABLES = [
  { schema: 'public', table: 'customers', rows: 2000 },
  { schema: 'public', table: 'orders', rows: 10000 },
];
/** Per command, in the container; the drill initializes a cluster, the slowest step here (seconds). */
const DEADLINE_SECONDS = 150;
const TEST_TIMEOUT_MS = (DEADLINE_SECONDS + 30) * 1000;
/** Fargate's ephemeral storage when a task definition does not say. */
const DEFAULT_EPHEMERAL_GIB = 20;

const environmentConfig = parsePgkeepConfig(PGKEEP_ENVIRONMENTS).environments[ENVIRONMENT]!;

let image: ImageSpec;
let tmpVolume: VolumeMount;
let resources: Record<string, { Type: string; Properties: unknown }>;
let scratchDir: string;
let bundle: string;
/** Node 24 as the container sees it (node:24's /usr/local/bin/node stands in as this project's). */
let node: string;
let tlsDir: string;
let source: ThrowawayCluster;
let localS3: LocalS3;
let s3: S3Client;
let cloudWatch: LocalCloudWatch;
let backup: Backup | undefined;

beforeAll(async () => {
  image = readImageSpec(readFileSync(path.join(REPOSITORY_ROOT, 'task/Dockerfile'), 'utf8'));
  tmpVolume = ecsTmpVolume(image);

  // The bundle the image runs, built into a directory of this file's own (uid 1000 must read it; a
  // concurrent build of dist/task must not rewrite it mid-run).
  await mkdir(imageFilesParent(), { recursive: true });
  scratchDir = await mkdtemp(path.join(imageFilesParent(), 'fargate-container-'));
  await chmod(scratchDir, 0o755);
  bundle = await buildTaskBundle(path.join(scratchDir, 'app', 'main.mjs'));
  node = await nodeVisibleInContainer(scratchDir);
  assertCanEmulateFargate(image, [node, bundle]);

  const synthesized = synthesizeEnvironment(PGKEEP_ENVIRONMENTS, ENVIRONMENT);
  resources = synthesized.pipeline.toJSON().Resources as typeof resources;
  synthesized.dispose();

  tlsDir = await selfSignedCertificate();
  [source, localS3, cloudWatch] = await Promise.all([
    startThrowawayCluster({ settings: { ssl: 'on', ssl_cert_file: path.join(tlsDir, 'server.crt'), ssl_key_file: path.join(tlsDir, 'server.key') } }),
    startLocalS3({ bucket: 'pgkeep-dev-backups' }),
    startLocalCloudWatch(),
  ]);
  s3 = localS3.client();
  await source.createDatabase(DATABASE);
  await withClient(source.connectionString(DATABASE), createTinyShop);
}, 240_000);

afterAll(async () => {
  await Promise.all([localS3?.stop(), cloudWatch?.stop(), source?.stop()]);
  await Promise.all([scratchDir, tlsDir].filter(Boolean).map((directory) => rm(directory, { recursive: true, force: true })));
});

/**
 * The server's certificate for PGSSLMODE=require, which encrypts without verifying (libpq's
 * semantics), so a self-signed one does. The key must belong to the server's OS user.
 */
async function selfSignedCertificate(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-fargate-tls-'));
  await chmod(directory, 0o755);
  const key = path.join(directory, 'server.key');
  const certificate = path.join(directory, 'server.crt');
  await execFileAsync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      key,
      '-out',
      certificate,
    ],
    { timeout: 30_000 },
  );
  const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', timeout: 10_000 }).trim()));
  for (const file of [key, certificate]) await chown(file, uid!, gid!);
  await chmod(key, 0o600);
  return directory;
}

function definitionFor(command: string): TemplateTaskDefinition {
  return taskDefinitionFor(resources, command);
}

function environmentFor(command: string, overrides: Record<string, string> = {}): Record<string, string> {
  return containerEnvironment({
    image,
    container: assertEmulatedShape(definitionFor(command)),
    region: environmentConfig.region,
    account: environmentConfig.account,
    local: {
      bucket: localS3.bucket,
      s3: { endpoint: localS3.endpoint, ...localS3.credentials },
      cloudWatchEndpoint: cloudWatch.endpoint,
      secrets: source.env(DATABASE),
    },
    overrides,
  });
}

function runInContainer(command: string, program: string[], environment: Record<string, string>, tmp = tmpVolume): Promise<ContainerRun> {
  return runInFargateContainer({
    image,
    tmp,
    tmpSizeGiB: definitionFor(command).EphemeralStorage?.SizeInGiB ?? DEFAULT_EPHEMERAL_GIB,
    environment,
    program,
    workdir: path.dirname(bundle),
    deadlineSeconds: DEADLINE_SECONDS,
  });
}

/** `node main.mjs <command>` as the image's entrypoint runs it, with the task definition's command. */
function runTask(command: 'backup' | 'restore' | 'drill', overrides: Record<string, string> = {}, tmp = tmpVolume): Promise<ContainerRun> {
  const container = assertEmulatedShape(definitionFor(command));
  return runInContainer(command, [node, bundle, ...container.Command], environmentFor(command, overrides), tmp);
}

function logLine(run: ContainerRun, message: string): TaskLogLine | undefined {
  return run.logs.find((line) => line.message === message);
}

/** For an exit code's assertion message: the task's failure line, which names stage, error and remedy. */
function failureOf(run: ContainerRun): string {
  const failures = run.logs.filter((line) => line.level === 'ERROR' || /failed/.test(line.message));
  return `exit ${run.code}; ${tmpVolume.rule}; ${failures.map((line) => JSON.stringify(line)).join(' ') || run.otherOutput.join(' | ')}`;
}

/** What every run must satisfy besides its own outcome. */
function expectContainerRules(run: ContainerRun): void {
  expect(refusedWritesOutsideTmp(run), 'writes the task attempted outside /tmp (the only writable path on Fargate)').toEqual([]);
  expect(run.leftBehind, 'files the task left in /tmp or /dev/shm').toEqual([]);
  expect(run.stillRunning, 'processes still running after the task exited').toEqual([]);
  expect(run.otherOutput, 'output that is not a JSON log line').toEqual([]);
}

function requireBackup(): Backup {
  if (!backup) throw new Error('no backup: the backup test above must pass first');
  return backup;
}

function metricsNamed(name: string): { value: number; dimensions: Record<string, string> }[] {
  return cloudWatch.metrics.filter((metric) => metric.namespace === 'pgkeep' && metric.name === name).map(({ value, dimensions }) => ({ value, dimensions }));
}

describe('how ECS mounts /tmp for an image (the rule the emulation applies)', () => {
  const imageOf = (lines: string[]) => readImageSpec(['FROM node:24-bookworm-slim', ...lines, 'USER node'].join('\n'));

  it('mounts the empty volume owned by root with mode 0755 when the image does not declare VOLUME ["/tmp"]', () => {
    expect(ecsTmpVolume(imageOf(['RUN chmod 1777 /tmp']))).toMatchObject({ mode: 0o755, uid: 0, gid: 0 });
  });

  it("copies the image's /tmp, with the mode set before the VOLUME line, when the image declares it", () => {
    expect(ecsTmpVolume(imageOf(['RUN chmod 1777 /tmp', 'VOLUME ["/tmp"]']))).toMatchObject({ mode: 0o1777, uid: 0, gid: 0 });
  });

  it('refuses a mode set only after the VOLUME line (the legacy builder discards it) and a VOLUME without a stated mode', () => {
    expect(() => ecsTmpVolume(imageOf(['VOLUME ["/tmp"]', 'RUN chmod 1777 /tmp']))).toThrow(/before the VOLUME line/);
    expect(() => ecsTmpVolume(imageOf(['VOLUME /tmp']))).toThrow(/without stating the mode/);
  });

  it("takes the user's numeric ids from the base image and the environment from it and the ENV lines", () => {
    const spec = imageOf(['ENV HOME=/tmp \\', '    NODE_OPTIONS="--enable-source-maps"']);
    expect(spec).toMatchObject({ user: 'node', uid: 1000, gid: 1000 });
    expect(spec.environment).toMatchObject({
      HOME: '/tmp',
      NODE_OPTIONS: '--enable-source-maps',
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    });
  });
});

describe("which refused writes count (from strace's log)", () => {
  it('counts writes refused outside /tmp, whatever the call, and not reads or writes inside /tmp', () => {
    const run = {
      refusedWrites: parseRefusedWrites(
        [
          '101   openat(AT_FDCWD</app>, "/var/run/postgresql/.s.PGSQL.5432.lock", O_WRONLY|O_CREAT|O_EXCL, 0600) = -1 EROFS (Read-only file system)',
          '102   mkdir("/tmp/pgkeep-cluster-Ab12Cd", 0700) = -1 EACCES (Permission denied)',
          '103   openat(AT_FDCWD</app>, "/etc/shadow", O_RDONLY|O_CLOEXEC) = -1 EACCES (Permission denied)',
          '104   bind(3<socket:[99]>, {sa_family=AF_UNIX, sun_path="/var/run/postgresql/.s.PGSQL.5432"}, 110) = -1 EROFS (Read-only file system)',
          '105   mkdirat(AT_FDCWD</app>, ".cache", 0777) = -1 EROFS (Read-only file system)',
          '106   openat(AT_FDCWD</tmp>, "x", O_RDWR|O_CREAT, 0600) = -1 EEXIST (File exists)',
        ].join('\n'),
      ),
    } as ContainerRun;
    expect(refusedWritesOutsideTmp(run).map((line) => line.split(/\s+/)[0])).toEqual(['101', '104', '105']);
    expect(run.refusedWrites.map((write) => write.paths)).toEqual([
      ['/var/run/postgresql/.s.PGSQL.5432.lock'],
      ['/tmp/pgkeep-cluster-Ab12Cd'],
      ['/var/run/postgresql/.s.PGSQL.5432'],
      ['/app/.cache'],
    ]);
  });
});

describe(`the task container as ECS runs it on Fargate (${ENVIRONMENT} example environment)`, () => {
  it(
    "runs the program as the image's user, on a read-only root with /tmp as ECS mounts it, with exactly the container's environment",
    async () => {
      // Arrange: the backup task's environment; the bundle stands in for the image's /app/main.mjs.
      const environment = environmentFor('backup');
      expect(image.entrypoint.slice(-2), 'the image starts node on main.mjs in its WORKDIR, which the bundle stands in for').toEqual([
        'node',
        path.posix.join(image.workdir, 'main.mjs'),
      ]);

      // Act
      const printed = await runInContainer('backup', ['/usr/bin/env'], environment);
      const identity = await runInContainer('backup', ['/usr/bin/id'], environment);

      // Assert
      expect(printed.code).toBe(0);
      expect(Object.fromEntries(printed.otherOutput.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))).toEqual(environment);
      expect(environment).toMatchObject({
        HOME: '/tmp',
        TMPDIR: '/tmp',
        NODE_ENV: 'production',
        PGKEEP_ENVIRONMENT: ENVIRONMENT,
        PGKEEP_DATABASE_NAME: DATABASE,
        PGSSLMODE: 'require',
        AWS_REGION: environmentConfig.region,
      });
      expect(writableMounts(printed), "only the task volume and Docker's /dev/shm are writable").toEqual(['/dev/shm', '/tmp']);
      expect(printed.tmp).toEqual({ mode: tmpVolume.mode, uid: tmpVolume.uid, gid: tmpVolume.gid });
      expect(identity.otherOutput).toEqual([`uid=${image.uid}(${image.user}) gid=${image.gid}(${image.user}) groups=${image.gid}(${image.user})`]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'backup: streams the database into S3, writes its manifest and publishes its metrics',
    async () => {
      // Act
      const run = await runTask('backup');

      // Assert
      expect(run.code, failureOf(run)).toBe(0);
      const completed = logLine(run, 'backup completed');
      expect(completed).toMatchObject({ level: 'INFO', database: DATABASE, environment: ENVIRONMENT, bucket: localS3.bucket, tables: TABLES.length });
      backup = await findNewestBackup(s3, { bucket: localS3.bucket, database: DATABASE });
      expect(backup?.dataKey).toBe(completed?.key);
      expect(backup?.manifestKey).toBe(completed?.manifestKey);
      expect(metricsNamed('BackupSucceeded')).toEqual([{ value: 1, dimensions: { Environment: ENVIRONMENT, Database: DATABASE } }]);
      expectContainerRules(run);
    },
    TEST_TIMEOUT_MS,
  );

  it.each([
    { jobs: 1, how: 'streaming from S3 into pg_restore' },
    { jobs: 4, how: 'downloading the archive into /tmp for pg_restore -j 4' },
  ])(
    'restore with PGKEEP_RESTORE_JOBS=$jobs: restores the backup into a new database, $how, matching its manifest',
    async ({ jobs }) => {
      // Arrange: the overrides an operator gives the restore task at run time.
      const { backupId } = requireBackup();
      const target = `${DATABASE}_restored_jobs${jobs}`;

      // Act
      const run = await runTask('restore', { PGKEEP_RESTORE_JOBS: String(jobs), PGKEEP_RESTORE_TARGET_DATABASE: target });

      // Assert
      expect(run.code, failureOf(run)).toBe(0);
      expect(logLine(run, 'backup chosen')).toMatchObject({ backupId });
      expect(logLine(run, 'restore completed')).toMatchObject({
        level: 'INFO',
        backupId,
        targetDatabase: target,
        createdTarget: true,
        tablesCompared: TABLES.length,
        mismatches: [],
      });
      for (const { schema, table, rows } of TABLES) expect(await countRows(source.connectionString(target), schema, table), `${table} in ${target}`).toBe(rows);
      expect(metricsNamed('RestoreSucceeded').filter((metric) => metric.value === 1).length).toBeGreaterThanOrEqual(1);
      expectContainerRules(run);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'drill: restores the newest verified backup into a PostgreSQL inside the container, compares it and records a passing drill',
    async () => {
      // Arrange
      const verified = requireBackup();
      await markBackupVerified(s3, localS3.bucket, verified);

      // Act
      const run = await runTask('drill');

      // Assert
      expect(run.code, failureOf(run)).toBe(0);
      const passed = logLine(run, 'drill passed');
      expect(passed).toMatchObject({ database: DATABASE, ok: true, backupId: verified.backupId, tablesCompared: TABLES.length, mismatches: [] });
      expect(logLine(run, 'drill finished')).toMatchObject({ databases: 1, passed: [DATABASE], failed: [] });
      const record = await s3.send(new GetObjectCommand({ Bucket: localS3.bucket, Key: String(passed?.recordKey) }));
      expect(JSON.parse(await record.Body!.transformToString())).toMatchObject({
        kind: 'pgkeep-restore-drill',
        environment: ENVIRONMENT,
        database: DATABASE,
        ok: true,
        backupId: verified.backupId,
        sha256Verified: true,
      });
      expect(metricsNamed('DrillSucceeded')).toEqual([{ value: 1, dimensions: { Environment: ENVIRONMENT, Database: DATABASE } }]);
      expectContainerRules(run);
    },
    TEST_TIMEOUT_MS,
  );

  describe('with the /tmp an image without VOLUME ["/tmp"] gets (root\'s, mode 0755)', () => {
    const unwritableTmp = () => ecsTmpVolume({ ...image, volumes: image.volumes.filter((volume) => volume !== '/tmp') });

    /** The refusal strace saw inside /tmp: proof that the write detector watches the real task. */
    function expectRefusedInTmp(run: ContainerRun, prefix: string): void {
      expect(run.refusedWrites.some((write) => write.errno === 'EACCES' && write.paths.some((target) => target.startsWith(`/tmp/${prefix}`)))).toBe(true);
    }

    it(
      'the parallel restore fails with one line that names the stage, says /tmp is not writable and how to fix it, and keeps no database',
      async () => {
        // Arrange
        const target = `${DATABASE}_unwritable_tmp`;

        // Act
        const run = await runTask('restore', { PGKEEP_RESTORE_JOBS: '4', PGKEEP_RESTORE_TARGET_DATABASE: target }, unwritableTmp());

        // Assert
        expect(run.code).toBe(1);
        expect(run.logs.filter((line) => line.level === 'ERROR')).toEqual([expect.objectContaining({ message: 'restore failed', stage: 'restore' })]);
        const failed = logLine(run, 'restore failed');
        expect(failed?.error).toBe(
          `Cannot create the parallel restore's download directory in /tmp (EACCES): /tmp has mode 755 and belongs to uid 0, and the task runs as uid ${image.uid}.`,
        );
        expect(failed?.remedy).toContain('declare VOLUME ["/tmp"] with /tmp at mode 1777');
        expect(failed?.remedy).toContain('PGKEEP_RESTORE_JOBS=1');
        const databases = await withClient(source.connectionString('postgres'), async (client) =>
          (await client.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map((row) => row.datname),
        );
        expect(databases).not.toContain(target);
        expectRefusedInTmp(run, 'pgkeep-restore-');
        expectContainerRules(run);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      'the drill fails, says why in its log line and its drill record, and leaves nothing running',
      async () => {
        // Act
        const run = await runTask('drill', {}, unwritableTmp());

        // Assert
        expect(run.code).toBe(1);
        const failed = logLine(run, 'drill failed');
        expect(failed).toMatchObject({ database: DATABASE, ok: false });
        expect(failed?.error).toMatch(/^Cannot create the throwaway PostgreSQL cluster's directory in \/tmp \(EACCES\): .* declare VOLUME \["\/tmp"\]/);
        const record = await s3.send(new GetObjectCommand({ Bucket: localS3.bucket, Key: String(failed?.recordKey) }));
        expect(JSON.parse(await record.Body!.transformToString())).toMatchObject({ database: DATABASE, ok: false, error: failed?.error });
        expectRefusedInTmp(run, 'pgkeep-cluster-');
        expectContainerRules(run);
      },
      TEST_TIMEOUT_MS,
    );
  });
});
