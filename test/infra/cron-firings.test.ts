import { describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '../../infra/config.ts';
import { cronFirings, longestGapBetweenFirings } from '../../infra/cron-firings.ts';
import { staleThreshold } from '../../infra/staleness.ts';

const HOUR_MS = 3_600_000;
const hoursOf = (milliseconds: number | undefined) => (milliseconds === undefined ? undefined : milliseconds / HOUR_MS);
const iso = (dates: Date[]) => dates.map((date) => date.toISOString());

describe('the longest gap between two runs of a backup schedule', () => {
  it.each([
    ['daily', '0 3 * * ? *', 'UTC', 24],
    ['on weekdays only: Friday to Monday over the weekend', '0 3 ? * MON-FRI *', 'UTC', 72],
    ['twice daily', '0 3,15 * * ? *', 'UTC', 12],
    ['every six hours', '0 */6 * * ? *', 'UTC', 6],
    ['weekly on Sunday', '0 4 ? * SUN *', 'UTC', 7 * 24],
    ['on the last day of the month: 31 days from 28 February to 31 March', '0 3 L * ? *', 'UTC', 31 * 24],
    ['on the first Monday of the month (2#1): up to five weeks apart', '0 8 ? * 2#1 *', 'UTC', 35 * 24],
    ['on the last Friday of the month (6L)', '0 3 ? * 6L *', 'UTC', 35 * 24],
  ])('is %s', (_what, cron, timezone, hours) => {
    expect(hoursOf(longestGapBetweenFirings({ cron, timezone }))).toBe(hours);
  });

  it('grows by the hour the clocks go back, for a daily run in a time zone with daylight saving time', () => {
    // 01:30 in Berlin exists every day; the night of the autumn change is 25 hours long.
    expect(hoursOf(longestGapBetweenFirings({ cron: '30 1 * * ? *', timezone: 'Europe/Berlin' }))).toBe(25);
    expect(hoursOf(longestGapBetweenFirings({ cron: '0 1 * * ? *', timezone: 'America/New_York' }))).toBe(25);
  });

  it("spans two days when the clocks spring forward over the run's local time (EventBridge Scheduler skips that run)", () => {
    expect(hoursOf(longestGapBetweenFirings({ cron: '30 2 * * ? *', timezone: 'Europe/Berlin' }))).toBe(47);
  });

  it('is undefined for a schedule that runs fewer than twice in the two years it is measured over', () => {
    expect(longestGapBetweenFirings({ cron: '0 3 29 2 ? *', timezone: 'UTC' })).toBeUndefined();
    expect(longestGapBetweenFirings({ cron: '0 3 1 1 ? 2026', timezone: 'UTC' })).toBeUndefined();
  });

  it('is measured from the first year the year field allows, for a schedule that starts later', () => {
    expect(hoursOf(longestGapBetweenFirings({ cron: '0 12 15W JAN,JUL ? 2030-2040', timezone: 'UTC' }))).toBeGreaterThan(180 * 24);
  });
});

describe('the runs of a cron schedule in its time zone', () => {
  it('skips a local time that does not exist and runs a repeated one once, at its first occurrence', () => {
    const spring = cronFirings({ cron: '30 2 * * ? *', timezone: 'Europe/Berlin' }, new Date('2026-03-28T00:00Z'), new Date('2026-03-31T00:00Z'));
    const autumn = cronFirings({ cron: '30 2 * * ? *', timezone: 'Europe/Berlin' }, new Date('2026-10-24T00:00Z'), new Date('2026-10-27T00:00Z'));

    // 29 March 2026: 02:00 CET jumps to 03:00 CEST, so 02:30 never happens.
    expect(iso(spring)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
    // 25 October 2026: 02:30 happens in CEST (00:30Z) and again in CET (01:30Z).
    expect(iso(autumn)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('moves nW to the nearest weekday within the month, and reads LW as the last weekday', () => {
    const nearest = cronFirings({ cron: '0 12 15W * ? *', timezone: 'UTC' }, new Date('2026-02-01T00:00Z'), new Date('2026-09-01T00:00Z'));
    const lastWeekday = cronFirings({ cron: '0 12 LW * ? *', timezone: 'UTC' }, new Date('2026-05-01T00:00Z'), new Date('2026-06-01T00:00Z'));

    // 15 February 2026 is a Sunday (→ Monday 16), 15 August a Saturday (→ Friday 14).
    expect(iso(nearest).map((instant) => instant.slice(0, 10))).toEqual([
      '2026-02-16',
      '2026-03-16',
      '2026-04-15',
      '2026-05-15',
      '2026-06-15',
      '2026-07-15',
      '2026-08-14',
    ]);
    // 31 May 2026 is a Sunday: the last weekday is Friday 29.
    expect(iso(lastWeekday)).toEqual(['2026-05-29T12:00:00.000Z']);
  });

  it('reads steps, ranges, lists and names as EventBridge does', () => {
    const firings = cronFirings({ cron: '10/20 22-23,1 ? JAN MON,WED *', timezone: 'UTC' }, new Date('2026-01-05T00:00Z'), new Date('2026-01-06T00:00Z'));

    expect(iso(firings)).toEqual([
      '2026-01-05T01:10:00.000Z',
      '2026-01-05T01:30:00.000Z',
      '2026-01-05T01:50:00.000Z',
      '2026-01-05T22:10:00.000Z',
      '2026-01-05T22:30:00.000Z',
      '2026-01-05T22:50:00.000Z',
      '2026-01-05T23:10:00.000Z',
      '2026-01-05T23:30:00.000Z',
      '2026-01-05T23:50:00.000Z',
    ]);
  });
});

describe('the stale-backup threshold of a database', () => {
  const database = (schedule: DatabaseConfig['schedule'], alarms: DatabaseConfig['alarms'] = {}): DatabaseConfig => ({
    name: 'orders',
    secret: 'pgkeep/orders',
    schedule,
    overrides: {},
    alarms,
  });

  it('is the longest gap between runs plus the margin, in seconds', () => {
    const threshold = staleThreshold(database({ cron: '0 3 ? * MON-FRI *', timezone: 'UTC' }), { staleMarginHours: 2 });

    expect(threshold.seconds).toBe((72 + 2) * 3600);
    expect(threshold.basis).toBe('longest gap between scheduled runs 72 h + 2 h margin');
  });

  it('is the configured number of hours when the database sets one', () => {
    const threshold = staleThreshold(database({ cron: '0 3 * * ? *', timezone: 'UTC' }, { staleAfterHours: 30.5 }), { staleMarginHours: 2 });

    expect(threshold).toEqual({ seconds: 30.5 * 3600, basis: 'configured: 30.5 h' });
  });
});
