/**
 * The vault (docs/vault.md): the environment's second copy, in another region and usually another
 * account, deployed with that account's credentials and BEFORE the storage stack, whose
 * replication configuration names this bucket (S3 refuses a replication rule to a bucket that does
 * not exist).
 *
 * What makes it a vault rather than a second bucket:
 * - Object Lock default retention on every copy, so nobody in the source account (and, in
 *   COMPLIANCE mode, nobody at all) can shorten the lock or delete a copy before it ends;
 * - a bucket policy and a key policy that admit, from the source account, only the named roles of
 *   catalog/vault.ts, each for its own calls: replication writes copies (never deletes: it is
 *   granted neither s3:ReplicateDelete nor s3:ReplicateTags), health and retention read the copies'
 *   verdict tags, restore and drill read the copies;
 * - its own verifier (verify-backup with PGKEEP_VERIFY_SITE=vault), which checks each copy against
 *   its manifest where the copy lives, and its own alerts topic with the environment's subscribers:
 *   a CloudWatch alarm notifies a topic in its own region, and the vault's alarms must still
 *   reach someone when the source region is the thing that is gone.
 *
 * Everything that holds copies is retained when the stack is deleted.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BACKUP_ROOT_PREFIX, DRILL_ROOT_PREFIX } from '../catalog/keys.ts';
import { METRIC } from '../catalog/metrics.ts';
import type { VaultSourceRole } from '../catalog/vault.ts';
import { vaultBucketName, vaultKeyAlias, vaultSourceRoleArn } from '../catalog/vault.ts';
import { accessLogsBucket } from './access-logs.ts';
import { Alerting } from './alerting.ts';
import type { PgkeepAssets } from './assets.ts';
import { ALARM_NAME_MAX_LENGTH, backupMetric, functionErrorsAlarm, notifyBothWays, runbookPointer } from './backup-alarms.ts';
import type { EnvironmentConfig, VaultConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import { boundedName } from './pgkeep-task.ts';
import { VerifyBackupFunction } from './verify-backup-function.ts';

export interface VaultStackProps {
  /** An environment with a vault configured. */
  environment: EnvironmentConfig & { vault: VaultConfig };
  /** The verifier's bundle. */
  assets: Pick<PgkeepAssets, 'functionCode'>;
  stackName?: string;
  tags?: Record<string, string>;
}

