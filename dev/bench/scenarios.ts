/** The measured scenarios: the read limit, the usual recipe, pgkeep (against the local server and the stand-in), the S3 server alone. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, UploadPartCommand, type CompletedPart } from '@aws-sdk/client-s3';
import { pgDumpArguments, zstdArguments } from '../../task/dump-pipeline.ts';
import { partSizeFor } from '../../task/part-sizes.ts';
import type { ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { startTask, type TaskLogLine } from '../task-process.ts';
import { DATABASE_NAME } from './generated-database.ts';
import { MIB, RunSampler, type RunMeasurement } from './measure.ts';
import type { BenchOptions, ScenarioName } from './options.ts';
import type { S3ServerProcess } from './s3-servers.ts';

/** The usual recipe's upload: what `aws s3 cp` does with its defaults for large files (8 MiB parts). */
const RECIPE_PART_BYTES = 8 * 2 ** 20;
/** @aws-sdk/lib-storage's default queue size: the upload most Node recipes use. */
const RECIPE_PARTS_IN_FLIGHT = 4;

export interface ScenarioContext {
  options: BenchOptions;
  cluster: ThrowawayCluster;
  pgDumpPath: string;
  s3: S3ServerProcess;
  sink: S3ServerProcess;
  workDir: string;
  bundledEntry: string;
  postmasterPid: number | undefined;
  pgkeepOutputBytes: number | undefined;
}

