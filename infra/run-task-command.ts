/**
 * The `aws ecs run-task` command lines printed as stack outputs: one database's backup now, a
 * restore of its latest backup, the restore drill now. It must survive a copy and paste into a POSIX shell, so every argument that can contain
 * spaces, quotes or JSON is single-quoted; the rest are ARNs and names, which cannot.
 */

export const TASK_CONTAINER_NAME = 'pgkeep';

export interface EnvironmentVariable {
  name: string;
  value: string;
}

/** The RunTask `overrides` for one database: what the schedule sends and the command passes. */
export interface TaskOverrides {
  containerOverrides: [{ name: typeof TASK_CONTAINER_NAME; environment: EnvironmentVariable[] }];
}

export function taskOverrides(environment: Readonly<Record<string, string>>): TaskOverrides {
  return {
    containerOverrides: [{ name: TASK_CONTAINER_NAME, environment: Object.entries(environment).map(([name, value]) => ({ name, value })) }],
  };
}

export interface RunTaskCommandParts {
  /** An AWS region name, which cannot contain shell metacharacters. */
  region: string;
  /** May be a CloudFormation token; resolves to a name without shell metacharacters. */
  cluster: string;
  /** A task definition family (RunTask takes its latest ACTIVE revision) or ARN: no shell metacharacters. */
  taskDefinition: string;
  subnetIds: readonly string[];
  securityGroupIds: readonly string[];
  /** Omitted when the task definition already says everything (the drill). */
  overrides?: TaskOverrides;
  /** Tells a manual run apart from the scheduled ones in the console and in ListTasks. */
  startedBy?: string;
}

/** Where the tasks of an environment run, as the constructs hold it (structural, so this module
 * needs no CDK types). */
export interface TaskPlacement {
  cluster: { clusterName: string };
  subnets: readonly { subnetId: string }[];
  securityGroup: { securityGroupId: string };
}

/** The placement parts of a command: the same for every task of an environment. */
export function placementParts(placement: TaskPlacement): Pick<RunTaskCommandParts, 'cluster' | 'subnetIds' | 'securityGroupIds'> {
  return {
    cluster: placement.cluster.clusterName,
    subnetIds: placement.subnets.map((subnet) => subnet.subnetId),
    securityGroupIds: [placement.securityGroup.securityGroupId],
  };
}

export function runTaskCommand(parts: RunTaskCommandParts): string {
  const networkConfiguration = {
    awsvpcConfiguration: { subnets: parts.subnetIds, securityGroups: parts.securityGroupIds, assignPublicIp: 'DISABLED' },
  };
  return [
    'aws ecs run-task',
    `--region ${parts.region}`,
    `--cluster ${parts.cluster}`,
    `--task-definition ${parts.taskDefinition}`,
    '--launch-type FARGATE',
    `--network-configuration ${shellQuote(JSON.stringify(networkConfiguration))}`,
    ...(parts.overrides ? [`--overrides ${shellQuote(JSON.stringify(parts.overrides))}`] : []),
    `--started-by ${parts.startedBy ?? 'pgkeep-manual-run'}`,
  ].join(' ');
}

/** POSIX single quoting: everything is literal inside '...', and a ' is written as '\''. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
