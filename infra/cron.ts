/**
 * Checks for the two halves of an EventBridge Scheduler schedule: its 6-field cron expression and
 * its IANA time zone. Both are checked at synth time because CloudFormation only rejects them
 * mid-deploy, after the storage stack has already been created.
 *
 * EventBridge cron fields: minutes hours day-of-month month day-of-week year, e.g. `0 3 * * ? *`.
 * See https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based
 */

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Extra single-item forms this field accepts (?, L, W, #). */
  special?: RegExp;
}

const FIELDS: readonly CronField[] = [
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, special: /^(\?|L|LW|([1-9]|[12]\d|3[01])W)$/ },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES },
  { name: 'day-of-week', min: 1, max: 7, names: DAY_NAMES, special: /^(\?|L|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(L|#[1-5]))$/ },
  { name: 'year', min: 1970, max: 2199 },
];

/** Returns what is wrong with a 6-field EventBridge cron expression, or undefined if it is valid. */
export function cronExpressionProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6) {
    return `expected 6 fields (minutes hours day-of-month month day-of-week year), e.g. "0 3 * * ? *"; got ${fields.length} in "${expression}"`;
  }
  for (const [index, field] of FIELDS.entries()) {
    const problem = fieldProblem(fields[index] ?? '', field);
    if (problem) return `${field.name} field "${fields[index]}": ${problem} (in "${expression}")`;
  }
  const dayOfMonth = fields[2];
  const dayOfWeek = fields[4];
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    return `exactly one of day-of-month and day-of-week must be "?" (EventBridge cannot combine them); e.g. "0 3 * * ? *" or "0 3 ? * SUN *" (in "${expression}")`;
  }
  return undefined;
}

function fieldProblem(text: string, field: CronField): string | undefined {
  const items = text.split(',');
  for (const item of items) {
    if (field.special?.test(item)) {
      if (items.length > 1) return `"${item}" cannot be combined with other values`;
      continue;
    }
    const [range, step, ...rest] = item.split('/');
    if (rest.length > 0 || range === undefined) return `"${item}" has more than one "/"`;
    if (step !== undefined && !/^[1-9]\d*$/.test(step)) return `"${item}": the step after "/" must be a positive whole number`;
    if (range === '*') continue;
    const bounds = range.split('-');
    if (bounds.length > 2) return `"${item}" is not a value or a range`;
    for (const bound of bounds) {
      const value = valueOf(bound, field);
      if (value === undefined) {
        const namesHint = field.names ? ` or one of ${field.names.join(', ')}` : '';
        return `"${bound}" is not a whole number from ${field.min} to ${field.max}${namesHint}`;
      }
    }
  }
  return undefined;
}

function valueOf(text: string, field: CronField): number | undefined {
  const named = field.names?.indexOf(text.toUpperCase()) ?? -1;
  if (named >= 0) return named + field.min;
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= field.min && value <= field.max ? value : undefined;
}

/** Returns what is wrong with an IANA time zone name, or undefined if it is valid. EventBridge
 * Scheduler matches names exactly, so a zone Intl only accepts case-insensitively is rejected. */
export function timeZoneProblem(timeZone: string): string | undefined {
  if (Intl.supportedValuesOf('timeZone').includes(timeZone)) return undefined;
  if (/^[+-]\d/.test(timeZone)) {
    return `"${timeZone}" is an offset, not an IANA timezone: expected a name such as "UTC" or "Europe/Berlin"`;
  }
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    return `unknown IANA timezone "${timeZone}": expected a name such as "UTC", "Europe/Berlin" or "America/New_York"`;
  }
  if (resolved !== timeZone && resolved.toLowerCase() === timeZone.toLowerCase()) {
    return `timezone "${timeZone}" must be spelled exactly: did you mean "${resolved}"?`;
  }
  return undefined;
}
