/**
 * `npm start`: the whole pgkeep pipeline on this machine.
 *
 *   1. a source database: a throwaway PostgreSQL with a sample database (or yours: --database-url)
 *   2. an S3 endpoint: a local S3-protocol server (or yours: --s3-endpoint and --bucket)
 *   3. the backup task, run as its own process exactly as in the container
 *   4. read the backup back: SHA-256 against the manifest, `pg_restore --list` of the archive
 *   5. verify-backup: the Lambda's own handler code, invoked with an S3-shaped event
 *   6. backup-health: the Lambda's own code, for the database just backed up
 *   7. enforce-retention in dry-run mode: the plan for the local bucket, nothing deleted
 *   8. the restore drill, run as the task's `drill` command: the newest verified backup restored
 *      into a throwaway cluster, re-hashed and compared table by table with its manifest
 *   9. the vault path (docs/vault.md): a second local S3 server stands in for the vault in another
 *      region; the backup is copied there as S3 Replication would (the same bytes, no tags), the
 *      vault verifier checks the copy, and the restore task restores it from there into a new
 *      database (on the throwaway source server only; never on a server given with --database-url)
 *  10. a summary (with --json, one JSON object as the last line of stdout)
 *
 * There is no CloudWatch or SNS here: the metrics and alerts the functions would publish are
 * collected and shown in the summary instead.
 *
 * The steps are the STEPS list below, in the order they run in AWS.
 */
import { parseArgs } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { parse as parseConnectionUrl } from 'pg-connection-string';
import { findNewestBackup, type Backup } from '../runtime/listing.ts';
import { parseManifest, type Manifest } from '../catalog/manifest.ts';
import { readArchiveInto } from '../task/archive-reader.ts';
import { parseDecimalInteger } from '../task/config.ts';
import { findPgBinaries } from '../task/postgres-binaries.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../task/throwaway-cluster.ts';
import { startLocalS3 } from './local-s3.ts';
import { runPostgresAsRootWhenRoot } from './postgres-as-root.ts';
import { createSampleDatabase } from './sample-database.ts';
import { startTask, type TaskLogLine } from './task-process.ts';
import { Logger } from '@aws-lambda-powertools/logger';
import { objectCreatedEvent } from './s3-event.ts';
import { collectingSink } from '../runtime/metrics.ts';
import { collectingAlertSink } from '../functions/shared/alerts.ts';
import { handleS3Event } from '../functions/verify-backup/handler.ts';
import { checkHealth } from '../functions/backup-health/handler.ts';
import { runRetention } from '../functions/enforce-retention/handler.ts';
import { DEFAULT_RETENTION_POLICY } from '../catalog/retention-policy.ts';

const USAGE = `Usage: npm start -- [options]

Runs the whole pgkeep pipeline locally: sample database -> backup task -> local S3 -> read back ->
verify-backup -> backup-health -> enforce-retention (dry run) -> restore drill -> the vault path
(a second local bucket: the copy, the vault verifier, a restore from it).

Options:
  --json                 print one JSON summary object as the last line of stdout
  --database-url URL     back up this database instead of a throwaway sample (postgresql://...);
                         PGPASSWORD supplies a password the URL lacks, PGSSLMODE and PGSSLROOTCERT apply too
  --s3-endpoint URL      use this S3-compatible endpoint instead of a local server
  --bucket NAME          bucket on --s3-endpoint (required with it); credentials from AWS_* variables
  --size-mb N            size of the generated sample database (default 40)
  --compression-level N  zstd level for the backup (default: the task's default)
  -h, --help             show this help
`;

interface RunOptions {
  json: boolean;
  databaseUrl: string | undefined;
  s3Endpoint: string | undefined;
  bucket: string | undefined;
  sizeMb: number;
  compressionLevel: string | undefined;
}

