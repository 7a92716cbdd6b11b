import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { sourceAssets } from '../../infra/source-assets.ts';
import { PgkeepFunction } from '../../infra/constructs/pgkeep-function.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import { scratchApp } from '../support/fixtures/infra-synth.ts';

// A synth from the sources bundles with the locally installed esbuild (functions/build.ts), never
// Docker (there is no Docker here, nor in CI).
const scratch = scratchApp();
const stack = new Stack(scratch.app, 'FunctionUnderTest', { env: { account: '111111111111', region: 'eu-west-1' } });
const fn = new PgkeepFunction(stack, 'Hello', {
  code: sourceAssets(REPOSITORY_ROOT).functionCode('backup-health'),
  description: 'says hello (test fixture)',
  serviceName: 'pgkeep-hello',
  logRetention: logs.RetentionDays.ONE_MONTH,
  timeout: Duration.seconds(10),
  environment: { GREETING: 'hello' },
});
const template = Template.fromStack(stack);
afterAll(() => scratch.dispose());

describe('the house Lambda function construct', () => {
  it('runs on ARM64 and the current Node.js runtime, as cdk-nag expects', () => {
    template.hasResourceProperties('AWS::Lambda::Function', { Runtime: 'nodejs24.x', Architectures: ['arm64'], Handler: 'index.handler', Timeout: 10 });
    expect(new AwsSolutionsChecks().validateScope(stack).violations.filter((violation) => violation.ruleName === 'AwsSolutions-L1')).toEqual([]);
  });

  it('logs to its own log group with an explicit retention', () => {
    const logGroupId = stack.getLogicalId(fn.logGroup.node.defaultChild as logs.CfnLogGroup);

    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    template.hasResourceProperties('AWS::Lambda::Function', { LoggingConfig: { LogGroup: { Ref: logGroupId } } });
  });

  it('runs with its own role, which may write its own log group and nothing else (no AWS-managed policy)', () => {
    const roleId = stack.getLogicalId(fn.role.node.defaultChild as never);
    const role = template.findResources('AWS::IAM::Role')[roleId] as { Properties: { AssumeRolePolicyDocument: unknown; ManagedPolicyArns?: unknown } };
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as {
      Properties: { Roles: unknown; PolicyDocument: { Statement: unknown[] } };
    }[];

    template.hasResourceProperties('AWS::Lambda::Function', { Role: { 'Fn::GetAtt': [roleId, 'Arn'] } });
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
      Version: '2012-10-17',
    });
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(policies.flatMap((policy) => policy.Properties.PolicyDocument.Statement)).toEqual([
      {
        Sid: 'WriteOwnLogGroup',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [stack.getLogicalId(fn.logGroup.node.defaultChild as logs.CfnLogGroup), 'Arn'] },
      },
    ]);
  });

  it("sets the Powertools environment and source-mapped stack traces, keeping the caller's variables", () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectEquals({
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_SERVICE_NAME: 'pgkeep-hello',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          GREETING: 'hello',
        }),
      },
    });
  });

  it('bundles the handler with esbuild into an ESM file with a source map', () => {
    const code = (
      template.findResources('AWS::Lambda::Function')[stack.getLogicalId(fn.node.defaultChild as never)] as { Properties: { Code: { S3Key: string } } }
    ).Properties.Code;
    const assetHash = code.S3Key.replace(/\.zip$/, '');
    const bundleDirectory = join(scratch.outdir, `asset.${assetHash}`);

    expect(existsSync(bundleDirectory), bundleDirectory).toBe(true);
    expect(readdirSync(bundleDirectory).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    const bundle = readFileSync(join(bundleDirectory, 'index.mjs'), 'utf8');
    // Checked as booleans so that a failure does not print the whole minified bundle.
    expect(/^import \{ createRequire \}/.test(bundle), 'the ESM require shim comes first').toBe(true);
    expect(/export\s*\{[^}]*\bas handler\b[^}]*\}/.test(bundle), 'the handler is an ESM export').toBe(true);
    expect(bundle.includes('//# sourceMappingURL=index.mjs.map'), 'Node finds the source map through its comment').toBe(true);
    const sourceMap = JSON.parse(readFileSync(join(bundleDirectory, 'index.mjs.map'), 'utf8')) as { sources: string[] };
    expect(sourceMap.sources.some((source) => source.endsWith('functions/backup-health/handler.ts'))).toBe(true);
  });
});
