/**
 * The alarms about restores and the restore drill, per database, each sending ALARM and OK to the
 * alerts topic: a failed drill, no successful drill for `drill.alarmAfterDays`, and a restore whose
 * result differs from its manifest.
 *
 * "No successful drill within N days" and CloudWatch's limit: a metric alarm evaluates at most 7
 * days (period × evaluation periods ≤ 604,800 s), so for N ≤ 7 it is one alarm (DrillSucceeded
 * missing or 0 in every hour of the last N days), and for N > 7 (default 8: weekly plus a day) it
 * is a composite of two 7-day-or-shorter alarms:
 *   A (per database): no DrillSucceeded in the last 7 days, AND
 *   B (per environment): the drill schedule made no start attempt in the last N − 7 days
 *     (AWS/Scheduler InvocationAttemptCount of the drill's own schedule group).
 * With a schedule that starts a drill at least every 7 days (the configuration checks this), a
 * drill that starts at S and fails keeps B OK until S + N − 7 days while A is already in ALARM,
 * so the composite fires N days after the last good drill at the latest; when no drill even
 * starts, B is in ALARM throughout and the composite fires after 7 days.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { METRIC } from '../catalog/metrics.ts';
import type { AlarmKind } from './backup-alarms.ts';
import { ALARM_NAME_MAX_LENGTH, backupMetric, notifyBothWays, runbookPointer } from './backup-alarms.ts';
import type { DatabaseConfig, EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import { boundedName } from './pgkeep-task.ts';

const HOUR = Duration.hours(1);
const HOURS_PER_DAY = 24;
/** CloudWatch's longest evaluation range of one metric alarm. */
export const LONGEST_ALARM_WINDOW_DAYS = 7;

/** No drill start attempt in the last `alarmAfterDays - 7` days: one input of the composite
 * overdue alarms, shared by the databases. Undefined when a single alarm can cover the window. */
