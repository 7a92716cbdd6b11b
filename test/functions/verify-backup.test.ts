/**
 * verify-backup's O(1) path against a mocked S3 client.
 *
 * The mock stands in for S3's checksum behaviour: real S3 reports the full-object CRC64NVME of an
 * object uploaded with checksums on HeadObject (ChecksumMode ENABLED), which lets the function
 * verify a backup of any size without downloading it. The local S3 server stores no checksums, so
 * this path cannot run against it (the SHA-256 path is covered in verify-backup.integration.test.ts).
 * Only the S3 client is mocked; the verification, tagging, metrics and alerts code runs for real.
 */
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  type GetObjectCommandOutput,
  type Tag,
} from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from '../../catalog/manifest.ts';
import { METRIC } from '../../catalog/metrics.ts';
import { collectingSink } from '../../runtime/metrics.ts';
import { VERIFICATION_METHOD_TAG, VERIFICATION_TAG, VERIFIED_AT_TAG } from '../../runtime/verification.ts';
import { collectingAlertSink } from '../../functions/shared/alerts.ts';
import { keyFromS3Event } from '../../functions/verify-backup/handler.ts';
import { processManifest, type VerifyDependencies } from '../../functions/verify-backup/process.ts';
import { verifyBackup } from '../../functions/verify-backup/verify.ts';

const BUCKET = 'acme-db-backups';
const DATABASE = 'shop';
const STARTED_AT = new Date('2026-11-23T18:32:54.123Z');
const BACKUP_ID = newBackupId(STARTED_AT, '3f9a2c');
const { dataKey: DATA_KEY, manifestKey: MANIFEST_KEY } = backupObjectKeys(DATABASE, BACKUP_ID);
const OBJECT_BYTES = 5_368_709_120; // 5 GiB: far too large to download; the check must not try.
const CRC64NVME = 'rosUhgp5mIg=';
const OTHER_CRC64NVME = 'AAAAAAAAAAA=';
const VERIFIED_AT = new Date('2026-11-23T18:45:00.000Z');

const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
const s3Mock = mockClient(s3);

function validManifest(): Manifest {
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    backupId: BACKUP_ID,
    database: DATABASE,
    environment: 'prod',
    startedAt: STARTED_AT.toISOString(),
    finishedAt: '2026-11-23T18:41:07.500Z',
    pgkeepVersion: '0.1.0',
    source: { host: 'db.example.com', port: 5432, databaseName: 'shop', serverVersion: '15.8', serverVersionNum: 150008, inRecovery: false },
    dump: { tool: 'pg_dump', version: '15.8', major: 15, format: 'custom', snapshotId: '00000003-0000001B-1', uncompressedBytes: 9_000_000_000 },
    compression: { algorithm: 'zstd', level: 3, threads: 0 },
    encryption: { mode: 'sse-kms', kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abcd' },
    object: {
      key: DATA_KEY,
      bytes: OBJECT_BYTES,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      crc64nvme: CRC64NVME,
      partCount: 160,
      s3ChecksumEnforced: true,
    },
    tables: [{ schema: 'public', table: 'orders', rows: 1000, rowsSource: 'exact', bytes: 81_920 }],
  };
}

/** What GetObject returns for the manifest: only the part of a streaming body the code reads. */
function manifestBody(manifest: Manifest): GetObjectCommandOutput['Body'] {
  const text = JSON.stringify(manifest);
  return { transformToString: () => Promise.resolve(text) } as unknown as GetObjectCommandOutput['Body'];
}

interface BucketState {
  manifest?: Manifest;
  /** What HeadObject (ChecksumMode ENABLED) says about the data object. */
  head?: { ContentLength?: number; ChecksumCRC64NVME?: string };
  dataTags?: Tag[];
  manifestTags?: Tag[];
}

/** A bucket holding one backup: the manifest, and a data object as HeadObject describes it. */
function givenBackup({
  manifest = validManifest(),
  head = { ContentLength: OBJECT_BYTES, ChecksumCRC64NVME: CRC64NVME },
  dataTags = [],
  manifestTags = [],
}: BucketState = {}): void {
  s3Mock.on(GetObjectCommand, { Key: MANIFEST_KEY }).resolves({ Body: manifestBody(manifest), ContentLength: JSON.stringify(manifest).length });
  s3Mock.on(GetObjectCommand, { Key: DATA_KEY }).rejects(new Error('the O(1) check must not download the data object'));
  s3Mock.on(HeadObjectCommand, { Key: DATA_KEY }).resolves(head);
  s3Mock.on(GetObjectTaggingCommand, { Key: DATA_KEY }).resolves({ TagSet: dataTags });
  s3Mock.on(GetObjectTaggingCommand, { Key: MANIFEST_KEY }).resolves({ TagSet: manifestTags });
  s3Mock.on(PutObjectTaggingCommand).resolves({});
}

function verify() {
  return verifyBackup({ s3, bucket: BUCKET, manifestKey: MANIFEST_KEY, maxStreamBytes: 10 * 2 ** 30 });
}

