/**
 * Grandfather-father-son retention that can never delete the last good backup.
 *
 * Pure: given one database's backups and a policy, decide what to keep and what to delete, each
 * with its reasons. Only *verified* backups fill GFS slots or count toward the floor; a backup that
 * failed verification, or could not be verified, never stands in for a good one. The rules, in the
 * order they protect:
 *
 *   0. Nothing retention cannot judge is deleted, and none of it counts as good: a backup whose
 *      manifest it cannot read (malformed, or of a newer schema: `unreadable`, and verdict
 *      "newer-schema"), and a future-dated one (its start time lies ahead of the S3 clock, so its
 *      real age is unknown; see futureDatedByMs). Such a backup never fills a GFS slot or a floor,
 *      so it cannot push a real backup out of either.
 *   1. Nothing under S3 Object Lock is deleted (S3 would refuse anyway).
 *   2. Nothing is deleted while the database has no verified backup at all: nothing is proven good,
 *      so nothing is provably redundant.
 *   3. The newest verified backup is kept.
 *   4. The newest `minVerified` verified backups are kept (all of them, if fewer exist).
 *   5. Every backup newer than the newest verified one is kept: it may be the freshest data, and
 *      deleting it cannot make anything safer.
 *   6. A backup not yet verified is kept for `unverifiedGraceHours` after it started (verification
 *      runs within minutes of the upload; this covers delays).
 *   7. The GFS slots: the newest verified backup of each of the last N days, ISO weeks, months and
 *      years that have one, in the configured time zone.
 *   8. With a vault that must hold a copy first (`offsite` set): a backup rules 0–7 would delete is
 *      kept until the vault's verifier has verified its replica. A replica not there yet, not
 *      tagged, tagged anything but verified, or unreadable (the vault down, AccessDenied, a
 *      timeout: 'unknown') is not verified. So a replication outage never costs the last copies:
 *      everything after its start stays in the primary until the vault has it, however long the
 *      outage lasts, and GFS resumes by itself once the replicas are verified. It fills no slot
 *      and no floor (off-site state says nothing about whether the backup is good).
 *
 * Everything else is deleted. Running the plan again on what it kept deletes nothing more.
 */
export type RetentionVerification = 'verified' | 'failed' | 'unverifiable' | 'newer-schema' | 'pending';
export type RetentionTier = 'daily' | 'weekly' | 'monthly' | 'yearly';
/** The vault's copy of a backup (rule 8). unknown: the vault could not be read. */
export type OffsiteState = 'verified' | 'not-verified' | 'unknown';

export interface OffsiteCopy {
  state: OffsiteState;
  /** What was found or went wrong, for the reason: "no replica yet", "tagged failed", "AccessDenied …". */
  detail?: string;
}

/**
 * The tag enforce-retention puts on each data object it keeps, with the longest-lived GFS slot it
 * fills (a RetentionTier); the bucket's lifecycle rules (infra/lifecycle.ts) read it to move
 * long-lived backups to colder storage. Here, beside the tiers, because both sides must agree on it.
 */
export const TIER_TAG = 'pgkeep:tier';

export interface RetentionCandidate {
  backupId: string;
  startedAt: Date;
  verification: RetentionVerification;
  bytes: number;
  /** S3 Object Lock retain-until date, if any. */
  retainUntil?: Date;
  /** By how much its start time lies ahead of the S3 clock, beyond the tolerance (futureDatedByMs). */
  futureDatedByMs?: number;
  /** Why its manifest cannot be read, when it cannot (what the reader said). */
  unreadable?: string;
  /** Its copy in the vault, when deletion requires a verified one (rule 8); absent otherwise. */
  offsite?: OffsiteCopy;
}

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
  /** IANA time zone in which days, weeks, months and years are counted. */
  timezone: string;
  minVerified: number;
  unverifiedGraceHours: number;
}

export interface RetentionDecision {
  backupId: string;
  startedAt: Date;
  action: 'keep' | 'delete';
  /** Why, in words an operator can check; at least one. */
  reasons: string[];
  /** The longest-lived GFS slot the backup fills, for tiered storage; undefined if none. */
  tier: RetentionTier | undefined;
  /** Kept only by rule 8: everything else would delete it (RetentionKeptAwaitingOffsite). */
  awaitingOffsite?: true;
}

