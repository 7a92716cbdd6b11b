/**
 * What each pgkeep function, the restore task and the restore drill may do to the backup bucket
 * and its key, as customer-managed policies in the storage stack (beside the bucket and key they
 * name, like BackupWriterPolicy); the pipeline stack attaches each to its function's or task's role.
 *
 * Written out action by action, not with bucket.grantRead() and friends, which would grant every
 * object, object versions, ACLs and more KMS actions: each policy has exactly the calls its
 * handler or task command makes, and the tests check them positively and negatively. No policy here allows
 * s3:DeleteObjectVersion, s3:BypassGovernanceRetention or any bucket configuration change.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BACKUP_ROOT_PREFIX, DRILL_ROOT_PREFIX, MANIFEST_SUFFIX } from '../catalog/keys.ts';

export interface BackupAccessPolicies {
  /** verify-backup: read a manifest and its data object, tag both with the verdict. */
  verifier: iam.ManagedPolicy;
  /** backup-health: list backups and read their verification tags; never an object. */
  healthReader: iam.ManagedPolicy;
  /** enforce-retention: list, read and write tags, read the manifests it would delete, delete under backups/ unless a dry run (and read Object Lock dates). */
  retentionEnforcer: iam.ManagedPolicy;
  /** restore and drill tasks: list, read (versions included), read tags and request retrievals of
   * archived objects under backups/; decrypt through S3. No write, no delete, no tag change. */
  backupReader: iam.ManagedPolicy;
  /** drill task only: write its drill records under drills/, encrypted with the bucket key. */
  drillRecordWriter: iam.ManagedPolicy;
}

