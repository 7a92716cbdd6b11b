/**
 * The record each restore drill writes to `drills/<database>/<id>.json` (catalog/keys.ts,
 * drillRecordKey): the audit evidence that a backup was restored and matched its manifest. The
 * drill task writes it (task/drill.ts); auditors and anything that reads drills/ read this shape.
 * A new field is added, never renamed or repurposed, so that old records stay readable; a change
 * that breaks that raises schemaVersion.
 */
export const DRILL_RECORD_SCHEMA_VERSION = 1;
export const DRILL_RECORD_KIND = 'pgkeep-restore-drill';

export interface DrillRecord {
  schemaVersion: typeof DRILL_RECORD_SCHEMA_VERSION;
  kind: typeof DRILL_RECORD_KIND;
  environment: string;
  /** The catalog name of the database drilled. */
  database: string;
  drillStartedAt: string;
  drillFinishedAt: string;
  /** The backup restored, matched its manifest, and this record was written. */
  ok: boolean;
  backupId: string | undefined;
  backupStartedAt: string | undefined;
  /** Seconds from the first byte read to a fully restored database: the measured RTO. */
  restoreSeconds: number | undefined;
  /** The whole object was re-hashed on the way and matched the manifest's SHA-256. */
  sha256Verified: boolean;
  /** Tables with an exact count in the manifest, compared exactly. */
  tablesCompared: number;
  /** Tables the manifest only estimated, compared with the estimate. */
  tablesComparedWithEstimate: number;
  /** Tables with nothing in the manifest to compare with. */
  tablesNotCompared: string[];
  mismatches: string[];
  /** The stage that failed (e.g. restore or checksum), or 'unexpected'. */
  failedStage: string | undefined;
  error: string | undefined;
  /** e.g. "throwaway PostgreSQL 17.6". */
  restoredInto: string | undefined;
}
