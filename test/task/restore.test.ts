/**
 * The restore's handling of archived backups against a mocked S3 client, plus its settings and
 * target naming.
 *
 * The mock stands in for S3 storage classes and RestoreObject, which the local S3 server does not
 * implement: on AWS, HeadObject reports an object's StorageClass and, once a retrieval was
 * requested, a Restore header (ongoing-request="true" while it runs, "false" with an expiry date
 * once the copy is readable). Only the S3 client is mocked; the restore code runs for real.
 * Restores themselves run against real PostgreSQL in restore.integration.test.ts.
 */
import { GetObjectCommand, HeadObjectCommand, RestoreObjectCommand, S3Client, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from '../../catalog/manifest.ts';
import { BackupFailure } from '../../task/errors.ts';
import { ArchivedBackupError, ensureReadable, restoreBackup, type ResolvedBackup } from '../../task/restore.ts';
import { defaultTargetDatabase, loadRestoreConfig, type RestoreConfig } from '../../task/restore-config.ts';
import { setClause, splitSettingList } from '../../task/restore-target.ts';
import { loadDrillConfig } from '../../task/drill.ts';
import { createS3Client, explainS3Error } from '../../task/s3.ts';

const BUCKET = 'acme-db-backups';
const DATABASE = 'shop';
const STARTED_AT = new Date('2026-11-23T18:32:54.123Z');
const BACKUP_ID = newBackupId(STARTED_AT, '3f9a2c');
const { dataKey: DATA_KEY, manifestKey: MANIFEST_KEY } = backupObjectKeys(DATABASE, BACKUP_ID);
const RESTORED_COPY = 'ongoing-request="false", expiry-date="Fri, 27 Nov 2026 00:00:00 GMT"';

const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
const s3Mock = mockClient(s3);
const logger = new Logger({ serviceName: 'pgkeep-test', logLevel: 'SILENT' });

beforeEach(() => {
  s3Mock.reset();
  s3Mock.on(RestoreObjectCommand).resolves({});
});

function archiveSettings(overrides: Partial<RestoreConfig['archive']> = {}): RestoreConfig['archive'] {
  return { tier: 'Standard', wait: false, retrievalDays: 3, pollSeconds: 300, maxWaitHours: 48, ...overrides };
}

function head(output: Partial<HeadObjectCommandOutput>): HeadObjectCommandOutput {
  return { $metadata: {}, ContentLength: 1024, ...output };
}

async function failureOf(promise: Promise<unknown>): Promise<BackupFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BackupFailure) return error;
    throw error;
  }
  throw new Error('expected a BackupFailure, but it succeeded');
}

