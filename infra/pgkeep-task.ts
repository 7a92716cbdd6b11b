/**
 * The one construct behind every pgkeep task: the backup of a database, its restore, and the
 * environment's restore drill. Each is a Fargate task definition running the same image with a
 * different command, and each needs the same things around it:
 *
 * - its own execution role, which only ECS tasks of this account may assume and which can read
 *   only the secret this task is given (so one task's run can never read another database's
 *   connection);
 * - the task definition and its container (infra/task-definition.ts: read-only root, /tmp on the
 *   ephemeral storage, 120 s to clean up on SIGTERM);
 * - the connection secret's fields as ECS secrets, never as plain environment, with the KMS
 *   grant a customer-managed secret key needs;
 * - the cdk-nag acknowledgements that follow from all of that, each with its reason;
 * - the `aws ecs run-task` command printed as a stack output;
 * - optionally, an EventBridge Scheduler schedule that starts it.
 *
 * The rules that report how a task stopped are the environment's (task-notifications.ts), not the
 * task's: they match task definition families by prefix, eight rules for the whole environment,
 * because EventBridge allows only 300 rules per event bus and a rule per task would exhaust it.
 * What the task owns of them is its family, built here by `taskFamily`, which is what they match.
 */
import { createHash } from 'node:crypto';
import type { Duration } from 'aws-cdk-lib';
import { Stack, TimeZone, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { TaskOverrides } from './run-task-command.ts';
import { placementParts, runTaskCommand } from './run-task-command.ts';
import type { PgkeepContainerProps } from './task-definition.ts';
import { addPgkeepContainer, pgkeepTaskDefinition } from './task-definition.ts';

/** Secret fields in the RDS secret layout, by the libpq variable each one fills. */
export const CONNECTION_SECRET_FIELDS = {
  PGHOST: 'host',
  PGPORT: 'port',
  PGUSER: 'username',
  PGPASSWORD: 'password',
  PGDATABASE: 'dbname',
} as const;

/** ECS's limit on task definition families, and EventBridge Scheduler's on schedule names. */
export const TASK_FAMILY_MAX_LENGTH = 255;
export const SCHEDULE_NAME_MAX_LENGTH = 64;

/** RunTask fails transiently (capacity, throttling); EventBridge Scheduler retries with back-off. */
const SCHEDULE_RETRY_ATTEMPTS = 3;

/** `name` if it fits, else its start and a hash of all of it, so long database names stay distinct. */
export function boundedName(name: string, maxLength: number): string {
  if (name.length <= maxLength) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, maxLength - hash.length - 1)}-${hash}`;
}

/** Where an environment's tasks run: the same for every task of it. */
export interface TaskNetwork {
  cluster: ecs.ICluster;
  subnets: ec2.ISubnet[];
  securityGroup: ec2.ISecurityGroup;
}

/** What every task of an environment is given: where it runs, its image, where it logs, what its
 * container may do, and the bucket it works on. */
export interface TaskEnvironment {
  environmentName: string;
  network: TaskNetwork;
  image: ecs.ContainerImage;
  logGroup: logs.ILogGroup;
  taskRole: iam.IRole;
  bucketName: string;
}

/** The database connection a task is started with. */
export interface TaskConnection {
  /** Holds host, port, username, password and dbname (the RDS layout). */
  secret: secretsmanager.ISecret;
  /** The customer-managed KMS key the secret is encrypted with, if it is not aws/secretsmanager. */
  kmsKeyArn?: string | undefined;
  /** The IAM statement id of the KMS grant, which says whose secret it is. */
  kmsStatementId: string;
}

export interface PgkeepTaskProps {
  network: TaskNetwork;
  image: ecs.ContainerImage;
  command: PgkeepContainerProps['command'];
  family: string;
  size: { cpu: number; memoryMiB: number; ephemeralStorageGiB: number };
  /** What the container may do with AWS (the storage stack's policies). */
  taskRole: iam.IRole;
  /** For the execution role's description: what it starts, and which secret it reads (if any). */
  executionRoleDescription: string;
  logGroup: logs.ILogGroup;
  streamPrefix: string;
  environment: Record<string, string>;
  /** Without one, the task has no secrets at all (the drill). */
  connection?: TaskConnection;
  /** Why the plain environment is safe, for cdk-nag's AwsSolutions-ECS2 acknowledgement. */
  plainEnvironmentReason: string;
  /** What the printed `aws ecs run-task` command passes. */
  runCommand: { overrides?: TaskOverrides; startedBy?: string };
}

export interface PgkeepTaskScheduleProps {
  scheduleName: string;
  scheduleGroup: scheduler.IScheduleGroup;
  description: string;
  cron: string;
  timezone: string;
  /** Passed to RunTask as the task overrides. */
  overrides?: TaskOverrides;
  /** Default: a role Scheduler's target creates for the stack's schedules. */
  role?: iam.IRole;
  /** A start that has not succeeded by then goes to the dead-letter queue (and is alarmed on). */
  maxEventAge: Duration;
  deadLetterQueue: sqs.IQueue;
}

export class PgkeepTask extends Construct {
  readonly family: string;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly executionRole: iam.Role;
  /** Paste into a shell with AWS credentials to run the task now. */
  readonly runTaskCommand: string;
  private readonly network: TaskNetwork;

  constructor(scope: Construct, id: string, props: PgkeepTaskProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.family = props.family;
    this.network = props.network;

    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      description: props.executionRoleDescription,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    });
    this.taskDefinition = pgkeepTaskDefinition(this, { family: props.family, size: props.size, taskRole: props.taskRole, executionRole: this.executionRole });

    const { connection } = props;
    addPgkeepContainer(this.taskDefinition, {
      image: props.image,
      command: props.command,
      logGroup: props.logGroup,
      streamPrefix: props.streamPrefix,
      environment: props.environment,
      // Never as plain environment: ECS reads them from Secrets Manager when the task starts, and
      // grants the execution role read on the secret for it.
      ...(connection
        ? {
            secrets: Object.fromEntries(
              Object.entries(CONNECTION_SECRET_FIELDS).map(([variable, field]) => [variable, ecs.Secret.fromSecretsManager(connection.secret, field)]),
            ),
          }
        : {}),
    });
    if (connection?.kmsKeyArn) {
      // Not through the secret's encryptionKey: CDK can grant an imported key to the role only via
      // the key policy, which it cannot change, and would silently grant nothing.
      this.executionRole.addToPolicy(
        new iam.PolicyStatement({
          sid: connection.kmsStatementId,
          actions: ['kms:Decrypt'],
          resources: [connection.kmsKeyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      );
    }

    Validations.of(this.taskDefinition).acknowledge({ id: 'AwsSolutions-ECS2', reason: props.plainEnvironmentReason });
    Validations.of(this.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken, which ECS needs to pull the task image, does not support resource-level permissions; every other statement names its resource.',
    });

    this.runTaskCommand = runTaskCommand({
      region: stack.region,
      ...placementParts(props.network),
      // The family: RunTask takes its latest revision, so the command outlives redeploys.
      taskDefinition: props.family,
      ...props.runCommand,
    });
  }

  /** Starts the task on a schedule, in the task's network, with Scheduler's retries. */
  protected addSchedule(props: PgkeepTaskScheduleProps): scheduler.Schedule {
    return new scheduler.Schedule(this, 'Schedule', {
      scheduleName: props.scheduleName,
      scheduleGroup: props.scheduleGroup,
      description: props.description,
      schedule: scheduler.ScheduleExpression.expression(`cron(${props.cron})`, TimeZone.of(props.timezone)),
      target: new schedulerTargets.EcsRunFargateTask(this.network.cluster, {
        taskDefinition: this.taskDefinition,
        ...(props.role ? { role: props.role } : {}),
        vpcSubnets: { subnets: this.network.subnets },
        securityGroups: [this.network.securityGroup],
        assignPublicIp: false,
        // The ECS templated target passes its input to RunTask as the task overrides.
        ...(props.overrides ? { input: scheduler.ScheduleTargetInput.fromObject(props.overrides) } : {}),
        retryAttempts: SCHEDULE_RETRY_ATTEMPTS,
        maxEventAge: props.maxEventAge,
        deadLetterQueue: props.deadLetterQueue,
      }),
    });
  }
}
