import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** A `--version` call only prints a line; anything slower is a hung or broken binary. */
const VERSION_PROBE_TIMEOUT_MS = 10_000;

/** Debian/Ubuntu (postgresql-common) installs each major version side by side here. */
const DEBIAN_POSTGRESQL_LIB_DIR = '/usr/lib/postgresql';
/** Where a source build (`./configure && make install`) puts its binaries by default. */
const SOURCE_BUILD_BIN_DIR = '/usr/local/pgsql/bin';

export type PgTool = 'pg_dump' | 'pg_restore' | 'psql' | 'initdb' | 'pg_ctl' | 'postgres';

export interface PgBinary {
  path: string;
  major: number;
  /** As the binary reports it, without distribution suffix: "15.18", "9.6.24", "18beta1". */
  version: string;
}

export interface PgVersion {
  major: number;
  version: string;
}

export interface FindPgBinariesOptions {
  /** Used instead of process.env.PATH. */
  pathEnv?: string;
  /** Searched after PATH and the well-known install locations. */
  extraDirs?: string[];
}

/**
 * Parses the output of `<tool> --version`, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)",
 * "postgres (PostgreSQL) 17.6" or "pg_dump (PostgreSQL) 18beta1". Returns undefined when the output
 * does not come from a PostgreSQL tool.
 */
export function parsePgVersionOutput(output: string): PgVersion | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)((?:\.\d+){0,2})([A-Za-z]+\d*)?/.exec(output);
  if (!match) return undefined;
  const [, majorText = '', dottedParts = '', preRelease = ''] = match;
  const firstNumber = Number.parseInt(majorText, 10);
  // Before PostgreSQL 10 the major version was two numbers ("9.6"); callers compare majors as
  // integers against server_version_num / 10000, which yields 9 for every 9.x, so do the same here.
  return { major: firstNumber, version: `${majorText}${dottedParts}${preRelease}` };
}

/** 150018 -> { 15, "15.18" }, 90624 -> { 9, "9.6.24" }, 170006 -> { 17, "17.6" }. */
export function parseServerVersionNum(serverVersionNum: number): PgVersion {
  if (!Number.isInteger(serverVersionNum) || serverVersionNum < 10_000) {
    throw new Error(
      `Invalid server_version_num ${String(serverVersionNum)}: expected an integer such as 150018 ` +
        `(from SHOW server_version_num or current_setting('server_version_num')).`,
    );
  }
  const major = Math.floor(serverVersionNum / 10_000);
  if (major >= 10) {
    return { major, version: `${major}.${serverVersionNum % 10_000}` };
  }
  const minorOfMajor = Math.floor(serverVersionNum / 100) % 100;
  const patch = serverVersionNum % 100;
  return { major, version: `${major}.${minorOfMajor}.${patch}` };
}

/** Orders "15.18" after "15.9", and a pre-release ("18beta1") before its release ("18.0"). */
export function comparePgVersions(a: string, b: string): number {
  const parse = (version: string): { numbers: number[]; preRelease: string } => {
    const match = /^(\d+(?:\.\d+)*)(.*)$/.exec(version);
    return {
      numbers: (match?.[1] ?? '0').split('.').map((part) => Number.parseInt(part, 10)),
      preRelease: match?.[2] ?? '',
    };
  };
  const left = parse(a);
  const right = parse(b);
  const length = Math.max(left.numbers.length, right.numbers.length);
  for (let index = 0; index < length; index += 1) {
    const difference = (left.numbers[index] ?? 0) - (right.numbers[index] ?? 0);
    if (difference !== 0) return difference;
  }
  if (left.preRelease === right.preRelease) return 0;
  if (left.preRelease === '') return 1;
  if (right.preRelease === '') return -1;
  return left.preRelease < right.preRelease ? -1 : 1;
}

/**
 * The newest client whose major is at least the server's: pg_dump refuses to dump a server newer
 * than itself, while a newer pg_dump dumps older servers fine.
 */
export function pickPgDumpForServer(clients: PgBinary[], serverMajor: number): PgBinary | undefined {
  return clients.filter((client) => client.major >= serverMajor).sort((a, b) => comparePgVersions(b.version, a.version))[0];
}

