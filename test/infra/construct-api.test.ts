/**
 * The construct library's API (infra/index.ts): PgkeepEnvironment in a CDK app that defines its own
 * network and database, given as constructs instead of ids; what the package build makes of the
 * task image; and the errors a wrong configuration gets. The whole example app, from the built
 * package, is test/infra/example-app.integration.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import type { IConstruct } from 'constructs';
import { afterAll, describe, expect, it } from 'vitest';
import { packagedAssets } from '../../infra/assets.ts';
import { packagedDockerfile } from '../../infra/build-package.ts';
import type { EnvironmentInput } from '../../infra/index.ts';
import { PgkeepConfigError, PgkeepEnvironment } from '../../infra/index.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import { sourceAssets } from '../../infra/source-assets.ts';
import { scratchApp, synthesizeEnvironment } from '../support/fixtures/infra-synth.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';

const env = { account: '123456789012', region: 'eu-west-1' };
const scratches: { dispose(): void }[] = [];
afterAll(() => scratches.forEach((scratch) => scratch.dispose()));

/** An app's own stack with a VPC and an RDS PostgreSQL instance, and pgkeep beside it. */
function appWithDatabase(configure: (parts: { vpc: ec2.Vpc; database: rds.DatabaseInstance; stack: Stack }) => Partial<EnvironmentInput>) {
  const scratch = scratchApp();
  scratches.push(scratch);
  const stack = new (class extends Stack {
    override get availabilityZones(): string[] {
      return ['eu-west-1a', 'eu-west-1b'];
    }
  })(scratch.app, 'application', { env });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const database = new rds.DatabaseInstance(stack, 'Orders', {
    engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
    vpc,
    credentials: rds.Credentials.fromGeneratedSecret('orders_admin'),
    databaseName: 'orders',
  });
  const create = () =>
    new PgkeepEnvironment(scratch.app, 'pgkeep-test', {
      name: 'test',
      assets: sourceAssets(REPOSITORY_ROOT),
      config: {
        ...env,
        databases: [{ name: 'orders', database, schedule: { cron: '0 2 * * ? *', timezone: 'UTC' } }],
        terminationProtection: false,
        removalPolicy: 'destroy',
        ...configure({ vpc, database, stack }),
      },
    });
  return { create, vpc, database, stack };
}

const stackOf = (scope: IConstruct) => Stack.of(scope);
type Resource = { Properties: Record<string, unknown> };
const nestedTemplates = (environment: PgkeepEnvironment) => [...environment.pipeline.databases.values()].map((nested) => Template.fromStack(nested));

describe('PgkeepEnvironment in an app that defines its network and database as constructs', () => {
  it("runs the tasks in the VPC's private subnets, in a security group of their own with no inbound rule", () => {
    const { create, vpc } = appWithDatabase(({ vpc }) => ({ vpc }));
    const environment = create();
    const pipeline = Template.fromStack(environment.pipeline);
    const groups = Object.values(pipeline.findResources('AWS::EC2::SecurityGroup')) as Resource[];

    expect(groups).toHaveLength(1);
    expect(groups[0]!.Properties.SecurityGroupIngress).toBeUndefined();
    expect(groups[0]!.Properties.SecurityGroupEgress).toEqual([
      { CidrIp: '0.0.0.0/0', Description: 'Allow all outbound traffic by default', IpProtocol: '-1' },
    ]);
    expect(environment.pipeline.vpc).toBe(vpc);
    const outputs = JSON.stringify((pipeline.toJSON() as { Outputs: Record<string, unknown> }).Outputs.PrivateSubnetIds);
    for (const subnet of vpc.privateSubnets) expect(outputs).toContain(stackOf(subnet).getLogicalId(subnet.node.defaultChild as ec2.CfnSubnet));
    expect(outputs).not.toContain('PublicSubnet');
  });

  it("lets the tasks in on the database's port with a rule in pgkeep's stack, so the app's stack never depends on pgkeep", () => {
    const { create, stack } = appWithDatabase(({ vpc }) => ({ vpc }));
    const environment = create();
    const [nested] = nestedTemplates(environment);
    const ingress = Object.values(nested!.findResources('AWS::EC2::SecurityGroupIngress')) as Resource[];

    expect(ingress).toHaveLength(1);
    expect(ingress[0]!.Properties).toMatchObject({ IpProtocol: 'tcp', Description: 'pgkeep test: the backup and restore tasks connect to orders' });
    expect(Template.fromStack(stack).findResources('AWS::EC2::SecurityGroupIngress')).toEqual({});
    expect(stack.dependencies).toEqual([]);
    expect(environment.pipeline.dependencies).toContain(stack);
  });

  it("connects with the instance's generated secret when no secret is given", () => {
    const { create } = appWithDatabase(({ vpc }) => ({ vpc }));
    const [nested] = nestedTemplates(create());
    const backup = (Object.values(nested!.findResources('AWS::ECS::TaskDefinition')) as Resource[]).find((definition) =>
      JSON.stringify(definition).includes('"backup"'),
    )!;
    const secrets = (backup.Properties.ContainerDefinitions as { Secrets: { Name: string; ValueFrom: unknown }[] }[])[0]!.Secrets;

    expect(secrets.map((secret) => secret.Name)).toEqual(['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE']);
    expect(JSON.stringify(secrets)).toContain('OrdersSecretAttachment');
  });

  it('uses the security group and subnets it is given instead', () => {
    const { create } = appWithDatabase(({ vpc, stack }) => ({
      vpc,
      taskSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      taskSecurityGroup: new ec2.SecurityGroup(stack, 'Tasks', { vpc }),
    }));
    const environment = create();

    expect(Template.fromStack(environment.pipeline).findResources('AWS::EC2::SecurityGroup')).toEqual({});
    expect(JSON.stringify((Template.fromStack(environment.pipeline).toJSON() as { Outputs: Record<string, unknown> }).Outputs.PrivateSubnetIds)).toContain(
      'PublicSubnet',
    );
  });
});

