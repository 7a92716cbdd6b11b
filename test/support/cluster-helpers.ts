/**
 * What the throwaway-cluster suites share: clusters tracked so that a failed assertion still stops
 * them, a parent directory the server's OS user can enter, and one-off queries.
 */
import { chmod, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { ThrowawayCluster } from '../../task/throwaway-cluster.ts';

/** `start` wrapped so every cluster it starts is stopped by `stopAll`, even when an assertion fails. */
export function trackClusters<Args extends unknown[]>(start: (...args: Args) => Promise<ThrowawayCluster>) {
  const started: ThrowawayCluster[] = [];
  return {
    start: async (...args: Args): Promise<ThrowawayCluster> => {
      const cluster = await start(...args);
      started.push(cluster);
      return cluster;
    },
    stopAll: async (): Promise<void> => {
      await Promise.allSettled(started.splice(0).map((cluster) => cluster.stop()));
    },
  };
}

/** A parent directory the server's OS user can enter (mkdtemp makes 0700 ones, which it cannot when we are root). */
export async function makeParentDir(): Promise<string> {
  const parentDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-cluster-parent-'));
  await chmod(parentDir, 0o755);
  return parentDir;
}

export async function queryOnce<T extends pg.QueryResultRow>(config: pg.ClientConfig, sql: string): Promise<T[]> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

export function connectionConfig(cluster: ThrowawayCluster, database = 'postgres'): pg.ClientConfig {
  return { host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database };
}
