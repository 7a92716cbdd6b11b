/**
 * EventBridge rules that turn a stopped restore or drill task into a readable email: one rule per
 * outcome, because a rule's message cannot branch on the exit code, and "the backup is archived,
 * a retrieval was requested" (exit 3) must not read like "the restore failed" (exit 1).
 */
import { Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { TASK_CONTAINER_NAME } from './run-task-command.ts';

/** What one rule reports: the stopped tasks it matches (beyond cluster and family) and its message. */
export interface StoppedTaskNotice {
  id: string;
  description: string;
  /** Extra fields of the event's `detail` to match, e.g. an exit code or a stop code. */
  detail: Record<string, unknown>;
  /** The message, given the event fields it may quote (as `<placeholder>`s EventBridge fills in). */
  message: (fields: StoppedTaskFields) => string;
}

export interface StoppedTaskFields {
  exitCode: string;
  reason: string;
  task: string;
}

export interface StoppedTaskRulesProps {
  cluster: ecs.ICluster;
  /** Task definition family: the rules match its every revision. */
  family: string;
  topic: sns.ITopic;
  notices: readonly StoppedTaskNotice[];
}

/** Matches the pgkeep container's exit code in a task state change event. */
export function exitCodeDetail(exitCode: unknown): Record<string, unknown> {
  return { containers: { name: [TASK_CONTAINER_NAME], exitCode: [exitCode] } };
}

export function addStoppedTaskRules(scope: Construct, props: StoppedTaskRulesProps): events.Rule[] {
  const stack = Stack.of(scope);
  const fields: StoppedTaskFields = {
    exitCode: events.EventField.fromPath('$.detail.containers[0].exitCode'),
    reason: events.EventField.fromPath('$.detail.stoppedReason'),
    task: events.EventField.fromPath('$.detail.taskArn'),
  };
  return props.notices.map(
    (notice) =>
      new events.Rule(scope, notice.id, {
        description: notice.description,
        eventPattern: {
          source: ['aws.ecs'],
          detailType: ['ECS Task State Change'],
          detail: {
            clusterArn: [props.cluster.clusterArn],
            lastStatus: ['STOPPED'],
            taskDefinitionArn: events.Match.prefix(stack.formatArn({ service: 'ecs', resource: 'task-definition', resourceName: `${props.family}:` })),
            ...notice.detail,
          },
        },
        targets: [new eventsTargets.SnsTopic(props.topic, { message: events.RuleTargetInput.fromText(notice.message(fields)) })],
      }),
  );
}
