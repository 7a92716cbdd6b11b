/**
 * The typed, validated per-environment configuration of the CDK app.
 *
 * Configuration is plain data (see environments.ts); `parsePgkeepConfig` checks all of it at
 * synth time and reports every problem with the path of the field it is in, e.g.
 * `environments.prod.databases[1].schedule.timezone: unknown IANA timezone "Mars/Base"`, so a
 * mistake fails `cdk synth` instead of a deploy half-way through (or a backup at 3 a.m.).
 *
 * Nothing here reads CDK context or process.env: only infra/app.ts does.
 */
import { Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { z } from 'zod';
import { CatalogKeyError, encodeDatabaseSegment } from '../catalog/keys.ts';
import { OVERRIDABLE_TASK_SETTINGS, overrideProblems, type OverridableTaskSetting } from '../catalog/task-settings.ts';
import type { RetentionPolicy } from '../catalog/retention-policy.ts';
import { DEFAULT_RETENTION_POLICY, validatePolicy } from '../catalog/retention-policy.ts';
import { cronExpressionProblem, timeZoneProblem } from './cron.ts';
import { GAP_WINDOW_FIRST_YEAR, longestGapBetweenFirings } from './cron-firings.ts';

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/** Fargate's valid CPU units and, for each, the memory sizes (MiB) it can be paired with. */
const FARGATE_MEMORY_BY_CPU: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

function range(from: number, to: number, step: number): number[] {
  const values: number[] = [];
  for (let value = from; value <= to; value += step) values.push(value);
  return values;
}

/**
 * The most databases one environment holds. Each database's resources live in a nested stack of
 * their own, so CloudFormation's 500 resources per stack bind nowhere; what binds is the pipeline
 * stack's 200 outputs (3 per database, for the printed commands) and the dashboard's 2,500 metrics.
 * test/infra/scale.test.ts synthesizes an environment of this size and checks every limit.
 */
export const MAX_DATABASES_PER_ENVIRONMENT = 60;

/** How long "no successful drill" may last before it alarms, at most (two 7-day alarm windows). */
export const MAX_DRILL_ALARM_DAYS = 14;

/** Messages for a missing or mistyped value; other problems (unknown keys, ranges) keep zod's own. */
const required = (what: string) => ({
  error: (issue: { code?: string; input?: unknown }) => {
    if (issue.code !== 'invalid_type' && issue.code !== 'invalid_value' && issue.code !== 'invalid_union') return undefined;
    return issue.input === undefined ? `required: ${what}` : `expected ${what}`;
  },
});

const wholeDays = (what: string) =>
  z
    .int(required(`the number of days ${what}`))
    .min(1, `must be at least 1 day (${what})`)
    .max(36_500);

const fargateCpu = (fallback: number) =>
  z
    .int()
    .refine((cpu) => cpu in FARGATE_MEMORY_BY_CPU, { message: `expected Fargate CPU units: one of ${Object.keys(FARGATE_MEMORY_BY_CPU).join(', ')}` })
    .default(fallback);
const ephemeralStorage = (fallback: number) =>
  z.int().min(21, 'Fargate ephemeral storage is 21 to 200 GiB').max(200, 'Fargate ephemeral storage is 21 to 200 GiB').default(fallback);

function fargateCombination(size: { cpu: number; memoryMiB: number }, context: z.RefinementCtx): void {
  const allowed = FARGATE_MEMORY_BY_CPU[size.cpu];
  if (allowed && !allowed.includes(size.memoryMiB)) {
    context.addIssue({
      code: 'custom',
      path: ['memoryMiB'],
      message: `${size.memoryMiB} MiB cannot be paired with ${size.cpu} CPU units on Fargate: expected ${allowed[0]} to ${allowed.at(-1)} in steps of ${(allowed[1] ?? 0) - (allowed[0] ?? 0)}`,
    });
  }
}

/** A Fargate task size: CPU units, memory and ephemeral storage, in a combination Fargate offers. */
function fargateSize(defaults: { cpu: number; memoryMiB: number; ephemeralStorageGiB: number }) {
  return z
    .strictObject({
      cpu: fargateCpu(defaults.cpu),
      memoryMiB: z.int().default(defaults.memoryMiB),
      ephemeralStorageGiB: ephemeralStorage(defaults.ephemeralStorageGiB),
    })
    .prefault({})
    .superRefine(fargateCombination);
}

const overrideValue = z.union([z.string(), z.number()], required('a string or a number'));

const overridesSchema = z
  .strictObject({
    ...(Object.fromEntries(OVERRIDABLE_TASK_SETTINGS.map((name) => [name, overrideValue.optional()])) as Record<
      OverridableTaskSetting,
      z.ZodOptional<typeof overrideValue>
    >),
    PGSSLMODE: z.enum(SSL_MODES, required(`one of ${SSL_MODES.join(', ')}`)).optional(),
  })
  .prefault({});

/** A secret's complete ARN: its name, then "-" and the 6 characters Secrets Manager appends. */
const COMPLETE_SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]+-[A-Za-z0-9]{6}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/;

