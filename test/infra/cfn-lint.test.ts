/**
 * CloudFormation's own rules: cfn-lint over every template `cdk synth` writes for the example
 * environments (the storage and pipeline stacks and every database's nested stack), checked for
 * each environment's region.
 */
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePgkeepConfig } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';
import type { ScratchApp } from '../support/fixtures/infra-synth.ts';
import { scratchApp, stackTemplateFile } from '../support/fixtures/infra-synth.ts';
import type { CfnLintFinding } from '../support/cfn-lint.ts';
import { cfnLint } from '../support/cfn-lint.ts';

/**
 * The warnings pgkeep's templates carry on purpose, each with its reason: the one place they are
 * listed. Anything else cfn-lint reports fails the test, and so does an entry nothing matches.
 */
export const ACCEPTED_CFN_LINT_WARNINGS: readonly { rule: string; resource: RegExp; reason: string }[] = [
  {
    rule: 'W3005',
    resource: /^(VerifyBackup|VerifyCopy|HealthCheck|Retention)Function[0-9A-F]{8}$/,
    reason:
      "CDK's Function construct declares DependsOn on the function's role beside the Fn::GetAtt of the role's ARN, so that the role's default policy exists before the function; CloudFormation counts the duplicate once, and removing it would mean editing a CDK-internal dependency.",
  },
  {
    rule: 'W3005',
    resource: /^BucketNotificationsHandler050a0587b7544547bf325f094a3db8347ECC3691$/,
    reason:
      "CDK's own custom-resource handler that writes the bucket notification at deploy time, built with the same DependsOn pattern; it is CDK's construct, not pgkeep's.",
  },
];

const config = parsePgkeepConfig(PGKEEP_ENVIRONMENTS);
const scratches: ScratchApp[] = [];
afterAll(() => scratches.forEach((scratch) => scratch.dispose()));

const resourceOf = (finding: CfnLintFinding) => /^Resources\/([^/]+)/.exec(finding.path)?.[1] ?? '';

describe.each(Object.keys(config.environments))('cfn-lint over the %s environment', (name) => {
  let findings: CfnLintFinding[] = [];
  let templates: string[] = [];
  let outdir = '';
  beforeAll(async () => {
    const scratch = scratchApp();
    scratches.push(scratch);
    addPgkeepStacks(scratch.app, { config: PGKEEP_ENVIRONMENTS, environment: name });
    scratch.app.synth();
    outdir = scratch.outdir;
    templates = readdirSync(scratch.outdir).filter((file) => file.endsWith('.template.json'));
    // Each template against the rules of the region it deploys to: the vault's is another.
    const { region, vault } = config.environments[name]!;
    const vaultTemplate = vault ? stackTemplateFile(outdir, `pgkeep-${name}-vault`) : undefined;
    findings = [
      ...(await cfnLint(scratch.outdir, region, (file) => file !== vaultTemplate)),
      ...(vault ? await cfnLint(scratch.outdir, vault.region, (file) => file === vaultTemplate) : []),
    ];
  });

  it("checks every template: storage, pipeline, each database's nested stack, and the vault where there is one", () => {
    expect(templates.filter((file) => file.endsWith('.nested.template.json'))).toHaveLength(config.environments[name]!.databases.length);
    expect(templates.filter((file) => !file.endsWith('.nested.template.json')).sort()).toEqual(
      [
        stackTemplateFile(outdir, `pgkeep-${name}-pipeline`),
        stackTemplateFile(outdir, `pgkeep-${name}-storage`),
        ...(config.environments[name]!.vault ? [stackTemplateFile(outdir, `pgkeep-${name}-vault`)] : []),
      ].sort(),
    );
  });

  it('reports no error', () => {
    expect(findings.filter((finding) => finding.level === 'Error')).toEqual([]);
  });

  it('reports only the warnings listed with their reasons, and each listed warning still occurs', () => {
    const unexplained = findings.filter(
      (finding) =>
        finding.level !== 'Error' &&
        !ACCEPTED_CFN_LINT_WARNINGS.some((accepted) => accepted.rule === finding.rule && accepted.resource.test(resourceOf(finding))),
    );
    expect(unexplained).toEqual([]);
    for (const accepted of ACCEPTED_CFN_LINT_WARNINGS) {
      expect(
        findings.some((finding) => finding.rule === accepted.rule && accepted.resource.test(resourceOf(finding))),
        `${accepted.rule} ${accepted.resource}`,
      ).toBe(true);
    }
  });
});