describe('an archived backup object', () => {
  it('in Deep Archive with no retrieval yet: requests one with the configured tier and days, then stops saying how long it takes', async () => {
    // Arrange
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'DEEP_ARCHIVE' }));

    // Act
    const failure = await failureOf(
      ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings({ tier: 'Standard', retrievalDays: 3 }), logger, new AbortController().signal),
    );

    // Assert
    expect(failure).toBeInstanceOf(ArchivedBackupError);
    expect(failure.stage).toBe('archived');
    expect(failure.message).toContain(`s3://${BUCKET}/${DATA_KEY} is in DEEP_ARCHIVE`);
    expect(failure.message).toContain('up to 12 hours');
    expect(failure.remedy).toContain('PGKEEP_RESTORE_WAIT_FOR_ARCHIVE=true');
    const requests = s3Mock.commandCalls(RestoreObjectCommand);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.args[0].input).toEqual({ Bucket: BUCKET, Key: DATA_KEY, RestoreRequest: { Days: 3, GlacierJobParameters: { Tier: 'Standard' } } });
  });

  it('in Glacier Flexible Retrieval: uses the configured tier and says how long that tier takes', async () => {
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'GLACIER' }));

    const failure = await failureOf(
      ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings({ tier: 'Bulk', retrievalDays: 5 }), logger, new AbortController().signal),
    );

    expect(failure.stage).toBe('archived');
    expect(failure.message).toContain('5-12 hours');
    expect(s3Mock.commandCalls(RestoreObjectCommand)[0]!.args[0].input.RestoreRequest).toEqual({ Days: 5, GlacierJobParameters: { Tier: 'Bulk' } });
  });

  it('in Deep Archive with Expedited configured: requests Standard, the fastest tier Deep Archive offers', async () => {
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'DEEP_ARCHIVE' }));

    const failure = await failureOf(ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings({ tier: 'Expedited' }), logger, new AbortController().signal));

    expect(failure.stage).toBe('archived');
    expect(s3Mock.commandCalls(RestoreObjectCommand)[0]!.args[0].input.RestoreRequest?.GlacierJobParameters).toEqual({ Tier: 'Standard' });
  });

  it('in an Intelligent-Tiering archive tier: requests a retrieval without a number of days, which S3 refuses there', async () => {
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'INTELLIGENT_TIERING', ArchiveStatus: 'DEEP_ARCHIVE_ACCESS' }));

    const failure = await failureOf(ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings({ tier: 'Bulk' }), logger, new AbortController().signal));

    expect(failure.stage).toBe('archived');
    expect(s3Mock.commandCalls(RestoreObjectCommand)[0]!.args[0].input.RestoreRequest).toEqual({ GlacierJobParameters: { Tier: 'Bulk' } });
  });

  it('whose retrieval is already running: requests no second one and still stops as archived', async () => {
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'DEEP_ARCHIVE', Restore: 'ongoing-request="true"' }));

    const failure = await failureOf(ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings(), logger, new AbortController().signal));

    expect(failure).toBeInstanceOf(ArchivedBackupError);
    expect(failure.stage).toBe('archived');
    expect(failure.message).toContain('is in progress');
    expect(s3Mock.commandCalls(RestoreObjectCommand)).toHaveLength(0);
  });

  it('whose retrieved copy is available: proceeds without requesting anything', async () => {
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'DEEP_ARCHIVE', Restore: RESTORED_COPY }));

    await expect(ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings(), logger, new AbortController().signal)).resolves.toBeUndefined();

    expect(s3Mock.commandCalls(RestoreObjectCommand)).toHaveLength(0);
  });

  it.each(['GLACIER_IR', 'STANDARD_IA', 'STANDARD', undefined])('in %s (readable in real time): proceeds without any RestoreObject', async (storageClass) => {
    s3Mock.on(HeadObjectCommand).resolves(head(storageClass ? { StorageClass: storageClass as HeadObjectCommandOutput['StorageClass'] } : {}));

    await expect(ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings(), logger, new AbortController().signal)).resolves.toBeUndefined();

    expect(s3Mock.commandCalls(RestoreObjectCommand)).toHaveLength(0);
  });

  it('in wait mode: requests a retrieval once, polls until the copy is readable, then proceeds', async () => {
    // Arrange: not requested yet, then running, then done.
    s3Mock
      .on(HeadObjectCommand)
      .resolvesOnce(head({ StorageClass: 'DEEP_ARCHIVE' }))
      .resolvesOnce(head({ StorageClass: 'DEEP_ARCHIVE', Restore: 'ongoing-request="true"' }))
      .resolvesOnce(head({ StorageClass: 'DEEP_ARCHIVE', Restore: 'ongoing-request="true"' }))
      .resolves(head({ StorageClass: 'DEEP_ARCHIVE', Restore: RESTORED_COPY }));

    // Act
    await ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings({ wait: true, pollSeconds: 0.01 }), logger, new AbortController().signal);

    // Assert
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(4);
    expect(s3Mock.commandCalls(RestoreObjectCommand)).toHaveLength(1);
  });

  it('in wait mode: gives up as archived once the maximum wait has passed', async () => {
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'GLACIER', Restore: 'ongoing-request="true"' }));

    const failure = await failureOf(
      ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings({ wait: true, pollSeconds: 0.01, maxWaitHours: 0 }), logger, new AbortController().signal),
    );

    expect(failure.stage).toBe('archived');
  });

  it('in wait mode: stops waiting when the task is stopped', async () => {
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'GLACIER', Restore: 'ongoing-request="true"' }));
    const stop = new AbortController();

    const waiting = ensureReadable(s3, BUCKET, DATA_KEY, archiveSettings({ wait: true, pollSeconds: 3600 }), logger, stop.signal);
    stop.abort(new Error('received SIGTERM'));

    await expect(waiting).rejects.toThrow();
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(1);
  });

  it('stops the whole restore before it touches the target server or reads the object', async () => {
    // Arrange: a target nothing listens on, so any connection attempt would fail differently.
    s3Mock.on(HeadObjectCommand).resolves(head({ StorageClass: 'DEEP_ARCHIVE' }));
    const config: RestoreConfig = {
      ...loadRestoreConfig({ PGKEEP_BUCKET: BUCKET, PGHOST: '127.0.0.1', PGPORT: '1', PGUSER: 'restorer', PGKEEP_RESTORE_SOURCE: DATABASE }),
      archive: archiveSettings(),
    };

    // Act
    const failure = await failureOf(restoreBackup(s3, config, resolvedBackup(), logger, new AbortController().signal));

    // Assert
    expect(failure).toBeInstanceOf(ArchivedBackupError);
    expect(s3Mock.commandCalls(RestoreObjectCommand)).toHaveLength(1);
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0);
  });
});