const sizeRatio = z.number(required('a fraction such as 0.5')).gt(0, 'must be more than 0').lt(1, 'must be less than 1 (a fraction of the recent median size)');

/** A field that no longer exists, with what replaced it (strictObject's own message would only say "unrecognized"). */
const replacedField = (message: string) =>
  z
    .unknown()
    .optional()
    .refine((value) => value === undefined, { message });

/** An EventBridge Scheduler cron expression and the IANA time zone it is evaluated in. */
const scheduleSchema = z.strictObject(
  {
    cron: z.string(required('a 6-field EventBridge cron expression such as "0 3 * * ? *"')).superRefine((value, context) => {
      const problem = cronExpressionProblem(value);
      if (problem) context.addIssue({ code: 'custom', message: `invalid cron expression: ${problem}` });
    }),
    timezone: z.string(required('an IANA timezone such as "UTC" or "Europe/Berlin"')).superRefine((value, context) => {
      const problem = timeZoneProblem(value);
      if (problem) context.addIssue({ code: 'custom', message: problem });
    }),
  },
  required('a schedule: { cron, timezone }'),
);

/**
 * ECS fetches each secret by exactly the ARN its task definition names, and IAM authorizes that
 * ARN as written. A name or a partial ARN (without the 6-character suffix) makes ECS request a
 * partial ARN, which the execution role's grant on the secret does not match, so the task never
 * starts (ResourceInitializationError … AccessDeniedException; aws-cdk#18555, #20744, and CDK's ECS
 * guidance: only a complete ARN works). Synth has no AWS access to look the suffix up, so the
 * configuration must carry it.
 */
const secretArnSchema = z
  .string(required("the complete ARN of the Secrets Manager secret holding this database's connection (host, port, username, password, dbname)"))
  .refine((value) => COMPLETE_SECRET_ARN.test(value), {
    message:
      "expected the secret's complete ARN, ending in the 6 characters Secrets Manager appends to its name (arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf): ECS fetches exactly that ARN, and a name or partial ARN makes the task fail to start. Find it with: aws secretsmanager describe-secret --secret-id <name> --query ARN --output text",
  });

/** A secret of the same CDK app, e.g. an rds.DatabaseInstance's `secret`: ECS then names its own ARN. */
export type SecretInput = string | secretsmanager.ISecret;

function isSecretConstruct(value: unknown): value is secretsmanager.ISecret {
  return typeof value === 'object' && value !== null && 'secretArn' in value && 'grantRead' in value;
}

/** A secret's complete ARN, checked as above, or a secret construct (whose ARN CDK knows exactly). */
const secretReference = z.custom<SecretInput>().superRefine((value, context) => {
  if (isSecretConstruct(value)) return;
  const result = secretArnSchema.safeParse(value);
  if (!result.success) for (const issue of result.error.issues) context.addIssue({ ...issue, code: 'custom', message: issue.message });
});

/** An RDS instance or Aurora cluster of the same CDK app. */
export type DatabaseConstruct = rds.IDatabaseInstance | rds.IDatabaseCluster;

const databaseConstruct = z.custom<DatabaseConstruct>(
  (value) => typeof value === 'object' && value !== null && 'connections' in value && ('instanceEndpoint' in value || 'clusterEndpoint' in value),
  'expected an RDS database construct (rds.DatabaseInstance, rds.DatabaseCluster, or one imported with fromDatabaseInstanceAttributes / fromDatabaseClusterAttributes)',
);

const kmsKeyArn = z.string().regex(KMS_KEY_ARN, 'expected a KMS key ARN (arn:aws:kms:<region>:<account>:key/<uuid>)');

