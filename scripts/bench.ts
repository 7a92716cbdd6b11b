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
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import pg from 'pg';
import { PIPELINE_DEFAULTS, parseDecimalInteger } from '../task/config.ts';
import { pgDumpArguments, zstdArguments } from '../task/dump-pipeline.ts';
import { partSizeFor } from '../task/part-sizes.ts';
import { findPgBinaries, pickPgDumpForServer } from '../task/postgres-binaries.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../task/throwaway-cluster.ts';
import { buildTaskBundle } from '../task/build.ts';
import { createSampleDatabase } from './sample-database.ts';
import { REPO_ROOT, startTask, type TaskLogLine } from './task-process.ts';

const USAGE = `Usage: npm run bench -- [options]

Measures pgkeep's backup against the read limit (pg_dump | zstd > /dev/null), the usual recipe
(pg_dump -Fc to a file, then upload) and the local S3 server alone, with alternating repeats.

Options:
  --size-mb N              size of the generated database in MiB (default 1000)
  --repeats N              measured runs of each scenario (default 5)
  --compression-level N    zstd level for the read limit and pgkeep (default: the task's, ${PIPELINE_DEFAULTS.compressionLevel})
  --compression-threads N  zstd threads for both, 0 = one per core (default: the task's, ${PIPELINE_DEFAULTS.compressionThreads})
  --part-size-mib N        pgkeep's first part size (default: the task's, ${PIPELINE_DEFAULTS.partSizeMib}; the local server takes at most 10)
  --parts-in-flight N      pgkeep's concurrent part uploads (default: the task's, ${PIPELINE_DEFAULTS.partsInFlight})
  --only LIST              comma-separated subset of read-limit,recipe,pgkeep,s3-alone,pgkeep-sink
  --fresh                  rebuild the cached sample database
  --json                   print one JSON object as the last line of stdout
  --cache-dir DIR          where generated databases are kept (default: .pgkeep-local)
  --quiet-wait-max-seconds N  before each run, wait up to N s for other load to stop (default 30;
                           0 = do not wait, for a smoke run on a busy machine)
  -h, --help               show this help
`;

/** Targets on a 2-core machine (issue 7). */
const TARGETS = { ratioToReadLimit: 1.15, speedupVsRecipe: 2, peakRssMb: 256, tempDiskBytes: 0 } as const;
/** The usual recipe's upload: what `aws s3 cp` does with its defaults for large files (8 MiB parts). */
const RECIPE_PART_BYTES = 8 * 2 ** 20;
/** @aws-sdk/lib-storage's default queue size: the upload most Node recipes use. */
const RECIPE_PARTS_IN_FLIGHT = 4;
const SAMPLE_INTERVAL_MS = 100;
const DEFAULT_CACHE_ROOT = path.join(REPO_ROOT, '.pgkeep-local');
const DATABASE_NAME = 'bench';
const MIB = 2 ** 20;
const MB = 1e6;
const CLOCK_TICKS_PER_SECOND = 100;

const SCENARIOS = ['read-limit', 'recipe', 'pgkeep', 's3-alone', 'pgkeep-sink'] as const;
type ScenarioName = (typeof SCENARIOS)[number];

interface BenchOptions {
  sizeMb: number;
  repeats: number;
  compressionLevel: number;
  compressionThreads: number;
  partSizeMib: number;
  partsInFlight: number;
  only: ScenarioName[];
  fresh: boolean;
  json: boolean;
  cacheRoot: string;
  quietWaitMaxSeconds: number;
}

/** What one run of one scenario measured. */
interface RunMeasurement {
  seconds: number;
  outputBytes: number;
  /** Peak VmHWM of the measured process (pgkeep: the task's node process). */
  peakRssBytes?: number;
  /** Peak of the summed RSS of the process tree (pgkeep: node + pg_dump + zstd). */
  peakTreeRssBytes?: number;
  /** Peak bytes in the task's TMPDIR (pgkeep) or the dump file (recipe). */
  tempDiskBytes?: number;
  /** Bytes the measured processes wrote to storage (/proc/<pid>/io write_bytes). */
  storageWriteBytes?: number;
  /**
   * Busy core-seconds of the whole machine during the run, and its parts: the measured processes
   * (by command name in byCommand), PostgreSQL's server processes, the S3 server, this benchmark
   * process, and `other` — whatever else ran on the machine, which makes a run unrepresentative.
   */
  cpu: { machine: number; measured: number; postgres: number; s3Server: number; bench: number; other: number; byCommand: Record<string, number> };
  /** Seconds spent waiting for the machine to become quiet before the run. */
  quietWaitSeconds?: number;
  extra?: Record<string, number>;
}

