import { parse as parseShellWords } from 'shell-quote';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '../../infra/config.ts';
import { databaseResourceKey } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { configuredSecretArn, resolveTemplateText, synthesizeEnvironment, synthesizeShippedEnvironments } from '../support/fixtures/infra-synth.ts';

const { config, synthesized } = synthesizeShippedEnvironments();

interface ContainerDefinition {
  Name: string;
  Environment: { Name: string; Value: unknown }[];
  Secrets: { Name: string; ValueFrom: string }[];
  [property: string]: unknown;
}
interface TaskDefinitionResource {
  Properties: {
    Family: string;
    ContainerDefinitions: ContainerDefinition[];
    ExecutionRoleArn: { 'Fn::GetAtt': [string, string] };
    TaskRoleArn: { 'Fn::GetAtt': [string, string] };
  };
}
interface PolicyStatement {
  Action: string | string[];
  Resource: unknown;
  Effect: string;
}
interface PolicyResource {
  Properties: { Roles: unknown; PolicyDocument: { Statement: PolicyStatement[] } };
}
interface KeyResource {
  Properties: { KeyPolicy: { Statement: { Principal: { Service?: string }; Action: string[] }[] } };
}

/** The storage stack output a cross-stack reference reads, or undefined if the value is not one. */
function storageOutput(value: unknown): { StackName?: string; OutputName?: string } | undefined {
  return (value as { 'Fn::GetStackOutput'?: { StackName?: string; OutputName?: string } } | undefined)?.['Fn::GetStackOutput'];
}