interface RunContext {
  options: RunOptions;
  say: (line: string) => void;
  cleanups: (() => Promise<void>)[];
  source?: { env: Record<string, string>; description: string; databaseName: string };
  s3?: { client: S3Client; bucket: string; env: Record<string, string>; description: string };
  backup?: { backup: Backup; manifest: Manifest; durationMs: number };
  readBack?: { sha256Matches: boolean; tocEntries: number };
  metrics: ReturnType<typeof collectingSink>;
  alerts: ReturnType<typeof collectingAlertSink>;
  summary: Record<string, unknown>;
}

type Step = { title: string; run: (context: RunContext) => Promise<void> };

const STEPS: Step[] = [
  { title: 'source database', run: prepareSourceDatabase },
  { title: 'S3 endpoint', run: prepareS3 },
  { title: 'backup task', run: runBackupTask },
  { title: 'read back', run: readBackBackup },
  { title: 'verify-backup (upload check)', run: verifyUploadedBackup },
  { title: 'backup-health', run: checkBackupHealth },
  { title: 'enforce-retention (dry run)', run: planRetentionDryRun },
  { title: 'restore drill', run: runRestoreDrill },
  { title: 'vault (off-site copy)', run: runVaultPath },
];

/**
 * S3 Replication is S3's job, so here it is stood in for by copying the same bytes into a second
 * store, without the source's tags (the replication role cannot read them, catalog/vault.ts). The
 * local store keeps no checksums, so the vault verifier recomputes SHA-256 against the manifest,
 * and it has no Object Lock, so the verifier extends no lock here.
 */
async function runVaultPath(context: RunContext): Promise<void> {
  const { say, s3, source, backup, options } = context;
  if (!s3 || !source || !backup) throw new Error('internal: vault before the backup');
  if (options.s3Endpoint) {
    say('  skipped: with --s3-endpoint there is no second local store to stand in for the vault');
    context.summary.vault = { skipped: true };
    return;
  }
  const vault = await startLocalS3({ bucket: 'pgkeep-local-vault' });
  context.cleanups.push(() => vault.stop());
  say(`  a second local S3 server ${vault.endpoint} bucket ${vault.bucket} stands in for the vault (another region and account on AWS)`);
  const vaultClient = vault.client();
  for (const key of [backup.backup.dataKey, backup.backup.manifestKey]) {
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    await vaultClient.send(new PutObjectCommand({ Bucket: vault.bucket, Key: key, Body: Buffer.from(await object.Body!.transformToByteArray()) }));
  }
  say(`  copied ${backup.backup.dataKey} and its manifest as S3 Replication would: the same bytes, no tags`);

  const [checked] = await handleS3Event(
    {
      s3: vaultClient,
      metrics: context.metrics,
      alerts: context.alerts,
      logger: quietLogger,
      environment: 'local',
      maxStreamBytes: 10 * 2 ** 30,
      site: 'vault',
    },
    objectCreatedEvent(vault.bucket, backup.backup.manifestKey),
  );
  if (!checked) throw new Error('the vault verifier returned no result');
  say(
    `  vault verifier: the copy is ${checked.status} (${checked.method === 'sha256' ? 'SHA-256 recomputed: this store reports no checksum' : checked.method})`,
  );
  if (checked.status !== 'verified') throw new Error(`the vault copy is ${checked.status}: ${checked.problems.join('; ')} What to do: ${checked.remedy}`);

  const [planned] = await runRetention({
    s3: s3.client,
    metrics: collectingSink(),
    logger: quietLogger,
    bucket: s3.bucket,
    environment: 'local',
    databases: [source.databaseName],
    policy: DEFAULT_RETENTION_POLICY,
    dryRun: true,
    objectLock: false,
    incompleteGraceHours: 48,
    offsite: { s3: vaultClient, bucket: vault.bucket },
  });
  if (!planned || 'error' in planned) throw new Error(`retention with the vault failed: ${planned && 'error' in planned ? planned.error : 'no result'}`);
  say(
    `  enforce-retention (dry run) waiting for verified off-site copies: would delete ${planned.deletions.length}, keep ${planned.kept}, ${planned.keptAwaitingOffsite} of them only until their copy is verified`,
  );

  const vaultSummary: Record<string, unknown> = { copyStatus: checked.status, method: checked.method, keptAwaitingOffsite: planned.keptAwaitingOffsite };
  context.summary.vault = vaultSummary;
  if (options.databaseUrl) {
    say('  restore from the vault skipped: it would create a database on the server given with --database-url');
    return;
  }
  const exit = await startTask({
    command: 'restore',
    env: { ...vault.taskEnvironment(), ...source.env, PGKEEP_ENVIRONMENT: 'local', PGKEEP_METRICS: 'off', PGKEEP_RESTORE_SOURCE: source.databaseName },
  }).exited;
  const completed = exit.logs.find((line) => line.message === 'restore completed');
  if (exit.code !== 0 || !completed)
    throw new Error(
      `the restore from the vault failed (exit ${exit.code ?? exit.signal}): ${describeFailure(exit.logs.find((line) => line.level === 'ERROR'))}`,
    );
  say(
    `  restored ${completed.backupId as string} from the vault into the new database ${completed.targetDatabase as string} in ${completed.restoreSeconds as number} s, ${completed.tablesCompared as number} tables compared with the manifest, no differences`,
  );
  vaultSummary.restoredInto = completed.targetDatabase;
}

