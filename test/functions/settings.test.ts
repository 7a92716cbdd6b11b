import { describe, expect, it } from 'vitest';
import { integerSetting, numberSetting } from '../../functions/shared/settings.ts';

describe('numberSetting (PGKEEP_INCOMPLETE_GRACE_HOURS, which may be a fraction of an hour)', () => {
  it.each([
    ['48', 48],
    ['0.5', 0.5],
    [' 12 ', 12],
  ])('reads %j in plain decimal notation as %d', (raw, expected) => {
    expect(numberSetting({ PGKEEP_INCOMPLETE_GRACE_HOURS: raw }, 'PGKEEP_INCOMPLETE_GRACE_HOURS', 48)).toBe(expected);
  });

  it('falls back to the default when unset or blank', () => {
    expect(numberSetting({}, 'PGKEEP_INCOMPLETE_GRACE_HOURS', 48)).toBe(48);
    expect(numberSetting({ PGKEEP_INCOMPLETE_GRACE_HOURS: ' ' }, 'PGKEEP_INCOMPLETE_GRACE_HOURS', 48)).toBe(48);
  });

  // Number() reads these as 16, 10, 3, 0 and Infinity.
  it.each(['0x10', '1e1', '0b11', '0', 'Infinity', '-1', '.5', '2h'])('refuses %j, naming the setting and what it expects', (raw) => {
    expect(() => numberSetting({ PGKEEP_INCOMPLETE_GRACE_HOURS: raw }, 'PGKEEP_INCOMPLETE_GRACE_HOURS', 48)).toThrow(
      `PGKEEP_INCOMPLETE_GRACE_HOURS="${raw}" is invalid: expected a positive number such as 48 or 0.5.`,
    );
  });
});

describe('integerSetting (PGKEEP_HEALTH_BASELINE_COUNT, PGKEEP_VERIFY_MAX_STREAM_MB)', () => {
  it('reads decimal digits', () => {
    expect(integerSetting({ PGKEEP_HEALTH_BASELINE_COUNT: '7' }, 'PGKEEP_HEALTH_BASELINE_COUNT', 3)).toBe(7);
    expect(integerSetting({}, 'PGKEEP_HEALTH_BASELINE_COUNT', 3)).toBe(3);
  });

  // A count of 7.5 backups, or 0x10 of them, is a mistake, not a number to round.
  it.each(['0x10', '8.0', '1e1', '7.5', '0', '-3', '99999999999999999999'])('refuses %j', (raw) => {
    expect(() => integerSetting({ PGKEEP_HEALTH_BASELINE_COUNT: raw }, 'PGKEEP_HEALTH_BASELINE_COUNT', 7)).toThrow(
      `PGKEEP_HEALTH_BASELINE_COUNT="${raw}" is invalid: expected a positive whole number (decimal digits only).`,
    );
  });
});
