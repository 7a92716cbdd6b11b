/**
 * The alarms that say a database's backups are not fine, each sending ALARM and OK to the alerts
 * topic, each named and described with what it means, what to do first, and where the runbook
 * (docs/operations.md) has the rest. Metric names come from catalog/metrics.ts only, the module the
 * publishers take them from, so no alarm can watch a metric nobody publishes.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { MetricName } from '../catalog/metrics.ts';
import { METRIC, METRICS_NAMESPACE } from '../catalog/metrics.ts';
import type { DatabaseConfig, EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import { boundedName } from './pgkeep-task.ts';
import { formatHours, staleThreshold } from './staleness.ts';

/** Where each alarm's runbook entry is (docs/operations.md heading anchors). */
export const RUNBOOK = 'docs/operations.md';
export const RUNBOOK_SECTIONS = {
  stale: 'backup-stale',
  undersized: 'backup-undersized',
  sizeDrop: 'backup-size-dropped',
  verificationFailed: 'backup-verification-failed',
  unverifiable: 'backup-unverifiable',
  futureDated: 'backup-future-dated',
  backupFailed: 'backup-task-failed',
  retentionErrors: 'retention-errors',
  functionErrors: 'function-errors',
  undeliveredScheduledRuns: 'scheduled-run-not-started',
  drillFailed: 'restore-drill-failed',
  drillOverdue: 'no-successful-restore-drill',
  restoreDifferences: 'restore-differs-from-the-manifest',
  offsiteStale: 'off-site-copy-stale',
  replicationFailed: 'replication-failed',
  offsiteVerificationFailed: 'off-site-verification-failed',
} as const;
export type AlarmKind = keyof typeof RUNBOOK_SECTIONS;

export const ALARM_NAME_MAX_LENGTH = 255;
const HOUR = Duration.hours(1);

/** One pgkeep metric of one database, as the task and the functions publish it. */
export function backupMetric(environmentName: string, databaseName: string, metricName: MetricName, statistic: string, period: Duration): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { Environment: environmentName, Database: databaseName },
    statistic,
    period,
  });
}

/** Sends both ALARM and OK to the topic: a recovery is news too. */
export function notifyBothWays<T extends cloudwatch.AlarmBase>(alarm: T, topic: sns.ITopic): T {
  const action = new cloudwatchActions.SnsAction(topic);
  alarm.addAlarmAction(action);
  alarm.addOkAction(action);
  return alarm;
}

export function runbookPointer(kind: AlarmKind): string {
  return `Runbook: ${RUNBOOK}#${RUNBOOK_SECTIONS[kind]}`;
}

export interface DatabaseAlarmsProps {
  /** Its name and alarm thresholds. */
  environment: Pick<EnvironmentConfig, 'name' | 'alarms' | 'vault'>;
  database: DatabaseConfig;
  topic: sns.ITopic;
}

export class DatabaseAlarms extends Construct {
  readonly stale: cloudwatch.Alarm;
  readonly undersized: cloudwatch.Alarm;
  readonly sizeDrop: cloudwatch.Alarm;
  readonly verificationFailed: cloudwatch.Alarm;
  readonly unverifiable: cloudwatch.Alarm;
  readonly futureDated: cloudwatch.Alarm;
  readonly backupFailed: cloudwatch.Alarm;
  readonly retentionErrors: cloudwatch.Alarm;
  /** With a vault: no verified off-site copy young enough (docs/vault.md). */
  readonly offsiteStale: cloudwatch.Alarm | undefined;
  /** The alarms' names as plain text (alarmName is a token), e.g. for a dashboard in another stack. */
  readonly names: readonly string[];