const databaseSchema = z.strictObject({
  /** The name the backups are catalogued under (PGKEEP_DATABASE_NAME); the key layout encodes it. */
  name: z.string(required('the name the backups are catalogued under, e.g. "orders"')).min(1, 'must not be empty'),
  /** The Secrets Manager secret with the connection (RDS layout: host, port, username, password,
   * dbname): its complete ARN, in this environment's account and region. */
  secret: secretReference.optional(),
  /** The database as a CDK construct of the same app (an RDS instance or Aurora cluster): the
   * tasks' security group is then let in on its port, and its generated secret (when it has one)
   * is the default `secret`. */
  database: databaseConstruct.optional(),
  /** The customer-managed KMS key the secret is encrypted with, if it is not aws/secretsmanager. */
  secretKmsKeyArn: kmsKeyArn.optional(),
  /** The secret (same layout) of the server the restore task restores into. Default: \`secret\`,
   * the database's own server, where a restore creates a new database (which needs CREATEDB). */
  restoreTargetSecret: secretReference.optional(),
  /** The customer-managed KMS key restoreTargetSecret is encrypted with. Default: secretKmsKeyArn
   * when restoreTargetSecret is not set. */
  restoreTargetSecretKmsKeyArn: kmsKeyArn.optional(),
  schedule: scheduleSchema,
  /** Task settings for this database only, by their environment variable names (see BACKUP_SETTINGS in catalog/task-settings.ts). */
  overrides: overridesSchema,
  /** This database's alarm thresholds, where the environment's defaults do not fit. */
  alarms: z
    .strictObject({
      /** Alarm when the newest verified backup is older than this. Default: the longest gap between
       * two runs of the schedule plus the environment's alarms.staleMarginHours. */
      staleAfterHours: z
        .number(required('a number of hours'))
        .positive('must be more than 0 hours')
        .max(24 * 400, 'at most 400 days')
        .optional(),
      /** Alarm when the newest verified backup is smaller than this (bytes). Default: alarms.minimumBackupBytes. */
      minimumBackupBytes: z.int(required('a whole number of bytes')).min(1).optional(),
      /** Alarm when the newest verified backup is below this fraction of the recent median. Default: alarms.minimumSizeRatio. */
      minimumSizeRatio: sizeRatio.optional(),
    })
    .prefault({}),
});

const subnetSchema = z.strictObject({
  subnetId: z
    .string(required('a subnet id such as subnet-0123456789abcdef0'))
    .regex(/^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/, 'expected a subnet id such as subnet-0123456789abcdef0'),
  availabilityZone: z
    .string(required("the subnet's availability zone, e.g. eu-west-1a"))
    .regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'expected an availability zone such as eu-west-1a'),
});

