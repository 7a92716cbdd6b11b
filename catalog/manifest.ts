import { z } from 'zod';
import { backupIdTime, backupObjectKeys, isBackupId } from './keys.ts';

/**
 * The manifest: written beside the data object, only after the upload completed. Its presence
 * means "this backup finished"; its contents let anyone check the data object without trusting
 * the task that wrote it. Readers ignore fields they do not know (additive changes keep
 * schemaVersion); a change that old readers would misread bumps schemaVersion.
 */
export const MANIFEST_SCHEMA_VERSION = 1;

const isoTimestamp = z.iso.datetime({ offset: false, message: 'expected an ISO 8601 UTC timestamp such as 2026-11-23T18:32:54.123Z' });
const nonNegativeInteger = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const nonEmpty = z.string().min(1, 'must not be empty');

const TableStatsSchema = z.object({
  schema: nonEmpty,
  table: nonEmpty,
  /** null only when the count is a planner estimate and the table was never analyzed. */
  rows: nonNegativeInteger.nullable(),
  rowsSource: z.enum(['exact', 'estimate']),
  /** pg_total_relation_size at dump time, for judging restores and estimates. */
  bytes: nonNegativeInteger,
});

const ManifestSchema = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION, { message: `expected ${MANIFEST_SCHEMA_VERSION}` }),
    backupId: z.string().refine(isBackupId, 'expected a pgkeep backup id such as 20261123T183254.123Z-3f9a2c'),
    /** The catalog name of the database (what the key layout encodes), not necessarily the name on the server. */
    database: nonEmpty,
    environment: nonEmpty,
    startedAt: isoTimestamp,
    finishedAt: isoTimestamp,
    pgkeepVersion: nonEmpty,
    source: z.object({
      host: z.string(),
      port: z.number().int().min(0).max(65535),
      databaseName: nonEmpty,
      serverVersion: nonEmpty,
      serverVersionNum: z.number().int().positive(),
      /** True when dumped from a hot standby. */
      inRecovery: z.boolean(),
    }),
    dump: z.object({
      tool: z.literal('pg_dump'),
      version: nonEmpty,
      major: z.number().int().positive(),
      format: z.literal('custom'),
      /** The exported snapshot both the dump and the row counts were taken from. */
      snapshotId: nonEmpty,
      /** Bytes pg_dump wrote before compression; null if the compressor did not report them. */
      uncompressedBytes: nonNegativeInteger.nullable(),
    }),
    compression: z.object({
      algorithm: z.literal('zstd'),
      level: z.number().int().min(1).max(22),
      threads: z.number().int().nonnegative(),
    }),
    encryption: z.object({
      /** As S3 reported it when the upload completed. */
      mode: z.enum(['sse-kms', 'sse-s3', 'none', 'unknown']),
      kmsKeyId: z.string().optional(),
    }),
    object: z.object({
      key: nonEmpty,
      bytes: nonNegativeInteger,
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
      /** S3's full-object CRC64NVME, base64 of 8 big-endian bytes, as S3 reports it. */
      crc64nvme: z.string().regex(/^[A-Za-z0-9+/]{11}=$/, 'expected base64 of 8 bytes'),
      partCount: z.number().int().min(1).max(10_000),
      /** True when S3 itself checked per-part and full-object CRC64NVME on upload. */
      s3ChecksumEnforced: z.boolean(),
      etag: z.string().optional(),
      /** The data object's version on a versioned bucket; never "null" (see pinnedVersionId). */
      versionId: z.string().optional(),
    }),
    tables: z.array(TableStatsSchema),
  })
  .superRefine((manifest, context) => {
    if (Date.parse(manifest.finishedAt) < Date.parse(manifest.startedAt)) {
      context.addIssue({ code: 'custom', path: ['finishedAt'], message: 'is earlier than startedAt' });
    }
    // Format problems in backupId or startedAt are already reported by the field checks above.
    const startedAt = new Date(manifest.startedAt);
    if (isBackupId(manifest.backupId) && !Number.isNaN(startedAt.getTime()) && backupIdTime(manifest.backupId).toISOString() !== startedAt.toISOString()) {
      context.addIssue({ code: 'custom', path: ['backupId'], message: 'does not encode startedAt' });
    }
    let expectedKey: string | undefined;
    try {
      expectedKey = backupObjectKeys(manifest.database, manifest.backupId).dataKey;
    } catch (error) {
      // An invalid backup id or an empty name is already reported above; other names (e.g. with NUL) are not.
      if (isBackupId(manifest.backupId) && manifest.database !== '') {
        context.addIssue({ code: 'custom', path: ['database'], message: (error as Error).message });
      }
    }
    if (expectedKey !== undefined && manifest.object.key !== expectedKey) {
      context.addIssue({ code: 'custom', path: ['object', 'key'], message: `is not the data key for this database and backup id (expected ${expectedKey})` });
    }
  });