async function main(): Promise<void> {
  const options = parseOptions();
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
    say(`Database "${DATABASE_NAME}": ${(source.databaseBytes / MB).toFixed(0)} MB (pg_database_size), PostgreSQL ${cluster.version}, ${pgDump.path} ${pgDump.version}`);

    const workDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-bench-'));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    const context: ScenarioContext = { options, cluster, pgDumpPath: pgDump.path, s3, sink, workDir, bundledEntry, postmasterPid, pgkeepOutputBytes: undefined };

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
        say(`  [${repeat}/${options.repeats}] ${name.padEnd(10)} ${measurement.seconds.toFixed(2)} s` +
          `  CPU core-s: machine ${measurement.cpu.machine.toFixed(1)}, measured ${measurement.cpu.measured.toFixed(1)} ${JSON.stringify(roundAll(measurement.cpu.byCommand))},` +
          ` postgres ${measurement.cpu.postgres.toFixed(1)}, S3 server ${measurement.cpu.s3Server.toFixed(1)}, bench ${measurement.cpu.bench.toFixed(1)}, other ${measurement.cpu.other.toFixed(1)}`);
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

function parseOptions(): BenchOptions {
  const { values } = parseArguments();
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const whole = (name: keyof typeof values, min: number, max: number): number => {
    const raw = String(values[name]);
    const value = parseDecimalInteger(raw);
    if (value === undefined || value < min || value > max) {
      throw new UsageError(`--${name} ${raw} is invalid: expected a whole number from ${min} to ${max}.`);
    }
    return value;
  };
  const only = String(values.only).split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = only.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0 || only.length === 0) throw new UsageError(`--only ${values.only} is invalid: expected a comma-separated subset of ${SCENARIOS.join(',')}.`);
  return {
    sizeMb: whole('size-mb', 10, 1_000_000),
    repeats: whole('repeats', 1, 100),
    compressionLevel: whole('compression-level', 1, 19),
    compressionThreads: whole('compression-threads', 0, 256),
    partSizeMib: whole('part-size-mib', 6, 512),
    partsInFlight: whole('parts-in-flight', 1, 16),
    // Keep the documented order: s3-alone uploads as many bytes as pgkeep produced.
    only: SCENARIOS.filter((name) => only.includes(name)),
    fresh: Boolean(values.fresh),
    json: Boolean(values.json),
    cacheRoot: path.resolve(String(values['cache-dir'])),
    quietWaitMaxSeconds: whole('quiet-wait-max-seconds', 0, 3_600),
  };
}

class UsageError extends Error {}