export const SCENARIO_RUNNERS: Record<ScenarioName, (context: ScenarioContext) => Promise<RunMeasurement>> = {
  'read-limit': (context) => runReadLimit(context, { warmUp: false }),
  recipe: runRecipe,
  pgkeep: (context) => runPgkeep(context, context.s3),
  's3-alone': runS3Alone,
  'pgkeep-sink': (context) => runPgkeep(context, context.sink),
};

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function waitForChild(child: ChildProcess, name: string): Promise<ChildResult> {
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-16_384);
  });
  return new Promise((resolve, reject) => {
    child.once('error', (error) => reject(new Error(`${name} could not be started: ${error.message}`)));
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

function assertSucceeded(result: ChildResult, name: string): void {
  if (result.code !== 0)
    throw new Error(`${name} failed (${result.signal ?? `exit code ${result.code}`}): ${result.stderr.trim().split('\n').slice(-5).join('\n')}`);
}

/** `pg_dump -Fc -Z0 | zstd > /dev/null`: the same two processes and OS pipe as the task, and nothing else. */
export async function runReadLimit(context: ScenarioContext, { warmUp }: { warmUp: boolean }): Promise<RunMeasurement> {
  const { options, cluster } = context;
  // The task's pg_dump arguments minus --snapshot, which needs the task's open transaction.
  const dumpArgs = pgDumpArguments({ snapshotId: '', lockWaitTimeoutSeconds: 600 }).filter((arg) => !arg.startsWith('--snapshot'));
  const sampler = new RunSampler({ postmasterPid: context.postmasterPid, s3ServerPid: context.s3.pid });
  const devNull = openSync('/dev/null', 'w');
  const started = performance.now();
  try {
    const pgDump = spawn(context.pgDumpPath, dumpArgs, {
      env: { ...process.env, ...cluster.env(DATABASE_NAME) },
      stdio: ['ignore', warmUp ? devNull : 'pipe', 'pipe'],
    });
    const zstd = warmUp
      ? undefined
      : spawn('zstd', zstdArguments(options.compressionLevel, options.compressionThreads), { stdio: [pgDump.stdout ?? 'ignore', devNull, 'pipe'] });
    // zstd holds its own end of the pipe now; ours must not consume dump bytes.
    pgDump.stdout?.destroy();
    sampler.track(pgDump.pid);
    sampler.track(zstd?.pid);
    const [dumpResult, zstdResult] = await Promise.all([waitForChild(pgDump, 'pg_dump'), zstd ? waitForChild(zstd, 'zstd') : undefined]);
    const seconds = (performance.now() - started) / 1000;
    assertSucceeded(dumpResult, 'pg_dump');
    if (zstdResult) assertSucceeded(zstdResult, 'zstd');
    const counts = zstdResult ? zstdByteCounts(zstdResult.stderr) : undefined;
    const finished = sampler.finish();
    return { seconds, outputBytes: counts?.output ?? 0, peakTreeRssBytes: sampler.peakTreeRss, ...finished, extra: { uncompressedBytes: counts?.input ?? 0 } };
  } finally {
    closeSync(devNull);
  }
}

function zstdByteCounts(stderr: string): { input: number; output: number } | undefined {
  const last = [...stderr.matchAll(/\((\d+) B => (\d+) B/g)].at(-1);
  return last ? { input: Number(last[1]), output: Number(last[2]) } : undefined;
}

/** pg_dump -Fc with its default compression to a local file, then a multipart upload of that file. */
async function runRecipe(context: ScenarioContext): Promise<RunMeasurement> {
  const { cluster, s3, workDir } = context;
  const dumpFile = path.join(workDir, 'recipe.dump');
  const key = `bench/recipe-${Date.now()}.dump`;
  const sampler = new RunSampler({ postmasterPid: context.postmasterPid, s3ServerPid: s3.pid, tempDir: workDir });
  const started = performance.now();
  try {
    const pgDump = spawn(context.pgDumpPath, ['--format=custom', '--no-password', `--file=${dumpFile}`], {
      env: { ...process.env, ...cluster.env(DATABASE_NAME) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    sampler.track(pgDump.pid);
    assertSucceeded(await waitForChild(pgDump, 'pg_dump'), 'pg_dump');
    const dumpSeconds = (performance.now() - started) / 1000;
    const outputBytes = (await stat(dumpFile)).size;
    await uploadFile(s3, key, dumpFile);
    const seconds = (performance.now() - started) / 1000;
    const finished = sampler.finish();
    return {
      seconds,
      outputBytes,
      tempDiskBytes: Math.max(sampler.peakTempBytes, outputBytes),
      peakTreeRssBytes: sampler.peakTreeRss,
      ...finished,
      extra: { dumpSeconds, uploadSeconds: seconds - dumpSeconds },
    };
  } finally {
    await rm(dumpFile, { force: true });
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key })).catch(() => undefined);
  }
}

/**
 * The recipe's upload as `aws s3 cp` or lib-storage do it: multipart with fixed 8 MiB parts, four at
 * a time. A single PutObject would be simpler, but S3 only takes it up to 5 GB, no tool uses it for
 * large files, and the local server refuses bodies over 11 MiB.
 */
async function uploadFile(s3: S3ServerProcess, key: string, file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const partCount = Math.max(1, Math.ceil(size / RECIPE_PART_BYTES));
    await multipartUpload(s3, key, partCount, RECIPE_PARTS_IN_FLIGHT, async (index) => {
      const length = Math.min(RECIPE_PART_BYTES, size - index * RECIPE_PART_BYTES);
      const body = Buffer.allocUnsafe(length);
      await handle.read(body, 0, length, index * RECIPE_PART_BYTES);
      return body;
    });
  } finally {
    await handle.close();
  }
}

/** Resolves to the seconds CompleteMultipartUpload took: the local server assembles the object then. */
async function multipartUpload(
  s3: S3ServerProcess,
  key: string,
  partCount: number,
  inFlight: number,
  partBody: (index: number) => Promise<Buffer>,
): Promise<number> {
  const created = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
  const parts: CompletedPart[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < partCount) {
      const index = next;
      next += 1;
      const body = await partBody(index);
      const response = await s3.client.send(
        new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId: created.UploadId, PartNumber: index + 1, Body: body, ContentLength: body.length }),
      );
      parts.push({ PartNumber: index + 1, ETag: response.ETag });
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, partCount) }, worker));
  parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  const completing = performance.now();
  await s3.client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: parts } }));
  return (performance.now() - completing) / 1000;
}

