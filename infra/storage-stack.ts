/**
 * The stateful half of an environment: the backup bucket and the key that encrypts it. Kept in
 * its own stack so that the pipeline stack can be changed, destroyed and redeployed freely, and
 * everything here is retained when the stack is deleted: backups must outlive their tooling.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { BackupAccessPolicies } from './backup-access-policies.ts';
import { createBackupAccessPolicies } from './backup-access-policies.ts';
import { accessLogsBucket } from './access-logs.ts';
import { createBackupWriterPolicy } from './backup-writer-policy.ts';
import type { EnvironmentConfig } from './config.ts';
import { backupBucketLifecycleRules } from './lifecycle.ts';
import { addVaultReplication } from './vault-replication.ts';

export interface StorageStackProps {
  environment: EnvironmentConfig;
  /** Default: the construct id. */
  stackName?: string;
  tags?: Record<string, string>;
}

export class StorageStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  /** Attach to the role of whatever writes backups (the backup task). */
  readonly backupWriterPolicy: iam.ManagedPolicy;
  /** What the verify, health and retention functions may do to the bucket (pipeline stack roles). */
  readonly accessPolicies: BackupAccessPolicies;
  /** S3 Replication's role, where the environment has a vault (infra/vault-replication.ts). */
  readonly replicationRole: iam.Role | undefined;

  constructor(scope: Construct, id: string, { environment, stackName, tags }: StorageStackProps) {
    super(scope, id, {
      ...(stackName ? { stackName } : {}),
      ...(tags ? { tags } : {}),
      env: { account: environment.account, region: environment.region },
      terminationProtection: environment.terminationProtection,
      description: `pgkeep ${environment.name}: backup bucket and its KMS key (stateful; retained on stack deletion)`,
    });

    // The construct ids of the key and the bucket fix their logical ids, and a changed logical id
    // makes CloudFormation create a new (empty) bucket: test/infra/storage.test.ts pins them.
    this.key = new kms.Key(this, 'BackupKey', {
      description: `pgkeep ${environment.name}: encrypts the backups (SSE-KMS) in the backup bucket`,
      alias: `alias/pgkeep/${environment.name}/backups`,
      enableKeyRotation: true,
      // Deleting the key would make every backup unreadable.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const accessLogs = accessLogsBucket(this, 'AccessLogsBucket', environment.accessLogsExpireAfterDays);
    this.bucket = new s3.Bucket(this, 'BackupBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      // One KMS request per bucket key instead of per object part: cheaper, and no KMS throttling on large uploads.
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'backup-bucket/',
      lifecycleRules: backupBucketLifecycleRules(environment.lifecycle),
      ...(environment.objectLock
        ? {
            objectLockEnabled: true,
            objectLockDefaultRetention:
              environment.objectLock.mode === 'COMPLIANCE'
                ? s3.ObjectLockRetention.compliance(Duration.days(environment.objectLock.defaultRetentionDays))
                : s3.ObjectLockRetention.governance(Duration.days(environment.objectLock.defaultRetentionDays)),
          }
        : {}),
      removalPolicy: RemovalPolicy.RETAIN,
    });

    Validations.of(this.bucket).acknowledge({
      id: 'CloudFormation-Validate::W9003',
      reason:
        "CDK renders the lifecycle rule's ObjectSizeGreaterThan as a number; CloudFormation coerces it to the string S3 expects, and the value is a plain byte count.",
    });

    this.replicationRole = environment.vault ? addVaultReplication(this.bucket, this.key, environment.name, environment.vault) : undefined;

    this.backupWriterPolicy = createBackupWriterPolicy(this, 'BackupWriterPolicy', this.bucket, this.key);
    this.accessPolicies = createBackupAccessPolicies(this, this.bucket, this.key, {
      objectLock: environment.objectLock !== undefined,
      retentionDeletes: !environment.retention.dryRun,
    });

    new CfnOutput(this, 'BackupBucketName', {
      description: 'S3 bucket that receives the backups (under backups/<database>/); versioned, SSE-KMS, retained when the stack is deleted.',
      value: this.bucket.bucketName,
    });
    new CfnOutput(this, 'BackupKeyArn', {
      description: 'KMS key that encrypts the backups; whoever restores needs kms:Decrypt on it.',
      value: this.key.keyArn,
    });
  }
}
