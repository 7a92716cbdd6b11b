/**
 * The vault (docs/vault.md) as `cdk synth` writes it for the shipped prod environment: a stack of
 * its own in the vault's account and region, the replication rules in the source storage stack,
 * and the alarms on both sides. What AWS does with these templates is checked elsewhere against
 * its own rules: cfn-lint (cfn-lint.test.ts) and cdk-nag (nag.test.ts).
 */
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { METRIC } from '../../catalog/metrics.ts';
import { vaultBucketName, vaultKeyAliasArn, vaultSourceRoleArn } from '../../catalog/vault.ts';
import { parseEnvironmentConfig, type EnvironmentInput } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { actionsOf, BACKUP_BUCKET, synthesizeShippedEnvironments, type Statement } from '../support/fixtures/infra-synth.ts';

const { config, synthesized } = synthesizeShippedEnvironments();
const prod = config.environments.prod!;
const vault = prod.vault!;
const VAULT_BUCKET = vaultBucketName('prod', vault.account, vault.region);

function only<T>(values: Record<string, T>): T {
  const all = Object.values(values);
  expect(all).toHaveLength(1);
  return all[0]!;
}

const bucketPolicyStatements = (template: Template): Statement[] =>
  (
    only(template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: Match.stringLikeRegexp('^VaultBucket') } } })) as {
      Properties: { PolicyDocument: { Statement: Statement[] } };
    }
  ).Properties.PolicyDocument.Statement;