/** The example policy: a week of dailies, a month of weeklies, a year of monthlies, three yearlies. */
export const DEFAULT_RETENTION_POLICY: RetentionPolicy = {
  daily: 7,
  weekly: 4,
  monthly: 12,
  yearly: 3,
  timezone: 'UTC',
  minVerified: 3,
  unverifiedGraceHours: 24,
};

const TIER_ORDER: readonly RetentionTier[] = ['daily', 'weekly', 'monthly', 'yearly'];

export function validatePolicy(policy: RetentionPolicy): void {
  for (const field of ['daily', 'weekly', 'monthly', 'yearly', 'minVerified', 'unverifiedGraceHours'] as const) {
    const value = policy[field];
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`retention.${field} must be a whole number ≥ 0 (got ${value}).`);
  }
  if (policy.minVerified < 1) throw new RangeError('retention.minVerified must be at least 1: the newest verified backup is always kept.');
  // Intl accepts an absent timeZone as "this machine's zone": periods would silently follow the host.
  if (typeof policy.timezone !== 'string')
    throw new RangeError(`retention.timezone must be an IANA time zone name such as "UTC" or "Europe/Berlin" (got ${String(policy.timezone)}).`);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: policy.timezone });
  } catch {
    throw new RangeError(`retention.timezone "${policy.timezone}" is not an IANA time zone.`);
  }
}

export function planRetention(candidates: readonly RetentionCandidate[], policy: RetentionPolicy, now: Date): RetentionDecision[] {
  validatePolicy(policy);
  const newestFirst = [...candidates].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime() || (a.backupId < b.backupId ? 1 : -1));
  const reasons = new Map<string, string[]>(newestFirst.map((backup) => [backup.backupId, []]));
  const tiers = new Map<string, RetentionTier>();
  const keep = (backup: RetentionCandidate, reason: string): void => {
    reasons.get(backup.backupId)?.push(reason);
  };
  // Only a backup retention can judge counts as good: a future-dated one would take the newest
  // slots and the floor from the real backups after it for as long as the skew lasts.
  const judgeable = (backup: RetentionCandidate): boolean => backup.futureDatedByMs === undefined && backup.unreadable === undefined;
  const verifiedNewestFirst = newestFirst.filter((backup) => backup.verification === 'verified' && judgeable(backup));
  const newestVerified = verifiedNewestFirst[0];

  for (const backup of newestFirst) {
    if (backup.futureDatedByMs !== undefined) {
      keep(
        backup,
        `future-dated: it claims to have started ${formatSkew(backup.futureDatedByMs)} after S3 stored it, so its real age is unknown; never deleted, never counted as good (docs/operations.md#backup-future-dated)`,
      );
    }
    if (backup.unreadable !== undefined) keep(backup, `its manifest cannot be read (${backup.unreadable}); retention never deletes what it cannot read`);
    if (backup.verification === 'newer-schema')
      keep(backup, 'written by a newer pgkeep (verification "newer-schema"): this version cannot judge it, so it never deletes it');
    if (backup.retainUntil && backup.retainUntil.getTime() > now.getTime()) keep(backup, `under S3 Object Lock until ${backup.retainUntil.toISOString()}`);
    if (!newestVerified) keep(backup, 'no verified backup exists yet: nothing is proven good, so nothing is deleted');
    // A future-dated start time says nothing about being newer; it is kept above for what it is.
    else if (backup.futureDatedByMs === undefined && backup.startedAt.getTime() > newestVerified.startedAt.getTime())
      keep(backup, `newer than the newest verified backup (${newestVerified.backupId})`);
    if (backup.verification === 'pending' && now.getTime() - backup.startedAt.getTime() < policy.unverifiedGraceHours * 3_600_000) {
      keep(backup, `awaiting verification (within the ${policy.unverifiedGraceHours} h grace period)`);
    }
  }

  // GFS: per period kind, the newest verified backup of each of the most recent N periods.
  const periodOf = periodFunctions(policy.timezone);
  for (const tier of TIER_ORDER) {
    const limit = policy[tier];
    const seen = new Set<string>();
    for (const backup of verifiedNewestFirst) {
      if (seen.size >= limit) break;
      const period = periodOf[tier](backup.startedAt);
      if (seen.has(period)) continue;
      seen.add(period);
      keep(backup, `${tier} ${period}`);
      tiers.set(backup.backupId, tier); // TIER_ORDER ascends, so the longest-lived slot wins
    }
  }

  // Floors, counted over verified backups only. The floor is the newest `minVerified` verified
  // backups, not "enough kept so far": counting older slot holders toward it would let a raised
  // slot count (or one more old month) push a recent verified backup out of the plan.
  if (newestVerified) keep(newestVerified, 'newest verified backup');
  for (const backup of verifiedNewestFirst.slice(0, policy.minVerified)) {
    if ((reasons.get(backup.backupId)?.length ?? 0) === 0) keep(backup, `floor: one of the ${policy.minVerified} newest verified backups`);
  }

  return newestFirst.map((backup) => {
    const own = reasons.get(backup.backupId) ?? [];
    if (own.length > 0) return { backupId: backup.backupId, startedAt: backup.startedAt, action: 'keep', reasons: own, tier: tiers.get(backup.backupId) };
    // Rule 8 last, so that it names only what it alone keeps: that count is the metric.
    if (backup.offsite && backup.offsite.state !== 'verified') {
      const detail = backup.offsite.detail ? `: ${backup.offsite.detail}` : '';
      const why =
        backup.offsite.state === 'unknown'
          ? `kept: its off-site copy in the vault is not verified yet (the vault could not be read${detail}); retention never deletes a backup whose off-site copy it cannot confirm`
          : `kept: its off-site copy in the vault is not verified yet (${backup.offsite.detail ?? 'not tagged verified'}); deleted once the vault's verifier has verified it`;
      return { backupId: backup.backupId, startedAt: backup.startedAt, action: 'keep', reasons: [why], tier: undefined, awaitingOffsite: true };
    }
    const why =
      backup.verification === 'verified'
        ? 'verified, but outside every daily/weekly/monthly/yearly slot and above the floor'
        : backup.verification === 'pending'
          ? `never verified within the ${policy.unverifiedGraceHours} h grace period, and older than the newest verified backup`
          : `verification ${backup.verification === 'failed' ? 'failed' : 'was impossible'}, and older than the newest verified backup`;
    return { backupId: backup.backupId, startedAt: backup.startedAt, action: 'delete', reasons: [why], tier: undefined };
  });
}

