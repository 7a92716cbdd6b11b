import type { Context, S3Event } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { backupObjectKeys, parseBackupKey } from '../../catalog/keys.ts';
import { isNoSuchObject } from '../../runtime/s3-errors.ts';
import { cloudWatchSink } from '../../runtime/metrics.ts';
import { snsAlertSink } from '../shared/alerts.ts';
import { functionSettings } from '../../catalog/function-settings.ts';
import { processManifest, type ProcessedManifest, type VerifyDependencies } from './process.ts';

/**
 * verify-backup: invoked by S3 for every new `backups/**.manifest.json`. Its settings, and their
 * defaults, are functionSettings.verifyBackup (catalog/function-settings.ts); the stack sets them.
 */
const logger = new Logger({ serviceName: 'pgkeep-verify-backup' });
let dependencies: VerifyDependencies | undefined;

function fromEnvironment(): VerifyDependencies {
  if (dependencies) return dependencies;
  const settings = functionSettings.verifyBackup.parse(process.env);
  dependencies = {
    s3: new S3Client({}),
    metrics: cloudWatchSink(),
    alerts: snsAlertSink(settings.PGKEEP_ALERT_TOPIC_ARN),
    logger,
    environment: settings.PGKEEP_ENVIRONMENT,
    maxStreamBytes: settings.PGKEEP_VERIFY_MAX_STREAM_MB * 2 ** 20,
    site: settings.PGKEEP_VERIFY_SITE,
    vaultLockDays: settings.PGKEEP_VAULT_LOCK_DAYS,
  };
  return dependencies;
}

/** S3 event keys arrive URL-encoded, with spaces as '+'. */
export function keyFromS3Event(encodedKey: string): string {
  return decodeURIComponent(encodedKey.replace(/\+/g, ' '));
}

/**
 * In the vault the function also runs on each replicated data object, because it may land after
 * its manifest: the event is then about the manifest beside it, once that is there too (before
 * it, the manifest's own event will come).
 */
export async function handleS3Event(deps: VerifyDependencies, event: S3Event, deadline?: Date): Promise<ProcessedManifest[]> {
  const results: ProcessedManifest[] = [];
  for (const record of event.Records) {
    const bucket = record.s3.bucket.name;
    let manifestKey = keyFromS3Event(record.s3.object.key);
    const parsed = parseBackupKey(manifestKey);
    if (deps.site === 'vault' && parsed?.kind === 'data') {
      manifestKey = backupObjectKeys(parsed.database, parsed.backupId).manifestKey;
      if (!(await objectExists(deps.s3, bucket, manifestKey))) {
        deps.logger.info('copy of a data object arrived before its manifest; it will be checked when the manifest arrives', { manifestKey });
        continue;
      }
    }
    results.push(await processManifest(deps, { bucket, manifestKey, ...(deadline ? { deadline } : {}) }));
  }
  return results;
}

async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if (isNoSuchObject(error)) return false;
    throw error;
  }
}

export const handler = async (event: S3Event, context: Context): Promise<{ verified: number; notVerified: number }> => {
  // Leave 30 s of the function's time for recording the outcome after hashing.
  const deadline = new Date(Date.now() + context.getRemainingTimeInMillis() - 30_000);
  const results = await handleS3Event(fromEnvironment(), event, deadline);
  return {
    verified: results.filter((result) => result.status === 'verified' && !result.awaitingData).length,
    notVerified: results.filter((result) => result.status !== 'verified' && !result.awaitingData).length,
  };
};