function dependencies() {
  const metrics = collectingSink();
  const alerts = collectingAlertSink();
  const deps: VerifyDependencies = {
    s3,
    metrics,
    alerts,
    logger: new Logger({ logLevel: 'SILENT' }),
    environment: 'prod',
    maxStreamBytes: 10 * 2 ** 30,
    now: () => VERIFIED_AT,
  };
  return { deps, metrics, alerts };
}

/** The tags the last PutObjectTagging wrote to a key, as a record. */
function tagsWrittenTo(key: string): Record<string, string> {
  const calls = s3Mock.commandCalls(PutObjectTaggingCommand, { Key: key });
  const tagSet = calls.at(-1)?.args[0].input.Tagging?.TagSet ?? [];
  return Object.fromEntries(tagSet.map((tag): [string, string] => [tag.Key ?? '', tag.Value ?? '']));
}

beforeEach(() => {
  s3Mock.reset();
});

describe('verifyBackup where S3 reports the full-object CRC64NVME', () => {
  it('verifies a backup whose checksum matches with one HeadObject, without downloading the data object', async () => {
    // Arrange
    givenBackup();

    // Act
    const report = await verify();

    // Assert
    expect(report).toMatchObject({
      status: 'verified',
      method: 'crc64nvme',
      problems: [],
      remedy: '',
      dataKey: DATA_KEY,
      dataObjectExists: true,
      database: DATABASE,
      backupId: BACKUP_ID,
    });
    expect(s3Mock.commandCalls(GetObjectCommand, { Key: DATA_KEY })).toHaveLength(0);
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(1);
    expect(s3Mock.commandCalls(HeadObjectCommand)[0]?.args[0].input).toMatchObject({ Key: DATA_KEY, ChecksumMode: 'ENABLED' });
  });

  it('fails a backup whose checksum differs, naming both values', async () => {
    // Arrange
    givenBackup({ head: { ContentLength: OBJECT_BYTES, ChecksumCRC64NVME: OTHER_CRC64NVME } });

    // Act
    const report = await verify();

    // Assert
    expect(report.status).toBe('failed');
    expect(report.method).toBe('crc64nvme');
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toContain(OTHER_CRC64NVME);
    expect(report.problems[0]).toContain(CRC64NVME);
    expect(report.problems[0]).toContain(`s3://${BUCKET}/${DATA_KEY}`);
    expect(report.remedy).toContain('Do not restore from it');
    expect(s3Mock.commandCalls(GetObjectCommand, { Key: DATA_KEY })).toHaveLength(0);
  });

  it('fails a backup uploaded with checksums enforced when S3 reports no checksum for it', async () => {
    // Arrange: e.g. the object was replaced by a copy made without checksums.
    givenBackup({ head: { ContentLength: OBJECT_BYTES } });

    // Act
    const report = await verify();

    // Assert
    expect(report.status).toBe('failed');
    expect(report.problems).toEqual([`S3 reports no CRC64NVME for s3://${BUCKET}/${DATA_KEY}, although it was uploaded with checksums enforced.`]);
    expect(report.remedy).toContain('restore drill');
    expect(s3Mock.commandCalls(GetObjectCommand, { Key: DATA_KEY })).toHaveLength(0);
  });

  it('fails a backup whose data object has another size than the manifest says, naming both sizes', async () => {
    // Arrange: a matching checksum must not rescue a truncated object.
    givenBackup({ head: { ContentLength: 1_048_576, ChecksumCRC64NVME: CRC64NVME } });

    // Act
    const report = await verify();

    // Assert
    expect(report.status).toBe('failed');
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toContain('1048576 bytes');
    expect(report.problems[0]).toContain(String(OBJECT_BYTES));
    expect(report.remedy).toContain('truncated or replaced');
  });
});