describe('a wrong configuration of PgkeepEnvironment', () => {
  const problem = (configure: Parameters<typeof appWithDatabase>[0]) => {
    const { create } = appWithDatabase(configure);
    try {
      create();
    } catch (error) {
      if (error instanceof PgkeepConfigError) return error.message;
      throw error;
    }
    throw new Error('no PgkeepConfigError');
  };

  it('names the field when both or neither of network and vpc are given', () => {
    const ids = {
      vpcId: 'vpc-0123456789abcdef0',
      privateSubnets: [{ subnetId: 'subnet-0123456789abcdef0', availabilityZone: 'eu-west-1a' }],
      securityGroupId: 'sg-0123456789abcdef0',
    };

    expect(problem(({ vpc }) => ({ vpc, network: ids }))).toContain('network: give either network (ids) or vpc (a construct), not both');
    expect(problem(() => ({}))).toContain(
      'network: required: network: { vpcId, privateSubnets, securityGroupId } (or, in a CDK app that defines the VPC, vpc)',
    );
    expect(problem(() => ({ network: ids, taskSubnets: { subnetType: ec2.SubnetType.PUBLIC } }))).toContain('taskSubnets: only applies with vpc');
  });

  it('asks for the secret of a database construct that carries none', () => {
    const message = problem(({ vpc, stack }) => ({
      vpc,
      databases: [
        {
          name: 'imported',
          database: rds.DatabaseInstance.fromDatabaseInstanceAttributes(stack, 'Imported', {
            instanceIdentifier: 'imported',
            instanceEndpointAddress: 'imported.example',
            port: 5432,
            securityGroups: [],
          }),
          schedule: { cron: '0 2 * * ? *', timezone: 'UTC' },
        },
      ],
    }));

    expect(message).toContain('Invalid configuration of pgkeep environment "test"');
    expect(message).toContain('databases[0].secret: required: the database construct has no generated secret');
  });

  it('refuses a generated secret that will have no dbname, before a task fails to start on it', () => {
    const message = problem(({ vpc, stack }) => ({
      vpc,
      databases: [
        {
          name: 'unnamed',
          database: new rds.DatabaseInstance(stack, 'Unnamed', {
            engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
            vpc,
            credentials: rds.Credentials.fromGeneratedSecret('unnamed_admin'),
          }),
          schedule: { cron: '0 2 * * ? *', timezone: 'UTC' },
        },
      ],
    }));

    expect(message).toContain('databases[0].database: its generated secret will have no dbname, which the tasks read (PGDATABASE)');
  });

  it('says what a value that is not a construct should have been', () => {
    expect(problem(() => ({ vpc: 'vpc-0123456789abcdef0' as never }))).toContain('vpc: expected an ec2.IVpc construct');
  });
});

describe("an app with CDK's defaults instead of pgkeep's cdk.json", () => {
  it("still builds pgkeep's stacks as the tests see them: pgkeep sets the flags it was tested with on its own subtree", () => {
    // A bare App: no cdk.json context at all, as in an app whose cdk.json predates these flags.
    const outdir = mkdtempSync(join(tmpdir(), 'pgkeep-cdk-'));
    scratches.push({ dispose: () => rmSync(outdir, { recursive: true, force: true }) });
    const bare = new PgkeepEnvironment(new App({ outdir }), 'pgkeep-dev', {
      name: 'dev',
      config: PGKEEP_ENVIRONMENTS.environments.dev,
      assets: sourceAssets(REPOSITORY_ROOT),
    });
    const flagged = synthesizeEnvironment(PGKEEP_ENVIRONMENTS, 'dev');
    scratches.push(flagged);

    expect(Template.fromStack(bare.storage).toJSON()).toEqual(flagged.storage.toJSON());
    expect(JSON.stringify(Template.fromStack(bare.pipeline).toJSON())).toEqual(JSON.stringify(flagged.pipelineStack.toJSON()));
  });
});

describe('the packaged task image', () => {
  const dockerfile = packagedDockerfile(readFileSync(join(REPOSITORY_ROOT, 'task/Dockerfile'), 'utf8'));

  it("is task/Dockerfile's runtime stage, copying the prebuilt bundle instead of building it", () => {
    expect(dockerfile).not.toMatch(/ AS build/);
    expect(dockerfile).not.toContain('--from=build');
    expect(dockerfile).toContain('COPY main.mjs main.mjs.map /app/');
    // What makes it run on Fargate as the repository's image does (test/task/fargate-container.integration.test.ts).
    for (const line of ['RUN chmod 1777 /tmp', 'VOLUME ["/tmp"]', 'USER node', 'ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/main.mjs"]'])
      expect(dockerfile).toContain(line);
  });

  it('refuses a Dockerfile without the build stage it replaces, instead of shipping a broken image', () => {
    expect(() => packagedDockerfile('FROM node:24-bookworm-slim\nCOPY . /app/\n')).toThrow(/no longer has a build stage/);
  });

  it('is missing from an unbuilt copy of the package, and the error says to build it', () => {
    expect(() => packagedAssets(join(REPOSITORY_ROOT, 'no-such-directory'))).toThrow(/was not built\. Run `npm run build` in it/);
  });
});
