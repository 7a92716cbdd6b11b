/**
 * The whole authorization model of one synthesized environment: the deployment read from its cloud
 * assembly, every check (a), (b) and negative, each check's verdict, and what the recorded calls
 * mean in IAM terms (for the permission table). Glue over the pure parts in this directory.
 */
import type { RecordedCall } from '../aws-call-recorder.ts';
import { CloudAssembly } from './cloud-assembly.ts';
import { deployedBucketName } from './call-permissions.ts';
import {
  bucketTransportProbes,
  leastPrivilegeNegatives,
  runtimeChecks,
  serviceChecks,
  transportNegatives,
  vaultNegatives,
  type RuntimePermission,
  type ServicePathOptions,
} from './checks.ts';
import { Deployment } from './deployment.ts';
import { evaluate, type Check, type Verdict } from './evaluate.ts';

export interface EnvironmentModel {
  environment: string;
  deployment: Deployment;
  checks: Check[];
  verdicts: Map<Check, Verdict>;
  permissions: RuntimePermission[];
}

export async function modelEnvironment(
  environment: string,
  assemblyDirectory: string,
  calls: readonly RecordedCall[],
  options: ServicePathOptions,
): Promise<EnvironmentModel> {
  const deployment = new Deployment(new CloudAssembly(assemblyDirectory));
  const runtime = runtimeChecks(deployment, calls);
  const service = serviceChecks(deployment, options);
  const positives = [...runtime.checks, ...service];
  const checks = distinct([
    ...positives,
    ...transportNegatives(positives),
    ...leastPrivilegeNegatives(deployment, (instance) => deployedBucketName(instance, deployment)),
    ...vaultNegatives(deployment),
    ...bucketTransportProbes(deployment),
  ]);
  const verdicts = new Map<Check, Verdict>();
  for (const check of checks) verdicts.set(check, await evaluate(check));
  return { environment, deployment, checks, verdicts, permissions: runtime.permissions };
}

/** One check per question asked (a container reads its secret once per variable: one check). */
function distinct(checks: readonly Check[]): Check[] {
  const byQuestion = new Map<string, Check>();
  for (const check of checks) {
    const key = JSON.stringify([check.id, check.principal, check.action, check.resource, check.context, check.expect]);
    const existing = byQuestion.get(key);
    if (existing) existing.because.push(...check.because.filter((reason) => !existing.because.includes(reason)));
    else byQuestion.set(key, check);
  }
  return [...byQuestion.values()];
}
