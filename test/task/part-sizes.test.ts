import { describe, expect, it } from 'vitest';
import {
  MAX_PARTS,
  MAX_PART_SIZE_BYTES,
  MIN_INITIAL_PART_SIZE_MIB,
  MIN_PART_SIZE_BYTES,
  PARTS_PER_SIZE_STEP,
  S3_MAX_OBJECT_BYTES,
  maxObjectBytes,
  partSizeFor,
} from '../../task/part-sizes.ts';

const MiB = 2 ** 20;
const DEFAULT_INITIAL_PART_SIZE_BYTES = 8 * MiB; // PGKEEP_PART_SIZE_MIB's default

function schedule(initialPartSizeBytes: number): number[] {
  return Array.from({ length: MAX_PARTS }, (_unused, index) => partSizeFor(index + 1, initialPartSizeBytes));
}

describe.each([
  ['the default 8 MiB', DEFAULT_INITIAL_PART_SIZE_BYTES],
  [`the minimum ${MIN_INITIAL_PART_SIZE_MIB} MiB`, MIN_INITIAL_PART_SIZE_MIB * MiB],
])('the part schedule starting at %s', (_label, initialPartSizeBytes) => {
  const sizes = schedule(initialPartSizeBytes);

  it("holds S3's largest object (5 TiB) within 10,000 parts", () => {
    const total = sizes.reduce((sum, size) => sum + size, 0);

    expect(total).toBeGreaterThanOrEqual(S3_MAX_OBJECT_BYTES);
    expect(maxObjectBytes(initialPartSizeBytes)).toBe(total);
  });

  it("keeps every part within S3's 5 MiB to 5 GiB", () => {
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(MIN_PART_SIZE_BYTES);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_PART_SIZE_BYTES);
  });

  it('never shrinks from one part to the next', () => {
    const shrinking = sizes.findIndex((size, index) => index > 0 && size < (sizes[index - 1] ?? 0));

    expect(shrinking).toBe(-1);
  });

  it('uses the first part size for the first 1,000 parts, so small backups need little memory', () => {
    expect(sizes.slice(0, PARTS_PER_SIZE_STEP).every((size) => size === initialPartSizeBytes)).toBe(true);
    expect(sizes[PARTS_PER_SIZE_STEP]).toBe(2 * initialPartSizeBytes);
  });
});

describe('partSizeFor', () => {
  it.each([0, MAX_PARTS + 1, 1.5, Number.NaN])('rejects part number %s, which S3 does not allow', (partNumber) => {
    expect(() => partSizeFor(partNumber, DEFAULT_INITIAL_PART_SIZE_BYTES)).toThrow(RangeError);
    expect(() => partSizeFor(partNumber, DEFAULT_INITIAL_PART_SIZE_BYTES)).toThrow(/outside S3's 1\.\.10000/);
  });

  it('accepts the last part number S3 allows', () => {
    expect(partSizeFor(MAX_PARTS, DEFAULT_INITIAL_PART_SIZE_BYTES)).toBe(512 * DEFAULT_INITIAL_PART_SIZE_BYTES);
  });

  it("rejects a first part below S3's 5 MiB minimum", () => {
    expect(() => partSizeFor(1, MIN_PART_SIZE_BYTES - 1)).toThrow(RangeError);
    expect(() => partSizeFor(1, MIN_PART_SIZE_BYTES - 1)).toThrow(/at least 5242880 bytes/);
  });

  it("caps a large first part's later parts at S3's 5 GiB maximum", () => {
    expect(partSizeFor(MAX_PARTS, 512 * MiB)).toBe(MAX_PART_SIZE_BYTES);
  });
});

describe('why the smallest first part is 6 MiB', () => {
  it('a 5 MiB first part, although S3 allows it, cannot reach 5 TiB in 10,000 parts', () => {
    expect(maxObjectBytes(5 * MiB)).toBeLessThan(S3_MAX_OBJECT_BYTES);
  });

  it('6 MiB is the smallest whole number of MiB that does', () => {
    expect(maxObjectBytes((MIN_INITIAL_PART_SIZE_MIB - 1) * MiB)).toBeLessThan(S3_MAX_OBJECT_BYTES);
    expect(maxObjectBytes(MIN_INITIAL_PART_SIZE_MIB * MiB)).toBeGreaterThanOrEqual(S3_MAX_OBJECT_BYTES);
  });
});
