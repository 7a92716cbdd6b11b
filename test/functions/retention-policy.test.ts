/**
 * planRetention as a specification. First the invariants that must hold for any catalog and any
 * valid policy, checked with fast-check over random catalogs (0–120 backups over about three years,
 * every verification status, Object Lock dates in the past and the future, time zones with odd
 * offsets and half-hour DST); then named scenarios with fixed dates that an operator can check by
 * hand against a calendar.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  isoWeekOf,
  planRetention,
  validatePolicy,
  type RetentionCandidate,
  type RetentionDecision,
  type RetentionPolicy,
  type RetentionTier,
  type RetentionVerification,
} from '../../catalog/retention-policy.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;
/** At least 300 runs per property; RETENTION_RUNS=5000 makes a longer hunt for counterexamples. */
const RUNS = Math.max(300, Number(process.env.RETENTION_RUNS) || 0);

const TIMEZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Pacific/Chatham'] as const;
const STATUSES: readonly RetentionVerification[] = ['verified', 'failed', 'unverifiable', 'newer-schema', 'pending'];
/** Shortest-lived first, so a later index is a longer-lived slot. */
const SLOT_TIERS: readonly RetentionTier[] = ['daily', 'weekly', 'monthly', 'yearly'];
const SLOT_REASON = /^(daily|weekly|monthly|yearly) /;