export function createBackupAccessPolicies(
  scope: Construct,
  bucket: s3.Bucket,
  key: kms.Key,
  options: { objectLock: boolean; retentionDeletes: boolean },
): BackupAccessPolicies {
  const stack = Stack.of(scope);
  const objects = (sid: string, actions: string[]) => new iam.PolicyStatement({ sid, actions, resources: [bucket.arnForObjects(`${BACKUP_ROOT_PREFIX}*`)] });
  // ListObjectsV2 under backups/ only. It is also what makes S3 answer a HeadObject or GetObject
  // of a missing key with 404 instead of 403: S3 checks s3:ListBucket for that, with the key as
  // s3:prefix, which this condition allows for keys under backups/.
  const list = new iam.PolicyStatement({
    sid: 'ListBackups',
    actions: ['s3:ListBucket'],
    resources: [bucket.bucketArn],
    conditions: { StringLike: { 's3:prefix': `${BACKUP_ROOT_PREFIX}*` } },
  });

  const bucketLogicalId = stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
  const policy = (id: string, description: string, statements: iam.PolicyStatement[]) => {
    const managed = new iam.ManagedPolicy(scope, id, { description, statements });
    Validations.of(managed).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${BACKUP_ROOT_PREFIX}*]`,
      reason:
        'Backup keys are backups/<database>/<backup id>.*, new on every run and of every database, so only the prefix can name them; the wildcard is confined to that prefix of this one bucket.',
    });
    return managed;
  };
  const decryptViaS3 = new iam.PolicyStatement({
    sid: 'DecryptBackups',
    actions: ['kms:Decrypt'],
    resources: [key.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
  });

  const manifests = new iam.PolicyStatement({
    sid: 'ReadManifests',
    actions: ['s3:GetObject'],
    resources: [bucket.arnForObjects(`${BACKUP_ROOT_PREFIX}*${MANIFEST_SUFFIX}`)],
  });

  const drillRecordWriter = new iam.ManagedPolicy(scope, 'DrillRecordWriterPolicy', {
    description: 'pgkeep restore drill: write drill records (audit evidence) under drills/, encrypted with the bucket key; nothing under backups/',
    statements: [
      // One PutObject per database per drill; no multipart upload, no read-back, no tagging.
      new iam.PolicyStatement({ sid: 'WriteDrillRecords', actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${DRILL_ROOT_PREFIX}*`)] }),
      new iam.PolicyStatement({
        sid: 'EncryptDrillRecordsWithBucketKey',
        actions: ['kms:GenerateDataKey'],
        resources: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
      }),
    ],
  });
  Validations.of(drillRecordWriter).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${DRILL_ROOT_PREFIX}*]`,
    reason:
      'Drill record keys are drills/<database>/<drill id>.json, new on every drill, so only the prefix can name them; the wildcard is confined to that prefix of this one bucket.',
  });

  const retentionEnforcer = policy(
    'RetentionEnforcerPolicy',
    'pgkeep enforce-retention: list backups, read and write their tags, read their manifests, delete them under backups/ (delete markers only: never a version)',
    [
      list,
      // Reads verdicts and current tiers; writes the tier tag the lifecycle rules filter on.
      objects('TagBackupObjects', ['s3:GetObjectTagging', 's3:PutObjectTagging']),
      // Retention never deletes what it cannot read: it reads the manifest of every backup it
      // would delete (malformed, or of a newer schema: kept). Manifests only, never backup data.
      // Under Object Lock, ReadObjectLockRetention below already allows s3:GetObject on backups/*
      // (HeadObject needs it), manifests included, so this narrower grant would add nothing.
      ...(options.objectLock ? [] : [manifests]),
      decryptViaS3,
      // DeleteObjects is authorized as s3:DeleteObject per key. Without a version id, on this
      // versioned bucket, it adds a delete marker: the backup stays recoverable as a noncurrent
      // version until the lifecycle expires it. A dry run deletes nothing, so IAM refuses it too:
      // the grant is deployed with the change that sets retention.dryRun to false.
      ...(options.retentionDeletes ? [objects('DeleteBackupObjects', ['s3:DeleteObject'])] : []),
      // HeadObject (which needs s3:GetObject) returns the Object Lock retain-until date only to a
      // caller with s3:GetObjectRetention; locked backups are kept, never attempted.
      ...(options.objectLock ? [objects('ReadObjectLockRetention', ['s3:GetObject', 's3:GetObjectRetention'])] : []),
    ],
  );
  if (!options.objectLock)
    Validations.of(retentionEnforcer).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${BACKUP_ROOT_PREFIX}*${MANIFEST_SUFFIX}]`,
      reason:
        'Manifest keys are backups/<database>/<backup id>.manifest.json, new on every run, so only a pattern can name them; it is confined to the manifests under that prefix of this one bucket, never backup data.',
    });

  return {
    verifier: policy(
      'BackupVerifierPolicy',
      'pgkeep verify-backup: read manifests and data objects under backups/, tag them with the verdict; no delete, no write',
      [
        // GetObject: the manifest, HeadObject of the data object (size, CRC64NVME), the SHA-256 stream.
        objects('ReadBackupObjects', ['s3:GetObject']),
        // The verdict is recorded as tags, merged with the tags already there.
        objects('TagBackupObjects', ['s3:GetObjectTagging', 's3:PutObjectTagging']),
        list,
        decryptViaS3,
      ],
    ),
    healthReader: policy(
      'BackupHealthReaderPolicy',
      'pgkeep backup-health: list backups under backups/ and read their verification tags; no object reads, no writes',
      [list, objects('ReadVerificationTags', ['s3:GetObjectTagging'])],
    ),
    retentionEnforcer,
    backupReader: policy(
      'BackupReaderPolicy',
      'pgkeep restore and drill tasks: list and read backups under backups/ (versions, tags), request retrievals of archived ones; no write, no delete, no tag change',
      [
        list,
        // GetObject: manifests, HeadObject (storage class, retrieval state) and the data stream;
        // GetObjectVersion because the data object is read by the VersionId its manifest records.
        objects('ReadBackupObjects', ['s3:GetObject', 's3:GetObjectVersion']),
        // The verification verdict: a backup that failed verification is refused unless forced.
        objects('ReadVerificationTags', ['s3:GetObjectTagging']),
        // Glacier Flexible Retrieval and Deep Archive objects must be retrieved before a restore.
        objects('RetrieveArchivedBackups', ['s3:RestoreObject']),
        decryptViaS3,
      ],
    ),
    drillRecordWriter,
  };
}