export type Manifest = z.infer<typeof ManifestSchema>;
export type TableStats = z.infer<typeof TableStatsSchema>;

export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(
    message: string,
    /** Each problem a whole sentence that names its field, e.g. `object.sha256: expected 64 lowercase hex digits`. */
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

/**
 * A manifest of a newer schema than this pgkeep reads: not a broken backup, one this version
 * cannot judge. In a rolling upgrade (a new task image beside older functions) every new backup
 * is one; readers must say "written by a newer pgkeep", never "failed", and never delete it.
 */
export class NewerManifestError extends ManifestError {
  override name = 'NewerManifestError';
  constructor(
    message: string,
    problems: readonly string[],
    readonly schemaVersion: number,
    /** The manifest's own pgkeepVersion, when it has one as text: the version that can read it. */
    readonly writtenBy: string | undefined,
  ) {
    super(message, problems);
  }
}

/** Parses and validates a manifest; every problem names its field (e.g. `object.sha256`). */
export function parseManifest(json: string, source = 'manifest'): Manifest {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch (error) {
    throw new ManifestError(`${source} is not valid JSON (${(error as Error).message}); it was not written by pgkeep or was damaged.`);
  }
  return validateManifest(document, source);
}

export function validateManifest(document: unknown, source = 'manifest'): Manifest {
  const version = (document as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (typeof version === 'number' && Number.isInteger(version) && version > MANIFEST_SCHEMA_VERSION) {
    // Nothing else is checked: fields of a newer schema may mean something else entirely.
    const writtenBy = (document as { pgkeepVersion?: unknown }).pgkeepVersion;
    const by = typeof writtenBy === 'string' && writtenBy !== '' ? writtenBy : undefined;
    const problem = `schemaVersion: ${version} is newer than the ${MANIFEST_SCHEMA_VERSION} this pgkeep reads (written by ${by ? `pgkeep ${by}` : 'a newer pgkeep'}); upgrade pgkeep to read it`;
    throw new NewerManifestError(
      `${source} has schemaVersion ${version}, newer than this pgkeep understands (${MANIFEST_SCHEMA_VERSION}); it was written by ${by ? `pgkeep ${by}` : 'a newer pgkeep'}: upgrade pgkeep to read it.`,
      [problem],
      version,
      by,
    );
  }
  const result = ManifestSchema.safeParse(document);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`);
  throw new ManifestError(`${source} is invalid: ${problems.join('; ')}`, problems);
}

export function serializeManifest(manifest: Manifest): string {
  // Validate on write too, so the task can never publish a manifest its readers would reject.
  return `${JSON.stringify(validateManifest(manifest, 'the manifest being written'), null, 2)}\n`;
}

/**
 * The version id that pins an object, if there is one. S3 answers version id "null" for an object
 * written while the bucket's versioning is suspended (moto does on a never-versioned bucket too):
 * that names the bucket's unversioned slot, which the next write to the key replaces, so it pins
 * nothing a read by key would not find, and moto answers HEAD ?versionId=null on an unversioned
 * bucket with 400. The backup task does not record it; readers treat a recorded "null" (a manifest
 * written by hand or by another tool) as no version id.
 */
export function pinnedVersionId(versionId: string | undefined): string | undefined {
  return versionId === undefined || versionId === 'null' ? undefined : versionId;
}
