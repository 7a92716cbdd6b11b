/**
 * How many databases one environment holds, against the limits AWS enforces at deploy time:
 * CloudFormation's per-stack quotas (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html:
 * 500 resources, 200 outputs, 200 parameters, a 1 MB template body from S3), CloudWatch's dashboard
 * quotas (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html:
 * 500 widgets, 500 metrics per widget, 2,500 metrics per dashboard; an alarm status widget lists
 * 1-100 alarm ARNs) and EventBridge's 300 rules per event bus and Region.
 *
 * A flat pipeline stack reached the 500-resource limit at its 19th database; each database now has
 * a nested stack of its own.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PgkeepConfigInput } from '../../infra/config.ts';
import { MAX_DATABASES_PER_ENVIRONMENT, PgkeepConfigError, parsePgkeepConfig } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';
import type { ScratchApp, TemplateJson } from '../support/fixtures/infra-synth.ts';
import { resolveTemplateText, scratchApp, stackTemplateFile } from '../support/fixtures/infra-synth.ts';
import { cfnLint } from '../support/cfn-lint.ts';

const LIMITS = {
  resources: 500,
  outputs: 200,
  parameters: 200,
  templateBytes: 1_000_000,
  dashboardWidgets: 500,
  metricsPerWidget: 500,
  dashboardMetrics: 2_500,
  alarmsPerStatusWidget: 100,
  rulesPerEventBus: 300,
};

/** The prod example with these databases, each like its first one. */
function environmentWith(databaseNames: readonly string[]): PgkeepConfigInput {
  const prod = structuredClone(PGKEEP_ENVIRONMENTS.environments.prod);
  const template = prod.databases[0]!;
  return { environments: { prod: { ...prod, databases: databaseNames.map((name) => ({ ...template, name })) } } };
}
const names = (count: number) => Array.from({ length: count }, (_, index) => `database_number_${String(index).padStart(2, '0')}`);

const scratches: ScratchApp[] = [];
afterAll(() => scratches.forEach((scratch) => scratch.dispose()));

function synthesize(config: PgkeepConfigInput): { outdir: string; templates: Map<string, TemplateJson> } {
  const scratch = scratchApp();
  scratches.push(scratch);
  addPgkeepStacks(scratch.app, { config, environment: 'prod' });
  // The app carries the cdk-nag checks: any unacknowledged finding throws here.
  scratch.app.synth();
  // Top-level stacks by their stack name (`pgkeep-prod-pipeline.template.json`), nested ones by file.
  const pipelineFile = stackTemplateFile(scratch.outdir, 'pgkeep-prod-pipeline');
  const storageFile = stackTemplateFile(scratch.outdir, 'pgkeep-prod-storage');
  const keyOf = (file: string) =>
    file === pipelineFile ? 'pgkeep-prod-pipeline.template.json' : file === storageFile ? 'pgkeep-prod-storage.template.json' : file;
  const templates = new Map(
    readdirSync(scratch.outdir)
      .filter((file) => file.endsWith('.template.json'))
      .map((file) => [keyOf(file), JSON.parse(readFileSync(join(scratch.outdir, file), 'utf8')) as TemplateJson]),
  );
  const report = JSON.parse(readFileSync(join(scratch.outdir, 'validation-report.json'), 'utf8')) as { pluginReports: { violations: unknown[] }[] };
  expect(report.pluginReports.flatMap((plugin) => plugin.violations)).toEqual([]);
  return { outdir: scratch.outdir, templates };
}

