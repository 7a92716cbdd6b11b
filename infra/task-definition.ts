import type * as iam from 'aws-cdk-lib/aws-iam';
import { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { TASK_CONTAINER_NAME } from './run-task-command.ts';

/**
 * What every pgkeep task definition (backup, restore, drill) has in common: ARM64 Fargate, a
 * read-only root filesystem, and the task's ephemeral storage mounted at /tmp as its only writable
 * path (the parallel restore's download and the throwaway cluster's scratch space). ECS mounts that
 * empty volume owned by root with mode 0755 unless the image declares VOLUME ["/tmp"], which
 * task/Dockerfile does, with mode 1777, for its non-root user (docs/infrastructure.md, "The
 * container on Fargate"; test/task/fargate-container.integration.test.ts).
 */
/** Time a task gets between SIGTERM and SIGKILL to clean up (the Fargate maximum). */
export const STOP_TIMEOUT = Duration.seconds(120);

export interface PgkeepTaskDefinitionProps {
  family: string;
  size: { cpu: number; memoryMiB: number; ephemeralStorageGiB: number };
  taskRole: iam.IRole;
  executionRole: iam.IRole;
}

export function pgkeepTaskDefinition(scope: Construct, props: PgkeepTaskDefinitionProps): ecs.FargateTaskDefinition {
  return new ecs.FargateTaskDefinition(scope, 'TaskDefinition', {
    family: props.family,
    cpu: props.size.cpu,
    memoryLimitMiB: props.size.memoryMiB,
    ephemeralStorageGiB: props.size.ephemeralStorageGiB,
    runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    taskRole: props.taskRole,
    executionRole: props.executionRole,
    volumes: [{ name: 'tmp' }],
  });
}

export interface PgkeepContainerProps {
  image: ecs.ContainerImage;
  command: 'backup' | 'restore' | 'drill';
  logGroup: logs.ILogGroup;
  streamPrefix: string;
  environment: Record<string, string>;
  secrets?: Record<string, ecs.Secret>;
}

export function addPgkeepContainer(taskDefinition: ecs.FargateTaskDefinition, props: PgkeepContainerProps): ecs.ContainerDefinition {
  const container = taskDefinition.addContainer('Container', {
    containerName: TASK_CONTAINER_NAME,
    image: props.image,
    command: [props.command],
    essential: true,
    readonlyRootFilesystem: true,
    // Time to abort the upload, drop a half-restored database or stop a throwaway cluster on SIGTERM.
    stopTimeout: STOP_TIMEOUT,
    logging: ecs.LogDrivers.awsLogs({ logGroup: props.logGroup, streamPrefix: props.streamPrefix }),
    environment: props.environment,
    ...(props.secrets ? { secrets: props.secrets } : {}),
  });
  container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });
  return container;
}
