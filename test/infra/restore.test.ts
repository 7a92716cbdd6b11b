import { vaultBucketName, vaultKeyAlias } from '../../catalog/vault.ts';
import { parse as parseShellWords } from 'shell-quote';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { METRIC, METRICS_NAMESPACE } from '../../catalog/metrics.ts';
import { RUNBOOK_SECTIONS } from '../../infra/backup-alarms.ts';
import type { DatabaseConfig } from '../../infra/config.ts';
import { databaseResourceKey, parsePgkeepConfig, PgkeepConfigError } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';
import {
  BACKUP_KEY,
  BACKUP_OBJECTS,
  BUCKET_ARN,
  configuredSecretArn,
  resolveTemplateText,
  scratchApp,
  synthesizeEnvironment,
  synthesizeShippedEnvironments,
  actionsOf,
  storageOutputOf,
} from '../support/fixtures/infra-synth.ts';
import type { Resource, Statement } from '../support/fixtures/infra-synth.ts';

const { config, synthesized } = synthesizeShippedEnvironments();

const DRILL_RECORDS = { 'Fn::Join': ['', [BUCKET_ARN, '/drills/*']] };
const PUBLISH_METRICS = {
  Sid: 'PublishBackupMetrics',
  Effect: 'Allow',
  Action: 'cloudwatch:PutMetricData',
  Resource: '*',
  Condition: { StringEquals: { 'cloudwatch:namespace': METRICS_NAMESPACE } },
};

interface ContainerDefinition {
  Name: string;
  Command: string[];
  Environment: { Name: string; Value: unknown }[];
  Secrets?: { Name: string; ValueFrom: string }[];
  [property: string]: unknown;
}

function secretArnOf(reference: string, environment: { region: string; account: string }): string {
  return reference.startsWith('arn:') ? reference : `arn:aws:secretsmanager:${environment.region}:${environment.account}:secret:${reference}`;
}

