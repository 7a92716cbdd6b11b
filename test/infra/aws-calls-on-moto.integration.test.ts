/**
 * One real path per runtime component against moto_server, a local implementation of the AWS APIs
 * pgkeep uses: the calls the other suites send to in-memory sinks (CloudWatch metrics from the task
 * and the functions, SNS alerts from verify-backup) are really sent here, and recorded for the
 * authorization model (test/infra/authz-model.test.ts). The bucket has what the deployed one has and the
 * local S3 server lacks: versioning, Object Lock and SSE-KMS with a bucket key.
 *
 * Each component runs as it is deployed: the tasks as their own process with their synthesized
 * prod task definition's environment, the functions' real handlers in a Lambda-like process with
 * their synthesized prod function's environment. The test's bucket, key and topic stand in for the
 * deployed ones, the throwaway cluster for the databases (its secrets' stand-in), and PGSSLMODE is
 * `disable` because the throwaway cluster has no TLS. Mocked: nothing; moto is the AWS side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudWatchClient, ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import type { S3Event } from 'aws-lambda';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { findNewestBackup, type Backup } from '../../runtime/listing.ts';
import { parseManifest, serializeManifest } from '../../catalog/manifest.ts';
import { METRICS_NAMESPACE } from '../../catalog/metrics.ts';
import type { Component } from '../support/aws-call-recorder.ts';
import { objectCreatedEvent } from '../../dev/s3-event.ts';
import { startTask } from '../../dev/task-process.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { CloudAssembly } from '../support/authz/cloud-assembly.ts';
import { Deployment, type ComponentInstance } from '../support/authz/deployment.ts';
import { scratchApp } from '../support/fixtures/infra-synth.ts';
import { invokeLikeLambda } from '../support/lambda-process.ts';
import { startMotoServer, type MotoServer } from '../support/moto-s3.ts';
import { withClient } from '../support/backup-harness.ts';

const BUCKET = 'pgkeep-moto-backups';
const SOURCE_DATABASE = 'shop';

let moto: MotoServer;
let cluster: ThrowawayCluster;
let deployment: Deployment;
let disposeAssembly: () => void;
let s3: S3Client;
let cloudWatch: CloudWatchClient;
let keyArn: string;
let topicArn: string;
let alertQueueUrl: string;
const backups = new Map<string, Backup>();

/** moto's JSON-protocol APIs the SDK clients of this repository do not cover (KMS, SQS); moto checks no signature. */
async function motoJson<T>(service: 'kms' | 'sqs', target: string, body: unknown): Promise<T> {
  const response = await fetch(moto.endpoint, {
    method: 'POST',
    headers: {
      'X-Amz-Target': target,
      'Content-Type': service === 'kms' ? 'application/x-amz-json-1.1' : 'application/x-amz-json-1.0',
      Authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${moto.region}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${target} failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

beforeAll(async () => {
  [moto, cluster] = await Promise.all([startMotoServer(), startThrowawayCluster()]);
  await cluster.createDatabase(SOURCE_DATABASE);
  await withClient(cluster.connectionString(SOURCE_DATABASE), async (client) => {
    await client.query('CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL)');
    await client.query("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 500) g");
  });

  // The prod environment as `cdk synth` writes it: what each component is deployed with.
  const scratch = scratchApp();
  addPgkeepStacks(scratch.app, { config: PGKEEP_ENVIRONMENTS, environment: 'prod' });
  scratch.app.synth();
  deployment = new Deployment(new CloudAssembly(scratch.outdir));
  disposeAssembly = () => scratch.dispose();

  const client = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
  s3 = new S3Client({ ...client, forcePathStyle: true });
  cloudWatch = new CloudWatchClient(client);
  const sns = new SNSClient(client);
  keyArn = (await motoJson<{ KeyMetadata: { Arn: string } }>('kms', 'TrentService.CreateKey', { Description: 'backups' })).KeyMetadata.Arn;
  await s3.send(
    new CreateBucketCommand({
      Bucket: BUCKET,
      ObjectLockEnabledForBucket: true,
      CreateBucketConfiguration: { LocationConstraint: moto.region as BucketLocationConstraint },
    }),
  );
  await s3.send(
    new PutBucketEncryptionCommand({
      Bucket: BUCKET,
      ServerSideEncryptionConfiguration: {
        Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn }, BucketKeyEnabled: true }],
      },
    }),
  );
  topicArn = (await sns.send(new CreateTopicCommand({ Name: 'pgkeep-alerts', Attributes: { KmsMasterKeyId: keyArn } }))).TopicArn!;
  // What reaches the topic is read back from a queue subscribed to it.
  alertQueueUrl = (await motoJson<{ QueueUrl: string }>('sqs', 'AmazonSQS.CreateQueue', { QueueName: 'pgkeep-alerts-inbox' })).QueueUrl;
  await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: `arn:aws:sqs:${moto.region}:123456789012:pgkeep-alerts-inbox`,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
});

afterAll(async () => {
  disposeAssembly?.();
  await moto?.stop();
  await cluster?.stop();
});

/** The deployed instance of `component` (for a task: the one of `database`), its settings pointed at this test's bucket, key and topic. */
function deployed(component: Component, database?: string): { instance: ComponentInstance; settings: Record<string, string> } {
  const instance = deployment.components.find(
    (candidate) =>
      candidate.component === component &&
      // The primary's verifier, not the vault's (PGKEEP_VERIFY_SITE=vault, in prod's vault account).
      (candidate.settings.PGKEEP_VERIFY_SITE ?? 'primary') === 'primary' &&
      (database === undefined || candidate.settings.PGKEEP_DATABASE_NAME === database || candidate.settings.PGKEEP_RESTORE_SOURCE === database),
  );
  if (!instance) throw new Error(`prod deploys no ${component}${database ? ` of ${database}` : ''}`);
  const standIns: Record<string, string> = { PGKEEP_BUCKET: BUCKET, PGKEEP_KMS_KEY_ID: keyArn, PGKEEP_ALERT_TOPIC_ARN: topicArn };
  const settings = Object.fromEntries(Object.entries(instance.settings).map(([name, value]) => [name, standIns[name] ?? value]));
  return { instance, settings };
}

function taskEnvironment(component: 'backup' | 'restore' | 'drill', database?: string): Record<string, string> {
  return { ...deployed(component, database).settings, ...moto.sdkEnvironment(), PGKEEP_S3_ENDPOINT: moto.endpoint, PGSSLMODE: 'disable' };
}

function invoke(component: 'verify-backup' | 'backup-health' | 'enforce-retention', event: unknown, overrides: Record<string, string> = {}) {
  const { instance, settings } = deployed(component);
  const timeout = deployment.assembly.resources('AWS::Lambda::Function').find((fn) => deployment.assembly.reference(fn.stack, fn.logicalId) === instance.name)
    ?.properties.Timeout;
  return invokeLikeLambda({
    component,
    handler: `functions/${component}/handler.ts`,
    environment: { ...settings, ...moto.sdkEnvironment(), AWS_LAMBDA_FUNCTION_NAME: instance.name, ...overrides },
    event,
    timeoutSeconds: Number(timeout ?? 30),
  });
}

async function metricsNamed(name: string): Promise<string[]> {
  const listed = await cloudWatch.send(new ListMetricsCommand({ Namespace: METRICS_NAMESPACE, MetricName: name }));
  return (listed.Metrics ?? []).map((metric) => metric.Dimensions?.find((dimension) => dimension.Name === 'Database')?.Value ?? '').sort();
}

function manifestCreated(backup: Backup): S3Event {
  return objectCreatedEvent(BUCKET, backup.manifestKey, moto.region);
}

describe('each component on moto, deployed as prod deploys it', () => {
  it('backup: backs up each database into the versioned, KMS-encrypted bucket and publishes its metrics to CloudWatch', async () => {
    for (const database of ['orders', 'billing']) {
      const exit = await startTask({ command: 'backup', env: { ...taskEnvironment('backup', database), ...cluster.env(SOURCE_DATABASE) } }).exited;
      expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
      const backup = await findNewestBackup(s3, { bucket: BUCKET, database });
      if (!backup) throw new Error(`no backup of ${database}`);
      backups.set(database, backup);
    }

    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: backups.get('orders')!.dataKey }));
    expect({ encryption: head.ServerSideEncryption, key: head.SSEKMSKeyId, versioned: typeof head.VersionId }).toEqual({
      encryption: 'aws:kms',
      key: keyArn,
      versioned: 'string',
    });
    expect(await metricsNamed('BackupSucceeded')).toEqual(['billing', 'orders']);
  });

  it('verify-backup: verifies an intact backup, and alerts over the SNS topic about one whose data object is gone', async () => {
    // Arrange: billing's data object is deleted (a delete marker on the versioned bucket).
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: backups.get('billing')!.dataKey }));

    // Act
    const intact = await invoke('verify-backup', manifestCreated(backups.get('orders')!));
    const missing = await invoke('verify-backup', manifestCreated(backups.get('billing')!));

    // Assert
    expect(intact.result, intact.error).toEqual({ verified: 1, notVerified: 0 });
    expect(missing.result, missing.error).toEqual({ verified: 0, notVerified: 1 });
    const received = await motoJson<{ Messages?: { Body: string }[] }>('sqs', 'AmazonSQS.ReceiveMessage', { QueueUrl: alertQueueUrl, MaxNumberOfMessages: 10 });
    expect(received.Messages?.map((message) => message.Body).join('\n')).toContain(backups.get('billing')!.dataKey);
    expect(await metricsNamed('BackupVerified')).toEqual(['orders']);
  });

  it('backup-health: reports each database and publishes the age of the newest verified backup', async () => {
    const outcome = await invoke('backup-health', {});

    expect(outcome.result, outcome.error).toEqual({ databases: 2, withoutVerifiedBackup: ['billing'] });
    expect(await metricsNamed('NewestVerifiedBackupAgeSeconds')).toEqual(['orders']);
  });

  it("enforce-retention: as prod runs it (a dry run on a bucket with Object Lock), reads each backup's lock and publishes what it would do", async () => {
    const outcome = await invoke('enforce-retention', {});

    expect(outcome.result, outcome.error).toEqual({ databases: 2, deleted: 0, errors: 0, dryRun: true });
    expect(await metricsNamed('RetentionKept')).toEqual(['billing', 'orders']);
  });

  it('enforce-retention: as dev runs it (deleting, no Object Lock), tags the kept backups with their tier and deletes nothing that is too young', async () => {
    // The calls depend on these two settings (the model holds calls made with Object Lock only
    // against deployments with Object Lock), so dev's combination runs too.
    const outcome = await invoke('enforce-retention', {}, { PGKEEP_OBJECT_LOCK: 'false', PGKEEP_RETENTION_DRY_RUN: 'false' });

    expect(outcome.result, outcome.error).toEqual({ databases: 2, deleted: 0, errors: 0, dryRun: false });
  });

  it('restore: restores the latest backup into a new database and publishes its metrics', async () => {
    const exit = await startTask({ command: 'restore', env: { ...taskEnvironment('restore', 'orders'), ...cluster.env('postgres') } }).exited;

    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(await metricsNamed('RestoreSucceeded')).toEqual(['orders']);
  });

  it('drill: passes for the verified backup, fails for the database without one, writes its records and publishes both outcomes', async () => {
    const exit = await startTask({ command: 'drill', env: taskEnvironment('drill') }).exited;

    expect(exit.code, JSON.stringify(exit.logs)).toBe(1);
    expect(await metricsNamed('DrillSucceeded')).toEqual(['orders']);
    expect(await metricsNamed('DrillFailed')).toEqual(['billing']);
  });

  it('restore: requests the retrieval of a backup that lifecycle moved to Glacier Flexible Retrieval, and exits 3', async () => {
    // Arrange: what a lifecycle transition does, the backup's version in the GLACIER storage class.
    // S3 changes the class of the version itself; moto cannot, so the data object is copied into
    // GLACIER (the same bytes) and the manifest made to record that copy's version, which is the
    // one the restore reads.
    const { dataKey, manifestKey } = backups.get('orders')!;
    const copy = await s3.send(
      new CopyObjectCommand({ Bucket: BUCKET, Key: dataKey, CopySource: `${BUCKET}/${encodeURIComponent(dataKey)}`, StorageClass: 'GLACIER' }),
    );
    const manifest = parseManifest(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey }))).Body!.transformToString());
    const archived = { ...manifest, object: { ...manifest.object, versionId: copy.VersionId, etag: copy.CopyObjectResult?.ETag } };
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: manifestKey, Body: serializeManifest(archived), ContentType: 'application/json' }));

    // Act
    const exit = await startTask({ command: 'restore', env: { ...taskEnvironment('restore', 'orders'), ...cluster.env('postgres') } }).exited;

    // Assert
    expect(exit.code, JSON.stringify(exit.logs)).toBe(3);
    expect((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: dataKey }))).Restore).toMatch(/ongoing-request/);
  });
});
