/**
 * Builds the stacks of the configured environments into an app, with the cdk-nag AwsSolutions
 * checks attached (an unacknowledged finding fails synth). Shared by infra/app.ts and the tests,
 * so the tests check exactly what `cdk synth` produces.
 */
import type { App } from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { EnvironmentConfig } from './config.ts';
import { parsePgkeepConfig, selectEnvironments } from './config.ts';
import { REPOSITORY_ROOT } from './paths.ts';
import { PipelineStack } from './pipeline-stack.ts';
import { StorageStack } from './storage-stack.ts';

export interface PgkeepAppOptions {
  /** Unvalidated configuration, e.g. PGKEEP_ENVIRONMENTS from environments.ts. */
  config: unknown;
  /** Synthesize only this environment (`-c env=<name>`); all of them when undefined. */
  environment?: string | undefined;
  repositoryRoot?: string;
}

export interface EnvironmentStacks {
  environment: EnvironmentConfig;
  storage: StorageStack;
  pipeline: PipelineStack;
}

export function addPgkeepStacks(app: App, options: PgkeepAppOptions): EnvironmentStacks[] {
  const environments = selectEnvironments(parsePgkeepConfig(options.config), options.environment);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return environments.map((environment) => {
    const storage = new StorageStack(app, `pgkeep-${environment.name}-storage`, { environment });
    const pipeline = new PipelineStack(app, `pgkeep-${environment.name}-pipeline`, {
      environment,
      bucket: storage.bucket,
      key: storage.key,
      backupWriterPolicy: storage.backupWriterPolicy,
      accessPolicies: storage.accessPolicies,
      repositoryRoot: options.repositoryRoot ?? REPOSITORY_ROOT,
    });
    return { environment, storage, pipeline };
  });
}