async function runRestoreDrill(context: RunContext): Promise<void> {
  const { say, s3, source } = context;
  if (!s3 || !source) throw new Error('internal: drill before the backup');
  say('  restoring the newest verified backup into a throwaway PostgreSQL cluster...');
  const task = startTask({
    command: 'drill',
    env: { ...s3.env, PGKEEP_ENVIRONMENT: 'local', PGKEEP_DRILL_DATABASES: JSON.stringify([source.databaseName]), PGKEEP_METRICS: 'off' },
  });
  const exit = await task.exited;
  const outcome = exit.logs.find((line) => line.message === 'drill passed' || line.message === 'drill failed');
  const failure = exit.logs.find((line) => line.message === 'drill failed' || line.message === 'drill failed to run');
  if (!outcome)
    throw new Error(
      `the drill task exited with ${exit.code ?? exit.signal} without an outcome: ${describeFailure(exit.logs.find((line) => line.level === 'ERROR'))}`,
    );
  const drill = {
    ok: outcome.ok === true && exit.code === 0,
    restoreSeconds: outcome.restoreSeconds as number | undefined,
    tablesCompared: outcome.tablesCompared as number,
    mismatches: outcome.mismatches as string[],
    record: outcome.recordKey as string | undefined,
  };
  context.summary.drill = drill;
  say(
    `  ${drill.ok ? 'passed' : 'FAILED'}: restored ${outcome.backupId as string} in ${drill.restoreSeconds ?? '?'} s (the RTO), ${drill.tablesCompared} tables compared, ${drill.mismatches.length} mismatches`,
  );
  if (drill.record) say(`  drill record: s3://${s3.bucket}/${drill.record}`);
  if (!drill.ok) throw new Error(`the restore drill failed: ${(failure?.error as string | undefined) ?? drill.mismatches.join('; ')}`);
}

async function planRetentionDryRun(context: RunContext): Promise<void> {
  const { say, s3, source } = context;
  if (!s3 || !source) throw new Error('internal: retention before the backup');
  const policy = DEFAULT_RETENTION_POLICY;
  say(
    `  policy: ${policy.daily} daily, ${policy.weekly} weekly, ${policy.monthly} monthly, ${policy.yearly} yearly (${policy.timezone}), at least ${policy.minVerified} verified kept`,
  );
  const [result] = await runRetention({
    s3: s3.client,
    metrics: context.metrics,
    logger: quietLogger,
    bucket: s3.bucket,
    environment: 'local',
    databases: [source.databaseName],
    policy,
    dryRun: true,
    objectLock: false,
    incompleteGraceHours: 48,
  });
  if (!result || 'error' in result) throw new Error(`retention failed: ${result && 'error' in result ? result.error : 'no result'}`);
  for (const decision of result.decisions)
    say(
      `  ${decision.action === 'keep' ? 'keep  ' : 'DELETE'} ${decision.backupId}${decision.tier ? ` [${decision.tier}]` : ''}: ${decision.reasons.join('; ')}`,
    );
  say(`  would delete ${result.deletions.length}, keep ${result.kept}; nothing was deleted (dry run)`);
  context.summary.retention = { dryRun: true, kept: result.kept, deleted: result.deletions.length };
}

