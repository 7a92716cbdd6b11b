/**
 * The backup bucket's lifecycle rules: the one place they are built.
 *
 * Storage classes follow the retention tier, not the age: the enforce-retention function tags each
 * data object it keeps with the longest-lived GFS slot it fills (`pgkeep:tier` = daily, weekly,
 * monthly or yearly), and only the long-lived tiers go cold. Dailies and weeklies, and untagged
 * objects (the newest backups, not yet planned), stay in S3 Standard: retention deletes them within
 * weeks, sooner than the archive classes' minimum billable durations (Glacier Instant Retrieval 90
 * days, Deep Archive 180), and they are what a restore usually wants, instantly. Nothing here ever
 * expires a current backup: only retention deletes, and it never deletes the last good one.
 * docs/retention.md has the cost effect.
 */
import { Duration } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BACKUP_ROOT_PREFIX } from '../catalog/keys.ts';
import type { RetentionTier } from '../catalog/retention-policy.ts';
import { TIER_TAG } from '../catalog/retention-policy.ts';
import type { LifecycleConfig } from './config.ts';

export function backupBucketLifecycleRules(lifecycle: LifecycleConfig): s3.LifecycleRule[] {
  const tierRule = (tier: RetentionTier, storageClass: s3.StorageClass, afterDays: number): s3.LifecycleRule => ({
    id: `tier-${tier}-backups`,
    prefix: BACKUP_ROOT_PREFIX,
    tagFilters: { [TIER_TAG]: tier },
    // Manifests are small and must stay readable without a restore; retention tags only data
    // objects, and the size floor keeps anything tiny (where the archive classes' per-object
    // overhead costs more than it saves) in Standard even if it were tagged.
    objectSizeGreaterThan: lifecycle.transitionMinimumObjectBytes,
    transitions: [{ storageClass, transitionAfter: Duration.days(afterDays) }],
  });
  return [
    tierRule('monthly', s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, lifecycle.monthlyToGlacierInstantRetrievalAfterDays),
    tierRule('yearly', s3.StorageClass.DEEP_ARCHIVE, lifecycle.yearlyToDeepArchiveAfterDays),
    {
      id: 'expire-noncurrent-versions',
      // A backup retention deletes (or anyone overwrites) stays recoverable as a noncurrent version
      // for this long: the recovery window after a retention delete.
      noncurrentVersionExpiration: Duration.days(lifecycle.noncurrentVersionsExpireAfterDays),
      // Once every version under a key has expired, its delete marker is clutter that slows listings.
      expiredObjectDeleteMarker: true,
    },
    {
      id: 'abort-incomplete-multipart-uploads',
      // A task killed without its SIGTERM clean-up leaves parts that are billed but invisible.
      abortIncompleteMultipartUploadAfter: Duration.days(lifecycle.abortIncompleteUploadsAfterDays),
    },
  ];
}
