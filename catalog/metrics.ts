/**
 * Every CloudWatch metric pgkeep publishes: one namespace, dimensions Environment and Database.
 * The task, the Lambdas and the CDK alarms all take names from here, so an alarm can never watch a
 * metric nobody publishes.
 */
export const METRICS_NAMESPACE = 'pgkeep';

export const METRIC = {
  /** 1 per finished backup (task). */
  backupSucceeded: 'BackupSucceeded',
  /** 1 per failed backup the task could report (a crash is caught by the task-failure rule). */
  backupFailed: 'BackupFailed',
  backupBytes: 'BackupBytes',
  backupDurationSeconds: 'BackupDurationSeconds',
  backupThroughputMBps: 'BackupThroughputMBps',
  backupCompressionRatio: 'BackupCompressionRatio',
  /** verify-backup: one of these three per manifest. */
  backupVerified: 'BackupVerified',
  backupVerificationFailed: 'BackupVerificationFailed',
  backupUnverifiable: 'BackupUnverifiable',
  /** backup-health: about the newest verified backup; absent when there is none. */
  newestVerifiedBackupAgeSeconds: 'NewestVerifiedBackupAgeSeconds',
  newestVerifiedBackupBytes: 'NewestVerifiedBackupBytes',
  /** newest verified size / median of the recent verified ones before it. */
  newestVerifiedBackupSizeRatio: 'NewestVerifiedBackupSizeRatio',
  /** backup-health, every run (0 when none): finished backups whose start time lies ahead of the
   * S3 clock by more than CLOCK_SKEW_TOLERANCE_MS (runtime/listing.ts); none of them counts as fresh. */
  futureDatedBackups: 'FutureDatedBackups',
  /** verify-backup deployed in the vault's region (PGKEEP_VERIFY_SITE=vault): one of these three
   * per replicated backup, published in the vault's account and region. */
  offsiteVerified: 'OffsiteBackupVerified',
  offsiteVerificationFailed: 'OffsiteBackupVerificationFailed',
  offsiteUnverifiable: 'OffsiteBackupUnverifiable',
  /** backup-health, with a vault: the age of the newest backup whose off-site copy the vault's
   * verifier tagged verified; absent when there is none (or the vault cannot be read), so the
   * off-site stale alarm, which treats missing data as breaching, fires. */
  newestOffsiteVerifiedBackupAgeSeconds: 'NewestOffsiteVerifiedBackupAgeSeconds',
  /** enforce-retention: per run (a dry run publishes what it would do). */
  retentionKept: 'RetentionKept',
  retentionDeleted: 'RetentionDeleted',
  retentionDeletedBytes: 'RetentionDeletedBytes',
  retentionErrors: 'RetentionErrors',
  /** enforce-retention, with a vault: backups the plan would delete but keeps because their
   * off-site copy is not verified yet (replication late or failing). */
  retentionKeptAwaitingOffsite: 'RetentionKeptAwaitingOffsite',
  /** restore task (any restore, by hand or from the console). */
  restoreSucceeded: 'RestoreSucceeded',
  restoreFailed: 'RestoreFailed',
  restoreDurationSeconds: 'RestoreDurationSeconds',
  restoreMismatches: 'RestoreMismatches',
  /** Tables the manifest only estimated (over PGKEEP_EXACT_COUNT_MAX_MB), counted and compared with the estimate. */
  restoreTablesComparedWithEstimate: 'RestoreTablesComparedWithEstimate',
  /** Tables with neither a count nor an estimate in the manifest: restored, counted, compared with nothing. */
  restoreTablesNotCompared: 'RestoreTablesNotCompared',
  /** restore drill: 1 per database per drill; DrillRestoreSeconds is the measured RTO. */
  drillSucceeded: 'DrillSucceeded',
  drillFailed: 'DrillFailed',
  drillRestoreSeconds: 'DrillRestoreSeconds',
  drillMismatches: 'DrillMismatches',
  drillTablesComparedWithEstimate: 'DrillTablesComparedWithEstimate',
  drillTablesNotCompared: 'DrillTablesNotCompared',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

export interface MetricScope {
  environment: string;
  database: string;
}
