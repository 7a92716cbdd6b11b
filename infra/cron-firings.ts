/**
 * When an EventBridge Scheduler cron schedule fires, and the longest wait between two of its runs:
 * the basis of each database's "stale backup" alarm threshold.
 *
 * Evaluates the 6-field cron subset that infra/cron.ts accepts (lists, ranges, steps, names, `?`,
 * `L`, `LW`, `nW`, `nL`, `n#k`) in the schedule's IANA time zone, with EventBridge Scheduler's
 * daylight-saving rules: a run whose local time does not exist (clocks spring forward) is skipped,
 * and a local time that happens twice (clocks fall back) runs once, at its first occurrence
 * (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#daylist-savings-time).
 * Expressions are assumed valid: check them with cronExpressionProblem first.
 */

export interface CronSchedule {
  cron: string;
  timezone: string;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** The window the longest gap is measured over: two whole calendar years, so every month length
 * and both daylight-saving changes occur twice. Fixed (not "now"), so synth is reproducible. */
export const GAP_WINDOW_FIRST_YEAR = 2026;
const GAP_WINDOW_YEARS = 2;

type DayMatcher = (year: number, month: number, day: number, weekday: number) => boolean;

interface ParsedCron {
  minutes: number[];
  hours: number[];
  months: Set<number>;
  years: Set<number>;
  matchesDay: DayMatcher;
}

/** The UTC instants at which the schedule fires in [from, to), in order. */
export function cronFirings(schedule: CronSchedule, from: Date, to: Date): Date[] {
  const firings: Date[] = [];
  forEachFiring(schedule, from.getTime(), to.getTime(), (instant) => firings.push(new Date(instant)));
  return firings;
}

const gapCache = new Map<string, number | undefined>();

/**
 * The longest time, in milliseconds, between two consecutive runs of the schedule over the two
 * calendar years from 2026 (or from the first year its year field allows, if later). Undefined
 * when it runs fewer than twice in that window (e.g. only on 29 February, or only in one year),
 * so no gap can be derived from it.
 */
export function longestGapBetweenFirings(schedule: CronSchedule): number | undefined {
  const cacheKey = `${schedule.cron}\u0000${schedule.timezone}`;
  if (gapCache.has(cacheKey)) return gapCache.get(cacheKey);
  const parsed = parseCron(schedule.cron);
  const firstYear = Math.min(...[...parsed.years].filter((year) => year >= GAP_WINDOW_FIRST_YEAR), Number.POSITIVE_INFINITY);
  let longest: number | undefined;
  if (Number.isFinite(firstYear)) {
    // Padded by a day on each side: the window is in UTC, the schedule's days are local.
    const from = Date.UTC(firstYear, 0, 1) - DAY_MS;
    const to = Date.UTC(firstYear + GAP_WINDOW_YEARS, 0, 1) + DAY_MS;
    let previous: number | undefined;
    forEachFiring(schedule, from, to, (instant) => {
      if (previous !== undefined) longest = Math.max(longest ?? 0, instant - previous);
      previous = instant;
    });
  }
  gapCache.set(cacheKey, longest);
  return longest;
}

function forEachFiring({ cron, timezone }: CronSchedule, from: number, to: number, visit: (instant: number) => void): void {
  const parsed = parseCron(cron);
  const offsetAt = offsetFunction(timezone);
  // Walk the local calendar days that can hold an instant of [from, to): UTC offsets are within ±14 h.
  const first = new Date(from - 15 * HOUR_MS);
  const last = to + 15 * HOUR_MS;
  for (let dayStart = Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), first.getUTCDate()); dayStart < last; dayStart += DAY_MS) {
    const date = new Date(dayStart);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth() + 1;
    if (!parsed.years.has(year) || !parsed.months.has(month)) continue;
    const day = date.getUTCDate();
    if (!parsed.matchesDay(year, month, day, date.getUTCDay() + 1)) continue;

    // One offset for the whole day unless the clocks change on it (twice a year at most).
    // (The local day spans the instants dayStart - offset to dayStart + 24 h - offset, offsets within ±14 h.)
    const offsetBefore = offsetAt(dayStart - 14 * HOUR_MS);
    const steadyDay = offsetBefore === offsetAt(dayStart + 38 * HOUR_MS);
    for (const hour of parsed.hours) {
      for (const minute of parsed.minutes) {
        const wallClock = dayStart + hour * HOUR_MS + minute * 60_000;
        const instant = steadyDay ? wallClock - offsetBefore : instantOfWallClock(wallClock, offsetAt);
        if (instant !== undefined && instant >= from && instant < to) visit(instant);
      }
    }
  }
}

/** The first instant whose local time is `wallClock` (a local time written as if it were UTC),
 * or undefined when that local time does not exist (skipped by a daylight-saving change). */
