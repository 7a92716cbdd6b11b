/**
 * The environments this app deploys. Edit this file to match your accounts: the ids below are
 * placeholders in the right format (docs/infrastructure.md says where to find the real ones).
 * Every field is checked by infra/config.ts at synth time.
 */
import type { PgkeepConfigInput } from './config.ts';

export const PGKEEP_ENVIRONMENTS = {
  environments: {
    dev: {
      account: '111111111111',
      region: 'eu-west-1',
      network: {
        vpcId: 'vpc-0123456789abcdef0',
        privateSubnets: [
          { subnetId: 'subnet-0123456789abcdef0', availabilityZone: 'eu-west-1a' },
          { subnetId: 'subnet-0123456789abcdef1', availabilityZone: 'eu-west-1b' },
        ],
        securityGroupId: 'sg-0123456789abcdef0',
      },
      databases: [
        {
          name: 'orders',
          secret: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:pgkeep/dev/orders-AbCdEf',
          schedule: { cron: '0 2 * * ? *', timezone: 'Europe/Dublin' },
        },
      ],
      lifecycle: {
        monthlyToGlacierInstantRetrievalAfterDays: 30,
        yearlyToDeepArchiveAfterDays: 90,
        noncurrentVersionsExpireAfterDays: 7,
        abortIncompleteUploadsAfterDays: 1,
      },
      // A short history is enough for dev; mistakes here are cheap, so it deletes for real.
      retention: { daily: 7, weekly: 4, monthly: 3, yearly: 0, timezone: 'Europe/Dublin', dryRun: false },
      task: { cpu: 512, memoryMiB: 1024, ephemeralStorageGiB: 21 },
      logRetentionDays: 30,
      notificationEmails: ['dev-alerts@example.com'],
      terminationProtection: false,
      removalPolicy: 'destroy',
    },
    prod: {
      account: '222222222222',
      region: 'eu-central-1',
      network: {
        vpcId: 'vpc-0fedcba9876543210',
        privateSubnets: [
          { subnetId: 'subnet-0fedcba9876543210', availabilityZone: 'eu-central-1a' },
          { subnetId: 'subnet-0fedcba9876543211', availabilityZone: 'eu-central-1b' },
          { subnetId: 'subnet-0fedcba9876543212', availabilityZone: 'eu-central-1c' },
        ],
        securityGroupId: 'sg-0fedcba9876543210',
      },
      databases: [
        {
          name: 'orders',
          secret: 'arn:aws:secretsmanager:eu-central-1:222222222222:secret:pgkeep/prod/orders-GhIjKl',
          secretKmsKeyArn: 'arn:aws:kms:eu-central-1:222222222222:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d',
          schedule: { cron: '30 1 * * ? *', timezone: 'Europe/Berlin' },
          overrides: { PGKEEP_COMPRESSION_LEVEL: 6, PGKEEP_PARTS_IN_FLIGHT: 4 },
          // Its dumps are gigabytes: anything under 100 MiB means the backup missed most of it.
          alarms: { minimumBackupBytes: 100 * 1024 * 1024 },
        },
        {
          name: 'billing',
          secret: 'arn:aws:secretsmanager:eu-central-1:222222222222:secret:pgkeep/prod/billing-MnOpQr',
          schedule: { cron: '0 */6 * * ? *', timezone: 'UTC' },
          overrides: { PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS: 1800 },
        },
      ],
      lifecycle: {
        monthlyToGlacierInstantRetrievalAfterDays: 30,
        yearlyToDeepArchiveAfterDays: 90,
        noncurrentVersionsExpireAfterDays: 30,
        abortIncompleteUploadsAfterDays: 2,
      },
      // The example policy (docs/retention.md). Starts as a dry run: read a week of its plans in
      // the enforce-retention log group (pipeline stack output RetentionLogGroupName), then set
      // dryRun: false (docs/operations.md).
      retention: { daily: 7, weekly: 4, monthly: 12, yearly: 3, timezone: 'Europe/Berlin', minVerified: 3, dryRun: true },
      objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 35 },
      // The off-site copy (docs/vault.md): another account, another region, locked in COMPLIANCE
      // mode so that nobody, not even that account's root, can delete a copy for 190 days. Deep
      // Archive after a week (its 180-day minimum fits inside the lock). Deploy its stack first,
      // with the vault account's credentials: npx cdk deploy pgkeep-prod/Vault.
      vault: {
        account: '333333333333',
        region: 'eu-north-1',
        objectLock: { mode: 'COMPLIANCE', days: 190 },
        deepArchiveAfterDays: 7,
        replicationTimeControl: true,
      },
      accessLogsExpireAfterDays: 730,
      task: { cpu: 2048, memoryMiB: 4096, ephemeralStorageGiB: 50 },
      logRetentionDays: 400,
      alarms: { undeliveredScheduledRuns: 1, staleMarginHours: 2, minimumSizeRatio: 0.5 },
      notificationEmails: ['dba-oncall@example.com', 'platform-team@example.com'],
      terminationProtection: true,
      removalPolicy: 'retain',
    },
  },
} satisfies PgkeepConfigInput;