describe('processManifest records the outcome', () => {
  it('for a manifest deleted before verification ran: no metric, no alert, no tag, and no error that would make Lambda retry', async () => {
    givenBackup();
    s3Mock.on(GetObjectCommand, { Key: MANIFEST_KEY }).rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }));
    const { deps, metrics, alerts } = dependencies();

    const result = await processManifest(deps, { bucket: BUCKET, manifestKey: MANIFEST_KEY });

    expect(result).toMatchObject({ manifestGone: true, duplicate: false });
    expect(metrics.published).toEqual([]);
    expect(alerts.sent).toEqual([]);
    expect(s3Mock.commandCalls(PutObjectTaggingCommand)).toEqual([]);
  });

  it('for a verified backup: one BackupVerified datum, merged tags on data object and manifest, no alert', async () => {
    // Arrange: retention's tier tag is already on the data object, and another tag on the manifest.
    givenBackup({ dataTags: [{ Key: 'pgkeep:tier', Value: 'monthly' }], manifestTags: [{ Key: 'team', Value: 'payments' }] });
    const { deps, metrics, alerts } = dependencies();

    // Act
    const result = await processManifest(deps, { bucket: BUCKET, manifestKey: MANIFEST_KEY });

    // Assert
    expect(result).toMatchObject({ status: 'verified', method: 'crc64nvme', duplicate: false });
    expect(metrics.published).toEqual([
      {
        MetricName: METRIC.backupVerified,
        Value: 1,
        Unit: 'Count',
        Timestamp: VERIFIED_AT,
        Dimensions: [
          { Name: 'Environment', Value: 'prod' },
          { Name: 'Database', Value: DATABASE },
        ],
      },
    ]);
    const verificationTags = { [VERIFICATION_TAG]: 'verified', [VERIFICATION_METHOD_TAG]: 'crc64nvme', [VERIFIED_AT_TAG]: VERIFIED_AT.toISOString() };
    expect(tagsWrittenTo(DATA_KEY)).toEqual({ 'pgkeep:tier': 'monthly', ...verificationTags });
    expect(tagsWrittenTo(MANIFEST_KEY)).toEqual({ team: 'payments', ...verificationTags });
    expect(alerts.sent).toEqual([]);
  });

  it("writes the manifest's tag last, because it marks the work done for a redelivered event", async () => {
    // Arrange
    givenBackup();
    const { deps } = dependencies();

    // Act
    await processManifest(deps, { bucket: BUCKET, manifestKey: MANIFEST_KEY });

    // Assert
    const lastCall = s3Mock.calls().at(-1)?.args[0];
    expect(lastCall).toBeInstanceOf(PutObjectTaggingCommand);
    expect((lastCall as PutObjectTaggingCommand).input.Key).toBe(MANIFEST_KEY);
  });

  it('for a failed backup: one BackupVerificationFailed datum and one alert naming the database, the object and what to do', async () => {
    // Arrange
    givenBackup({ head: { ContentLength: OBJECT_BYTES, ChecksumCRC64NVME: OTHER_CRC64NVME } });
    const { deps, metrics, alerts } = dependencies();

    // Act
    const result = await processManifest(deps, { bucket: BUCKET, manifestKey: MANIFEST_KEY });

    // Assert
    expect(result.status).toBe('failed');
    expect(metrics.published.map((datum) => datum.MetricName)).toEqual([METRIC.backupVerificationFailed]);
    expect(metrics.published[0]?.Dimensions).toEqual([
      { Name: 'Environment', Value: 'prod' },
      { Name: 'Database', Value: DATABASE },
    ]);
    expect(alerts.sent).toHaveLength(1);
    expect(alerts.sent[0]?.subject).toContain(DATABASE);
    expect(alerts.sent[0]?.subject).toContain('FAILED');
    expect(alerts.sent[0]?.message).toContain(`s3://${BUCKET}/${DATA_KEY}`);
    expect(alerts.sent[0]?.message).toContain(OTHER_CRC64NVME);
    expect(alerts.sent[0]?.message).toContain('What to do: ');
    expect(tagsWrittenTo(DATA_KEY)).toMatchObject({ [VERIFICATION_TAG]: 'failed' });
    expect(tagsWrittenTo(MANIFEST_KEY)).toMatchObject({ [VERIFICATION_TAG]: 'failed' });
  });

  it('ignores a manifest that already carries a verification tag, publishing and re-checking nothing', async () => {
    // Arrange
    givenBackup({
      manifestTags: [
        { Key: VERIFICATION_TAG, Value: 'failed' },
        { Key: VERIFICATION_METHOD_TAG, Value: 'crc64nvme' },
      ],
    });
    const { deps, metrics, alerts } = dependencies();

    // Act
    const result = await processManifest(deps, { bucket: BUCKET, manifestKey: MANIFEST_KEY });

    // Assert
    expect(result).toMatchObject({ duplicate: true, status: 'failed', method: 'crc64nvme' });
    expect(metrics.published).toEqual([]);
    expect(alerts.sent).toEqual([]);
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0);
    expect(s3Mock.commandCalls(PutObjectTaggingCommand)).toHaveLength(0);
  });
});

describe('keyFromS3Event', () => {
  it.each([
    ['a plain key', 'backups/shop/20261123T183254.123Z-3f9a2c.manifest.json', 'backups/shop/20261123T183254.123Z-3f9a2c.manifest.json'],
    ["'+' as a space", 'backups/a+b/x.manifest.json', 'backups/a b/x.manifest.json'],
    ["%2B as a literal '+'", 'backups/a%2Bb/x.manifest.json', 'backups/a+b/x.manifest.json'],
    ["pgkeep's own %20 in a database segment, encoded again by S3 as %2520", 'backups/my%2520shop/x.manifest.json', 'backups/my%20shop/x.manifest.json'],
    ['non-ASCII as UTF-8 %XX', 'backups/caf%C3%A9/x.manifest.json', 'backups/café/x.manifest.json'],
  ])('decodes %s', (_label, encoded, expected) => {
    expect(keyFromS3Event(encoded)).toBe(expected);
  });

  it('gives the manifest key pgkeep wrote for a database whose name has a space and a plus sign', () => {
    const { manifestKey } = backupObjectKeys('my shop+2', BACKUP_ID);
    const asS3SendsIt = encodeURIComponent(manifestKey).replace(/%2F/g, '/').replace(/%20/g, '+');

    expect(keyFromS3Event(asS3SendsIt)).toBe(manifestKey);
  });
});
