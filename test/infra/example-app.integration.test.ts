/**
 * examples/rds-instance/: a CDK app of its own (a VPC, an RDS PostgreSQL instance) that adds pgkeep
 * by importing the built package by its name, as an app that installed it would. The package is
 * built here (infra/build-package.ts) and the app synthesized as `cdk synth` runs it (its own
 * process, cdk.json's feature flags), then checked: cdk-nag, cfn-lint and the authorization model.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage } from '../../infra/build-package.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import { modelEnvironment } from '../support/authz/model.ts';
import { cdkJsonContext, stackTemplateFile } from '../support/fixtures/infra-synth.ts';
import type { TemplateJson } from '../support/fixtures/infra-synth.ts';
import { cfnLint } from '../support/cfn-lint.ts';

const outdir = mkdtempSync(join(tmpdir(), 'pgkeep-example-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));
const template = (file: string) => JSON.parse(readFileSync(join(outdir, file), 'utf8')) as TemplateJson;

beforeAll(async () => {
  await buildPackage();
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'examples/rds-instance/app.ts'], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(cdkJsonContext()) },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`the example app failed to synthesize:\n${result.stderr}`);
}, 600_000);

describe('the construct package, as npm would pack it', () => {
  it("carries what its exports name, the prebuilt assets, and nothing of the repository's sources", () => {
    const packed = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: REPOSITORY_ROOT, encoding: 'utf8' });
    const files = (JSON.parse(packed.stdout) as { files: { path: string }[] }[])[0]!.files.map((file) => file.path);
    const manifest = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as { exports: { '.': { types: string; default: string } } };

    expect(files).toContain(manifest.exports['.'].default.replace(/^\.\//, ''));
    expect(files).toContain(manifest.exports['.'].types.replace(/^\.\//, ''));
    for (const name of ['verify-backup', 'backup-health', 'enforce-retention']) expect(files).toContain(`dist/assets/functions/${name}/index.mjs`);
    expect(files).toEqual(expect.arrayContaining(['dist/assets/task/Dockerfile', 'dist/assets/task/main.mjs']));
    expect(files.filter((file) => /^(task|functions|catalog|runtime|infra|test|dev|scripts)\//.test(file))).toEqual([]);
    expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
  });
});

describe('the example app (examples/rds-instance) with pgkeep from its package', () => {
  it('synthesizes offline, with no lookups, and cdk-nag finds nothing unacknowledged in any of its stacks', () => {
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as { missing?: unknown[] };
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: { violations: unknown[] }[] };

    expect(manifest.missing ?? []).toEqual([]);
    expect(report.pluginReports.flatMap((plugin) => plugin.violations)).toEqual([]);
  });

  it('lets the tasks in on the database port, from the pgkeep stack, so the app stack never depends on pgkeep', () => {
    const nested = readdirSync(outdir).filter((file) => file.endsWith('.nested.template.json'));
    const ingress = nested.flatMap((file) => Object.values(template(file).Resources).filter((resource) => resource.Type === 'AWS::EC2::SecurityGroupIngress'));
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as {
      artifacts: Record<string, { properties?: { stackName?: string }; dependencies?: string[] }>;
    };
    const dependsOn = (stackName: string) =>
      Object.values(manifest.artifacts).find((artifact) => artifact.properties?.stackName === stackName)?.dependencies ?? [];

    expect(ingress).toHaveLength(1);
    expect(JSON.stringify(ingress[0]!.Properties)).toContain('OrdersSecurityGroup');
    expect(JSON.stringify(ingress[0]!.Properties)).toContain('EndpointPort');
    expect(dependsOn('pgkeep-example-pipeline')).toContain('example-database');
    expect(dependsOn('example-database').filter((dependency) => dependency.startsWith('pgkeep'))).toEqual([]);
  });

  it("connects the backup task with the instance's generated secret, read by ECS, never as plain environment", () => {
    const nested = readdirSync(outdir).filter((file) => file.endsWith('.nested.template.json'));
    const taskDefinitions = nested.flatMap((file) =>
      Object.values(template(file).Resources).filter((resource) => resource.Type === 'AWS::ECS::TaskDefinition'),
    );
    const backup = taskDefinitions.find((definition) => JSON.stringify(definition.Properties).includes('"backup"'))!;
    const secrets = (backup.Properties!.ContainerDefinitions as { Secrets: { Name: string; ValueFrom: unknown }[] }[])[0]!.Secrets;

    expect(secrets.map((secret) => secret.Name)).toEqual(['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE']);
    expect(JSON.stringify(secrets)).toContain('OrdersSecretAttachment');
  });

  it('passes cfn-lint with no error, in every template', async () => {
    const findings = await cfnLint(outdir, 'eu-west-1');

    expect(findings.filter((finding) => finding.level === 'Error')).toEqual([]);
    expect(stackTemplateFile(outdir, 'pgkeep-example-storage')).toBeTruthy();
  });

  it("passes the authorization model's service-path and negative checks over pgkeep's stacks", async () => {
    // No recorded calls here (those are the task's and the functions', the same code the shipped
    // app's model checks in test/infra/authz-model.test.ts); the app's own stack is read, not modelled.
    const model = await modelEnvironment('example', outdir, [], { secretKmsKey: () => undefined, applicationStacks: ['example-database'] });
    const failing = model.checks.filter((check) => !model.verdicts.get(check)?.passed).map((check) => `${check.id} → ${model.verdicts.get(check)?.outcome}`);

    expect(model.checks.length).toBeGreaterThan(100);
    expect(failing).toEqual([]);
  }, 300_000);
});

describe('the example app in a project of its own, with the packed package installed', () => {
  // What a user does: `npm pack` here, `npm install` the tarball (and the peer dependencies) in
  // another project, run its app. That project has its own node_modules and no cdk.json, so the
  // app sees only the built package and CDK's default feature flags. npm takes the packages from
  // its cache, filled by this repository's `npm ci`, so no network is needed.
  const project = mkdtempSync(join(tmpdir(), 'pgkeep-consumer-'));
  const consumerOut = join(project, 'cdk.out');
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  beforeAll(() => {
    const versions = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const run = (command: string, args: string[], cwd: string) => {
      const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, CDK_OUTDIR: consumerOut } });
      if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stderr}`);
      return result.stdout;
    };
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    const tarball = run('npm', ['pack', '--pack-destination', project, '--silent'], REPOSITORY_ROOT).trim().split('\n').at(-1)!;
    const peers = ['aws-cdk-lib', 'constructs', 'cdk-nag'].map((name) => `${name}@${versions.devDependencies[name]}`);
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', `./${tarball}`, ...peers], project);
    copyFileSync(join(REPOSITORY_ROOT, 'examples/rds-instance/app.ts'), join(project, 'app.ts'));
    // Node 24 runs TypeScript by stripping its types: no tsx, no build of the app.
    run(process.execPath, ['app.ts'], project);
  }, 600_000);

  it('synthesizes offline with no cdk-nag finding, from the installed package alone', () => {
    const manifest = JSON.parse(readFileSync(join(consumerOut, 'manifest.json'), 'utf8')) as { missing?: unknown[] };
    const report = JSON.parse(readFileSync(join(consumerOut, 'validation-report.json'), 'utf8')) as { pluginReports: { violations: unknown[] }[] };

    expect(existsSync(join(project, 'node_modules/pgkeep/dist/assets/task/Dockerfile'))).toBe(true);
    expect(existsSync(join(project, 'node_modules/pgkeep/infra'))).toBe(false);
    expect(manifest.missing ?? []).toEqual([]);
    expect(report.pluginReports.flatMap((plugin) => plugin.violations)).toEqual([]);
  });

  it("deploys the same pgkeep stacks and function bundles as the repository's synth of it", () => {
    const templates = (directory: string) =>
      readdirSync(directory)
        // pgkeep's stacks; the app's own stack is built with the app's flags, which differ here.
        .filter((file) => file.startsWith('pgkeep') && file.endsWith('.template.json'))
        .sort()
        .map((file) => readFileSync(join(directory, file), 'utf8'));
    const bundles = (directory: string) =>
      readdirSync(directory)
        .filter((file) => file.startsWith('asset.') && existsSync(join(directory, file, 'index.mjs')))
        .sort();

    expect(bundles(consumerOut)).toHaveLength(3);
    expect(bundles(consumerOut)).toEqual(bundles(outdir));
    // The task image's build context differs (the packaged one carries a prebuilt bundle), hence its hash.
    const withoutImageHash = (text: string) => text.replace(/"[0-9a-f]{64}"/g, '"<hash>"').replace(/:[0-9a-f]{64}/g, ':<hash>');
    expect(templates(consumerOut).map(withoutImageHash)).toEqual(templates(outdir).map(withoutImageHash));
  });
});
