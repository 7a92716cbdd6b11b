import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Acknowledgment } from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';
import type { ScratchApp } from '../support/fixtures/infra-synth.ts';
import { scratchApp } from '../support/fixtures/infra-synth.ts';

interface ValidationReport {
  pluginReports: { pluginName: string; violations: { ruleName: string; severity: string; violatingConstructs: { constructPath: string }[] }[] }[];
}

const scratches: ScratchApp[] = [];
afterAll(() => scratches.forEach((scratch) => scratch.dispose()));

function synthesizedReport(scratch: ScratchApp): ValidationReport {
  return JSON.parse(readFileSync(join(scratch.outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
}

interface RecordedAcknowledgement extends Acknowledgment {
  /** Construct path the acknowledgement was made on. */
  at: string;
}

describe.each(['dev', 'prod'])('cdk-nag AwsSolutions checks of the %s environment', (environment) => {
  it('pass with zero unacknowledged findings, errors and warnings alike', () => {
    const scratch = scratchApp();
    scratches.push(scratch);
    addPgkeepStacks(scratch.app, { config: PGKEEP_ENVIRONMENTS, environment });

    // The app registers the checks; any unacknowledged finding (error or warning) fails synth.
    expect(() => scratch.app.synth()).not.toThrow();
    expect(new AwsSolutionsChecks().validateScope(scratch.app).violations).toEqual([]);
    // CloudFormation Validate and construct annotations report in the same file.
    for (const report of synthesizedReport(scratch).pluginReports) expect(report.violations, report.pluginName).toEqual([]);
  });

  it('acknowledge only findings that exist, each on the resource (or its owner) with a specific reason', () => {
    const scratch = scratchApp();
    scratches.push(scratch);
    const acknowledged: RecordedAcknowledgement[] = [];
    // Record every acknowledgement instead of applying it, so the findings it would hide show.
    const recorder = vi.spyOn(Validations.prototype, 'acknowledge').mockImplementation(function (this: Validations, ...rules: Acknowledgment[]) {
      const scope = (this as unknown as { scope: IConstruct }).scope;
      acknowledged.push(...rules.map((rule) => ({ ...rule, at: scope.node.path })));
    });
    try {
      addPgkeepStacks(scratch.app, { config: PGKEEP_ENVIRONMENTS, environment });
    } finally {
      recorder.mockRestore();
    }
    // Synth now fails on the unhidden findings, after writing them to the validation report.
    expect(() => scratch.app.synth()).toThrow(/Validation failed|AwsSolutions/);

    const findings = synthesizedReport(scratch).pluginReports.flatMap((report) =>
      report.violations.flatMap((violation) =>
        violation.violatingConstructs.map((construct) => ({ rule: normalizeRule(violation.ruleName), path: construct.constructPath })),
      ),
    );
    expect(findings.length).toBeGreaterThan(0);
    for (const finding of findings) {
      const covering = acknowledged.filter((ack) => normalizeRule(ack.id) === finding.rule && isWithin(finding.path, ack.at));
      expect(covering, `${finding.rule} at ${finding.path} is acknowledged`).not.toEqual([]);
    }
    for (const ack of acknowledged) {
      const covered = findings.filter((finding) => finding.rule === normalizeRule(ack.id) && isWithin(finding.path, ack.at));
      expect(covered, `${ack.id} on ${ack.at} hides a real finding`).not.toEqual([]);
      // Beside its resource: on the resource's own construct or the construct that owns it, never a stack.
      expect(ack.at.split('/').length, `${ack.id} is acknowledged on ${ack.at}, not on a whole stack`).toBeGreaterThan(1);
      expect(ack.reason.length, `the reason for ${ack.id} on ${ack.at} says why`).toBeGreaterThanOrEqual(60);
    }
  });
});

/** Acknowledgement ids carry the plugin's namespace ("CloudFormation-Validate::W9003"), rule names in reports may not. */
function normalizeRule(rule: string): string {
  return rule.replace(/^(AwsSolutions|CloudFormation-Validate|Annotation)::/i, '');
}

function isWithin(path: string, ancestor: string): boolean {
  return path === ancestor || path.startsWith(`${ancestor}/`);
}
