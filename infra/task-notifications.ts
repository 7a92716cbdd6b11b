/**
 * The EventBridge rules that turn a stopped pgkeep task into a readable email: one rule per task
 * kind and outcome, for the whole environment. A rule's message cannot branch on the exit code,
 * so "the backup is archived, a retrieval was requested" (restore exit 3) has a rule of its own
 * and never reads like "the restore failed" (exit 1).
 *
 * Per environment, not per database: every rule counts against EventBridge's quota of 300 rules
 * per event bus per Region (100 in some Regions), shared with everything else in the account
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html). Six rules per
 * database would exhaust it at 50 databases; these eight stay eight. Each message names the task
 * definition, whose family ends with the database's resource key, which is also the prefix of the
 * task's log stream.
 */
import { Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { AlertsTopicTarget, environmentNamePrefix } from './alerting.ts';
import { logGroupConsoleUrl } from './console-links.ts';
import { TASK_CONTAINER_NAME } from './run-task-command.ts';
import { EXIT } from '../catalog/exit-codes.ts';

/** The restore's exit codes that are not plain failures, and the others the messages explain. */
const { ok, failed, misconfigured, archived, restoredWithDifferences, interrupted } = EXIT;
/** Not the task's: the kernel's SIGKILL (128 + 9), which ECS sends when the container exceeds its memory. */
const KILLED = 137;

export type TaskKind = 'backup' | 'restore' | 'drill';

/** Task definition families: `pgkeep-<env>-backup-<Key>`, `pgkeep-<env>-restore-<Key>`, `pgkeep-<env>-drill`. */
export function taskFamily(environmentName: string, kind: TaskKind, databaseKey?: string): string {
  return `${environmentNamePrefix(environmentName)}${kind}${databaseKey === undefined ? '' : `-${databaseKey}`}`;
}

/** What a stopped-task message may quote (as `<placeholder>`s EventBridge fills in). */
export interface StoppedTaskFields {
  exitCode: string;
  reason: string;
  task: string;
  taskDefinition: string;
}

interface StoppedTaskNotice {
  /** The rule's name without the environment prefix, e.g. `backup-failed`. */
  name: string;
  description: string;
  /** Extra fields of the event's `detail` to match, e.g. an exit code or a stop code. */
  detail: Record<string, unknown>;
  message: (fields: StoppedTaskFields) => string;
}

export interface TaskStopNotificationsProps {
  environmentName: string;
  cluster: ecs.ICluster;
  topic: sns.ITopic;
  /** Where each kind of task logs (one stream prefix per database, `drill` for the drill). */
  logGroups: Record<TaskKind, logs.ILogGroup>;
}

/** Matches the pgkeep container's exit code in a task state change event. */
function exitCodeDetail(exitCode: unknown): Record<string, unknown> {
  return { containers: { name: [TASK_CONTAINER_NAME], exitCode: [exitCode] } };
}

const NOT_STARTED = { stopCode: ['TaskFailedToStart'] };

export class TaskStopNotifications extends Construct {
  readonly rules: ReadonlyMap<string, events.Rule>;

  constructor(scope: Construct, id: string, props: TaskStopNotificationsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const env = props.environmentName;
    const fields: StoppedTaskFields = {
      exitCode: events.EventField.fromPath('$.detail.containers[0].exitCode'),
      reason: events.EventField.fromPath('$.detail.stoppedReason'),
      task: events.EventField.fromPath('$.detail.taskArn'),
      taskDefinition: events.EventField.fromPath('$.detail.taskDefinitionArn'),
    };
    const logs = (kind: TaskKind, streams: string) =>
      `Logs: ${logGroupConsoleUrl(stack.region, props.logGroups[kind].logGroupName)} (stream ${streams}/${TASK_CONTAINER_NAME}/<task id>, the task id being the last part of the task ARN).`;
    const perDatabase = (kind: 'backup' | 'restore') => logs(kind, '<the last part of the task definition family>');
    const byKind: Record<TaskKind, StoppedTaskNotice[]> = {
      backup: [
        {
          name: 'backup-failed',
          description: `pgkeep ${env}: a backup task stopped with a non-zero exit code`,
          detail: exitCodeDetail({ 'anything-but': ok }),
          message: ({ exitCode, reason, task, taskDefinition }) =>
            `pgkeep ${env}: a backup FAILED with exit code ${exitCode} ` +
            `(${failed} = the backup failed and the log says why and what to do; ${misconfigured} = misconfigured, nothing was touched; ${interrupted} = stopped by SIGTERM, upload aborted; ${KILLED} = killed, usually out of memory). ` +
            `Task definition: ${taskDefinition} (its family ends with the database). ECS: ${reason}. Task: ${task}. ${perDatabase('backup')}`,
        },
        {
          name: 'backup-not-started',
          description: `pgkeep ${env}: a backup task failed to start`,
          detail: NOT_STARTED,
          message: ({ reason, task, taskDefinition }) =>
            `pgkeep ${env}: a backup could not start. Task definition: ${taskDefinition} (its family ends with the database). ECS: ${reason}. ` +
            'Check that the database secret exists and has host, port, username, password and dbname, and that the subnets reach ECR, Secrets Manager and CloudWatch Logs. ' +
            `Task: ${task}. ${perDatabase('backup')}`,
        },
      ],
      restore: [
        {
          name: 'restore-failed',
          description: `pgkeep ${env}: a restore task failed (exit code other than ${ok}, ${archived} and ${restoredWithDifferences})`,
          detail: exitCodeDetail({ 'anything-but': [ok, archived, restoredWithDifferences] }),
          message: ({ exitCode, reason, task, taskDefinition }) =>
            `pgkeep ${env}: a restore FAILED with exit code ${exitCode} ` +
            `(${failed} = the restore failed, a half-restored new database was dropped, and the log says why and what to do; ${misconfigured} = misconfigured or refused, nothing was touched; ${interrupted} = stopped by SIGTERM; ${KILLED} = killed, usually out of memory). ` +
            `Task definition: ${taskDefinition} (its family ends with the database). ECS: ${reason}. Task: ${task}. ${perDatabase('restore')}`,
        },
        {
          name: 'restore-archived',
          description: `pgkeep ${env}: a restore task found the backup archived and requested its retrieval (exit code ${archived})`,
          detail: exitCodeDetail(archived),
          message: ({ task, taskDefinition }) =>
            `pgkeep ${env} (information, not a failure): a restore found the backup in Glacier Flexible Retrieval or Deep Archive and requested a retrieval (exit code ${archived}). ` +
            'The log says which tier and how long it takes (hours for Standard, up to 48 hours from Deep Archive); run the same restore again once it is retrieved, or with PGKEEP_RESTORE_WAIT_FOR_ARCHIVE=true to wait in the task. ' +
            `Task definition: ${taskDefinition}. Task: ${task}. ${perDatabase('restore')}`,
        },
        {
          name: 'restore-differences',
          description: `pgkeep ${env}: a restore task restored, but the result differs from the manifest (exit code ${restoredWithDifferences})`,
          detail: exitCodeDetail(restoredWithDifferences),
          message: ({ task, taskDefinition }) =>
            `pgkeep ${env}: a restore finished, but the restored database DIFFERS from the backup's manifest (exit code ${restoredWithDifferences}: tables or row counts do not match). ` +
            'Do not put it into service before checking each difference in the log (the restore completed with differences line). ' +
            `Task definition: ${taskDefinition}. Task: ${task}. ${perDatabase('restore')}`,
        },
        {
          name: 'restore-not-started',
          description: `pgkeep ${env}: a restore task failed to start`,
          detail: NOT_STARTED,
          message: ({ reason, task, taskDefinition }) =>
            `pgkeep ${env}: a restore could not start. Task definition: ${taskDefinition} (its family ends with the database). ECS: ${reason}. ` +
            'Check that the restore target secret exists and has host, port, username, password and dbname, and that the subnets reach ECR, Secrets Manager and CloudWatch Logs. ' +
            `Task: ${task}. ${perDatabase('restore')}`,
        },
      ],
      drill: [
        {
          name: 'drill-task-failed',
          description: `pgkeep ${env}: the restore drill task stopped with a non-zero exit code`,
          detail: exitCodeDetail({ 'anything-but': ok }),
          message: ({ exitCode, reason, task }) =>
            `pgkeep ${env}: the restore drill FAILED with exit code ${exitCode} ` +
            `(${failed} = at least one database did not restore or did not match its manifest: the drill failed lines in the log name it and why; ${misconfigured} = misconfigured, nothing was restored; ${interrupted} = stopped by SIGTERM; ${KILLED} = killed, usually out of memory: raise drill.memoryMiB). ` +
            `ECS: ${reason}. Task: ${task}. ${logs('drill', 'drill')}`,
        },
        {
          name: 'drill-not-started',
          description: `pgkeep ${env}: the restore drill task failed to start`,
          detail: NOT_STARTED,
          message: ({ reason, task }) =>
            `pgkeep ${env}: the restore drill could not start. ECS: ${reason}. Check that the subnets reach ECR, S3 and CloudWatch Logs. Task: ${task}. ${logs('drill', 'drill')}`,
        },
      ],
    };

    const rules = new Map<string, events.Rule>();
    for (const [kind, notices] of Object.entries(byKind) as [TaskKind, StoppedTaskNotice[]][]) {
      // Every revision of every family of this kind: the drill's one family, or a database's each.
      const families = kind === 'drill' ? `${taskFamily(env, kind)}:` : `${taskFamily(env, kind)}-`;
      for (const notice of notices) {
        rules.set(
          notice.name,
          new events.Rule(this, notice.name, {
            ruleName: `${environmentNamePrefix(env)}${notice.name}`,
            description: notice.description,
            eventPattern: {
              source: ['aws.ecs'],
              detailType: ['ECS Task State Change'],
              detail: {
                clusterArn: [props.cluster.clusterArn],
                lastStatus: ['STOPPED'],
                taskDefinitionArn: events.Match.prefix(stack.formatArn({ service: 'ecs', resource: 'task-definition', resourceName: families })),
                ...notice.detail,
              },
            },
            targets: [new AlertsTopicTarget(props.topic, events.RuleTargetInput.fromText(notice.message(fields)))],
          }),
        );
      }
    }
    this.rules = rules;
  }
}
