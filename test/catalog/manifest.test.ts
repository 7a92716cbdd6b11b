import { describe, expect, it } from 'vitest';
import { backupObjectKeys, newBackupId } from '../../catalog/keys.ts';
import type { Manifest } from '../../catalog/manifest.ts';
import {
  MANIFEST_SCHEMA_VERSION,
  ManifestError,
  NewerManifestError,
  parseManifest,
  serializeManifest,
  validateManifest,
  pinnedVersionId,
} from '../../catalog/manifest.ts';

const STARTED_AT = new Date('2026-11-23T18:32:54.123Z');

/** A fresh, valid manifest each call, so a test can break one field without affecting others. */
function validManifest(): Manifest {
  const backupId = newBackupId(STARTED_AT, '3f9a2c');
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    backupId,
    database: 'my shop',
    environment: 'prod',
    startedAt: STARTED_AT.toISOString(),
    finishedAt: '2026-11-23T18:41:07.500Z',
    pgkeepVersion: '0.1.0',
    source: { host: 'db.example.com', port: 5432, databaseName: 'shop', serverVersion: '15.8', serverVersionNum: 150008, inRecovery: false },
    dump: { tool: 'pg_dump', version: '15.8', major: 15, format: 'custom', snapshotId: '00000003-0000001B-1', uncompressedBytes: 123_456_789 },
    compression: { algorithm: 'zstd', level: 3, threads: 0 },
    encryption: { mode: 'sse-kms', kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abcd' },
    object: {
      key: backupObjectKeys('my shop', backupId).dataKey,
      bytes: 23_456_789,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      crc64nvme: 'rosUhgp5mIg=',
      partCount: 3,
      s3ChecksumEnforced: true,
      etag: '"9b2cf535f27731c974343645a3985328-3"',
    },
    tables: [
      { schema: 'public', table: 'orders', rows: 1000, rowsSource: 'exact', bytes: 81_920 },
      { schema: 'analytics', table: 'events', rows: null, rowsSource: 'estimate', bytes: 10_485_760 },
    ],
  };
}

/** Parses a manifest that is expected to be rejected and returns the error. */
function rejectionOf(document: unknown): ManifestError {
  try {
    parseManifest(JSON.stringify(document));
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw new Error(`expected a ManifestError, got ${String(error)}`);
  }
  throw new Error('expected the manifest to be rejected, but it parsed');
}

describe('a valid manifest', () => {
  it('parses to the same content', () => {
    const manifest = validManifest();

    expect(parseManifest(JSON.stringify(manifest))).toEqual(manifest);
  });

  it('survives serializeManifest then parseManifest unchanged', () => {
    const manifest = validManifest();

    const text = serializeManifest(manifest);

    expect(text.endsWith('\n')).toBe(true);
    expect(parseManifest(text)).toEqual(manifest);
  });

  it('may carry fields this version does not know (forward compatibility)', () => {
    const document = { ...validManifest(), futureField: { anything: true }, object: { ...validManifest().object, storageTier: 'deep' } };

    expect(() => parseManifest(JSON.stringify(document))).not.toThrow();
  });

  it('accepts a zero-row table, a zero-byte dump and a backup that finished in the millisecond it started', () => {
    const manifest = validManifest();
    manifest.finishedAt = manifest.startedAt;
    manifest.object.bytes = 0;
    manifest.tables = [{ schema: 'public', table: 'empty', rows: 0, rowsSource: 'exact', bytes: 0 }];

    expect(() => validateManifest(manifest)).not.toThrow();
  });
});

