import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { synthesizeShippedEnvironments } from '../support/fixtures/infra-synth.ts';

const { config, synthesized } = synthesizeShippedEnvironments();

/** These are what CloudFormation knows the bucket and key by. If one changes, the next deploy
 * creates an empty bucket (or a new key) and orphans every backup: never "fix" this test. */
const BACKUP_BUCKET = 'BackupBucket26B8E51C';
const BACKUP_KEY = 'BackupKey60B97760';
const ACCESS_LOGS_BUCKET = 'AccessLogsBucket83982689';

describe.each(['dev', 'prod'])('the %s storage stack', (name) => {
  const { storage, stacks } = synthesized[name]!;
  const environment = config.environments[name]!;

  it('keeps the logical ids of the backup bucket, its key and its access-log bucket', () => {
    expect(Object.keys(storage.findResources('AWS::S3::Bucket')).sort()).toEqual([ACCESS_LOGS_BUCKET, BACKUP_BUCKET]);
    expect(Object.keys(storage.findResources('AWS::KMS::Key'))).toEqual([BACKUP_KEY]);
  });

  it('has a customer-managed KMS key with automatic rotation, retained on stack deletion', () => {
    storage.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('has a versioned, SSE-KMS (bucket key) bucket with all public access blocked, retained on stack deletion', () => {
    storage.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({
        VersioningConfiguration: { Status: 'Enabled' },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [BACKUP_KEY, 'Arn'] } } },
          ],
        },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LoggingConfiguration: { DestinationBucketName: { Ref: ACCESS_LOGS_BUCKET }, LogFilePrefix: 'backup-bucket/' },
      }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('denies every request to the backup bucket that does not use TLS 1.2 or later', () => {
    const bucketAndObjects = [{ 'Fn::GetAtt': [BACKUP_BUCKET, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [BACKUP_BUCKET, 'Arn'] }, '/*']] }];
    storage.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: BACKUP_BUCKET },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            Resource: bucketAndObjects,
          }),
          Match.objectLike({
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:*',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
            Resource: bucketAndObjects,
          }),
        ]),
      },
    });
  });

  it('sends monthly backups to Glacier IR and yearly ones to Deep Archive by their retention tier tag, expires old versions and aborts stale uploads, as configured', () => {
    const bucket = storage.findResources('AWS::S3::Bucket')[BACKUP_BUCKET] as { Properties: { LifecycleConfiguration: { Rules: unknown[] } } };

    expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual([
      {
        Id: 'tier-monthly-backups',
        Status: 'Enabled',
        Prefix: 'backups/',
        TagFilters: [{ Key: 'pgkeep:tier', Value: 'monthly' }],
        ObjectSizeGreaterThan: environment.lifecycle.transitionMinimumObjectBytes,
        Transitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: environment.lifecycle.monthlyToGlacierInstantRetrievalAfterDays }],
      },
      {
        Id: 'tier-yearly-backups',
        Status: 'Enabled',
        Prefix: 'backups/',
        TagFilters: [{ Key: 'pgkeep:tier', Value: 'yearly' }],
        ObjectSizeGreaterThan: environment.lifecycle.transitionMinimumObjectBytes,
        Transitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: environment.lifecycle.yearlyToDeepArchiveAfterDays }],
      },
      {
        Id: 'expire-noncurrent-versions',
        Status: 'Enabled',
        NoncurrentVersionExpiration: { NoncurrentDays: environment.lifecycle.noncurrentVersionsExpireAfterDays },
        ExpiredObjectDeleteMarker: true,
      },
      {
        Id: 'abort-incomplete-multipart-uploads',
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: environment.lifecycle.abortIncompleteUploadsAfterDays },
      },
    ]);
  });

  it('never expires a current backup and never moves daily, weekly or untagged (newest) backups out of S3 Standard', () => {
    const bucket = storage.findResources('AWS::S3::Bucket')[BACKUP_BUCKET] as { Properties: { LifecycleConfiguration: { Rules: Record<string, unknown>[] } } };
    const rules = bucket.Properties.LifecycleConfiguration.Rules;
    const transitioning = rules.filter((rule) => rule.Transitions !== undefined);

    // Only retention deletes current backups, and it never deletes the last good one.
    expect(rules.filter((rule) => rule.ExpirationInDays !== undefined || rule.ExpirationDate !== undefined)).toEqual([]);
    expect(transitioning.map((rule) => rule.TagFilters)).toEqual([[{ Key: 'pgkeep:tier', Value: 'monthly' }], [{ Key: 'pgkeep:tier', Value: 'yearly' }]]);
    // The size floor keeps manifests (kilobytes) readable without a restore, whatever their tags.
    for (const rule of transitioning) expect(rule.ObjectSizeGreaterThan).toBeGreaterThanOrEqual(64 * 1024);
  });

  it('keeps server access logs in a private, TLS-only bucket that expires them and survives stack deletion', () => {
    storage.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LifecycleConfiguration: { Rules: [{ Id: 'expire-access-logs', Status: 'Enabled', ExpirationInDays: environment.accessLogsExpireAfterDays }] },
      }),
      DeletionPolicy: 'Retain',
    });
    storage.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: ACCESS_LOGS_BUCKET },
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('turns Object Lock on only where configured', () => {
    const bucket = storage.findResources('AWS::S3::Bucket')[BACKUP_BUCKET] as { Properties: Record<string, unknown> };

    if (environment.objectLock) {
      expect(bucket.Properties.ObjectLockEnabled).toBe(true);
      expect(bucket.Properties.ObjectLockConfiguration).toEqual({
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: environment.objectLock.mode, Days: environment.objectLock.defaultRetentionDays } },
      });
    } else {
      expect(bucket.Properties.ObjectLockEnabled).toBeUndefined();
      expect(bucket.Properties.ObjectLockConfiguration).toBeUndefined();
    }
  });

  it('has termination protection exactly when configured', () => {
    expect(stacks.storage.terminationProtection).toBe(environment.terminationProtection);
  });

  it('lets the backup writer put objects and abort its uploads under backups/, and read back only what it wrote there', () => {
    const backupObjects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [BACKUP_BUCKET, 'Arn'] }, '/backups/*']] };
    storage.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: [
          { Sid: 'WriteBackupObjects', Effect: 'Allow', Action: ['s3:AbortMultipartUpload', 's3:PutObject'], Resource: backupObjects },
          // HeadObject after the upload (with the new VersionId) needs GetObject and GetObjectVersion.
          { Sid: 'CheckUploadedBackupObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: backupObjects },
          // HeadObject of a key that may be missing (a lost answer) must get 404, not 403: S3 needs ListBucket for that.
          {
            Sid: 'TellMissingBackupObjects',
            Effect: 'Allow',
            Action: 's3:ListBucket',
            Resource: { 'Fn::GetAtt': [BACKUP_BUCKET, 'Arn'] },
            Condition: { StringLike: { 's3:prefix': 'backups/*' } },
          },
          {
            Sid: 'EncryptBackupsWithBucketKey',
            Effect: 'Allow',
            // kms:Decrypt because S3 multipart uploads with SSE-KMS need it, not to read backups.
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: { 'Fn::GetAtt': [BACKUP_KEY, 'Arn'] },
            Condition: { StringEquals: { 'kms:ViaService': `s3.${environment.region}.amazonaws.com` } },
          },
        ],
        Version: '2012-10-17',
      },
    });
  });

  it('never lets the backup writer delete, list outside backups/, or touch anything outside backups/', () => {
    const writerId = stacks.storage.getLogicalId(stacks.storage.backupWriterPolicy.node.defaultChild as never);
    const policy = storage.findResources('AWS::IAM::ManagedPolicy')[writerId] as {
      Properties: { PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } };
    };
    const statements = policy.Properties.PolicyDocument.Statement;
    const actions = statements.flatMap((statement) => [statement.Action].flat());

    expect(
      actions.filter((action) =>
        /^s3:Delete|^s3:List(?!Bucket$)|^s3:\*$|^s3:Put(Bucket|Object(Acl|Tagging|Retention|LegalHold))|^kms:\*$|^kms:(Encrypt|ReEncrypt)/.test(action),
      ),
    ).toEqual([]);
    for (const statement of statements.filter((candidate) => [candidate.Action].flat().some((action) => action.startsWith('s3:')))) {
      if (statement.Action === 's3:ListBucket') expect((statement as { Condition?: unknown }).Condition).toEqual({ StringLike: { 's3:prefix': 'backups/*' } });
      else expect(JSON.stringify(statement.Resource)).toMatch(/"\/backups\/\*"\]\]\}$/);
    }
  });

  it('outputs the bucket and the key, each with a description', () => {
    storage.hasOutput('BackupBucketName', { Description: Match.stringLikeRegexp('.+'), Value: { Ref: BACKUP_BUCKET } });
    storage.hasOutput('BackupKeyArn', { Description: Match.stringLikeRegexp('.+'), Value: { 'Fn::GetAtt': [BACKUP_KEY, 'Arn'] } });
  });
});