const environmentSchema = z
  .strictObject({
    account: z.string(required('the 12-digit AWS account id')).regex(/^\d{12}$/, 'expected a 12-digit AWS account id'),
    region: z.string(required('the AWS region, e.g. eu-west-1')).regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as eu-west-1'),
    /** The existing network the task runs in, imported by id (no lookups, so synth needs no
     * credentials). Or, in a CDK app that defines its network, `vpc` and the fields beside it. */
    network: z
      .strictObject(
        {
          vpcId: z.string(required('a VPC id')).regex(/^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/, 'expected a VPC id such as vpc-0123456789abcdef0'),
          /** Private subnets with a route to S3, Secrets Manager, ECR and CloudWatch Logs (NAT or VPC endpoints). */
          privateSubnets: z
            .array(subnetSchema, required('a list of private subnets'))
            .min(1, 'give at least one private subnet')
            .max(16, 'ECS accepts at most 16 subnets'),
          /** Must allow outbound traffic to the databases and to the AWS APIs above. */
          securityGroupId: z
            .string(required('a security group id'))
            .regex(/^sg-([0-9a-f]{8}|[0-9a-f]{17})$/, 'expected a security group id such as sg-0123456789abcdef0'),
        },
        required('network: { vpcId, privateSubnets, securityGroupId }'),
      )
      .optional(),
    /** The VPC the tasks run in, as a construct of the same CDK app (instead of `network`). */
    vpc: z
      .custom<ec2.IVpc>(
        (value) => typeof value === 'object' && value !== null && 'vpcId' in value && 'selectSubnets' in value,
        'expected an ec2.IVpc construct',
      )
      .optional(),
    /** With `vpc`: where in it the tasks run. Default: its private subnets with egress. */
    taskSubnets: z.custom<ec2.SubnetSelection>((value) => typeof value === 'object' && value !== null, 'expected an ec2.SubnetSelection').optional(),
    /** With `vpc`: the tasks' security group, which must allow outbound traffic to the databases
     * and the AWS APIs. Default: a new one with outbound traffic open and no inbound rules. */
    taskSecurityGroup: z
      .custom<ec2.ISecurityGroup>(
        (value) => typeof value === 'object' && value !== null && 'securityGroupId' in value,
        'expected an ec2.ISecurityGroup construct',
      )
      .optional(),
    databases: z
      .array(databaseSchema, required('the list of databases to back up'))
      .min(1, 'list at least one database to back up')
      .max(
        MAX_DATABASES_PER_ENVIRONMENT,
        `at most ${MAX_DATABASES_PER_ENVIRONMENT} databases per environment: the pipeline stack carries three outputs per database, and CloudFormation allows 200 outputs per stack (docs/infrastructure.md, "How many databases"); split them into more environments`,
      ),
    /** The backup bucket's lifecycle (storage classes by retention tier, and clean-up), in days.
     * Tier tags are set by the retention function; see docs/retention.md for the cost effect. */
    lifecycle: z
      .strictObject({
        /** Backups tagged pgkeep:tier=monthly move to Glacier Instant Retrieval (millisecond reads, 90-day minimum). */
        monthlyToGlacierInstantRetrievalAfterDays: wholeDays('after which monthly backups move to Glacier Instant Retrieval').default(30),
        /** Backups tagged pgkeep:tier=yearly move to Glacier Deep Archive (restore takes up to 48 h, 180-day minimum). */
        yearlyToDeepArchiveAfterDays: wholeDays('after which yearly backups move to Glacier Deep Archive').default(90),
        /** How long a deleted or overwritten backup stays recoverable as a noncurrent version. */
        noncurrentVersionsExpireAfterDays: wholeDays('after which overwritten or deleted object versions are removed').default(30),
        /** Must exceed the longest backup run: an upload older than this is aborted mid-way. */
        abortIncompleteUploadsAfterDays: wholeDays('after which unfinished multipart uploads are aborted').default(1),
        /** Objects smaller than this stay in S3 Standard: manifests must stay readable without a restore. */
        transitionMinimumObjectBytes: z
          .int()
          .min(0)
          .default(1024 * 1024),
        glacierInstantRetrievalAfterDays: replacedField(
          'replaced by tier-based rules: use monthlyToGlacierInstantRetrievalAfterDays (backups retention keeps as monthlies); daily and weekly backups stay in S3 Standard (docs/retention.md)',
        ),
        deepArchiveAfterDays: replacedField(
          'replaced by tier-based rules: use yearlyToDeepArchiveAfterDays (backups retention keeps as yearlies) (docs/retention.md)',
        ),
      })
      // prefault: a missing block is parsed as {}, so the field defaults above apply.
      .prefault({}),
    /** S3 Object Lock on the backup bucket. Can only be switched on when the bucket is created. */
    objectLock: z
      .strictObject({
        mode: z.enum(['GOVERNANCE', 'COMPLIANCE'], required('GOVERNANCE or COMPLIANCE')),
        defaultRetentionDays: wholeDays('each new object version is locked for'),
      })
      .optional(),
    /**
     * The vault (docs/vault.md): S3 Replication copies every backup and drill record into a locked
     * bucket in another region, usually of another account, so that losing the source account or
     * region does not lose the backups. Its stack (`pgkeep-<env>-vault`) is deployed first, with
     * the destination account's credentials.
     */
    vault: z
      .strictObject({
        account: z.string(required('the 12-digit AWS account id of the vault')).regex(/^\d{12}$/, 'expected a 12-digit AWS account id'),
        region: z
          .string(required('the AWS region of the vault, e.g. eu-north-1'))
          .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as eu-north-1'),
        /** Every copy is locked this long from its arrival; nobody in the source account (nor, in
         * COMPLIANCE mode, in the vault account) can shorten the lock or delete the copy. */
        objectLock: z.strictObject(
          {
            mode: z.enum(['GOVERNANCE', 'COMPLIANCE'], required('GOVERNANCE or COMPLIANCE')),
            days: wholeDays('each copy is locked for'),
          },
          required('objectLock: { mode, days }'),
        ),
        /** Copies move to Glacier Deep Archive this many days after arrival (0: on arrival). Deep
         * Archive bills at least 180 days; a restore from it first waits for a retrieval (up to 48 h). */
        deepArchiveAfterDays: z.int().min(0).default(7),
        /** S3 Replication Time Control: 99.99 % of objects replicated within 15 minutes, with its
         * metrics, for a per-GB fee (docs/retention.md). Without it, replication is usually as fast
         * and has no time guarantee; the replication metrics are on either way. */
        replicationTimeControl: z.boolean().default(false),
        /** Retention in the source never deletes a backup whose off-site copy the vault has not
         * verified: a replication outage can then never leave a backup with no second copy. */
        retentionWaitsForOffsite: z.boolean().default(true),
        /** Alarm when the newest verified off-site copy of a database is older than its backup
         * schedule's stale threshold plus this (hours): replication and the vault check take time. */
        staleMarginHours: z.number().min(0).max(168).default(2),
      })
      .optional(),
    /** Server access logs of the backup bucket are kept this long. */
    accessLogsExpireAfterDays: wholeDays('after which server access logs are removed').default(365),
    /** Fargate task size of the backup tasks. CPU units and memory must be a combination Fargate offers. */
    task: fargateSize({ cpu: 1024, memoryMiB: 2048, ephemeralStorageGiB: 21 }),
    /** Fargate size of the restore tasks. `PGKEEP_RESTORE_JOBS` above 1 downloads the whole
     * backup to ephemeral storage first (parallel pg_restore needs a seekable file): give it at
     * least the size of the largest backup plus a margin. */
    restore: fargateSize({ cpu: 1024, memoryMiB: 2048, ephemeralStorageGiB: 21 }),
    /** The weekly restore drill: one task restores every database's newest verified backup into a
     * throwaway PostgreSQL inside the container, so it needs the CPU, memory and disk (its data
     * directory is on ephemeral storage) of the largest database restored. */
    drill: z
      .strictObject({
        schedule: scheduleSchema.default({ cron: '0 4 ? * SUN *', timezone: 'UTC' }),
        cpu: fargateCpu(2048),
        memoryMiB: z.int().default(8192),
        ephemeralStorageGiB: ephemeralStorage(50),
        /** Alarm when a database had no successful drill for this many days (1 to 14; default 8: weekly plus a day). */
        alarmAfterDays: z
          .int(required('a whole number of days'))
          .min(1, 'must be at least 1 day')
          .max(
            MAX_DRILL_ALARM_DAYS,
            `at most ${MAX_DRILL_ALARM_DAYS} days (CloudWatch evaluates an alarm over at most 7 days; pgkeep combines two such alarms)`,
          )
          .default(8),
      })
      .prefault({})
      .superRefine(fargateCombination),
    /** How long the task's logs are kept in CloudWatch Logs. */
    logRetentionDays: z
      .int()
      .refine((days) => (LOG_RETENTION_DAYS as readonly number[]).includes(days), {
        message: `expected a CloudWatch Logs retention period: one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(365),
    alarms: z
      .strictObject({
        /** Alarm when this many scheduled runs could not be started (they land in the dead-letter queue). */
        undeliveredScheduledRuns: z.int().min(1).default(1),
        /** Added to each schedule's longest gap for its stale threshold: time for a late start, the run and verification. */
        staleMarginHours: z.number().min(0).max(168).default(2),
        /** Alarm when a database's newest verified backup is smaller than this (bytes); databases can override it. */
        minimumBackupBytes: z
          .int()
          .min(1)
          .default(1024 * 1024),
        /** Alarm when a database's newest verified backup is below this fraction of the median of the ones before it. */
        minimumSizeRatio: sizeRatio.default(0.5),
        /** How many earlier verified backups the size median is taken over (PGKEEP_HEALTH_BASELINE_COUNT). */
        sizeBaselineBackups: z.int().min(1).max(100).default(7),
      })
      .prefault({}),
    /** Grandfather-father-son retention, enforced daily by the enforce-retention function. */
    retention: z
      .strictObject({
        /** Keep the newest verified backup of each of the last N days, ISO weeks, months and years. */
        daily: z.int().min(0).default(DEFAULT_RETENTION_POLICY.daily),
        weekly: z.int().min(0).default(DEFAULT_RETENTION_POLICY.weekly),
        monthly: z.int().min(0).default(DEFAULT_RETENTION_POLICY.monthly),
        yearly: z.int().min(0).default(DEFAULT_RETENTION_POLICY.yearly),
        /** The IANA time zone days, weeks, months and years are counted in; also the run schedule's. */
        timezone: z
          .string()
          .superRefine((value, context) => {
            const problem = timeZoneProblem(value);
            if (problem) context.addIssue({ code: 'custom', message: problem });
          })
          .default(DEFAULT_RETENTION_POLICY.timezone),
        /** Never fewer verified backups than this (the newest ones), whatever the slots say. */
        minVerified: z.int().min(1, 'must be at least 1: the newest verified backup is always kept').default(DEFAULT_RETENTION_POLICY.minVerified),
        /** A backup not yet verified is kept this long after it started. */
        unverifiedGraceHours: z.int().min(0).default(DEFAULT_RETENTION_POLICY.unverifiedGraceHours),
        /** Objects of an incomplete backup (data without manifest, or the reverse) are removed after this long. */
        incompleteGraceHours: z.number().positive().default(48),
        /** Only log and publish what would be deleted. */
        dryRun: z.boolean().default(false),
        /** When the daily run starts (EventBridge cron, in `timezone`). */
        scheduleCron: z
          .string()
          .superRefine((value, context) => {
            const problem = cronExpressionProblem(value);
            if (problem) context.addIssue({ code: 'custom', message: `invalid cron expression: ${problem}` });
          })
          .default('0 6 * * ? *'),
      })
      .prefault({})
      .superRefine((retention, context) => {
        try {
          validatePolicy(retentionPolicy(retention));
        } catch (error) {
          if (error instanceof RangeError) context.addIssue({ code: 'custom', message: error.message.replace(/^retention\./, '') });
          else throw error;
        }
      }),
    /** Who is emailed about failed backups and alarms (each must confirm the subscription). */
    notificationEmails: z.array(z.email('expected an email address')).default([]),
    /** Protects both stacks from `cdk destroy` / DeleteStack. */
    terminationProtection: z.boolean(required('true or false')),
    /** What happens to the task logs and the dead-letter queue when the pipeline stack is deleted.
     * The backup bucket, its access logs and its KMS key are always retained. */
    removalPolicy: z.enum(['retain', 'destroy'], required('"retain" or "destroy"')),
  })
  .superRefine((environment, context) => {
    if ((environment.network === undefined) === (environment.vpc === undefined)) {
      context.addIssue({
        code: 'custom',
        path: ['network'],
        message: environment.network
          ? 'give either network (ids) or vpc (a construct), not both'
          : 'required: network: { vpcId, privateSubnets, securityGroupId } (or, in a CDK app that defines the VPC, vpc)',
      });
    }
    for (const field of ['taskSubnets', 'taskSecurityGroup'] as const) {
      if (environment[field] !== undefined && environment.vpc === undefined) {
        context.addIssue({
          code: 'custom',
          path: [field],
          message: 'only applies with vpc; with network ids the tasks run in network.privateSubnets with network.securityGroupId',
        });
      }
    }
    if (environment.vault && environment.vault.region === environment.region) {
      context.addIssue({
        code: 'custom',
        path: ['vault', 'region'],
        message: `the vault must be in another region than the environment (${environment.region}): a copy in the same region does not survive losing the region`,
      });
    }
    if (environment.vault && environment.vault.deepArchiveAfterDays >= environment.vault.objectLock.days) {
      context.addIssue({
        code: 'custom',
        path: ['vault', 'deepArchiveAfterDays'],
        message: `must be less than objectLock.days (${environment.vault.objectLock.days}): copies expire when their lock ends, so a later transition would never happen`,
      });
    }
    for (const [index, subnet] of (environment.network?.privateSubnets ?? []).entries()) {
      if (!subnet.availabilityZone.startsWith(environment.region)) {
        context.addIssue({
          code: 'custom',
          path: ['network', 'privateSubnets', index, 'availabilityZone'],
          message: `"${subnet.availabilityZone}" is not in region ${environment.region}`,
        });
      }
    }
    const seen = new Map<string, string>();
    for (const [index, database] of environment.databases.entries()) {
      // S3 refuses every upload without a checksum to a bucket under Object Lock: with "none" no
      // backup of this database could ever be written (the task refuses it too, PGKEEP_OBJECT_LOCK).
      const checksumsOffUnderLock =
        environment.objectLock !== undefined &&
        String(database.overrides.PGKEEP_S3_CHECKSUM ?? '')
          .trim()
          .toLowerCase() === 'none';
      if (checksumsOffUnderLock) {
        context.addIssue({
          code: 'custom',
          path: ['databases', index, 'overrides', 'PGKEEP_S3_CHECKSUM'],
          message:
            '"none" cannot be used in an environment with objectLock: S3 refuses every upload without a checksum to a bucket under Object Lock; remove this override (crc64nvme is the default)',
        });
      }
      // The task's own check would report the same "none" again, less precisely.
      const problem =
        databaseNameProblem(database.name) ?? (checksumsOffUnderLock ? undefined : overridesProblem(database.overrides, environment.objectLock !== undefined));
      if (problem) {
        context.addIssue({ code: 'custom', path: ['databases', index, problem.field], message: problem.message });
        continue;
      }
      const key = databaseResourceKey(database.name);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        context.addIssue({
          code: 'custom',
          path: ['databases', index, 'name'],
          message: `"${database.name}" clashes with "${earlier}": both become "${key}" in resource names; rename one`,
        });
      }
      seen.set(key, database.name);
      const scheduleValid = !cronExpressionProblem(database.schedule.cron) && !timeZoneProblem(database.schedule.timezone);
      if (scheduleValid && database.alarms.staleAfterHours === undefined && longestGapBetweenFirings(database.schedule) === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['databases', index, 'alarms', 'staleAfterHours'],
          message: `required: the schedule "${database.schedule.cron}" runs fewer than twice in ${GAP_WINDOW_FIRST_YEAR}-${GAP_WINDOW_FIRST_YEAR + 1} (or its first two allowed years), so no stale-backup threshold can be derived from it; give the hours after which a missing backup should alarm`,
        });
      }
      if (database.secret === undefined && generatedSecret(database.database) === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['databases', index, 'secret'],
          message: database.database
            ? 'required: the database construct has no generated secret (it was imported, or created with credentials from elsewhere); give the secret holding its connection (host, port, username, password, dbname)'
            : "required: the complete ARN of the Secrets Manager secret holding this database's connection (host, port, username, password, dbname), or `database`, an RDS construct with a generated secret",
        });
      }
      if (database.secret === undefined && generatedSecret(database.database) !== undefined && createdDatabaseName(database.database) === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['databases', index, 'database'],
          message:
            'its generated secret will have no dbname, which the tasks read (PGDATABASE): the instance or cluster was created without databaseName, and Secrets Manager fills dbname in from that (aws-cdk#24728). Create it with databaseName, or give a secret that carries dbname',
        });
      }
      for (const field of ['secret', 'restoreTargetSecret'] as const) {
        const secret = database[field];
        if (typeof secret === 'string' && !Token.isUnresolved(secret) && !secret.includes(`:${environment.region}:${environment.account}:`)) {
          context.addIssue({
            code: 'custom',
            path: ['databases', index, field],
            message: `the secret must be in this environment's account and region (${environment.account}, ${environment.region}); ECS reads it with the task's execution role`,
          });
        }
      }
      if (database.restoreTargetSecretKmsKeyArn !== undefined && database.restoreTargetSecret === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['databases', index, 'restoreTargetSecretKmsKeyArn'],
          message: "only applies with restoreTargetSecret; without it restores use the database's own secret and its secretKmsKeyArn",
        });
      }
    }
    const drill = environment.drill;
    if (!cronExpressionProblem(drill.schedule.cron) && !timeZoneProblem(drill.schedule.timezone)) {
      const gap = longestGapBetweenFirings(drill.schedule);
      if (gap === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['drill', 'schedule', 'cron'],
          message: `the drill schedule "${drill.schedule.cron}" runs fewer than twice in ${GAP_WINDOW_FIRST_YEAR}-${GAP_WINDOW_FIRST_YEAR + 1}; the drill must run regularly (e.g. weekly: "0 4 ? * SUN *")`,
        });
      } else if (gap >= drill.alarmAfterDays * 86_400_000) {
        context.addIssue({
          code: 'custom',
          path: ['drill', 'alarmAfterDays'],
          message: `${drill.alarmAfterDays} days is not longer than the drill schedule's longest gap between runs (${Number((gap / 86_400_000).toFixed(2))} days), so the alarm would fire before every drill; allow at least a day more, or drill more often`,
        });
      } else if (drill.alarmAfterDays > 7 && gap > 7 * 86_400_000) {
        context.addIssue({
          code: 'custom',
          path: ['drill', 'schedule', 'cron'],
          message: `the drill schedule leaves up to ${Number((gap / 86_400_000).toFixed(2))} days between runs; with alarmAfterDays above 7 the drill must run at least every 7 days (CloudWatch alarms look back at most 7 days, see docs/infrastructure.md)`,
        });
      }
    }
  });