function instantOfWallClock(wallClock: number, offsetAt: (instant: number) => number): number | undefined {
  const candidates = new Set([offsetAt(wallClock - DAY_MS), offsetAt(wallClock), offsetAt(wallClock + DAY_MS)]);
  const valid = [...candidates].map((offset) => wallClock - offset).filter((instant) => offsetAt(instant) === wallClock - instant);
  return valid.length > 0 ? Math.min(...valid) : undefined;
}

const offsetFunctions = new Map<string, (instant: number) => number>();

/** (local time − UTC) in milliseconds at an instant, in the given IANA zone. */
function offsetFunction(timeZone: string): (instant: number) => number {
  let offsetAt = offsetFunctions.get(timeZone);
  if (!offsetAt) {
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetAt = (instant: number): number => {
      const parts = Object.fromEntries(format.formatToParts(new Date(instant)).map((part) => [part.type, part.value]));
      const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
      return local - (instant - (((instant % 1000) + 1000) % 1000));
    };
    offsetFunctions.set(timeZone, offsetAt);
  }
  return offsetAt;
}

function parseCron(expression: string): ParsedCron {
  const [minutes = '', hours = '', dayOfMonth = '', month = '', dayOfWeek = '', year = ''] = expression.trim().split(/\s+/);
  return {
    minutes: [...valuesOf(minutes, 0, 59)].sort((a, b) => a - b),
    hours: [...valuesOf(hours, 0, 23)].sort((a, b) => a - b),
    months: valuesOf(month, 1, 12, MONTH_NAMES),
    years: valuesOf(year, 1970, 2199),
    matchesDay: dayOfMonth === '?' ? dayOfWeekMatcher(dayOfWeek) : dayOfMonthMatcher(dayOfMonth),
  };
}

/** A field's values: `*`, `a`, `a-b` (wrapping past the maximum when a > b), each with an optional `/step`. */
function valuesOf(field: string, min: number, max: number, names?: readonly string[]): Set<number> {
  const values = new Set<number>();
  const valueOf = (text: string): number => {
    const named = names?.indexOf(text.toUpperCase()) ?? -1;
    return named >= 0 ? named + min : Number(text);
  };
  for (const item of field.split(',')) {
    const [range = '*', stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    const [startText = '*', endText] = range.split('-');
    const start = range === '*' ? min : valueOf(startText);
    // `a/step` runs from a to the maximum; `a` alone is just a.
    const end = range === '*' ? max : endText !== undefined ? valueOf(endText) : stepText !== undefined ? max : start;
    const length = end >= start ? end - start + 1 : max - start + 1 + (end - min + 1);
    for (let index = 0; index < length; index += step) values.add(((start - min + index) % (max - min + 1)) + min);
  }
  return values;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
}

/** The weekday (Monday to Friday) nearest to `day` within its month, as `nW` means. */
function nearestWeekday(year: number, month: number, day: number): number | undefined {
  const last = daysInMonth(year, month);
  if (day > last) return undefined;
  const weekday = weekdayOf(year, month, day);
  if (weekday === 7) return day === 1 ? day + 2 : day - 1; // Saturday: Friday before, or Monday after the 1st
  if (weekday === 1) return day === last ? day - 2 : day + 1; // Sunday: Monday after, or Friday before the last
  return day;
}

function dayOfMonthMatcher(field: string): DayMatcher {
  if (field === 'L') return (year, month, day) => day === daysInMonth(year, month);
  if (field === 'LW') {
    return (year, month, day) => {
      const last = daysInMonth(year, month);
      const weekday = weekdayOf(year, month, last);
      return day === (weekday === 7 ? last - 1 : weekday === 1 ? last - 2 : last);
    };
  }
  const nearest = /^(\d+)W$/.exec(field);
  if (nearest) return (year, month, day) => nearestWeekday(year, month, Number(nearest[1])) === day;
  const days = valuesOf(field, 1, 31);
  return (_year, _month, day) => days.has(day);
}

function dayOfWeekMatcher(field: string): DayMatcher {
  if (field === 'L') return (_year, _month, _day, weekday) => weekday === 7;
  const lastOfMonth = /^(\w+)L$/.exec(field);
  if (lastOfMonth) {
    const target = [...valuesOf(lastOfMonth[1] ?? '', 1, 7, DAY_NAMES)][0];
    return (year, month, day, weekday) => weekday === target && day + 7 > daysInMonth(year, month);
  }
  const nth = /^(\w+)#([1-5])$/.exec(field);
  if (nth) {
    const target = [...valuesOf(nth[1] ?? '', 1, 7, DAY_NAMES)][0];
    const occurrence = Number(nth[2]);
    return (_year, _month, day, weekday) => weekday === target && Math.ceil(day / 7) === occurrence;
  }
  const weekdays = valuesOf(field, 1, 7, DAY_NAMES);
  return (_year, _month, _day, weekday) => weekdays.has(weekday);
}