/** The functions log through Powertools as in Lambda; here the run prints its own narrative. */
const quietLogger = new Logger({ serviceName: 'pgkeep-local', logLevel: 'SILENT' });

async function verifyUploadedBackup(context: RunContext): Promise<void> {
  const { say, s3, backup } = context;
  if (!s3 || !backup) throw new Error('internal: verification before the backup');
  const event = objectCreatedEvent(s3.bucket, backup.backup.manifestKey);
  const [result] = await handleS3Event(
    { s3: s3.client, metrics: context.metrics, alerts: context.alerts, logger: quietLogger, environment: 'local', maxStreamBytes: 10 * 2 ** 30 },
    event,
  );
  if (!result) throw new Error('verify-backup returned no result');
  say(
    `  ${result.status} (${result.method === 'sha256' ? 'SHA-256 recomputed: this store reports no checksum' : result.method})${result.problems.length > 0 ? `: ${result.problems.join('; ')}` : ''}`,
  );
  // A second delivery of the same event, as S3 may do: it must not count twice.
  const [again] = await handleS3Event(
    { s3: s3.client, metrics: context.metrics, alerts: context.alerts, logger: quietLogger, environment: 'local', maxStreamBytes: 10 * 2 ** 30 },
    event,
  );
  say(`  duplicate delivery of the same event: ${again?.duplicate ? 'recognised, nothing counted twice' : 'NOT recognised'}`);
  context.summary.verification = { status: result.status, method: result.method, problems: result.problems, duplicateIgnored: again?.duplicate === true };
  if (result.status !== 'verified') throw new Error(`verification ${result.status}: ${result.problems.join('; ')} What to do: ${result.remedy}`);
}

async function checkBackupHealth(context: RunContext): Promise<void> {
  const { say, s3, source } = context;
  if (!s3 || !source) throw new Error('internal: health before the backup');
  const [health] = await checkHealth({
    s3: s3.client,
    metrics: context.metrics,
    logger: quietLogger,
    bucket: s3.bucket,
    environment: 'local',
    databases: [source.databaseName],
    baselineCount: 7,
  });
  if (!health) throw new Error('backup-health returned no result');
  say(
    `  newest verified backup: ${health.newestVerified ? `${health.newestVerified.backupId}, ${health.ageSeconds} s old, ${formatBytes(health.sizeBytes ?? undefined)}` : 'none'}`,
  );
  say(`  size ratio to the recent median: ${health.sizeRatio ?? 'n/a (no earlier verified backup to compare with)'}`);
  context.summary.health = { ageSeconds: health.ageSeconds, sizeRatio: health.sizeRatio, sizeBytes: health.sizeBytes, backups: health.backups };
}

