/**
 * Everything one database's backup needs: its own task definition (with only its own secret), its
 * own execution role (which can read only that secret), its schedule, and the command that runs it
 * now. The rules that report a failed run are the environment's (task-notifications.ts).
 *
 * Why a task definition per database: ECS cannot override `secrets` per run, so one shared task
 * definition would have to carry every database's secret, and every run could read them all.
 */
import { createHash } from 'node:crypto';
import { Duration, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { DatabaseConfig, EnvironmentConfig } from './config.ts';
import { databaseResourceKey, overrideEnvironment } from './config.ts';
import { placementParts, runTaskCommand, taskOverrides } from './run-task-command.ts';
import { addPgkeepContainer, pgkeepTaskDefinition } from './task-definition.ts';
import { taskFamily } from './task-notifications.ts';

/** What the databases of one environment share. */
export interface SharedBackupResources {
  environment: EnvironmentConfig;
  cluster: ecs.ICluster;
  image: ecs.ContainerImage;
  logGroup: logs.ILogGroup;
  taskRole: iam.IRole;
  bucketName: string;
  keyArn: string;
  subnets: ec2.ISubnet[];
  securityGroup: ec2.ISecurityGroup;
  scheduleGroup: scheduler.IScheduleGroup;
  deadLetterQueue: sqs.IQueue;
}

export interface DatabaseBackupProps {
  shared: SharedBackupResources;
  database: DatabaseConfig;
}

/** Secret fields in the RDS secret layout, by the libpq variable each one fills. */
export const CONNECTION_SECRET_FIELDS = {
  PGHOST: 'host',
  PGPORT: 'port',
  PGUSER: 'username',
  PGPASSWORD: 'password',
  PGDATABASE: 'dbname',
} as const;

/** EventBridge Scheduler's limit on schedule names, and ECS's on task definition families. */
export const SCHEDULE_NAME_MAX_LENGTH = 64;
export const TASK_FAMILY_MAX_LENGTH = 255;

/** RunTask fails transiently (capacity, throttling); EventBridge Scheduler retries with back-off. */
const SCHEDULE_RETRY_ATTEMPTS = 3;
/** A backup that could not start within an hour is dropped to the dead-letter queue, so a late
 * run does not overlap the next one or business hours; the alarm on that queue reports it. */
const SCHEDULE_MAX_EVENT_AGE = Duration.hours(1);

export class DatabaseBackup extends Construct {
  readonly family: string;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly executionRole: iam.Role;
  readonly schedule: scheduler.Schedule;
  /** Paste into a shell with AWS credentials to back the database up now. */
  readonly runTaskCommand: string;

  constructor(scope: Construct, id: string, { shared, database }: DatabaseBackupProps) {
    super(scope, id);
    const { environment } = shared;
    const stack = Stack.of(this);
    const key = databaseResourceKey(database.name);
    const family = boundedName(taskFamily(environment.name, 'backup', key), TASK_FAMILY_MAX_LENGTH);
    this.family = family;

    const secret = importSecret(this, 'Secret', database.secret);

    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      description: `pgkeep ${environment.name}: starts the backup task of ${key} (pulls the image, writes logs, reads only this database's secret)`,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    });

    this.taskDefinition = pgkeepTaskDefinition(this, { family, size: environment.task, taskRole: shared.taskRole, executionRole: this.executionRole });

    const databaseEnvironment = {
      PGKEEP_DATABASE_NAME: database.name,
      ...overrideEnvironment(database.overrides),
    };
    addPgkeepContainer(this.taskDefinition, {
      image: shared.image,
      command: 'backup',
      logGroup: shared.logGroup,
      streamPrefix: key,
      environment: {
        PGKEEP_BUCKET: shared.bucketName,
        PGKEEP_ENVIRONMENT: environment.name,
        PGKEEP_KMS_KEY_ID: shared.keyArn,
        // Under Object Lock every upload must carry a checksum: the task turns them on, refuses "none".
        PGKEEP_OBJECT_LOCK: String(environment.objectLock !== undefined),
        PGSSLMODE: 'require',
        // Also in the task definition (not only in the schedule's overrides), so a run started
        // from the console or by hand without overrides backs up with the same settings.
        ...databaseEnvironment,
      },
      // Never as plain environment: ECS reads them from Secrets Manager when the task starts.
      secrets: Object.fromEntries(
        Object.entries(CONNECTION_SECRET_FIELDS).map(([variable, field]) => [variable, ecs.Secret.fromSecretsManager(secret, field)]),
      ),
    });

    if (database.secretKmsKeyArn) {
      // Not through the imported secret's encryptionKey: CDK can grant an imported key to the
      // role only via the key policy, which it cannot change, and would silently grant nothing.
      this.executionRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'DecryptDatabaseSecret',
          actions: ['kms:Decrypt'],
          resources: [database.secretKmsKeyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      );
    }

    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds only non-secret settings (bucket, environment and database names, KMS key ARN, SSL mode, tuning); the connection, password included, comes from Secrets Manager through `secrets`.',
    });
    Validations.of(this.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, which ECS needs to pull the task image, does not support resource-level permissions; every other statement names its resource.',
    });

    // Scheduled and manual runs pass the database's settings as overrides too, so the overrides
    // recorded with each task (describe-tasks, task state change events) say what ran.
    const overrides = taskOverrides(databaseEnvironment);
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      scheduleName: boundedName(`pgkeep-${environment.name}-${key}`, SCHEDULE_NAME_MAX_LENGTH),
      scheduleGroup: shared.scheduleGroup,
      description: `pgkeep ${environment.name}: back up database ${JSON.stringify(database.name)} (cron ${database.schedule.cron}, ${database.schedule.timezone})`,
      schedule: scheduler.ScheduleExpression.expression(`cron(${database.schedule.cron})`, TimeZone.of(database.schedule.timezone)),
      target: new schedulerTargets.EcsRunFargateTask(shared.cluster, {
        taskDefinition: this.taskDefinition,
        vpcSubnets: { subnets: shared.subnets },
        securityGroups: [shared.securityGroup],
        assignPublicIp: false,
        // The ECS templated target passes its input to RunTask as the task overrides.
        input: scheduler.ScheduleTargetInput.fromObject(overrides),
        retryAttempts: SCHEDULE_RETRY_ATTEMPTS,
        maxEventAge: SCHEDULE_MAX_EVENT_AGE,
        deadLetterQueue: shared.deadLetterQueue,
      }),
    });

    this.runTaskCommand = runTaskCommand({
      region: stack.region,
      ...placementParts(shared),
      // The family: RunTask takes its latest revision, so the command outlives redeploys.
      taskDefinition: family,
      overrides,
    });
  }
}

/** `name` if it fits, else its start and a hash of all of it, so long database names stay distinct. */
export function boundedName(name: string, maxLength: number): string {
  if (name.length <= maxLength) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, maxLength - hash.length - 1)}-${hash}`;
}

/** A secret by its complete ARN (the configuration requires one, see infra/config.ts), so the
 * task definition's valueFrom and the execution role's grant name exactly the same ARN. */
export function importSecret(scope: Construct, id: string, secretCompleteArn: string): secretsmanager.ISecret {
  return secretsmanager.Secret.fromSecretCompleteArn(scope, id, secretCompleteArn);
}
