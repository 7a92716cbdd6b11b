/**
 * What each recorded AWS call needs from IAM in the deployed system: the action(s), the resource
 * ARN(s) and the request context AWS evaluates them with. The test's local bucket, topic and key
 * stand in for the deployed ones: a call to any bucket becomes a call to the bucket the component
 * is deployed with (same key), a Publish goes to the topic its settings name, an SSE-KMS key id to
 * the key its settings name.
 *
 * The mappings, from AWS's documentation:
 * - S3 operations → actions: "Required permissions for Amazon S3 API operations",
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html.
 *   CreateMultipartUpload, UploadPart and CompleteMultipartUpload are authorized as s3:PutObject
 *   ("Multipart upload API and permissions", https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions).
 * - HeadObject needs s3:GetObject, and s3:GetObjectVersion when it names a version; for a key that
 *   does not exist S3 answers 404 only to a caller with s3:ListBucket, otherwise 403
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, the same for GetObject:
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html). A call that saw a 404 in the
 *   test depends on that, so it also needs s3:ListBucket with the key as s3:prefix.
 * - ListObjectsV2 is s3:ListBucket on the bucket, with its Prefix as s3:prefix (and s3:delimiter,
 *   s3:max-keys) (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html, condition
 *   keys: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
 * - DeleteObjects is s3:DeleteObject for each key it names (s3:DeleteObjectVersion with a version id)
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html).
 * - HeadObject returns an Object Lock retain-until date only to a caller with s3:GetObjectRetention
 *   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html); enforce-retention
 *   reads it where its settings say the bucket has Object Lock (PGKEEP_OBJECT_LOCK=true).
 * - SSE-KMS: S3 calls KMS with the caller's permissions (kms:ViaService = s3.<region>.amazonaws.com):
 *   kms:GenerateDataKey to write (PutObject, CreateMultipartUpload), kms:Decrypt to read (GetObject)
 *   and for every further part and the completion of a multipart upload (mpuAndPermissions above;
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html). With an S3 Bucket
 *   Key the encryption context is the bucket's ARN, not the object's
 *   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html). HeadObject and the tagging
 *   and listing calls read no object data and need no KMS permission.
 * - sns:Publish to a KMS-encrypted topic: the publisher needs kms:GenerateDataKey* and kms:Decrypt on
 *   the topic's key, through SNS (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
 * - PutMetricData has no resource-level permissions (Resource "*"); cloudwatch:namespace is the
 *   request's Namespace (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
 * - aws:SecureTransport: the deployed components use the SDK's default endpoints, which are HTTPS
 *   (the model checks that no endpoint override is deployed); s3:TlsVersion is the lowest version
 *   Node.js negotiates by default (tls.DEFAULT_MIN_VERSION, TLSv1.2 on Node 24).
 */
import { DEFAULT_MIN_VERSION } from 'node:tls';
import type { RecordedCall } from '../aws-call-recorder.ts';
import { text } from './cloud-assembly.ts';
import type { ComponentInstance, Deployment } from './deployment.ts';

export type RequestContext = Record<string, string | string[]>;

export interface IamRequest {
  action: string;
  resource: string;
  context: RequestContext;
  /** Why it is needed, for the permission table: e.g. "HeadObjectCommand (404: needs s3:ListBucket)". */
  because: string;
  /** Made by a service on the caller's behalf (S3 → KMS, SNS → KMS), not by the caller itself. */
  onBehalfBy?: string;
}

/** Settings that would send a deployed component's calls anywhere but AWS's own HTTPS endpoints. */
const ENDPOINT_OVERRIDES = /^(PGKEEP_S3_ENDPOINT|AWS_ENDPOINT_URL(_.+)?)$/;

export function tlsVersionNumber(): string {
  const match = /^TLSv(\d\.\d)$/.exec(DEFAULT_MIN_VERSION);
  if (!match?.[1]) throw new Error(`unexpected tls.DEFAULT_MIN_VERSION ${DEFAULT_MIN_VERSION}`);
  return match[1];
}

export function callPermissions(call: RecordedCall, instance: ComponentInstance, deployment: Deployment): IamRequest[] {
  const override = Object.keys(instance.settings).find((name) => ENDPOINT_OVERRIDES.test(name));
  if (override) throw new Error(`${instance.name} is deployed with ${override}: its calls would not go to AWS over HTTPS, which the model assumes`);
  const secure: RequestContext = { 'aws:SecureTransport': 'true' };
  const operation = `${call.client}.${call.command}`;
  switch (call.client) {
    case 'S3Client':
      return s3Permissions(call, instance, deployment, secure);
    case 'CloudWatchClient':
      if (call.command !== 'PutMetricDataCommand') break;
      return [
        {
          action: 'cloudwatch:PutMetricData',
          resource: '*',
          context: { ...secure, 'cloudwatch:namespace': String(call.input.Namespace) },
          because: call.command,
        },
      ];
    case 'SNSClient': {
      if (call.command !== 'PublishCommand') break;
      const topic = instance.settings.PGKEEP_ALERT_TOPIC_ARN;
      if (!topic) throw new Error(`${instance.name} publishes to SNS but is deployed without PGKEEP_ALERT_TOPIC_ARN`);
      const key = deployment.topicKeys.get(topic);
      const viaSns = { ...secure, 'kms:ViaService': `sns.${instance.region}.amazonaws.com`, 'kms:CallerAccount': instance.account };
      return [
        { action: 'sns:Publish', resource: topic, context: secure, because: call.command },
        ...(key
          ? ['kms:GenerateDataKey', 'kms:Decrypt'].map((action) => ({
              action,
              resource: key,
              context: viaSns,
              because: `${call.command} to a KMS-encrypted topic`,
              onBehalfBy: 'sns',
            }))
          : []),
      ];
    }
  }
  throw new Error(`the authorization model has no IAM mapping for ${operation}: add one to test/support/authz/call-permissions.ts, citing AWS's documentation`);
}