const ENVIRONMENT_NAME = /^[a-z][a-z0-9-]{0,19}$/;

export const pgkeepConfigSchema = z.strictObject({
  environments: z.record(z.string(), environmentSchema, required('environments: { <name>: { ... } }')).superRefine((environments, context) => {
    if (Object.keys(environments).length === 0) context.addIssue({ code: 'custom', message: 'define at least one environment' });
    for (const name of Object.keys(environments)) {
      if (!ENVIRONMENT_NAME.test(name)) {
        context.addIssue({
          code: 'custom',
          path: [name],
          message: `environment name "${name}" must be 1-20 lowercase letters, digits or hyphens, starting with a letter (it becomes part of stack and resource names)`,
        });
      }
    }
  }),
});

export type PgkeepConfigInput = z.input<typeof pgkeepConfigSchema>;
export type PgkeepConfig = z.output<typeof pgkeepConfigSchema>;
export type EnvironmentConfig = z.output<typeof environmentSchema> & { name: string };
export type DatabaseConfig = z.output<typeof databaseSchema>;
export type LifecycleConfig = EnvironmentConfig['lifecycle'];
export type RetentionConfig = EnvironmentConfig['retention'];
export type AlarmsConfig = EnvironmentConfig['alarms'];
export type DatabaseOverrides = DatabaseConfig['overrides'];
export type FargateSize = EnvironmentConfig['task'];
export type DrillConfig = EnvironmentConfig['drill'];
export type VaultConfig = NonNullable<EnvironmentConfig['vault']>;

