/**
 * The stateless half of an environment: the ECS cluster and task image, per database a nested
 * stack with its backup task definition and schedule, its restore task definition and its alarms,
 * the weekly restore drill, the functions that verify every backup, check backup health hourly and
 * enforce retention daily, and alerting (the rules that report stopped tasks, alarms, dashboard,
 * the topic). Safe to destroy and redeploy: backups live in the storage stack, and nothing here
 * that outlives a deletion (the retained log groups) carries a fixed name a redeploy would clash with.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { Alerting } from './alerting.ts';
import type { BackupAccessPolicies } from './backup-access-policies.ts';
import type { DatabaseAlarms } from './backup-alarms.ts';
import { BackupDashboard } from './backup-dashboard.ts';
import { functionErrorsAlarm, notifyBothWays, runbookPointer } from './backup-alarms.ts';
import type { EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import type { DatabaseBackup } from './database-backup.ts';
import type { DatabaseRestore } from './database-restore.ts';
import type { PgkeepAssets } from './assets.ts';
import { PgkeepDatabase } from './pgkeep-database.ts';
import { allowPublishingMetrics } from './function-policies.ts';
import type { RestoreAlarms } from './restore-alarms.ts';
import { drillNotAttemptedAlarm } from './restore-alarms.ts';
import { RestoreDrill } from './restore-drill.ts';
import { BackupHealthCheck, RetentionEnforcement } from './scheduled-functions.ts';
import type { TaskKind } from './task-notifications.ts';
import { TaskStopNotifications } from './task-notifications.ts';
import { VerifyBackupFunction } from './verify-backup-function.ts';
import { vaultSourceRoleName } from '../catalog/vault.ts';
import { allowRestoringFromVault } from './vault-access.ts';
import { replicationFailedAlarms } from './vault-alarms.ts';

export interface PipelineStackProps {
  environment: EnvironmentConfig;
  bucket: s3.IBucket;
  key: kms.IKey;
  /** The storage stack's policy for writing backups; the task role gets exactly this. */
  backupWriterPolicy: iam.IManagedPolicy;
  /** The storage stack's policies for the functions' roles and the restore and drill task roles. */
  accessPolicies: Record<keyof BackupAccessPolicies, iam.IManagedPolicy>;
  /** The task image and the functions' code. */
  assets: PgkeepAssets;
  /** Default: the construct id. */
  stackName?: string;
  tags?: Record<string, string>;
}

export class PipelineStack extends Stack {
  readonly cluster: ecs.Cluster;
  /** The VPC the tasks run in: the configured construct, or the one imported by id. */
  readonly vpc: ec2.IVpc;
  /** Each database's nested stack, by database name. */
  readonly databases: ReadonlyMap<string, PgkeepDatabase>;
  readonly backups: ReadonlyMap<string, DatabaseBackup>;
  readonly restores: ReadonlyMap<string, DatabaseRestore>;
  /** Shared by the restore task definitions: reads backups, never writes the bucket. */
  readonly restoreTaskRole: iam.Role;
  /** The drill's role: reads backups and writes drill records under drills/ only. */
  readonly drillTaskRole: iam.Role;
  readonly drill: RestoreDrill;
  readonly alarms: ReadonlyMap<string, DatabaseAlarms>;
  readonly restoreAlarms: ReadonlyMap<string, RestoreAlarms>;
  /** Where failures and alarms go. */
  readonly alertsTopic: sns.ITopic;
  readonly taskStops: TaskStopNotifications;
  readonly verification: VerifyBackupFunction;
  readonly healthCheck: BackupHealthCheck;
  readonly retention: RetentionEnforcement;
  readonly functionAlarms: readonly cloudwatch.Alarm[];
  /** With a vault: one per replication rule, on S3's OperationsFailedReplication. */
  readonly replicationAlarms: readonly cloudwatch.Alarm[];
  readonly dashboard: BackupDashboard;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    const { environment } = props;
    super(scope, id, {
      ...(props.stackName ? { stackName: props.stackName } : {}),
      ...(props.tags ? { tags: props.tags } : {}),
      env: { account: environment.account, region: environment.region },
      terminationProtection: environment.terminationProtection,
      description: `pgkeep ${environment.name}: scheduled backup tasks and their cluster, restore tasks, the restore drill, backup verification, health checks, retention, alarms and dashboard`,
    });
    const removalPolicy = environment.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = environment.logRetentionDays as logs.RetentionDays;

