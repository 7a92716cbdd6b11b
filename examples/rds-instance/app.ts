/**
 * A CDK app of its own that adds pgkeep to the database it defines: a VPC, an RDS PostgreSQL
 * instance with a generated secret, and a pgkeep environment that backs it up. Everything is a CDK
 * construct, so synth needs no lookups and no AWS credentials:
 *
 *   npm run synth:example     (builds the package, then synthesizes this app)
 *
 * It imports pgkeep by its package name, as an app that installed it would; `npm run build`
 * makes the package that name resolves to (package.json `exports`).
 */
import { App, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { PgkeepEnvironment } from 'pgkeep';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';

/** The application's own stack: the network and the database pgkeep will back up. */
class DatabaseStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly database: rds.DatabaseInstance;

  /** Named, not looked up (CDK would ask the account for them): synth stays offline. */
  override get availabilityZones(): string[] {
    return [`${REGION}a`, `${REGION}b`];
  }

  constructor(scope: Construct, id: string) {
    super(scope, id, { env: { account: ACCOUNT, region: REGION } });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      ],
      flowLogs: { rejected: { trafficType: ec2.FlowLogTrafficType.REJECT } },
    });
    Validations.of(this.vpc).acknowledge({
      id: 'CloudFormation-Validate::W3010',
      reason:
        'The example names its availability zones (availabilityZones above) so that synth needs no lookup and no credentials; an app of your own may let CDK look them up.',
    });
    this.database = new rds.DatabaseInstance(this, 'Orders', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM),
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      // The generated secret carries host, port, username, password and dbname: what the tasks read.
      credentials: rds.Credentials.fromGeneratedSecret('orders_admin'),
      databaseName: 'orders',
      multiAz: true,
      storageEncrypted: true,
      deletionProtection: true,
      backupRetention: Duration.days(7),
      iamAuthentication: true,
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });
    Validations.of(this.database).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason:
        "The example keeps PostgreSQL's default port; only the pgkeep tasks' security group may reach it, and a non-default port hides nothing from them.",
    });
    Validations.of(this.database).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotating the database secret needs a rotation function in the VPC, outside what this example shows; pgkeep reads the secret at each task start, so rotation needs no change to it.',
    });
  }
}

const app = new App();
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
const application = new DatabaseStack(app, 'example-database');

new PgkeepEnvironment(app, 'pgkeep-example', {
  name: 'example',
  config: {
    account: ACCOUNT,
    region: REGION,
    // The tasks run in the application's private subnets, in a security group pgkeep creates and
    // lets in on the database's port.
    vpc: application.vpc,
    databases: [{ name: 'orders', database: application.database, schedule: { cron: '0 2 * * ? *', timezone: 'Europe/Dublin' } }],
    retention: { daily: 7, weekly: 4, monthly: 12, yearly: 2, timezone: 'Europe/Dublin' },
    notificationEmails: ['dba@example.com'],
    terminationProtection: true,
    removalPolicy: 'retain',
  },
});

app.synth();
