/**
 * The authorization model's reader of cloud assemblies, on an assembly CDK itself writes: a stack
 * with a bucket and a nested stack whose role is granted the bucket (its ARN passed in as a nested
 * stack parameter), and a role in the parent that uses the nested stack's output. The model must
 * find resources wherever they are, nested stacks included, with the values CloudFormation would
 * give them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CfnOutput, NestedStack, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { CloudAssembly } from '../support/authz/cloud-assembly.ts';
import { Deployment } from '../support/authz/deployment.ts';
import { scratchApp, type ScratchApp } from '../support/fixtures/infra-synth.ts';

let scratch: ScratchApp;
let deployment: Deployment;

beforeAll(() => {
  scratch = scratchApp();
  const parent = new Stack(scratch.app, 'parent', { env: { account: '123456789012', region: 'eu-west-1' } });
  const bucket = new s3.Bucket(parent, 'Data');
  const nested = new NestedStack(parent, 'PerDatabase');
  const reader = new iam.Role(nested, 'Reader', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
  bucket.grantRead(reader);
  const consumer = new iam.Role(parent, 'Consumer', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  consumer.addToPolicy(new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: [reader.roleArn] }));
  new CfnOutput(parent, 'ReaderArn', { value: reader.roleArn });
  scratch.app.synth();
  deployment = new Deployment(new CloudAssembly(scratch.outdir));
});

afterAll(() => scratch?.dispose());

describe('the cloud assembly reader', () => {
  it("reads the nested stack's template from the assembly, and its resources with the parent's", () => {
    expect(deployment.assembly.stacks.map((stack) => stack.path)).toEqual(['parent', expect.stringMatching(/^parent\/PerDatabase/)]);
    expect(deployment.roles.map((role) => role.where)).toEqual([
      expect.stringMatching(/^parent\/Consumer/),
      expect.stringMatching(/^parent\/PerDatabase.*\/Reader/),
    ]);
  });

  it("resolves a parameter the parent passes to the nested stack (the bucket's ARN) in the nested role's policy", () => {
    const reader = deployment.roles.find((role) => role.where.includes('Reader'))!;
    const bucketArn = deployment.buckets[0]!.arn;
    const resources = reader.identity.flatMap((policy) => policy.document.Statement.flatMap((statement) => [statement.Resource].flat()));
    expect(resources).toEqual(expect.arrayContaining([bucketArn, `${bucketArn}/*`]));
  });

  it("resolves the nested stack's output where the parent uses it (the nested role's ARN)", () => {
    const reader = deployment.roles.find((role) => role.where.includes('Reader'))!;
    const consumer = deployment.roles.find((role) => role.where.includes('Consumer'))!;
    expect(consumer.identity.flatMap((policy) => policy.document.Statement.map((statement) => statement.Resource))).toEqual([reader.arn]);
    // CloudFormation names it <nested stack name>-<logical id>-<suffix>, cut to 64 characters.
    expect(reader.arn).toMatch(/^arn:aws:iam::123456789012:role\/parent-PerDatabase/);
  });
});
