/**
 * How old a database's newest verified backup may get before its stale alarm fires: by default the
 * longest wait between two runs of its schedule (in its time zone, daylight-saving changes
 * included) plus a margin for a late start, the run itself and its verification.
 */
import type { AlarmsConfig, DatabaseConfig } from './config.ts';
import { longestGapBetweenFirings } from './cron-firings.ts';

export interface StaleThreshold {
  seconds: number;
  /** How the threshold came about, for the alarm's description. */
  basis: string;
}

/** `marginHours`: the margin to add, where it is not the environment's (the vault adds its own, for replication and its check). */
export function staleThreshold(
  database: DatabaseConfig,
  alarms: Pick<AlarmsConfig, 'staleMarginHours'>,
  marginHours = alarms.staleMarginHours,
): StaleThreshold {
  if (database.alarms.staleAfterHours !== undefined) {
    return { seconds: Math.round(database.alarms.staleAfterHours * 3600), basis: `configured: ${database.alarms.staleAfterHours} h` };
  }
  const gap = longestGapBetweenFirings(database.schedule);
  // The configuration check rejects a schedule without a derivable gap unless staleAfterHours is set.
  if (gap === undefined) throw new Error(`no stale threshold for ${database.name}: set alarms.staleAfterHours`);
  const gapHours = gap / 3_600_000;
  return {
    seconds: Math.round(gap / 1000 + marginHours * 3600),
    basis: `longest gap between scheduled runs ${formatHours(gapHours)} + ${formatHours(marginHours)} margin`,
  };
}

export function formatHours(hours: number): string {
  return `${Number(hours.toFixed(2))} h`;
}
