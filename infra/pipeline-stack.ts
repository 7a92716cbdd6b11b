/**
 * The stateless half of an environment: the ECS cluster and backup task image, one task
 * definition and schedule per database, and alerting. Safe to destroy and redeploy: backups live
 * in the storage stack.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../catalog/metrics.ts';
import { Alerting } from './alerting.ts';
import type { EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import { DatabaseBackup } from './database-backup.ts';

export interface PipelineStackProps {
  environment: EnvironmentConfig;
  bucket: s3.IBucket;
  key: kms.IKey;
  /** The storage stack's policy for writing backups; the task role gets exactly this. */
  backupWriterPolicy: iam.IManagedPolicy;
  /** Docker build context of the task image: the repository root (task/ imports catalog/). */
  repositoryRoot: string;
}

export class PipelineStack extends Stack {
  readonly cluster: ecs.Cluster;
  readonly backups: ReadonlyMap<string, DatabaseBackup>;
  /** Where failures and alarms go; the next features' alarms publish here too. */
  readonly alertsTopic: sns.ITopic;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    const { environment } = props;
    super(scope, id, {
      env: { account: environment.account, region: environment.region },
      terminationProtection: environment.terminationProtection,
      description: `pgkeep ${environment.name}: scheduled backup tasks, their cluster, and alerting`,
    });
    const removalPolicy = environment.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // Imported by id, never looked up, so synth needs no AWS credentials.
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: environment.network.vpcId,
      availabilityZones: environment.network.privateSubnets.map((subnet) => subnet.availabilityZone),
      privateSubnetIds: environment.network.privateSubnets.map((subnet) => subnet.subnetId),
    });
    const subnets = vpc.privateSubnets;
    Validations.of(vpc).acknowledge({
      id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
      reason: 'The subnets are only handed to RunTask; nothing here routes through or reads their route tables.',
    });
    const securityGroup = ec2.SecurityGroup.fromSecurityGroupId(this, 'TaskSecurityGroup', environment.network.securityGroupId, { mutable: false });

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      clusterName: `pgkeep-${environment.name}`,
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    const logGroupName = `/pgkeep/${environment.name}/backup`;
    const logGroup = new logs.LogGroup(this, 'TaskLogGroup', {
      logGroupName,
      retention: environment.logRetentionDays as logs.RetentionDays,
      removalPolicy,
    });

    const deadLetterQueue = new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy,
    });
    Validations.of(deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the backup schedules (EventBridge Scheduler, which cdk-nag does not recognise as a DLQ user); nothing consumes it automatically, an alarm reports every message.',
    });

    const alerting = new Alerting(this, 'Alerts', { environmentName: environment.name, emails: environment.notificationEmails });
    this.alertsTopic = alerting.topic;

    const undelivered = new cloudwatch.Alarm(this, 'UndeliveredScheduledRunsAlarm', {
      alarmDescription: `pgkeep ${environment.name}: a scheduled backup could not be started (RunTask failed after retries); its event is in the dead-letter queue with the error.`,
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: environment.alarms.undeliveredScheduledRuns,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    undelivered.addAlarmAction(new cloudwatchActions.SnsAction(alerting.topic));

    const taskRole = new iam.Role(this, 'BackupTaskRole', {
      description: `pgkeep ${environment.name}: the backup container's role; may only write backups (the storage stack's BackupWriterPolicy) and publish pgkeep metrics`,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        // Only ECS tasks of this account may assume it (confused-deputy protection).
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': this.formatArn({ service: 'ecs', resource: '*' }) },
        },
      }),
      managedPolicies: [props.backupWriterPolicy],
    });
    taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PublishBackupMetrics',
        // The task reports each backup's outcome, size and duration (PGKEEP_METRICS, default on).
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': METRICS_NAMESPACE } },
      }),
    );
    Validations.of(taskRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'cloudwatch:PutMetricData has no resource-level permissions; the cloudwatch:namespace condition confines the statement to the pgkeep namespace.',
    });
    const image = ecs.ContainerImage.fromAsset(props.repositoryRoot, { file: 'task/Dockerfile', platform: Platform.LINUX_ARM64 });
    const scheduleGroup = new scheduler.ScheduleGroup(this, 'ScheduleGroup', { scheduleGroupName: `pgkeep-${environment.name}`, removalPolicy: RemovalPolicy.DESTROY });

    const backups = new Map<string, DatabaseBackup>();
    for (const database of environment.databases) {
      const key = databaseResourceKey(database.name);
      backups.set(
        database.name,
        new DatabaseBackup(this, `Backup${key}`, {
          database,
          shared: {
            environment,
            cluster: this.cluster,
            image,
            logGroup,
            logGroupName,
            taskRole,
            bucketName: props.bucket.bucketName,
            keyArn: props.key.keyArn,
            subnets,
            securityGroup,
            scheduleGroup,
            deadLetterQueue,
            alertsTopic: alerting.topic,
          },
        }),
      );
    }
    this.backups = backups;

    new CfnOutput(this, 'ClusterName', { description: 'ECS cluster the backup tasks run in.', value: this.cluster.clusterName });
    new CfnOutput(this, 'PrivateSubnetIds', { description: 'Private subnets the backup tasks run in (no public IP).', value: subnets.map((subnet) => subnet.subnetId).join(',') });
    new CfnOutput(this, 'TaskSecurityGroupId', { description: 'Security group of the backup tasks; the databases must accept connections from it.', value: securityGroup.securityGroupId });
    new CfnOutput(this, 'TaskLogGroupName', { description: 'CloudWatch Logs group of the backup tasks (one stream prefix per database).', value: logGroup.logGroupName });
    new CfnOutput(this, 'AlertsTopicArn', { description: 'SNS topic that receives failed-backup notifications and alarms; subscribe more endpoints here.', value: alerting.topic.topicArn });
  }
}