async function prepareSourceDatabase(context: RunContext): Promise<void> {
  const { options, say } = context;
  if (options.databaseUrl) {
    // The task's own URL parser, which also reads libpq's Unix-socket form (postgresql://user@/db?host=/run/postgresql)
    // that WHATWG URL refuses; a URL it cannot make sense of is reported by the task, naming the setting.
    const url = parseConnectionUrl(options.databaseUrl);
    context.source = {
      // The task inherits nothing but PATH and HOME, so the libpq settings the README says complete
      // the URL (PGPASSWORD supplies a password the URL lacks) are handed over explicitly.
      env: { ...pickEnvironment(['PGPASSWORD', 'PGSSLMODE', 'PGSSLROOTCERT']), PGKEEP_DATABASE_URL: options.databaseUrl },
      description: `${url.host ?? '?'}:${url.port ?? 5432}/${url.database ?? ''}`,
      databaseName: url.database ?? '',
    };
    say(`Using your database ${context.source.description}`);
    return;
  }
  say('Starting a throwaway PostgreSQL cluster...');
  const cluster: ThrowawayCluster = await startThrowawayCluster();
  context.cleanups.push(() => cluster.stop());
  const databaseName = 'shop';
  await cluster.createDatabase(databaseName);
  const client = new pg.Client({ connectionString: cluster.connectionString(databaseName) });
  await client.connect();
  try {
    say(`Generating a ${options.sizeMb} MB sample database "${databaseName}" on PostgreSQL ${cluster.version}...`);
    const sample = await createSampleDatabase(client, { sizeMb: options.sizeMb, onProgress: (message) => say(`  ${message}`) });
    say(`  ${sample.tables} tables, ${sample.rows.toLocaleString('en-US')} rows, ${formatBytes(sample.bytes)} on disk`);
  } finally {
    await client.end();
  }
  context.source = {
    env: cluster.env(databaseName),
    description: `throwaway PostgreSQL ${cluster.version} on 127.0.0.1:${cluster.port}/${databaseName}`,
    databaseName,
  };
}

async function prepareS3(context: RunContext): Promise<void> {
  const { options, say } = context;
  if (options.s3Endpoint) {
    if (!options.bucket) throw new Error('--bucket is required with --s3-endpoint.');
    const { S3Client } = await import('@aws-sdk/client-s3');
    context.s3 = {
      client: new S3Client({
        endpoint: options.s3Endpoint,
        forcePathStyle: true,
        region: process.env.AWS_REGION ?? 'us-east-1',
        requestChecksumCalculation: 'WHEN_REQUIRED',
      }),
      bucket: options.bucket,
      env: {
        PGKEEP_BUCKET: options.bucket,
        PGKEEP_S3_ENDPOINT: options.s3Endpoint,
        ...pickEnvironment(['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']),
      },
      description: `${options.s3Endpoint} bucket ${options.bucket}`,
    };
    say(`Using S3 endpoint ${context.s3.description}`);
    return;
  }
  const local = await startLocalS3();
  context.cleanups.push(() => local.stop());
  context.s3 = {
    client: local.client(),
    bucket: local.bucket,
    env: local.taskEnvironment(),
    description: `local S3 server ${local.endpoint} bucket ${local.bucket}`,
  };
  say(`Started a ${context.s3.description}`);
}

async function runBackupTask(context: RunContext): Promise<void> {
  const { say, source, s3, options } = context;
  if (!source || !s3) throw new Error('internal: backup before its inputs');
  say('Running the backup task (pg_dump | zstd -> S3 multipart upload)...');
  const task = startTask({
    command: 'backup',
    env: {
      ...source.env,
      ...s3.env,
      PGKEEP_ENVIRONMENT: 'local',
      PGKEEP_PROGRESS_SECONDS: '1',
      ...(options.compressionLevel ? { PGKEEP_COMPRESSION_LEVEL: options.compressionLevel } : {}),
    },
  });
  task.onLog((line) => {
    if (line.message === 'backup progress') {
      say(
        `  ${line.elapsedSeconds as number}s: dumped ${formatBytes(line.dumpedBytes as number | undefined)}, uploaded ${formatBytes(line.uploadedBytes as number | undefined)}`,
      );
    } else if (line.message === 'connected') {
      say(`  server ${line.serverVersion as string}, using ${line.pgDump as string} (${line.pgDumpVersion as string})`);
    }
  });
  const exit = await task.exited;
  const failure = exit.logs.find((line) => line.level === 'ERROR');
  if (exit.code !== 0) {
    throw new Error(`the backup task exited with ${exit.code ?? exit.signal}: ${describeFailure(failure)}`);
  }
  const completed = exit.logs.find((line: TaskLogLine) => line.message === 'backup completed');
  const backup = await findNewestBackup(s3.client, { bucket: s3.bucket, database: source.databaseName });
  if (!backup || !completed) throw new Error('the backup task reported success but no finished backup is in the bucket.');
  const manifestObject = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: backup.manifestKey }));
  const manifest = parseManifest(await manifestObject.Body!.transformToString(), backup.manifestKey);
  context.backup = { backup, manifest, durationMs: completed.durationMs as number };
}

