/**
 * `npm run bench` as a smoke run: a tiny database, one repeat, no waiting for a quiet machine.
 * It asserts what the benchmark reports and what holds at any size (no temporary disk, bounded
 * memory, the same compressed output from the read limit and from pgkeep), never a timing: the
 * timings are the benchmark's to measure (docs/performance.md). It is also the suite's one run of
 * the bundled task (dist/task/main.mjs), the file the container image runs.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runScript, type ScriptOutcome } from '../support/run-script.ts';

interface BenchSummary {
  readLimitSeconds: number;
  recipeSeconds: number;
  pgkeepSeconds: number;
  s3ServerAloneSeconds: number;
  ratioToReadLimit: number;
  speedupVsRecipe: number;
  ratioToS3ServerAlone: number;
  peakRssMb: number;
  tempDiskBytes: number;
  targets: Record<string, { target: string; met: boolean }>;
  scenarios: Record<string, { outputBytes: number; runsSeconds: number[] }>;
}

function runBench(args: string[]): Promise<ScriptOutcome> {
  return runScript('dev/bench/main.ts', args);
}

describe('npm run bench (smoke run at 10 MiB)', () => {
  let cacheDir: string | undefined;
  afterAll(async () => {
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  it('measures every scenario and ends with one JSON line holding the figures and targets', async () => {
    // Arrange
    cacheDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-bench-cache-'));
    await chmod(cacheDir, 0o755); // the kept cluster's server runs as the postgres OS user when we are root

    // Act
    const { code, stdout, stderr } = await runBench(['--size-mb', '10', '--repeats', '1', '--json', '--quiet-wait-max-seconds', '0', '--cache-dir', cacheDir]);

    // Assert
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines.slice(0, -1).join('\n')).toContain('| pgkeep');
    const summary = JSON.parse(lines.at(-1) ?? '') as BenchSummary;
    for (const figure of [
      'readLimitSeconds',
      'recipeSeconds',
      'pgkeepSeconds',
      's3ServerAloneSeconds',
      'ratioToReadLimit',
      'speedupVsRecipe',
      'ratioToS3ServerAlone',
    ] as const) {
      expect(summary[figure], figure).toBeGreaterThan(0);
    }
    expect(summary.ratioToReadLimit).toBeCloseTo(summary.pgkeepSeconds / summary.readLimitSeconds, 2);
    expect(summary.speedupVsRecipe).toBeCloseTo(summary.recipeSeconds / summary.pgkeepSeconds, 2);
    expect(Object.keys(summary.targets).sort()).toEqual(['peakRssMb', 'ratioToReadLimit', 'speedupVsRecipe', 'tempDiskBytes']);
    expect(summary.tempDiskBytes).toBe(0);
    expect(summary.targets.tempDiskBytes?.met).toBe(true);
    expect(summary.peakRssMb).toBeGreaterThan(30);
    expect(summary.peakRssMb).toBeLessThan(256);
  }, 240_000);

  it('compresses the same database to the same size in the read limit and in pgkeep (same zstd level and threads)', async () => {
    const { stdout } = await runBench([
      '--size-mb',
      '10',
      '--repeats',
      '1',
      '--json',
      '--quiet-wait-max-seconds',
      '0',
      '--cache-dir',
      cacheDir ?? '',
      '--only',
      'read-limit,pgkeep',
    ]);

    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as BenchSummary;
    const readLimitBytes = summary.scenarios['read-limit']?.outputBytes ?? 0;
    const pgkeepBytes = summary.scenarios.pgkeep?.outputBytes ?? 0;
    expect(readLimitBytes).toBeGreaterThan(100_000);
    // pg_dump's archive header carries the time of the dump, so the bytes differ; the sizes barely.
    expect(Math.abs(pgkeepBytes - readLimitBytes) / readLimitBytes).toBeLessThan(0.01);
  }, 240_000);
});

describe('npm run bench usage errors', () => {
  // Number() would read these as 16, 8 and 10 MiB and start a benchmark nobody asked for.
  it.each(['0x10', '8.0', '1e1'])('refuses --size-mb %s with exit code 2, before generating anything', async (value) => {
    const { code, stderr } = await runBench(['--size-mb', value]);

    expect(code).toBe(2);
    expect(stderr).toContain(`--size-mb ${value} is invalid: expected a whole number from 10 to 1000000.`);
  });
});
