/**
 * The benchmark's kept cluster: its generated database lives in one directory between runs
 * (<cache-dir>/bench-<size>/), initialized on first use and started again as it is afterwards, so a
 * 3 GB database is generated once. Tests need fresh clusters, and the task's drill a throwaway one;
 * only the benchmark keeps one.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { newestServerBinDir, probePgVersion } from '../../task/postgres-binaries.ts';
import { startThrowawayCluster, type ThrowawayCluster, type ThrowawayClusterOptions } from '../../task/throwaway-cluster.ts';

/**
 * Starts the cluster kept in `directory` (initializing it if it holds none yet), with the password
 * given now; stop() shuts it down cleanly and leaves its files.
 */
export async function startKeptCluster(directory: string, options: Omit<ThrowawayClusterOptions, 'home' | 'parentDir'> = {}): Promise<ThrowawayCluster> {
  const rootDir = path.resolve(directory);
  const dataDir = path.join(rootDir, 'data');
  const initialized = existsSync(path.join(dataDir, 'PG_VERSION'));
  const binDir = options.binDir === undefined ? (await newestServerBinDir()).binDir : path.resolve(options.binDir);
  if (initialized) {
    const dataMajor = Number.parseInt(await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8'), 10);
    const serverMajor = (await probePgVersion(path.join(binDir, 'postgres')))?.major;
    if (serverMajor !== undefined && dataMajor !== serverMajor) {
      throw new Error(
        `The kept cluster in ${rootDir} was initialized by PostgreSQL ${dataMajor}, but the server binaries are ` +
          `PostgreSQL ${serverMajor}: delete that directory to start from scratch, or pass the matching binDir.`,
      );
    }
  }
  const cluster = await startThrowawayCluster({ ...options, binDir, home: { rootDir, initialized } });
  // initdb set the password of a fresh cluster; a kept one still has the previous run's.
  if (initialized) {
    try {
      await setSuperuserPassword(path.join(rootDir, 'socket'), cluster.port, cluster.user, cluster.password);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }
  return cluster;
}

/** Over the cluster's Unix socket, where local connections are trusted and no password is needed. */
async function setSuperuserPassword(socketDir: string, port: number, superuser: string, password: string): Promise<void> {
  const client = new pg.Client({ host: socketDir, port, user: superuser, database: 'postgres' });
  await client.connect();
  try {
    await client.query(`ALTER ROLE ${pg.escapeIdentifier(superuser)} PASSWORD ${pg.escapeLiteral(password)}`);
  } finally {
    await client.end();
  }
}
