/**
 * The weekly restore drill: one task per environment (a PgkeepTask, pgkeep-task.ts, command
 * `drill`) that restores every database's newest verified backup into a throwaway PostgreSQL
 * inside its own container, compares it with the manifest, publishes the restore time (the RTO)
 * and writes a drill record under drills/. It has no database secret at all: it never connects to
 * a production database. EventBridge Scheduler starts it, in its own schedule group so that its
 * start attempts are a metric of their own (the "no successful drill" alarm uses them, see
 * restore-alarms.ts).
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { DrillConfig } from './config.ts';
import type { TaskEnvironment } from './pgkeep-task.ts';
import { PgkeepTask } from './pgkeep-task.ts';
import { taskFamily } from './task-notifications.ts';

export interface RestoreDrillProps extends TaskEnvironment {
  /** The drill record must carry a checksum under Object Lock (task/drill.ts). */
  objectLock: boolean;
  /** Its size and schedule. */
  drill: DrillConfig;
  /** Whose newest verified backups it restores. */
  databaseNames: readonly string[];
  /** May read backups and write drill records (BackupReaderPolicy, DrillRecordWriterPolicy) and publish metrics. */
  taskRole: iam.IRole;
  /** Drill records are written encrypted with the bucket's key. */
  keyArn: string;
  deadLetterQueue: sqs.IQueue;
}

/** The drill task's log streams: `drill/pgkeep/<task id>`. */
export const DRILL_STREAM_PREFIX = 'drill';
/** A drill that could not start within 6 hours is dropped to the dead-letter queue (and alarmed on);
 * the "no successful drill" alarm follows if none succeeds in time. */
const SCHEDULE_MAX_EVENT_AGE = Duration.hours(6);

/** Its runTaskCommand runs the drill of every database now. */
export class RestoreDrill extends PgkeepTask {
  readonly scheduleGroup: scheduler.ScheduleGroup;
  readonly schedule: scheduler.Schedule;
  readonly scheduleRole: iam.Role;

  constructor(scope: Construct, id: string, props: RestoreDrillProps) {
    const { environmentName, drill } = props;
    super(scope, id, {
      network: props.network,
      image: props.image,
      command: 'drill',
      family: taskFamily(environmentName, 'drill'),
      // The throwaway cluster's data directory and the restored databases live in the ephemeral storage.
      size: drill,
      taskRole: props.taskRole,
      executionRoleDescription: `pgkeep ${environmentName}: starts the restore drill task (pulls the image, writes logs; no secrets)`,
      logGroup: props.logGroup,
      streamPrefix: DRILL_STREAM_PREFIX,
      environment: {
        PGKEEP_BUCKET: props.bucketName,
        PGKEEP_ENVIRONMENT: environmentName,
        // Drill records are written encrypted with the bucket's key.
        PGKEEP_KMS_KEY_ID: props.keyArn,
        PGKEEP_OBJECT_LOCK: String(props.objectLock),
        PGKEEP_DRILL_DATABASES: JSON.stringify(props.databaseNames),
      },
      plainEnvironmentReason:
        'The environment holds only non-secret settings (bucket, environment and database names, KMS key ARN); the drill has no secrets at all, it restores into a PostgreSQL it starts itself.',
      runCommand: { startedBy: 'pgkeep-manual-drill' },
    });

    const stack = Stack.of(this);
    this.scheduleGroup = new scheduler.ScheduleGroup(this, 'ScheduleGroup', {
      scheduleGroupName: `pgkeep-${environmentName}-drill`,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role, so the backup schedules' role cannot start the drill and this one no backup.
    this.scheduleRole = new iam.Role(this, 'ScheduleRole', {
      description: `pgkeep ${environmentName}: EventBridge Scheduler starts the restore drill task with this role`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
    });
    const { schedule } = drill;
    this.schedule = this.addSchedule({
      scheduleName: `pgkeep-${environmentName}-drill`,
      scheduleGroup: this.scheduleGroup,
      description: `pgkeep ${environmentName}: restore drill of ${props.databaseNames.length} database(s) (cron ${schedule.cron}, ${schedule.timezone})`,
      cron: schedule.cron,
      timezone: schedule.timezone,
      role: this.scheduleRole,
      maxEventAge: SCHEDULE_MAX_EVENT_AGE,
      deadLetterQueue: props.deadLetterQueue,
    });
  }
}
