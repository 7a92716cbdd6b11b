import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { cronExpressionProblem, timeZoneProblem } from '../../infra/cron.ts';
import { DEFAULT_RETENTION_POLICY } from '../../catalog/retention-policy.ts';
import { databaseResourceKey, parsePgkeepConfig, PgkeepConfigError, retentionPolicy, selectEnvironments } from '../../infra/config.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { boundedName } from '../../infra/pgkeep-task.ts';
import { REPOSITORY_ROOT } from '../../infra/paths.ts';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';

/** A deep copy of the shipped examples, for a test to break one field of. */
function examples(): { environments: Record<string, Record<string, unknown> & { databases: Record<string, unknown>[] }> } {
  return structuredClone(PGKEEP_ENVIRONMENTS);
}

/** Builds the app as `cdk synth` would and returns the error it fails with. */
function synthFailure(config: unknown, environment?: string): Error {
  try {
    addPgkeepStacks(new App(), { config, environment });
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
  throw new Error('expected the configuration to be rejected, but the stacks were built');
}

describe('the shipped example configuration', () => {
  it('is valid and fills in the documented defaults', () => {
    const config = parsePgkeepConfig(PGKEEP_ENVIRONMENTS);

    expect(Object.keys(config.environments)).toEqual(['dev', 'prod']);
    expect(config.environments.dev?.alarms.undeliveredScheduledRuns).toBe(1);
    expect(config.environments.dev?.accessLogsExpireAfterDays).toBe(365);
    expect(config.environments.dev?.lifecycle.transitionMinimumObjectBytes).toBe(1024 * 1024);
    expect(config.environments.dev?.databases[0]?.overrides).toEqual({});
    expect(config.environments.dev?.alarms).toEqual({
      undeliveredScheduledRuns: 1,
      staleMarginHours: 2,
      minimumBackupBytes: 1024 * 1024,
      minimumSizeRatio: 0.5,
      sizeBaselineBackups: 7,
    });
    expect(config.environments.dev?.databases[0]?.alarms).toEqual({});
    // Fields the example leaves out take the retention function's defaults.
    expect(config.environments.dev?.retention).toMatchObject({
      minVerified: 3,
      unverifiedGraceHours: 24,
      incompleteGraceHours: 48,
      scheduleCron: '0 6 * * ? *',
    });
  });

  it("maps the retention settings onto the retention function's policy, and defaults them to its example policy", () => {
    const defaults = parsePgkeepConfig({ environments: { solo: { ...examples().environments.dev, retention: undefined } } }).environments.solo!;

    expect(retentionPolicy(defaults.retention)).toEqual(DEFAULT_RETENTION_POLICY);
    expect(defaults.retention.dryRun).toBe(false);
  });

  it('selects every environment by default and one with -c env=<name>', () => {
    const config = parsePgkeepConfig(PGKEEP_ENVIRONMENTS);

    expect(selectEnvironments(config, undefined).map((environment) => environment.name)).toEqual(['dev', 'prod']);
    expect(selectEnvironments(config, 'prod').map((environment) => environment.name)).toEqual(['prod']);
  });
});

describe('invalid configuration fails synth with a message naming the field', () => {
  it('rejects an unknown environment, listing the known ones', () => {
    const error = synthFailure(PGKEEP_ENVIRONMENTS, 'staging');

    expect(error).toBeInstanceOf(PgkeepConfigError);
    expect(error.message).toContain('Unknown environment "staging"');
    expect(error.message).toContain('expected one of dev, prod');
  });

  it('rejects a cron expression EventBridge Scheduler would not accept', () => {
    const config = examples();
    config.environments.prod!.databases[1]!.schedule = { cron: '0 3 * * *', timezone: 'UTC' };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.prod.databases[1].schedule.cron: invalid cron expression: expected 6 fields');
  });

  it('rejects an unknown IANA timezone', () => {
    const config = examples();
    config.environments.prod!.databases[1]!.schedule = { cron: '0 3 * * ? *', timezone: 'Mars/Base' };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.prod.databases[1].schedule.timezone: unknown IANA timezone "Mars/Base"');
  });

  it('rejects a database without a secret', () => {
    const config = examples();
    delete config.environments.dev!.databases[0]!.secret;

    const error = synthFailure(config);

    expect(error.message).toContain('environments.dev.databases[0].secret: required: the complete ARN of the Secrets Manager secret');
  });

  it('reports every problem at once, each with its own path', () => {
    const config = examples();
    config.environments.dev!.account = '1234';
    config.environments.prod!.databases[0]!.schedule = { cron: '0 3 * * ? *', timezone: 'europe/berlin' };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.dev.account: expected a 12-digit AWS account id');
    expect(error.message).toContain(
      'environments.prod.databases[0].schedule.timezone: timezone "europe/berlin" must be spelled exactly: did you mean "Europe/Berlin"?',
    );
  });

  it("rejects an override the backup task itself would reject, with the task's message", () => {
    const config = examples();
    config.environments.prod!.databases[0]!.overrides = { PGKEEP_COMPRESSION_LEVEL: 30 };

    const error = synthFailure(config);

    expect(error.message).toContain(
      'environments.prod.databases[0].overrides: PGKEEP_COMPRESSION_LEVEL="30" is invalid: expected a whole number from 1 to 19.',
    );
  });

  it('rejects PGKEEP_S3_CHECKSUM: none in an environment with objectLock, naming the field', () => {
    const config = examples();
    expect(config.environments.prod!.objectLock).toBeDefined();
    config.environments.prod!.databases[0]!.overrides = { PGKEEP_S3_CHECKSUM: 'none' };

    const error = synthFailure(config);

    expect(error.message).toContain(
      'environments.prod.databases[0].overrides.PGKEEP_S3_CHECKSUM: "none" cannot be used in an environment with objectLock: S3 refuses every upload without a checksum to a bucket under Object Lock; remove this override (crc64nvme is the default)',
    );
    expect(error.message.split('\n').filter((line) => line.includes('PGKEEP_S3_CHECKSUM'))).toHaveLength(1);
  });

  it('accepts PGKEEP_S3_CHECKSUM: none in an environment without objectLock', () => {
    const config = examples();
    expect(config.environments.dev!.objectLock).toBeUndefined();
    config.environments.dev!.databases[0]!.overrides = { PGKEEP_S3_CHECKSUM: 'none' };

    expect(parsePgkeepConfig(config).environments.dev?.databases[0]?.overrides).toEqual({ PGKEEP_S3_CHECKSUM: 'none' });
  });

  it('rejects overrides of settings the infrastructure owns, such as the bucket', () => {
    const config = examples();
    config.environments.prod!.databases[0]!.overrides = { PGKEEP_BUCKET: 'somewhere-else' };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.prod.databases[0].overrides: Unrecognized key: "PGKEEP_BUCKET"');
  });

  it('rejects two databases whose names become the same resource names', () => {
    const config = examples();
    config.environments.prod!.databases[1]!.name = 'Orders';

    const error = synthFailure(config);

    expect(error.message).toContain('environments.prod.databases[1].name: "Orders" clashes with "orders": both become "Orders" in resource names; rename one');
  });

  it('rejects a secret ARN from another account or region', () => {
    const config = examples();
    config.environments.dev!.databases[0]!.secret = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:pgkeep/dev/orders-AbCdEf';

    const error = synthFailure(config);

    expect(error.message).toContain(
      "environments.dev.databases[0].secret: the secret must be in this environment's account and region (111111111111, eu-west-1)",
    );
  });

  it('rejects a Fargate CPU and memory combination that does not exist', () => {
    const config = examples();
    config.environments.dev!.task = { cpu: 256, memoryMiB: 4096 };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.dev.task.memoryMiB: 4096 MiB cannot be paired with 256 CPU units on Fargate');
  });

  it("rejects a subnet outside the environment's region", () => {
    const config = examples();
    (config.environments.dev!.network as { privateSubnets: { availabilityZone: string }[] }).privateSubnets[1]!.availabilityZone = 'us-east-1b';

    const error = synthFailure(config);

    expect(error.message).toContain('environments.dev.network.privateSubnets[1].availabilityZone: "us-east-1b" is not in region eu-west-1');
  });

  it('rejects the age-based lifecycle fields that tier-based rules replaced, saying what replaced them', () => {
    const config = examples();
    config.environments.dev!.lifecycle = { glacierInstantRetrievalAfterDays: 30, deepArchiveAfterDays: 180 };

    const error = synthFailure(config);

    expect(error.message).toContain(
      'environments.dev.lifecycle.glacierInstantRetrievalAfterDays: replaced by tier-based rules: use monthlyToGlacierInstantRetrievalAfterDays',
    );
    expect(error.message).toContain('environments.dev.lifecycle.deepArchiveAfterDays: replaced by tier-based rules: use yearlyToDeepArchiveAfterDays');
  });

  it('rejects a retention policy the retention function would reject, with its message', () => {
    const config = examples();
    config.environments.dev!.retention = { minVerified: 0, daily: -1, timezone: 'Mars/Base' };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.dev.retention.minVerified: must be at least 1: the newest verified backup is always kept');
    expect(error.message).toContain('environments.dev.retention.daily: Too small');
    expect(error.message).toContain('environments.dev.retention.timezone: unknown IANA timezone "Mars/Base"');
  });

  it('requires an explicit stale threshold for a schedule whose gap between runs cannot be derived', () => {
    const config = examples();
    // 29 February only: at most one run in two years.
    config.environments.dev!.databases[0]!.schedule = { cron: '0 3 29 2 ? *', timezone: 'UTC' };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.dev.databases[0].alarms.staleAfterHours: required: the schedule "0 3 29 2 ? *" runs fewer than twice');
  });

  it('accepts such a schedule with an explicit stale threshold, and rejects size-ratio thresholds outside (0, 1)', () => {
    const config = examples();
    config.environments.dev!.databases[0]!.schedule = { cron: '0 3 29 2 ? *', timezone: 'UTC' };
    config.environments.dev!.databases[0]!.alarms = { staleAfterHours: 24 * 366 * 4 };
    expect(() => parsePgkeepConfig(config)).toThrow('environments.dev.databases[0].alarms.staleAfterHours: at most 400 days');

    config.environments.dev!.databases[0]!.alarms = { staleAfterHours: 24 * 30, minimumSizeRatio: 1.5 };
    const error = synthFailure(config);

    expect(error.message).not.toContain('staleAfterHours');
    expect(error.message).toContain('environments.dev.databases[0].alarms.minimumSizeRatio: must be less than 1');
  });

  it('rejects misspelled field names instead of ignoring them', () => {
    const config = examples();
    config.environments.dev!.databases[0]!.schedule = { cron: '0 3 * * ? *', timezone: 'UTC', timezon: 'UTC' };

    const error = synthFailure(config);

    expect(error.message).toContain('environments.dev.databases[0].schedule: Unrecognized key: "timezon"');
  });

  it('makes the real app entry exit with the message, for `cdk synth -c env=staging`', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'pgkeep-cdk-'));
    try {
      // The CLI hands context to the app in CDK_CONTEXT_JSON and the output directory in CDK_OUTDIR.
      const result = spawnSync(process.execPath, ['--import', 'tsx', 'infra/app.ts'], {
        cwd: REPOSITORY_ROOT,
        env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ env: 'staging' }), CDK_OUTDIR: outdir },
        encoding: 'utf8',
      });

      expect(result.status).toBe(1);
      expect(result.stderr).toContain('Unknown environment "staging" (from -c env=staging): expected one of dev, prod');
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('EventBridge Scheduler cron expressions', () => {
  it.each(['0 3 * * ? *', '0/15 * ? * MON-FRI *', '30 1 L * ? *', '0 8 ? * 2#1 *', '0 12 15W JAN,JUL ? 2030-2040', '*/5 9-17 ? * 6L *'])(
    'accepts %j',
    (expression) => {
      expect(cronExpressionProblem(expression)).toBeUndefined();
    },
  );

  it.each([
    ['0 3 * * *', 'expected 6 fields'],
    ['0 3 * * MON *', 'exactly one of day-of-month and day-of-week must be "?"'],
    ['0 3 ? * ? *', 'exactly one of day-of-month and day-of-week must be "?"'],
    ['60 3 * * ? *', 'minutes field "60": "60" is not a whole number from 0 to 59'],
    ['0 3 * 13 ? *', 'month field "13"'],
    ['0 3 ? * FUN *', 'day-of-week field "FUN"'],
    ['0 ? * * ? *', 'hours field "?"'],
    ['0/0 3 * * ? *', 'the step after "/" must be a positive whole number'],
  ])('rejects %j', (expression, problem) => {
    expect(cronExpressionProblem(expression)).toContain(problem);
  });
});

