/**
 * The two scheduled functions: backup-health (hourly: the age and size of each database's newest
 * verified backup, as metrics the alarms watch) and enforce-retention (daily: the GFS policy, tier
 * tags for the lifecycle rules, and the deletes). Both run from EventBridge Scheduler schedules in
 * the environment's schedule group, with the same dead-letter queue as the backup schedules.
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import { Duration, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { functionSettings } from '../catalog/function-settings.ts';
import { PgkeepFunction } from './constructs/pgkeep-function.ts';
import type { EnvironmentConfig } from './config.ts';
import { retentionPolicy } from './config.ts';
import { allowPublishingMetrics } from './function-policies.ts';
import { vaultBucketName, vaultSourceRoleName } from '../catalog/vault.ts';
import { allowReadingVaultVerdicts } from './vault-access.ts';

/** Minute 15 of every hour, in UTC: a fixed minute keeps one data point inside each hourly alarm
 * period, and 15 minutes past the hour sees backups scheduled on the hour already verified. */
export const HEALTH_CHECK_CRON = '15 * * * ? *';

export interface ScheduledFunctionProps {
  /** Its name, databases, health baseline, retention policy and Object Lock. */
  environment: Pick<EnvironmentConfig, 'name' | 'databases' | 'alarms' | 'retention' | 'objectLock' | 'vault'>;
  bucketName: string;
  /** The storage stack's policy with this function's access to the bucket. */
  accessPolicy: iam.IManagedPolicy;
  /** The function's bundle (infra/assets.ts). */
  code: lambda.Code;
  logRetention: logs.RetentionDays;
  logRemovalPolicy: RemovalPolicy;
  scheduleGroup: scheduler.IScheduleGroup;
  /** Assumed by EventBridge Scheduler to invoke the functions (shared by both schedules). */
  scheduleRole: iam.IRole;
  deadLetterQueue: sqs.IQueue;
}

export class BackupHealthCheck extends Construct {
  readonly function: PgkeepFunction;
  readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: ScheduledFunctionProps) {
    super(scope, id);
    const { environment, bucketName } = props;

    this.function = new PgkeepFunction(this, 'Function', {
      functionName: `pgkeep-${environment.name}-backup-health`,
      code: props.code,
      description: `pgkeep ${environment.name}: hourly age and size of each database's newest verified backup, for the stale and undersized alarms`,
      serviceName: 'pgkeep-backup-health',
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: Duration.minutes(5),
      ...(environment.vault ? { roleName: vaultSourceRoleName(environment.name, 'health') } : {}),
      environment: functionSettings.backupHealth.environment({
        PGKEEP_BUCKET: bucketName,
        PGKEEP_ENVIRONMENT: environment.name,
        PGKEEP_DATABASES: environment.databases.map((database) => database.name),
        PGKEEP_HEALTH_BASELINE_COUNT: environment.alarms.sizeBaselineBackups,
        ...vaultSettings(environment),
      }),
    });
    if (environment.vault) allowReadingVaultVerdicts(this.function.role, environment.name, environment.vault);
    // BackupHealthReaderPolicy: the listing (sizes, start times) and the verification tags, never an object.
    this.function.role.addManagedPolicy(props.accessPolicy);
    allowPublishingMetrics(this.function.role);
    acknowledgeInvokeQualifiers(props.scheduleRole, this.function);

    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      scheduleName: `pgkeep-${environment.name}-backup-health`,
      scheduleGroup: props.scheduleGroup,
      description: `pgkeep ${environment.name}: hourly backup health check (newest verified backup age and size per database)`,
      schedule: scheduler.ScheduleExpression.expression(`cron(${HEALTH_CHECK_CRON})`, TimeZone.ETC_UTC),
      target: new schedulerTargets.LambdaInvoke(this.function, {
        role: props.scheduleRole,
        // A run that cannot be invoked within 15 minutes is dropped: the next one is due within the hour,
        // and the stale alarm tolerates one missing hour.
        retryAttempts: 2,
        maxEventAge: Duration.minutes(15),
        deadLetterQueue: props.deadLetterQueue,
      }),
    });
  }
}