export class PgkeepConfigError extends Error {
  override name = 'PgkeepConfigError';
}

/** Validates the whole configuration; throws a PgkeepConfigError listing every problem by field path. */
export function parsePgkeepConfig(input: unknown): PgkeepConfig {
  const result = pgkeepConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `  - ${formatPath(issue.path)}: ${issue.message}`);
  throw new PgkeepConfigError(`Invalid pgkeep configuration (infra/environments.ts):\n${problems.join('\n')}`);
}

export type EnvironmentInput = z.input<typeof environmentSchema>;

/** Validates one environment's configuration; throws a PgkeepConfigError listing every problem by field path. */
export function parseEnvironmentConfig(name: string, input: EnvironmentInput): EnvironmentConfig {
  const result = pgkeepConfigSchema.safeParse({ environments: { [name]: input } });
  if (result.success) return { ...result.data.environments[name]!, name };
  const problems = result.error.issues.map(
    (issue) => `  - ${formatPath(issue.path.slice(2)) === '(top level)' ? 'name' : formatPath(issue.path.slice(2))}: ${issue.message}`,
  );
  throw new PgkeepConfigError(`Invalid configuration of pgkeep environment ${JSON.stringify(name)}:\n${problems.join('\n')}`);
}

/** The environments to synthesize: all of them, or only the one named with `-c env=<name>`. */
export function selectEnvironments(config: PgkeepConfig, only: string | undefined): EnvironmentConfig[] {
  const names = Object.keys(config.environments);
  if (only !== undefined) {
    const environment = config.environments[only];
    if (!environment) {
      throw new PgkeepConfigError(
        `Unknown environment "${only}" (from -c env=${only}): expected one of ${names.join(', ')}, as defined in infra/environments.ts.`,
      );
    }
    return [{ ...environment, name: only }];
  }
  return names.map((name) => ({ ...config.environments[name]!, name }));
}

