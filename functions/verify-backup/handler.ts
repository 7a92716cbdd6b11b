import type { Context, S3Event } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { S3Client } from '@aws-sdk/client-s3';
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
  };
  return dependencies;
}

/** S3 event keys arrive URL-encoded, with spaces as '+'. */
export function keyFromS3Event(encodedKey: string): string {
  return decodeURIComponent(encodedKey.replace(/\+/g, ' '));
}

export async function handleS3Event(deps: VerifyDependencies, event: S3Event, deadline?: Date): Promise<ProcessedManifest[]> {
  const results: ProcessedManifest[] = [];
  for (const record of event.Records) {
    results.push(
      await processManifest(deps, { bucket: record.s3.bucket.name, manifestKey: keyFromS3Event(record.s3.object.key), ...(deadline ? { deadline } : {}) }),
    );
  }
  return results;
}

export const handler = async (event: S3Event, context: Context): Promise<{ verified: number; notVerified: number }> => {
  // Leave 30 s of the function's time for recording the outcome after hashing.
  const deadline = new Date(Date.now() + context.getRemainingTimeInMillis() - 30_000);
  const results = await handleS3Event(fromEnvironment(), event, deadline);
  return {
    verified: results.filter((result) => result.status === 'verified').length,
    notVerified: results.filter((result) => result.status !== 'verified').length,
  };
};
