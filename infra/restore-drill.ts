/**
 * The weekly restore drill: one task definition per environment (command `drill`) that restores
 * every database's newest verified backup into a throwaway PostgreSQL inside its own container,
 * compares it with the manifest, publishes the restore time (the RTO) and writes a drill record
 * under drills/. It has no database secret at all: it never connects to a production database.
 * EventBridge Scheduler starts it, in its own schedule group so that its start attempts are a
 * metric of their own (the "no successful drill" alarm uses them, see restore-alarms.ts).
 */
import { Duration, RemovalPolicy, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from './config.ts';
import { placementParts, runTaskCommand } from './run-task-command.ts';
import { addPgkeepContainer, pgkeepTaskDefinition } from './task-definition.ts';
import { taskFamily } from './task-notifications.ts';

export interface RestoreDrillProps {
  environment: EnvironmentConfig;
  cluster: ecs.ICluster;
  image: ecs.ContainerImage;
  logGroup: logs.ILogGroup;
  /** May read backups and write drill records (BackupReaderPolicy, DrillRecordWriterPolicy) and publish metrics. */
  taskRole: iam.IRole;
  bucketName: string;
  keyArn: string;
  subnets: ec2.ISubnet[];
  securityGroup: ec2.ISecurityGroup;
  deadLetterQueue: sqs.IQueue;
}

/** The drill task's log streams: `drill/pgkeep/<task id>`. */
export const DRILL_STREAM_PREFIX = 'drill';
/** RunTask fails transiently (capacity, throttling); EventBridge Scheduler retries with back-off. */
const SCHEDULE_RETRY_ATTEMPTS = 3;
/** A drill that could not start within 6 hours is dropped to the dead-letter queue (and alarmed on);
 * the "no successful drill" alarm follows if none succeeds in time. */
const SCHEDULE_MAX_EVENT_AGE = Duration.hours(6);

export class RestoreDrill extends Construct {
  readonly family: string;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly executionRole: iam.Role;
  readonly scheduleGroup: scheduler.ScheduleGroup;
  readonly schedule: scheduler.Schedule;
  readonly scheduleRole: iam.Role;
  /** Paste into a shell with AWS credentials to run the drill of every database now. */
  readonly runDrillCommand: string;

  constructor(scope: Construct, id: string, props: RestoreDrillProps) {
    super(scope, id);
    const { environment } = props;
    const stack = Stack.of(this);
    this.family = taskFamily(environment.name, 'drill');

    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      description: `pgkeep ${environment.name}: starts the restore drill task (pulls the image, writes logs; no secrets)`,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    });

    // The throwaway cluster's data directory and the restored databases live in the ephemeral storage.
    this.taskDefinition = pgkeepTaskDefinition(this, { family: this.family, size: environment.drill, taskRole: props.taskRole, executionRole: this.executionRole });
    addPgkeepContainer(this.taskDefinition, {
      image: props.image,
      command: 'drill',
      logGroup: props.logGroup,
      streamPrefix: DRILL_STREAM_PREFIX,
      environment: {
        PGKEEP_BUCKET: props.bucketName,
        PGKEEP_ENVIRONMENT: environment.name,
        // Drill records are written encrypted with the bucket's key.
        PGKEEP_KMS_KEY_ID: props.keyArn,
        // The drill record must carry a checksum under Object Lock (task/drill.ts).
        PGKEEP_OBJECT_LOCK: String(environment.objectLock !== undefined),
        PGKEEP_DRILL_DATABASES: JSON.stringify(environment.databases.map((database) => database.name)),
      },
    });
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds only non-secret settings (bucket, environment and database names, KMS key ARN); the drill has no secrets at all, it restores into a PostgreSQL it starts itself.',
    });
    Validations.of(this.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, which ECS needs to pull the task image, does not support resource-level permissions; every other statement names its resource.',
    });

    this.scheduleGroup = new scheduler.ScheduleGroup(this, 'ScheduleGroup', { scheduleGroupName: `pgkeep-${environment.name}-drill`, removalPolicy: RemovalPolicy.DESTROY });
    // Its own role, so the backup schedules' role cannot start the drill and this one no backup.
    this.scheduleRole = new iam.Role(this, 'ScheduleRole', {
      description: `pgkeep ${environment.name}: EventBridge Scheduler starts the restore drill task with this role`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
    });
    const { schedule } = environment.drill;
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      scheduleName: `pgkeep-${environment.name}-drill`,
      scheduleGroup: this.scheduleGroup,
      description: `pgkeep ${environment.name}: restore drill of ${environment.databases.length} database(s) (cron ${schedule.cron}, ${schedule.timezone})`,
      schedule: scheduler.ScheduleExpression.expression(`cron(${schedule.cron})`, TimeZone.of(schedule.timezone)),
      target: new schedulerTargets.EcsRunFargateTask(props.cluster, {
        taskDefinition: this.taskDefinition,
        role: this.scheduleRole,
        vpcSubnets: { subnets: props.subnets },
        securityGroups: [props.securityGroup],
        assignPublicIp: false,
        retryAttempts: SCHEDULE_RETRY_ATTEMPTS,
        maxEventAge: SCHEDULE_MAX_EVENT_AGE,
        deadLetterQueue: props.deadLetterQueue,
      }),
    });

    this.runDrillCommand = runTaskCommand({
      region: stack.region,
      ...placementParts(props),
      taskDefinition: this.family,
      startedBy: 'pgkeep-manual-drill',
    });
  }
}
