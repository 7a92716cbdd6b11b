import { VAULT_REPLICATED_PREFIXES, vaultBucketName } from '../../catalog/vault.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Template } from 'aws-cdk-lib/assertions';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { METRIC, METRICS_NAMESPACE } from '../../catalog/metrics.ts';
import { functionSettings } from '../../catalog/function-settings.ts';
import { RUNBOOK_SECTIONS } from '../../infra/backup-alarms.ts';
import { databaseResourceKey, retentionPolicy } from '../../infra/config.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import {
  BACKUP_BUCKET,
  BACKUP_KEY,
  BACKUP_OBJECTS,
  BUCKET_ARN,
  resolveTemplateText,
  synthesizeShippedEnvironments,
  actionsOf,
  storageOutputOf,
} from '../support/fixtures/infra-synth.ts';
import type { Resource, Statement } from '../support/fixtures/infra-synth.ts';

const { config, synthesized } = synthesizeShippedEnvironments();

const BACKUP_MANIFESTS = { 'Fn::Join': ['', [BUCKET_ARN, '/backups/*.manifest.json']] };
const LIST_BACKUPS = {
  Sid: 'ListBackups',
  Effect: 'Allow',
  Action: 's3:ListBucket',
  Resource: BUCKET_ARN,
  Condition: { StringLike: { 's3:prefix': 'backups/*' } },
};
const PUBLISH_METRICS = {
  Sid: 'PublishBackupMetrics',
  Effect: 'Allow',
  Action: 'cloudwatch:PutMetricData',
  Resource: '*',
  Condition: { StringEquals: { 'cloudwatch:namespace': METRICS_NAMESPACE } },
};

/** What the backup, restore and drill tasks and the three functions publish (catalog/metrics.ts), all on the dashboard. */
const DASHBOARD_METRICS = [
  METRIC.backupSucceeded,
  METRIC.backupFailed,
  METRIC.backupBytes,
  METRIC.backupDurationSeconds,
  METRIC.backupThroughputMBps,
  METRIC.backupCompressionRatio,
  METRIC.backupVerified,
  METRIC.backupVerificationFailed,
  METRIC.backupUnverifiable,
  METRIC.newestVerifiedBackupAgeSeconds,
  METRIC.newestVerifiedBackupBytes,
  METRIC.newestVerifiedBackupSizeRatio,
  METRIC.futureDatedBackups,
  METRIC.retentionKept,
  METRIC.retentionDeleted,
  METRIC.retentionDeletedBytes,
  METRIC.retentionErrors,
  METRIC.restoreSucceeded,
  METRIC.restoreFailed,
  METRIC.restoreDurationSeconds,
  METRIC.restoreMismatches,
  METRIC.drillSucceeded,
  METRIC.drillFailed,
  METRIC.drillRestoreSeconds,
  METRIC.drillMismatches,
];

/** What the spec says each example database's thresholds come out as. */
const EXPECTED_THRESHOLDS: Record<string, Record<string, { staleHours: number; minimumBytes: number; minimumRatio: number }>> = {
  // 02:00 Europe/Dublin daily: 25 h across the autumn clock change, + 2 h margin.
  dev: { orders: { staleHours: 27, minimumBytes: 1024 * 1024, minimumRatio: 0.5 } },
  prod: {
    // 01:30 Europe/Berlin daily: 25 h + 2 h; its own 100 MiB floor.
    orders: { staleHours: 27, minimumBytes: 100 * 1024 * 1024, minimumRatio: 0.5 },
    // Every 6 h in UTC: 6 h + 2 h.
    billing: { staleHours: 8, minimumBytes: 1024 * 1024, minimumRatio: 0.5 },
  },
};

/** Every IAM statement in a template: inline policies, managed policies and roles' own policies. */
function allStatements(template: Template): Statement[] {
  const documents = Object.values(template.toJSON().Resources as Record<string, Resource>).flatMap((resource) => {
    if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') return [resource.Properties.PolicyDocument];
    if (resource.Type === 'AWS::IAM::Role')
      return ((resource.Properties.Policies as { PolicyDocument: unknown }[] | undefined) ?? []).map((policy) => policy.PolicyDocument);
    return [];
  });
  return documents.flatMap((document) => (document as { Statement: Statement[] }).Statement);
}

