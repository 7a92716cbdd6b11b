/**
 * One pgkeep environment as a construct: its storage stack (the backup bucket and its key, which
 * outlive everything else) and its pipeline stack (the tasks, functions, alarms and dashboard,
 * with a nested stack per database). This is what the package exports for use in any CDK app
 * (infra/index.ts), and what the standalone app (infra/app.ts) builds per configured environment.
 *
 * Two stacks, not one: the pipeline can be destroyed and redeployed freely while the backups stay;
 * the storage stack never depends on the pipeline stack (see PipelineStack's bucket import).
 */
import { Construct } from 'constructs';
import type { PgkeepAssets } from './assets.ts';
import { packagedAssets } from './assets.ts';
import type { EnvironmentConfig, EnvironmentInput } from './config.ts';
import { parseEnvironmentConfig } from './config.ts';
import { PGKEEP_FEATURE_FLAGS } from './feature-flags.ts';
import { PipelineStack } from './pipeline-stack.ts';
import { StorageStack } from './storage-stack.ts';
import { VaultStack } from './vault-stack.ts';

export interface PgkeepEnvironmentProps {
  /** 1-20 lowercase letters, digits or hyphens: part of every stack and resource name (`pgkeep-<name>-…`). */
  name: string;
  /** The environment's account, region, network, databases and policies, checked in full when the
   * construct is created: every problem is reported with the path of its field. */
  config: EnvironmentInput;
  /** The task image and function bundles. Default: the ones the package ships (infra/assets.ts). */
  assets?: PgkeepAssets;
}

export class PgkeepEnvironment extends Construct {
  /** The validated configuration, defaults filled in. */
  readonly config: EnvironmentConfig;
  readonly storage: StorageStack;
  readonly pipeline: PipelineStack;
  /** Where the environment has a vault: its stack, in the vault's account and region (docs/vault.md). */
  readonly vault: VaultStack | undefined;

  constructor(scope: Construct, id: string, props: PgkeepEnvironmentProps) {
    super(scope, id);
    // Before any child exists: context set later would not reach constructs already created.
    for (const [flag, value] of Object.entries(PGKEEP_FEATURE_FLAGS)) this.node.setContext(flag, value);
    const environment = parseEnvironmentConfig(props.name, props.config);
    this.config = environment;
    // Stack tags: CloudFormation copies them onto every resource it creates in the stack, so cost
    // reports and tag-based policies can tell pgkeep's resources and environments apart.
    const tags = { project: 'pgkeep', environment: environment.name };
    const assets = props.assets ?? packagedAssets();
    // First in the deploy order, with the vault account's credentials: the storage stack's
    // replication rule names its bucket, which must exist. No reference crosses between them (they
    // are in different accounts and regions); both derive the names from catalog/vault.ts.
    const { vault } = environment;
    this.vault = vault
      ? new VaultStack(this, 'Vault', { environment: { ...environment, vault }, assets, stackName: `pgkeep-${environment.name}-vault`, tags })
      : undefined;
    this.storage = new StorageStack(this, 'Storage', { environment, stackName: `pgkeep-${environment.name}-storage`, tags });
    this.pipeline = new PipelineStack(this, 'Pipeline', {
      environment,
      stackName: `pgkeep-${environment.name}-pipeline`,
      tags,
      bucket: this.storage.bucket,
      key: this.storage.key,
      backupWriterPolicy: this.storage.backupWriterPolicy,
      accessPolicies: this.storage.accessPolicies,
      assets,
    });
  }
}