function resolvedBackup(): ResolvedBackup {
  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    backupId: BACKUP_ID,
    database: DATABASE,
    environment: 'prod',
    startedAt: STARTED_AT.toISOString(),
    finishedAt: '2026-11-23T18:41:07.500Z',
    pgkeepVersion: '0.1.0',
    source: { host: 'db.example.com', port: 5432, databaseName: DATABASE, serverVersion: '15.8', serverVersionNum: 150008, inRecovery: false },
    dump: { tool: 'pg_dump', version: '15.8', major: 15, format: 'custom', snapshotId: '00000003-0000001B-1', uncompressedBytes: 9_000_000 },
    compression: { algorithm: 'zstd', level: 3, threads: 0 },
    encryption: { mode: 'sse-s3' },
    object: {
      key: DATA_KEY,
      bytes: 1024,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      crc64nvme: 'rosUhgp5mIg=',
      partCount: 1,
      s3ChecksumEnforced: true,
    },
    tables: [{ schema: 'public', table: 'orders', rows: 1000, rowsSource: 'exact', bytes: 81_920 }],
  };
  return {
    backup: {
      database: DATABASE,
      backupId: BACKUP_ID,
      startedAt: STARTED_AT,
      dataKey: DATA_KEY,
      manifestKey: MANIFEST_KEY,
      dataBytes: 1024,
      siblingKeys: [],
      state: 'complete',
    },
    manifest,
    verification: { status: 'verified', method: 'crc64nvme', verifiedAt: '2026-11-23T18:45:00.000Z' },
  };
}

describe('the default target database name', () => {
  it('is <source>_<yyyymmdd_hhmmss> of the backup start, in UTC', () => {
    expect(defaultTargetDatabase('shop', STARTED_AT)).toBe('shop_20261123_183254');
  });

  it('shortens a long non-ASCII source name to fit 63 bytes without splitting a character', () => {
    // 'é' is 2 bytes in UTF-8: 40 of them (80 bytes) cannot all fit beside the 16-byte suffix.
    const name = defaultTargetDatabase('é'.repeat(40), STARTED_AT);

    expect(name).toBe(`${'é'.repeat(23)}_20261123_183254`);
    expect(Buffer.byteLength(name)).toBe(62);
    expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);
  });

  it('keeps characters outside the Basic Multilingual Plane whole (no lone surrogate halves)', () => {
    // '🐘' is 4 bytes in UTF-8 and two UTF-16 code units in JavaScript.
    const name = defaultTargetDatabase(`x${'🐘'.repeat(20)}`, STARTED_AT);

    expect(name).toBe(`x${'🐘'.repeat(11)}_20261123_183254`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(/\p{Cs}/u.test(name)).toBe(false);
  });

  it('uses all 63 bytes when an ASCII name allows', () => {
    const name = defaultTargetDatabase('a'.repeat(60), STARTED_AT);

    expect(name).toBe(`${'a'.repeat(47)}_20261123_183254`);
    expect(Buffer.byteLength(name)).toBe(63);
  });
});

