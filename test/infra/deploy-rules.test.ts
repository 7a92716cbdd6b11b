/**
 * Rules only AWS enforces, which a deployment would hit long after synth succeeded. Each test here
 * stands for a defect found by reading the synthesized templates against AWS's documented
 * behaviour (issue 11). The evaluation of every policy by a real IAM evaluator is
 * test/authorization*.test.ts; the container rules are test/task/fargate-container.integration.test.ts,
 * Object Lock's checksum rule the moto-backed suites, and the per-stack quotas test/infra/scale.test.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PgkeepConfigInput } from '../../infra/config.ts';
import { parsePgkeepConfig } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import type { SynthesizedEnvironment, TemplateJson } from '../support/fixtures/infra-synth.ts';
import { resolveTemplateText, synthesizeEnvironment } from '../support/fixtures/infra-synth.ts';

const config = parsePgkeepConfig(PGKEEP_ENVIRONMENTS);
const synthesized: Record<string, SynthesizedEnvironment> = Object.fromEntries(
  Object.keys(config.environments).map((name) => [name, synthesizeEnvironment(PGKEEP_ENVIRONMENTS, name)]),
);
afterAll(() => Object.values(synthesized).forEach((environment) => environment.dispose()));

interface Statement {
  Sid?: string;
  Effect: string;
  Principal?: { Service?: string | string[]; AWS?: unknown };
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** IAM's ArnLike/StringLike: `*` is any run of characters, `?` one. */
function globMatches(pattern: string, value: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${regex}$`).test(value);
}

/** Whether a service statement's aws:SourceArn and aws:SourceAccount conditions admit this source. */
function admits(statement: Statement, source: { arn: string; account: string }): boolean {
  const like = statement.Condition?.ArnLike?.['aws:SourceArn'] ?? statement.Condition?.ArnEquals?.['aws:SourceArn'];
  const account = statement.Condition?.StringEquals?.['aws:SourceAccount'];
  return typeof like === 'string' && globMatches(like, source.arn) && account === source.account;
}

const servicesOf = (statement: Statement) => [statement.Principal?.Service].flat().filter(Boolean);
const actionsOf = (statement: Statement) => [statement.Action].flat();

describe.each(Object.keys(config.environments))('the %s environment', (name) => {
  const { pipeline } = synthesized[name]!;
  const environment = config.environments[name]!;
  const resources = pipeline.toJSON().Resources as TemplateJson['Resources'];
  const [topicPolicy] = Object.values(pipeline.findResources('AWS::SNS::TopicPolicy')) as { Properties: { PolicyDocument: { Statement: Statement[] } } }[];
  const topicStatements = topicPolicy!.Properties.PolicyDocument.Statement;
  const [topicKeyId] = Object.keys(pipeline.findResources('AWS::KMS::Key'));
  const keyStatements = (resources[topicKeyId!]!.Properties!.KeyPolicy as unknown as { Statement: Statement[] }).Statement;

  describe("defect 1: the topic policy must let every alarm notify (it replaces SNS's default policy)", () => {
    const alarms = Object.values(resources).filter(
      (resource) => /^AWS::CloudWatch::(Composite)?Alarm$/.test(resource.Type) && resource.Properties?.AlarmActions !== undefined,
    );

    it('has alarms that notify the topic', () => {
      expect(alarms.length).toBeGreaterThan(10);
    });

    it("admits CloudWatch's sns:Publish for each of them, confined to this account's pgkeep alarms of this environment", () => {
      const allowCloudWatch = topicStatements.filter(
        (statement) =>
          statement.Effect === 'Allow' && servicesOf(statement).includes('cloudwatch.amazonaws.com') && actionsOf(statement).includes('sns:Publish'),
      );
      for (const alarm of alarms) {
        const arn = `arn:aws:cloudwatch:${environment.region}:${environment.account}:alarm:${alarm.Properties!.AlarmName as string}`;
        expect(
          allowCloudWatch.some((statement) => admits(statement, { arn, account: environment.account })),
          arn,
        ).toBe(true);
        // Not another account's alarm of the same name.
        expect(allowCloudWatch.some((statement) => admits(statement, { arn: arn.replace(environment.account, '999999999999'), account: '999999999999' }))).toBe(
          false,
        );
      }
    });

    it('lets CloudWatch use the topic key for the same alarms (an encrypted topic needs both)', () => {
      const allowCloudWatch = keyStatements.filter((statement) => statement.Effect === 'Allow' && servicesOf(statement).includes('cloudwatch.amazonaws.com'));
      for (const alarm of alarms) {
        const arn = `arn:aws:cloudwatch:${environment.region}:${environment.account}:alarm:${alarm.Properties!.AlarmName as string}`;
        expect(
          allowCloudWatch.some(
            (statement) =>
              admits(statement, { arn, account: environment.account }) &&
              actionsOf(statement).includes('kms:GenerateDataKey*') &&
              actionsOf(statement).includes('kms:Decrypt'),
          ),
          arn,
        ).toBe(true);
      }
    });
  });

  describe("defect 7: EventBridge may publish only for this environment's rules in this account", () => {
    const rules = Object.values(resources).filter((resource) => resource.Type === 'AWS::Events::Rule');

    it('admits each rule that targets the topic, and only by its source ARN and account', () => {
      const allowEvents = topicStatements.filter((statement) => statement.Effect === 'Allow' && servicesOf(statement).includes('events.amazonaws.com'));
      expect(allowEvents.length).toBeGreaterThan(0);
      for (const statement of allowEvents) expect(statement.Condition, JSON.stringify(statement)).toBeDefined();
      for (const rule of rules) {
        const arn = `arn:aws:events:${environment.region}:${environment.account}:rule/${rule.Properties!.Name as string}`;
        expect(
          allowEvents.some((statement) => admits(statement, { arn, account: environment.account })),
          arn,
        ).toBe(true);
      }
      expect(
        allowEvents.some((statement) =>
          admits(statement, { arn: `arn:aws:events:${environment.region}:${environment.account}:rule/someone-elses-rule`, account: environment.account }),
        ),
      ).toBe(false);
    });
  });

  describe('defect 2: ECS requests a secret by exactly the ARN in valueFrom, and IAM matches it as written', () => {
    const taskDefinitions = Object.values(resources).filter((resource) => resource.Type === 'AWS::ECS::TaskDefinition');

    it("grants each execution role GetSecretValue on the very ARN of each of its containers' secrets", () => {
      let checked = 0;
      for (const taskDefinition of taskDefinitions) {
        const properties = taskDefinition.Properties as {
          ExecutionRoleArn: { 'Fn::GetAtt': [string, string] };
          ContainerDefinitions: { Secrets?: { ValueFrom: string }[] }[];
        };
        const roleId = properties.ExecutionRoleArn['Fn::GetAtt'][0];
        const granted = Object.values(resources)
          .filter((resource) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties!.Roles).includes(`"${roleId}"`))
          .flatMap((policy) => (policy.Properties!.PolicyDocument as unknown as { Statement: Statement[] }).Statement)
          .filter((statement) => actionsOf(statement).includes('secretsmanager:GetSecretValue'))
          .flatMap((statement) => [statement.Resource].flat() as string[]);
        for (const secret of properties.ContainerDefinitions.flatMap((container) => container.Secrets ?? [])) {
          // valueFrom is <secret ARN>:<json key>:<version stage>:<version id>; IAM sees the ARN.
          const requested = secret.ValueFrom.split(':').slice(0, 7).join(':');
          expect(granted, requested).toContain(requested);
          checked += 1;
        }
      }
      expect(checked).toBeGreaterThan(0);
    });
  });

  describe('defect 5: a stack deleted with its log groups retained can be deployed again', () => {
    it('gives no retained log group a fixed name (CloudFormation would find it already existing)', () => {
      const logGroups = Object.entries(resources).filter(([, resource]) => resource.Type === 'AWS::Logs::LogGroup');
      expect(logGroups.length).toBeGreaterThanOrEqual(6);
      for (const [id, logGroup] of logGroups) {
        if (logGroup.DeletionPolicy === 'Retain') expect(logGroup.Properties?.LogGroupName, id).toBeUndefined();
      }
    });
  });
});

describe('defect 2, at the source: the configuration', () => {
  const withSecret = (secret: string): PgkeepConfigInput => {
    const changed = structuredClone(PGKEEP_ENVIRONMENTS) as PgkeepConfigInput;
    changed.environments.dev!.databases[0]!.secret = secret;
    return changed;
  };

  it.each([
    ['a secret name', 'pgkeep/dev/orders'],
    ['a partial ARN, without the 6-character suffix', 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:pgkeep/dev/orders'],
  ])('refuses %s, saying that ECS needs the complete ARN and how to find it', (_what, secret) => {
    expect(() => parsePgkeepConfig(withSecret(secret))).toThrow(
      /environments\.dev\.databases\[0\]\.secret: expected the secret's complete ARN, .*ECS fetches exactly that ARN.*aws secretsmanager describe-secret --secret-id <name> --query ARN/,
    );
  });

  it('accepts the complete ARN', () => {
    expect(() => parsePgkeepConfig(withSecret('arn:aws:secretsmanager:eu-west-1:111111111111:secret:pgkeep/dev/orders-AbC123'))).not.toThrow();
  });
});

describe('defect 6: the network requirements name every endpoint the tasks call', () => {
  const infrastructure = readFileSync(join(REPOSITORY_ROOT, 'docs/infrastructure.md'), 'utf8');
  const section = /### What the network must provide\n([\s\S]*?)\n### /.exec(infrastructure)?.[1] ?? '';
  /** The AWS SDK clients the task bundle can reach: everything task/ and catalog/ import. */
  const clients = new Set(
    ['task', 'catalog'].flatMap((directory) =>
      readdirSync(join(REPOSITORY_ROOT, directory))
        .filter((file) => file.endsWith('.ts'))
        .flatMap((file) =>
          [...readFileSync(join(REPOSITORY_ROOT, directory, file), 'utf8').matchAll(/from '@aws-sdk\/client-([a-z0-9-]+)'/g)].map((match) => match[1]!),
        ),
    ),
  );
  /** A client's VPC endpoint service name (com.amazonaws.<region>.<name>). */
  const ENDPOINT_OF_CLIENT: Record<string, string> = { s3: 's3', cloudwatch: 'monitoring' };

  it('covers the SDK clients the task code imports', () => {
    expect([...clients].sort()).toEqual(Object.keys(ENDPOINT_OF_CLIENT).sort());
  });

  const needed: [endpoint: string, why: string][] = [
    ...Object.values(ENDPOINT_OF_CLIENT).map((endpoint): [string, string] => [endpoint, 'the task code calls it']),
    ['ecr.api', 'ECS pulls the image'],
    ['ecr.dkr', 'ECS pulls the image'],
    ['secretsmanager', 'ECS injects the connection secrets'],
    ['logs', 'the awslogs driver writes the task logs'],
  ];
  it.each(needed)('lists com.amazonaws.<region>.%s (%s)', (endpoint) => {
    expect(section).toContain(`com.amazonaws.<region>.${endpoint}\``);
  });
});

describe('the stack outputs the runbook and the notifications point to', () => {
  it('name every log group an operator reads, now that CloudFormation names them', () => {
    const outputs = synthesized.dev!.pipeline.toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const key of [
      'TaskLogGroupName',
      'RestoreLogGroupName',
      'DrillLogGroupName',
      'VerifyBackupLogGroupName',
      'HealthCheckLogGroupName',
      'RetentionLogGroupName',
    ]) {
      expect(resolveTemplateText(outputs[key]?.Value), key).toMatch(/^Ref-\w*LogGroup/);
    }
  });
});
