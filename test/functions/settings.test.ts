import { describe, expect, it } from 'vitest';
import { flagSetting, functionSettings, positiveIntegerSetting, positiveNumberSetting } from '../../catalog/function-settings.ts';
import { DEFAULT_RETENTION_POLICY } from '../../catalog/retention-policy.ts';

describe('a positive number setting (PGKEEP_INCOMPLETE_GRACE_HOURS, which may be a fraction of an hour)', () => {
  const { enforceRetention } = functionSettings;
  const scope = {
    PGKEEP_BUCKET: 'backups',
    PGKEEP_ENVIRONMENT: 'prod',
    PGKEEP_DATABASES: '["orders"]',
    PGKEEP_RETENTION_POLICY: JSON.stringify(DEFAULT_RETENTION_POLICY),
  };
  const graceHours = (raw: string | undefined) => enforceRetention.parse({ ...scope, PGKEEP_INCOMPLETE_GRACE_HOURS: raw }).PGKEEP_INCOMPLETE_GRACE_HOURS;

  it.each([
    ['48', 48],
    ['0.5', 0.5],
    [' 12 ', 12],
  ])('reads %j in plain decimal notation as %d', (raw, expected) => {
    expect(graceHours(raw)).toBe(expected);
  });

  it('falls back to the catalog default (48) when unset or blank', () => {
    expect(graceHours(undefined)).toBe(48);
    expect(graceHours(' ')).toBe(48);
  });

  // Number() reads these as 16, 10, 3, 0 and Infinity.
  it.each(['0x10', '1e1', '0b11', '0', 'Infinity', '-1', '.5', '2h'])('refuses %j, naming the setting and what it expects', (raw) => {
    expect(() => positiveNumberSetting('hours', 48).parse(raw, 'PGKEEP_INCOMPLETE_GRACE_HOURS')).toThrow(
      `PGKEEP_INCOMPLETE_GRACE_HOURS="${raw}" is invalid: expected a positive number such as 48 or 0.5. The pgkeep stack sets it; redeploy.`,
    );
  });
});

describe('a positive whole number setting (PGKEEP_HEALTH_BASELINE_COUNT, PGKEEP_VERIFY_MAX_STREAM_MB)', () => {
  it('reads decimal digits, and falls back to the catalog default when unset', () => {
    const health = { PGKEEP_BUCKET: 'backups', PGKEEP_ENVIRONMENT: 'prod', PGKEEP_DATABASES: '["orders"]' };

    expect(functionSettings.backupHealth.parse({ ...health, PGKEEP_HEALTH_BASELINE_COUNT: '3' }).PGKEEP_HEALTH_BASELINE_COUNT).toBe(3);
    expect(functionSettings.backupHealth.parse(health).PGKEEP_HEALTH_BASELINE_COUNT).toBe(7);
    expect(
      functionSettings.verifyBackup.parse({ PGKEEP_ENVIRONMENT: 'prod', PGKEEP_ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:111111111111:alerts' })
        .PGKEEP_VERIFY_MAX_STREAM_MB,
    ).toBe(10_240);
  });

  // A count of 7.5 backups, or 0x10 of them, is a mistake, not a number to round.
  it.each(['0x10', '8.0', '1e1', '7.5', '0', '-3', '99999999999999999999'])('refuses %j', (raw) => {
    expect(() => positiveIntegerSetting('a count', 7).parse(raw, 'PGKEEP_HEALTH_BASELINE_COUNT')).toThrow(
      `PGKEEP_HEALTH_BASELINE_COUNT="${raw}" is invalid: expected a positive whole number (decimal digits only).`,
    );
  });
});

describe('a flag setting (PGKEEP_RETENTION_DRY_RUN, PGKEEP_OBJECT_LOCK)', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['false', false],
  ])('reads %j as %s', (raw, expected) => {
    expect(flagSetting('a flag').parse(raw, 'PGKEEP_RETENTION_DRY_RUN')).toBe(expected);
  });

  // "yes" or "1" could be read either way by whoever wrote it; a dry run taken for a real one deletes.
  it.each(['yes', '1', 'on'])('refuses %j', (raw) => {
    expect(() => flagSetting('a flag').parse(raw, 'PGKEEP_RETENTION_DRY_RUN')).toThrow(`PGKEEP_RETENTION_DRY_RUN="${raw}" is invalid: expected true or false.`);
  });
});

describe("a function's settings", () => {
  it('refuse to start without a required setting, saying the stack sets it', () => {
    expect(() => functionSettings.verifyBackup.parse({ PGKEEP_ENVIRONMENT: 'prod' })).toThrow(
      'PGKEEP_ALERT_TOPIC_ARN is not set: expected the ARN of the alert topic. The pgkeep stack sets it; redeploy.',
    );
  });

  it("are written by the infrastructure's builder as variables the handler reads back as the same values, each default filled in", () => {
    const values = {
      PGKEEP_BUCKET: 'backups',
      PGKEEP_ENVIRONMENT: 'prod',
      PGKEEP_DATABASES: ['orders', 'billing'],
      PGKEEP_RETENTION_POLICY: DEFAULT_RETENTION_POLICY,
      PGKEEP_RETENTION_DRY_RUN: true,
    };
    const environment = functionSettings.enforceRetention.environment(values);

    expect(environment).toEqual({
      PGKEEP_BUCKET: 'backups',
      PGKEEP_ENVIRONMENT: 'prod',
      PGKEEP_DATABASES: '["orders","billing"]',
      PGKEEP_RETENTION_POLICY: JSON.stringify(DEFAULT_RETENTION_POLICY),
      PGKEEP_RETENTION_DRY_RUN: 'true',
      PGKEEP_OBJECT_LOCK: 'false',
      PGKEEP_INCOMPLETE_GRACE_HOURS: '48',
      // No vault: blank, and nothing waits for an off-site copy.
      PGKEEP_VAULT_BUCKET: '',
      PGKEEP_VAULT_REGION: '',
      PGKEEP_RETENTION_REQUIRE_OFFSITE: 'false',
    });
    expect(functionSettings.enforceRetention.parse(environment)).toEqual({
      ...values,
      PGKEEP_OBJECT_LOCK: false,
      PGKEEP_INCOMPLETE_GRACE_HOURS: 48,
      PGKEEP_VAULT_BUCKET: '',
      PGKEEP_VAULT_REGION: '',
      PGKEEP_RETENTION_REQUIRE_OFFSITE: false,
    });
  });

  it('cannot be built without a required setting or with a misspelled one (a compile error)', () => {
    // @ts-expect-error PGKEEP_ALERT_TOPIC_ARN is required
    expect(() => functionSettings.verifyBackup.environment({ PGKEEP_ENVIRONMENT: 'prod' })).toThrow('PGKEEP_ALERT_TOPIC_ARN has no value and no default');
    const misspelled = functionSettings.verifyBackup.environment({
      PGKEEP_ENVIRONMENT: 'prod',
      PGKEEP_ALERT_TOPIC_ARN: 'arn',
      // @ts-expect-error PGKEEP_VERIFY_MAX_STREAM_MIB is not a setting of verify-backup
      PGKEEP_VERIFY_MAX_STREAM_MIB: 1,
    });

    expect(misspelled.PGKEEP_VERIFY_MAX_STREAM_MB).toBe('10240');
  });
});