describe('parseManifest rejects', () => {
  it('text that is not JSON, saying so and naming the source', () => {
    expect(() => parseManifest('{"schemaVersion": 1,', 's3://bucket/key')).toThrow(ManifestError);
    expect(() => parseManifest('{"schemaVersion": 1,', 's3://bucket/key')).toThrow(/s3:\/\/bucket\/key is not valid JSON/);
  });

  it('a document that is not an object', () => {
    expect(rejectionOf(null).message).toMatch(/\(root\)/);
    expect(rejectionOf([]).message).toMatch(/\(root\)/);
  });

  it('a missing schemaVersion, naming the field', () => {
    const { schemaVersion: _omitted, ...document } = validManifest();

    const error = rejectionOf(document);

    expect(error.problems).toEqual([expect.stringMatching(/^schemaVersion: /)]);
  });

  it('a newer schemaVersion, as a NewerManifestError naming the version that wrote it and telling the reader to upgrade pgkeep', () => {
    const error = rejectionOf({ ...validManifest(), schemaVersion: 2 });

    expect(error).toBeInstanceOf(NewerManifestError);
    expect(error).toMatchObject({ schemaVersion: 2, writtenBy: '0.1.0' });
    expect(error.message).toMatch(/schemaVersion 2/);
    expect(error.message).toMatch(/written by pgkeep 0\.1\.0: upgrade pgkeep/);
    // The problem is the whole reason, not just the field's name: it is what reaches tags, logs and alerts.
    expect(error.problems).toEqual(['schemaVersion: 2 is newer than the 1 this pgkeep reads (written by pgkeep 0.1.0); upgrade pgkeep to read it']);
  });

  it('a newer schemaVersion without judging the rest, whose fields may mean something else', () => {
    const error = rejectionOf({ schemaVersion: 3, tables: 'not an array' });

    expect(error).toBeInstanceOf(NewerManifestError);
    expect(error.message).toContain('written by a newer pgkeep');
  });

  it.each([
    ['63 hex digits', 'a'.repeat(63)],
    ['65 hex digits', 'a'.repeat(65)],
    ['uppercase hex', 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855'],
  ])('an object.sha256 of %s', (_label, sha256) => {
    const manifest = validManifest();
    manifest.object.sha256 = sha256;

    expect(rejectionOf(manifest).problems).toEqual(['object.sha256: expected 64 lowercase hex digits']);
  });

  it.each([
    ['4 bytes', 'AAAAAA=='],
    ['9 bytes', 'AAAAAAAAAAAA'],
    ['hex instead of base64', 'ae8b14860a799888'],
  ])('an object.crc64nvme of %s', (_label, crc64nvme) => {
    const manifest = validManifest();
    manifest.object.crc64nvme = crc64nvme;

    expect(rejectionOf(manifest).problems).toEqual(['object.crc64nvme: expected base64 of 8 bytes']);
  });

  it('negative object.bytes', () => {
    const manifest = validManifest();
    manifest.object.bytes = -1;

    expect(rejectionOf(manifest).problems).toEqual([expect.stringMatching(/^object\.bytes: /)]);
  });

  it('a negative table size, naming the table row', () => {
    const manifest = validManifest();
    const secondTable = manifest.tables[1];
    if (secondTable) secondTable.bytes = -5;

    expect(rejectionOf(manifest).problems).toEqual([expect.stringMatching(/^tables\.1\.bytes: /)]);
  });

  it.each([0, 10_001, 2.5])('object.partCount %s (S3 allows 1 to 10,000 parts)', (partCount) => {
    const manifest = validManifest();
    manifest.object.partCount = partCount;

    expect(rejectionOf(manifest).problems).toEqual([expect.stringMatching(/^object\.partCount: /)]);
  });

  it('a rowsSource other than exact or estimate', () => {
    const manifest = validManifest();
    const document = { ...manifest, tables: [{ ...manifest.tables[0], rowsSource: 'guess' }] };

    expect(rejectionOf(document).problems).toEqual([expect.stringMatching(/^tables\.0\.rowsSource: /)]);
  });

  it('a table row without its table name', () => {
    const manifest = validManifest();
    const { table: _omitted, ...row } = manifest.tables[1] ?? {};

    expect(rejectionOf({ ...manifest, tables: [manifest.tables[0], row] }).problems).toEqual([expect.stringMatching(/^tables\.1\.table: /)]);
  });

  it('a finishedAt before startedAt', () => {
    const manifest = validManifest();
    manifest.finishedAt = '2026-11-23T18:32:54.122Z';

    expect(rejectionOf(manifest).problems).toEqual(['finishedAt: is earlier than startedAt']);
  });

  it('a backupId that does not encode startedAt', () => {
    const manifest = validManifest();
    manifest.startedAt = '2026-11-23T18:32:54.124Z';

    expect(rejectionOf(manifest).problems).toEqual(['backupId: does not encode startedAt']);
  });

  it('a backupId that is not a pgkeep backup id, without tripping over it in the cross-field checks', () => {
    const manifest = validManifest();
    manifest.backupId = 'latest';

    const error = rejectionOf(manifest);

    expect(error.problems).toEqual([expect.stringMatching(/^backupId: expected a pgkeep backup id/)]);
  });

  it('a backupId naming a date that does not exist', () => {
    const manifest = validManifest();
    manifest.backupId = '20261323T183254.123Z-3f9a2c';

    expect(rejectionOf(manifest).problems).toEqual([expect.stringMatching(/^backupId: expected a pgkeep backup id/)]);
  });

  it('an object.key that is not the data key for database and backupId', () => {
    const manifest = validManifest();
    manifest.object.key = backupObjectKeys('other', manifest.backupId).dataKey;

    const error = rejectionOf(manifest);

    expect(error.problems).toEqual([expect.stringMatching(/^object\.key: is not the data key/)]);
    expect(error.message).toContain(backupObjectKeys('my shop', manifest.backupId).dataKey);
  });

  it('an object.key pointing at the manifest instead of the data object', () => {
    const manifest = validManifest();
    manifest.object.key = backupObjectKeys(manifest.database, manifest.backupId).manifestKey;

    expect(rejectionOf(manifest).problems).toEqual([expect.stringMatching(/^object\.key: /)]);
  });

  it('a database name that cannot have a key, naming the field', () => {
    const manifest = validManifest();
    manifest.database = 'shop\u0000';

    expect(rejectionOf(manifest).problems).toEqual([expect.stringMatching(/^database: .*NUL/)]);
  });

  it.each([
    ['a UTC offset', '2026-11-23T20:32:54.123+02:00'],
    ['no zone', '2026-11-23T18:32:54.123'],
    ['a date only', '2026-11-23'],
    ['free text', 'yesterday'],
    ['epoch milliseconds', String(STARTED_AT.getTime())],
  ])('a startedAt with %s', (_label, startedAt) => {
    const manifest = validManifest();
    manifest.startedAt = startedAt;

    const error = rejectionOf(manifest);

    expect(error.problems).toContain('startedAt: expected an ISO 8601 UTC timestamp such as 2026-11-23T18:32:54.123Z');
  });

  it('every problem at once, each naming its field', () => {
    const manifest = validManifest();
    manifest.object.sha256 = 'nope';
    manifest.object.partCount = 0;
    manifest.compression.level = 23;

    const error = rejectionOf(manifest);

    expect(error.problems.map((problem) => problem.split(':')[0])).toEqual(expect.arrayContaining(['object.sha256', 'object.partCount', 'compression.level']));
    expect(error.problems).toHaveLength(3);
  });
});

describe('serializeManifest', () => {
  it('refuses to write a manifest its readers would reject', () => {
    const manifest = validManifest();
    manifest.object.partCount = 0;

    expect(() => serializeManifest(manifest)).toThrow(/the manifest being written is invalid: object\.partCount/);
  });
});

describe('pinnedVersionId', () => {
  it('is the version id S3 gave for a versioned object', () => {
    expect(pinnedVersionId('3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY')).toBe('3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY');
  });

  it('is nothing for "null" (the unversioned slot of a suspended or unversioned bucket) or for no version id', () => {
    expect(pinnedVersionId('null')).toBeUndefined();
    expect(pinnedVersionId(undefined)).toBeUndefined();
  });
});
