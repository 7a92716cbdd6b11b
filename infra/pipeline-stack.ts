/**
 * The stateless half of an environment: the ECS cluster and task image, per database a backup task
 * definition and schedule and a restore task definition, the weekly restore drill, the functions
 * that verify every backup, check backup health hourly and enforce retention daily, and alerting
 * (alarms, dashboard, the topic). Safe to destroy and redeploy: backups live in the storage stack.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../catalog/metrics.ts';
import { Alerting } from './alerting.ts';
import type { BackupAccessPolicies } from './backup-access-policies.ts';
import { BackupDashboard } from './backup-dashboard.ts';
import { DatabaseAlarms, functionErrorsAlarm, notifyBothWays, runbookPointer } from './backup-alarms.ts';
import type { EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import { DatabaseBackup } from './database-backup.ts';
import { DatabaseRestore } from './database-restore.ts';
import { allowPublishingMetrics } from './function-policies.ts';
import { drillNotAttemptedAlarm, RestoreAlarms } from './restore-alarms.ts';
import { RestoreDrill } from './restore-drill.ts';
import { BackupHealthCheck, RetentionEnforcement } from './scheduled-functions.ts';
import { VerifyBackupFunction } from './verify-backup-function.ts';

export interface PipelineStackProps {
  environment: EnvironmentConfig;
  bucket: s3.IBucket;
  key: kms.IKey;
  /** The storage stack's policy for writing backups; the task role gets exactly this. */
  backupWriterPolicy: iam.IManagedPolicy;
  /** The storage stack's policies for the functions' roles and the restore and drill task roles. */
  accessPolicies: Record<keyof BackupAccessPolicies, iam.IManagedPolicy>;
  /** Docker build context of the task image: the repository root (task/ imports catalog/). */
  repositoryRoot: string;
}

