/**
 * What restoring one database's backups takes: its own restore task definition (the same image,
 * command `restore`), whose connection is the restore target's secret, an execution role that can
 * read only that secret, and the command that restores the latest backup into a new database. The
 * rules that report how a restore ended are the environment's (task-notifications.ts).
 *
 * One per database for the same reason as the backup task definitions: ECS cannot override
 * `secrets` per run. The target defaults to the database's own server (its backup secret), where
 * the restore creates a NEW database named after the source and the backup time; the secret's user
 * then needs CREATEDB. A dedicated `restoreTargetSecret` points restores at another server or user.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { DatabaseConfig, EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import { boundedName, CONNECTION_SECRET_FIELDS, importSecret, TASK_FAMILY_MAX_LENGTH } from './database-backup.ts';
import { placementParts, runTaskCommand, taskOverrides } from './run-task-command.ts';
import { addPgkeepContainer, pgkeepTaskDefinition } from './task-definition.ts';
import { taskFamily } from './task-notifications.ts';

/** What the restore task definitions of one environment share. */
export interface SharedRestoreResources {
  environment: EnvironmentConfig;
  cluster: ecs.ICluster;
  image: ecs.ContainerImage;
  logGroup: logs.ILogGroup;
  /** May read backups (BackupReaderPolicy) and publish metrics; never write the bucket. */
  taskRole: iam.IRole;
  bucketName: string;
  subnets: ec2.ISubnet[];
  securityGroup: ec2.ISecurityGroup;
}

export interface DatabaseRestoreProps {
  shared: SharedRestoreResources;
  database: DatabaseConfig;
}

export function restoreFamily(environment: EnvironmentConfig, database: DatabaseConfig): string {
  return boundedName(taskFamily(environment.name, 'restore', databaseResourceKey(database.name)), TASK_FAMILY_MAX_LENGTH);
}

export class DatabaseRestore extends Construct {
  readonly family: string;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly executionRole: iam.Role;
  /** The overrides the printed command passes: which database, and `latest`. */
  readonly latestOverrides: ReturnType<typeof taskOverrides>;
  /** Paste into a shell with AWS credentials to restore the latest backup into a new database. */
  readonly restoreLatestCommand: string;

  constructor(scope: Construct, id: string, { shared, database }: DatabaseRestoreProps) {
    super(scope, id);
    const { environment } = shared;
    const stack = Stack.of(this);
    const key = databaseResourceKey(database.name);
    const family = restoreFamily(environment, database);
    this.family = family;
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

    this.latestOverrides = taskOverrides({ PGKEEP_RESTORE_SOURCE: database.name, PGKEEP_RESTORE_BACKUP: 'latest' });
    this.restoreLatestCommand = runTaskCommand({
      region: stack.region,
      ...placementParts(shared),
      taskDefinition: family,
      overrides: this.latestOverrides,
      startedBy: 'pgkeep-manual-restore',
    });
  }
}
