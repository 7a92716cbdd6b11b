/**
 * Multipart part sizes for a stream of unknown length.
 *
 * S3 allows at most 10,000 parts of 5 MiB to 5 GiB each (the last may be smaller). A fixed part
 * size either wastes memory on small backups or caps the object size (8 MiB x 10,000 = 78 GiB,
 * the limit users of fixed-size uploaders hit). Here parts start small and double every
 * `PARTS_PER_SIZE_STEP` parts, so memory stays at a few parts of the current size while a single
 * object can still grow past S3's 5 TiB maximum object size within 10,000 parts.
 */
export const MIN_PART_SIZE_BYTES = 5 * 2 ** 20;
export const MAX_PART_SIZE_BYTES = 5 * 2 ** 30;
export const MAX_PARTS = 10_000;
export const S3_MAX_OBJECT_BYTES = 5 * 2 ** 40;
export const PARTS_PER_SIZE_STEP = 1_000;

/** Size of part `partNumber` (1-based) when the first part is `initialPartSizeBytes`. */
export function partSizeFor(partNumber: number, initialPartSizeBytes: number): number {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
    throw new RangeError(`Part number ${partNumber} is outside S3's 1..${MAX_PARTS}.`);
  }
  if (initialPartSizeBytes < MIN_PART_SIZE_BYTES) throw new RangeError(`The first part must be at least ${MIN_PART_SIZE_BYTES} bytes.`);
  const doublings = Math.floor((partNumber - 1) / PARTS_PER_SIZE_STEP);
  return Math.min(initialPartSizeBytes * 2 ** doublings, MAX_PART_SIZE_BYTES);
}

/** Largest object a schedule can hold in 10,000 parts. */
export function maxObjectBytes(initialPartSizeBytes: number): number {
  let total = 0;
  for (let partNumber = 1; partNumber <= MAX_PARTS; partNumber += 1) total += partSizeFor(partNumber, initialPartSizeBytes);
  return total;
}

/** The smallest first part (PGKEEP_PART_SIZE_MIB's lower bound): a setting, so it lives with the settings. */
export { MIN_INITIAL_PART_SIZE_MIB } from '../catalog/task-settings.ts';