describe('the vault stack of the prod environment', () => {
  const template = synthesized.prod!.vault!;
  const stack = synthesized.prod!.stacks.vault!;

  it('is its own stack, pgkeep-prod-vault, in the vault account and region, protected from deletion', () => {
    expect(stack.stackName).toBe('pgkeep-prod-vault');
    expect(stack.account).toBe(vault.account);
    expect(stack.region).toBe(vault.region);
    expect(stack.terminationProtection).toBe(true);
    expect(synthesized.dev!.vault).toBeUndefined();
  });

  it('holds a versioned, SSE-KMS bucket under Object Lock, public access blocked, retained with its key', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({
        BucketName: VAULT_BUCKET,
        VersioningConfiguration: { Status: 'Enabled' },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              BucketKeyEnabled: true,
              ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [Match.stringLikeRegexp('^VaultKey'), 'Arn'] } },
            },
          ],
        },
        ObjectLockEnabled: true,
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: vault.objectLock.days } } },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    template.hasResource('AWS::KMS::Key', { Properties: { EnableKeyRotation: true }, DeletionPolicy: 'Retain' });
    template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/pgkeep/prod/vault' });
  });

  it('moves copies to Deep Archive after the configured days and expires them when their lock ends', () => {
    const rules = (
      template.findResources('AWS::S3::Bucket', { Properties: { BucketName: VAULT_BUCKET } }) as Record<
        string,
        { Properties: { LifecycleConfiguration: { Rules: Record<string, unknown>[] } } }
      >
    )[Object.keys(template.findResources('AWS::S3::Bucket', { Properties: { BucketName: VAULT_BUCKET } }))[0]!]!.Properties.LifecycleConfiguration.Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({
        Id: 'copies-to-deep-archive',
        Prefix: 'backups/',
        Transitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: vault.deepArchiveAfterDays }],
      }),
    );
    expect(rules).toContainEqual(
      expect.objectContaining({ Id: 'expire-copies-after-lock', ExpirationInDays: vault.objectLock.days, NoncurrentVersionExpiration: { NoncurrentDays: 1 } }),
    );
  });

  it('admits from the source account only its named roles, replication to write copies and never to delete or tag them', () => {
    const statements = bucketPolicyStatements(template);
    const fromSource = statements.filter((statement) => JSON.stringify(statement).includes(`arn:aws:iam::${prod.account}:root`));
    for (const statement of fromSource) {
      expect(statement.Effect).toBe('Allow');
      const principals = [(statement.Condition as { ArnEquals: { 'aws:PrincipalArn': string | string[] } }).ArnEquals['aws:PrincipalArn']].flat();
      expect(principals.every((arn) => /^arn:aws:iam::222222222222:role\/pgkeep-prod-vault-(replication|health|retention|restore|drill)$/.test(arn))).toBe(
        true,
      );
    }
    const replication = fromSource.filter((statement) => JSON.stringify(statement.Condition).includes(vaultSourceRoleArn('prod', prod.account, 'replication')));
    expect(actionsOf(replication).sort()).toEqual(['s3:GetBucketVersioning', 's3:ObjectOwnerOverrideToBucketOwner', 's3:ReplicateObject']);
    const granted = actionsOf(fromSource);
    for (const forbidden of [
      's3:ReplicateDelete',
      's3:ReplicateTags',
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      's3:PutObjectRetention',
      's3:BypassGovernanceRetention',
    ]) {
      expect(granted).not.toContain(forbidden);
    }
    // TLS only: CDK's enforceSSL denies every request over plain HTTP.
    expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
  });

  it('runs the verifier, in the vault site mode, on every replicated manifest and data object', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'pgkeep-prod-verify-vault-copy',
      Environment: { Variables: Match.objectLike({ PGKEEP_VERIFY_SITE: 'vault', PGKEEP_ENVIRONMENT: 'prod' }) },
    });
    const notifications = only(template.findResources('Custom::S3BucketNotifications')) as {
      Properties: { NotificationConfiguration: { LambdaFunctionConfigurations: { Filter: { Key: { FilterRules: { Name: string; Value: string }[] } } }[] } };
    };
    const filters = notifications.Properties.NotificationConfiguration.LambdaFunctionConfigurations.map((configuration) =>
      Object.fromEntries(configuration.Filter.Key.FilterRules.map((rule) => [rule.Name.toLowerCase(), rule.Value])),
    );
    expect(filters).toEqual(
      expect.arrayContaining([
        { prefix: 'backups/', suffix: '.manifest.json' },
        { prefix: 'backups/', suffix: '.dump.zst' },
      ]),
    );
  });

  it("alarms in the vault's region, to a topic of its own with the environment's subscribers, when a copy fails its check", () => {
    for (const email of prod.notificationEmails) template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: email });
    for (const database of prod.databases) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: METRIC.offsiteVerificationFailed,
        Dimensions: Match.arrayWith([{ Name: 'Database', Value: database.name }]),
        AlarmActions: [{ Ref: Match.stringLikeRegexp('^AlertsTopic') }],
        TreatMissingData: 'notBreaching',
      });
    }
  });
});

describe("the prod storage stack's replication into the vault", () => {
  const { storage } = synthesized.prod!;
  const bucket = (storage.toJSON() as { Resources: Record<string, unknown> }).Resources[BACKUP_BUCKET] as {
    Properties: { ReplicationConfiguration: { Rules: Record<string, unknown>[] } };
  };

  it('replicates backups/ and drills/, SSE-KMS objects re-encrypted under the vault key, owned by the vault account, delete markers never', () => {
    const rules = bucket.Properties.ReplicationConfiguration.Rules;
    expect(rules.map((rule) => (rule.Filter as { Prefix: string }).Prefix)).toEqual(['backups/', 'drills/']);
    for (const rule of rules) {
      expect(rule).toMatchObject({
        Status: 'Enabled',
        DeleteMarkerReplication: { Status: 'Disabled' },
        SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
        Destination: {
          Bucket: `arn:aws:s3:::${VAULT_BUCKET}`,
          Account: vault.account,
          AccessControlTranslation: { Owner: 'Destination' },
          EncryptionConfiguration: { ReplicaKmsKeyID: vaultKeyAliasArn('prod', vault.account, vault.region) },
          // The shipped prod example turns Replication Time Control on, with its metrics.
          ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
          Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
        },
      });
    }
  });

  it('replicates with a role that reads versions but not their tags, and writes only copies into the vault', () => {
    const [role] = Object.values(storage.findResources('AWS::IAM::Role', { Properties: { RoleName: 'pgkeep-prod-vault-replication' } }));
    expect(role).toBeDefined();
    const policy = only(storage.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('VaultReplicationRole') }] } })) as {
      Properties: { PolicyDocument: { Statement: Statement[] } };
    };
    const actions = actionsOf(policy.Properties.PolicyDocument.Statement);
    expect(actions).toEqual(expect.arrayContaining(['s3:GetObjectVersionForReplication', 's3:ReplicateObject', 'kms:Decrypt', 'kms:Encrypt']));
    for (const forbidden of ['s3:GetObjectVersionTagging', 's3:ReplicateTags', 's3:ReplicateDelete']) expect(actions).not.toContain(forbidden);
  });

  it('has no replication where the environment has no vault', () => {
    expect(JSON.stringify(synthesized.dev!.storage.toJSON())).not.toContain('ReplicationConfiguration');
  });
});

