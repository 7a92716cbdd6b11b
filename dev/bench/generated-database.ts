/**
 * The source database: a generated sample database, kept in <cache-dir>/bench-<size>/ between runs
 * and rebuilt when the generator (dev/sample-database.ts) changes or --fresh asks.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { createSampleDatabase } from '../sample-database.ts';
import { REPO_ROOT } from '../task-process.ts';
import { startKeptCluster } from './kept-cluster.ts';
import type { BenchOptions } from './options.ts';

export const DATABASE_NAME = 'bench';

interface SourceDatabase {
  cluster: ThrowawayCluster;
  databaseBytes: number;
}

interface CacheMarker {
  sizeMb: number;
  generator: string;
  databaseBytes: number;
  builtAt: string;
}

export async function prepareSourceDatabase(options: BenchOptions, say: (line: string) => void): Promise<SourceDatabase> {
  const cacheDir = path.join(options.cacheRoot, `bench-${options.sizeMb}`);
  const markerFile = path.join(cacheDir, 'bench-database.json');
  // A change to the generator changes the data, so it invalidates the cache.
  const generator = createHash('sha256')
    .update(await readFile(fileURLToPath(new URL('../sample-database.ts', import.meta.url))))
    .digest('hex')
    .slice(0, 16);
  const marker = await readFile(markerFile, 'utf8').then(
    (text) => JSON.parse(text) as CacheMarker,
    () => undefined,
  );
  const reusable = !options.fresh && marker?.generator === generator && marker.sizeMb === options.sizeMb;

  if (reusable) {
    say(`Reusing the sample database in ${path.relative(REPO_ROOT, cacheDir)} (built ${marker.builtAt}; --fresh rebuilds it)`);
    const cluster = await startKeptCluster(cacheDir);
    try {
      return { cluster, databaseBytes: await databaseSize(cluster) };
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  await rm(cacheDir, { recursive: true, force: true });
  await mkdir(options.cacheRoot, { recursive: true });
  say(`Generating a ${options.sizeMb} MiB sample database in ${path.relative(REPO_ROOT, cacheDir)} (kept for later runs)...`);
  const cluster = await startKeptCluster(cacheDir);
  try {
    await cluster.createDatabase(DATABASE_NAME);
    const client = new pg.Client({ connectionString: cluster.connectionString(DATABASE_NAME) });
    await client.connect();
    const started = performance.now();
    let lastReport = 0;
    try {
      await createSampleDatabase(client, {
        sizeMb: options.sizeMb,
        onProgress: (message) => {
          if (performance.now() - lastReport < 10_000 && !/done|indexes|analyzing/.test(message)) return;
          lastReport = performance.now();
          say(`  ${message}`);
        },
      });
      // Vacuum sets the visibility map and hint bits once, as on a long-lived production table.
      await client.query('VACUUM (ANALYZE)');
    } finally {
      await client.end();
    }
    const databaseBytes = await databaseSize(cluster);
    say(`  built in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    const newMarker: CacheMarker = { sizeMb: options.sizeMb, generator, databaseBytes, builtAt: new Date().toISOString() };
    await writeFile(markerFile, `${JSON.stringify(newMarker, null, 2)}\n`);
    return { cluster, databaseBytes };
  } catch (error) {
    await cluster.stop();
    await rm(cacheDir, { recursive: true, force: true });
    throw error;
  }
}

async function databaseSize(cluster: ThrowawayCluster): Promise<number> {
  const client = new pg.Client({ connectionString: cluster.connectionString(DATABASE_NAME) });
  await client.connect();
  try {
    const result = await client.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes');
    return Number(result.rows[0]?.bytes ?? 0);
  } finally {
    await client.end();
  }
}
