/**
 * How the restore tells what went wrong, as pure functions: which remedy each pg_restore message
 * gets, what the drill says instead where its throwaway cluster is the target, and how a restored
 * table's count is held against the manifest. The messages are pg_restore 15's own, copied from
 * real runs (restore.integration.test.ts and drill.integration.test.ts provoke the common ones
 * against real servers; these are the ones that are costly to provoke there: a full disk on the
 * target server and a damaged archive whose checksum still matches).
 */
import { describe, expect, it } from 'vitest';
import { drillRemedy } from '../../task/drill.ts';
import { compareCount, ESTIMATE_TOLERANCE, explainPgRestoreError, type PgRestoreContext } from '../../task/restore.ts';

const CONTEXT: PgRestoreContext = {
  pgRestoreVersion: '15.18',
  noOwner: false,
  targetUser: 'restorer',
  targetDatabase: 'shop_20261123_020000',
  createdTarget: true,
};

describe('a pg_restore failure is explained by its own message', () => {
  it('a full disk on the target server: give it room, not "fix the cause"', () => {
    const failure = explainPgRestoreError(
      'pg_restore: error: COPY failed for table "noise": ERROR:  could not extend file "base/16384/16390": No space left on device\nHINT:  Check free disk space.\n',
      CONTEXT,
    );

    expect(failure.reason).toBe('disk-full');
    expect(failure.message).toMatch(/^pg_restore 15\.18 failed: .*No space left on device/s);
    expect(failure.remedy).toContain('ran out of disk space');
  });

  it('in the drill, a full disk is its own ephemeral storage: raise drill.ephemeralStorageGiB', () => {
    const failure = explainPgRestoreError(
      'pg_restore: error: COPY failed for table "noise": ERROR:  could not extend file "base/16384/16390": No space left on device\n',
      { ...CONTEXT, noOwner: true },
    );

    expect(drillRemedy(failure)).toContain('drill.ephemeralStorageGiB');
  });

  it.each([
    ['a truncated archive', 'pg_restore: error: could not read from input file: end of file\n'],
    ['bytes that are no archive', 'pg_restore: error: input file does not appear to be a valid archive (too short?)\n'],
  ])('%s whose checksum matched: the backup was stored damaged, restore an earlier one', (_label, stderr) => {
    const failure = explainPgRestoreError(stderr, CONTEXT);

    expect(failure.reason).toBe('damaged-archive');
    expect(failure.remedy).toContain('restore an earlier backup');
  });

  it('a role missing although ownership is already skipped: create the role, never "set PGKEEP_RESTORE_NO_OWNER=true" again', () => {
    const failure = explainPgRestoreError(
      'pg_restore: error: could not execute query: ERROR:  role "reporting" does not exist\nCommand was: CREATE USER MAPPING FOR reporting SERVER warehouse;\n',
      { ...CONTEXT, noOwner: true },
    );

    expect(failure.reason).toBe('missing-role');
    expect(failure.subject).toBe('reporting');
    expect(failure.remedy).toContain('CREATE ROLE reporting');
    expect(failure.remedy).not.toContain('PGKEEP_RESTORE_NO_OWNER');
  });

  it("anything else: pg_restore's message, and the advice to act on it", () => {
    const failure = explainPgRestoreError('pg_restore: error: could not execute query: ERROR:  syntax error at or near "WITHOUT"\n', CONTEXT);

    expect(failure.reason).toBe('other');
    expect(failure.remedy).toContain("Read pg_restore's message");
  });
});

describe("a restored table's count against the manifest", () => {
  it('an exact count must match exactly', () => {
    expect(compareCount('public.orders', 10_000, { rows: 10_000, rowsSource: 'exact' })).toEqual({ kind: 'exact', mismatch: undefined });
    expect(compareCount('public.orders', 9_999, { rows: 10_000, rowsSource: 'exact' })).toEqual({
      kind: 'exact',
      mismatch: 'table public.orders has 9999 rows; the manifest says 10000',
    });
  });

  it(`a planner estimate is met within ±${ESTIMATE_TOLERANCE * 100} %, and a table with 2 % of its estimate is a difference`, () => {
    expect(compareCount('public.events', 75_000, { rows: 100_000, rowsSource: 'estimate' }).kind).toBe('estimate');
    expect(compareCount('public.events', 75_000, { rows: 100_000, rowsSource: 'estimate' })).toMatchObject({ mismatch: undefined });
    expect(compareCount('public.events', 125_000, { rows: 100_000, rowsSource: 'estimate' })).toMatchObject({ mismatch: undefined });
    expect(compareCount('public.events', 2_000, { rows: 100_000, rowsSource: 'estimate' })).toMatchObject({
      kind: 'estimate',
      mismatch: "table public.events has 2000 rows; the manifest's planner estimate (not an exact count) is 100000, more than 25 % away: rows may be missing",
    });
  });

  it('no estimate at all (never analyzed): not compared, with the restored count', () => {
    expect(compareCount('public.audit_log', 25, { rows: null, rowsSource: 'estimate' })).toEqual({
      kind: 'not-compared',
      note: 'public.audit_log: restored with 25 rows; the manifest has no count or estimate to compare with',
    });
  });
});