describe("the prod pipeline's alarms about the vault", () => {
  const { pipeline } = synthesized.prod!;

  it("alarms on S3's OperationsFailedReplication of each rule, to the alerts topic", () => {
    for (const ruleId of ['vault-backups', 'vault-drills']) {
      pipeline.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/S3',
        MetricName: 'OperationsFailedReplication',
        Dimensions: Match.arrayWith([
          { Name: 'DestinationBucket', Value: VAULT_BUCKET },
          { Name: 'RuleId', Value: ruleId },
        ]),
      });
    }
  });

  it('alarms per database when no off-site copy is verified young enough, missing data counting as breaching', () => {
    for (const database of prod.databases) {
      pipeline.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: METRIC.newestOffsiteVerifiedBackupAgeSeconds,
        Dimensions: Match.arrayWith([{ Name: 'Database', Value: database.name }]),
        TreatMissingData: 'breaching',
      });
    }
  });

  it('tells health and retention where the vault is, and retention to wait for verified off-site copies', () => {
    for (const name of ['pgkeep-prod-backup-health', 'pgkeep-prod-enforce-retention']) {
      pipeline.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: name,
        Environment: { Variables: Match.objectLike({ PGKEEP_VAULT_BUCKET: VAULT_BUCKET, PGKEEP_VAULT_REGION: vault.region }) },
      });
    }
    pipeline.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'pgkeep-prod-enforce-retention',
      Environment: { Variables: Match.objectLike({ PGKEEP_RETENTION_REQUIRE_OFFSITE: 'true' }) },
    });
  });

  it('names the roles the vault admits exactly as the vault names them', () => {
    for (const role of ['health', 'retention', 'restore', 'drill'] as const) {
      pipeline.hasResourceProperties('AWS::IAM::Role', { RoleName: `pgkeep-prod-vault-${role}` });
    }
  });
});

describe('the vault configuration', () => {
  const prodInput: EnvironmentInput = PGKEEP_ENVIRONMENTS.environments.prod;
  const withVault = (vaultInput: Record<string, unknown>) => () =>
    parseEnvironmentConfig('prod', { ...prodInput, vault: { ...prodInput.vault!, ...vaultInput } });

  it("refuses a vault in the environment's own region: it would not survive losing the region", () => {
    expect(withVault({ region: prod.region })).toThrow(/vault\.region: the vault must be in another region/);
  });

  it('refuses a Deep Archive transition that the end of the lock would pre-empt', () => {
    expect(withVault({ deepArchiveAfterDays: 190 })).toThrow(/vault\.deepArchiveAfterDays: must be less than objectLock\.days/);
  });

  it('waits for verified off-site copies by default', () => {
    const { retentionWaitsForOffsite: _, ...rest } = prodInput.vault!;
    expect(parseEnvironmentConfig('prod', { ...prodInput, vault: rest }).vault?.retentionWaitsForOffsite).toBe(true);
  });
});
