import type { Context, S3Event } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { S3Client } from '@aws-sdk/client-s3';
import { cloudWatchSink } from '../../runtime/metrics.ts';
import { snsAlertSink } from '../shared/alerts.ts';
import { integerSetting, requiredSetting } from '../shared/settings.ts';
import { processManifest, type ProcessedManifest, type VerifyDependencies } from './process.ts';

/**
 * verify-backup: invoked by S3 for every new `backups/**.manifest.json`. Settings (set by the
 * stack): PGKEEP_ENVIRONMENT, PGKEEP_ALERT_TOPIC_ARN, PGKEEP_VERIFY_MAX_STREAM_MB (default 10240).
 */
const logger = new Logger({ serviceName: 'pgkeep-verify-backup' });
let dependencies: VerifyDependencies | undefined;

function fromEnvironment(): VerifyDependencies {
  dependencies ??= {
    s3: new S3Client({}),
    metrics: cloudWatchSink(),
    alerts: snsAlertSink(requiredSetting(process.env, 'PGKEEP_ALERT_TOPIC_ARN', 'the ARN of the alert topic')),
    logger,
    environment: requiredSetting(process.env, 'PGKEEP_ENVIRONMENT', 'the environment name'),
    maxStreamBytes: integerSetting(process.env, 'PGKEEP_VERIFY_MAX_STREAM_MB', 10_240) * 2 ** 20,
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
    results.push(await processManifest(deps, { bucket: record.s3.bucket.name, manifestKey: keyFromS3Event(record.s3.object.key), ...(deadline ? { deadline } : {}) }));
  }
  return results;
}

export const handler = async (event: S3Event, context: Context): Promise<{ verified: number; notVerified: number }> => {
  // Leave 30 s of the function's time for recording the outcome after hashing.
  const deadline = new Date(Date.now() + context.getRemainingTimeInMillis() - 30_000);
  const results = await handleS3Event(fromEnvironment(), event, deadline);
  return { verified: results.filter((result) => result.status === 'verified').length, notVerified: results.filter((result) => result.status !== 'verified').length };
};