function formatSkew(milliseconds: number): string {
  const hours = milliseconds / 3_600_000;
  return hours >= 48 ? `${Math.round(hours / 24)} days` : hours >= 1 ? `${Math.round(hours)} h` : `${Math.round(milliseconds / 60_000)} min`;
}

/** Period labels in a time zone: 2026-11-23, 2026-W48, 2026-11, 2026. */
function periodFunctions(timezone: string): Record<RetentionTier, (instant: Date) => string> {
  const format = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
  const localDate = (instant: Date): { year: number; month: number; day: number } => {
    const parts = Object.fromEntries(format.formatToParts(instant).map((part) => [part.type, part.value]));
    return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day) };
  };
  const pad = (value: number, width = 2): string => String(value).padStart(width, '0');
  return {
    daily: (instant) => {
      const { year, month, day } = localDate(instant);
      return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
    },
    weekly: (instant) => {
      const { year, month, day } = localDate(instant);
      const { isoYear, isoWeek } = isoWeekOf(year, month, day);
      return `${pad(isoYear, 4)}-W${pad(isoWeek)}`;
    },
    monthly: (instant) => {
      const { year, month } = localDate(instant);
      return `${pad(year, 4)}-${pad(month)}`;
    },
    yearly: (instant) => pad(localDate(instant).year, 4),
  };
}

/** ISO 8601 week of a calendar date (weeks start on Monday; week 1 holds the first Thursday). */
export function isoWeekOf(year: number, month: number, day: number): { isoYear: number; isoWeek: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = date.getUTCDay() || 7; // Monday 1 … Sunday 7
  date.setUTCDate(date.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const isoYear = date.getUTCFullYear();
  const firstDay = Date.UTC(isoYear, 0, 1);
  return { isoYear, isoWeek: Math.ceil(((date.getTime() - firstDay) / 86_400_000 + 1) / 7) };
}
