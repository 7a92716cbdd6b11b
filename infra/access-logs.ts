/**
 * The server access log bucket beside a bucket that holds backups (the backup bucket, the vault).
 * cdk-nag's S1 (server access logging) is satisfied for it because it is itself the log
 * destination; logging the log bucket would need a third bucket.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/** `id` fixes the bucket's logical id: keep it when moving the call (test/infra/storage.test.ts pins the storage stack's). */
export function accessLogsBucket(scope: Construct, id: string, expireAfterDays: number): s3.Bucket {
  return new s3.Bucket(scope, id, {
    // S3 server access logging cannot deliver to an SSE-KMS bucket; SSE-S3 is what it supports.
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    enforceSSL: true,
    lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(expireAfterDays) }],
    removalPolicy: RemovalPolicy.RETAIN,
  });
}
