/**
 * The backup bucket's lifecycle rules: the one place they are built, so that the retention work
 * (tag-based tiers) replaces this function rather than edits scattered across the storage stack.
 */
import { Duration } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BACKUP_ROOT_PREFIX } from '../catalog/keys.ts';
import type { LifecycleConfig } from './config.ts';

export function backupBucketLifecycleRules(lifecycle: LifecycleConfig): s3.LifecycleRule[] {
  return [
    {
      id: 'tier-current-backups',
      prefix: BACKUP_ROOT_PREFIX,
      // Manifests are small and must stay readable without a Deep Archive restore: the size floor
      // keeps them (and tiny dumps, for which the archive tiers' minimum billable size costs more) in Standard.
      objectSizeGreaterThan: lifecycle.transitionMinimumObjectBytes,
      transitions: [
        { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(lifecycle.glacierInstantRetrievalAfterDays) },
        { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(lifecycle.deepArchiveAfterDays) },
      ],
    },
    {
      id: 'expire-noncurrent-versions',
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
