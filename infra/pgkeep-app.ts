/**
 * The standalone app's stacks: a PgkeepEnvironment per environment configured in
 * infra/environments.ts, with the cdk-nag AwsSolutions checks attached (an unacknowledged finding
 * fails synth). Shared by infra/app.ts and the tests, so the tests check exactly what `cdk synth`
 * produces. A CDK app of your own uses PgkeepEnvironment directly (infra/index.ts, README.md).
 */
import type { App } from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { PgkeepAssets } from './assets.ts';
import type { EnvironmentConfig, EnvironmentInput } from './config.ts';
import { parsePgkeepConfig, selectEnvironments } from './config.ts';
import { REPOSITORY_ROOT } from './paths.ts';
import { PgkeepEnvironment } from './pgkeep-environment.ts';
import type { PipelineStack } from './pipeline-stack.ts';
import { sourceAssets } from './source-assets.ts';
import type { StorageStack } from './storage-stack.ts';
import type { VaultStack } from './vault-stack.ts';

export interface PgkeepAppOptions {
  /** Unvalidated configuration, e.g. PGKEEP_ENVIRONMENTS from environments.ts. */
  config: unknown;
  /** Synthesize only this environment (`-c env=<name>`); all of them when undefined. */
  environment?: string | undefined;
  /** Default: built from this repository's sources. */
  assets?: PgkeepAssets;
}

export interface EnvironmentStacks {
  environment: EnvironmentConfig;
  storage: StorageStack;
  pipeline: PipelineStack;
  /** Where the environment has a vault (docs/vault.md). */
  vault: VaultStack | undefined;
}

export function addPgkeepStacks(app: App, options: PgkeepAppOptions): EnvironmentStacks[] {
  // The whole configuration first, so every environment's problems are reported at once.
  const environments = selectEnvironments(parsePgkeepConfig(options.config), options.environment);
  const inputs = (options.config as { environments: Record<string, EnvironmentInput> }).environments;
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return environments.map(({ name }) => {
    const environment = new PgkeepEnvironment(app, `pgkeep-${name}`, { name, config: inputs[name]!, assets: options.assets ?? sourceAssets(REPOSITORY_ROOT) });
    return { environment: environment.config, storage: environment.storage, pipeline: environment.pipeline, vault: environment.vault };
  });
}