/** The bundled task, as its own process with only the environment the container would give it. */
async function runPgkeep(context: ScenarioContext, s3: S3ServerProcess): Promise<RunMeasurement> {
  const { options, cluster } = context;
  const tempDir = await mkdtemp(path.join(context.workDir, 'task-tmp-'));
  const sampler = new RunSampler({ postmasterPid: context.postmasterPid, s3ServerPid: s3.pid, tempDir });
  const started = performance.now();
  const task = startTask({
    command: 'backup',
    bundledEntry: context.bundledEntry,
    env: {
      ...cluster.env(DATABASE_NAME),
      ...s3.env,
      PGKEEP_ENVIRONMENT: 'bench',
      PGKEEP_PG_DUMP_PATH: context.pgDumpPath,
      PGKEEP_COMPRESSION_LEVEL: String(options.compressionLevel),
      PGKEEP_COMPRESSION_THREADS: String(options.compressionThreads),
      PGKEEP_PART_SIZE_MIB: String(options.partSizeMib),
      PGKEEP_PARTS_IN_FLIGHT: String(options.partsInFlight),
      // Everything the task and its children might spool to disk would land here.
      TMPDIR: tempDir,
    },
  });
  sampler.track(task.child.pid);
  const exit = await task.exited;
  const ended = performance.now();
  const seconds = (ended - started) / 1000;
  const finished = sampler.finish();
  await rm(tempDir, { recursive: true, force: true });
  const completed = exit.logs.find((line) => line.message === 'backup completed');
  if (exit.code !== 0 || !completed) {
    const failure = exit.logs.find((line) => line.level === 'ERROR');
    throw new Error(`The backup task failed (exit ${exit.code ?? exit.signal}): ${failure ? JSON.stringify(failure) : exit.otherOutput.slice(-5).join('\n')}`);
  }
  await deleteBackup(s3, completed);
  return {
    seconds,
    outputBytes: Number(completed.bytes),
    peakRssBytes: sampler.peakRootHwm,
    peakTreeRssBytes: sampler.peakTreeRss,
    tempDiskBytes: sampler.peakTempBytes,
    ...finished,
    extra: {
      taskDurationSeconds: Number(completed.durationMs) / 1000,
      uncompressedBytes: Number(completed.uncompressedBytes),
      partCount: Number(completed.partCount),
      // From the process samples (100 ms resolution): before zstd runs (process start, connecting,
      // snapshot, creating the upload), while it runs, and after (last parts, completing, manifest).
      ...phases(started, ended, sampler.seen.get('zstd')),
    },
  };
}

function phases(started: number, ended: number, zstd: { first: number; last: number } | undefined): Record<string, number> {
  if (!zstd) return {};
  return { beforeDumpSeconds: (zstd.first - started) / 1000, dumpingSeconds: (zstd.last - zstd.first) / 1000, afterDumpSeconds: (ended - zstd.last) / 1000 };
}

async function deleteBackup(s3: S3ServerProcess, completed: TaskLogLine): Promise<void> {
  // The server holds everything in memory: three 3 GB runs would otherwise pile up there.
  for (const key of [completed.key, completed.manifestKey]) {
    if (typeof key === 'string') await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
  }
}

/** The same bytes pgkeep produced, uploaded from memory with pgkeep's part sizes and concurrency. */
async function runS3Alone(context: ScenarioContext): Promise<RunMeasurement> {
  const { options, s3 } = context;
  const totalBytes = context.pgkeepOutputBytes ?? Math.round(context.options.sizeMb * MIB * 0.15);
  const initialPartBytes = options.partSizeMib * MIB;
  const partSizes: number[] = [];
  for (let remaining = totalBytes, partNumber = 1; remaining > 0; partNumber += 1) {
    const size = Math.min(remaining, partSizeFor(partNumber, initialPartBytes));
    partSizes.push(size);
    remaining -= size;
  }
  // Incompressible, like zstd's output; the server does not care, but an honest body costs nothing.
  const source = randomFillSync(Buffer.allocUnsafe(Math.max(...partSizes, 1)));
  const key = `bench/s3-alone-${Date.now()}`;
  const sampler = new RunSampler({ postmasterPid: context.postmasterPid, s3ServerPid: s3.pid });
  const started = performance.now();
  try {
    const completeSeconds = await multipartUpload(s3, key, partSizes.length, options.partsInFlight, (index) =>
      Promise.resolve(source.subarray(0, partSizes[index])),
    );
    const seconds = (performance.now() - started) / 1000;
    return { seconds, outputBytes: totalBytes, ...sampler.finish(), extra: { completeSeconds } };
  } finally {
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key })).catch(() => undefined);
  }
}