/** The numbered version directories under /usr/lib/postgresql, newest first. */
async function listDebianVersionDirs(postgresqlLibDir: string): Promise<{ major: number; binDir: string }[]> {
  let entries: string[];
  try {
    entries = await readdir(postgresqlLibDir);
  } catch {
    return [];
  }
  return entries
    .filter((entry) => /^\d+(\.\d+)?$/.test(entry))
    .map((entry) => ({ major: Number.parseInt(entry, 10), binDir: path.join(postgresqlLibDir, entry, 'bin') }))
    .sort((a, b) => b.major - a.major);
}

async function isExecutableFile(filePath: string): Promise<boolean> {
  try {
    const info = await stat(filePath);
    if (!info.isFile()) return false;
    await access(filePath, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs `<binaryPath> --version`; undefined when it cannot run or does not look like PostgreSQL. */
export async function probePgVersion(binaryPath: string, env?: NodeJS.ProcessEnv): Promise<PgVersion | undefined> {
  try {
    const { stdout } = await execFileAsync(binaryPath, ['--version'], {
      timeout: VERSION_PROBE_TIMEOUT_MS,
      encoding: 'utf8',
      ...(env ? { env } : {}),
    });
    return parsePgVersionOutput(stdout);
  } catch {
    return undefined;
  }
}

export type ExactBinaryProbe = { binary: PgBinary; problem?: undefined } | { binary?: undefined; problem: string };

/**
 * Exactly the file at `filePath`, never a search: what an operator means by "use this pg_dump".
 * Either the binary with its version, or what is wrong with the file, in words that complete
 * "<filePath> ...": missing, a directory, not executable, failing, or some other program.
 */
export async function probePgBinaryAt(tool: PgTool, filePath: string): Promise<ExactBinaryProbe> {
  // Absolute, so that running it cannot turn into a PATH search (execFile does one for a bare name).
  const absolutePath = path.resolve(filePath);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(absolutePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { problem: 'does not exist' };
    return { problem: `cannot be read (${code ?? (error as Error).message})` };
  }
  if (info.isDirectory()) return { problem: `is a directory, not the ${tool} executable (did you mean ${path.join(absolutePath, tool)}?)` };
  if (!info.isFile()) return { problem: `is not a regular file, so it cannot be ${tool}` };
  try {
    await access(absolutePath, fsConstants.X_OK);
  } catch {
    return { problem: `is not executable by this process (mode ${(info.mode & 0o777).toString(8)})` };
  }
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(absolutePath, ['--version'], { timeout: VERSION_PROBE_TIMEOUT_MS, encoding: 'utf8' }));
  } catch (error) {
    const { code, signal, killed } = error as { code?: string | number; signal?: string; killed?: boolean };
    const how = killed
      ? `did not answer within ${VERSION_PROBE_TIMEOUT_MS / 1000} s`
      : typeof code === 'number'
        ? `exited with code ${code}`
        : signal
          ? `was killed by ${signal}`
          : `could not be started (${code ?? (error as Error).message})`;
    return { problem: `is not a working ${tool}: run with --version, it ${how}` };
  }
  const firstLine = stdout.trim().split('\n', 1)[0] ?? '';
  const version = parsePgVersionOutput(firstLine);
  // "pg_restore (PostgreSQL) 17.6" parses as a version too: the tool's own name must lead.
  if (!version || !firstLine.startsWith(`${tool} (PostgreSQL) `)) {
    const shown = firstLine.length > 120 ? `${firstLine.slice(0, 120)}…` : firstLine;
    return {
      problem: `is not ${tool}: its --version printed ${shown === '' ? 'nothing' : JSON.stringify(shown)}, where ${tool} prints "${tool} (PostgreSQL) <version>"`,
    };
  }
  return { binary: { path: absolutePath, ...version } };
}

function isVersionedDebianDir(dir: string): boolean {
  return new RegExp(`^${DEBIAN_POSTGRESQL_LIB_DIR}/\\d+(\\.\\d+)?/bin/?$`).test(path.resolve(dir));
}

/**
 * Every runnable copy of `tool`, one per reported version, newest first.
 *
 * Debian's /usr/bin/pg_dump is postgresql-common's pg_wrapper, which chooses a version from the
 * local cluster configuration at run time; a versioned /usr/lib/postgresql/N/bin path always runs
 * what it reported, so when both report the same version the versioned one is kept.
 */
export async function findPgBinaries(tool: PgTool, options: FindPgBinariesOptions = {}): Promise<PgBinary[]> {
  const pathEnv = options.pathEnv ?? process.env.PATH ?? '';
  const searchDirs = [
    ...pathEnv.split(path.delimiter).filter((dir) => dir !== ''),
    ...(await listDebianVersionDirs(DEBIAN_POSTGRESQL_LIB_DIR)).map((entry) => entry.binDir),
    SOURCE_BUILD_BIN_DIR,
    ...(options.extraDirs ?? []),
  ];

  // One entry per real file. A symlink such as /usr/local/bin/postgres -> /usr/lib/postgresql/15/bin/postgres
  // is reported under its versioned path, which stays meaningful if PATH changes.
  const candidatesByRealPath = new Map<string, { candidatePath: string; versioned: boolean }>();
  for (const dir of searchDirs) {
    const candidatePath = path.join(dir, tool);
    if (!(await isExecutableFile(candidatePath))) continue;
    let resolved: string;
    try {
      resolved = await realpath(candidatePath);
    } catch {
      continue;
    }
    const versioned = isVersionedDebianDir(dir);
    const existing = candidatesByRealPath.get(resolved);
    if (existing && (existing.versioned || !versioned)) continue;
    candidatesByRealPath.set(resolved, { candidatePath, versioned });
  }

  const probed = await Promise.all(
    [...candidatesByRealPath.values()].map(async (candidate) => ({
      ...candidate,
      version: await probePgVersion(candidate.candidatePath),
    })),
  );

  const byVersion = new Map<string, PgBinary & { versioned: boolean }>();
  for (const { candidatePath, versioned, version } of probed) {
    if (!version) continue;
    const existing = byVersion.get(version.version);
    if (existing && (existing.versioned || !versioned)) continue;
    byVersion.set(version.version, { path: candidatePath, ...version, versioned });
  }

  return [...byVersion.values()]
    .map(({ path: binaryPath, major, version }) => ({ path: binaryPath, major, version }))
    .sort((a, b) => comparePgVersions(b.version, a.version));
}

const SERVER_TOOLS = ['initdb', 'pg_ctl', 'postgres'] as const;

/**
 * The bin directory of the newest PostgreSQL server installed under /usr/lib/postgresql/N/bin
 * (the layout of Debian's postgresql-N packages and of the task container image).
 */
export async function newestServerBinDir(options: { postgresqlLibDir?: string } = {}): Promise<{ binDir: string; major: number; version: string }> {
  const postgresqlLibDir = options.postgresqlLibDir ?? DEBIAN_POSTGRESQL_LIB_DIR;
  const problems: string[] = [];
  for (const { binDir } of await listDebianVersionDirs(postgresqlLibDir)) {
    const missing: string[] = [];
    for (const tool of SERVER_TOOLS) {
      if (!(await isExecutableFile(path.join(binDir, tool)))) missing.push(tool);
    }
    if (missing.length > 0) {
      problems.push(`${binDir} (missing ${missing.join(', ')})`);
      continue;
    }
    const version = await probePgVersion(path.join(binDir, 'postgres'));
    if (!version) {
      problems.push(`${binDir} ('postgres --version' failed)`);
      continue;
    }
    return { binDir, ...version };
  }
  const searched = problems.length > 0 ? problems.join('; ') : `${postgresqlLibDir}/*/bin (no version directories)`;
  throw new Error(
    `No PostgreSQL server installation found. Searched: ${searched}. ` +
      `Install one (Debian: apt-get install postgresql-15) or pass an explicit binDir that holds initdb, pg_ctl and postgres.`,
  );
}