describe('IANA time zones', () => {
  it.each(['UTC', 'Europe/Berlin', 'America/Argentina/Buenos_Aires', 'Etc/UTC'])('accepts %j', (timeZone) => {
    expect(timeZoneProblem(timeZone)).toBeUndefined();
  });

  it.each([
    ['Mars/Base', 'unknown IANA timezone "Mars/Base"'],
    ['utc', 'did you mean "UTC"?'],
    ['+01:00', 'is an offset, not an IANA timezone'],
  ])('rejects %j', (timeZone, problem) => {
    expect(timeZoneProblem(timeZone)).toContain(problem);
  });
});

describe('database resource keys', () => {
  it('reduce a catalog name to the PascalCase letters and digits resource names allow', () => {
    expect(databaseResourceKey('orders')).toBe('Orders');
    expect(databaseResourceKey('orders_v1.archive')).toBe('OrdersV1Archive');
    expect(databaseResourceKey('métier')).toBe('MTier');
  });
});

describe('bounded resource names', () => {
  it('keep a name that fits and shorten a long one to the limit, distinctly', () => {
    const long = `pgkeep-prod-${'AnalyticsWarehouseProductionReplica'.repeat(2)}`;
    const other = `${long}2`;

    expect(boundedName('pgkeep-prod-Orders', 64)).toBe('pgkeep-prod-Orders');
    expect(boundedName(long, 64)).toHaveLength(64);
    expect(boundedName(long, 64)).not.toBe(boundedName(other, 64));
  });
});