export class VaultStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  readonly verification: VerifyBackupFunction;
  readonly alertsTopicArn: string;
  /** Per database: its copies failed the vault's verification. */
  readonly verificationFailedAlarms: ReadonlyMap<string, cloudwatch.Alarm>;

  constructor(scope: Construct, id: string, props: VaultStackProps) {
    const { environment } = props;
    const { vault } = environment;
    super(scope, id, {
      ...(props.stackName ? { stackName: props.stackName } : {}),
      ...(props.tags ? { tags: props.tags } : {}),
      env: { account: vault.account, region: vault.region },
      // The vault outlives mistakes by design; deleting its stack retains the bucket and key anyway.
      terminationProtection: true,
      description: `pgkeep ${environment.name}: the vault (replicated, Object-Locked copies of the backups of ${environment.account}/${environment.region}), its verifier and alarms; retained on stack deletion`,
    });
    const source = environment.account;
    const sourceRole = (role: VaultSourceRole) => vaultSourceRoleArn(environment.name, source, role);
    // The source roles are named by aws:PrincipalArn under the account principal, not as principals
    // themselves: a policy naming a role that does not exist yet is refused ("Invalid principal"),
    // and this stack is deployed before the source stacks create them.
    const fromSource = (roles: VaultSourceRole[]) => ({
      principals: [new iam.AccountPrincipal(source)],
      conditions: { ArnEquals: { 'aws:PrincipalArn': roles.map(sourceRole) } },
    });
    const viaS3 = { StringEquals: { 'kms:ViaService': `s3.${this.region}.amazonaws.com` } };

    this.key = new kms.Key(this, 'VaultKey', {
      description: `pgkeep ${environment.name}: encrypts the vault's copies of the backups (SSE-KMS)`,
      alias: vaultKeyAlias(environment.name),
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // S3 Replication encrypts each copy with this key on the replication role's behalf.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SourceReplicationEncryptsCopies',
        actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        ...fromSource(['replication']),
        conditions: { ...fromSource(['replication']).conditions, ...viaS3 },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SourceRestoreDecryptsCopies',
        actions: ['kms:Decrypt'],
        resources: ['*'],
        ...fromSource(['restore', 'drill']),
        conditions: { ...fromSource(['restore', 'drill']).conditions, ...viaS3 },
      }),
    );

    const accessLogs = accessLogsBucket(this, 'AccessLogsBucket', environment.accessLogsExpireAfterDays);
    this.bucket = new s3.Bucket(this, 'VaultBucket', {
      // Fixed: the source's replication rule and policies name it without reading this stack.
      bucketName: vaultBucketName(environment.name, vault.account, vault.region),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // Every copy belongs to this account, whoever wrote it (with the replication rule's owner override).
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'vault-bucket/',
      objectLockEnabled: true,
      objectLockDefaultRetention:
        vault.objectLock.mode === 'COMPLIANCE'
          ? s3.ObjectLockRetention.compliance(Duration.days(vault.objectLock.days))
          : s3.ObjectLockRetention.governance(Duration.days(vault.objectLock.days)),
      lifecycleRules: vaultLifecycleRules(vault, environment.lifecycle.transitionMinimumObjectBytes),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'CloudFormation-Validate::W9003',
      reason:
        "CDK renders the lifecycle rule's ObjectSizeGreaterThan as a number; CloudFormation coerces it to the string S3 expects, and the value is a plain byte count.",
    });

    const objects = (prefix: string) => this.bucket.arnForObjects(`${prefix}*`);
    const listBackups = { actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] };
    // Replication writes copies under the two replicated prefixes and may do nothing else: no
    // s3:ReplicateDelete (a delete in the source never reaches the vault, even if someone switched
    // delete-marker replication on there) and no s3:ReplicateTags (the copies' tags are the vault
    // verifier's verdicts, which a replicated tag set would overwrite).
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SourceReplicationWritesCopies',
        actions: ['s3:ReplicateObject', 's3:ObjectOwnerOverrideToBucketOwner'],
        resources: [objects(BACKUP_ROOT_PREFIX), objects(DRILL_ROOT_PREFIX)],
        ...fromSource(['replication']),
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SourceReplicationChecksVersioning',
        actions: ['s3:GetBucketVersioning'],
        resources: [this.bucket.bucketArn],
        ...fromSource(['replication']),
      }),
    );
    // Health and retention in the source read only the verdict tags of the copies (and list, so
    // that a copy not yet there reads as 404, not 403).
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SourceFunctionsReadCopyVerdicts',
        actions: ['s3:GetObjectTagging'],
        resources: [objects(BACKUP_ROOT_PREFIX)],
        ...fromSource(['health', 'retention']),
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SourceRolesListCopies',
        ...listBackups,
        ...fromSource(['health', 'retention', 'restore', 'drill']),
        conditions: { ...fromSource(['health', 'retention', 'restore', 'drill']).conditions, StringLike: { 's3:prefix': `${BACKUP_ROOT_PREFIX}*` } },
      }),
    );
    // The restore and drill tasks read copies as they read backups (task/restore.ts).
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SourceRestoreReadsCopies',
        actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging', 's3:RestoreObject'],
        resources: [objects(BACKUP_ROOT_PREFIX)],
        ...fromSource(['restore', 'drill']),
      }),
    );

    const alerting = new Alerting(this, 'Alerts', { environmentName: environment.name, emails: environment.notificationEmails });
    this.alertsTopicArn = alerting.topic.topicArn;
    const logRetention = environment.logRetentionDays as logs.RetentionDays;
    this.verification = new VerifyBackupFunction(this, 'VerifyCopy', {
      environmentName: environment.name,
      site: 'vault',
      vaultLockDays: vault.objectLock.days,
      bucket: this.bucket,
      accessPolicy: this.verifierPolicy(),
      alertsTopic: alerting.topic,
      alertsKey: alerting.key,
      code: props.assets.functionCode('verify-backup'),
      logRetention,
      logRemovalPolicy: RemovalPolicy.RETAIN,
    });

    const alarms = new Map<string, cloudwatch.Alarm>();
    for (const database of environment.databases) {
      const key = databaseResourceKey(database.name);
      alarms.set(
        database.name,
        notifyBothWays(
          new cloudwatch.Alarm(this, `VerificationFailed${key}`, {
            alarmName: boundedName(`pgkeep-${environment.name}-${key}-offsite-verification-failed`, ALARM_NAME_MAX_LENGTH),
            alarmDescription: `pgkeep ${environment.name}: database ${JSON.stringify(database.name)}: a copy in the vault (s3://${this.bucket.bucketName}) does not match its manifest or could not be checked. The primary backup is not affected; the vault's verifier log says which copy and why. ${runbookPointer('offsiteVerificationFailed')}`,
            metric: backupMetric(environment.name, database.name, METRIC.offsiteVerificationFailed, cloudwatch.Stats.SUM, Duration.hours(1)),
            threshold: 1,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluationPeriods: 1,
            // A check that did not run is the off-site stale alarm's business (source region).
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
          alerting.topic,
        ),
      );
    }
    this.verificationFailedAlarms = alarms;
    functionErrorsAlarm(this, 'VerifyCopyFunctionErrorsAlarm', environment, this.verification.function, 'verify-vault-copy', alerting.topic);

    const output = (key: string, description: string, value: string) => new CfnOutput(this, key, { key, description, value });
    output('VaultBucketName', 'The vault bucket: Object-Locked copies of the backups, replicated from the source environment.', this.bucket.bucketName);
    output('VaultKeyArn', "KMS key of the vault's copies; whoever restores from the vault needs kms:Decrypt on it.", this.key.keyArn);
    output('VaultAlertsTopicArn', "SNS topic of the vault's alarms and verification failures; subscribe more endpoints here.", alerting.topic.topicArn);
    output(
      'VaultVerifierLogGroupName',
      "CloudWatch Logs group of the vault's verifier: one line per checked copy.",
      this.verification.function.logGroup.logGroupName,
    );
  }

  /** What the vault's verifier does to the copies: read, tag its verdict, decrypt through S3. */
  private verifierPolicy(): iam.ManagedPolicy {
    const policy = new iam.ManagedPolicy(this, 'VaultVerifierPolicy', {
      description: 'pgkeep vault verifier: read the copies under backups/ and tag them with the verdict; no delete, no write, no lock change',
      statements: [
        new iam.PolicyStatement({
          sid: 'ReadAndTagCopies',
          actions: ['s3:GetObject', 's3:GetObjectTagging', 's3:PutObjectTagging'],
          resources: [this.bucket.arnForObjects(`${BACKUP_ROOT_PREFIX}*`)],
        }),
        new iam.PolicyStatement({
          sid: 'ListCopies',
          actions: ['s3:ListBucket'],
          resources: [this.bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': `${BACKUP_ROOT_PREFIX}*` } },
        }),
        new iam.PolicyStatement({
          sid: 'DecryptCopies',
          actions: ['kms:Decrypt'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${this.region}.amazonaws.com` } },
        }),
      ],
    });
    Validations.of(policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${BACKUP_ROOT_PREFIX}*]`,
      reason: 'Copies keep their backup keys, backups/<database>/<backup id>.*, new on every run; the wildcard is confined to that prefix of the vault bucket.',
    });
    return policy;
  }
}

/**
 * Copies go to Deep Archive after `deepArchiveAfterDays` (manifests and drill records stay in
 * Standard, under the size floor: the verifier and a restore read them without a retrieval) and
 * expire when their lock ends: the vault is a rolling window of `objectLock.days`, kept by its own
 * rules, whatever retention does in the source.
 */
export function vaultLifecycleRules(vault: VaultConfig, transitionMinimumObjectBytes: number): s3.LifecycleRule[] {
  return [
    {
      id: 'copies-to-deep-archive',
      prefix: BACKUP_ROOT_PREFIX,
      objectSizeGreaterThan: transitionMinimumObjectBytes,
      transitions: [{ storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(vault.deepArchiveAfterDays) }],
    },
    {
      id: 'expire-copies-after-lock',
      // The current version gets a delete marker when its lock ends; the version itself is removed
      // a day later, once it is noncurrent (S3 refuses to remove a locked version before then).
      expiration: Duration.days(vault.objectLock.days),
      noncurrentVersionExpiration: Duration.days(1),
    },
    { id: 'remove-expired-delete-markers', expiredObjectDeleteMarker: true },
    // Replication writes whole objects, but a stray multipart upload would be billed and invisible.
    { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
  ];
}