describe(`an environment with the most databases allowed (${MAX_DATABASES_PER_ENVIRONMENT}, more than the 50 asked for)`, () => {
  let assembly: { outdir: string; templates: Map<string, TemplateJson> };
  beforeAll(() => {
    assembly = synthesize(environmentWith(names(MAX_DATABASES_PER_ENVIRONMENT)));
  });
  const pipeline = () => assembly.templates.get('pgkeep-prod-pipeline.template.json')!;
  const nested = () => [...assembly.templates].filter(([file]) => file.endsWith('.nested.template.json'));

  it('synthesizes with zero cdk-nag findings, one nested stack per database', () => {
    expect(nested()).toHaveLength(MAX_DATABASES_PER_ENVIRONMENT);
    expect(Object.values(pipeline().Resources).filter((resource) => resource.Type === 'AWS::CloudFormation::Stack')).toHaveLength(
      MAX_DATABASES_PER_ENVIRONMENT,
    );
  });

  it("keeps every template within CloudFormation's per-stack quotas", () => {
    for (const [file, template] of assembly.templates) {
      expect(Object.keys(template.Resources).length, `${file} resources`).toBeLessThanOrEqual(LIMITS.resources);
      expect(Object.keys(template.Outputs ?? {}).length, `${file} outputs`).toBeLessThanOrEqual(LIMITS.outputs);
      expect(Object.keys(template.Parameters ?? {}).length, `${file} parameters`).toBeLessThanOrEqual(LIMITS.parameters);
      expect(JSON.stringify(template).length, `${file} bytes`).toBeLessThanOrEqual(LIMITS.templateBytes);
    }
  });

  it("keeps the dashboard within CloudWatch's quotas, the alarms spread over status widgets of at most 100", () => {
    const dashboard = Object.values(pipeline().Resources).find((resource) => resource.Type === 'AWS::CloudWatch::Dashboard')!;
    const body = JSON.parse(resolveTemplateText(dashboard.Properties!.DashboardBody)) as {
      widgets: { type: string; properties: { alarms?: string[]; metrics?: unknown[][] } }[];
    };
    const alarmWidgets = body.widgets.filter((widget) => widget.type === 'alarm');
    const alarmCount = nested().reduce(
      (sum, [, template]) => sum + Object.values(template.Resources).filter((resource) => /^AWS::CloudWatch::(Composite)?Alarm$/.test(resource.Type)).length,
      0,
    );

    expect(body.widgets.length).toBeLessThanOrEqual(LIMITS.dashboardWidgets);
    for (const widget of alarmWidgets) expect(widget.properties.alarms!.length).toBeLessThanOrEqual(LIMITS.alarmsPerStatusWidget);
    expect(alarmWidgets.flatMap((widget) => widget.properties.alarms!).length).toBeGreaterThanOrEqual(alarmCount);
    for (const widget of body.widgets) expect((widget.properties.metrics ?? []).length).toBeLessThanOrEqual(LIMITS.metricsPerWidget);
    expect(body.widgets.reduce((sum, widget) => sum + (widget.properties.metrics ?? []).length, 0)).toBeLessThanOrEqual(LIMITS.dashboardMetrics);
  });

  it('adds no EventBridge rule per database: the environment has its eight stopped-task rules', () => {
    const rules = [...assembly.templates.values()].flatMap((template) =>
      Object.values(template.Resources).filter((resource) => resource.Type === 'AWS::Events::Rule'),
    );
    expect(rules).toHaveLength(8);
    expect(rules.length).toBeLessThan(LIMITS.rulesPerEventBus);
  });

  it('passes cfn-lint, the pipeline stack and a nested stack checked for the region (the nested stacks differ only in names)', async () => {
    const [firstNested] = nested()[0]!;
    const pipelineFile = stackTemplateFile(assembly.outdir, 'pgkeep-prod-pipeline');
    const findings = await cfnLint(assembly.outdir, 'eu-central-1', (file) => file === pipelineFile || file === firstNested);
    expect(findings.filter((finding) => finding.level === 'Error')).toEqual([]);
  });
});

describe('the limit on databases', () => {
  it(`refuses more than ${MAX_DATABASES_PER_ENVIRONMENT} databases in one environment, saying why and what to do`, () => {
    expect(() => parsePgkeepConfig(environmentWith(names(MAX_DATABASES_PER_ENVIRONMENT + 1)))).toThrow(PgkeepConfigError);
    expect(() => parsePgkeepConfig(environmentWith(names(MAX_DATABASES_PER_ENVIRONMENT + 1)))).toThrow(
      new RegExp(
        `environments\\.prod\\.databases: at most ${MAX_DATABASES_PER_ENVIRONMENT} databases per environment: .*200 outputs per stack.*split them into more environments`,
      ),
    );
  });
});

describe("each database's resources in a stack of its own", () => {
  let three: Map<string, TemplateJson>;
  let two: Map<string, TemplateJson>;
  beforeAll(() => {
    three = synthesize(environmentWith(['alpha', 'beta', 'gamma'])).templates;
    two = synthesize(environmentWith(['alpha', 'gamma'])).templates;
  });
  const nestedOf = (templates: Map<string, TemplateJson>, key: string) =>
    [...templates].find(([file]) => file.startsWith(`pgkeepprodPipelineDatabase${key}`) && file.endsWith('.nested.template.json'))?.[1];

  it("leaves the other databases' stacks exactly as they were when one is removed", () => {
    for (const key of ['Alpha', 'Gamma']) {
      expect(nestedOf(two, key), key).toBeDefined();
      expect(nestedOf(two, key)).toEqual(nestedOf(three, key));
    }
    expect(nestedOf(two, 'Beta')).toBeUndefined();
  });

  it('keeps the shared resources of the pipeline stack under the same logical ids', () => {
    const shared = (templates: Map<string, TemplateJson>) =>
      Object.entries(templates.get('pgkeep-prod-pipeline.template.json')!.Resources)
        .filter(([, resource]) => resource.Type !== 'AWS::CloudFormation::Stack')
        .map(([id]) => id)
        .sort();
    expect(shared(two)).toEqual(shared(three));
  });

  it('puts no per-database resource in the pipeline stack itself', () => {
    const parent = JSON.stringify(three.get('pgkeep-prod-pipeline.template.json')!.Resources);
    for (const key of ['Alpha', 'Beta', 'Gamma']) {
      // The task definitions, schedules and alarms of a database are only in its nested stack.
      expect(parent).not.toMatch(new RegExp(`"(Backup|Restore|Alarms|RestoreAlarms)${key}[A-Za-z0-9]*"\\s*:`));
      expect(
        Object.keys(nestedOf(three, key)!.Resources).filter((id) => new RegExp(`^(Backup|Restore|Alarms|RestoreAlarms)${key}`).test(id)).length,
      ).toBeGreaterThan(15);
    }
  });
});
