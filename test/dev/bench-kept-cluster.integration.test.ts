/**
 * The benchmark's kept cluster (dev/bench/kept-cluster.ts): the one throwaway cluster whose files
 * outlive stop(), so that a generated database is built once per size.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connectionConfig, makeParentDir, queryOnce, trackClusters } from '../support/cluster-helpers.ts';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startKeptCluster } from '../../dev/bench/kept-cluster.ts';

/** Every cluster a test starts, so afterEach/afterAll stop it even when an assertion fails. */
const { start: startTracked, stopAll: stopAllStarted } = trackClusters(startKeptCluster);

describe("the benchmark's kept cluster, where it caches its generated database", () => {
  const keptDirs: string[] = [];
  afterEach(stopAllStarted);
  afterAll(async () => {
    await Promise.all(keptDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function newKeptDir(): Promise<string> {
    const parentDir = await makeParentDir();
    keptDirs.push(parentDir);
    return path.join(parentDir, 'kept');
  }

  it('keeps its data through stop() and serves it again on the next start, with the new password', async () => {
    const keptDir = await newKeptDir();
    const first = await startTracked(keptDir, { password: 'first-password' });
    await first.createDatabase('cached');
    await queryOnce(connectionConfig(first, 'cached'), 'CREATE TABLE kept AS SELECT 42 AS answer');
    await first.stop();

    const second = await startTracked(keptDir, { password: 'second-password' });
    const rows = await queryOnce<{ answer: number }>(connectionConfig(second, 'cached'), 'SELECT answer FROM kept');

    expect(existsSync(path.join(keptDir, 'data', 'PG_VERSION'))).toBe(true);
    expect(rows).toEqual([{ answer: 42 }]);
    await expect(queryOnce({ ...connectionConfig(second, 'cached'), password: 'first-password' }, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
  });

  it('refuses data from another PostgreSQL major and says to delete the directory, leaving it as it was', async () => {
    const keptDir = await newKeptDir();
    const first = await startTracked(keptDir);
    await first.stop();
    await writeFile(path.join(keptDir, 'data', 'PG_VERSION'), '14\n');

    const starting = startTracked(keptDir);

    await expect(starting).rejects.toThrow(`The kept cluster in ${keptDir} was initialized by PostgreSQL 14, but the server binaries are PostgreSQL 15`);
    await expect(starting).rejects.toThrow(/delete that directory to start from scratch/);
    expect(readFileSync(path.join(keptDir, 'data', 'PG_VERSION'), 'utf8')).toBe('14\n');
  });
});
