import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseZstdInputBytes, pgDumpArguments, zstdArguments } from '../../task/dump-pipeline.ts';

describe('reading the uncompressed size from zstd -vv', () => {
  it.each([
    ['a large input', '/*stdin*\\            : 24.87%   (12345678 B => 3070000 B, /*stdout*\\) ', 12_345_678],
    ['a small input, right-aligned', '/*stdin*\\            :100.06%   ( 20000 B =>  20013 B, /*stdout*\\) ', 20_000],
    ['an empty input', '/*stdin*\\            :  0.00%   (     0 B =>     13 B, /*stdout*\\) ', 0],
  ])('reads the input byte count of %s', (_case, stderr, expected) => {
    expect(parseZstdInputBytes(`Decompression will require 2097152 B of memory\n${stderr}\n`)).toBe(expected);
  });

  it('reports nothing when zstd printed no summary', () => {
    expect(parseZstdInputBytes('zstd: error 11 : Allocation error : not enough memory\n')).toBeUndefined();
  });

  it("matches what this machine's zstd actually prints, for small and large inputs", () => {
    for (const size of [1, 20_000, 3_000_000]) {
      const stderr = execFileSync('sh', ['-c', `head -c ${size} /dev/zero | zstd ${zstdArguments(3, 0).join(' ')} 2>&1 >/dev/null`], { encoding: 'utf8' });
      expect(parseZstdInputBytes(stderr)).toBe(size);
    }
  });
});

describe('the pg_dump command line', () => {
  it('dumps uncompressed custom format from the exported snapshot and never prompts for a password', () => {
    const args = pgDumpArguments({ snapshotId: '00000003-00000007-1', lockWaitTimeoutSeconds: 600 });

    expect(args).toEqual(['--format=custom', '--compress=0', '--snapshot=00000003-00000007-1', '--lock-wait-timeout=600s', '--no-password']);
    expect(args.join(' ')).not.toMatch(/password=|PGPASSWORD/);
  });
});
