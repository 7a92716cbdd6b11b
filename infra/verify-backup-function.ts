/**
 * verify-backup: runs for every new manifest under backups/ (an S3 event notification), checks the
 * data object it names, tags the verdict on both, publishes a metric, and alerts on a failure.
 *
 * The notification is configured from this (pipeline) stack on the storage stack's bucket, through
 * CDK's BucketNotifications custom resource, which merges it into the bucket's notification
 * configuration without touching anything else there. The storage stack must therefore never
 * declare notifications on the bucket itself: CloudFormation would replace this one.
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3Notifications from 'aws-cdk-lib/aws-s3-notifications';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { functionSettings } from '../catalog/function-settings.ts';
import { BACKUP_ROOT_PREFIX, DATA_OBJECT_SUFFIX, MANIFEST_SUFFIX } from '../catalog/keys.ts';
import { PgkeepFunction } from './constructs/pgkeep-function.ts';
import { allowPublishingMetrics } from './function-policies.ts';

export interface VerifyBackupFunctionProps {
  environmentName: string;
  /** primary (default): the backup bucket's new manifests. vault: the same function in the vault
   * stack, on the replicated copies; it runs on each replicated manifest and data object, because
   * replication copies them independently and either may land last (infra/vault-stack.ts). */
  site?: 'primary' | 'vault';
  /** vault only: the vault's lock in days, which the verifier extends each verified copy's to. */
  vaultLockDays?: number;
  /** The storage stack's backup bucket, imported into this stack (see the file comment). */
  bucket: s3.IBucket;
  /** The storage stack's BackupVerifierPolicy: the S3 and KMS access the handler needs. */
  accessPolicy: iam.IManagedPolicy;
  alertsTopic: sns.ITopic;
  /** The key the alerts topic is encrypted with. */
  alertsKey: kms.IKey;
  /** The function's bundle (infra/assets.ts). */
  code: lambda.Code;
  logRetention: logs.RetentionDays;
  logRemovalPolicy: RemovalPolicy;
}

export class VerifyBackupFunction extends Construct {
  readonly function: PgkeepFunction;

  constructor(scope: Construct, id: string, props: VerifyBackupFunctionProps) {
    super(scope, id);
    const { environmentName } = props;
    const site = props.site ?? 'primary';
    const stack = Stack.of(this);

    this.function = new PgkeepFunction(this, 'Function', {
      functionName: site === 'vault' ? `pgkeep-${environmentName}-verify-vault-copy` : `pgkeep-${environmentName}-verify-backup`,
      code: props.code,
      description:
        site === 'vault'
          ? `pgkeep ${environmentName}: verifies each replicated backup in the vault against its manifest (size and checksum), tags the verdict on the copy, alerts on failure`
          : `pgkeep ${environmentName}: verifies each new backup against its manifest (size and checksum), tags the verdict, alerts on failure`,
      serviceName: 'pgkeep-verify-backup',
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      // Where the store keeps no checksum it streams the whole object through SHA-256.
      timeout: Duration.minutes(15),
      memorySize: 1024,
      environment: functionSettings.verifyBackup.environment({
        PGKEEP_ENVIRONMENT: environmentName,
        PGKEEP_ALERT_TOPIC_ARN: props.alertsTopic.topicArn,
        PGKEEP_VERIFY_SITE: site,
        ...(props.vaultLockDays ? { PGKEEP_VAULT_LOCK_DAYS: props.vaultLockDays } : {}),
      }),
    });

    const role = this.function.role;
    role.addManagedPolicy(props.accessPolicy);
    role.addToPolicy(new iam.PolicyStatement({ sid: 'PublishAlerts', actions: ['sns:Publish'], resources: [props.alertsTopic.topicArn] }));
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EncryptAlerts',
        // SNS encrypts the message with the topic's key on the publisher's behalf.
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        resources: [props.alertsKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sns.${stack.region}.amazonaws.com` } },
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      reason:
        "What SNS requires of a publisher to a KMS-encrypted topic (the GenerateDataKey family); limited to the alerts topic's own key and to requests made through SNS.",
    });
    allowPublishingMetrics(role);

    const destination = new s3Notifications.LambdaDestination(this.function);
    for (const suffix of site === 'vault' ? [MANIFEST_SUFFIX, DATA_OBJECT_SUFFIX] : [MANIFEST_SUFFIX]) {
      props.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, destination, { prefix: BACKUP_ROOT_PREFIX, suffix });
    }
    acknowledgeNotificationsHandler(stack);
  }
}

/** CDK's singleton Lambda behind the BucketNotifications custom resource (one per stack). */
const NOTIFICATIONS_HANDLER_ID = 'BucketNotificationsHandler050a0587b7544547bf325f094a3db834';

function acknowledgeNotificationsHandler(stack: Stack): void {
  const handler = stack.node.tryFindChild(NOTIFICATIONS_HANDLER_ID);
  if (!handler) throw new Error(`CDK no longer creates ${NOTIFICATIONS_HANDLER_ID}; review its cdk-nag acknowledgements`);
  Validations.of(handler).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason:
      "CDK's own custom-resource handler that writes the bucket notification at deploy time; its role is built by CDK (logs via the AWS-managed basic execution policy, s3:PutBucketNotification scoped to the backup bucket) and runs only during deployments.",
  });
}
