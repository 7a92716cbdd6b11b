/**
 * What writing a backup takes, as a customer-managed policy in the storage stack (beside the
 * bucket and key it names); the pipeline stack attaches it to the backup task's role.
 *
 * Written out statement by statement instead of with bucket.grantPut()/key.grantEncrypt(), which
 * would also allow object tagging, retention and legal-hold changes and kms:Encrypt/ReEncrypt: the
 * task needs exactly what is below, and in particular no s3:DeleteObject.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BACKUP_ROOT_PREFIX } from '../catalog/keys.ts';

export function createBackupWriterPolicy(scope: Construct, id: string, bucket: s3.Bucket, key: kms.Key): iam.ManagedPolicy {
  const stack = Stack.of(scope);
  const backupObjects = bucket.arnForObjects(`${BACKUP_ROOT_PREFIX}*`);
  const policy = new iam.ManagedPolicy(scope, id, {
    description: 'pgkeep backup task: write backups under backups/ in the backup bucket, encrypted with its key; nothing else',
    statements: [
      new iam.PolicyStatement({
        sid: 'WriteBackupObjects',
        // PutObject covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload; the abort
        // is how the task cleans up after a failure or SIGTERM.
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: [backupObjects],
      }),
      new iam.PolicyStatement({
        sid: 'CheckUploadedBackupObjects',
        // After completing an upload the task calls HeadObject on the new version to check its stored
        // size and checksum. HeadObject needs s3:GetObject, and s3:GetObjectVersion when it names a
        // VersionId, which it does because the bucket is versioned.
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [backupObjects],
      }),
      new iam.PolicyStatement({
        sid: 'TellMissingBackupObjects',
        // When the answer to CompleteMultipartUpload (or to the manifest's PutObject) is lost, the
        // task asks S3 with HeadObject whether the object exists, to say truly what S3 holds. S3
        // answers a missing key with 404 only to a caller with s3:ListBucket, and with 403
        // otherwise ("HeadObject", Permissions: https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html),
        // which could not tell "not there" from "not allowed". Listing is confined to backups/, which
        // the task can already read.
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': `${BACKUP_ROOT_PREFIX}*` } },
      }),
      new iam.PolicyStatement({
        sid: 'EncryptBackupsWithBucketKey',
        // GenerateDataKey encrypts. Decrypt is needed too: S3 decrypts the upload's data key to
        // encrypt each further part of a multipart upload and to complete it ("Multipart upload API
        // and permissions", https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions).
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [key.keyArn],
        // Only through S3, so the role cannot use the key directly.
        conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
      }),
    ],
  });
  Validations.of(policy).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${BACKUP_ROOT_PREFIX}*]`,
    reason:
      'Backup keys are backups/<database>/<backup id>.*, new on every run, so they can only be named by prefix; the wildcard is confined to that prefix of this one bucket.',
  });
  return policy;
}
