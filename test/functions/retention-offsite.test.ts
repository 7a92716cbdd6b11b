/**
 * Rule 8 of the retention planner (catalog/retention-policy.ts): with a vault that must hold a copy
 * first, a backup is deleted only once its replica is verified off-site. Fixed calendars, the
 * expected plans written out by hand.
 */
import { describe, expect, it } from 'vitest';
import { planRetention, type OffsiteCopy, type RetentionCandidate, type RetentionPolicy } from '../../catalog/retention-policy.ts';

const DAY = 86_400_000;
/** Day 1 is 2026-03-01; one verified backup a day at 02:00 UTC. */
const FIRST = Date.parse('2026-03-01T02:00:00.000Z');
const DAILIES_ONLY: RetentionPolicy = { daily: 7, weekly: 0, monthly: 0, yearly: 0, timezone: 'UTC', minVerified: 1, unverifiedGraceHours: 24 };

function day(n: number): RetentionCandidate {
  return { backupId: `day-${String(n).padStart(2, '0')}`, startedAt: new Date(FIRST + (n - 1) * DAY), verification: 'verified', bytes: 1 };
}

/** Days 1…count, each with the off-site copy `offsiteOf(day)` gives (undefined: no vault rule). */
function catalog(count: number, offsiteOf: (n: number) => OffsiteCopy | undefined): RetentionCandidate[] {
  return Array.from({ length: count }, (_, index) => {
    const offsite = offsiteOf(index + 1);
    return { ...day(index + 1), ...(offsite ? { offsite } : {}) };
  });
}

function deletedIds(candidates: RetentionCandidate[], now: Date): string[] {
  return planRetention(candidates, DAILIES_ONLY, now)
    .filter((decision) => decision.action === 'delete')
    .map((decision) => decision.backupId)
    .sort();
}

const NOW_AFTER_12_DAYS = new Date(FIRST + 11 * DAY + 10 * 3_600_000);

describe('planRetention with off-site copies required (rule 8)', () => {
  it('deletes as GFS alone would when every off-site copy is verified', () => {
    // Arrange: 12 days, daily 7 keeps days 6–12.
    const candidates = catalog(12, () => ({ state: 'verified' }));

    // Act
    const deleted = deletedIds(candidates, NOW_AFTER_12_DAYS);

    // Assert
    expect(deleted).toEqual(['day-01', 'day-02', 'day-03', 'day-04', 'day-05']);
  });

  it('deletes nothing past the start of a replication outage longer than the daily window', () => {
    // Arrange: replicas verified for days 1–3, then 9 days without a verified replica.
    const candidates = catalog(12, (n) => (n <= 3 ? { state: 'verified' } : { state: 'not-verified', detail: 'no replica in the vault yet' }));

    // Act
    const decisions = planRetention(candidates, DAILIES_ONLY, NOW_AFTER_12_DAYS);

    // Assert: only days 1–3 go; days 4 and 5, outside the dailies, wait for the vault.
    expect(
      decisions
        .filter((decision) => decision.action === 'delete')
        .map((decision) => decision.backupId)
        .sort(),
    ).toEqual(['day-01', 'day-02', 'day-03']);
    const held = decisions.filter((decision) => decision.awaitingOffsite);
    expect(held.map((decision) => decision.backupId).sort()).toEqual(['day-04', 'day-05']);
    expect(held[0]?.reasons).toEqual([
      "kept: its off-site copy in the vault is not verified yet (no replica in the vault yet); deleted once the vault's verifier has verified it",
    ]);
    // Days 6–12 keep their GFS reasons only: rule 8 names what it alone keeps.
    expect(decisions.filter((decision) => decision.action === 'keep' && !decision.awaitingOffsite)).toHaveLength(7);
  });

  it('resumes normal GFS once the replicas made during the outage are verified', () => {
    // Arrange: the outage is over and the vault's verifier has caught up.
    const candidates = catalog(12, () => ({ state: 'verified' }));

    // Act
    const decisions = planRetention(candidates, DAILIES_ONLY, NOW_AFTER_12_DAYS);

    // Assert
    expect(decisions.filter((decision) => decision.awaitingOffsite)).toEqual([]);
    expect(deletedIds(candidates, NOW_AFTER_12_DAYS)).toEqual(['day-01', 'day-02', 'day-03', 'day-04', 'day-05']);
  });

  it("never deletes a backup whose off-site copy is 'unknown' (the vault could not be read)", () => {
    // Arrange
    const candidates = catalog(12, () => ({ state: 'unknown', detail: 'AccessDenied: Access Denied' }));

    // Act
    const decisions = planRetention(candidates, DAILIES_ONLY, NOW_AFTER_12_DAYS);

    // Assert
    expect(decisions.filter((decision) => decision.action === 'delete')).toEqual([]);
    expect(decisions.find((decision) => decision.backupId === 'day-01')?.reasons).toEqual([
      'kept: its off-site copy in the vault is not verified yet (the vault could not be read: AccessDenied: Access Denied); retention never deletes a backup whose off-site copy it cannot confirm',
    ]);
  });

  it('keeps a failed backup whose replica is not verified, but lets it fill no slot and no floor', () => {
    // Arrange: day 8 failed verification in the primary and its replica is tagged failed too.
    const candidates = catalog(12, (n) => (n === 8 ? { state: 'not-verified', detail: 'its replica is tagged failed' } : { state: 'verified' }));
    candidates[7] = { ...candidates[7]!, verification: 'failed' };

    // Act
    const decisions = planRetention(candidates, DAILIES_ONLY, NOW_AFTER_12_DAYS);

    // Assert: day 8 is held by rule 8 alone; the dailies skip it and reach back to day 5.
    expect(decisions.find((decision) => decision.backupId === 'day-08')).toMatchObject({ action: 'keep', awaitingOffsite: true, tier: undefined });
    expect(deletedIds(candidates, NOW_AFTER_12_DAYS)).toEqual(['day-01', 'day-02', 'day-03', 'day-04']);
  });

  it('plans exactly as before when off-site copies are not required (no offsite on any candidate)', () => {
    // Arrange
    const candidates = catalog(12, () => undefined);

    // Act
    const decisions = planRetention(candidates, DAILIES_ONLY, NOW_AFTER_12_DAYS);

    // Assert
    expect(decisions.some((decision) => decision.awaitingOffsite)).toBe(false);
    expect(deletedIds(candidates, NOW_AFTER_12_DAYS)).toEqual(['day-01', 'day-02', 'day-03', 'day-04', 'day-05']);
  });
});
