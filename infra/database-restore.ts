/**
 * What restoring one database's backups takes: its own restore task definition (the same image,
 * command `restore`), whose connection is the restore target's secret, an execution role that can
 * read only that secret, the rules that report how a restore ended, and the command that restores
 * the latest backup into a new database.
 *
 * One per database for the same reason as the backup task definitions: ECS cannot override
 * `secrets` per run. The target defaults to the database's own server (its backup secret), where
 * the restore creates a NEW database named after the source and the backup time; the secret's user
 * then needs CREATEDB. A dedicated `restoreTargetSecret` points restores at another server or user.
 */
import { CfnOutput, Stack, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { DatabaseConfig, EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import { boundedName, CONNECTION_SECRET_FIELDS, importSecret, logStreamsConsoleUrl, TASK_FAMILY_MAX_LENGTH } from './database-backup.ts';
import { runTaskCommand, TASK_CONTAINER_NAME, taskOverrides } from './run-task-command.ts';
import { addStoppedTaskRules, exitCodeDetail } from './task-notifications.ts';
import { addPgkeepContainer, pgkeepTaskDefinition } from './task-definition.ts';

/** What the restore task definitions of one environment share. */
export interface SharedRestoreResources {
  environment: EnvironmentConfig;
  cluster: ecs.ICluster;
  image: ecs.ContainerImage;
  logGroup: logs.ILogGroup;
  logGroupName: string;
  /** May read backups (BackupReaderPolicy) and publish metrics; never write the bucket. */
  taskRole: iam.IRole;
  bucketName: string;
  subnets: ec2.ISubnet[];
  securityGroup: ec2.ISecurityGroup;
  alertsTopic: sns.ITopic;
}

export interface DatabaseRestoreProps {
  shared: SharedRestoreResources;
  database: DatabaseConfig;
}

/** The restore task's exit codes (task/main.ts) that are not plain failures. */
export const RESTORE_EXIT_ARCHIVED = 3;
export const RESTORE_EXIT_RESTORED_WITH_DIFFERENCES = 4;

export function restoreFamily(environment: EnvironmentConfig, database: DatabaseConfig): string {
  return boundedName(`pgkeep-${environment.name}-restore-${databaseResourceKey(database.name)}`, TASK_FAMILY_MAX_LENGTH);
}

export class DatabaseRestore extends Construct {
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly executionRole: iam.Role;
  /** The overrides the printed command passes: which database, and `latest`. */
  readonly latestOverrides: ReturnType<typeof taskOverrides>;

  constructor(scope: Construct, id: string, { shared, database }: DatabaseRestoreProps) {
    super(scope, id);
    const { environment } = shared;
    const stack = Stack.of(this);
    const key = databaseResourceKey(database.name);
    const family = restoreFamily(environment, database);
    const dedicatedTarget = database.restoreTargetSecret !== undefined;
    const targetSecret = importSecret(this, 'TargetSecret', database.restoreTargetSecret ?? database.secret);
    const targetSecretKmsKeyArn = dedicatedTarget ? database.restoreTargetSecretKmsKeyArn : database.secretKmsKeyArn;

    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      description: `pgkeep ${environment.name}: starts the restore task of ${key} (pulls the image, writes logs, reads only its restore target's secret)`,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    });

    // PGKEEP_RESTORE_JOBS above 1 downloads the whole backup to the ephemeral storage before pg_restore -j.
    this.taskDefinition = pgkeepTaskDefinition(this, { family, size: environment.restore, taskRole: shared.taskRole, executionRole: this.executionRole });

    addPgkeepContainer(this.taskDefinition, {
      image: shared.image,
      command: 'restore',
      logGroup: shared.logGroup,
      streamPrefix: key,
      environment: {
        PGKEEP_BUCKET: shared.bucketName,
        PGKEEP_ENVIRONMENT: environment.name,
        // In the task definition, so "Run task" in the console restores this database's latest
        // backup into a new database with no overrides at all.
        PGKEEP_RESTORE_SOURCE: database.name,
        // The database's own SSL mode applies when restoring to its own server.
        PGSSLMODE: (dedicatedTarget ? undefined : database.overrides.PGSSLMODE) ?? 'require',
      },
      secrets: Object.fromEntries(
        Object.entries(CONNECTION_SECRET_FIELDS).map(([variable, field]) => [variable, ecs.Secret.fromSecretsManager(targetSecret, field)]),
      ),
    });

    if (targetSecretKmsKeyArn) {
      this.executionRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'DecryptRestoreTargetSecret',
          actions: ['kms:Decrypt'],
          resources: [targetSecretKmsKeyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      );
    }

    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds only non-secret settings (bucket, environment and source database names, SSL mode); the target connection, password included, comes from Secrets Manager through `secrets`.',
    });
    Validations.of(this.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, which ECS needs to pull the task image, does not support resource-level permissions; every other statement names its resource.',
    });

    this.notifyWhenStopped(shared, database, key, family);

    this.latestOverrides = taskOverrides({ PGKEEP_RESTORE_SOURCE: database.name, PGKEEP_RESTORE_BACKUP: 'latest' });
    new CfnOutput(this, 'RestoreLatestCommand', {
      key: `RestoreLatestCommand${key}`,
      description: `Paste into a shell with AWS credentials to restore the latest backup of database ${JSON.stringify(database.name)} into a NEW database (named <source>_<backup time>) on its restore target; change PGKEEP_RESTORE_BACKUP to a timestamp for a point in time.`,
      value: runTaskCommand({
        region: stack.region,
        cluster: shared.cluster.clusterName,
        taskDefinitionArn: this.taskDefinition.taskDefinitionArn,
        subnetIds: shared.subnets.map((subnet) => subnet.subnetId),
        securityGroupIds: [shared.securityGroup.securityGroupId],
        overrides: this.latestOverrides,
        startedBy: 'pgkeep-manual-restore',
      }),
    });
  }

  private notifyWhenStopped(shared: SharedRestoreResources, database: DatabaseConfig, key: string, family: string): void {
    const { environment } = shared;
    const stack = Stack.of(this);
    // No double quotes: the message is a JSON string in the rule, and email shows their escapes.
    const who = `the restore of database ${database.name} (environment ${environment.name})`;
    const logs = `Logs: ${logStreamsConsoleUrl(stack.region, shared.logGroupName, `${key}/${TASK_CONTAINER_NAME}/`)} (the stream name ends with the task id, the last part of the task ARN).`;
    addStoppedTaskRules(this, {
      cluster: shared.cluster,
      family,
      topic: shared.alertsTopic,
      notices: [
        {
          id: 'FailedRule',
          description: `pgkeep ${environment.name}: ${key} restore task failed (exit code other than 0, 3 and 4)`,
          detail: exitCodeDetail({ 'anything-but': [0, RESTORE_EXIT_ARCHIVED, RESTORE_EXIT_RESTORED_WITH_DIFFERENCES] }),
          message: ({ exitCode, reason, task }) =>
            `pgkeep: ${who} FAILED with exit code ${exitCode} ` +
            '(1 = the restore failed, a half-restored new database was dropped, and the log says why and what to do; 2 = misconfigured or refused, nothing was touched; 143 = stopped by SIGTERM; 137 = killed, usually out of memory). ' +
            `ECS: ${reason}. Task: ${task}. ${logs}`,
        },
        {
          id: 'ArchivedRule',
          description: `pgkeep ${environment.name}: ${key} restore task found the backup archived and requested its retrieval (exit code 3)`,
          detail: exitCodeDetail(RESTORE_EXIT_ARCHIVED),
          message: ({ task }) =>
            `pgkeep (information, not a failure): ${who} found the backup in Glacier Flexible Retrieval or Deep Archive and requested a retrieval (exit code 3). ` +
            'The log says which tier and how long it takes (hours for Standard, up to 48 hours from Deep Archive); run the same restore again once it is retrieved, or with PGKEEP_RESTORE_WAIT_FOR_ARCHIVE=true to wait in the task. ' +
            `Task: ${task}. ${logs}`,
        },
        {
          id: 'DifferencesRule',
          description: `pgkeep ${environment.name}: ${key} restore task restored, but the result differs from the manifest (exit code 4)`,
          detail: exitCodeDetail(RESTORE_EXIT_RESTORED_WITH_DIFFERENCES),
          message: ({ task }) =>
            `pgkeep: ${who} finished, but the restored database DIFFERS from the backup's manifest (exit code 4: tables or row counts do not match). ` +
            'Do not put it into service before checking each difference in the log (the restore completed with differences line). ' +
            `Task: ${task}. ${logs}`,
        },
        {
          id: 'DidNotStartRule',
          description: `pgkeep ${environment.name}: ${key} restore task failed to start`,
          detail: { stopCode: ['TaskFailedToStart'] },
          message: ({ reason, task }) =>
            `pgkeep: ${who} could not start. ECS: ${reason}. ` +
            'Check that the restore target secret exists and has host, port, username, password and dbname, and that the subnets reach ECR, Secrets Manager and CloudWatch Logs. ' +
            `Task: ${task}. ${logs}`,
        },
      ],
    });
  }
}