function s3Permissions(call: RecordedCall, instance: ComponentInstance, deployment: Deployment, secure: RequestContext): IamRequest[] {
  const bucket = deployment.bucket(deployedBucketName(instance, deployment));
  const s3Context: RequestContext = { ...secure, 's3:TlsVersion': tlsVersionNumber() };
  const key = String(call.input.Key ?? '');
  const object = `${bucket.arn}/${key}`;
  const versioned = typeof call.input.VersionId === 'string';
  const request = (action: string, resource = object, extra: RequestContext = {}, because: string = call.command): IamRequest => ({
    action,
    resource,
    context: { ...s3Context, ...extra },
    because,
  });
  const kms = (action: string): IamRequest[] => {
    const keyArn = typeof call.input.SSEKMSKeyId === 'string' ? deployedKmsKey(instance, deployment) : bucket.kmsKeyArn;
    if (!keyArn) return [];
    return [
      {
        action,
        resource: keyArn,
        context: {
          ...secure,
          'kms:ViaService': `s3.${bucket.region}.amazonaws.com`,
          'kms:CallerAccount': instance.account,
          'kms:EncryptionContext:aws:s3:arn': bucket.bucketKey ? bucket.arn : object,
        },
        because: `${call.command} under SSE-KMS`,
        onBehalfBy: 's3',
      },
    ];
  };
  const missingKey =
    call.outcome.status === 404 && key !== ''
      ? [request('s3:ListBucket', bucket.arn, { 's3:prefix': key }, `${call.command} answered 404 (without s3:ListBucket S3 answers 403)`)]
      : [];
  switch (call.command) {
    case 'CreateMultipartUploadCommand':
    case 'PutObjectCommand':
      return [request('s3:PutObject'), ...kms('kms:GenerateDataKey')];
    case 'UploadPartCommand':
    case 'CompleteMultipartUploadCommand':
      return [request('s3:PutObject'), ...kms('kms:Decrypt')];
    case 'AbortMultipartUploadCommand':
      return [request('s3:AbortMultipartUpload')];
    case 'HeadObjectCommand':
      return [
        request('s3:GetObject'),
        ...(versioned ? [request('s3:GetObjectVersion')] : []),
        // Only retention reads the date; for anyone else S3 just leaves it out of the answer.
        ...(call.component === 'enforce-retention' && instance.settings.PGKEEP_OBJECT_LOCK === 'true' && bucket.objectLock
          ? [request('s3:GetObjectRetention', object, {}, `${call.command} (reads the Object Lock retain-until date)`)]
          : []),
        ...missingKey,
      ];
    case 'GetObjectCommand':
      return [
        request('s3:GetObject'),
        ...(versioned ? [request('s3:GetObjectVersion')] : []),
        ...(call.outcome.status === 404 ? [] : kms('kms:Decrypt')),
        ...missingKey,
      ];
    case 'GetObjectTaggingCommand':
      return [request(versioned ? 's3:GetObjectVersionTagging' : 's3:GetObjectTagging'), ...missingKey];
    case 'PutObjectTaggingCommand':
      return [request(versioned ? 's3:PutObjectVersionTagging' : 's3:PutObjectTagging'), ...missingKey];
    case 'ListObjectsV2Command':
      return [
        request('s3:ListBucket', bucket.arn, {
          's3:prefix': String(call.input.Prefix ?? ''),
          ...(typeof call.input.Delimiter === 'string' ? { 's3:delimiter': call.input.Delimiter } : {}),
          ...(typeof call.input.MaxKeys === 'number' ? { 's3:max-keys': String(call.input.MaxKeys) } : {}),
        }),
      ];
    case 'DeleteObjectsCommand': {
      const keys = Array.isArray(call.input.deleteKeys) ? call.input.deleteKeys : [];
      return keys.map((deleted) => request('s3:DeleteObject', `${bucket.arn}/${deleted}`, {}, 'DeleteObjectsCommand (per key)'));
    }
    case 'RestoreObjectCommand':
      return [request('s3:RestoreObject')];
  }
  throw new Error(
    `the authorization model has no IAM mapping for S3Client.${call.command}: add one to test/support/authz/call-permissions.ts, citing AWS's documentation`,
  );
}

/** The bucket the component is deployed with: its PGKEEP_BUCKET, or (verify-backup, which gets the
 * bucket from each S3 event) the bucket whose notification invokes it. */
export function deployedBucketName(instance: ComponentInstance, deployment: Deployment): string {
  const configured = instance.settings.PGKEEP_BUCKET;
  if (configured) return configured;
  const functionArn = deployment.functionArn(instance.name, instance);
  for (const notification of deployment.assembly.resources('Custom::S3BucketNotifications')) {
    const configurations =
      (notification.properties.NotificationConfiguration as { LambdaFunctionConfigurations?: { LambdaFunctionArn?: string }[] } | undefined)
        ?.LambdaFunctionConfigurations ?? [];
    if (configurations.some((configuration) => configuration.LambdaFunctionArn === functionArn)) return text(notification.properties.BucketName);
  }
  throw new Error(`${instance.name} has no PGKEEP_BUCKET and no bucket notification invokes it: which bucket does it read?`);
}

function deployedKmsKey(instance: ComponentInstance, deployment: Deployment): string {
  const configured = instance.settings.PGKEEP_KMS_KEY_ID;
  if (!configured) throw new Error(`${instance.name} sent an SSE-KMS key id in the test but is deployed without PGKEEP_KMS_KEY_ID`);
  return deployment.keyArn(configured, instance);
}