  constructor(scope: Construct, id: string, { environment, database, topic }: DatabaseAlarmsProps) {
    super(scope, id);
    const key = databaseResourceKey(database.name);
    const who = `pgkeep ${environment.name}: database ${JSON.stringify(database.name)}`;
    const metric = (metricName: MetricName, statistic: string, period: Duration) =>
      backupMetric(environment.name, database.name, metricName, statistic, period);
    const names: string[] = [];
    this.names = names;
    const alarm = (constructId: string, kind: AlarmKind, suffix: string, props: Omit<cloudwatch.AlarmProps, 'alarmName'>) => {
      const alarmName = boundedName(`pgkeep-${environment.name}-${key}-${suffix}`, ALARM_NAME_MAX_LENGTH);
      names.push(alarmName);
      return notifyBothWays(
        new cloudwatch.Alarm(this, constructId, {
          ...props,
          alarmName,
          alarmDescription: `${props.alarmDescription ?? ''} ${runbookPointer(kind)}`,
        }),
        topic,
      );
    };

    const stale = staleThreshold(database, environment.alarms);
    this.stale = alarm('Stale', 'stale', 'backup-stale', {
      alarmDescription:
        `${who} has no verified backup younger than ${formatHours(stale.seconds / 3600)} (${stale.basis}), or the health check stopped reporting. ` +
        `Look at its BackupFailed and verification alarms and the task logs, then start a backup now (pipeline stack output RunTaskCommand${key}).`,
      metric: metric(METRIC.newestVerifiedBackupAgeSeconds, cloudwatch.Stats.MAXIMUM, HOUR),
      threshold: stale.seconds,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      // Two hours in a row: the health check reports once an hour, and one late report (an empty
      // hour, which counts as breaching) must not page anyone.
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      // Never backed up, or the health function is dead: no data, and that is an alarm too.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });

    const minimumBytes = database.alarms.minimumBackupBytes ?? environment.alarms.minimumBackupBytes;
    this.undersized = alarm('Undersized', 'undersized', 'backup-undersized', {
      alarmDescription: `${who}: the newest verified backup is smaller than ${minimumBytes} bytes, too small to hold the database. Check that the task backs up the right database with a user that can read all of it.`,
      metric: metric(METRIC.newestVerifiedBackupBytes, cloudwatch.Stats.MINIMUM, HOUR),
      threshold: minimumBytes,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No backup at all is the stale alarm's business.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    const minimumRatio = database.alarms.minimumSizeRatio ?? environment.alarms.minimumSizeRatio;
    this.sizeDrop = alarm('SizeDrop', 'sizeDrop', 'backup-size-dropped', {
      alarmDescription: `${who}: the newest verified backup is below ${minimumRatio} of the median size of the ${environment.alarms.sizeBaselineBackups} before it. Find out whether data was really removed; if not, do not rely on that backup.`,
      metric: metric(METRIC.newestVerifiedBackupSizeRatio, cloudwatch.Stats.MINIMUM, HOUR),
      threshold: minimumRatio,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // Event counts: ALARM within minutes of the event; OK once an hour passes without another.
    const countAlarm = (constructId: string, kind: AlarmKind, suffix: string, metricName: MetricName, description: string) =>
      alarm(constructId, kind, suffix, {
        alarmDescription: `${who}: ${description}`,
        metric: metric(metricName, cloudwatch.Stats.SUM, HOUR),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.verificationFailed = countAlarm(
      'VerificationFailed',
      'verificationFailed',
      'verification-failed',
      METRIC.backupVerificationFailed,
      'a backup FAILED verification (missing data object, size or checksum mismatch, malformed manifest). Do not restore from it; the SNS message names it. Run a new backup.',
    );
    this.unverifiable = countAlarm(
      'Unverifiable',
      'unverifiable',
      'backup-unverifiable',
      METRIC.backupUnverifiable,
      'a backup could not be verified: no store checksum and too large to hash in time, or written by a newer pgkeep (the SNS message says which). Run the restore drill on it, or deploy that pgkeep version to the stack; retention does not count it as good.',
    );

    this.futureDated = alarm('FutureDated', 'futureDated', 'backup-future-dated', {
      alarmDescription:
        `${who} has a backup whose start time lies ahead of S3's clock: the backup task's clock is wrong. It never counts as fresh, and retention keeps it. ` +
        'Fix the clock of the task (NTP on its host), run a backup now, then deal with the future-dated backup (the health log names it).',
      metric: metric(METRIC.futureDatedBackups, cloudwatch.Stats.MAXIMUM, HOUR),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // The health check publishes the count every hour, 0 when there is none, so the alarm stays
      // in ALARM while such a backup is in the catalog. No data at all is the stale alarm's business.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.backupFailed = countAlarm(
      'BackupFailed',
      'backupFailed',
      'backup-task-failed',
      METRIC.backupFailed,
      'the backup task reported a failed backup. Its log says why and what to do; the task-failure notification has the link. Fix it and run a backup now.',
    );

    this.retentionErrors = alarm('RetentionErrors', 'retentionErrors', 'retention-errors', {
      alarmDescription: `${who}: the retention run could not read, tag or delete some backups, or skipped the database. Nothing unsafe was deleted; read the enforce-retention log.`,
      metric: metric(METRIC.retentionErrors, cloudwatch.Stats.SUM, HOUR),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // Every run publishes RetentionErrors, 0 when clean, so the alarm keeps its state between the
      // daily runs and turns OK only when a run is clean: "OK" means fixed, not "an hour passed".
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });

    const { vault } = environment;
    const offsiteStale = vault ? staleThreshold(database, environment.alarms, vault.staleMarginHours) : undefined;
    this.offsiteStale =
      vault && offsiteStale
        ? alarm('OffsiteStale', 'offsiteStale', 'offsite-copy-stale', {
            alarmDescription:
              `${who} has no off-site copy in the vault (${vault.account}/${vault.region}) verified younger than ${formatHours(offsiteStale.seconds / 3600)} (${offsiteStale.basis}), or the health check cannot read the vault. ` +
              'Look at the replication-failed alarms, the vault verifier log and the health-check log, which names the reason.',
            metric: metric(METRIC.newestOffsiteVerifiedBackupAgeSeconds, cloudwatch.Stats.MAXIMUM, HOUR),
            threshold: offsiteStale.seconds,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluationPeriods: 2,
            datapointsToAlarm: 2,
            // No verified copy ever, an unreadable vault, or a dead health check: all are alarms.
            treatMissingData: cloudwatch.TreatMissingData.BREACHING,
          })
        : undefined;
  }

  get all(): cloudwatch.Alarm[] {
    return [
      this.stale,
      this.undersized,
      this.sizeDrop,
      this.verificationFailed,
      this.unverifiable,
      this.futureDated,
      this.backupFailed,
      this.retentionErrors,
      ...(this.offsiteStale ? [this.offsiteStale] : []),
    ];
  }
}

/** A function that throws (not a reported backup problem: a crash, a timeout, missing permissions). */
export function functionErrorsAlarm(
  scope: Construct,
  id: string,
  environment: Pick<EnvironmentConfig, 'name'>,
  fn: lambda.IFunction & { logGroup: logs.ILogGroup },
  what: string,
  topic: sns.ITopic,
): cloudwatch.Alarm {
  return notifyBothWays(
    new cloudwatch.Alarm(scope, id, {
      alarmName: `pgkeep-${environment.name}-${what}-errors`,
      alarmDescription: `pgkeep ${environment.name}: the ${what} function failed (crashed, timed out or was denied) instead of reporting; its work did not happen. Read its log group ${fn.logGroup.logGroupName}. ${runbookPointer('functionErrors')}`,
      metric: fn.metricErrors({ period: HOUR, statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
    topic,
  );
}
