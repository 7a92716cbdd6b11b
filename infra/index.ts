/**
 * pgkeep as a construct library: `import { PgkeepEnvironment } from 'pgkeep'` in a CDK app of your
 * own (README.md, "Use pgkeep in your own CDK app"; examples/rds-instance/ is a whole app). The
 * package's entry: what is exported here is its public API, and nothing else is.
 */
export type { PgkeepAssets } from './assets.ts';
export { packagedAssets } from './assets.ts';
export type { DatabaseConstruct, EnvironmentConfig, EnvironmentInput, SecretInput } from './config.ts';
export { MAX_DATABASES_PER_ENVIRONMENT, PgkeepConfigError } from './config.ts';
export type { PgkeepDatabase } from './pgkeep-database.ts';
export type { PgkeepEnvironmentProps } from './pgkeep-environment.ts';
export { PgkeepEnvironment } from './pgkeep-environment.ts';
export type { PgkeepTask } from './pgkeep-task.ts';
export type { PipelineStack } from './pipeline-stack.ts';
export type { StorageStack } from './storage-stack.ts';