/** `environments.prod.databases[1].schedule.timezone` from zod's path segments. */
function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? String(segment) : `.${String(segment)}`;
  }
  return text || '(top level)';
}

/**
 * The database's name reduced to ASCII letters and digits in PascalCase ("orders_v1" becomes
 * "OrdersV1"): what CloudFormation logical ids, output keys and task definition families allow.
 */
export function databaseResourceKey(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

function databaseNameProblem(name: string): { field: string; message: string } | undefined {
  try {
    encodeDatabaseSegment(name);
  } catch (error) {
    if (error instanceof CatalogKeyError) return { field: 'name', message: error.message };
    throw error;
  }
  if (databaseResourceKey(name) === '') {
    return { field: 'name', message: `"${name}" has no ASCII letters or digits, which resource names need; catalogue it under a name that has some` };
  }
  return undefined;
}

/** Runs the task's own settings check on the overrides (catalog/task-settings.ts), so a value the
 * task would reject fails synth with the task's message instead of failing every scheduled run. */
function overridesProblem(overrides: DatabaseOverrides, objectLock: boolean): { field: string; message: string } | undefined {
  const problems = overrideProblems(overrideEnvironment(overrides), { objectLock });
  return problems.length > 0 ? { field: 'overrides', message: problems.join('; ') } : undefined;
}

/** The retention function's policy (PGKEEP_RETENTION_POLICY) from the environment's retention settings. */
export function retentionPolicy(retention: Pick<RetentionConfig, keyof RetentionPolicy>): RetentionPolicy {
  const { daily, weekly, monthly, yearly, timezone, minVerified, unverifiedGraceHours } = retention;
  return { daily, weekly, monthly, yearly, timezone, minVerified, unverifiedGraceHours };
}

/** The overrides as container environment variables (all values are strings there). */
export function overrideEnvironment(overrides: DatabaseOverrides): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(overrides)) {
    if (value !== undefined) environment[name] = String(value);
  }
  return environment;
}

/** The secret a database's tasks connect with: the configured one, else its construct's generated secret. */
export function databaseSecret(database: Pick<DatabaseConfig, 'name' | 'secret' | 'database'>): SecretInput {
  const secret = database.secret ?? generatedSecret(database.database);
  // parsePgkeepConfig has required one of them.
  if (secret === undefined) throw new Error(`database ${JSON.stringify(database.name)} has no secret`);
  return secret;
}

/** The database an RDS construct of this app creates with it (DBName, DatabaseName), if it names one. */
function createdDatabaseName(database: DatabaseConstruct | undefined): string | undefined {
  const resource = database?.node.defaultChild as { dbName?: unknown; databaseName?: unknown } | undefined;
  const name = resource?.dbName ?? resource?.databaseName;
  return typeof name === 'string' ? name : undefined;
}

/** rds.DatabaseInstance and DatabaseCluster carry the secret they generated; their interfaces do not. */
function generatedSecret(database: DatabaseConstruct | undefined): secretsmanager.ISecret | undefined {
  const secret = (database as { secret?: unknown } | undefined)?.secret;
  return isSecretConstruct(secret) ? secret : undefined;
}
