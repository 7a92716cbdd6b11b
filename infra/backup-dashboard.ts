/**
 * One CloudWatch dashboard per environment: the state of every alarm first, then, per database,
 * the age and size of its newest verified backup, each run's size, duration and throughput, the
 * verification and task outcomes, what retention kept and deleted, and how the restore drill and
 * restores went (the drill's restore time is the measured RTO).
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { MetricName } from '../catalog/metrics.ts';
import { METRIC } from '../catalog/metrics.ts';
import { backupMetric, RUNBOOK } from './backup-alarms.ts';
import type { EnvironmentConfig } from './config.ts';
import { staleThreshold } from './staleness.ts';

export interface BackupDashboardProps {
  /** Its name, its databases and the size-ratio threshold the dashboard draws. */
  environment: Pick<EnvironmentConfig, 'name' | 'alarms' | 'databases'>;
  /** Every alarm of the environment, by name (most live in the databases' nested stacks). */
  alarmNames: readonly string[];
  functions: { name: string; function: lambda.IFunction }[];
}

/** An alarm status widget lists at most 100 alarm ARNs ("The array can have 1-100 ARNs": the
 * alarm widget's properties in CloudWatch's Dashboard Body Structure and Syntax). */
export const ALARMS_PER_STATUS_WIDGET = 100;

const HOUR = Duration.hours(1);
const DAY = Duration.days(1);
const FULL_WIDTH = 24;
const HALF_WIDTH = 12;
const GRAPH_HEIGHT = 6;