async function readBackBackup(context: RunContext): Promise<void> {
  const { say, s3, backup } = context;
  if (!s3 || !backup) throw new Error('internal: read-back before the backup');
  const [pgRestore] = await findPgBinaries('pg_restore');
  if (!pgRestore) throw new Error('pg_restore is not installed; install the PostgreSQL client.');
  say('Reading the backup back: SHA-256 in-stream, then pg_restore --list...');
  const read = await readArchiveInto(s3.client, { bucket: s3.bucket, key: backup.manifest.object.key }, { binary: pgRestore.path, args: ['--list'] });
  if (read.consumer.code !== 0) throw new Error(`pg_restore --list could not read the archive: ${read.consumer.stderr.trim()}`);
  const tocEntries = read.consumer.stdout.split('\n').filter((line) => /^\d+;/.test(line)).length;
  context.readBack = { sha256Matches: read.sha256 === backup.manifest.object.sha256 && read.bytes === backup.manifest.object.bytes, tocEntries };
  if (!context.readBack.sha256Matches)
    throw new Error(
      `the object read back has SHA-256 ${read.sha256} (${read.bytes} bytes), the manifest says ${backup.manifest.object.sha256} (${backup.manifest.object.bytes} bytes).`,
    );
}

function summarize(context: RunContext): void {
  const { backup, readBack, say } = context;
  if (!backup || !readBack) return;
  const { manifest, durationMs } = backup;
  const uncompressedBytes = manifest.dump.uncompressedBytes ?? Number.NaN;
  const ratio = manifest.object.bytes > 0 ? uncompressedBytes / manifest.object.bytes : Number.NaN;
  const throughput = uncompressedBytes / 1e6 / Math.max(durationMs / 1000, 0.001);
  const exactTables = manifest.tables.filter((table) => table.rowsSource === 'exact').length;
  const rows = manifest.tables.reduce((total, table) => total + (table.rows ?? 0), 0);
  say('');
  say('Backup summary');
  say(`  object        s3://${context.s3?.bucket}/${manifest.object.key}`);
  say(`  manifest      ${backup.backup.manifestKey}`);
  say(
    `  size          ${formatBytes(manifest.object.bytes)} compressed from ${formatBytes(manifest.dump.uncompressedBytes ?? undefined)} (ratio ${ratio.toFixed(2)}, zstd -${manifest.compression.level})`,
  );
  say(`  duration      ${(durationMs / 1000).toFixed(2)} s, ${throughput.toFixed(1)} MB/s of dump`);
  say(`  parts         ${manifest.object.partCount}`);
  say(`  sha256        ${manifest.object.sha256} (read back: ${readBack.sha256Matches ? 'matches' : 'MISMATCH'})`);
  say(`  crc64nvme     ${manifest.object.crc64nvme}`);
  say(`  server        PostgreSQL ${manifest.source.serverVersion}, dumped with pg_dump ${manifest.dump.version}`);
  say(`  tables        ${manifest.tables.length} (${exactTables} exact counts), ${rows.toLocaleString('en-US')} rows`);
  say(`  archive       ${readBack.tocEntries} entries listed by pg_restore --list`);
  context.summary = {
    ...context.summary,
    backup: {
      key: manifest.object.key,
      manifestKey: backup.backup.manifestKey,
      bytes: manifest.object.bytes,
      uncompressedBytes: manifest.dump.uncompressedBytes,
      compressionRatio: Number.isFinite(ratio) ? Number(ratio.toFixed(3)) : null,
      sha256: manifest.object.sha256,
      crc64nvme: manifest.object.crc64nvme,
      durationMs,
      throughputMBps: Number.isFinite(throughput) ? Number(throughput.toFixed(1)) : null,
      parts: manifest.object.partCount,
      tables: manifest.tables.length,
      rows,
    },
    readBack,
  };
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        json: { type: 'boolean', default: false },
        'database-url': { type: 'string' },
        's3-endpoint': { type: 'string' },
        bucket: { type: 'string' },
        'size-mb': { type: 'string', default: '40' },
        'compression-level': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    console.log(USAGE);
    return 0;
  }
  const sizeMb = parseDecimalInteger(parsed['size-mb']) ?? 0;
  if (sizeMb < 1) {
    console.error(`--size-mb ${parsed['size-mb']} is invalid: expected a whole number of MB, 1 or more.\n\n${USAGE}`);
    return 2;
  }
  // Mistakes in the options are found here, before minutes of starting servers and generating data.
  if (parsed['s3-endpoint'] !== undefined && parsed.bucket === undefined) {
    console.error(`--bucket is required with --s3-endpoint: name the bucket on ${parsed['s3-endpoint']} to back up into.\n\n${USAGE}`);
    return 2;
  }
  if (parsed.bucket !== undefined && parsed['s3-endpoint'] === undefined) {
    console.error(`--bucket ${parsed.bucket} needs --s3-endpoint: without one, the run uses a bucket on its own local S3 server.\n\n${USAGE}`);
    return 2;
  }
  const compressionLevel = parsed['compression-level'];
  const level = compressionLevel === undefined ? undefined : parseDecimalInteger(compressionLevel);
  if (compressionLevel !== undefined && (level === undefined || level < 1 || level > 19)) {
    console.error(`--compression-level ${compressionLevel} is invalid: expected a whole number from 1 to 19.\n\n${USAGE}`);
    return 2;
  }
  const options: RunOptions = {
    json: parsed.json,
    databaseUrl: parsed['database-url'] ?? process.env.PGKEEP_DATABASE_URL,
    s3Endpoint: parsed['s3-endpoint'],
    bucket: parsed.bucket,
    sizeMb,
    compressionLevel: parsed['compression-level'],
  };
  // With --json, stdout carries only the JSON summary; the narrative goes to stderr.
  const say = options.json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => process.stdout.write(`${line}\n`);
  const context: RunContext = { options, say, cleanups: [], summary: {}, metrics: collectingSink(), alerts: collectingAlertSink() };
  const started = Date.now();
  let ok = false;
  let error: string | undefined;
  try {
    for (const step of STEPS) {
      say(`\n== ${step.title}`);
      await step.run(context);
    }
    summarize(context);
    reportCollected(context);
    ok = true;
  } catch (caught) {
    error = (caught as Error).message;
    say(`\nFAILED: ${error}`);
  } finally {
    for (const cleanup of context.cleanups.reverse())
      await cleanup().catch((cleanupError: unknown) => say(`cleanup failed: ${(cleanupError as Error).message}`));
  }
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ ok, ...(error ? { error } : {}), ...context.summary, totalSeconds: Number(((Date.now() - started) / 1000).toFixed(1)) })}\n`,
    );
  } else {
    say(ok ? '\nOK: the backup was made, uploaded, read back with a matching checksum, verified, and restored by the drill.' : '');
  }
  return ok ? 0 : 1;
}

function reportCollected(context: RunContext): void {
  const names = [...new Set(context.metrics.published.map((datum) => datum.MetricName))];
  context.say(`  metrics       ${names.join(', ') || 'none'} (would go to CloudWatch)`);
  context.say(`  alerts        ${context.alerts.sent.length === 0 ? 'none' : context.alerts.sent.map((alert) => alert.subject).join('; ')}`);
  context.summary.metricsPublished = names;
  context.summary.alerts = context.alerts.sent.map((alert) => alert.subject);
}

function describeFailure(line: TaskLogLine | undefined): string {
  if (!line) return 'no error was logged';
  return `[${line.stage as string}] ${line.error as string} What to do: ${line.remedy as string}`;
}

function pickEnvironment(names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
}

function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

runPostgresAsRootWhenRoot();
process.exitCode = await main();