    const { vpc, subnets, securityGroup } = this.taskNetwork(environment);
    this.vpc = vpc;
    this.cluster = new ecs.Cluster(this, 'Cluster', { clusterName: `pgkeep-${environment.name}`, vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const network = { cluster: this.cluster, subnets, securityGroup };
    const logGroups = this.taskLogGroups(logRetention, removalPolicy);
    const deadLetterQueue = this.scheduleDeadLetterQueue(removalPolicy);
    const alerting = new Alerting(this, 'Alerts', { environmentName: environment.name, emails: environment.notificationEmails });
    this.alertsTopic = alerting.topic;
    const undelivered = this.undeliveredScheduledRunsAlarm(environment, deadLetterQueue, alerting.topic);

    // The task roles, shared by the databases; each task's execution role is its own.
    const vaultRoleName = (role: 'restore' | 'drill') => (environment.vault ? vaultSourceRoleName(environment.name, role) : undefined);
    const taskRole = this.ecsTaskRole(
      'BackupTaskRole',
      `pgkeep ${environment.name}: the backup container's role; may only write backups (the storage stack's BackupWriterPolicy) and publish pgkeep metrics`,
      [props.backupWriterPolicy],
    );
    this.restoreTaskRole = this.ecsTaskRole(
      'RestoreTaskRole',
      `pgkeep ${environment.name}: the restore container's role; may only read backups (the storage stack's BackupReaderPolicy) and publish pgkeep metrics`,
      [props.accessPolicies.backupReader],
      vaultRoleName('restore'),
    );
    this.drillTaskRole = this.ecsTaskRole(
      'DrillTaskRole',
      `pgkeep ${environment.name}: the restore drill container's role; may only read backups (BackupReaderPolicy), write drill records under drills/ (DrillRecordWriterPolicy) and publish pgkeep metrics`,
      [props.accessPolicies.backupReader, props.accessPolicies.drillRecordWriter],
      vaultRoleName('drill'),
    );
    if (environment.vault) {
      // Restoring from the vault: PGKEEP_BUCKET and PGKEEP_BUCKET_REGION overridden to it (docs/vault.md).
      allowRestoringFromVault(this.restoreTaskRole, environment.name, environment.vault);
      allowRestoringFromVault(this.drillTaskRole, environment.name, environment.vault);
    }
    const image = props.assets.taskImage();
    const scheduleGroup = new scheduler.ScheduleGroup(this, 'ScheduleGroup', {
      scheduleGroupName: `pgkeep-${environment.name}`,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const objectLock = environment.objectLock !== undefined;

    this.drill = new RestoreDrill(this, 'Drill', {
      environmentName: environment.name,
      objectLock,
      drill: environment.drill,
      databaseNames: environment.databases.map((database) => database.name),
      network,
      image,
      logGroup: logGroups.drill,
      taskRole: this.drillTaskRole,
      bucketName: props.bucket.bucketName,
      keyArn: props.key.keyArn,
      deadLetterQueue,
    });
    const drillNotAttempted = drillNotAttemptedAlarm(this, environment, this.drill.scheduleGroup);

    const databases = new Map<string, PgkeepDatabase>();
    for (const database of environment.databases) {
      databases.set(
        database.name,
        new PgkeepDatabase(this, `Database${databaseResourceKey(database.name)}`, {
          environment,
          database,
          backup: {
            environmentName: environment.name,
            objectLock,
            size: environment.task,
            network,
            image,
            logGroup: logGroups.backup,
            taskRole,
            bucketName: props.bucket.bucketName,
            keyArn: props.key.keyArn,
            scheduleGroup,
            deadLetterQueue,
          },
          restore: {
            environmentName: environment.name,
            size: environment.restore,
            network,
            image,
            logGroup: logGroups.restore,
            taskRole: this.restoreTaskRole,
            bucketName: props.bucket.bucketName,
          },
          alertsTopic: alerting.topic,
          drillNotAttempted,
        }),
      );
    }
    this.databases = databases;
    const perDatabase = <T>(pick: (stack: PgkeepDatabase) => T) => new Map([...databases].map(([name, stack]) => [name, pick(stack)]));
    this.backups = perDatabase((stack) => stack.backup);
    this.restores = perDatabase((stack) => stack.restore);
    this.alarms = perDatabase((stack) => stack.alarms);
    this.restoreAlarms = perDatabase((stack) => stack.restoreAlarms);

    this.taskStops = new TaskStopNotifications(this, 'TaskStops', {
      environmentName: environment.name,
      cluster: this.cluster,
      topic: alerting.topic,
      logGroups,
    });

    // The functions. The bucket is imported rather than used as the storage stack's construct: the
    // S3 notification's custom resource and the permission for S3 to invoke the function then live
    // in this stack, and the storage stack does not come to depend on it (which would be a cycle).
    const bucket = s3.Bucket.fromBucketAttributes(this, 'BackupBucket', { bucketArn: props.bucket.bucketArn, bucketName: props.bucket.bucketName });
    const logging = { logRetention, logRemovalPolicy: removalPolicy };
    this.verification = new VerifyBackupFunction(this, 'VerifyBackup', {
      environmentName: environment.name,
      bucket,
      alertsTopic: alerting.topic,
      alertsKey: alerting.key,
      accessPolicy: props.accessPolicies.verifier,
      code: props.assets.functionCode('verify-backup'),
      ...logging,
    });
    const functionScheduleRole = new iam.Role(this, 'FunctionScheduleRole', {
      description: `pgkeep ${environment.name}: EventBridge Scheduler invokes the health-check and retention functions with this role`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': this.account } } }),
    });
    const scheduled = { environment, bucketName: props.bucket.bucketName, ...logging, scheduleGroup, scheduleRole: functionScheduleRole, deadLetterQueue };
    this.healthCheck = new BackupHealthCheck(this, 'HealthCheck', {
      ...scheduled,
      code: props.assets.functionCode('backup-health'),
      accessPolicy: props.accessPolicies.healthReader,
    });
    this.retention = new RetentionEnforcement(this, 'Retention', {
      ...scheduled,
      code: props.assets.functionCode('enforce-retention'),
      accessPolicy: props.accessPolicies.retentionEnforcer,
    });
    const functions = [
      { id: 'VerifyBackupFunctionErrorsAlarm', name: 'verify-backup', function: this.verification.function, output: 'VerifyBackupLogGroupName' },
      { id: 'HealthCheckFunctionErrorsAlarm', name: 'backup-health', function: this.healthCheck.function, output: 'HealthCheckLogGroupName' },
      { id: 'RetentionFunctionErrorsAlarm', name: 'enforce-retention', function: this.retention.function, output: 'RetentionLogGroupName' },
    ];
    this.functionAlarms = functions.map(({ id: alarmId, name, function: fn }) => functionErrorsAlarm(this, alarmId, environment, fn, name, alerting.topic));

    this.replicationAlarms = environment.vault
      ? replicationFailedAlarms(this, environment.name, environment.vault, props.bucket.bucketName, alerting.topic)
      : [];

    this.dashboard = new BackupDashboard(this, 'Dashboard', {
      environment,
      // By name: the per-database alarms live in the nested stacks, and their names are known here.
      alarmNames: [
        ...[...databases.values()].flatMap((stack) => [...stack.alarms.names, ...stack.restoreAlarms.names]),
        ...[drillNotAttempted, ...this.functionAlarms, ...this.replicationAlarms, undelivered].flatMap((alarm) =>
          alarm ? [(alarm.node.defaultChild as cloudwatch.CfnAlarm).alarmName!] : [],
        ),
      ],
      functions,
    });

    this.outputs(environment, { subnets, securityGroup, logGroups, functions, alertsTopic: alerting.topic });
  }

  /** Where the tasks run. Ids are imported, never looked up, so synth needs no AWS credentials;
   * a VPC construct of the same app is used as it is. */
  private taskNetwork(environment: EnvironmentConfig): { vpc: ec2.IVpc; subnets: ec2.ISubnet[]; securityGroup: ec2.ISecurityGroup } {
    if (environment.vpc) {
      const subnets = environment.vpc.selectSubnets(environment.taskSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnets;
      const securityGroup =
        environment.taskSecurityGroup ??
        new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
          vpc: environment.vpc,
          description: `pgkeep ${environment.name}: the backup, restore and drill tasks (outbound only: the databases, S3, Secrets Manager, ECR, CloudWatch)`,
          allowAllOutbound: true,
        });
      return { vpc: environment.vpc, subnets, securityGroup };
    }
    const ids = environment.network!;
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: ids.vpcId,
      availabilityZones: ids.privateSubnets.map((subnet) => subnet.availabilityZone),
      privateSubnetIds: ids.privateSubnets.map((subnet) => subnet.subnetId),
    });
    Validations.of(vpc).acknowledge({
      id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
      reason: 'The subnets are only handed to RunTask; nothing here routes through or reads their route tables.',
    });
    return {
      vpc,
      subnets: vpc.privateSubnets,
      securityGroup: ec2.SecurityGroup.fromSecurityGroupId(this, 'TaskSecurityGroup', ids.securityGroupId, { mutable: false }),
    };
  }