describe.each(['dev', 'prod'])("the %s environment's verification, health and retention functions", (name) => {
  const { pipeline, storage, stacks } = synthesized[name]!;
  const environment = config.environments[name]!;
  const pipelineId = (construct: { node: { defaultChild?: unknown } }) => stacks.pipeline.getLogicalId(construct.node.defaultChild as never);
  const storageId = (construct: { node: { defaultChild?: unknown } }) => stacks.storage.getLogicalId(construct.node.defaultChild as never);
  const resources = pipeline.toJSON().Resources as Record<string, Resource>;
  const functions = {
    verify: stacks.pipeline.verification.function,
    health: stacks.pipeline.healthCheck.function,
    retention: stacks.pipeline.retention.function,
  };
  const accessPolicies = {
    verify: stacks.storage.accessPolicies.verifier,
    health: stacks.storage.accessPolicies.healthReader,
    retention: stacks.storage.accessPolicies.retentionEnforcer,
  };
  type FunctionName = keyof typeof functions;
  const functionResource = (fn: FunctionName) =>
    resources[pipelineId(functions[fn])]!.Properties as { Environment: { Variables: Record<string, unknown> } } & Record<string, unknown>;
  const variablesOf = (fn: FunctionName) => functionResource(fn).Environment.Variables;
  const inlineStatementsOf = (fn: FunctionName): Statement[] => {
    const roleId = pipelineId(functions[fn].role);
    return Object.values(resources)
      .filter((resource) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
      .flatMap((resource) => (resource.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  };
  const accessStatementsOf = (fn: FunctionName): Statement[] =>
    ((storage.findResources('AWS::IAM::ManagedPolicy')[storageId(accessPolicies[fn])] as Resource).Properties.PolicyDocument as { Statement: Statement[] })
      .Statement;
  /** Everything the function's role may do: its inline statements and its storage-stack policy. */
  const effectiveStatementsOf = (fn: FunctionName) => [...inlineStatementsOf(fn), ...accessStatementsOf(fn)];
  const writeOwnLogGroup = (fn: FunctionName) => ({
    Sid: 'WriteOwnLogGroup',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: { 'Fn::GetAtt': [pipelineId(functions[fn].logGroup), 'Arn'] },
  });

  describe('the functions', () => {
    it.each([
      ['verify', `pgkeep-${name}-verify-backup`, 900, 1024],
      ['health', `pgkeep-${name}-backup-health`, 300, 256],
      ['retention', `pgkeep-${name}-enforce-retention`, 900, 512],
    ] as const)('%s runs as %s on ARM64 Node.js 24, with its timeout, memory and its own log group kept as configured', (fn, functionName, timeout, memory) => {
      const properties = functionResource(fn);
      const logGroupId = pipelineId(functions[fn].logGroup);

      expect(properties).toMatchObject({
        FunctionName: functionName,
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Timeout: timeout,
        MemorySize: memory,
        LoggingConfig: { LogGroup: { Ref: logGroupId } },
      });
      // No LogGroupName: the retained log group would block the next deployment's create (test/infra/deploy-rules.test.ts).
      expect(resources[logGroupId]!.Properties).toEqual({ RetentionInDays: environment.logRetentionDays });
    });

    /** The settings each handler reads, as catalog/function-settings.ts defines them (the handlers parse nothing else). */
    const settingsOf = { verify: functionSettings.verifyBackup, health: functionSettings.backupHealth, retention: functionSettings.enforceRetention } as const;
    /** A reference CloudFormation resolves at deploy time (the topic ARN, the bucket name) stands in as its JSON text. */
    const deployedEnvironment = (fn: FunctionName): Record<string, string> =>
      Object.fromEntries(Object.entries(variablesOf(fn)).map(([variable, value]) => [variable, typeof value === 'string' ? value : JSON.stringify(value)]));
    const reference = (value: unknown) => JSON.stringify(value);

    it.each(['verify', 'health', 'retention'] as const)(
      '%s has every setting its handler reads either in its environment or defaulted in the catalog, and no PGKEEP_ variable the handler does not read',
      (fn) => {
        const definitions: Record<string, { expectation: string; default?: unknown }> = settingsOf[fn].definitions;
        const variables = variablesOf(fn);

        expect(Object.keys(definitions).filter((setting) => !(setting in variables) && definitions[setting]!.default === undefined)).toEqual([]);
        expect(Object.keys(variables).filter((variable) => variable.startsWith('PGKEEP_') && !(variable in definitions))).toEqual([]);
      },
    );

    it('tells verify-backup its environment, the alerts topic and the streaming limit (the catalog default)', () => {
      expect(settingsOf.verify.parse(deployedEnvironment('verify'))).toEqual({
        PGKEEP_ENVIRONMENT: name,
        PGKEEP_ALERT_TOPIC_ARN: reference({ Ref: pipelineId(stacks.pipeline.alertsTopic) }),
        PGKEEP_VERIFY_MAX_STREAM_MB: functionSettings.verifyBackup.definitions.PGKEEP_VERIFY_MAX_STREAM_MB.default,
        PGKEEP_VERIFY_SITE: 'primary',
        // Read only in the vault (PGKEEP_VERIFY_SITE=vault); the primary's function is given none.
        PGKEEP_VAULT_LOCK_DAYS: functionSettings.verifyBackup.definitions.PGKEEP_VAULT_LOCK_DAYS.default,
      });
      // What the default is, in words: 10 GiB, above which only the store's own checksum is affordable.
      expect(variablesOf('verify').PGKEEP_VERIFY_MAX_STREAM_MB).toBe('10240');
    });

    /** Where the vault is (blank without one): test/infra/vault.test.ts has the rest. */
    const vaultSettings = environment.vault
      ? { PGKEEP_VAULT_BUCKET: vaultBucketName(name, environment.vault.account, environment.vault.region), PGKEEP_VAULT_REGION: environment.vault.region }
      : { PGKEEP_VAULT_BUCKET: '', PGKEEP_VAULT_REGION: '' };

    it(`tells backup-health the bucket, the configured databases and the size baseline${environment.vault ? ', and where the vault is' : ''}`, () => {
      const settings = settingsOf.health.parse(deployedEnvironment('health'));

      expect(storageOutputOf(variablesOf('health').PGKEEP_BUCKET)).toMatch(/^PublishOutputRefBackupBucket/);
      expect(settings).toEqual({
        PGKEEP_BUCKET: reference(variablesOf('health').PGKEEP_BUCKET),
        PGKEEP_ENVIRONMENT: name,
        PGKEEP_DATABASES: environment.databases.map((database) => database.name),
        PGKEEP_HEALTH_BASELINE_COUNT: environment.alarms.sizeBaselineBackups,
        ...vaultSettings,
      });
    });

    it('tells enforce-retention the bucket, the databases, the configured policy, dry run, Object Lock and grace period', () => {
      const settings = settingsOf.retention.parse(deployedEnvironment('retention'));

      expect(storageOutputOf(variablesOf('retention').PGKEEP_BUCKET)).toMatch(/^PublishOutputRefBackupBucket/);
      expect(settings).toEqual({
        PGKEEP_BUCKET: reference(variablesOf('retention').PGKEEP_BUCKET),
        PGKEEP_ENVIRONMENT: name,
        PGKEEP_DATABASES: environment.databases.map((database) => database.name),
        PGKEEP_RETENTION_POLICY: retentionPolicy(environment.retention),
        PGKEEP_RETENTION_DRY_RUN: environment.retention.dryRun,
        PGKEEP_OBJECT_LOCK: environment.objectLock !== undefined,
        PGKEEP_INCOMPLETE_GRACE_HOURS: environment.retention.incompleteGraceHours,
        ...vaultSettings,
        PGKEEP_RETENTION_REQUIRE_OFFSITE: environment.vault?.retentionWaitsForOffsite ?? false,
      });
    });
  });

  describe('verification on upload', () => {
    it('invokes verify-backup for every object created under backups/ whose key ends in .manifest.json, and nothing else', () => {
      const notifications = Object.values(resources).filter((resource) => resource.Type === 'Custom::S3BucketNotifications');

      expect(notifications).toHaveLength(1);
      expect(storageOutputOf(notifications[0]!.Properties.BucketName)).toMatch(/^PublishOutputRefBackupBucket/);
      expect(notifications[0]!.Properties).toMatchObject({
        // Merged into whatever else the bucket notifies, never replacing it.
        Managed: false,
      });
      const configuration = notifications[0]!.Properties.NotificationConfiguration as {
        LambdaFunctionConfigurations: { Events: string[]; Filter: { Key: { FilterRules: { Name: string; Value: string }[] } }; LambdaFunctionArn: unknown }[];
      };
      expect(Object.keys(configuration)).toEqual(['LambdaFunctionConfigurations']);
      expect(configuration.LambdaFunctionConfigurations).toHaveLength(1);
      const [target] = configuration.LambdaFunctionConfigurations;
      expect(target!.Events).toEqual(['s3:ObjectCreated:*']);
      expect(target!.LambdaFunctionArn).toEqual({ 'Fn::GetAtt': [pipelineId(functions.verify), 'Arn'] });
      expect([...target!.Filter.Key.FilterRules].sort((a, b) => a.Name.localeCompare(b.Name))).toEqual([
        { Name: 'prefix', Value: 'backups/' },
        { Name: 'suffix', Value: '.manifest.json' },
      ]);
    });

    it('lets only S3, for the backup bucket in this account, invoke verify-backup', () => {
      const permissions = Object.values(resources).filter(
        (resource) =>
          resource.Type === 'AWS::Lambda::Permission' &&
          JSON.stringify(resource.Properties.FunctionName) === JSON.stringify({ 'Fn::GetAtt': [pipelineId(functions.verify), 'Arn'] }),
      );

      expect(permissions).toHaveLength(1);
      expect(permissions[0]!.Properties).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: 's3.amazonaws.com', SourceAccount: environment.account });
      expect(storageOutputOf(permissions[0]!.Properties.SourceArn)).toMatch(/^PublishOutputFnGetAttBackupBucket26B8E51CArn/);
    });

    it("leaves the bucket's notification configuration to that custom resource: the storage stack declares none", () => {
      const bucket = storage.findResources('AWS::S3::Bucket')[BACKUP_BUCKET] as Resource;

      expect(bucket.Properties.NotificationConfiguration).toBeUndefined();
    });
  });

  describe('the schedules', () => {
    const scheduleOf = (fn: 'health' | 'retention') =>
      resources[pipelineId(fn === 'health' ? stacks.pipeline.healthCheck.schedule : stacks.pipeline.retention.schedule)]!.Properties as {
        Target: Record<string, unknown>;
      } & Record<string, unknown>;
    const deadLetterQueue = { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ScheduleDeadLetterQueue'), 'Arn'] } };
    const functionScheduleRole = { 'Fn::GetAtt': [Match.stringLikeRegexp('^FunctionScheduleRole'), 'Arn'] };

    it('runs backup-health every hour at minute 15, retrying briefly, undeliverable runs to the dead-letter queue', () => {
      pipeline.hasResourceProperties('AWS::Scheduler::Schedule', {
        Name: `pgkeep-${name}-backup-health`,
        GroupName: `pgkeep-${name}`,
        ScheduleExpression: 'cron(15 * * * ? *)',
        ScheduleExpressionTimezone: 'Etc/UTC',
        State: 'ENABLED',
        Target: {
          Arn: { 'Fn::GetAtt': [pipelineId(functions.health), 'Arn'] },
          RoleArn: functionScheduleRole,
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 900 },
          DeadLetterConfig: deadLetterQueue,
        },
      });
      expect(scheduleOf('health').Name).toBe(`pgkeep-${name}-backup-health`);
    });

    it('runs enforce-retention once a day at the configured time in the retention time zone', () => {
      pipeline.hasResourceProperties('AWS::Scheduler::Schedule', {
        Name: `pgkeep-${name}-enforce-retention`,
        GroupName: `pgkeep-${name}`,
        ScheduleExpression: `cron(${environment.retention.scheduleCron})`,
        ScheduleExpressionTimezone: environment.retention.timezone,
        State: 'ENABLED',
        Target: {
          Arn: { 'Fn::GetAtt': [pipelineId(functions.retention), 'Arn'] },
          RoleArn: functionScheduleRole,
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 7200 },
          DeadLetterConfig: deadLetterQueue,
        },
      });
      expect(environment.retention.scheduleCron).toBe('0 6 * * ? *');
      expect(scheduleOf('retention').Name).toBe(`pgkeep-${name}-enforce-retention`);
    });

    it('lets the scheduler (of this account only) invoke only those two functions and write to the dead-letter queue', () => {
      const [roleId] = Object.keys(
        pipeline.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('invokes the health-check and retention functions') } }),
      );
      const role = resources[roleId!]!.Properties as { AssumeRolePolicyDocument: { Statement: unknown[] }; ManagedPolicyArns?: unknown };
      const own = Object.values(resources)
        .filter((resource) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
        .flatMap((resource) => (resource.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

      expect(role.AssumeRolePolicyDocument.Statement).toEqual([
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': environment.account } },
        },
      ]);
      expect(role.ManagedPolicyArns).toBeUndefined();
      expect(actionsOf(own).sort()).toEqual(['lambda:InvokeFunction', 'sqs:SendMessage']);
      const invocable = JSON.stringify(own.find((statement) => statement.Action === 'lambda:InvokeFunction')?.Resource);
      expect(invocable).toContain(pipelineId(functions.health));
      expect(invocable).toContain(pipelineId(functions.retention));
      expect(invocable).not.toContain(pipelineId(functions.verify));
    });
  });

  describe('least privilege', () => {
    it('gives each function its own role, trusted by Lambda, with its storage-stack access policy and nothing managed by AWS', () => {
      for (const fn of ['verify', 'health', 'retention'] as const) {
        const role = resources[pipelineId(functions[fn].role)]!.Properties as { AssumeRolePolicyDocument: unknown; ManagedPolicyArns: unknown[] };

        expect(role.AssumeRolePolicyDocument).toEqual({
          Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
          Version: '2012-10-17',
        });
        expect(role.ManagedPolicyArns).toHaveLength(1);
        expect(storageOutputOf(role.ManagedPolicyArns[0])).toMatch(new RegExp(`^PublishOutputRef${storageId(accessPolicies[fn])}`));
      }
    });

    it('lets verify-backup read and tag backup objects, list (for honest 404s), decrypt via S3, alert, and publish metrics', () => {
      expect(accessStatementsOf('verify')).toEqual([
        { Sid: 'ReadBackupObjects', Effect: 'Allow', Action: 's3:GetObject', Resource: BACKUP_OBJECTS },
        { Sid: 'TagBackupObjects', Effect: 'Allow', Action: ['s3:GetObjectTagging', 's3:PutObjectTagging'], Resource: BACKUP_OBJECTS },
        LIST_BACKUPS,
        {
          Sid: 'DecryptBackups',
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: { 'Fn::GetAtt': [BACKUP_KEY, 'Arn'] },
          Condition: { StringEquals: { 'kms:ViaService': `s3.${environment.region}.amazonaws.com` } },
        },
      ]);
      expect(inlineStatementsOf('verify')).toEqual([
        writeOwnLogGroup('verify'),
        { Sid: 'PublishAlerts', Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: pipelineId(stacks.pipeline.alertsTopic) } },
        {
          Sid: 'EncryptAlerts',
          Effect: 'Allow',
          Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          Resource: { 'Fn::GetAtt': [pipelineId(stacks.pipeline.node.findChild('Alerts').node.findChild('TopicKey')), 'Arn'] },
          Condition: { StringEquals: { 'kms:ViaService': `sns.${environment.region}.amazonaws.com` } },
        },
        PUBLISH_METRICS,
      ]);
    });

    /** With a vault: the copies' verdict tags, in the vault bucket (whose policy admits the same calls). */
    const vaultBucketArn = environment.vault ? `arn:aws:s3:::${vaultBucketName(name, environment.vault.account, environment.vault.region)}` : '';
    const vaultVerdictReads = environment.vault
      ? [
          {
            Sid: 'ListVaultCopies',
            Effect: 'Allow',
            Action: 's3:ListBucket',
            Resource: vaultBucketArn,
            Condition: { StringLike: { 's3:prefix': 'backups/*' } },
          },
          { Sid: 'ReadVaultCopyVerdicts', Effect: 'Allow', Action: 's3:GetObjectTagging', Resource: `${vaultBucketArn}/backups/*` },
        ]
      : [];

    it(`lets backup-health only list backups and read their tags${environment.vault ? " (and the vault copies' tags)" : ''}, and publish metrics`, () => {
      expect(accessStatementsOf('health')).toEqual([
        LIST_BACKUPS,
        { Sid: 'ReadVerificationTags', Effect: 'Allow', Action: 's3:GetObjectTagging', Resource: BACKUP_OBJECTS },
      ]);
      expect(inlineStatementsOf('health')).toEqual([writeOwnLogGroup('health'), ...vaultVerdictReads, PUBLISH_METRICS]);
    });

    it(`lets enforce-retention list and tag${environment.retention.dryRun ? '' : ' and delete'} under backups/, read manifests (never data) via S3's decryption${environment.objectLock ? ', and read Object Lock dates' : ''}, and publish metrics${environment.retention.dryRun ? ' (a dry run: IAM refuses any delete too)' : ''}`, () => {
      expect(accessStatementsOf('retention')).toEqual([
        LIST_BACKUPS,
        { Sid: 'TagBackupObjects', Effect: 'Allow', Action: ['s3:GetObjectTagging', 's3:PutObjectTagging'], Resource: BACKUP_OBJECTS },
        // Under Object Lock, ReadObjectLockRetention's s3:GetObject on backups/* covers the manifests.
        ...(environment.objectLock ? [] : [{ Sid: 'ReadManifests', Effect: 'Allow', Action: 's3:GetObject', Resource: BACKUP_MANIFESTS }]),
        {
          Sid: 'DecryptBackups',
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: { 'Fn::GetAtt': [BACKUP_KEY, 'Arn'] },
          Condition: { StringEquals: { 'kms:ViaService': `s3.${environment.region}.amazonaws.com` } },
        },
        ...(environment.retention.dryRun ? [] : [{ Sid: 'DeleteBackupObjects', Effect: 'Allow', Action: 's3:DeleteObject', Resource: BACKUP_OBJECTS }]),
        ...(environment.objectLock
          ? [{ Sid: 'ReadObjectLockRetention', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectRetention'], Resource: BACKUP_OBJECTS }]
          : []),
      ]);
      expect(inlineStatementsOf('retention')).toEqual([writeOwnLogGroup('retention'), ...vaultVerdictReads, PUBLISH_METRICS]);
    });

    it('never lets verify-backup delete or write objects, nor backup-health read objects or write tags', () => {
      expect(
        actionsOf(effectiveStatementsOf('verify')).filter((action) =>
          /^s3:(Delete|PutObject$|PutObjectAcl|PutObjectRetention|PutObjectLegalHold|RestoreObject)/.test(action),
        ),
      ).toEqual([]);
      expect(
        actionsOf(effectiveStatementsOf('health')).filter(
          (action) => action.startsWith('s3:') && action !== 's3:ListBucket' && action !== 's3:GetObjectTagging',
        ),
      ).toEqual([]);
      expect(actionsOf(effectiveStatementsOf('health')).filter((action) => /^(kms|sns):/.test(action))).toEqual([]);
    });

    it(`lets enforce-retention read manifests (never backup data${environment.objectLock ? ', except the HeadObject that learns Object Lock dates' : ''}) and decrypt only through S3`, () => {
      const statements = effectiveStatementsOf('retention');
      const reading = statements.filter((statement) => actionsOf([statement]).includes('s3:GetObject'));

      // Under Object Lock the HeadObject grant on backups/* is the one read grant, manifests included.
      expect(reading.map((statement) => statement.Resource)).toEqual(environment.objectLock ? [BACKUP_OBJECTS] : [BACKUP_MANIFESTS]);
      if (environment.objectLock) expect(actionsOf(statements)).toContain('s3:GetObjectRetention');
      else expect(actionsOf(statements)).not.toContain('s3:GetObjectRetention');
      expect(actionsOf(statements).filter((action) => /^(kms|sns):/.test(action))).toEqual(['kms:Decrypt']);
      expect(statements.find((statement) => actionsOf([statement]).includes('kms:Decrypt'))?.Condition).toEqual({
        StringEquals: { 'kms:ViaService': `s3.${environment.region}.amazonaws.com` },
      });
    });

    it(`allows s3:DeleteObject to ${environment.retention.dryRun ? 'nobody (retention is a dry run)' : 'enforce-retention alone'}, and nobody DeleteObjectVersion, governance bypass, lifecycle or policy changes`, () => {
      const everything = [...allStatements(pipeline), ...allStatements(storage)];
      const deleting = everything.filter((statement) => actionsOf([statement]).includes('s3:DeleteObject'));

      expect(deleting).toEqual(
        environment.retention.dryRun ? [] : [{ Sid: 'DeleteBackupObjects', Effect: 'Allow', Action: 's3:DeleteObject', Resource: BACKUP_OBJECTS }],
      );
      expect(
        actionsOf(everything).filter((action) =>
          /^s3:(\*|DeleteObjectVersion|DeleteBucket|BypassGovernanceRetention|PutLifecycleConfiguration|PutBucketPolicy|PutBucketVersioning|PutBucketObjectLockConfiguration|PutObjectRetention|PutObjectLegalHold)$|^kms:\*$|^\*$/.test(
            action,
          ),
        ),
      ).toEqual([]);
    });

    it('confines every object permission of the functions to backups/ and every listing to the backups/ prefix', () => {
      for (const fn of ['verify', 'health', 'retention'] as const) {
        for (const statement of accessStatementsOf(fn).filter((candidate) => actionsOf([candidate]).some((action) => action.startsWith('s3:')))) {
          if (statement.Action === 's3:ListBucket') expect(statement).toEqual(LIST_BACKUPS);
          else if (statement.Sid === 'ReadManifests') expect(statement.Resource).toEqual(BACKUP_MANIFESTS);
          else expect(statement.Resource).toEqual(BACKUP_OBJECTS);
        }
      }
    });
  });

  describe('alarms', () => {
    const topic = [{ Ref: pipelineId(stacks.pipeline.alertsTopic) }];
    const alarmOf = (construct: { node: { defaultChild?: unknown } }) => resources[pipelineId(construct)]!.Properties;
    const dimensionsOf = (database: string) => [
      { Name: 'Database', Value: database },
      { Name: 'Environment', Value: name },
    ];

    describe.each(environment.databases.map((database) => [database.name] as const))('for database %s', (databaseName) => {
      const alarms = stacks.pipeline.alarms.get(databaseName)!;
      const expected = EXPECTED_THRESHOLDS[name]![databaseName]!;
      const key = databaseResourceKey(databaseName);
      const common = (metricName: string) => ({
        Namespace: 'pgkeep',
        MetricName: metricName,
        Dimensions: dimensionsOf(databaseName),
        AlarmActions: topic,
        OKActions: topic,
      });

      it("alarms when the newest verified backup is older than its schedule's longest gap plus the margin, or when nothing reports at all", () => {
        expect(alarmOf(alarms.stale)).toMatchObject({
          ...common(METRIC.newestVerifiedBackupAgeSeconds),
          AlarmName: `pgkeep-${name}-${key}-backup-stale`,
          Statistic: 'Maximum',
          Period: 3600,
          Threshold: expected.staleHours * 3600,
          ComparisonOperator: 'GreaterThanThreshold',
          EvaluationPeriods: 2,
          DatapointsToAlarm: 2,
          TreatMissingData: 'breaching',
        });
      });

      it('alarms when the newest verified backup is below the absolute floor, or below the fraction of the recent median', () => {
        expect(alarmOf(alarms.undersized)).toMatchObject({
          ...common(METRIC.newestVerifiedBackupBytes),
          AlarmName: `pgkeep-${name}-${key}-backup-undersized`,
          Statistic: 'Minimum',
          Period: 3600,
          Threshold: expected.minimumBytes,
          ComparisonOperator: 'LessThanThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
        });
        expect(alarmOf(alarms.sizeDrop)).toMatchObject({
          ...common(METRIC.newestVerifiedBackupSizeRatio),
          AlarmName: `pgkeep-${name}-${key}-backup-size-dropped`,
          Statistic: 'Minimum',
          Period: 3600,
          Threshold: expected.minimumRatio,
          ComparisonOperator: 'LessThanThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
        });
      });

      it.each([
        ['verificationFailed', METRIC.backupVerificationFailed, 'verification-failed'],
        ['unverifiable', METRIC.backupUnverifiable, 'backup-unverifiable'],
        ['backupFailed', METRIC.backupFailed, 'backup-task-failed'],
      ] as const)('alarms on any %s event within the hour (%s ≥ 1), missing data being fine', (kind, metricName, suffix) => {
        expect(alarmOf(alarms[kind])).toMatchObject({
          ...common(metricName),
          AlarmName: `pgkeep-${name}-${key}-${suffix}`,
          Statistic: 'Sum',
          Period: 3600,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
        });
      });

      it("alarms while a backup claims a start time ahead of S3's clock (the health check publishes the count hourly, 0 when none)", () => {
        expect(alarmOf(alarms.futureDated)).toMatchObject({
          ...common(METRIC.futureDatedBackups),
          AlarmName: `pgkeep-${name}-${key}-backup-future-dated`,
          Statistic: 'Maximum',
          Period: 3600,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
        });
      });

      it('alarms on retention errors and stays in alarm until a clean run (every run publishes the count, 0 when clean)', () => {
        expect(alarmOf(alarms.retentionErrors)).toMatchObject({
          ...common(METRIC.retentionErrors),
          AlarmName: `pgkeep-${name}-${key}-retention-errors`,
          Statistic: 'Sum',
          Period: 3600,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'ignore',
        });
      });

      it('says in each description what happened, what to do first and where its runbook entry is', () => {
        const described = [
          [alarms.stale, RUNBOOK_SECTIONS.stale],
          [alarms.undersized, RUNBOOK_SECTIONS.undersized],
          [alarms.sizeDrop, RUNBOOK_SECTIONS.sizeDrop],
          [alarms.verificationFailed, RUNBOOK_SECTIONS.verificationFailed],
          [alarms.unverifiable, RUNBOOK_SECTIONS.unverifiable],
          [alarms.futureDated, RUNBOOK_SECTIONS.futureDated],
          [alarms.backupFailed, RUNBOOK_SECTIONS.backupFailed],
          [alarms.retentionErrors, RUNBOOK_SECTIONS.retentionErrors],
        ] as const;
        for (const [alarm, section] of described) {
          const description = alarmOf(alarm).AlarmDescription as string;

          expect(description, section).toContain(`database ${JSON.stringify(databaseName)}`);
          expect(description, section).toMatch(new RegExp(`Runbook: docs/operations\\.md#${section}$`));
          expect(description.length, section).toBeLessThanOrEqual(1024);
        }
        expect(alarmOf(alarms.stale).AlarmDescription).toContain(`${expected.staleHours} h`);
        expect(alarmOf(alarms.stale).AlarmDescription).toContain(`RunTaskCommand${key}`);
      });
    });

    it('alarms when one of the three functions fails instead of reporting', () => {
      for (const [alarm, fn] of stacks.pipeline.functionAlarms.map((candidate, index) => [candidate, Object.values(functions)[index]!] as const)) {
        expect(alarmOf(alarm)).toMatchObject({
          Namespace: 'AWS/Lambda',
          MetricName: 'Errors',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: pipelineId(fn) } }],
          Statistic: 'Sum',
          Period: 3600,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: topic,
          OKActions: topic,
        });
      }
      expect(stacks.pipeline.functionAlarms).toHaveLength(3);
    });

    it('sends ALARM and OK of every alarm in the stack to the alerts topic, and points each to the runbook', () => {
      const alarms = [
        ...Object.values(pipeline.findResources('AWS::CloudWatch::Alarm')),
        ...Object.values(pipeline.findResources('AWS::CloudWatch::CompositeAlarm')),
      ] as Resource[];
      // The inputs of the composite drill-overdue alarms notify nobody themselves (test/infra/restore.test.ts).
      const compositeInputs = alarms.filter((alarm) => /-drill-(no-success-7d|not-attempted)$/.test(String(alarm.Properties.AlarmName)));

      // Per database 8 backup alarms and 3 restore alarms (drill failed, drill overdue, restore differences); 3 function alarms, the dead-letter alarm.
      // With a vault, per database the off-site stale alarm, and one replication-failed alarm per replicated prefix.
      const vaultAlarms = environment.vault ? environment.databases.length + VAULT_REPLICATED_PREFIXES.length : 0;
      expect(alarms.length - compositeInputs.length).toBe(environment.databases.length * 11 + 3 + 1 + vaultAlarms);
      expect(compositeInputs).toHaveLength(environment.databases.length + 1);
      for (const alarm of alarms) {
        const notifies = compositeInputs.includes(alarm) ? {} : { AlarmActions: topic, OKActions: topic };
        expect(alarm.Properties, String(alarm.Properties.AlarmName)).toMatchObject(notifies);
        expect(resolveTemplateText(alarm.Properties.AlarmDescription), String(alarm.Properties.AlarmName)).toMatch(/Runbook: docs\/operations\.md#[a-z-]+$/);
      }
    });

    it('only watches metrics the code publishes (names from catalog/metrics.ts)', () => {
      const published = new Set<string>(Object.values(METRIC));
      const watched = (Object.values(pipeline.findResources('AWS::CloudWatch::Alarm')) as Resource[])
        .filter((alarm) => alarm.Properties.Namespace === METRICS_NAMESPACE)
        .map((alarm) => alarm.Properties.MetricName as string);

      // 8 backup alarms, drill failed, no drill success in 7 days, restore differences (and, with a vault, off-site stale).
      expect(watched.length).toBe(environment.databases.length * (environment.vault ? 12 : 11));
      expect(watched.filter((metricName) => !published.has(metricName))).toEqual([]);
    });
  });

  describe('the dashboard', () => {
    const dashboards = Object.values(pipeline.findResources('AWS::CloudWatch::Dashboard')) as Resource[];
    const body = JSON.parse(resolveTemplateText(dashboards[0]?.Properties.DashboardBody)) as {
      widgets: { type: string; properties: { alarms?: string[]; metrics?: unknown[][] } }[];
    };
    const metricLines = body.widgets.flatMap((widget) => widget.properties.metrics ?? []).filter((line) => line[0] === METRICS_NAMESPACE);

    it(`is one dashboard named pgkeep-${name}`, () => {
      expect(dashboards).toHaveLength(1);
      expect(dashboards[0]!.Properties.DashboardName).toBe(`pgkeep-${name}`);
    });

    it('shows every backup, verification, health and retention metric for every database', () => {
      for (const database of environment.databases) {
        for (const metricName of DASHBOARD_METRICS) {
          const line = metricLines.find((candidate) => candidate[1] === metricName && candidate.includes(database.name));
          expect(line, `${metricName} of ${database.name}`).toBeDefined();
          expect(line?.slice(2, 6)).toEqual(['Database', database.name, 'Environment', name]);
        }
      }
    });

    it('shows the state of every alarm of the environment, its nested stacks included', () => {
      const statusWidgets = body.widgets.filter((widget) => widget.type === 'alarm');
      const alarms = { ...pipeline.findResources('AWS::CloudWatch::Alarm'), ...pipeline.findResources('AWS::CloudWatch::CompositeAlarm') } as Record<
        string,
        Resource
      >;
      // By name, which every pgkeep alarm has as plain text, so the ARNs need no cross-stack reference.
      const names = Object.values(alarms).map((alarm) => alarm.Properties.AlarmName as string);

      expect(statusWidgets).toHaveLength(1);
      expect([...statusWidgets[0]!.properties.alarms!].sort()).toEqual(
        names.map((alarmName) => `arn:aws:cloudwatch:${environment.region}:${environment.account}:alarm:${alarmName}`).sort(),
      );
    });
  });
});

describe('the runbook', () => {
  const runbook = readFileSync(join(REPOSITORY_ROOT, 'docs/operations.md'), 'utf8');
  // GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.
  const anchors = [...runbook.matchAll(/^#{2,4} (.+)$/gm)].map((match) =>
    match[1]!
      .toLowerCase()
      .replace(/[^a-z0-9 -]/g, '')
      .replace(/ /g, '-'),
  );

  it('has the section every alarm description points to', () => {
    expect(Object.values(RUNBOOK_SECTIONS).filter((section) => !anchors.includes(section))).toEqual([]);
  });
});
