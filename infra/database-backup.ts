/**
 * Everything one database's backup needs: its own task definition (with only its own secret), its
 * own execution role (which can read only that secret), its schedule, and the command that runs it
 * now (all of it a PgkeepTask, pgkeep-task.ts).
 *
 * Why a task definition per database: ECS cannot override `secrets` per run, so one shared task
 * definition would have to carry every database's secret, and every run could read them all.
 */
import { Duration } from 'aws-cdk-lib';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { DatabaseConfig, FargateSize } from './config.ts';
import { databaseResourceKey, overrideEnvironment } from './config.ts';
import type { TaskEnvironment } from './pgkeep-task.ts';
import { boundedName, PgkeepTask, SCHEDULE_NAME_MAX_LENGTH, TASK_FAMILY_MAX_LENGTH } from './pgkeep-task.ts';
import { taskOverrides } from './run-task-command.ts';
import { taskFamily } from './task-notifications.ts';

/** What the backups of one environment share. */
export interface SharedBackupResources extends TaskEnvironment {
  /** Under Object Lock every upload must carry a checksum: the task turns them on, refuses "none". */
  objectLock: boolean;
  size: FargateSize;
  /** The bucket's key: the task encrypts its uploads with it. */
  keyArn: string;
  scheduleGroup: scheduler.IScheduleGroup;
  deadLetterQueue: sqs.IQueue;
}

export interface DatabaseBackupProps {
  shared: SharedBackupResources;
  database: Pick<DatabaseConfig, 'name' | 'schedule' | 'overrides' | 'secretKmsKeyArn'>;
  /** The database's connection secret. */
  secret: secretsmanager.ISecret;
}

/** A backup that could not start within an hour is dropped to the dead-letter queue, so a late
 * run does not overlap the next one or business hours; the alarm on that queue reports it. */
const SCHEDULE_MAX_EVENT_AGE = Duration.hours(1);

export class DatabaseBackup extends PgkeepTask {
  readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, { shared, database, secret }: DatabaseBackupProps) {
    const key = databaseResourceKey(database.name);
    const databaseEnvironment = {
      PGKEEP_DATABASE_NAME: database.name,
      ...overrideEnvironment(database.overrides),
    };
    // Scheduled and manual runs pass the database's settings as overrides too, so the overrides
    // recorded with each task (describe-tasks, task state change events) say what ran.
    const overrides = taskOverrides(databaseEnvironment);
    super(scope, id, {
      network: shared.network,
      image: shared.image,
      command: 'backup',
      family: boundedName(taskFamily(shared.environmentName, 'backup', key), TASK_FAMILY_MAX_LENGTH),
      size: shared.size,
      taskRole: shared.taskRole,
      executionRoleDescription: `pgkeep ${shared.environmentName}: starts the backup task of ${key} (pulls the image, writes logs, reads only this database's secret)`,
      logGroup: shared.logGroup,
      streamPrefix: key,
      environment: {
        PGKEEP_BUCKET: shared.bucketName,
        PGKEEP_ENVIRONMENT: shared.environmentName,
        PGKEEP_KMS_KEY_ID: shared.keyArn,
        PGKEEP_OBJECT_LOCK: String(shared.objectLock),
        PGSSLMODE: 'require',
        // Also in the task definition (not only in the schedule's overrides), so a run started
        // from the console or by hand without overrides backs up with the same settings.
        ...databaseEnvironment,
      },
      connection: { secret, kmsKeyArn: database.secretKmsKeyArn, kmsStatementId: 'DecryptDatabaseSecret' },
      plainEnvironmentReason:
        'The environment holds only non-secret settings (bucket, environment and database names, KMS key ARN, SSL mode, tuning); the connection, password included, comes from Secrets Manager through `secrets`.',
      runCommand: { overrides },
    });

    this.schedule = this.addSchedule({
      scheduleName: boundedName(`pgkeep-${shared.environmentName}-${key}`, SCHEDULE_NAME_MAX_LENGTH),
      scheduleGroup: shared.scheduleGroup,
      description: `pgkeep ${shared.environmentName}: back up database ${JSON.stringify(database.name)} (cron ${database.schedule.cron}, ${database.schedule.timezone})`,
      cron: database.schedule.cron,
      timezone: database.schedule.timezone,
      overrides,
      maxEventAge: SCHEDULE_MAX_EVENT_AGE,
      deadLetterQueue: shared.deadLetterQueue,
    });
  }
}