export class PipelineStack extends Stack {
  readonly cluster: ecs.Cluster;
  readonly backups: ReadonlyMap<string, DatabaseBackup>;
  readonly restores: ReadonlyMap<string, DatabaseRestore>;
  /** Shared by the restore task definitions: reads backups, never writes the bucket. */
  readonly restoreTaskRole: iam.Role;
  /** The drill's role: reads backups and writes drill records under drills/ only. */
  readonly drillTaskRole: iam.Role;
  readonly drill: RestoreDrill;
  readonly restoreAlarms: ReadonlyMap<string, RestoreAlarms>;
  /** Where failures and alarms go. */
  readonly alertsTopic: sns.ITopic;
  readonly verification: VerifyBackupFunction;
  readonly healthCheck: BackupHealthCheck;
  readonly retention: RetentionEnforcement;
  readonly alarms: ReadonlyMap<string, DatabaseAlarms>;
  readonly functionAlarms: readonly cloudwatch.Alarm[];
  readonly dashboard: BackupDashboard;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    const { environment } = props;
    super(scope, id, {
      env: { account: environment.account, region: environment.region },
      terminationProtection: environment.terminationProtection,
      description: `pgkeep ${environment.name}: scheduled backup tasks and their cluster, restore tasks, the restore drill, backup verification, health checks, retention, alarms and dashboard`,
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
      alarmName: `pgkeep-${environment.name}-scheduled-run-not-started`,
      alarmDescription: `pgkeep ${environment.name}: a scheduled run (a backup task, the restore drill, the health check or the retention run) could not be started after retries; its event is in the dead-letter queue with the error. ${runbookPointer('undeliveredScheduledRuns')}`,
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: environment.alarms.undeliveredScheduledRuns,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    notifyBothWays(undelivered, alerting.topic);

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

    const ecsTasks = () =>
      new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': this.formatArn({ service: 'ecs', resource: '*' }) },
        },
      });
    this.restoreTaskRole = new iam.Role(this, 'RestoreTaskRole', {
      description: `pgkeep ${environment.name}: the restore container's role; may only read backups (the storage stack's BackupReaderPolicy) and publish pgkeep metrics`,
      assumedBy: ecsTasks(),
      managedPolicies: [props.accessPolicies.backupReader],
    });
    allowPublishingMetrics(this.restoreTaskRole);
    this.drillTaskRole = new iam.Role(this, 'DrillTaskRole', {
      description: `pgkeep ${environment.name}: the restore drill container's role; may only read backups (BackupReaderPolicy), write drill records under drills/ (DrillRecordWriterPolicy) and publish pgkeep metrics`,
      assumedBy: ecsTasks(),
      managedPolicies: [props.accessPolicies.backupReader, props.accessPolicies.drillRecordWriter],
    });
    allowPublishingMetrics(this.drillTaskRole);

    const restoreLogGroupName = `/pgkeep/${environment.name}/restore`;
    const restoreLogGroup = new logs.LogGroup(this, 'RestoreLogGroup', { logGroupName: restoreLogGroupName, retention: environment.logRetentionDays as logs.RetentionDays, removalPolicy });
    const restores = new Map<string, DatabaseRestore>();
    for (const database of environment.databases) {
      restores.set(
        database.name,
        new DatabaseRestore(this, `Restore${databaseResourceKey(database.name)}`, {
          database,
          shared: {
            environment,
            cluster: this.cluster,
            image,
            logGroup: restoreLogGroup,
            logGroupName: restoreLogGroupName,
            taskRole: this.restoreTaskRole,
            bucketName: props.bucket.bucketName,
            subnets,
            securityGroup,
            alertsTopic: alerting.topic,
          },
        }),
      );
    }
    this.restores = restores;

    const drillLogGroupName = `/pgkeep/${environment.name}/drill`;
    const drillLogGroup = new logs.LogGroup(this, 'DrillLogGroup', { logGroupName: drillLogGroupName, retention: environment.logRetentionDays as logs.RetentionDays, removalPolicy });
    this.drill = new RestoreDrill(this, 'Drill', {
      environment,
      cluster: this.cluster,
      image,
      logGroup: drillLogGroup,
      logGroupName: drillLogGroupName,
      taskRole: this.drillTaskRole,
      bucketName: props.bucket.bucketName,
      keyArn: props.key.keyArn,
      subnets,
      securityGroup,
      deadLetterQueue,
      alertsTopic: alerting.topic,
    });

    const logRetention = environment.logRetentionDays as logs.RetentionDays;
    // Imported here rather than used as the storage stack's construct: the S3 notification's
    // custom resource and the permission for S3 to invoke the function then live in this stack,
    // and the storage stack does not come to depend on it (which would be a cycle).
    const bucket = s3.Bucket.fromBucketAttributes(this, 'BackupBucket', { bucketArn: props.bucket.bucketArn, bucketName: props.bucket.bucketName });
    this.verification = new VerifyBackupFunction(this, 'VerifyBackup', {
      environment,
      bucket,
      alertsTopic: alerting.topic,
      alertsKey: alerting.key,
      accessPolicy: props.accessPolicies.verifier,
      repositoryRoot: props.repositoryRoot,
      logRetention,
      logRemovalPolicy: removalPolicy,
    });
    const functionScheduleRole = new iam.Role(this, 'FunctionScheduleRole', {
      description: `pgkeep ${environment.name}: EventBridge Scheduler invokes the health-check and retention functions with this role`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': this.account } } }),
    });
    const scheduled = { environment, bucketName: props.bucket.bucketName, repositoryRoot: props.repositoryRoot, logRetention, logRemovalPolicy: removalPolicy, scheduleGroup, scheduleRole: functionScheduleRole, deadLetterQueue };
    this.healthCheck = new BackupHealthCheck(this, 'HealthCheck', { ...scheduled, accessPolicy: props.accessPolicies.healthReader });
    this.retention = new RetentionEnforcement(this, 'Retention', { ...scheduled, accessPolicy: props.accessPolicies.retentionEnforcer });

    const alarms = new Map<string, DatabaseAlarms>();
    for (const database of environment.databases) {
      alarms.set(database.name, new DatabaseAlarms(this, `Alarms${databaseResourceKey(database.name)}`, { environment, database, topic: alerting.topic }));
    }
    this.alarms = alarms;
    const drillNotAttempted = drillNotAttemptedAlarm(this, environment, this.drill.scheduleGroup);
    const restoreAlarms = new Map<string, RestoreAlarms>();
    for (const database of environment.databases) {
      restoreAlarms.set(database.name, new RestoreAlarms(this, `RestoreAlarms${databaseResourceKey(database.name)}`, { environment, database, topic: alerting.topic, drillNotAttempted }));
    }
    this.restoreAlarms = restoreAlarms;
    const functions = [
      { id: 'VerifyBackupFunctionErrorsAlarm', name: 'verify-backup', function: this.verification.function },
      { id: 'HealthCheckFunctionErrorsAlarm', name: 'backup-health', function: this.healthCheck.function },
      { id: 'RetentionFunctionErrorsAlarm', name: 'enforce-retention', function: this.retention.function },
    ];
    this.functionAlarms = functions.map(({ id: alarmId, name, function: fn }) => functionErrorsAlarm(this, alarmId, environment, fn, name, alerting.topic));
    this.dashboard = new BackupDashboard(this, 'Dashboard', {
      environment,
      alarms: [
        ...[...alarms.values()].flatMap((databaseAlarms) => databaseAlarms.all),
        ...[...restoreAlarms.values()].flatMap((databaseAlarms) => databaseAlarms.all),
        ...(drillNotAttempted ? [drillNotAttempted] : []),
        ...this.functionAlarms,
        undelivered,
      ],
      functions,
    });

    new CfnOutput(this, 'ClusterName', { description: 'ECS cluster the backup tasks run in.', value: this.cluster.clusterName });
    new CfnOutput(this, 'PrivateSubnetIds', { description: 'Private subnets the backup tasks run in (no public IP).', value: subnets.map((subnet) => subnet.subnetId).join(',') });
    new CfnOutput(this, 'TaskSecurityGroupId', { description: 'Security group of the backup tasks; the databases must accept connections from it.', value: securityGroup.securityGroupId });
    new CfnOutput(this, 'TaskLogGroupName', { description: 'CloudWatch Logs group of the backup tasks (one stream prefix per database).', value: logGroup.logGroupName });
    new CfnOutput(this, 'RestoreLogGroupName', { description: 'CloudWatch Logs group of the restore tasks (one stream prefix per database).', value: restoreLogGroup.logGroupName });
    new CfnOutput(this, 'DrillLogGroupName', { description: 'CloudWatch Logs group of the restore drill (stream prefix drill/): one drill passed or drill failed line per database.', value: drillLogGroup.logGroupName });
    new CfnOutput(this, 'AlertsTopicArn', { description: 'SNS topic that receives failed-backup notifications and alarms; subscribe more endpoints here.', value: alerting.topic.topicArn });
    new CfnOutput(this, 'DashboardUrl', { description: 'CloudWatch dashboard of this environment: alarm states, backup age, size, duration, verification and retention per database.', value: this.dashboard.url(this.region) });
    new CfnOutput(this, 'VerifyBackupFunctionName', { description: 'Lambda function that verifies each new backup; invoke it with an S3-shaped event to re-verify one (docs/operations.md).', value: this.verification.function.functionName });
    new CfnOutput(this, 'RetentionFunctionName', { description: `Lambda function that enforces retention daily${environment.retention.dryRun ? ' (DRY RUN: it deletes nothing)' : ''}; its log lists every decision with its reason.`, value: this.retention.function.functionName });
  }
}