describe.each(['dev', 'prod'])('the %s pipeline stack', (name) => {
  const { pipeline, stacks } = synthesized[name]!;
  const environment = config.environments[name]!;
  const logicalId = (construct: { node: { defaultChild?: unknown } }) => stacks.pipeline.getLogicalId(construct.node.defaultChild as never);
  const backupOf = (database: DatabaseConfig) => stacks.pipeline.backups.get(database.name)!;
  const taskDefinitionOf = (database: DatabaseConfig) =>
    pipeline.findResources('AWS::ECS::TaskDefinition')[logicalId(backupOf(database).taskDefinition)] as TaskDefinitionResource;
  const containerOf = (database: DatabaseConfig) => taskDefinitionOf(database).Properties.ContainerDefinitions[0]!;
  const policyStatementsOf = (roleLogicalId: string): PolicyStatement[] =>
    (Object.values(pipeline.findResources('AWS::IAM::Policy')) as PolicyResource[])
      .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(`"${roleLogicalId}"`))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
  const subnetIds = environment.network!.privateSubnets.map((subnet) => subnet.subnetId);
  const ruleNamed = (ruleName: string) =>
    Object.values(pipeline.findResources('AWS::Events::Rule', { Properties: { Name: ruleName } })).map(
      (rule) => rule.Properties as { Targets: { InputTransformer: { InputTemplate: unknown } }[] },
    )[0]!;

  it('runs an ECS cluster with Container Insights', () => {
    pipeline.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterName: `pgkeep-${name}`,
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });

  it('keeps the task logs in a log group with the configured retention, named by CloudFormation', () => {
    const logGroupRefs = new Set(
      environment.databases.map((database) =>
        JSON.stringify((containerOf(database).LogConfiguration as { Options: Record<string, unknown> }).Options['awslogs-group']),
      ),
    );
    expect(logGroupRefs.size).toBe(1);
    const [logGroupId] = [...logGroupRefs].map((ref) => (JSON.parse(ref) as { Ref: string }).Ref);
    // No LogGroupName: a retained log group with a fixed name blocks the next create (test/infra/deploy-rules.test.ts).
    expect(pipeline.findResources('AWS::Logs::LogGroup')[logGroupId!]?.Properties).toEqual({ RetentionInDays: environment.logRetentionDays });
  });

  it('has one ARM64 Fargate task definition per database, sized as configured, with a read-only root and a writable /tmp', () => {
    // The restore and drill task definitions are test/infra/restore.test.ts's.
    expect(
      Object.keys(pipeline.findResources('AWS::ECS::TaskDefinition', { Properties: { Family: Match.stringLikeRegexp(`^pgkeep-${name}-backup-`) } })),
    ).toHaveLength(environment.databases.length);
    for (const database of environment.databases) {
      pipeline.hasResourceProperties('AWS::ECS::TaskDefinition', {
        Family: `pgkeep-${name}-backup-${databaseResourceKey(database.name)}`,
        RequiresCompatibilities: ['FARGATE'],
        NetworkMode: 'awsvpc',
        RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
        Cpu: String(environment.task.cpu),
        Memory: String(environment.task.memoryMiB),
        EphemeralStorage: { SizeInGiB: environment.task.ephemeralStorageGiB },
        Volumes: [{ Name: 'tmp' }],
        ContainerDefinitions: [
          Match.objectLike({
            Name: 'pgkeep',
            Command: ['backup'],
            Image: Match.objectLike({ 'Fn::Sub': Match.stringLikeRegexp('container-assets') }),
            ReadonlyRootFilesystem: true,
            MountPoints: [{ ContainerPath: '/tmp', SourceVolume: 'tmp', ReadOnly: false }],
            // Time to abort the multipart upload after SIGTERM.
            StopTimeout: 120,
            LogConfiguration: {
              LogDriver: 'awslogs',
              Options: Match.objectLike({ 'awslogs-stream-prefix': databaseResourceKey(database.name) }),
            },
          }),
        ],
      });
    }
  });

  it("injects each database's whole connection from its own secret, and never a password in the environment", () => {
    for (const database of environment.databases) {
      const container = containerOf(database);
      const secretArn = configuredSecretArn(database.secret);

      expect(container.Secrets).toEqual([
        { Name: 'PGHOST', ValueFrom: `${secretArn}:host::` },
        { Name: 'PGPORT', ValueFrom: `${secretArn}:port::` },
        { Name: 'PGUSER', ValueFrom: `${secretArn}:username::` },
        { Name: 'PGPASSWORD', ValueFrom: `${secretArn}:password::` },
        { Name: 'PGDATABASE', ValueFrom: `${secretArn}:dbname::` },
      ]);
      const environmentNames = container.Environment.map((variable) => variable.Name);
      expect(environmentNames.filter((variableName) => /PASSWORD|SECRET|DATABASE_URL/.test(variableName))).toEqual([]);
    }
  });

  it("tells the task its bucket, environment, catalog name, KMS key, SSL mode and whether the bucket is under Object Lock, plus the database's overrides", () => {
    for (const database of environment.databases) {
      const {
        PGKEEP_BUCKET: bucket,
        PGKEEP_KMS_KEY_ID: key,
        ...literals
      } = Object.fromEntries(containerOf(database).Environment.map((variable) => [variable.Name, variable.Value]));

      expect(storageOutput(bucket)).toEqual({
        StackName: `pgkeep-${name}-storage`,
        Region: environment.region,
        OutputName: expect.stringMatching(/^PublishOutputRefBackupBucket/) as unknown,
      });
      expect(storageOutput(key)).toEqual({
        StackName: `pgkeep-${name}-storage`,
        Region: environment.region,
        OutputName: expect.stringMatching(/^PublishOutputFnGetAttBackupKey\w+Arn/) as unknown,
      });
      expect(literals).toEqual({
        PGKEEP_ENVIRONMENT: name,
        PGKEEP_DATABASE_NAME: database.name,
        PGKEEP_OBJECT_LOCK: String(environment.objectLock !== undefined),
        PGSSLMODE: 'require',
        ...Object.fromEntries(Object.entries(database.overrides).map(([variable, value]) => [variable, String(value)])),
      });
    }
  });

  it("gives each database its own execution role that can read only that database's secret", () => {
    for (const database of environment.databases) {
      const roleId = taskDefinitionOf(database).Properties.ExecutionRoleArn['Fn::GetAtt'][0];
      const statements = policyStatementsOf(roleId);
      const secretStatements = statements.filter((statement) => [statement.Action].flat().some((action) => action.startsWith('secretsmanager:')));
      // Exactly the ARN the container's valueFrom names, which is what ECS requests.
      expect(secretStatements).toEqual([
        { Effect: 'Allow', Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Resource: database.secret },
      ]);
      for (const other of environment.databases.filter((candidate) => candidate !== database)) {
        expect(JSON.stringify(statements)).not.toContain(other.secret);
      }
      if (database.secretKmsKeyArn) {
        expect(statements).toContainEqual({
          Sid: 'DecryptDatabaseSecret',
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: database.secretKmsKeyArn,
          Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${environment.region}.amazonaws.com` } },
        });
      }
      expect(
        statements
          .flatMap((statement) => [statement.Action].flat())
          .filter((action) => /^s3:|^kms:(?!Decrypt$)|^iam:|^secretsmanager:(?!DescribeSecret$|GetSecretValue$)/.test(action)),
      ).toEqual([]);
    }
  });

  it("gives the backup task role the storage stack's backup-writer policy and pgkeep metrics, nothing else", () => {
    const taskRoleIds = new Set(environment.databases.map((database) => taskDefinitionOf(database).Properties.TaskRoleArn['Fn::GetAtt'][0]));
    expect(taskRoleIds.size).toBe(1);
    const [taskRoleId] = [...taskRoleIds];
    const role = pipeline.findResources('AWS::IAM::Role')[taskRoleId!] as { Properties: { ManagedPolicyArns: unknown[]; Policies?: unknown } };

    expect(role.Properties.ManagedPolicyArns).toHaveLength(1);
    expect(storageOutput(role.Properties.ManagedPolicyArns[0])).toEqual({
      StackName: `pgkeep-${name}-storage`,
      Region: environment.region,
      OutputName: expect.stringMatching(/^PublishOutputRefBackupWriterPolicy/) as unknown,
    });
    expect(role.Properties.Policies).toBeUndefined();
    // PutMetricData has no resource-level permissions; the namespace condition is what limits it.
    expect(policyStatementsOf(taskRoleId!)).toEqual([
      {
        Sid: 'PublishBackupMetrics',
        Effect: 'Allow',
        Action: 'cloudwatch:PutMetricData',
        Resource: '*',
        Condition: { StringEquals: { 'cloudwatch:namespace': 'pgkeep' } },
      },
    ]);
  });

  it('has one EventBridge Scheduler schedule per database with its cron and timezone, launching its task on Fargate with no public IP', () => {
    // The drill's schedule is in its own group (test/infra/restore.test.ts).
    const taskSchedules = Object.values(pipeline.findResources('AWS::Scheduler::Schedule', { Properties: { GroupName: `pgkeep-${name}` } })).filter(
      (schedule) => JSON.stringify(schedule).includes('"EcsParameters"'),
    );
    expect(taskSchedules).toHaveLength(environment.databases.length);
    for (const database of environment.databases) {
      pipeline.hasResourceProperties('AWS::Scheduler::Schedule', {
        GroupName: `pgkeep-${name}`,
        ScheduleExpression: `cron(${database.schedule.cron})`,
        ScheduleExpressionTimezone: database.schedule.timezone,
        State: 'ENABLED',
        Target: Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(stacks.pipeline.cluster), 'Arn'] },
          EcsParameters: {
            TaskDefinitionArn: { Ref: logicalId(backupOf(database).taskDefinition) },
            LaunchType: 'FARGATE',
            NetworkConfiguration: {
              AwsvpcConfiguration: { AssignPublicIp: 'DISABLED', Subnets: subnetIds, SecurityGroups: [environment.network!.securityGroupId] },
            },
          },
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ScheduleDeadLetterQueue'), 'Arn'] } },
        }),
      });
    }
  });

  it("passes each database's settings to its scheduled run as container overrides", () => {
    for (const database of environment.databases) {
      const schedule = pipeline.findResources('AWS::Scheduler::Schedule')[logicalId(backupOf(database).schedule)] as {
        Properties: { Target: { Input: string } };
      };

      expect(JSON.parse(schedule.Properties.Target.Input)).toEqual({
        containerOverrides: [
          {
            name: 'pgkeep',
            environment: [
              { name: 'PGKEEP_DATABASE_NAME', value: database.name },
              ...Object.entries(database.overrides).map(([variable, value]) => ({ name: variable, value: String(value) })),
            ],
          },
        ],
      });
    }
  });

  it("lets each database's schedule run only that database's backup task definition and pass only its roles to ECS", () => {
    const roleIds = new Set<string>();
    for (const database of environment.databases) {
      const backupSchedule = pipeline.findResources('AWS::Scheduler::Schedule')[logicalId(backupOf(database).schedule)] as {
        Properties: { Target: { RoleArn: { 'Fn::GetAtt': [string, string] } } };
      };
      const schedulerRoleId = backupSchedule.Properties.Target.RoleArn['Fn::GetAtt'][0];
      roleIds.add(schedulerRoleId);
      const statements = policyStatementsOf(schedulerRoleId);
      const passed = [statements.find((statement) => statement.Action === 'iam:PassRole')?.Resource].flat();

      expect(statements.map((statement) => statement.Action).sort()).toEqual(['ecs:RunTask', 'iam:PassRole', 'sqs:SendMessage']);
      expect(statements.find((statement) => statement.Action === 'ecs:RunTask')?.Resource).toEqual({ Ref: logicalId(backupOf(database).taskDefinition) });
      expect(passed).toEqual(
        expect.arrayContaining([taskDefinitionOf(database).Properties.ExecutionRoleArn, taskDefinitionOf(database).Properties.TaskRoleArn]),
      );
      expect(passed).toHaveLength(2);
    }
    // One role per database (each in its database's nested stack), so no role can start another's backup.
    expect(roleIds.size).toBe(environment.databases.length);
  });

  it('sends alerts to a KMS-encrypted, TLS-only SNS topic with the configured email subscriptions', () => {
    pipeline.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsTopicKey'), 'Arn'] } });
    pipeline.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
    const subscriptions = Object.values(pipeline.findResources('AWS::SNS::Subscription')).map(
      (subscription) => subscription.Properties as { Protocol: string; Endpoint: string },
    );
    expect(subscriptions.map((subscription) => [subscription.Protocol, subscription.Endpoint])).toEqual(
      environment.notificationEmails.map((email) => ['email', email]),
    );
  });

  it('lets CloudWatch alarms and EventBridge use the topic key', () => {
    const [key] = Object.values(pipeline.findResources('AWS::KMS::Key')) as KeyResource[];
    const services = key!.Properties.KeyPolicy.Statement.filter((statement) => statement.Principal.Service).map((statement) => [
      statement.Principal.Service,
      statement.Action,
    ]);

    expect(services).toEqual(
      expect.arrayContaining([
        ['cloudwatch.amazonaws.com', ['kms:Decrypt', 'kms:GenerateDataKey*']],
        ['events.amazonaws.com', ['kms:Decrypt', 'kms:GenerateDataKey*']],
      ]),
    );
  });

  it('turns any backup task of the environment that stopped with a non-zero exit code into a readable notification', () => {
    pipeline.hasResourceProperties('AWS::Events::Rule', {
      Name: `pgkeep-${name}-backup-failed`,
      EventPattern: {
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          clusterArn: [{ 'Fn::GetAtt': [logicalId(stacks.pipeline.cluster), 'Arn'] }],
          lastStatus: ['STOPPED'],
          // Every database's family: pgkeep-<env>-backup-<Key>.
          taskDefinitionArn: [{ prefix: `arn:aws:ecs:${environment.region}:${environment.account}:task-definition/pgkeep-${name}-backup-` }],
          containers: { name: ['pgkeep'], exitCode: [{ 'anything-but': 0 }] },
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { Ref: Match.stringLikeRegexp('^AlertsTopic') },
          InputTransformer: {
            InputPathsMap: Match.objectLike({
              'detail-containers-0--exitCode': '$.detail.containers[0].exitCode',
              'detail-stoppedReason': '$.detail.stoppedReason',
              'detail-taskDefinitionArn': '$.detail.taskDefinitionArn',
            }),
            InputTemplate: Match.anyValue(),
          },
        }),
      ],
    });
    const message = resolveTemplateText(ruleNamed(`pgkeep-${name}-backup-failed`).Targets[0]!.InputTransformer.InputTemplate);
    expect(message).toMatch(
      new RegExp(
        `^"pgkeep ${name}: a backup FAILED with exit code <detail-containers-0--exitCode> .*Task definition: <detail-taskDefinitionArn> \\(its family ends with the database\\)\\. ECS: <detail-stoppedReason>\\. .*` +
          `Logs: https://${environment.region}\\.console\\.aws\\.amazon\\.com/cloudwatch/home\\?region=${environment.region}#logsV2:log-groups/log-group/Ref-TaskLogGroup\\w+ \\(stream <the last part of the task definition family>/pgkeep/<task id>`,
      ),
    );
  });

  it('also reports any backup task that could not start', () => {
    pipeline.hasResourceProperties('AWS::Events::Rule', {
      Name: `pgkeep-${name}-backup-not-started`,
      EventPattern: {
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: Match.objectLike({
          lastStatus: ['STOPPED'],
          stopCode: ['TaskFailedToStart'],
          taskDefinitionArn: [{ prefix: `arn:aws:ecs:${environment.region}:${environment.account}:task-definition/pgkeep-${name}-backup-` }],
        }),
      },
    });
    expect(resolveTemplateText(ruleNamed(`pgkeep-${name}-backup-not-started`).Targets[0]!.InputTransformer.InputTemplate)).toMatch(
      new RegExp(`^"pgkeep ${name}: a backup could not start\\. Task definition: <detail-taskDefinitionArn>`),
    );
  });

  it('has eight stopped-task rules for the whole environment, however many databases it has', () => {
    // EventBridge allows 300 rules per event bus and Region (100 in some): per-database rules would not scale.
    expect(Object.keys(pipeline.findResources('AWS::Events::Rule'))).toHaveLength(8);
  });

  it('alarms to the topic when a scheduled run could not be started and landed in the dead-letter queue', () => {
    pipeline.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    pipeline.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ScheduleDeadLetterQueue'), 'QueueName'] } }],
      Threshold: environment.alarms.undeliveredScheduledRuns,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^AlertsTopic') }],
    });
  });

  it('has termination protection exactly when configured', () => {
    expect(stacks.pipeline.terminationProtection).toBe(environment.terminationProtection);
  });

  it('outputs the cluster, task definitions, subnets, security group, logs, topic, dashboard, functions and run-task, restore and drill commands, each with a description', () => {
    const outputs = pipeline.toJSON().Outputs as Record<string, { Description?: string }>;
    const expected = [
      'ClusterName',
      'PrivateSubnetIds',
      'TaskSecurityGroupId',
      'TaskLogGroupName',
      'RestoreLogGroupName',
      'DrillLogGroupName',
      'VerifyBackupLogGroupName',
      'HealthCheckLogGroupName',
      'RetentionLogGroupName',
      'RunDrillCommand',
      'AlertsTopicArn',
      'DashboardUrl',
      'VerifyBackupFunctionName',
      'RetentionFunctionName',
      ...environment.databases.flatMap((database) => [
        `TaskDefinition${databaseResourceKey(database.name)}`,
        `RunTaskCommand${databaseResourceKey(database.name)}`,
        `RestoreLatestCommand${databaseResourceKey(database.name)}`,
      ]),
    ];

    expect(Object.keys(outputs).sort()).toEqual(expected.sort());
    for (const key of expected) expect(outputs[key]?.Description, key).toMatch(/^.{20,}$/);
    pipeline.hasOutput('PrivateSubnetIds', { Value: subnetIds.join(',') });
    pipeline.hasOutput('TaskSecurityGroupId', { Value: environment.network!.securityGroupId });
  });

  describe.each(environment.databases.map((database) => [database.name, database] as const))('the run-task command for %s', (_databaseName, database) => {
    const output = (pipeline.toJSON().Outputs as Record<string, { Value: unknown }>)[`RunTaskCommand${databaseResourceKey(database.name)}`]!;
    const words = parseShellWords(resolveTemplateText(output.Value));
    const option = (flag: string) => {
      const index = words.indexOf(flag);
      expect(index, `${flag} in ${JSON.stringify(words)}`).toBeGreaterThan(0);
      return words[index + 1];
    };

    it('is one plain shell command, with no operators, globs or substitutions', () => {
      expect(words.every((word) => typeof word === 'string')).toBe(true);
      expect(words.slice(0, 3)).toEqual(['aws', 'ecs', 'run-task']);
    });

    it("names the cluster, the database's task definition, the region and the Fargate launch type", () => {
      expect(option('--cluster')).toBe(`Ref-${logicalId(stacks.pipeline.cluster)}`);
      // The family, whose latest revision RunTask takes: the command keeps working after a redeploy.
      expect(option('--task-definition')).toBe(`pgkeep-${name}-backup-${databaseResourceKey(database.name)}`);
      expect(option('--region')).toBe(environment.region);
      expect(option('--launch-type')).toBe('FARGATE');
    });

    it('runs in the private subnets with the security group and no public IP', () => {
      expect(JSON.parse(option('--network-configuration') as string)).toEqual({
        awsvpcConfiguration: { subnets: subnetIds, securityGroups: [environment.network!.securityGroupId], assignPublicIp: 'DISABLED' },
      });
    });

    it('overrides the container with the database name and its settings, as the schedule does', () => {
      const schedule = pipeline.findResources('AWS::Scheduler::Schedule')[logicalId(backupOf(database).schedule)] as {
        Properties: { Target: { Input: string } };
      };
      const overrides = JSON.parse(option('--overrides') as string) as {
        containerOverrides: { name: string; environment: { name: string; value: string }[] }[];
      };

      expect(overrides.containerOverrides[0]?.name).toBe('pgkeep');
      expect(overrides.containerOverrides[0]?.environment).toContainEqual({ name: 'PGKEEP_DATABASE_NAME', value: database.name });
      expect(overrides).toEqual(JSON.parse(schedule.Properties.Target.Input));
    });
  });
});

describe('a database name full of shell metacharacters', () => {
  const awkwardName = `o'brien $(rm -rf ~) "quoted" & more`;
  const awkward = structuredClone(PGKEEP_ENVIRONMENTS) as { environments: { dev: { databases: { name: string }[] } } };
  awkward.environments.dev.databases[0]!.name = awkwardName;
  const environment = synthesizeEnvironment(awkward, 'dev');
  afterAll(() => environment.dispose());

  it('still yields a run-task command that a shell parses back to the exact name', () => {
    const outputs = environment.pipeline.toJSON().Outputs as Record<string, { Value: unknown }>;
    const words = parseShellWords(resolveTemplateText(outputs[`RunTaskCommand${databaseResourceKey(awkwardName)}`]!.Value));
    const overrides = JSON.parse(words[words.indexOf('--overrides') + 1] as string) as {
      containerOverrides: { environment: { name: string; value: string }[] }[];
    };

    expect(words.every((word) => typeof word === 'string')).toBe(true);
    expect(overrides.containerOverrides[0]?.environment).toContainEqual({ name: 'PGKEEP_DATABASE_NAME', value: awkwardName });
  });
});
