import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@aws-lambda-powertools/logger';
import { DRILL_RECORD_KIND, DRILL_RECORD_SCHEMA_VERSION, type DrillRecord } from '../catalog/drill-record.ts';
import { drillRecordKey } from '../catalog/keys.ts';
import type { BackupConfig, Environment } from './config.ts';
import { readS3Settings, settingsReader, taskRegion } from './config.ts';
import { BackupFailure, redactSecrets } from './errors.ts';
import { explainS3Error, putJsonObject } from './s3.ts';
import { PgRestoreFailure, resolveNewestVerified, restoreBackup } from './restore.ts';
import type { RestoreConfig } from './restore-config.ts';
import { startThrowawayCluster, type ThrowawayCluster } from './throwaway-cluster.ts';

/**
 * The restore drill: for each database, restore its newest verified backup into a throwaway
 * PostgreSQL inside the container, re-hash the whole object on the way (a deep check beside the
 * O(1) upload check), compare every table with the manifest, time it (the RTO), write a drill
 * record (catalog/drill-record.ts) to the bucket as audit evidence, and throw the cluster away.
 * It never connects to a production database.
 */
export interface DrillConfig {
  /** Where the backups are read: PGKEEP_BUCKET in PGKEEP_BUCKET_REGION (the vault, perhaps). */
  s3: BackupConfig['s3'];
  /** Where the drill records are written (see loadDrillConfig). */
  recordS3: BackupConfig['s3'];
  environment: string;
  databases: string[];
  metrics: 'cloudwatch' | 'off';
}

/** One database's drill, as the task reports it: the fields of its drill record that describe the
 * outcome (catalog/drill-record.ts), and where the record was written. */
export type DrillOutcome = Pick<
  DrillRecord,
  | 'database'
  | 'ok'
  | 'backupId'
  | 'backupStartedAt'
  | 'restoreSeconds'
  | 'tablesCompared'
  | 'tablesComparedWithEstimate'
  | 'tablesNotCompared'
  | 'mismatches'
  | 'failedStage'
  | 'error'
> & {
  recordKey: string | undefined;
};

export function loadDrillConfig(env: Environment): DrillConfig {
  const reader = settingsReader(env);
  const { problems, read, required, oneOf } = reader;
  const s3 = readS3Settings(reader, { readsBucketRegion: true });
  // Drilling the vault (PGKEEP_BUCKET=<vault>, PGKEEP_BUCKET_REGION=<its region>) reads copies the
  // drill role may only read and decrypt (catalog/vault.ts), so its records cannot go there: they
  // go to PGKEEP_DRILL_RECORD_BUCKET, the backup bucket in the task's own region, with the task's
  // own key and Object Lock settings, and S3 Replication carries them into the vault like every
  // drill record. Without it the records go where the backups were read, as before; a bucket in
  // another region then needs it named, refused here rather than after an hour-long drill.
  const recordBucket = read('PGKEEP_DRILL_RECORD_BUCKET');
  const ownRegion = taskRegion(read);
  if (recordBucket === undefined && s3.region !== ownRegion)
    problems.push(
      `PGKEEP_DRILL_RECORD_BUCKET is not set, but PGKEEP_BUCKET_REGION (${s3.region}) is not the task's region (${ownRegion}): name the bucket in ${ownRegion} that receives the drill records (the backup bucket; a vault can only be read).`,
    );
  const recordS3 = recordBucket === undefined ? s3 : { ...s3, bucket: recordBucket, region: ownRegion };
  const raw = required('PGKEEP_DRILL_DATABASES', 'a JSON array of the database names to drill, e.g. ["orders"]');
  let databases: string[] = [];
  if (raw) {
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (!Array.isArray(parsed) || parsed.length === 0 || parsed.some((name) => typeof name !== 'string' || name === '')) throw new Error('shape');
      databases = parsed as string[];
    } catch {
      problems.push('PGKEEP_DRILL_DATABASES is invalid: expected a non-empty JSON array of database names, e.g. ["orders"].');
    }
  }
  const config: DrillConfig = {
    s3,
    recordS3,
    environment: required('PGKEEP_ENVIRONMENT', 'the environment name, e.g. prod'),
    databases,
    metrics: oneOf('PGKEEP_METRICS', ['cloudwatch', 'off'] as const, 'cloudwatch'),
  };
  if (problems.length > 0) {
    throw new BackupFailure(
      'configuration',
      `The drill task is misconfigured:\n  - ${problems.join('\n  - ')}`,
      'Fix the settings above and run the drill again. Nothing was read or written.',
    );
  }
  return config;
}

export interface DrillDependencies {
  /** Reads the backups (config.s3). */
  s3: S3Client;
  /** Writes the drill records (config.recordS3); default: `s3`, for a record bucket in the same region. */
  recordS3?: S3Client;
  logger: Logger;
  signal: AbortSignal;
  startCluster?: () => Promise<ThrowawayCluster>;
  now?: () => Date;
}

export async function runDrill(config: DrillConfig, dependencies: DrillDependencies): Promise<DrillOutcome[]> {
  const outcomes: DrillOutcome[] = [];
  for (const database of config.databases) outcomes.push(await drillDatabase(config, database, dependencies));
  return outcomes;
}