export function drillNotAttemptedAlarm(
  scope: Construct,
  environment: Pick<EnvironmentConfig, 'name' | 'drill'>,
  scheduleGroup: scheduler.IScheduleGroup,
): cloudwatch.Alarm | undefined {
  const days = environment.drill.alarmAfterDays - LONGEST_ALARM_WINDOW_DAYS;
  if (days <= 0) return undefined;
  return new cloudwatch.Alarm(scope, 'DrillNotAttemptedAlarm', {
    alarmName: `pgkeep-${environment.name}-drill-not-attempted`,
    alarmDescription:
      `pgkeep ${environment.name}: the restore drill schedule made no attempt to start the drill in the last ${days} day(s). ` +
      `Input of the per-database drill-overdue alarms; notifies nobody by itself. ${runbookPointer('drillOverdue')}`,
    metric: scheduleGroup.metricAttempts({ period: HOUR, statistic: cloudwatch.Stats.SUM }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    evaluationPeriods: days * HOURS_PER_DAY,
    datapointsToAlarm: days * HOURS_PER_DAY,
    // No attempt published means no attempt.
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
}

export interface RestoreAlarmsProps {
  /** Its name and the drill's alarm window. */
  environment: Pick<EnvironmentConfig, 'name' | 'drill'>;
  database: DatabaseConfig;
  topic: sns.ITopic;
  /** From drillNotAttemptedAlarm(), when alarmAfterDays is more than 7. */
  drillNotAttempted: cloudwatch.IAlarm | undefined;
}

export class RestoreAlarms extends Construct {
  readonly drillFailed: cloudwatch.Alarm;
  /** A metric alarm, or the composite described above; notifies the topic. */
  readonly drillOverdue: cloudwatch.AlarmBase;
  /** The composite's per-database input (no actions of its own), when there is a composite. */
  readonly noDrillSuccessInAWeek: cloudwatch.Alarm | undefined;
  readonly restoreDifferences: cloudwatch.Alarm;
  /** The alarms' names as plain text (alarmName is a token), e.g. for a dashboard in another stack. */
  readonly names: readonly string[];

  constructor(scope: Construct, id: string, { environment, database, topic, drillNotAttempted }: RestoreAlarmsProps) {
    super(scope, id);
    const key = databaseResourceKey(database.name);
    const who = `pgkeep ${environment.name}: database ${JSON.stringify(database.name)}`;
    const names: string[] = [];
    this.names = names;
    const name = (suffix: string) => {
      const alarmName = boundedName(`pgkeep-${environment.name}-${key}-${suffix}`, ALARM_NAME_MAX_LENGTH);
      names.push(alarmName);
      return alarmName;
    };
    const describe = (text: string, kind: AlarmKind) => `${who}: ${text} ${runbookPointer(kind)}`;
    const metric = (metricName: (typeof METRIC)[keyof typeof METRIC], statistic: string) =>
      backupMetric(environment.name, database.name, metricName, statistic, HOUR);
    const { alarmAfterDays } = environment.drill;

    this.drillFailed = notifyBothWays(
      new cloudwatch.Alarm(this, 'DrillFailed', {
        alarmName: name('drill-failed'),
        alarmDescription: describe(
          'the restore drill FAILED: its newest verified backup did not restore into the throwaway PostgreSQL, or the result did not match the manifest. ' +
            'Read the drill failed line in the drill log group (pipeline stack output DrillLogGroupName), fix the cause, and run the drill again (pipeline stack output RunDrillCommand).',
          'drillFailed',
        ),
        metric: metric(METRIC.drillFailed, cloudwatch.Stats.SUM),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        // An event: OK an hour later; whether a good drill followed is the overdue alarm's business.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      topic,
    );

    const overdueDescription = describe(
      `no successful restore drill for ${alarmAfterDays} days (or, sooner, none for 7 days and no drill was even started). Look for drill-failed alarms and the drill task emails, check the drill schedule, then run the drill now (pipeline stack output RunDrillCommand).`,
      'drillOverdue',
    );
    const noSuccessWithin = (constructId: string, alarmName: string, description: string, days: number) =>
      new cloudwatch.Alarm(this, constructId, {
        alarmName,
        alarmDescription: description,
        metric: metric(METRIC.drillSucceeded, cloudwatch.Stats.SUM),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        // Every hour of the window without a success: "none in the last <days> days".
        evaluationPeriods: days * HOURS_PER_DAY,
        datapointsToAlarm: days * HOURS_PER_DAY,
        // No drill published anything: that is exactly what this alarm is for.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });

    if (drillNotAttempted === undefined) {
      this.noDrillSuccessInAWeek = undefined;
      this.drillOverdue = notifyBothWays(noSuccessWithin('DrillOverdue', name('drill-overdue'), overdueDescription, alarmAfterDays), topic);
    } else {
      this.noDrillSuccessInAWeek = noSuccessWithin(
        'NoDrillSuccessInAWeek',
        name('drill-no-success-7d'),
        describe('no successful restore drill in the last 7 days. Input of the drill-overdue alarm; notifies nobody by itself.', 'drillOverdue'),
        LONGEST_ALARM_WINDOW_DAYS,
      );
      this.drillOverdue = notifyBothWays(
        new cloudwatch.CompositeAlarm(this, 'DrillOverdue', {
          compositeAlarmName: name('drill-overdue'),
          alarmDescription: overdueDescription,
          alarmRule: cloudwatch.AlarmRule.allOf(
            cloudwatch.AlarmRule.fromAlarm(this.noDrillSuccessInAWeek, cloudwatch.AlarmState.ALARM),
            cloudwatch.AlarmRule.fromAlarm(drillNotAttempted, cloudwatch.AlarmState.ALARM),
          ),
        }),
        topic,
      );
    }

    this.restoreDifferences = notifyBothWays(
      new cloudwatch.Alarm(this, 'RestoreDifferences', {
        alarmName: name('restore-differences'),
        alarmDescription: describe(
          `a restore task finished, but the restored database DIFFERS from the backup's manifest (tables or row counts). Do not put that database into service; read the restore completed with differences line in the restore log group (pipeline stack output RestoreLogGroupName).`,
          'restoreDifferences',
        ),
        metric: metric(METRIC.restoreMismatches, cloudwatch.Stats.MAXIMUM),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      topic,
    );
  }

  /** Every alarm, for the dashboard's status widget (the composite's inputs included). */
  get all(): cloudwatch.AlarmBase[] {
    return [this.drillFailed, this.drillOverdue, ...(this.noDrillSuccessInAWeek ? [this.noDrillSuccessInAWeek] : []), this.restoreDifferences];
  }
}