export class BackupDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly dashboardName: string;

  constructor(scope: Construct, id: string, { environment, alarmNames, functions }: BackupDashboardProps) {
    super(scope, id);
    const alarms = alarmNames.map((alarmName, index) => cloudwatch.Alarm.fromAlarmName(this, `Alarm${index}`, alarmName));
    const alarmWidgets: cloudwatch.IWidget[][] = [];
    for (let start = 0; start < alarms.length; start += ALARMS_PER_STATUS_WIDGET) {
      const part = alarms.slice(start, start + ALARMS_PER_STATUS_WIDGET);
      const parts = Math.ceil(alarms.length / ALARMS_PER_STATUS_WIDGET);
      alarmWidgets.push([
        new cloudwatch.AlarmStatusWidget({
          title: parts === 1 ? 'Alarms' : `Alarms (${start / ALARMS_PER_STATUS_WIDGET + 1} of ${parts})`,
          alarms: part,
          width: FULL_WIDTH,
          height: Math.min(12, 2 + Math.ceil(part.length / 4)),
        }),
      ]);
    }
    this.dashboardName = `pgkeep-${environment.name}`;
    const databases = environment.databases;
    const perDatabase = (metricName: MetricName, statistic: string, period: Duration, label?: (name: string) => string) =>
      databases.map((database) =>
        backupMetric(environment.name, database.name, metricName, statistic, period).with({ label: label ? label(database.name) : database.name }),
      );
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: HALF_WIDTH, height: GRAPH_HEIGHT, ...extra });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: this.dashboardName,
      defaultInterval: Duration.days(14),
      widgets: [
        [
          new cloudwatch.TextWidget({
            markdown: `# pgkeep ${environment.name}: backups of ${databases.map((database) => database.name).join(', ')}\nEvery alarm's description says what to do first; the runbook (${RUNBOOK} in the pgkeep repository) has the rest.`,
            width: FULL_WIDTH,
            height: 2,
          }),
        ],
        ...alarmWidgets,
        [
          graph(
            'Age of the newest verified backup (hours)',
            databases.map(
              // Math expression ids must be unique within the graph: one per database.
              (database, index) =>
                new cloudwatch.MathExpression({
                  expression: `age${index} / 3600`,
                  usingMetrics: {
                    [`age${index}`]: backupMetric(environment.name, database.name, METRIC.newestVerifiedBackupAgeSeconds, cloudwatch.Stats.MAXIMUM, HOUR),
                  },
                  label: database.name,
                  period: HOUR,
                }),
            ),
            {
              leftAnnotations: databases.map((database) => {
                const hours = staleThreshold(database, environment.alarms).seconds / 3600;
                return { value: hours, label: `${database.name}: stale after ${Number(hours.toFixed(2))} h` };
              }),
            },
          ),
          graph('Newest verified backup vs the recent median (ratio)', perDatabase(METRIC.newestVerifiedBackupSizeRatio, cloudwatch.Stats.MINIMUM, HOUR), {
            leftAnnotations: [...new Set(databases.map((database) => database.alarms.minimumSizeRatio ?? environment.alarms.minimumSizeRatio))].map(
              (ratio) => ({
                value: ratio,
                label: `size-drop alarm below ${ratio}`,
              }),
            ),
          }),
        ],
        [
          graph('Newest verified backup size (bytes)', perDatabase(METRIC.newestVerifiedBackupBytes, cloudwatch.Stats.MAXIMUM, HOUR)),
          graph('Size of each backup (bytes)', perDatabase(METRIC.backupBytes, cloudwatch.Stats.MAXIMUM, HOUR)),
        ],
        [
          graph('Backup duration (seconds)', perDatabase(METRIC.backupDurationSeconds, cloudwatch.Stats.MAXIMUM, HOUR)),
          graph(
            'Throughput (MB/s, uncompressed) and compression ratio',
            perDatabase(METRIC.backupThroughputMBps, cloudwatch.Stats.MAXIMUM, HOUR, (name) => `${name} MB/s`),
            {
              right: perDatabase(METRIC.backupCompressionRatio, cloudwatch.Stats.MAXIMUM, HOUR, (name) => `${name} compression ratio`),
            },
          ),
        ],
        [
          graph(
            'Verification outcomes (per day)',
            [
              ...perDatabase(METRIC.backupVerified, cloudwatch.Stats.SUM, DAY, (name) => `${name} verified`),
              ...perDatabase(METRIC.backupVerificationFailed, cloudwatch.Stats.SUM, DAY, (name) => `${name} FAILED`),
              ...perDatabase(METRIC.backupUnverifiable, cloudwatch.Stats.SUM, DAY, (name) => `${name} unverifiable`),
              // From the hourly health check: how many backups claim a start time ahead of S3's clock.
              ...perDatabase(METRIC.futureDatedBackups, cloudwatch.Stats.MAXIMUM, DAY, (name) => `${name} future-dated`),
            ],
            { view: cloudwatch.GraphWidgetView.BAR },
          ),
          graph(
            'Backup task outcomes (per day)',
            [
              ...perDatabase(METRIC.backupSucceeded, cloudwatch.Stats.SUM, DAY, (name) => `${name} succeeded`),
              ...perDatabase(METRIC.backupFailed, cloudwatch.Stats.SUM, DAY, (name) => `${name} FAILED`),
            ],
            { view: cloudwatch.GraphWidgetView.BAR },
          ),
        ],
        [
          graph(
            'Retention (per daily run)',
            [
              ...perDatabase(METRIC.retentionKept, cloudwatch.Stats.MAXIMUM, DAY, (name) => `${name} kept`),
              ...perDatabase(METRIC.retentionDeleted, cloudwatch.Stats.SUM, DAY, (name) => `${name} deleted`),
              ...perDatabase(METRIC.retentionErrors, cloudwatch.Stats.SUM, DAY, (name) => `${name} errors`),
            ],
            { right: perDatabase(METRIC.retentionDeletedBytes, cloudwatch.Stats.SUM, DAY, (name) => `${name} bytes deleted`) },
          ),
          graph(
            'Function errors (per hour)',
            functions.map(({ name, function: fn }) => fn.metricErrors({ period: HOUR, statistic: cloudwatch.Stats.SUM, label: name })),
          ),
        ],
        [
          graph(
            'Restore drill: time to restore the newest verified backup, the measured RTO (seconds)',
            perDatabase(METRIC.drillRestoreSeconds, cloudwatch.Stats.MAXIMUM, DAY),
          ),
          graph(
            'Restore drill outcomes (per day)',
            [
              ...perDatabase(METRIC.drillSucceeded, cloudwatch.Stats.SUM, DAY, (name) => `${name} passed`),
              ...perDatabase(METRIC.drillFailed, cloudwatch.Stats.SUM, DAY, (name) => `${name} FAILED`),
              ...perDatabase(METRIC.drillMismatches, cloudwatch.Stats.MAXIMUM, DAY, (name) => `${name} differences`),
            ],
            { view: cloudwatch.GraphWidgetView.BAR },
          ),
        ],
        [
          graph('Restore duration (seconds)', perDatabase(METRIC.restoreDurationSeconds, cloudwatch.Stats.MAXIMUM, HOUR)),
          graph(
            'Restore outcomes (per day)',
            [
              ...perDatabase(METRIC.restoreSucceeded, cloudwatch.Stats.SUM, DAY, (name) => `${name} matched`),
              ...perDatabase(METRIC.restoreFailed, cloudwatch.Stats.SUM, DAY, (name) => `${name} FAILED`),
              ...perDatabase(METRIC.restoreMismatches, cloudwatch.Stats.MAXIMUM, DAY, (name) => `${name} differences`),
            ],
            { view: cloudwatch.GraphWidgetView.BAR },
          ),
        ],
      ],
    });
  }

  /** The dashboard in the CloudWatch console. */
  url(region: string): string {
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${this.dashboardName}`;
  }
}