function parseArguments() {
  try {
    return parseArgs({
      options: {
        'size-mb': { type: 'string', default: '1000' },
        repeats: { type: 'string', default: '5' },
        'compression-level': { type: 'string', default: String(PIPELINE_DEFAULTS.compressionLevel) },
        'compression-threads': { type: 'string', default: String(PIPELINE_DEFAULTS.compressionThreads) },
        'part-size-mib': { type: 'string', default: String(PIPELINE_DEFAULTS.partSizeMib) },
        'parts-in-flight': { type: 'string', default: String(PIPELINE_DEFAULTS.partsInFlight) },
        only: { type: 'string', default: SCENARIOS.join(',') },
        fresh: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'cache-dir': { type: 'string', default: DEFAULT_CACHE_ROOT },
        'quiet-wait-max-seconds': { type: 'string', default: '30' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}.`);
  }
}

// ---------------------------------------------------------------------------------------------
// The source database: generated once per size, then reused.

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

async function prepareSourceDatabase(options: BenchOptions, say: (line: string) => void): Promise<SourceDatabase> {
  const cacheDir = path.join(options.cacheRoot, `bench-${options.sizeMb}`);
  const markerFile = path.join(cacheDir, 'bench-database.json');
  // A change to the generator changes the data, so it invalidates the cache.
  const generator = createHash('sha256').update(await readFile(fileURLToPath(new URL('./sample-database.ts', import.meta.url)))).digest('hex').slice(0, 16);
  const marker = await readFile(markerFile, 'utf8').then((text) => JSON.parse(text) as CacheMarker, () => undefined);
  const reusable = !options.fresh && marker?.generator === generator && marker.sizeMb === options.sizeMb;

  if (reusable) {
    say(`Reusing the sample database in ${path.relative(REPO_ROOT, cacheDir)} (built ${marker.builtAt}; --fresh rebuilds it)`);
    const cluster = await startThrowawayCluster({ persistentDir: cacheDir });
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
  const cluster = await startThrowawayCluster({ persistentDir: cacheDir });
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

// ---------------------------------------------------------------------------------------------
// The local S3 server, in a process of its own.

interface S3ServerProcess {
  pid: number;
  endpoint: string;
  bucket: string;
  env: Record<string, string>;
  client: S3Client;
  stop(): Promise<void>;
}

async function startS3ServerProcess(): Promise<S3ServerProcess> {
  const localS3Module = pathToFileURL(fileURLToPath(new URL('./local-s3.ts', import.meta.url))).href;
  // The server exits when its stdin closes, so it cannot outlive the benchmark.
  const program = `
    const { startLocalS3 } = await import(${JSON.stringify(localS3Module)});
    const s3 = await startLocalS3();
    process.stdout.write(JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket, env: s3.taskEnvironment() }) + '\\n');
    process.stdin.on('end', () => void s3.stop().finally(() => process.exit(0)));
    process.stdin.resume();`;
  return startServerProcess(['--import', 'tsx', '--input-type=module', '-e', program], 'The local S3 server');
}

/**
 * A stand-in for S3 that answers just the requests the backup task makes, counts the bytes and
 * discards them: what pgkeep costs when storing the bytes costs (almost) nothing on this machine.
 * It tells pgkeep's own overhead apart from the local S3 server's; it is no store, and no target
 * is judged against it.
 */
const SINK_SERVER_PROGRAM = `
  import { createServer } from 'node:http';
  const uploads = new Map();
  const objects = new Map();
  let uploadCount = 0;
  const server = createServer((request, response) => {
    let bytes = 0;
    request.on('data', (chunk) => { bytes += chunk.length; });
    request.on('end', () => {
      const url = new URL(request.url, 'http://sink');
      const query = url.searchParams;
      const key = url.pathname;
      const xml = (body) => { response.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }); response.end(body); };
      const empty = (status, headers = {}) => { response.writeHead(status, { 'content-length': 0, ...headers }); response.end(); };
      if (request.method === 'POST' && query.has('uploads')) {
        uploadCount += 1;
        uploads.set('u' + uploadCount, 0);
        return xml('<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>pgkeep-sink</Bucket><Key>k</Key><UploadId>u' + uploadCount + '</UploadId></InitiateMultipartUploadResult>');
      }
      if (request.method === 'PUT' && query.has('uploadId')) {
        uploads.set(query.get('uploadId'), (uploads.get(query.get('uploadId')) ?? 0) + bytes);
        return empty(200, { etag: '"part-' + query.get('partNumber') + '"' });
      }
      if (request.method === 'POST' && query.has('uploadId')) {
        objects.set(key, uploads.get(query.get('uploadId')) ?? 0);
        uploads.delete(query.get('uploadId'));
        return xml('<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>pgkeep-sink</Bucket><Key>k</Key><ETag>"sink"</ETag></CompleteMultipartUploadResult>');
      }
      if (request.method === 'PUT') { objects.set(key, bytes); return empty(200, { etag: '"sink"' }); }
      if (request.method === 'HEAD') {
        if (!objects.has(key)) return empty(404);
        response.writeHead(200, { 'content-length': objects.get(key), etag: '"sink"', 'last-modified': new Date().toUTCString() });
        return response.end();
      }
      if (request.method === 'DELETE') { uploads.delete(query.get('uploadId')); objects.delete(key); return empty(204); }
      return empty(400);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const endpoint = 'http://127.0.0.1:' + server.address().port;
    const env = { PGKEEP_BUCKET: 'pgkeep-sink', PGKEEP_S3_ENDPOINT: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'sink', AWS_SECRET_ACCESS_KEY: 'sink-secret', PGKEEP_METRICS: 'off' };
    process.stdout.write(JSON.stringify({ endpoint, bucket: 'pgkeep-sink', env }) + '\\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();`;

async function startSinkServerProcess(): Promise<S3ServerProcess> {
  return startServerProcess(['--input-type=module', '-e', SINK_SERVER_PROGRAM], 'The discarding S3 stand-in');
}

async function startServerProcess(nodeArguments: string[], name: string): Promise<S3ServerProcess> {
  const child = spawn(process.execPath, nodeArguments, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const firstLine = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', resolve);
    child.once('close', (code) => reject(new Error(`${name} process exited (code ${code}) before it was ready.`)));
  });
  const ready = JSON.parse(firstLine) as { endpoint: string; bucket: string; env: Record<string, string> };
  const { AWS_REGION: region = 'us-east-1', AWS_ACCESS_KEY_ID: accessKeyId = '', AWS_SECRET_ACCESS_KEY: secretAccessKey = '' } = ready.env;
  const client = new S3Client({
    endpoint: ready.endpoint,
    region,
    credentials: { accessKeyId, secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    pid: child.pid ?? 0,
    endpoint: ready.endpoint,
    bucket: ready.bucket,
    env: ready.env,
    client,
    stop: async () => {
      client.destroy();
      child.stdin?.end();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Measuring processes through /proc: memory, CPU, storage writes.

interface ProcStat {
  command: string;
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; the rest follows the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[1] is the ppid (stat field 4), fields[11] and [12] utime and stime (fields 14, 15).
    return { command: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined; // exited between listing and reading
  }
}

/** Only for the measured processes: reading these for every process would cost the benchmark CPU it measures. */
function readMemoryAndWrites(pid: number): { rssBytes: number; hwmBytes: number; writeBytes: number } {
  let rssBytes = 0;
  let hwmBytes = 0;
  let writeBytes = 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    rssBytes = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    hwmBytes = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    writeBytes = Number(/^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    // exited meanwhile
  }
  return { rssBytes, hwmBytes, writeBytes };
}

function listProcesses(): Map<number, ProcStat> {
  const processes = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) processes.set(Number(entry), stat);
  }
  return processes;
}

function descendantsOf(roots: number[], processes: Map<number, ProcStat>): Set<number> {
  const tree = new Set(roots.filter((pid) => processes.has(pid)));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, sample] of processes) {
      if (!tree.has(pid) && tree.has(sample.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}

function machineBusyTicks(): number {
  const [cpuLine = ''] = readFileSync('/proc/stat', 'utf8').split('\n', 1);
  const [, ...ticks] = cpuLine.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: busy is everything but idle and iowait.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
  return user + nice + system + irq + softirq + steal;
}

/**
 * Samples, every 100 ms, the processes of one scenario (their trees), PostgreSQL's processes and the
 * S3 server: peak memory, CPU and storage writes. CPU is counted per process from its first to its
 * last sample, so a process loses at most the last 100 ms before it exits; the machine's total busy
 * time (/proc/stat) is exact and is what the verdict on CPU saturation rests on.
 */
class RunSampler {
  private readonly timer: NodeJS.Timeout;
  private readonly startTicks = machineBusyTicks();
  private readonly startBenchCpu = process.cpuUsage();
  private readonly cpuFirst = new Map<number, number>();
  private readonly cpuLast = new Map<number, { ticks: number; group: 'measured' | 'postgres' | 's3Server'; command: string }>();
  private readonly writeFirst = new Map<number, number>();
  private readonly writeLast = new Map<number, number>();
  private readonly roots: number[] = [];
  peakRootHwm = 0;
  peakTreeRss = 0;
  peakTempBytes = 0;
  /** When each command of the measured tree was first and last seen (performance.now()). */
  readonly seen = new Map<string, { first: number; last: number }>();

  constructor(private readonly context: { postmasterPid: number | undefined; s3ServerPid: number; tempDir?: string }) {
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), SAMPLE_INTERVAL_MS);
  }

  /** The measured processes (their descendants are included). */
  track(pid: number | undefined): void {
    if (pid !== undefined) this.roots.push(pid);
    this.sample(false);
  }

  finish(): Pick<RunMeasurement, 'cpu' | 'storageWriteBytes'> {
    clearInterval(this.timer);
    this.sample(false);
    const cpu: RunMeasurement['cpu'] = { machine: (machineBusyTicks() - this.startTicks) / CLOCK_TICKS_PER_SECOND, measured: 0, postgres: 0, s3Server: 0, bench: 0, other: 0, byCommand: {} };
    for (const [pid, last] of this.cpuLast) {
      const seconds = (last.ticks - (this.cpuFirst.get(pid) ?? 0)) / CLOCK_TICKS_PER_SECOND;
      cpu[last.group] += seconds;
      if (last.group === 'measured') cpu.byCommand[last.command] = (cpu.byCommand[last.command] ?? 0) + seconds;
    }
    const benchCpu = process.cpuUsage(this.startBenchCpu);
    cpu.bench = (benchCpu.user + benchCpu.system) / 1e6;
    cpu.other = Math.max(0, cpu.machine - cpu.measured - cpu.postgres - cpu.s3Server - cpu.bench);
    let storageWriteBytes = 0;
    for (const [pid, last] of this.writeLast) storageWriteBytes += last - (this.writeFirst.get(pid) ?? 0);
    return { cpu, storageWriteBytes };
  }

  private sample(baseline: boolean): void {
    const processes = listProcesses();
    const measured = descendantsOf(this.roots, processes);
    const postgres = descendantsOf(this.context.postmasterPid === undefined ? [] : [this.context.postmasterPid], processes);
    const s3Server = descendantsOf([this.context.s3ServerPid], processes);
    let treeRss = 0;
    for (const [group, pids] of [['measured', measured], ['postgres', postgres], ['s3Server', s3Server]] as const) {
      for (const pid of pids) {
        const sample = processes.get(pid);
        if (!sample) continue;
        // A process present at the start counts from there; one started later counts from zero.
        if (!this.cpuFirst.has(pid)) this.cpuFirst.set(pid, baseline ? sample.cpuTicks : 0);
        this.cpuLast.set(pid, { ticks: sample.cpuTicks, group, command: sample.command });
        if (group === 'measured') {
          const now = performance.now();
          const seen = this.seen.get(sample.command);
          if (seen) seen.last = now;
          else this.seen.set(sample.command, { first: now, last: now });
        }
        if (group === 'measured') {
          const memory = readMemoryAndWrites(pid);
          treeRss += memory.rssBytes;
          if (this.roots.includes(pid)) this.peakRootHwm = Math.max(this.peakRootHwm, memory.hwmBytes);
          if (!this.writeFirst.has(pid)) this.writeFirst.set(pid, 0);
          this.writeLast.set(pid, memory.writeBytes);
        }
      }
    }
    this.peakTreeRss = Math.max(this.peakTreeRss, treeRss);
    if (this.context.tempDir) this.peakTempBytes = Math.max(this.peakTempBytes, directoryBytes(this.context.tempDir));
  }
}

/**
 * This machine may be shared (other test runs, builds). Waits, up to --quiet-wait-max-seconds, until the
 * machine is nearly idle before a run, so that other work does not land in one scenario only;
 * what still runs alongside is reported per run as `cpu.other`.
 */
const QUIET_BUSY_CORES = 0.25;

async function waitForQuietMachine(maxSeconds: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < maxSeconds * 1000) {
    const before = machineBusyTicks();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    if ((machineBusyTicks() - before) / CLOCK_TICKS_PER_SECOND < QUIET_BUSY_CORES) break;
  }
  return (performance.now() - started) / 1000;
}

function directoryBytes(directory: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(directory);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(directory, entry);
    try {
      const info = lstatSync(full);
      // Allocated blocks, or the size where data is not yet allocated (delayed allocation).
      total += info.isDirectory() ? directoryBytes(full) : Math.max(info.size, info.blocks * 512);
    } catch {
      // removed while counting
    }
  }
  return total;
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0] ?? '', 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    // As root the data directory belongs to the postgres user and is still readable; elsewhere the
    // server's CPU is simply not broken out.
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

interface ScenarioContext {
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

const SCENARIO_RUNNERS: Record<ScenarioName, (context: ScenarioContext) => Promise<RunMeasurement>> = {
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
  if (result.code !== 0) throw new Error(`${name} failed (${result.signal ?? `exit code ${result.code}`}): ${result.stderr.trim().split('\n').slice(-5).join('\n')}`);
}

/** `pg_dump -Fc -Z0 | zstd > /dev/null`: the same two processes and OS pipe as the task, and nothing else. */
async function runReadLimit(context: ScenarioContext, { warmUp }: { warmUp: boolean }): Promise<RunMeasurement> {
  const { options, cluster } = context;
  // The task's pg_dump arguments minus --snapshot, which needs the task's open transaction.
  const dumpArgs = pgDumpArguments({ snapshotId: '', lockWaitTimeoutSeconds: 600 }).filter((arg) => !arg.startsWith('--snapshot'));
  const sampler = new RunSampler({ postmasterPid: context.postmasterPid, s3ServerPid: context.s3.pid });
  const devNull = openSync('/dev/null', 'w');
  const started = performance.now();
  try {
    const pgDump = spawn(context.pgDumpPath, dumpArgs, { env: { ...process.env, ...cluster.env(DATABASE_NAME) }, stdio: ['ignore', warmUp ? devNull : 'pipe', 'pipe'] });
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
    const pgDump = spawn(context.pgDumpPath, ['--format=custom', '--no-password', `--file=${dumpFile}`], { env: { ...process.env, ...cluster.env(DATABASE_NAME) }, stdio: ['ignore', 'ignore', 'pipe'] });
    sampler.track(pgDump.pid);
    assertSucceeded(await waitForChild(pgDump, 'pg_dump'), 'pg_dump');
    const dumpSeconds = (performance.now() - started) / 1000;
    const outputBytes = (await stat(dumpFile)).size;
    await uploadFile(s3, key, dumpFile);
    const seconds = (performance.now() - started) / 1000;
    const finished = sampler.finish();
    return { seconds, outputBytes, tempDiskBytes: Math.max(sampler.peakTempBytes, outputBytes), peakTreeRssBytes: sampler.peakTreeRss, ...finished, extra: { dumpSeconds, uploadSeconds: seconds - dumpSeconds } };
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
async function multipartUpload(s3: S3ServerProcess, key: string, partCount: number, inFlight: number, partBody: (index: number) => Promise<Buffer>): Promise<number> {
  const created = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
  const parts: CompletedPart[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < partCount) {
      const index = next;
      next += 1;
      const body = await partBody(index);
      const response = await s3.client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId: created.UploadId, PartNumber: index + 1, Body: body, ContentLength: body.length }));
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
    const completeSeconds = await multipartUpload(s3, key, partSizes.length, options.partsInFlight, (index) => Promise.resolve(source.subarray(0, partSizes[index])));
    const seconds = (performance.now() - started) / 1000;
    return { seconds, outputBytes: totalBytes, ...sampler.finish(), extra: { completeSeconds } };
  } finally {
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key })).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Summary.

interface ScenarioSummary {
  runsSeconds: number[];
  medianSeconds: number;
  databaseMBps: number;
  outputBytes: number;
  peakRssMb: number | null;
  peakTreeRssMb: number | null;
  tempDiskBytes: number | null;
  storageWriteBytes: number | null;
  /** Medians, in core-seconds. */
  cpu: RunMeasurement['cpu'] & { machineBusyPercent: number };
  details: Record<string, number>;
  /** Seconds spent, over all runs, waiting for other load on the machine to stop. */
  quietWaitSeconds: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));
const roundAll = (values: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(values).map(([name, value]) => [name, round(value, 1)]));

function summarizeScenario(runs: RunMeasurement[], databaseBytes: number): ScenarioSummary {
  const medianOf = (pick: (run: RunMeasurement) => number): number => median(runs.map(pick));
  const maxOf = (pick: (run: RunMeasurement) => number | undefined): number | null => {
    const values = runs.map(pick).filter((value): value is number => value !== undefined);
    return values.length > 0 ? Math.max(...values) : null;
  };
  const medianSeconds = medianOf((run) => run.seconds);
  const cores = os.cpus().length;
  const details: Record<string, number> = {};
  for (const name of Object.keys(runs[0]?.extra ?? {})) details[name] = round(medianOf((run) => run.extra?.[name] ?? 0), 3);
  const peakRss = maxOf((run) => run.peakRssBytes);
  const peakTreeRss = maxOf((run) => run.peakTreeRssBytes);
  return {
    runsSeconds: runs.map((run) => round(run.seconds, 3)),
    medianSeconds: round(medianSeconds, 3),
    databaseMBps: round(databaseBytes / MB / medianSeconds, 1),
    outputBytes: Math.round(medianOf((run) => run.outputBytes)),
    peakRssMb: peakRss === null ? null : round(peakRss / MIB, 1),
    peakTreeRssMb: peakTreeRss === null ? null : round(peakTreeRss / MIB, 1),
    tempDiskBytes: maxOf((run) => run.tempDiskBytes),
    storageWriteBytes: maxOf((run) => run.storageWriteBytes),
    cpu: {
      machine: round(medianOf((run) => run.cpu.machine)),
      measured: round(medianOf((run) => run.cpu.measured)),
      postgres: round(medianOf((run) => run.cpu.postgres)),
      s3Server: round(medianOf((run) => run.cpu.s3Server)),
      bench: round(medianOf((run) => run.cpu.bench)),
      other: round(medianOf((run) => run.cpu.other)),
      byCommand: Object.fromEntries(Object.keys(runs[0]?.cpu.byCommand ?? {}).map((command) => [command, round(medianOf((run) => run.cpu.byCommand[command] ?? 0))])),
      machineBusyPercent: round((100 * medianOf((run) => run.cpu.machine / run.seconds)) / cores, 0),
    },
    details,
    quietWaitSeconds: round(runs.reduce((total, run) => total + (run.quietWaitSeconds ?? 0), 0), 1),
  };
}

function summarize(options: BenchOptions, databaseBytes: number, runs: Map<ScenarioName, RunMeasurement[]>) {
  const scenarios: Partial<Record<ScenarioName, ScenarioSummary>> = {};
  for (const [name, measurements] of runs) scenarios[name] = summarizeScenario(measurements, databaseBytes);
  const readLimit = scenarios['read-limit'];
  const recipe = scenarios.recipe;
  const pgkeep = scenarios.pgkeep;
  const s3Alone = scenarios['s3-alone'];
  const ratio = (a: number | undefined, b: number | undefined): number | null => (a !== undefined && b !== undefined && b > 0 ? round(a / b, 3) : null);
  const result = {
    sizeMb: options.sizeMb,
    databaseBytes,
    repeats: options.repeats,
    cpuCores: os.cpus().length,
    compressionLevel: options.compressionLevel,
    compressionThreads: options.compressionThreads,
    partSizeMib: options.partSizeMib,
    partsInFlight: options.partsInFlight,
    readLimitSeconds: readLimit?.medianSeconds ?? null,
    recipeSeconds: recipe?.medianSeconds ?? null,
    pgkeepSeconds: pgkeep?.medianSeconds ?? null,
    s3ServerAloneSeconds: s3Alone?.medianSeconds ?? null,
    ratioToReadLimit: ratio(pgkeep?.medianSeconds, readLimit?.medianSeconds),
    speedupVsRecipe: ratio(recipe?.medianSeconds, pgkeep?.medianSeconds),
    ratioToS3ServerAlone: ratio(pgkeep?.medianSeconds, s3Alone?.medianSeconds),
    /** pgkeep against a stand-in that discards the bytes: its own overhead, without the local server's. */
    pgkeepToSinkSeconds: scenarios['pgkeep-sink']?.medianSeconds ?? null,
    sinkRatioToReadLimit: ratio(scenarios['pgkeep-sink']?.medianSeconds, readLimit?.medianSeconds),
    /** How long the local server takes to assemble an object of pgkeep's size at CompleteMultipartUpload. */
    s3ServerCompleteSeconds: s3Alone?.details.completeSeconds ?? null,
    peakRssMb: pgkeep?.peakRssMb ?? null,
    peakTreeRssMb: pgkeep?.peakTreeRssMb ?? null,
    tempDiskBytes: pgkeep?.tempDiskBytes ?? null,
    targets: {} as Record<string, { target: string; met: boolean | null }>,
    targetsMet: null as boolean | null,
    scenarios,
  };
  const check = (value: number | null, met: (value: number) => boolean): boolean | null => (value === null ? null : met(value));
  result.targets = {
    ratioToReadLimit: { target: `<= ${TARGETS.ratioToReadLimit}`, met: check(result.ratioToReadLimit, (value) => value <= TARGETS.ratioToReadLimit) },
    speedupVsRecipe: { target: `>= ${TARGETS.speedupVsRecipe}`, met: check(result.speedupVsRecipe, (value) => value >= TARGETS.speedupVsRecipe) },
    peakRssMb: { target: `<= ${TARGETS.peakRssMb}`, met: check(result.peakRssMb, (value) => value <= TARGETS.peakRssMb) },
    tempDiskBytes: { target: `= ${TARGETS.tempDiskBytes}`, met: check(result.tempDiskBytes, (value) => value === TARGETS.tempDiskBytes) },
  };
  const verdicts = Object.values(result.targets).map((target) => target.met);
  result.targetsMet = verdicts.includes(null) ? null : verdicts.every(Boolean);
  return result;
}

type Summary = ReturnType<typeof summarize>;

function renderTable(summary: Summary): string {
  const mb = (bytes: number | null): string => (bytes === null ? '-' : (bytes / MB).toFixed(1));
  const header = ['scenario', 'median s', 'runs s', 'DB MB/s', 'output MB', 'peak RSS MiB', 'tree RSS MiB', 'temp disk MB', 'CPU busy %', 'S3 server core-s', 'other load core-s'];
  const labels: Record<ScenarioName, string> = { 'read-limit': 'read limit', recipe: 'usual recipe', pgkeep: 'pgkeep', 's3-alone': 'S3 server alone', 'pgkeep-sink': 'pgkeep -> discarding stand-in' };
  const rows = (Object.entries(summary.scenarios) as [ScenarioName, ScenarioSummary][]).map(([name, scenario]) => [
    labels[name],
    scenario.medianSeconds.toFixed(2),
    scenario.runsSeconds.map((seconds) => seconds.toFixed(2)).join(' '),
    name === 's3-alone' ? '-' : scenario.databaseMBps.toFixed(0),
    mb(scenario.outputBytes),
    scenario.peakRssMb === null ? '-' : scenario.peakRssMb.toFixed(0),
    scenario.peakTreeRssMb === null ? '-' : scenario.peakTreeRssMb.toFixed(0),
    mb(scenario.tempDiskBytes),
    String(scenario.cpu.machineBusyPercent),
    scenario.cpu.s3Server.toFixed(1),
    scenario.cpu.other.toFixed(1),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  const verdict = (name: keyof typeof TARGETS, value: number | null): string => {
    const target = summary.targets[name];
    return `${name} = ${value ?? '-'} (target ${target?.target ?? '?'}: ${target?.met === null ? 'not measured' : target?.met ? 'met' : 'NOT met'})`;
  };
  const noisy = Object.entries(summary.scenarios)
    .filter(([, scenario]) => scenario.cpu.other > 0.05 * summary.cpuCores * scenario.medianSeconds)
    .map(([name, scenario]) => `${name} (${scenario.cpu.other.toFixed(1)} core-s)`);
  return [
    ...(noisy.length > 0 ? ['', `WARNING: other processes used CPU during ${noisy.join(', ')}: the machine was not idle and these timings are pessimistic.`] : []),
    '',
    `Database: ${(summary.databaseBytes / MB).toFixed(0)} MB (pg_database_size; MB = 10^6 bytes), ${summary.repeats} alternating repeats, ${summary.cpuCores} cores.`,
    `zstd -${summary.compressionLevel} -T${summary.compressionThreads}; pgkeep parts from ${summary.partSizeMib} MiB, ${summary.partsInFlight} in flight.`,
    '',
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    verdict('ratioToReadLimit', summary.ratioToReadLimit),
    verdict('speedupVsRecipe', summary.speedupVsRecipe),
    verdict('peakRssMb', summary.peakRssMb),
    verdict('tempDiskBytes', summary.tempDiskBytes),
    `ratioToS3ServerAlone = ${summary.ratioToS3ServerAlone ?? '-'} (pgkeep / the local S3 server taking the same bytes from memory)`,
    `s3ServerCompleteSeconds = ${summary.s3ServerCompleteSeconds ?? '-'} (the local server assembling the object at CompleteMultipartUpload, which ends every pgkeep run)`,
    `sinkRatioToReadLimit = ${summary.sinkRatioToReadLimit ?? '-'} (pgkeep against a stand-in that discards the bytes / read limit: pgkeep's own overhead)`,
    '',
  ].join('\n');
}

try {
  await main();
} catch (error) {
  process.stderr.write(`${error instanceof UsageError ? `${error.message}\n\n${USAGE}` : `bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`}\n`);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