async function drillDatabase(config: DrillConfig, database: string, dependencies: DrillDependencies): Promise<DrillOutcome> {
  const { s3, logger, signal } = dependencies;
  const now = dependencies.now ?? (() => new Date());
  const drillStartedAt = now();
  const outcome: DrillOutcome = {
    database,
    ok: false,
    backupId: undefined,
    backupStartedAt: undefined,
    restoreSeconds: undefined,
    tablesCompared: 0,
    tablesComparedWithEstimate: 0,
    tablesNotCompared: [],
    mismatches: [],
    failedStage: undefined,
    error: undefined,
    recordKey: undefined,
  };
  let cluster: ThrowawayCluster | undefined;
  let serverVersion: string | undefined;
  try {
    const resolved = await resolveNewestVerified(s3, config.s3.bucket, database);
    if (!resolved)
      throw new BackupFailure(
        'restore',
        `"${database}" has no verified backup to drill.`,
        'Check the backup-health and verification alarms: no backup of this database has passed verification.',
      );
    outcome.backupId = resolved.manifest.backupId;
    outcome.backupStartedAt = resolved.manifest.startedAt;
    cluster = await (dependencies.startCluster ?? (() => startThrowawayCluster({ log: (message) => logger.debug(message) })))();
    serverVersion = cluster.version;
    const restoreConfig: RestoreConfig = {
      s3: config.s3,
      environment: config.environment,
      sourceDatabase: database,
      selector: { kind: 'backup-id', backupId: resolved.manifest.backupId },
      target: {
        host: cluster.host,
        port: cluster.port,
        user: cluster.user,
        password: cluster.password,
        database: 'postgres',
        sslMode: undefined,
        sslRootCert: undefined,
      },
      targetDatabase: 'drill',
      mode: 'new',
      confirm: undefined,
      forceUnverified: false,
      // The throwaway cluster has none of production's roles.
      noOwner: true,
      jobs: 1,
      archive: { tier: 'Standard', wait: false, retrievalDays: 3, pollSeconds: 300, maxWaitHours: 0 },
      metrics: config.metrics,
    };
    const result = await restoreBackup(s3, restoreConfig, resolved, logger, signal);
    outcome.restoreSeconds = Number(result.restoreSeconds.toFixed(3));
    outcome.tablesCompared = result.comparison.tablesCompared;
    outcome.tablesComparedWithEstimate = result.comparison.tablesComparedWithEstimate;
    outcome.tablesNotCompared = result.comparison.tablesNotCompared;
    outcome.mismatches = result.comparison.mismatches;
    outcome.ok = result.comparison.mismatches.length === 0;
  } catch (error) {
    outcome.failedStage = error instanceof BackupFailure ? error.stage : 'unexpected';
    outcome.error = redactSecrets(error instanceof BackupFailure ? `${error.message} ${drillRemedy(error)}` : (error as Error).message);
  } finally {
    await cluster?.stop().catch(() => undefined);
  }

  const record: DrillRecord = {
    schemaVersion: DRILL_RECORD_SCHEMA_VERSION,
    kind: DRILL_RECORD_KIND,
    environment: config.environment,
    database,
    drillStartedAt: drillStartedAt.toISOString(),
    drillFinishedAt: now().toISOString(),
    ok: outcome.ok,
    backupId: outcome.backupId,
    backupStartedAt: outcome.backupStartedAt,
    restoreSeconds: outcome.restoreSeconds,
    sha256Verified: outcome.restoreSeconds !== undefined,
    tablesCompared: outcome.tablesCompared,
    tablesComparedWithEstimate: outcome.tablesComparedWithEstimate,
    tablesNotCompared: outcome.tablesNotCompared,
    mismatches: outcome.mismatches,
    failedStage: outcome.failedStage,
    error: outcome.error,
    restoredInto: serverVersion ? `throwaway PostgreSQL ${serverVersion}` : undefined,
  };
  const key = drillRecordKey(database, drillStartedAt);
  try {
    await putJsonObject(dependencies.recordS3 ?? s3, config.recordS3, key, `${JSON.stringify(record, null, 2)}\n`);
    outcome.recordKey = key;
  } catch (error) {
    // The record is the drill's audit evidence: a drill that leaves none has not passed, whatever
    // the restore showed, or the missing evidence would only surface at the audit.
    const failure = explainS3Error(error, 'drill-record', config.recordS3.bucket, key);
    const restore = outcome.ok ? 'The restore passed' : 'The drill had already failed';
    outcome.ok = false;
    outcome.error = redactSecrets(
      `${restore}, but its drill record s3://${config.recordS3.bucket}/${key} could not be written, so the drill left no audit evidence: ${failure.message} ${failure.remedy}${outcome.error ? ` (the drill's own failure: ${outcome.error})` : ''}`,
    );
  }
  (outcome.ok ? logger.info.bind(logger) : logger.error.bind(logger))(outcome.ok ? 'drill passed' : 'drill failed', { ...outcome });
  return outcome;
}

/**
 * The restore's remedy speaks of a target server the operator runs; the drill's target is its own
 * throwaway cluster, so where that remedy cannot be followed, the drill says what holds for it.
 */
export function drillRemedy(failure: BackupFailure): string {
  if (!(failure instanceof PgRestoreFailure)) return failure.remedy;
  const cannotProve = 'The backup itself may be sound, but the drill cannot prove it: restore it with the restore task into a server that has';
  switch (failure.reason) {
    case 'missing-role':
      return `The drill's throwaway cluster has none of production's roles, and the drill already restores without ownership and privileges; this backup also names role "${failure.subject ?? '?'}" in an object restored regardless (a user mapping or a row-level security policy, for example), and the drill does not create roles. ${cannotProve} that role.`;
    case 'missing-tablespace':
      return `The drill's throwaway cluster has none of production's tablespaces, and the drill does not restore without them. ${cannotProve} tablespace "${failure.subject ?? '?'}".`;
    case 'disk-full':
      return "The drill's throwaway PostgreSQL keeps the restored database on the task's ephemeral storage, which filled up: raise drill.ephemeralStorageGiB in the environment's pgkeep configuration (room for the whole restored database, indexes included), deploy, and run the drill again.";
    default:
      return failure.remedy;
  }
}