describe.each(['dev', 'prod'])('restores and the restore drill in the %s environment', (name) => {
  const { pipeline, storage, stacks } = synthesized[name]!;
  const environment = config.environments[name]!;
  const resources = pipeline.toJSON().Resources as Record<string, Resource>;
  const pipelineId = (construct: { node: { defaultChild?: unknown } }) => stacks.pipeline.getLogicalId(construct.node.defaultChild as never);
  const storageId = (construct: { node: { defaultChild?: unknown } }) => stacks.storage.getLogicalId(construct.node.defaultChild as never);
  const restoreOf = (database: DatabaseConfig) => stacks.pipeline.restores.get(database.name)!;
  const taskDefinition = (construct: { node: { defaultChild?: unknown } }) =>
    resources[pipelineId(construct)]!.Properties as {
      Family: string;
      ContainerDefinitions: ContainerDefinition[];
      ExecutionRoleArn: { 'Fn::GetAtt': [string, string] };
      TaskRoleArn: { 'Fn::GetAtt': [string, string] };
    } & Record<string, unknown>;
  const containerOf = (construct: { node: { defaultChild?: unknown } }) => taskDefinition(construct).ContainerDefinitions[0]!;
  const inlineStatementsOf = (roleId: string): Statement[] =>
    Object.values(resources)
      .filter((resource) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties.Roles).includes(`"${roleId}"`))
      .flatMap((resource) => (resource.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  const managedStatementsOf = (policy: { node: { defaultChild?: unknown } }): Statement[] =>
    ((storage.findResources('AWS::IAM::ManagedPolicy')[storageId(policy)] as Resource).Properties.PolicyDocument as { Statement: Statement[] }).Statement;
  const readerPolicy = stacks.storage.accessPolicies.backupReader;
  const drillWriterPolicy = stacks.storage.accessPolicies.drillRecordWriter;
  const managedPolicyOutputsOf = (roleId: string) => ((resources[roleId]!.Properties.ManagedPolicyArns as unknown[] | undefined) ?? []).map(storageOutputOf);
  /** Everything a role may do: its inline statements and the storage-stack policies it has. */
  const effectiveStatementsOf = (roleId: string) => {
    const managed = managedPolicyOutputsOf(roleId);
    return [
      ...inlineStatementsOf(roleId),
      ...[readerPolicy, drillWriterPolicy]
        .filter((policy) => managed.some((output) => output?.startsWith(`PublishOutputRef${storageId(policy)}`)))
        .flatMap(managedStatementsOf),
    ];
  };
  const restoreTaskRoleId = pipelineId(stacks.pipeline.restoreTaskRole);
  /** With a vault: restore and drill read its copies as they read backups (docs/vault.md), and the
   * vault's bucket and key policies admit these roles for the same calls (test/infra/vault.test.ts). */
  const vaultCopyReads = ((vault) => {
    if (!vault) return [];
    const bucketArn = `arn:aws:s3:::${vaultBucketName(name, vault.account, vault.region)}`;
    return [
      { Sid: 'ListVaultCopies', Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn, Condition: { StringLike: { 's3:prefix': 'backups/*' } } },
      {
        Sid: 'ReadVaultCopies',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:GetObjectTagging', 's3:GetObjectVersion', 's3:RestoreObject'],
        Resource: `${bucketArn}/backups/*`,
      },
      {
        Sid: 'DecryptVaultCopies',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: `arn:aws:kms:${vault.region}:${vault.account}:key/*`,
        Condition: {
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': [vaultKeyAlias(name)] },
          StringEquals: { 'kms:ViaService': `s3.${vault.region}.amazonaws.com` },
        },
      },
    ];
  })(environment.vault);
  const drillTaskRoleId = pipelineId(stacks.pipeline.drillTaskRole);
  const drillDefinition = taskDefinition(stacks.pipeline.drill.taskDefinition);
  const subnetIds = environment.network!.privateSubnets.map((subnet) => subnet.subnetId);

  describe('the restore task definitions', () => {
    it('are one ARM64 Fargate task definition per database, sized as configured, running `restore` with a read-only root, a writable /tmp and 120 s to stop', () => {
      for (const database of environment.databases) {
        const key = databaseResourceKey(database.name);
        expect(taskDefinition(restoreOf(database).taskDefinition)).toMatchObject({
          Family: `pgkeep-${name}-restore-${key}`,
          RequiresCompatibilities: ['FARGATE'],
          NetworkMode: 'awsvpc',
          RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
          Cpu: String(environment.restore.cpu),
          Memory: String(environment.restore.memoryMiB),
          EphemeralStorage: { SizeInGiB: environment.restore.ephemeralStorageGiB },
          Volumes: [{ Name: 'tmp' }],
        });
        expect(containerOf(restoreOf(database).taskDefinition)).toMatchObject({
          Name: 'pgkeep',
          Command: ['restore'],
          // The same image asset as the backup tasks.
          Image: containerOf(stacks.pipeline.backups.get(database.name)!.taskDefinition).Image,
          ReadonlyRootFilesystem: true,
          MountPoints: [{ ContainerPath: '/tmp', SourceVolume: 'tmp', ReadOnly: false }],
          StopTimeout: 120,
          LogConfiguration: { LogDriver: 'awslogs', Options: expect.objectContaining({ 'awslogs-stream-prefix': key }) as unknown },
        });
      }
      expect(
        Object.keys(pipeline.findResources('AWS::ECS::TaskDefinition', { Properties: { Family: Match.stringLikeRegexp(`^pgkeep-${name}-restore-`) } })),
      ).toHaveLength(environment.databases.length);
    });

    it('log to the restore log group, kept as configured', () => {
      const logGroupId = pipelineId(stacks.pipeline.node.findChild('RestoreLogGroup'));
      // Named by CloudFormation: a retained log group with a fixed name blocks the next create.
      expect(resources[logGroupId]!.Properties).toEqual({ RetentionInDays: environment.logRetentionDays });
      for (const database of environment.databases) {
        expect((containerOf(restoreOf(database).taskDefinition).LogConfiguration as { Options: Record<string, unknown> }).Options['awslogs-group']).toEqual({
          Ref: logGroupId,
        });
      }
    });

    it('tell the task its bucket, environment, source database and SSL mode, and nothing secret', () => {
      for (const database of environment.databases) {
        const { PGKEEP_BUCKET: bucket, ...literals } = Object.fromEntries(
          containerOf(restoreOf(database).taskDefinition).Environment.map((variable) => [variable.Name, variable.Value]),
        );

        expect(storageOutputOf(bucket)).toMatch(/^PublishOutputRefBackupBucket/);
        expect(literals).toEqual({ PGKEEP_ENVIRONMENT: name, PGKEEP_RESTORE_SOURCE: database.name, PGSSLMODE: database.overrides.PGSSLMODE ?? 'require' });
      }
    });

    it("connect to the restore target from a secret, by default the database's own (a new database on the same server)", () => {
      for (const database of environment.databases) {
        const secretArn = secretArnOf(configuredSecretArn(database.restoreTargetSecret ?? database.secret), environment);

        expect(containerOf(restoreOf(database).taskDefinition).Secrets).toEqual([
          { Name: 'PGHOST', ValueFrom: `${secretArn}:host::` },
          { Name: 'PGPORT', ValueFrom: `${secretArn}:port::` },
          { Name: 'PGUSER', ValueFrom: `${secretArn}:username::` },
          { Name: 'PGPASSWORD', ValueFrom: `${secretArn}:password::` },
          { Name: 'PGDATABASE', ValueFrom: `${secretArn}:dbname::` },
        ]);
      }
    });

    it("each have their own execution role that can read only their restore target's secret", () => {
      for (const database of environment.databases) {
        const roleId = taskDefinition(restoreOf(database).taskDefinition).ExecutionRoleArn['Fn::GetAtt'][0];
        const statements = inlineStatementsOf(roleId);
        const secretStatements = statements.filter((statement) => actionsOf([statement]).some((action) => action.startsWith('secretsmanager:')));
        const reference = configuredSecretArn(database.restoreTargetSecret ?? database.secret);
        const expectedSecret = reference.startsWith('arn:') ? reference : `${secretArnOf(reference, environment)}-??????`;

        expect(secretStatements).toEqual([
          { Effect: 'Allow', Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Resource: expectedSecret },
        ]);
        for (const other of environment.databases.filter((candidate) => candidate !== database)) expect(JSON.stringify(statements)).not.toContain(other.secret);
        expect(
          actionsOf(statements).filter((action) => /^s3:|^iam:|^kms:(?!Decrypt$)|^secretsmanager:(?!DescribeSecret$|GetSecretValue$)/.test(action)),
        ).toEqual([]);
        if (database.secretKmsKeyArn && !database.restoreTargetSecret) {
          expect(statements).toContainEqual({
            Sid: 'DecryptRestoreTargetSecret',
            Effect: 'Allow',
            Action: 'kms:Decrypt',
            Resource: database.secretKmsKeyArn,
            Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${environment.region}.amazonaws.com` } },
          });
        }
        expect(roleId).not.toBe(taskDefinition(stacks.pipeline.backups.get(database.name)!.taskDefinition).ExecutionRoleArn['Fn::GetAtt'][0]);
      }
    });

    it(`share one task role that has only the storage stack's BackupReaderPolicy and pgkeep metrics${environment.vault ? ', and reads the vault copies' : ''}`, () => {
      for (const database of environment.databases)
        expect(taskDefinition(restoreOf(database).taskDefinition).TaskRoleArn['Fn::GetAtt'][0]).toBe(restoreTaskRoleId);

      expect(managedPolicyOutputsOf(restoreTaskRoleId)).toEqual([expect.stringMatching(new RegExp(`^PublishOutputRef${storageId(readerPolicy)}`))]);
      expect(inlineStatementsOf(restoreTaskRoleId)).toEqual([PUBLISH_METRICS, ...vaultCopyReads]);
      expect(resources[restoreTaskRoleId]!.Properties.AssumeRolePolicyDocument).toMatchObject({
        Statement: [{ Principal: { Service: 'ecs-tasks.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': environment.account } } }],
      });
    });
  });

  describe('what restores and drills may do to the bucket', () => {
    it('BackupReaderPolicy lists backups/, reads objects, versions and tags, requests retrievals under backups/, and decrypts only via S3', () => {
      expect(managedStatementsOf(readerPolicy)).toEqual([
        { Sid: 'ListBackups', Effect: 'Allow', Action: 's3:ListBucket', Resource: BUCKET_ARN, Condition: { StringLike: { 's3:prefix': 'backups/*' } } },
        { Sid: 'ReadBackupObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: BACKUP_OBJECTS },
        { Sid: 'ReadVerificationTags', Effect: 'Allow', Action: 's3:GetObjectTagging', Resource: BACKUP_OBJECTS },
        { Sid: 'RetrieveArchivedBackups', Effect: 'Allow', Action: 's3:RestoreObject', Resource: BACKUP_OBJECTS },
        {
          Sid: 'DecryptBackups',
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: { 'Fn::GetAtt': [BACKUP_KEY, 'Arn'] },
          Condition: { StringEquals: { 'kms:ViaService': `s3.${environment.region}.amazonaws.com` } },
        },
      ]);
    });

    it('DrillRecordWriterPolicy only puts objects under drills/, encrypted via S3', () => {
      expect(managedStatementsOf(drillWriterPolicy)).toEqual([
        { Sid: 'WriteDrillRecords', Effect: 'Allow', Action: 's3:PutObject', Resource: DRILL_RECORDS },
        {
          Sid: 'EncryptDrillRecordsWithBucketKey',
          Effect: 'Allow',
          Action: 'kms:GenerateDataKey',
          Resource: { 'Fn::GetAtt': [BACKUP_KEY, 'Arn'] },
          Condition: { StringEquals: { 'kms:ViaService': `s3.${environment.region}.amazonaws.com` } },
        },
      ]);
    });

    it('never lets the restore task write, delete or retag anything, nor the drill write outside drills/', () => {
      const forbidden =
        /^s3:(\*|Delete|PutObjectTagging|PutObjectAcl|PutObjectRetention|PutObjectLegalHold|PutBucket|PutLifecycle|AbortMultipartUpload|BypassGovernanceRetention)|^kms:(\*|Encrypt|ReEncrypt)|^\*$/;
      const restore = effectiveStatementsOf(restoreTaskRoleId);
      const drill = effectiveStatementsOf(drillTaskRoleId);

      expect(actionsOf(restore).filter((action) => forbidden.test(action) || action === 's3:PutObject' || action.startsWith('kms:GenerateDataKey'))).toEqual(
        [],
      );
      expect(actionsOf(drill).filter((action) => forbidden.test(action))).toEqual([]);
      const putting = drill.filter((statement) => actionsOf([statement]).includes('s3:PutObject'));
      expect(putting.map((statement) => statement.Resource)).toEqual([DRILL_RECORDS]);
    });
  });

  describe('the drill task definition', () => {
    it('is one ARM64 Fargate task definition running `drill`, sized for a throwaway PostgreSQL as configured', () => {
      expect(drillDefinition).toMatchObject({
        Family: `pgkeep-${name}-drill`,
        Cpu: String(environment.drill.cpu),
        Memory: String(environment.drill.memoryMiB),
        EphemeralStorage: { SizeInGiB: environment.drill.ephemeralStorageGiB },
        RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
        Volumes: [{ Name: 'tmp' }],
      });
      expect(containerOf(stacks.pipeline.drill.taskDefinition)).toMatchObject({
        Name: 'pgkeep',
        Command: ['drill'],
        ReadonlyRootFilesystem: true,
        MountPoints: [{ ContainerPath: '/tmp', SourceVolume: 'tmp', ReadOnly: false }],
        StopTimeout: 120,
        LogConfiguration: { LogDriver: 'awslogs', Options: expect.objectContaining({ 'awslogs-stream-prefix': 'drill' }) as unknown },
      });
      const logGroupId = pipelineId(stacks.pipeline.node.findChild('DrillLogGroup'));
      expect(resources[logGroupId]!.Properties).toEqual({ RetentionInDays: environment.logRetentionDays });
      expect((containerOf(stacks.pipeline.drill.taskDefinition).LogConfiguration as { Options: Record<string, unknown> }).Options['awslogs-group']).toEqual({
        Ref: logGroupId,
      });
    });

    it('tells the drill whether the bucket is under Object Lock, where its record must carry a checksum', () => {
      const { Environment: variables } = containerOf(stacks.pipeline.drill.taskDefinition) as { Environment: { Name: string; Value: unknown }[] };

      expect(variables).toContainEqual({ Name: 'PGKEEP_OBJECT_LOCK', Value: String(environment.objectLock !== undefined) });
    });

    it('drills every configured database and has no database secret at all', () => {
      const container = containerOf(stacks.pipeline.drill.taskDefinition);
      const variables = Object.fromEntries(container.Environment.map((variable) => [variable.Name, variable.Value]));

      expect(JSON.parse(variables.PGKEEP_DRILL_DATABASES as string)).toEqual(environment.databases.map((database) => database.name));
      expect(variables.PGKEEP_ENVIRONMENT).toBe(name);
      expect(storageOutputOf(variables.PGKEEP_BUCKET)).toMatch(/^PublishOutputRefBackupBucket/);
      expect(storageOutputOf(variables.PGKEEP_KMS_KEY_ID)).toMatch(/^PublishOutputFnGetAttBackupKey\w+Arn/);
      expect(container.Secrets).toBeUndefined();
      const executionStatements = inlineStatementsOf(drillDefinition.ExecutionRoleArn['Fn::GetAtt'][0]);
      expect(actionsOf(executionStatements).filter((action) => /^(secretsmanager|kms|s3):/.test(action))).toEqual([]);
    });

    it(`runs with its own task role: BackupReaderPolicy, DrillRecordWriterPolicy and pgkeep metrics${environment.vault ? ', and reads the vault copies' : ''}`, () => {
      expect(drillDefinition.TaskRoleArn['Fn::GetAtt'][0]).toBe(drillTaskRoleId);
      expect(drillTaskRoleId).not.toBe(restoreTaskRoleId);
      expect(managedPolicyOutputsOf(drillTaskRoleId)).toEqual([
        expect.stringMatching(new RegExp(`^PublishOutputRef${storageId(readerPolicy)}`)),
        expect.stringMatching(new RegExp(`^PublishOutputRef${storageId(drillWriterPolicy)}`)),
      ]);
      expect(inlineStatementsOf(drillTaskRoleId)).toEqual([PUBLISH_METRICS, ...vaultCopyReads]);
    });
  });

  describe('the drill schedule', () => {
    const schedule = resources[pipelineId(stacks.pipeline.drill.schedule)]!.Properties as { Target: { RoleArn: { 'Fn::GetAtt': [string, string] } } } & Record<
      string,
      unknown
    >;

    it('runs the drill task on Fargate in the private subnets, no public IP, at the configured time, with retries and the dead-letter queue', () => {
      expect(schedule).toMatchObject({
        Name: `pgkeep-${name}-drill`,
        GroupName: `pgkeep-${name}-drill`,
        ScheduleExpression: `cron(${environment.drill.schedule.cron})`,
        ScheduleExpressionTimezone: environment.drill.schedule.timezone,
        State: 'ENABLED',
        Target: {
          Arn: { 'Fn::GetAtt': [pipelineId(stacks.pipeline.cluster), 'Arn'] },
          EcsParameters: {
            TaskDefinitionArn: { Ref: pipelineId(stacks.pipeline.drill.taskDefinition) },
            LaunchType: 'FARGATE',
            NetworkConfiguration: {
              AwsvpcConfiguration: { AssignPublicIp: 'DISABLED', Subnets: subnetIds, SecurityGroups: [environment.network!.securityGroupId] },
            },
          },
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 6 * 3600 },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^ScheduleDeadLetterQueue/), 'Arn'] } },
        },
      });
      // The example configurations keep the default: weekly, Sunday 04:00 UTC.
      expect(environment.drill.schedule).toEqual({ cron: '0 4 ? * SUN *', timezone: 'UTC' });
    });

    it('starts it with a role that may run only the drill task definition and pass only its roles', () => {
      const statements = inlineStatementsOf(schedule.Target.RoleArn['Fn::GetAtt'][0]);

      expect(actionsOf(statements).sort()).toEqual(['ecs:RunTask', 'iam:PassRole', 'sqs:SendMessage']);
      expect(statements.find((statement) => statement.Action === 'ecs:RunTask')?.Resource).toEqual({ Ref: pipelineId(stacks.pipeline.drill.taskDefinition) });
      expect(statements.find((statement) => statement.Action === 'iam:PassRole')?.Resource).toEqual([
        { 'Fn::GetAtt': [drillDefinition.ExecutionRoleArn['Fn::GetAtt'][0], 'Arn'] },
        { 'Fn::GetAtt': [drillTaskRoleId, 'Arn'] },
      ]);
    });
  });

  describe('notifications when a restore or drill task stops', () => {
    /** The environment's one rule with this name, its families and its message. */
    const rule = (suffix: string, families: string, detail: Record<string, unknown>) => {
      const matching = Object.values(pipeline.findResources('AWS::Events::Rule', { Properties: { Name: `pgkeep-${name}-${suffix}` } }));
      expect(matching, suffix).toHaveLength(1);
      const properties = matching[0]!.Properties as {
        EventPattern: { detail: Record<string, unknown> };
        Targets: { Arn: unknown; InputTransformer: { InputTemplate: unknown } }[];
      };
      expect(properties.Targets[0]!.Arn).toEqual({ Ref: pipelineId(stacks.pipeline.alertsTopic) });
      expect(properties.EventPattern.detail).toEqual({
        clusterArn: [{ 'Fn::GetAtt': [pipelineId(stacks.pipeline.cluster), 'Arn'] }],
        lastStatus: ['STOPPED'],
        taskDefinitionArn: [{ prefix: `arn:aws:ecs:${environment.region}:${environment.account}:task-definition/${families}` }],
        ...detail,
      });
      return resolveTemplateText(properties.Targets[0]!.InputTransformer.InputTemplate);
    };

    it('tells a failed restore from an archived backup (exit 3) and a restore with differences (exit 4), for every database', () => {
      // Every database's restore family: pgkeep-<env>-restore-<Key>.
      const families = `pgkeep-${name}-restore-`;
      const failed = rule('restore-failed', families, { containers: { name: ['pgkeep'], exitCode: [{ 'anything-but': [0, 3, 4] }] } });
      const archived = rule('restore-archived', families, { containers: { name: ['pgkeep'], exitCode: [3] } });
      const differences = rule('restore-differences', families, { containers: { name: ['pgkeep'], exitCode: [4] } });
      const didNotStart = rule('restore-not-started', families, { stopCode: ['TaskFailedToStart'] });

      expect(failed).toMatch(
        new RegExp(
          `pgkeep ${name}: a restore FAILED with exit code <detail-containers-0--exitCode>.*Task definition: <detail-taskDefinitionArn> \\(its family ends with the database\\)`,
        ),
      );
      expect(failed).toMatch(new RegExp(`log-groups/log-group/Ref-${pipelineId(stacks.pipeline.node.findChild('RestoreLogGroup'))} `));
      expect(archived).toMatch(/information, not a failure.*requested a retrieval \(exit code 3\).*run the same restore again once it is retrieved/);
      expect(archived).not.toMatch(/FAILED/);
      expect(differences).toMatch(/DIFFERS from the backup's manifest \(exit code 4/);
      expect(didNotStart).toMatch(/could not start.*restore target secret/);
    });

    it('reports a drill that failed or could not start', () => {
      const failed = rule('drill-task-failed', `pgkeep-${name}-drill:`, { containers: { name: ['pgkeep'], exitCode: [{ 'anything-but': 0 }] } });
      const didNotStart = rule('drill-not-started', `pgkeep-${name}-drill:`, { stopCode: ['TaskFailedToStart'] });

      expect(failed).toMatch(new RegExp(`pgkeep ${name}: the restore drill FAILED with exit code <detail-containers-0--exitCode>.*drill failed lines`));
      expect(failed).toMatch(
        new RegExp(`log-groups/log-group/Ref-${pipelineId(stacks.pipeline.node.findChild('DrillLogGroup'))} \\(stream drill/pgkeep/<task id>`),
      );
      expect(didNotStart).toMatch(new RegExp(`pgkeep ${name}: the restore drill could not start`));
    });
  });

  describe('alarms', () => {
    const topic = [{ Ref: pipelineId(stacks.pipeline.alertsTopic) }];
    const alarmOf = (construct: { node: { defaultChild?: unknown } }) => resources[pipelineId(construct)]!.Properties;

    describe.each(environment.databases.map((database) => [database.name] as const))('for database %s', (databaseName) => {
      const alarms = stacks.pipeline.restoreAlarms.get(databaseName)!;
      const key = databaseResourceKey(databaseName);
      const dimensions = [
        { Name: 'Database', Value: databaseName },
        { Name: 'Environment', Value: name },
      ];

      it('alarms on a failed drill (DrillFailed ≥ 1), missing data being fine, ALARM and OK to the topic', () => {
        expect(alarmOf(alarms.drillFailed)).toMatchObject({
          AlarmName: `pgkeep-${name}-${key}-drill-failed`,
          Namespace: 'pgkeep',
          MetricName: METRIC.drillFailed,
          Dimensions: dimensions,
          Statistic: 'Sum',
          Period: 3600,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
          AlarmActions: topic,
          OKActions: topic,
          AlarmDescription: expect.stringMatching(
            new RegExp(`database "${databaseName}".*RunDrillCommand.*Runbook: docs/operations\\.md#${RUNBOOK_SECTIONS.drillFailed}$`),
          ) as unknown,
        });
      });

      it("alarms when no drill succeeded for 8 days: no success in 7 days (missing counts) AND no drill started in the last day, within CloudWatch's 7-day limit", () => {
        expect(environment.drill.alarmAfterDays).toBe(8);
        const overdue = resources[pipelineId(alarms.drillOverdue)]!;
        const weekWithoutSuccess = alarmOf(alarms.noDrillSuccessInAWeek!);
        const notAttempted = Object.values(resources).find((resource) => resource.Properties.AlarmName === `pgkeep-${name}-drill-not-attempted`)!;

        expect(overdue.Type).toBe('AWS::CloudWatch::CompositeAlarm');
        expect(overdue.Properties).toMatchObject({
          AlarmName: `pgkeep-${name}-${key}-drill-overdue`,
          AlarmActions: topic,
          OKActions: topic,
          AlarmDescription: expect.stringMatching(new RegExp(`for 8 days.*Runbook: docs/operations\\.md#${RUNBOOK_SECTIONS.drillOverdue}$`)) as unknown,
        });
        expect(resolveTemplateText(overdue.Properties.AlarmRule)).toBe(
          `(ALARM("GetAtt-${pipelineId(alarms.noDrillSuccessInAWeek!)}-Arn") AND ALARM("GetAtt-${pipelineId({ node: { defaultChild: stacks.pipeline.node.findChild('DrillNotAttemptedAlarm').node.defaultChild } })}-Arn"))`,
        );
        expect(weekWithoutSuccess).toMatchObject({
          Namespace: 'pgkeep',
          MetricName: METRIC.drillSucceeded,
          Dimensions: dimensions,
          Statistic: 'Sum',
          Period: 3600,
          EvaluationPeriods: 168,
          DatapointsToAlarm: 168,
          Threshold: 1,
          ComparisonOperator: 'LessThanThreshold',
          TreatMissingData: 'breaching',
        });
        expect(notAttempted.Properties).toMatchObject({
          Namespace: 'AWS/Scheduler',
          MetricName: 'InvocationAttemptCount',
          Dimensions: [{ Name: 'ScheduleGroup', Value: `pgkeep-${name}-drill` }],
          Statistic: 'Sum',
          Period: 3600,
          EvaluationPeriods: 24,
          DatapointsToAlarm: 24,
          ComparisonOperator: 'LessThanThreshold',
          TreatMissingData: 'breaching',
        });
        // Only the composite notifies; its inputs would page on every weekly drill otherwise.
        for (const input of [weekWithoutSuccess, notAttempted.Properties]) {
          expect(input.AlarmActions).toBeUndefined();
          expect(input.OKActions).toBeUndefined();
          // CloudWatch evaluates a metric alarm over at most 7 days.
          expect((input.Period as number) * (input.EvaluationPeriods as number)).toBeLessThanOrEqual(7 * 86_400);
        }
      });

      it('alarms on a restore whose result differs from its manifest (RestoreMismatches ≥ 1)', () => {
        expect(alarmOf(alarms.restoreDifferences)).toMatchObject({
          AlarmName: `pgkeep-${name}-${key}-restore-differences`,
          Namespace: 'pgkeep',
          MetricName: METRIC.restoreMismatches,
          Dimensions: dimensions,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: topic,
          OKActions: topic,
          AlarmDescription: expect.stringMatching(new RegExp(`Runbook: docs/operations\\.md#${RUNBOOK_SECTIONS.restoreDifferences}$`)) as unknown,
        });
      });
    });
  });

  describe('the dashboard', () => {
    const dashboard = Object.values(pipeline.findResources('AWS::CloudWatch::Dashboard'))[0] as Resource;
    const body = JSON.parse(resolveTemplateText(dashboard.Properties.DashboardBody)) as {
      widgets: { type: string; properties: { title?: string; alarms?: string[]; metrics?: unknown[][] } }[];
    };

    it('shows the drill RTO, drill outcomes, restore duration and restore outcomes per database', () => {
      const titled = (title: RegExp) => body.widgets.find((widget) => title.test(widget.properties.title ?? ''))?.properties.metrics ?? [];
      const perDatabase = (metrics: unknown[][], metricName: string) =>
        environment.databases.every((database) => metrics.some((line) => line[0] === 'pgkeep' && line[1] === metricName && line.includes(database.name)));

      expect(perDatabase(titled(/RTO/), METRIC.drillRestoreSeconds)).toBe(true);
      for (const metricName of [METRIC.drillSucceeded, METRIC.drillFailed, METRIC.drillMismatches])
        expect(perDatabase(titled(/^Restore drill outcomes/), metricName), metricName).toBe(true);
      expect(perDatabase(titled(/^Restore duration/), METRIC.restoreDurationSeconds)).toBe(true);
      for (const metricName of [METRIC.restoreSucceeded, METRIC.restoreFailed, METRIC.restoreMismatches])
        expect(perDatabase(titled(/^Restore outcomes/), metricName), metricName).toBe(true);
    });

    it('shows the state of the drill and restore alarms, the composite included', () => {
      const shown = body.widgets.find((widget) => widget.type === 'alarm')!.properties.alarms!;
      for (const alarms of stacks.pipeline.restoreAlarms.values()) {
        expect(alarms.names).toHaveLength(alarms.all.length);
        for (const alarmName of alarms.names) expect(shown).toContain(`arn:aws:cloudwatch:${environment.region}:${environment.account}:alarm:${alarmName}`);
      }
    });
  });

  describe('the outputs', () => {
    const outputs = pipeline.toJSON().Outputs as Record<string, { Value: unknown; Description?: string }>;
    const wordsOf = (outputKey: string) => {
      expect(outputs[outputKey]?.Description, outputKey).toMatch(/^.{40,}$/);
      const words = parseShellWords(resolveTemplateText(outputs[outputKey]!.Value));
      expect(
        words.every((word) => typeof word === 'string'),
        'one plain shell command',
      ).toBe(true);
      expect(words.slice(0, 3)).toEqual(['aws', 'ecs', 'run-task']);
      return {
        words,
        option: (flag: string) => {
          const index = words.indexOf(flag);
          expect(index, `${flag} in ${JSON.stringify(words)}`).toBeGreaterThan(0);
          return words[index + 1] as string;
        },
      };
    };
    const network = { awsvpcConfiguration: { subnets: subnetIds, securityGroups: [environment.network!.securityGroupId], assignPublicIp: 'DISABLED' } };

    it.each(environment.databases.map((database) => [database.name, database] as const))(
      'RestoreLatestCommand restores the latest backup of %s with its restore task definition',
      (_databaseName, database) => {
        const { option } = wordsOf(`RestoreLatestCommand${databaseResourceKey(database.name)}`);
        const overrides = JSON.parse(option('--overrides')) as { containerOverrides: { name: string; environment: { name: string; value: string }[] }[] };

        expect(option('--cluster')).toBe(`Ref-${pipelineId(stacks.pipeline.cluster)}`);
        expect(option('--task-definition')).toBe(`pgkeep-${name}-restore-${databaseResourceKey(database.name)}`);
        expect(option('--region')).toBe(environment.region);
        expect(option('--launch-type')).toBe('FARGATE');
        expect(JSON.parse(option('--network-configuration'))).toEqual(network);
        expect(overrides).toEqual({
          containerOverrides: [
            {
              name: 'pgkeep',
              environment: [
                { name: 'PGKEEP_RESTORE_SOURCE', value: database.name },
                { name: 'PGKEEP_RESTORE_BACKUP', value: 'latest' },
              ],
            },
          ],
        });
        // No target database and no replace mode: the restore creates a new database.
        expect(JSON.stringify(overrides)).not.toMatch(/PGKEEP_RESTORE_(TARGET_DATABASE|MODE|CONFIRM)/);
        expect(option('--started-by')).toBe('pgkeep-manual-restore');
      },
    );

    it('RunDrillCommand runs the drill task definition now, in the private subnets', () => {
      const { option, words } = wordsOf('RunDrillCommand');

      expect(option('--cluster')).toBe(`Ref-${pipelineId(stacks.pipeline.cluster)}`);
      expect(option('--task-definition')).toBe(`pgkeep-${name}-drill`);
      expect(option('--launch-type')).toBe('FARGATE');
      expect(JSON.parse(option('--network-configuration'))).toEqual(network);
      expect(words).not.toContain('--overrides');
    });
  });
});

describe('restore and drill configuration', () => {
  function examples(): { environments: Record<string, Record<string, unknown> & { databases: Record<string, unknown>[] }> } {
    return structuredClone(PGKEEP_ENVIRONMENTS);
  }
  function synthFailure(input: unknown): Error {
    const scratch = scratchApp();
    try {
      addPgkeepStacks(scratch.app, { config: input, environment: 'dev' });
    } catch (error) {
      if (error instanceof Error) return error;
      throw error;
    } finally {
      scratch.dispose();
    }
    throw new Error('expected the configuration to be rejected');
  }

  it("defaults to a weekly drill on Sunday 04:00 UTC that alarms after 8 days, and restore tasks of the backup task's default size", () => {
    const defaults = parsePgkeepConfig({ environments: { solo: { ...examples().environments.dev, drill: undefined, restore: undefined } } }).environments.solo!;

    expect(defaults.drill).toEqual({
      schedule: { cron: '0 4 ? * SUN *', timezone: 'UTC' },
      cpu: 2048,
      memoryMiB: 8192,
      ephemeralStorageGiB: 50,
      alarmAfterDays: 8,
    });
    expect(defaults.restore).toEqual({ cpu: 1024, memoryMiB: 2048, ephemeralStorageGiB: 21 });
  });

  it('restores into a dedicated target secret when configured, and only that one is readable', () => {
    const input = examples();
    input.environments.dev!.databases[0]!.restoreTargetSecret = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:pgkeep/dev/restore-target-XyZ123';
    const environment = synthesizeEnvironment(input, 'dev');
    try {
      const restore = environment.stacks.pipeline.restores.get('orders')!;
      const definition = (environment.pipeline.toJSON().Resources as Record<string, unknown>)[
        environment.stacks.pipeline.getLogicalId(restore.taskDefinition.node.defaultChild as never)
      ] as { Properties: { ContainerDefinitions: ContainerDefinition[] } };
      const policies = JSON.stringify(
        environment.pipeline.findResources('AWS::IAM::Policy', {
          Properties: { Roles: [{ Ref: environment.stacks.pipeline.getLogicalId(restore.executionRole.node.defaultChild as never) }] },
        }),
      );

      expect(definition.Properties.ContainerDefinitions[0]!.Secrets?.[0]).toEqual({
        Name: 'PGHOST',
        ValueFrom: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:pgkeep/dev/restore-target-XyZ123:host::',
      });
      expect(policies).toContain('restore-target-XyZ123');
      expect(policies).not.toContain('pgkeep/dev/orders');
    } finally {
      environment.dispose();
    }
  });

  it("uses a single 7-day-or-shorter alarm when alarmAfterDays fits CloudWatch's window", () => {
    const input = examples();
    input.environments.dev!.drill = { schedule: { cron: '0 4 * * ? *', timezone: 'UTC' }, alarmAfterDays: 2 };
    const environment = synthesizeEnvironment(input, 'dev');
    try {
      const overdue = environment.stacks.pipeline.restoreAlarms.get('orders')!.drillOverdue;
      const resource = (environment.pipeline.toJSON().Resources as Record<string, Resource>)[
        environment.stacks.pipeline.getLogicalId(overdue.node.defaultChild as never)
      ]!;

      expect(resource.Type).toBe('AWS::CloudWatch::Alarm');
      expect(resource.Properties).toMatchObject({
        MetricName: METRIC.drillSucceeded,
        Period: 3600,
        EvaluationPeriods: 48,
        DatapointsToAlarm: 48,
        TreatMissingData: 'breaching',
      });
      expect(environment.pipeline.findResources('AWS::CloudWatch::CompositeAlarm')).toEqual({});
    } finally {
      environment.dispose();
    }
  });

  it('rejects a drill alarm period that a regular drill would always exceed, or one longer than 14 days', () => {
    const tooShort = examples();
    tooShort.environments.dev!.drill = { alarmAfterDays: 7 };
    expect(synthFailure(tooShort).message).toMatch(
      /environments\.dev\.drill\.alarmAfterDays: 7 days is not longer than the drill schedule's longest gap between runs \(7 days\)/,
    );

    const tooLong = examples();
    tooLong.environments.dev!.drill = { alarmAfterDays: 15 };
    expect(synthFailure(tooLong).message).toContain('environments.dev.drill.alarmAfterDays: at most 14 days');
  });

  it('rejects a drill schedule with more than 7 days between runs when the alarm needs the two-alarm composite', () => {
    const input = examples();
    input.environments.dev!.drill = { schedule: { cron: '0 4 1,11,21 * ? *', timezone: 'UTC' }, alarmAfterDays: 14 };

    const error = synthFailure(input);

    expect(error).toBeInstanceOf(PgkeepConfigError);
    expect(error.message).toContain('environments.dev.drill.schedule.cron: the drill schedule leaves up to');
  });

  it('rejects a restore target secret from another account, and a restore-secret KMS key without a restore secret', () => {
    const input = examples();
    input.environments.dev!.databases[0]!.restoreTargetSecret = 'arn:aws:secretsmanager:eu-west-1:999999999999:secret:elsewhere-AbCdEf';
    expect(synthFailure(input).message).toContain(
      "environments.dev.databases[0].restoreTargetSecret: the secret must be in this environment's account and region",
    );

    const orphan = examples();
    orphan.environments.dev!.databases[0]!.restoreTargetSecretKmsKeyArn = 'arn:aws:kms:eu-west-1:111111111111:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d';
    expect(synthFailure(orphan).message).toContain('environments.dev.databases[0].restoreTargetSecretKmsKeyArn: only applies with restoreTargetSecret');
  });

  it('rejects a drill size Fargate does not offer', () => {
    const input = examples();
    input.environments.dev!.drill = { cpu: 1024, memoryMiB: 16384 };

    expect(synthFailure(input).message).toContain('environments.dev.drill.memoryMiB: 16384 MiB cannot be paired with 1024 CPU units on Fargate');
  });
});
