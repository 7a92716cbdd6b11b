/**
 * The model must be able to fail: drop each statement of each of pgkeep's policies in turn, re-run
 * every check that reads that policy, and see whether any check's verdict changes. A statement no
 * check depends on is either a permission nothing needs (remove it) or a path the model does not
 * check yet (add the check).
 */
import type { JsonObject } from './cloud-assembly.ts';
import type { NamedPolicy } from './deployment.ts';
import { evaluate, type Check, type Verdict } from './evaluate.ts';

export interface StatementCoverage {
  /** Readable and stable across environments: `<stack>/<logical id>…: <Sid or effect and actions>`. */
  label: string;
  policy: NamedPolicy;
  index: number;
  /** The first check whose verdict changed without it; undefined: nothing depends on it. */
  coveredBy: string | undefined;
}

export function statementLabel(policy: NamedPolicy, statement: JsonObject, environment: string): string {
  const word = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
  const actions = [statement.Action ?? statement.NotAction].flat().map(word).join(',');
  const principal = statement.Principal === undefined ? '' : ` for ${JSON.stringify(statement.Principal)}`;
  const what = typeof statement.Sid === 'string' && !statement.Sid.includes('/') ? statement.Sid : `${word(statement.Effect)} ${actions}${principal}`;
  return `${policy.id}: ${what}`.replaceAll(`pgkeep-${environment}-`, 'pgkeep-<env>-').replaceAll(`:${environment}-`, ':<env>-');
}

export async function mutateEveryStatement(
  policies: readonly NamedPolicy[],
  checks: readonly Check[],
  baseline: ReadonlyMap<Check, Verdict>,
  environment: string,
): Promise<StatementCoverage[]> {
  const coverage: StatementCoverage[] = [];
  for (const policy of policies.filter((candidate) => candidate.ours)) {
    const readers = checks.filter((check) => check.resourcePolicy === policy || check.identity.includes(policy));
    for (const [index, statement] of policy.document.Statement.entries()) {
      let coveredBy: string | undefined;
      for (const check of readers) {
        const mutated = await evaluate(check, { policy, index });
        if (mutated.passed !== baseline.get(check)?.passed) {
          coveredBy = check.id;
          break;
        }
      }
      coverage.push({ label: statementLabel(policy, statement, environment), policy, index, coveredBy });
    }
  }
  return coverage;
}