describe('the restore settings', () => {
  const minimal = { PGKEEP_BUCKET: BUCKET, PGHOST: 'db.example.com', PGUSER: 'restorer', PGPASSWORD: 's3cret-Pa55', PGKEEP_RESTORE_SOURCE: DATABASE };

  function configurationFailure(env: Record<string, string>): BackupFailure {
    try {
      loadRestoreConfig(env);
    } catch (error) {
      if (error instanceof BackupFailure) return error;
      throw error;
    }
    throw new Error('expected loadRestoreConfig to refuse these settings');
  }

  it('default to the latest backup, streamed into a new database, connecting to "postgres" to create it', () => {
    const config = loadRestoreConfig(minimal);

    expect(config).toMatchObject({
      sourceDatabase: DATABASE,
      selector: { kind: 'latest' },
      mode: 'new',
      targetDatabase: undefined,
      jobs: 1,
      forceUnverified: false,
    });
    expect(config.target).toMatchObject({ host: 'db.example.com', user: 'restorer', database: 'postgres' });
    expect(config.archive).toMatchObject({ tier: 'Standard', wait: false });
  });

  it("read the bucket in PGKEEP_BUCKET_REGION (the vault's), and in the task's own region without it", async () => {
    const vault = loadRestoreConfig({ ...minimal, AWS_REGION: 'eu-west-1', PGKEEP_BUCKET_REGION: 'eu-central-1' });
    const own = loadRestoreConfig({ ...minimal, AWS_REGION: 'eu-west-1' });

    expect(vault.s3.region).toBe('eu-central-1');
    expect(await createS3Client(vault.s3).config.region()).toBe('eu-central-1');
    expect(own.s3.region).toBe('eu-west-1');
  });

  it('refuse a PGKEEP_BUCKET_REGION that is no region name, naming it', () => {
    expect(configurationFailure({ ...minimal, PGKEEP_BUCKET_REGION: 'Frankfurt' }).message).toContain(
      'PGKEEP_BUCKET_REGION="Frankfurt" is invalid: expected an AWS region name such as eu-west-1.',
    );
  });

  it('read a timestamp as "the newest backup at or before it", and a backup key as that backup of that database', () => {
    expect(loadRestoreConfig({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-11-20T06:00:00Z' }).selector).toEqual({
      kind: 'at-or-before',
      at: new Date('2026-11-20T06:00:00Z'),
    });

    const fromKey = loadRestoreConfig({ ...minimal, PGKEEP_RESTORE_SOURCE: '', PGKEEP_RESTORE_BACKUP: backupObjectKeys('billing', BACKUP_ID).manifestKey });
    expect(fromKey.sourceDatabase).toBe('billing');
    expect(fromKey.selector).toEqual({ kind: 'backup-id', backupId: BACKUP_ID });
  });

  it('refuse a timestamp without a time zone, which would mean different instants on different machines', () => {
    const failure = configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-11-20T06:00:00' });

    expect(failure.message).toContain('PGKEEP_RESTORE_BACKUP="2026-11-20T06:00:00" has no time zone');
    expect(loadRestoreConfig({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-11-20T07:00:00+01:00' }).selector).toEqual({
      kind: 'at-or-before',
      at: new Date('2026-11-20T06:00:00Z'),
    });
  });

  it('refuse a timestamp that names no real date or time of day, saying which part is wrong rather than blaming the time zone', () => {
    const failure = configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-13-45T99:99:99Z' });

    expect(failure.message).toContain('PGKEEP_RESTORE_BACKUP="2026-13-45T99:99:99Z" is not a valid date and time: month 13 does not exist');
    expect(failure.message).not.toContain('time zone');
    expect(configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-02-30T06:00:00Z' }).message).toContain('February 2026 has no day 30');
    expect(configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-12-02T24:30:00Z' }).message).toContain('hour 24 does not exist');
    expect(configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-12-02T06:00:00+25:00' }).message).toContain('offset +25:00 does not exist');
  });

  it('accept a space between date and time, as RFC 3339 allows, and a lower-case t or z', () => {
    expect(loadRestoreConfig({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-12-02 06:00:00Z' }).selector).toEqual({
      kind: 'at-or-before',
      at: new Date('2026-12-02T06:00:00Z'),
    });
    expect(loadRestoreConfig({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-12-02t06:00:00.5z' }).selector).toEqual({
      kind: 'at-or-before',
      at: new Date('2026-12-02T06:00:00.500Z'),
    });
    expect(loadRestoreConfig({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-12-02 07:00:00+01:00' }).selector).toEqual({
      kind: 'at-or-before',
      at: new Date('2026-12-02T06:00:00Z'),
    });
  });

  it('refuse a date without a time of day as such', () => {
    expect(configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: '2026-12-02' }).message).toContain(
      'PGKEEP_RESTORE_BACKUP="2026-12-02" has no time of day and no time zone',
    );
  });

  it('refuse replace mode without a confirmation, naming PGKEEP_RESTORE_CONFIRM', () => {
    const failure = configurationFailure({ ...minimal, PGKEEP_RESTORE_MODE: 'replace', PGKEEP_RESTORE_TARGET_DATABASE: 'shop' });

    expect(failure.stage).toBe('configuration');
    expect(failure.message).toContain('PGKEEP_RESTORE_MODE=replace needs PGKEEP_RESTORE_CONFIRM');
  });

  it('refuse replace mode without a target database, naming PGKEEP_RESTORE_TARGET_DATABASE', () => {
    const failure = configurationFailure({ ...minimal, PGKEEP_RESTORE_MODE: 'replace', PGKEEP_RESTORE_CONFIRM: 'shop' });

    expect(failure.message).toContain('PGKEEP_RESTORE_MODE=replace needs PGKEEP_RESTORE_TARGET_DATABASE');
  });

  it('refuse a PGKEEP_RESTORE_BACKUP that is neither latest, a timestamp, a backup id nor a key', () => {
    const failure = configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: 'yesterday' });

    expect(failure.stage).toBe('configuration');
    expect(failure.message).toContain('PGKEEP_RESTORE_BACKUP="yesterday" is invalid');
  });

  it('refuse a backup key of another database than PGKEEP_RESTORE_SOURCE, naming both', () => {
    const failure = configurationFailure({ ...minimal, PGKEEP_RESTORE_BACKUP: backupObjectKeys('billing', BACKUP_ID).dataKey });

    expect(failure.message).toContain('PGKEEP_RESTORE_BACKUP is a backup of "billing", but PGKEEP_RESTORE_SOURCE says "shop"');
  });

  it('report every problem at once and never the password', () => {
    const failure = configurationFailure({ PGKEEP_BUCKET: BUCKET, PGPASSWORD: minimal.PGPASSWORD, PGKEEP_RESTORE_BACKUP: 'soon', PGKEEP_RESTORE_JOBS: '0' });

    for (const setting of ['PGKEEP_RESTORE_SOURCE', 'PGKEEP_RESTORE_BACKUP', 'PGKEEP_RESTORE_JOBS', 'PGHOST', 'PGUSER'])
      expect(failure.message).toContain(setting);
    expect(`${failure.message} ${failure.remedy}`).not.toContain(minimal.PGPASSWORD);
  });
});

describe('a database setting carried over to a replacing copy', () => {
  const identifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;
  const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;

  it('of a list setting is split into its elements, unquoted, as pg_dump does', () => {
    expect(splitSettingList('"$user", public, "Odd ""Schema"""')).toEqual(['$user', 'public', 'Odd "Schema"']);
    expect(setClause('search_path="$user", public', identifier, literal)).toBe(`SET "search_path" = '$user', 'public'`);
  });

  it('of any other setting is one literal, whatever it contains', () => {
    expect(setClause('work_mem=7MB', identifier, literal)).toBe(`SET "work_mem" = '7MB'`);
    expect(setClause("myapp.greeting=it's a=b, c", identifier, literal)).toBe(`SET "myapp.greeting" = 'it''s a=b, c'`);
  });
});

describe('the drill reading the vault', () => {
  const vault = { PGKEEP_BUCKET: 'pgkeep-prod-vault-222222222222-eu-central-1', PGKEEP_BUCKET_REGION: 'eu-central-1', AWS_REGION: 'eu-west-1' };
  const drill = { PGKEEP_ENVIRONMENT: 'prod', PGKEEP_DRILL_DATABASES: '["orders"]' };

  it("reads the vault in its region and writes the records to PGKEEP_DRILL_RECORD_BUCKET in the task's own", () => {
    const config = loadDrillConfig({ ...drill, ...vault, PGKEEP_DRILL_RECORD_BUCKET: 'pgkeep-prod-backups' });

    expect(config.s3).toMatchObject({ bucket: vault.PGKEEP_BUCKET, region: 'eu-central-1' });
    expect(config.recordS3).toMatchObject({ bucket: 'pgkeep-prod-backups', region: 'eu-west-1' });
  });

  it('is refused without PGKEEP_DRILL_RECORD_BUCKET, since a vault can only be read', () => {
    expect(() => loadDrillConfig({ ...drill, ...vault })).toThrow(/PGKEEP_DRILL_RECORD_BUCKET is not set, but PGKEEP_BUCKET_REGION \(eu-central-1\)/);
  });
});

describe('an S3 error from a bucket in another region', () => {
  it.each([
    ['PermanentRedirect', { name: 'PermanentRedirect', message: 'The bucket you are attempting to access must be addressed using the specified endpoint.' }],
    ['a bodiless 301 (HeadObject)', { name: 'Unknown', message: 'UnknownError', $metadata: { httpStatusCode: 301 } }],
    ['AuthorizationHeaderMalformed', { name: 'AuthorizationHeaderMalformed', message: "the region 'eu-west-1' is wrong; expecting 'eu-central-1'" }],
  ])('%s names the stage and says to set PGKEEP_BUCKET_REGION', (_label, error) => {
    const failure = explainS3Error(Object.assign(new Error(error.message), error), 'restore', 'vault-bucket', 'backups/orders/x.manifest.json');

    expect(failure.stage).toBe('restore');
    expect(failure.message).toContain('s3://vault-bucket/backups/orders/x.manifest.json');
    expect(failure.remedy).toContain('PGKEEP_BUCKET_REGION');
  });
});