interface Catalog {
  candidates: RetentionCandidate[];
  policy: RetentionPolicy;
  now: Date;
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** 0–10, with small counts often: the floor only matters when the slots hold fewer than minVerified. */
const slotCountArb = fc.oneof(fc.integer({ min: 0, max: 10 }), { arbitrary: fc.integer({ min: 0, max: 2 }), weight: 3 });

const policyArb: fc.Arbitrary<RetentionPolicy> = fc.record({
  daily: slotCountArb,
  weekly: slotCountArb,
  monthly: slotCountArb,
  yearly: slotCountArb,
  timezone: fc.constantFrom(...TIMEZONES),
  minVerified: fc.integer({ min: 1, max: 10 }),
  unverifiedGraceHours: fc.integer({ min: 0, max: 72 }),
});

const nowArb = fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2027-12-31T23:59:59.999Z') });

/**
 * How long before `now` a backup started (negative: after `now`), in one of three shapes: spread
 * over three years, bunched into a few days (several per day, so slots compete and the floor
 * matters), or right around `now` (so the grace period and "newer than the newest verified"
 * matter). A catalog draws all its backups from one shape, or mixes them.
 */
const AGE_SHAPES = [
  { min: -YEAR / 2, max: (5 * YEAR) / 2 },
  { min: -2 * DAY, max: 10 * DAY },
  { min: -6 * HOUR, max: 96 * HOUR },
].map((range) => fc.integer(range));

/** Per catalog: every backup from one shape, or each backup from any of them. */
const ageShapeArb = fc.constantFrom(fc.oneof(...AGE_SHAPES), ...AGE_SHAPES);

function backupSpecArb(ageArb: fc.Arbitrary<number>) {
  return fc.record({
    ageMs: ageArb,
    verification: fc.constantFrom(...STATUSES),
    lockFromNowMs: fc.option(fc.integer({ min: -90 * DAY, max: 90 * DAY }), { nil: undefined }),
  });
}

const catalogArb: fc.Arbitrary<Catalog> = fc
  .record({
    now: nowArb,
    nowIsAfterEveryBackup: fc.boolean(),
    backups: ageShapeArb.chain((ageArb) => fc.array(backupSpecArb(ageArb), { maxLength: 120, size: 'max' })),
    policy: policyArb,
  })
  .map(({ now, nowIsAfterEveryBackup, backups, policy }) => ({
    now: new Date(now),
    policy,
    candidates: backups.map(({ ageMs, verification, lockFromNowMs }, index) => ({
      backupId: backupIdFor(index),
      startedAt: new Date(now - (nowIsAfterEveryBackup ? Math.abs(ageMs) : ageMs)),
      verification,
      bytes: 1000 + index,
      retainUntil: lockFromNowMs === undefined ? undefined : new Date(now + lockFromNowMs),
    })),
  }));

/**
 * Catalogs whose newest backups all failed or could not be verified, with distinct start times
 * so "the k newest verified" names exactly k backups.
 */
const failedOnTopArb: fc.Arbitrary<Catalog> = fc
  .record({
    now: nowArb,
    ages: fc.uniqueArray(fc.integer({ min: 0, max: 3 * YEAR }), { minLength: 1, maxLength: 120, size: 'max' }),
    nonVerifiedOnTop: fc.integer({ min: 1, max: 30 }),
    topStatuses: fc.array(fc.constantFrom<RetentionVerification>('failed', 'unverifiable'), { minLength: 30, maxLength: 30 }),
    olderStatuses: fc.array(fc.oneof({ arbitrary: fc.constant<RetentionVerification>('verified'), weight: 3 }, fc.constantFrom(...STATUSES)), {
      minLength: 120,
      maxLength: 120,
    }),
    policy: policyArb,
  })
  .map(({ now, ages, nonVerifiedOnTop, topStatuses, olderStatuses, policy }) => ({
    now: new Date(now),
    policy,
    candidates: [...ages]
      .sort((a, b) => a - b)
      .map((ageMs, index) => ({
        backupId: backupIdFor(index),
        startedAt: new Date(now - ageMs),
        verification: (index < nonVerifiedOnTop ? topStatuses[index] : olderStatuses[index]) ?? 'verified',
        bytes: 1000,
      })),
  }));

function backupIdFor(index: number): string {
  return `b${String(index).padStart(4, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Helpers and invariant checks (shared by the properties and the 5,000-backup scenario)
// ---------------------------------------------------------------------------------------------

function plan({ candidates, policy, now }: Catalog): RetentionDecision[] {
  return planRetention(candidates, policy, now);
}

function keptIdsOf(decisions: readonly RetentionDecision[]): Set<string> {
  return new Set(decisions.filter((decision) => decision.action === 'keep').map((decision) => decision.backupId));
}

function verifiedNewestFirst(candidates: readonly RetentionCandidate[]): RetentionCandidate[] {
  return candidates.filter((backup) => backup.verification === 'verified').sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
}

function describeBackup(backup: RetentionCandidate): string {
  return `${backup.backupId} (${backup.verification}, ${backup.startedAt.toISOString()})`;
}

function expectOneDecisionPerBackupWithReasons(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  expect(decisions.map((decision) => decision.backupId).sort()).toEqual(catalog.candidates.map((backup) => backup.backupId).sort());
  for (const decision of decisions) {
    expect(['keep', 'delete'], decision.backupId).toContain(decision.action);
    expect(decision.reasons.length, `${decision.backupId} has no reason`).toBeGreaterThanOrEqual(1);
  }
}

function expectNewestVerifiedKept(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const verified = verifiedNewestFirst(catalog.candidates);
  const newest = verified[0];
  if (!newest) return;
  const kept = keptIdsOf(decisions);
  // Two verified backups may share the newest start time; either one is "the newest".
  const tiedForNewest = verified.filter((backup) => backup.startedAt.getTime() === newest.startedAt.getTime());
  expect(
    tiedForNewest.some((backup) => kept.has(backup.backupId)),
    `newest verified ${describeBackup(newest)} deleted`,
  ).toBe(true);
}

function expectVerifiedFloorKept(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const verified = verifiedNewestFirst(catalog.candidates);
  const kept = keptIdsOf(decisions);
  const keptVerified = verified.filter((backup) => kept.has(backup.backupId)).length;
  expect(keptVerified).toBeGreaterThanOrEqual(Math.min(catalog.policy.minVerified, verified.length));
}

function expectNothingLockedDeleted(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const kept = keptIdsOf(decisions);
  for (const backup of catalog.candidates) {
    if (backup.retainUntil && backup.retainUntil.getTime() > catalog.now.getTime()) {
      expect(kept.has(backup.backupId), `${describeBackup(backup)} is locked until ${backup.retainUntil.toISOString()}`).toBe(true);
    }
  }
}

function expectNothingPendingInGraceDeleted(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const kept = keptIdsOf(decisions);
  const graceMs = catalog.policy.unverifiedGraceHours * HOUR;
  for (const backup of catalog.candidates) {
    if (backup.verification === 'pending' && catalog.now.getTime() - backup.startedAt.getTime() < graceMs) {
      expect(kept.has(backup.backupId), `${describeBackup(backup)} is still within its grace period`).toBe(true);
    }
  }
}

function expectNothingDeletedWithoutAVerifiedBackup(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  if (catalog.candidates.some((backup) => backup.verification === 'verified')) return;
  expect(decisions.filter((decision) => decision.action === 'delete')).toEqual([]);
}

function expectNothingNewerThanNewestVerifiedDeleted(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const newest = verifiedNewestFirst(catalog.candidates)[0];
  if (!newest) return;
  const kept = keptIdsOf(decisions);
  for (const backup of catalog.candidates) {
    if (backup.startedAt.getTime() > newest.startedAt.getTime()) {
      expect(kept.has(backup.backupId), `${describeBackup(backup)} is newer than the newest verified ${describeBackup(newest)}`).toBe(true);
    }
  }
}

function expectIdempotent(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const kept = keptIdsOf(decisions);
  const survivors = { ...catalog, candidates: catalog.candidates.filter((backup) => kept.has(backup.backupId)) };
  const secondPass = plan(survivors);
  expect(secondPass.filter((decision) => decision.action === 'delete')).toEqual([]);
}

/** Only meaningful when verified start times are distinct, so "the k newest" is one set. */
function expectNewestVerifiedUpToFloorKept(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const kept = keptIdsOf(decisions);
  for (const backup of verifiedNewestFirst(catalog.candidates).slice(0, catalog.policy.minVerified)) {
    expect(kept.has(backup.backupId), `${describeBackup(backup)} is among the ${catalog.policy.minVerified} newest verified`).toBe(true);
  }
}

function expectTierIsLongestLivedSlot(catalog: Catalog, decisions: readonly RetentionDecision[]): void {
  const verification = new Map(catalog.candidates.map((backup) => [backup.backupId, backup.verification]));
  for (const decision of decisions) {
    const slotTiers = decision.reasons.flatMap((reason) => SLOT_REASON.exec(reason)?.[1] ?? []) as RetentionTier[];
    if (slotTiers.length > 0) {
      expect(verification.get(decision.backupId), `${decision.backupId} fills a slot (${slotTiers.join(', ')})`).toBe('verified');
    }
    if (decision.action === 'delete') {
      expect(decision.tier, `${decision.backupId} is deleted yet has a tier`).toBeUndefined();
      continue;
    }
    const longestLived = SLOT_TIERS.filter((tier) => slotTiers.includes(tier)).at(-1);
    expect(decision.tier, `${decision.backupId}: ${decision.reasons.join('; ')}`).toBe(longestLived);
  }
}

const MONOTONE_FIELDS = ['daily', 'weekly', 'monthly', 'yearly', 'minVerified'] as const;

function expectMonotoneIn(catalog: Catalog, field: (typeof MONOTONE_FIELDS)[number], increase: number): void {
  const keptBefore = keptIdsOf(plan(catalog));
  const keptAfter = keptIdsOf(plan({ ...catalog, policy: { ...catalog.policy, [field]: catalog.policy[field] + increase } }));
  const lost = [...keptBefore].filter((backupId) => !keptAfter.has(backupId));
  expect(lost, `raising ${field} by ${increase} deleted backups that were kept`).toEqual([]);
}

function slotReasonsOf(decision: RetentionDecision | undefined): string[] {
  return decision?.reasons.filter((reason) => SLOT_REASON.test(reason)) ?? [];
}

function verifiedBackup(backupId: string, startedAt: string | number | Date, verification: RetentionVerification = 'verified'): RetentionCandidate {
  return { backupId, startedAt: new Date(startedAt), verification, bytes: 1_000_000 };
}

function policyWith(overrides: Partial<RetentionPolicy>): RetentionPolicy {
  return { daily: 7, weekly: 4, monthly: 6, yearly: 0, timezone: 'UTC', minVerified: 3, unverifiedGraceHours: 24, ...overrides };
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe('planRetention invariants (property-based, any catalog and policy)', () => {
  it('1. gives every backup exactly one decision, and every decision at least one reason', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectOneDecisionPerBackupWithReasons(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('2. always keeps the newest verified backup', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectNewestVerifiedKept(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('3. keeps at least min(minVerified, number of verified) verified backups', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectVerifiedFloorKept(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('4. deletes nothing still under Object Lock (retainUntil after now)', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectNothingLockedDeleted(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('5. deletes no pending backup within its grace period', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectNothingPendingInGraceDeleted(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('6. deletes nothing when no backup is verified', () => {
    const nothingVerifiedArb = catalogArb.map((catalog) => ({
      ...catalog,
      candidates: catalog.candidates.map((backup) => (backup.verification === 'verified' ? { ...backup, verification: 'failed' as const } : backup)),
    }));
    fc.assert(
      fc.property(nothingVerifiedArb, (catalog) => {
        const decisions = plan(catalog);
        expectNothingDeletedWithoutAVerifiedBackup(catalog, decisions);
        expect(decisions.every((decision) => decision.action === 'keep')).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('7. deletes nothing newer than the newest verified backup', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectNothingNewerThanNewestVerifiedDeleted(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('8. is idempotent: planning again over only what it kept (same policy, same now) deletes nothing', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectIdempotent(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('9. never counts failed or unverifiable backups toward the floor: the minVerified newest verified are kept even when non-verified ones are newest', () => {
    fc.assert(
      fc.property(failedOnTopArb, (catalog) => {
        const decisions = plan(catalog);
        expectNewestVerifiedUpToFloorKept(catalog, decisions);
        expectVerifiedFloorKept(catalog, decisions);
      }),
      { numRuns: RUNS },
    );
  });

  it('10. sets a tier only on kept backups, and it is the longest-lived slot kind among its reasons (yearly > monthly > weekly > daily)', () => {
    fc.assert(
      fc.property(catalogArb, (catalog) => expectTierIsLongestLivedSlot(catalog, plan(catalog))),
      { numRuns: RUNS },
    );
  });

  it('11. is monotone: raising daily, weekly, monthly, yearly or minVerified never deletes a backup that was kept', () => {
    fc.assert(
      fc.property(catalogArb, fc.constantFrom(...MONOTONE_FIELDS), fc.integer({ min: 1, max: 5 }), (catalog, field, increase) =>
        expectMonotoneIn(catalog, field, increase),
      ),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Named scenarios
// ---------------------------------------------------------------------------------------------

/**
 * A catalog in which some backups cannot be judged: future-dated (the task's clock ran ahead) or
 * with a manifest retention cannot read. `marked` are their ids.
 */
const withUnjudgeableArb: fc.Arbitrary<Catalog & { marked: Set<string> }> = catalogArb.chain((catalog) =>
  fc
    .array(fc.constantFrom<'none' | 'future-dated' | 'unreadable'>('none', 'none', 'future-dated', 'unreadable'), {
      minLength: catalog.candidates.length,
      maxLength: catalog.candidates.length,
    })
    .map((marks) => {
      const marked = new Set<string>();
      const candidates = catalog.candidates.map((candidate, index) => {
        const mark = marks[index];
        if (mark === 'none' || mark === undefined) return candidate;
        marked.add(candidate.backupId);
        return mark === 'future-dated' ? { ...candidate, futureDatedByMs: YEAR } : { ...candidate, unreadable: 'is not valid JSON' };
      });
      return { ...catalog, candidates, marked };
    }),
);

describe('planRetention with backups it cannot judge (property-based)', () => {
  it('12. never deletes a future-dated backup, one whose manifest it cannot read, or one written by a newer pgkeep', () => {
    fc.assert(
      fc.property(withUnjudgeableArb, (catalog) => {
        const deleted = plan(catalog).filter((decision) => decision.action === 'delete');
        const byId = new Map(catalog.candidates.map((candidate) => [candidate.backupId, candidate]));

        expect(deleted.filter((decision) => catalog.marked.has(decision.backupId) || byId.get(decision.backupId)?.verification === 'newer-schema')).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('13. decides every other backup exactly as if those were not there: they take no slot, no floor, and push nothing out', () => {
    fc.assert(
      fc.property(withUnjudgeableArb, (catalog) => {
        const withThem = plan(catalog).filter((decision) => !catalog.marked.has(decision.backupId));
        const withoutThem = plan({ ...catalog, candidates: catalog.candidates.filter((candidate) => !catalog.marked.has(candidate.backupId)) });

        expect(withThem).toEqual(withoutThem);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('planRetention scenarios', () => {
  it('keeps a verified backup whose task clock ran a year ahead, but gives the floor and the daily slots to the real backups before it', () => {
    // Arrange: verified dailies on Nov 27–30; a verified backup claiming 2027-11-30 (stored on Dec 1).
    const candidates = [27, 28, 29, 30].map((day) => verifiedBackup(`nov-${day}`, `2026-11-${day}T03:00:00Z`));
    candidates.push({ ...verifiedBackup('from-2027', '2027-11-30T03:00:00Z'), futureDatedByMs: YEAR });
    const policy = policyWith({ daily: 2, weekly: 0, monthly: 0, yearly: 0, minVerified: 1 });

    // Act
    const decisions = planRetention(candidates, policy, new Date('2026-12-01T12:00:00Z'));

    // Assert
    const byId = new Map(decisions.map((decision) => [decision.backupId, decision]));
    expect(byId.get('from-2027')).toMatchObject({
      action: 'keep',
      tier: undefined,
      reasons: [expect.stringMatching(/^future-dated: it claims to have started 365 days after S3 stored it/)],
    });
    expect(byId.get('nov-30')?.reasons).toEqual(['daily 2026-11-30', 'newest verified backup']);
    expect(byId.get('nov-29')?.reasons).toEqual(['daily 2026-11-29']);
    expect(decisions.filter((decision) => decision.action === 'delete').map((decision) => decision.backupId)).toEqual(['nov-28', 'nov-27']);
  });

  it('keeps a backup written by a newer pgkeep and one whose manifest it cannot read, saying why, and counts neither as good', () => {
    // Arrange: the two newest cannot be judged; nov-28 is the newest verified one.
    const candidates = [
      verifiedBackup('nov-27', '2026-11-27T03:00:00Z'),
      verifiedBackup('nov-28', '2026-11-28T03:00:00Z'),
      { ...verifiedBackup('nov-29', '2026-11-29T03:00:00Z'), unreadable: 'backups/x.manifest.json is not valid JSON (Unexpected end of JSON input)' },
      verifiedBackup('nov-30', '2026-11-30T03:00:00Z', 'newer-schema'),
    ];
    const policy = policyWith({ daily: 1, weekly: 0, monthly: 0, yearly: 0, minVerified: 1 });

    // Act
    const decisions = planRetention(candidates, policy, new Date('2026-12-01T12:00:00Z'));

    // Assert
    const byId = new Map(decisions.map((decision) => [decision.backupId, decision]));
    expect(byId.get('nov-29')?.reasons).toEqual([
      'its manifest cannot be read (backups/x.manifest.json is not valid JSON (Unexpected end of JSON input)); retention never deletes what it cannot read',
      'newer than the newest verified backup (nov-28)',
    ]);
    expect(byId.get('nov-30')?.reasons).toEqual([
      'written by a newer pgkeep (verification "newer-schema"): this version cannot judge it, so it never deletes it',
      'newer than the newest verified backup (nov-28)',
    ]);
    expect(byId.get('nov-28')?.reasons).toEqual(['daily 2026-11-28', 'newest verified backup']);
    expect(byId.get('nov-27')?.action).toBe('delete');
  });

  it('keeps the last 7 days that HAVE a backup when backups stopped 60 days ago (borg/restic semantics, not the last 7 calendar days)', () => {
    // Arrange: one verified backup a day at 02:00 UTC, 90 days of them, the last on 2026-04-16 (a Thursday).
    const lastBackup = Date.parse('2026-04-16T02:00:00Z');
    const now = new Date(lastBackup + 60 * DAY);
    const candidates = Array.from({ length: 90 }, (_, daysBack) => verifiedBackup(`day-${daysBack}`, lastBackup - daysBack * DAY));
    const policy = policyWith({ daily: 7, weekly: 4, monthly: 6, yearly: 0, minVerified: 3 });

    // Act
    const decisions = planRetention(candidates, policy, now);

    // Assert
    const keptDates = decisions.filter((decision) => decision.action === 'keep').map((decision) => decision.startedAt.toISOString().slice(0, 10));
    expect(keptDates).toEqual([
      // daily: the 7 newest days with a backup
      '2026-04-16',
      '2026-04-15',
      '2026-04-14',
      '2026-04-13',
      '2026-04-12',
      '2026-04-11',
      '2026-04-10',
      '2026-04-05', // weekly 2026-W14 (W16 and W15 are already held by 04-16 and 04-12)
      '2026-03-31', // monthly 2026-03
      '2026-03-29', // weekly 2026-W13
      '2026-02-28', // monthly 2026-02
      '2026-01-31', // monthly 2026-01 (only four months have backups, fewer than the six allowed)
    ]);
    const byDate = new Map(decisions.map((decision) => [decision.startedAt.toISOString().slice(0, 10), decision]));
    for (const date of keptDates.slice(0, 7)) expect(byDate.get(date)?.reasons).toContain(`daily ${date}`);
    expect(byDate.get('2026-04-16')?.reasons).toContain('newest verified backup');
    expectNewestVerifiedUpToFloorKept({ candidates, policy, now }, decisions);
  });

  it('keeps the newest verified backup and its GFS slots when all recent backups failed verification', () => {
    // Arrange: one backup a day at 03:00 UTC, 2026-11-01 … 2026-11-30; the newest 10 failed, and
    // so did 11-05 and 11-17, which are older than the newest verified one (11-20).
    const failedDays = new Set([5, 17, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    const candidates = Array.from({ length: 30 }, (_, index) => {
      const day = index + 1;
      return verifiedBackup(
        `nov-${String(day).padStart(2, '0')}`,
        `2026-11-${String(day).padStart(2, '0')}T03:00:00Z`,
        failedDays.has(day) ? 'failed' : 'verified',
      );
    });
    const now = new Date('2026-12-01T12:00:00Z');
    const policy = policyWith({ daily: 7, weekly: 4, monthly: 6, yearly: 0, minVerified: 3, unverifiedGraceHours: 24 });

    // Act
    const decisions = planRetention(candidates, policy, now);

    // Assert
    const byId = new Map(decisions.map((decision) => [decision.backupId, decision]));
    const kept = decisions.filter((decision) => decision.action === 'keep').map((decision) => decision.backupId);
    expect(kept).toEqual([
      // failed, but newer than the newest verified backup
      'nov-30',
      'nov-29',
      'nov-28',
      'nov-27',
      'nov-26',
      'nov-25',
      'nov-24',
      'nov-23',
      'nov-22',
      'nov-21',
      // daily: the 7 newest days with a VERIFIED backup (11-17 failed, so 11-13 takes its place)
      'nov-20',
      'nov-19',
      'nov-18',
      'nov-16',
      'nov-15',
      'nov-14',
      'nov-13',
      'nov-08', // weekly 2026-W45
      'nov-01', // weekly 2026-W44
    ]);
    expect(byId.get('nov-20')?.reasons).toEqual(expect.arrayContaining(['daily 2026-11-20', 'weekly 2026-W47', 'monthly 2026-11', 'newest verified backup']));
    for (const day of [21, 25, 30]) expect(byId.get(`nov-${day}`)?.reasons).toEqual(['newer than the newest verified backup (nov-20)']);
    for (const failedOlder of ['nov-17', 'nov-05']) {
      expect(byId.get(failedOlder)).toMatchObject({
        action: 'delete',
        reasons: ['verification failed, and older than the newest verified backup'],
        tier: undefined,
      });
    }
  });

  it('keeps the minVerified newest verified backups as the floor, even when an older slot holder would make up the count', () => {
    // Arrange: two verified backups on 3 May (A newer than B) and one on 2 May (C). Found by
    // property 11: with one daily slot the floor kept B; with two, C's new slot was counted
    // toward the floor instead, and B — newer than C — was deleted.
    const candidates = [verifiedBackup('A', '2026-05-03T20:00:00Z'), verifiedBackup('B', '2026-05-03T08:00:00Z'), verifiedBackup('C', '2026-05-02T08:00:00Z')];
    const now = new Date('2026-05-04T00:00:00Z');
    const keptWith = (daily: number) => keptIdsOf(planRetention(candidates, policyWith({ daily, weekly: 0, monthly: 0, yearly: 0, minVerified: 2 }), now));

    // Act
    const keptWithOneDaily = keptWith(1);
    const keptWithTwoDailies = keptWith(2);

    // Assert
    expect([...keptWithOneDaily].sort()).toEqual(['A', 'B']);
    expect([...keptWithTwoDailies].sort()).toEqual(['A', 'B', 'C']);
  });

  describe('a DST change in Europe/Berlin: each local day is one daily period, weeks are ISO weeks in local time', () => {
    /** Berlin's UTC offset in 2026 at a local wall-clock time: CEST from 29 March 02:00 to 25 October 03:00 (02:00 the second time). */
    function berlinWallClock(localDateTime: string): Date {
      const offsetHours = localDateTime >= '2026-03-29T02:00' && localDateTime < '2026-10-25T02:00' ? 2 : 1;
      return new Date(Date.parse(`${localDateTime}:00Z`) - offsetHours * HOUR);
    }

    function localDates(first: string, count: number): string[] {
      return Array.from({ length: count }, (_, index) => new Date(Date.parse(`${first}T00:00:00Z`) + index * DAY).toISOString().slice(0, 10));
    }

    it.each([
      {
        change: 'spring forward (2026-03-29, a 23-hour day)',
        dates: localDates('2026-03-23', 14),
        weeks: { '2026-W13': '2026-03-29', '2026-W14': '2026-04-05' },
      },
      { change: 'fall back (2026-10-25, a 25-hour day)', dates: localDates('2026-10-19', 14), weeks: { '2026-W43': '2026-10-25', '2026-W44': '2026-11-01' } },
    ])('$change', ({ dates, weeks }) => {
      // Arrange: two backups every local day, Monday to Sunday twice, at 00:30 and 23:30 Berlin
      // time. Just after midnight is still the previous day in UTC, so a UTC calendar would put
      // the 00:30 backup into the wrong day and, on Mondays, into the wrong ISO week.
      const candidates = dates.flatMap((date) => [
        verifiedBackup(`${date} 00:30`, berlinWallClock(`${date}T00:30`)),
        verifiedBackup(`${date} 23:30`, berlinWallClock(`${date}T23:30`)),
      ]);
      const policy = policyWith({ daily: 30, weekly: 10, monthly: 0, yearly: 0, timezone: 'Europe/Berlin', minVerified: 1 });
      const lastBackup = candidates.at(-1)?.startedAt.getTime() ?? 0;

      // Act
      const decisions = planRetention(candidates, policy, new Date(lastBackup + HOUR));

      // Assert: one daily slot per local date, held by that date's 23:30 backup; none for 00:30.
      const byId = new Map(decisions.map((decision) => [decision.backupId, decision]));
      const dailyHolders = decisions.flatMap((decision) =>
        decision.reasons.filter((reason) => reason.startsWith('daily ')).map((reason) => `${reason} ← ${decision.backupId}`),
      );
      expect(dailyHolders).toEqual([...dates].reverse().map((date) => `daily ${date} ← ${date} 23:30`));
      const weeklyHolders = decisions.flatMap((decision) =>
        decision.reasons.filter((reason) => reason.startsWith('weekly ')).map((reason) => `${reason} ← ${decision.backupId}`),
      );
      expect(weeklyHolders).toEqual(
        Object.entries(weeks)
          .reverse()
          .map(([week, sunday]) => `weekly ${week} ← ${sunday} 23:30`),
      );
      for (const date of dates) expect(slotReasonsOf(byId.get(`${date} 00:30`)), `${date} 00:30`).toEqual([]);
    });
  });

  describe('a backup exactly at a bucket boundary belongs to the period that starts there', () => {
    it.each([
      {
        boundary: 'just before local midnight (Sunday)',
        zone: 'Europe/Berlin',
        instant: '2026-11-22T22:59:59.999Z',
        slots: ['daily 2026-11-22', 'weekly 2026-W47', 'monthly 2026-11', 'yearly 2026'],
      },
      {
        boundary: 'local midnight, Monday 00:00: a new day and ISO week',
        zone: 'Europe/Berlin',
        instant: '2026-11-22T23:00:00.000Z',
        slots: ['daily 2026-11-23', 'weekly 2026-W48', 'monthly 2026-11', 'yearly 2026'],
      },
      {
        boundary: 'just before New Year (local)',
        zone: 'Europe/Berlin',
        instant: '2026-12-31T22:59:59.999Z',
        slots: ['daily 2026-12-31', 'weekly 2026-W53', 'monthly 2026-12', 'yearly 2026'],
      },
      // 1 January 2027 is a Friday, so the ISO week still belongs to 2026 while the calendar year does not.
      {
        boundary: 'New Year 00:00 (local)',
        zone: 'Europe/Berlin',
        instant: '2026-12-31T23:00:00.000Z',
        slots: ['daily 2027-01-01', 'weekly 2026-W53', 'monthly 2027-01', 'yearly 2027'],
      },
      {
        boundary: 'local midnight, Monday 00:00, at +05:45',
        zone: 'Asia/Kathmandu',
        instant: '2026-11-22T18:15:00.000Z',
        slots: ['daily 2026-11-23', 'weekly 2026-W48', 'monthly 2026-11', 'yearly 2026'],
      },
      {
        boundary: 'just before local midnight at +05:45',
        zone: 'Asia/Kathmandu',
        instant: '2026-11-22T18:14:59.999Z',
        slots: ['daily 2026-11-22', 'weekly 2026-W47', 'monthly 2026-11', 'yearly 2026'],
      },
    ])('$boundary in $zone ($instant)', ({ zone, instant, slots }) => {
      // Arrange: a lone verified backup, with one slot of every kind, so its reasons name its periods.
      const backup = verifiedBackup('boundary', instant);
      const policy = policyWith({ daily: 1, weekly: 1, monthly: 1, yearly: 1, timezone: zone, minVerified: 1 });

      // Act
      const [decision] = planRetention([backup], policy, new Date(Date.parse(instant) + DAY));

      // Assert
      expect(slotReasonsOf(decision)).toEqual(slots);
      expect(decision?.tier).toBe('yearly');
    });
  });

  it('handles 5,000 backups across 10 years in one call, keeping about daily+weekly+monthly+yearly, with every invariant intact', () => {
    // Arrange: three backups a day for the first 1,000 days, then one every ~1.15 days with a
    // 30-day outage after every 200; every 17th failed, every 29th could not be verified, the
    // last three are still pending.
    const start = Date.parse('2016-01-01T01:00:00Z');
    const startTimes = [
      ...Array.from({ length: 3000 }, (_, index) => start + index * 8 * HOUR),
      ...Array.from(
        { length: 2000 },
        (_, index) => start + (1000 + Math.floor(index * 1.15) + 30 * Math.floor(index / 200)) * DAY + (index % 24) * HOUR + 17 * 60_000,
      ),
    ];
    const candidates = startTimes.map((startedAt, index): RetentionCandidate => {
      const verification: RetentionVerification =
        index >= startTimes.length - 3 ? 'pending' : index % 17 === 5 ? 'failed' : index % 29 === 3 ? 'unverifiable' : 'verified';
      return verifiedBackup(backupIdFor(index), startedAt, verification);
    });
    const lastStart = startTimes.at(-1) ?? start;
    const catalog: Catalog = {
      candidates,
      policy: policyWith({ daily: 14, weekly: 8, monthly: 24, yearly: 10, timezone: 'Europe/Berlin', minVerified: 3, unverifiedGraceHours: 24 }),
      now: new Date(lastStart + 2 * HOUR),
    };
    expect(new Set(startTimes).size).toBe(5000);
    expect(new Date(lastStart).getUTCFullYear() - new Date(start).getUTCFullYear()).toBe(9); // ten calendar years, 2016 … 2025

    // Act
    const decisions = plan(catalog);

    // Assert: each slot kind is full, and what is kept is bounded by the slots plus the floor
    // plus the non-verified backups newer than the newest verified one.
    const { daily, weekly, monthly, yearly, minVerified } = catalog.policy;
    for (const tier of SLOT_TIERS) {
      const slots = decisions.flatMap((decision) => decision.reasons.filter((reason) => reason.startsWith(`${tier} `)));
      expect(new Set(slots).size, tier).toBe(catalog.policy[tier]);
      expect(slots.length, tier).toBe(catalog.policy[tier]);
    }
    const kept = keptIdsOf(decisions);
    const keptVerified = candidates.filter((backup) => backup.verification === 'verified' && kept.has(backup.backupId)).length;
    expect(keptVerified).toBeGreaterThanOrEqual(Math.max(daily, weekly, monthly, yearly));
    expect(keptVerified).toBeLessThanOrEqual(daily + weekly + monthly + yearly + minVerified);
    const newestVerifiedAt = verifiedNewestFirst(candidates)[0]?.startedAt.getTime() ?? 0;
    const newerThanNewestVerified = candidates.filter((backup) => backup.startedAt.getTime() > newestVerifiedAt).length;
    expect(kept.size).toBeLessThanOrEqual(daily + weekly + monthly + yearly + minVerified + newerThanNewestVerified);

    expectOneDecisionPerBackupWithReasons(catalog, decisions);
    expectNewestVerifiedKept(catalog, decisions);
    expectVerifiedFloorKept(catalog, decisions);
    expectNewestVerifiedUpToFloorKept(catalog, decisions);
    expectNothingLockedDeleted(catalog, decisions);
    expectNothingPendingInGraceDeleted(catalog, decisions);
    expectNothingNewerThanNewestVerifiedDeleted(catalog, decisions);
    expectIdempotent(catalog, decisions);
    expectTierIsLongestLivedSlot(catalog, decisions);
    for (const field of MONOTONE_FIELDS) expectMonotoneIn(catalog, field, 3);
  });
});

describe('isoWeekOf', () => {
  it.each([
    { date: '2020-12-31', week: '2020-W53' }, // Thursday of a 53-week year
    { date: '2021-01-03', week: '2020-W53' }, // Sunday: January, but still last year's week 53
    { date: '2026-12-28', week: '2026-W53' }, // Monday of 2026's week 53
    { date: '2027-01-01', week: '2026-W53' }, // Friday: the new calendar year, the old ISO year
    { date: '2024-12-30', week: '2025-W01' }, // Monday: December, but already next year's week 1
  ])('$date is in $week', ({ date, week }) => {
    // Arrange
    const [year, month, day] = date.split('-').map(Number) as [number, number, number];

    // Act
    const { isoYear, isoWeek } = isoWeekOf(year, month, day);

    // Assert
    expect(`${isoYear}-W${String(isoWeek).padStart(2, '0')}`).toBe(week);
  });
});

describe('validatePolicy', () => {
  const valid = policyWith({});

  it('accepts a sensible policy', () => {
    expect(() => validatePolicy(valid)).not.toThrow();
  });

  it.each([
    { field: 'daily', policy: { ...valid, daily: -1 }, message: /retention\.daily must be a whole number ≥ 0 \(got -1\)/ },
    { field: 'weekly', policy: { ...valid, weekly: -1 }, message: /retention\.weekly must be a whole number ≥ 0/ },
    { field: 'monthly', policy: { ...valid, monthly: -3 }, message: /retention\.monthly must be a whole number ≥ 0/ },
    { field: 'yearly', policy: { ...valid, yearly: -1 }, message: /retention\.yearly must be a whole number ≥ 0/ },
    { field: 'unverifiedGraceHours', policy: { ...valid, unverifiedGraceHours: -24 }, message: /retention\.unverifiedGraceHours must be a whole number ≥ 0/ },
    { field: 'minVerified', policy: { ...valid, minVerified: 0 }, message: /retention\.minVerified must be at least 1/ },
    { field: 'timezone', policy: { ...valid, timezone: 'Europe/Atlantis' }, message: /retention\.timezone "Europe\/Atlantis" is not an IANA time zone/ },
  ])('rejects a bad $field with a message naming it', ({ policy, message }) => {
    expect(() => validatePolicy(policy)).toThrow(RangeError);
    expect(() => validatePolicy(policy)).toThrow(message);
  });

  it('is applied by planRetention before deciding anything', () => {
    expect(() => planRetention([verifiedBackup('only', '2026-01-01T00:00:00Z')], { ...valid, minVerified: 0 }, new Date('2026-02-01T00:00:00Z'))).toThrow(
      /retention\.minVerified/,
    );
  });
});