  /** The tasks' log groups. No physical names: with removalPolicy 'retain' they outlive a deleted
   * stack, and a fixed name would make the next create fail with "already exists". */
  private taskLogGroups(retention: logs.RetentionDays, removalPolicy: RemovalPolicy): Record<TaskKind, logs.LogGroup> {
    const taskLogGroup = (logicalId: string) => new logs.LogGroup(this, logicalId, { retention, removalPolicy });
    return { backup: taskLogGroup('TaskLogGroup'), restore: taskLogGroup('RestoreLogGroup'), drill: taskLogGroup('DrillLogGroup') };
  }

  /** Where every schedule of the environment drops a run it could not start. */
  private scheduleDeadLetterQueue(removalPolicy: RemovalPolicy): sqs.Queue {
    const queue = new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy,
    });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter queue of the backup schedules (EventBridge Scheduler, which cdk-nag does not recognise as a DLQ user); nothing consumes it automatically, an alarm reports every message.',
    });
    return queue;
  }

  private undeliveredScheduledRunsAlarm(environment: EnvironmentConfig, deadLetterQueue: sqs.IQueue, topic: sns.ITopic): cloudwatch.Alarm {
    return notifyBothWays(
      new cloudwatch.Alarm(this, 'UndeliveredScheduledRunsAlarm', {
        alarmName: `pgkeep-${environment.name}-scheduled-run-not-started`,
        alarmDescription: `pgkeep ${environment.name}: a scheduled run (a backup task, the restore drill, the health check or the retention run) could not be started after retries; its event is in the dead-letter queue with the error. ${runbookPointer('undeliveredScheduledRuns')}`,
        metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: environment.alarms.undeliveredScheduledRuns,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      topic,
    );
  }

  /** What an operator needs from the deployed stack: names, links and commands to paste. */
  private outputs(
    environment: EnvironmentConfig,
    parts: {
      subnets: ec2.ISubnet[];
      securityGroup: ec2.ISecurityGroup;
      logGroups: Record<TaskKind, logs.ILogGroup>;
      functions: readonly { function: { logGroup: logs.ILogGroup; functionName: string }; name: string; output: string }[];
      alertsTopic: sns.ITopic;
    },
  ): void {
    const output = (key: string, description: string, value: string) => new CfnOutput(this, key, { key, description, value });
    output('ClusterName', 'ECS cluster the backup tasks run in.', this.cluster.clusterName);
    output('PrivateSubnetIds', 'Private subnets the backup tasks run in (no public IP).', parts.subnets.map((subnet) => subnet.subnetId).join(','));
    output('TaskSecurityGroupId', 'Security group of the backup tasks; the databases must accept connections from it.', parts.securityGroup.securityGroupId);
    output('TaskLogGroupName', "CloudWatch Logs group of the backup tasks (stream prefix: the database's resource key).", parts.logGroups.backup.logGroupName);
    output(
      'RestoreLogGroupName',
      "CloudWatch Logs group of the restore tasks (stream prefix: the database's resource key).",
      parts.logGroups.restore.logGroupName,
    );
    output(
      'DrillLogGroupName',
      'CloudWatch Logs group of the restore drill (stream prefix drill/): one drill passed or drill failed line per database.',
      parts.logGroups.drill.logGroupName,
    );
    for (const { name, function: fn, output: key } of parts.functions) output(key, `CloudWatch Logs group of the ${name} function.`, fn.logGroup.logGroupName);
    output('AlertsTopicArn', 'SNS topic that receives failed-backup notifications and alarms; subscribe more endpoints here.', parts.alertsTopic.topicArn);
    output(
      'DashboardUrl',
      'CloudWatch dashboard of this environment: alarm states, backup age, size, duration, verification and retention per database.',
      this.dashboard.url(this.region),
    );
    output(
      'VerifyBackupFunctionName',
      'Lambda function that verifies each new backup; invoke it with an S3-shaped event to re-verify one (docs/operations.md).',
      this.verification.function.functionName,
    );
    output(
      'RetentionFunctionName',
      `Lambda function that enforces retention daily${environment.retention.dryRun ? ' (DRY RUN: it deletes nothing)' : ''}; its log lists every decision with its reason.`,
      this.retention.function.functionName,
    );
    output(
      'RunDrillCommand',
      'Paste into a shell with AWS credentials to run the restore drill of every database now (it restores into a throwaway PostgreSQL inside the task, never into a production database).',
      this.drill.runTaskCommand,
    );
    for (const [name, stack] of this.databases) {
      const key = databaseResourceKey(name);
      output(
        `TaskDefinition${key}`,
        `Task definition that backs up database ${JSON.stringify(name)} (its secret and settings).`,
        stack.backup.taskDefinition.taskDefinitionArn,
      );
      output(`RunTaskCommand${key}`, `Paste into a shell with AWS credentials to back up database ${JSON.stringify(name)} now.`, stack.backup.runTaskCommand);
      output(
        `RestoreLatestCommand${key}`,
        `Paste into a shell with AWS credentials to restore the latest backup of database ${JSON.stringify(name)} into a NEW database (named <source>_<backup time>) on its restore target; change PGKEEP_RESTORE_BACKUP to a timestamp for a point in time.`,
        stack.restore.runTaskCommand,
      );
    }
  }

  /** A task role that only ECS tasks of this account may assume (confused-deputy protection),
   * with the storage stack's policies and the right to publish pgkeep metrics. */
  private ecsTaskRole(id: string, description: string, managedPolicies: iam.IManagedPolicy[], roleName?: string): iam.Role {
    const role = new iam.Role(this, id, {
      description,
      // Fixed only where the vault's policies must name the role before it exists (catalog/vault.ts).
      ...(roleName ? { roleName } : {}),
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': this.formatArn({ service: 'ecs', resource: '*' }) },
        },
      }),
      managedPolicies,
    });
    allowPublishingMetrics(role);
    return role;
  }
}
