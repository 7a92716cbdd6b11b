/**
 * `npm run bench`: how fast the backup task runs, measured against its physical limit and against
 * the usual recipe, on this machine, in one run with alternating repeats (A B C D A B C D ...), so
 * that drift of the machine (page cache, other load) hits every scenario alike.
 *
 *   read limit      pg_dump -Fc -Z0 | zstd (same level and threads) > /dev/null
 *   usual recipe    pg_dump -Fc (its built-in compression) to a file, then a multipart upload of the file
 *   pgkeep          the bundled task (dist/task/main.mjs, what the container runs), end to end
 *   S3 server alone the same number of bytes uploaded from memory with pgkeep's part schedule
 *   pgkeep -> stand-in  the task against a stand-in that discards the bytes: pgkeep's own overhead
 *
 * The generated sample database is kept in .pgkeep-local/bench-<size>/ and reused by later runs
 * (--fresh rebuilds it). The local S3 server runs in its own process, so that its CPU time can be
 * told apart from the task's and the benchmark's own bookkeeping never slows it down.
 * See docs/performance.md for the method and the results.
 *
 * The parts: options.ts (flags), generated-database.ts (the kept sample database), s3-servers.ts
 * (the S3 server processes), measure.ts (/proc: RSS, CPU, writes), scenarios.ts (what is timed),
 * report.ts (the table and the --json summary, stdout's last line).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findPgBinaries, pickPgDumpForServer } from '../../task/postgres-binaries.ts';
import { buildTaskBundle } from '../../task/build.ts';
import { runPostgresAsRootWhenRoot } from '../postgres-as-root.ts';
import { DATABASE_NAME, prepareSourceDatabase } from './generated-database.ts';
import { MB, readPostmasterPid, waitForQuietMachine, type RunMeasurement } from './measure.ts';
import { USAGE, UsageError, parseOptions, type ScenarioName } from './options.ts';
import { renderTable, roundAll, summarize } from './report.ts';
import { startS3ServerProcess, startSinkServerProcess } from './s3-servers.ts';
import { SCENARIO_RUNNERS, runReadLimit, type ScenarioContext } from './scenarios.ts';

async function main(): Promise<void> {
  const options = parseOptions();
  runPostgresAsRootWhenRoot();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const cleanups: (() => Promise<void>)[] = [];
  const stopOnSignal = (): void => {
    say('interrupted; cleaning up');
    void runCleanups(cleanups).finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  try {
    say('Building the task bundle (dist/task/main.mjs)...');
    const bundledEntry = await buildTaskBundle();

    const s3 = await startS3ServerProcess();
    cleanups.push(() => s3.stop());
    say(`Local S3 server (pid ${s3.pid}) at ${s3.endpoint}`);
    const sink = await startSinkServerProcess();
    cleanups.push(() => sink.stop());

    const source = await prepareSourceDatabase(options, say);
    cleanups.push(() => source.cluster.stop());
    const { cluster } = source;
    const postmasterPid = readPostmasterPid(cluster.dataDir);

    // The task picks its pg_dump the same way; it is also told this one (PGKEEP_PG_DUMP_PATH).
    const pgDump = pickPgDumpForServer(await findPgBinaries('pg_dump', { extraDirs: [cluster.binDir] }), cluster.major);
    if (!pgDump) throw new Error(`No pg_dump of major ${cluster.major} or newer is installed; install postgresql-client-${cluster.major}.`);
    say(
      `Database "${DATABASE_NAME}": ${(source.databaseBytes / MB).toFixed(0)} MB (pg_database_size), PostgreSQL ${cluster.version}, ${pgDump.path} ${pgDump.version}`,
    );

    const workDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-bench-'));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    const context: ScenarioContext = {
      options,
      cluster,
      pgDumpPath: pgDump.path,
      s3,
      sink,
      workDir,
      bundledEntry,
      postmasterPid,
      pgkeepOutputBytes: undefined,
    };

    // One untimed pass reads every table into the page cache (a reused cluster starts cold) and
    // sets the hint bits a freshly loaded table still lacks, which would otherwise make the first
    // measured scenario write to disk.
    say('Warm-up: one untimed pg_dump...');
    await runReadLimit(context, { warmUp: true });

    const runs = new Map<ScenarioName, RunMeasurement[]>(options.only.map((name) => [name, []]));
    for (let repeat = 1; repeat <= options.repeats; repeat += 1) {
      for (const name of options.only) {
        const quietWaitSeconds = await waitForQuietMachine(options.quietWaitMaxSeconds);
        const measurement = { ...(await SCENARIO_RUNNERS[name](context)), quietWaitSeconds };
        runs.get(name)?.push(measurement);
        if (name === 'pgkeep') context.pgkeepOutputBytes = measurement.outputBytes;
        say(
          `  [${repeat}/${options.repeats}] ${name.padEnd(10)} ${measurement.seconds.toFixed(2)} s` +
            `  CPU core-s: machine ${measurement.cpu.machine.toFixed(1)}, measured ${measurement.cpu.measured.toFixed(1)} ${JSON.stringify(roundAll(measurement.cpu.byCommand))},` +
            ` postgres ${measurement.cpu.postgres.toFixed(1)}, S3 server ${measurement.cpu.s3Server.toFixed(1)}, bench ${measurement.cpu.bench.toFixed(1)}, other ${measurement.cpu.other.toFixed(1)}`,
        );
      }
    }

    const summary = summarize(options, source.databaseBytes, runs);
    process.stdout.write(renderTable(summary));
    if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await runCleanups(cleanups);
  }
}

async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}

try {
  await main();
} catch (error) {
  process.stderr.write(
    `${error instanceof UsageError ? `${error.message}\n\n${USAGE}` : `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`}\n`,
  );
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