export class RetentionEnforcement extends Construct {
  readonly function: PgkeepFunction;
  readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: ScheduledFunctionProps) {
    super(scope, id);
    const { environment, bucketName } = props;
    const { retention } = environment;
    const objectLock = environment.objectLock !== undefined;

    this.function = new PgkeepFunction(this, 'Function', {
      functionName: `pgkeep-${environment.name}-enforce-retention`,
      code: props.code,
      description: `pgkeep ${environment.name}: daily GFS retention (${retention.daily}/${retention.weekly}/${retention.monthly}/${retention.yearly})${retention.dryRun ? ', DRY RUN: deletes nothing' : ''}; tags kept backups with their tier`,
      serviceName: 'pgkeep-enforce-retention',
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      // Lists and reads the tags of every backup of every database (thousands over the years).
      timeout: Duration.minutes(15),
      memorySize: 512,
      ...(environment.vault ? { roleName: vaultSourceRoleName(environment.name, 'retention') } : {}),
      environment: functionSettings.enforceRetention.environment({
        PGKEEP_BUCKET: bucketName,
        PGKEEP_ENVIRONMENT: environment.name,
        PGKEEP_DATABASES: environment.databases.map((database) => database.name),
        PGKEEP_RETENTION_POLICY: retentionPolicy(retention),
        PGKEEP_RETENTION_DRY_RUN: retention.dryRun,
        PGKEEP_OBJECT_LOCK: objectLock,
        PGKEEP_INCOMPLETE_GRACE_HOURS: retention.incompleteGraceHours,
        ...vaultSettings(environment),
        PGKEEP_RETENTION_REQUIRE_OFFSITE: environment.vault?.retentionWaitsForOffsite ?? false,
      }),
    });
    if (environment.vault) allowReadingVaultVerdicts(this.function.role, environment.name, environment.vault);
    // RetentionEnforcerPolicy: list, tags, delete (and Object Lock dates where the bucket has it).
    this.function.role.addManagedPolicy(props.accessPolicy);
    allowPublishingMetrics(this.function.role);
    acknowledgeInvokeQualifiers(props.scheduleRole, this.function);

    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      scheduleName: `pgkeep-${environment.name}-enforce-retention`,
      scheduleGroup: props.scheduleGroup,
      description: `pgkeep ${environment.name}: daily retention run (cron ${retention.scheduleCron}, ${retention.timezone})`,
      schedule: scheduler.ScheduleExpression.expression(`cron(${retention.scheduleCron})`, TimeZone.of(retention.timezone)),
      target: new schedulerTargets.LambdaInvoke(this.function, {
        role: props.scheduleRole,
        retryAttempts: 3,
        maxEventAge: Duration.hours(2),
        deadLetterQueue: props.deadLetterQueue,
      }),
    });
  }
}

/** Where the vault is, for the functions that read its copies' verdicts (blank without one). */
function vaultSettings(environment: Pick<EnvironmentConfig, 'name' | 'vault'>): { PGKEEP_VAULT_BUCKET: string; PGKEEP_VAULT_REGION: string } {
  const { vault } = environment;
  return vault
    ? { PGKEEP_VAULT_BUCKET: vaultBucketName(environment.name, vault.account, vault.region), PGKEEP_VAULT_REGION: vault.region }
    : { PGKEEP_VAULT_BUCKET: '', PGKEEP_VAULT_REGION: '' };
}

/** LambdaInvoke grants lambda:InvokeFunction on the function and on `<arn>:*` (its versions and aliases). */
function acknowledgeInvokeQualifiers(role: iam.IRole, fn: PgkeepFunction): void {
  const stack = Stack.of(fn);
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
    reason:
      "CDK's grantInvoke names the function and its versions and aliases (<function ARN>:*); the wildcard covers only qualifiers of this one function, which the schedule invokes unqualified.",
  });
}
