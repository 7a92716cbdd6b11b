/**
 * The CDK app entry (cdk.json: "app": "npx tsx infra/app.ts"), and the only module that reads
 * CDK context. `cdk synth` synthesizes every environment in environments.ts; `cdk synth -c env=dev`
 * (or `cdk deploy -c env=dev --all`) only one.
 */
import { App } from 'aws-cdk-lib';
import { PgkeepConfigError } from './config.ts';
import { PGKEEP_ENVIRONMENTS } from './environments.ts';
import { addPgkeepStacks } from './pgkeep-app.ts';

const app = new App();
const selected: unknown = app.node.tryGetContext('env');
try {
  addPgkeepStacks(app, { config: PGKEEP_ENVIRONMENTS, environment: typeof selected === 'string' ? selected : undefined });
} catch (error) {
  if (error instanceof PgkeepConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
app.synth();
