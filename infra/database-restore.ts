/**
 * What restoring one database's backups takes: its own restore task (a PgkeepTask, pgkeep-task.ts:
 * the same image, command `restore`), whose connection is the restore target's secret, an
 * execution role that can read only that secret, and the command that restores the latest backup
 * into a new database.
 *
 * One per database for the same reason as the backup task definitions: ECS cannot override
 * `secrets` per run. The target defaults to the database's own server (its backup secret), where
 * the restore creates a NEW database named after the source and the backup time; the secret's user
 * then needs CREATEDB. A dedicated `restoreTargetSecret` points restores at another server or user.
 */
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { DatabaseConfig, FargateSize } from './config.ts';
import { databaseResourceKey } from './config.ts';
import type { TaskEnvironment } from './pgkeep-task.ts';
import { boundedName, PgkeepTask, TASK_FAMILY_MAX_LENGTH } from './pgkeep-task.ts';
import { taskOverrides } from './run-task-command.ts';
import { taskFamily } from './task-notifications.ts';

/** What the restore tasks of one environment share. */
export interface SharedRestoreResources extends TaskEnvironment {
  /** PGKEEP_RESTORE_JOBS above 1 downloads the whole backup to the ephemeral storage before pg_restore -j. */
  size: FargateSize;
  /** May read backups (BackupReaderPolicy) and publish metrics; never write the bucket. */
  taskRole: iam.IRole;
}

/** Where one database's backups are restored to. */
export interface RestoreTarget {
  secret: secretsmanager.ISecret;
  kmsKeyArn?: string | undefined;
  /** Set when the target is not the database's own server, whose SSL mode then does not apply. */
  dedicated: boolean;
}

export interface DatabaseRestoreProps {
  shared: SharedRestoreResources;
  database: Pick<DatabaseConfig, 'name' | 'overrides'>;
  target: RestoreTarget;
}

export function restoreFamily(environmentName: string, databaseName: string): string {
  return boundedName(taskFamily(environmentName, 'restore', databaseResourceKey(databaseName)), TASK_FAMILY_MAX_LENGTH);
}

/** Its runTaskCommand restores the latest backup into a new database. */
export class DatabaseRestore extends PgkeepTask {
  /** The overrides the printed command passes: which database, and `latest`. */
  readonly latestOverrides: ReturnType<typeof taskOverrides>;

  constructor(scope: Construct, id: string, { shared, database, target }: DatabaseRestoreProps) {
    const key = databaseResourceKey(database.name);
    const latestOverrides = taskOverrides({ PGKEEP_RESTORE_SOURCE: database.name, PGKEEP_RESTORE_BACKUP: 'latest' });
    super(scope, id, {
      network: shared.network,
      image: shared.image,
      command: 'restore',
      family: restoreFamily(shared.environmentName, database.name),
      size: shared.size,
      taskRole: shared.taskRole,
      executionRoleDescription: `pgkeep ${shared.environmentName}: starts the restore task of ${key} (pulls the image, writes logs, reads only its restore target's secret)`,
      logGroup: shared.logGroup,
      streamPrefix: key,
      environment: {
        PGKEEP_BUCKET: shared.bucketName,
        PGKEEP_ENVIRONMENT: shared.environmentName,
        // In the task definition, so "Run task" in the console restores this database's latest
        // backup into a new database with no overrides at all.
        PGKEEP_RESTORE_SOURCE: database.name,
        // The database's own SSL mode applies when restoring to its own server.
        PGSSLMODE: (target.dedicated ? undefined : database.overrides.PGSSLMODE) ?? 'require',
      },
      connection: { secret: target.secret, kmsKeyArn: target.kmsKeyArn, kmsStatementId: 'DecryptRestoreTargetSecret' },
      plainEnvironmentReason:
        'The environment holds only non-secret settings (bucket, environment and source database names, SSL mode); the target connection, password included, comes from Secrets Manager through `secrets`.',
      runCommand: { overrides: latestOverrides, startedBy: 'pgkeep-manual-restore' },
    });
    this.latestOverrides = latestOverrides;
  }
}
