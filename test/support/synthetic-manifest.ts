import { backupIdTime, backupObjectKeys, parseBackupKey } from '../../catalog/keys.ts';
import { MANIFEST_SCHEMA_VERSION, serializeManifest, type Manifest } from '../../catalog/manifest.ts';

/**
 * A manifest the schema accepts for a synthetic backup (a data object of `bytes` bytes that is no
 * real dump). For the suites that need a readable manifest but check nothing inside it: retention
 * reads the manifest of every backup it would delete, and keeps one it cannot read. The checksums
 * are well-formed but describe no real bytes: never verify against this manifest.
 */
export function syntheticManifest(database: string, backupId: string, bytes: number): Manifest {
  const startedAt = backupIdTime(backupId);
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    backupId,
    database,
    environment: 'test',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date(startedAt.getTime() + 60_000).toISOString(),
    pgkeepVersion: '0.0.0-test',
    source: { host: 'localhost', port: 5432, databaseName: database, serverVersion: '16.4', serverVersionNum: 160004, inRecovery: false },
    dump: { tool: 'pg_dump', version: '16.4', major: 16, format: 'custom', snapshotId: '00000003-0000001B-1', uncompressedBytes: null },
    compression: { algorithm: 'zstd', level: 3, threads: 0 },
    encryption: { mode: 'none' },
    object: {
      key: backupObjectKeys(database, backupId).dataKey,
      bytes,
      sha256: '0'.repeat(64),
      crc64nvme: 'AAAAAAAAAAA=',
      partCount: 1,
      s3ChecksumEnforced: false,
    },
    tables: [],
  };
}

/** The text of syntheticManifest for the backup a manifest key names. */
export function syntheticManifestTextFor(manifestKey: string, bytes = 0): string {
  const parsed = parseBackupKey(manifestKey);
  if (!parsed || parsed.kind !== 'manifest') throw new Error(`${manifestKey} is not a manifest key`);
  return serializeManifest(syntheticManifest(parsed.database, parsed.backupId, bytes));
}

/** What a newer pgkeep might write: schemaVersion 2, with a field this version has never heard of. */
export function newerSchemaManifestText(database: string, backupId: string, bytes: number): string {
  return JSON.stringify({
    ...syntheticManifest(database, backupId, bytes),
    schemaVersion: MANIFEST_SCHEMA_VERSION + 1,
    pgkeepVersion: '9.0.0',
    chunks: [{ key: 'elsewhere' }],
  });
}
