import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../support/seeded-random.ts';
import {
  BACKUP_ROOT_PREFIX,
  CatalogKeyError,
  DATA_OBJECT_SUFFIX,
  MANIFEST_SUFFIX,
  backupIdTime,
  backupObjectKeys,
  databasePrefix,
  decodeDatabaseSegment,
  encodeDatabaseSegment,
  isBackupId,
  newBackupId,
  parseBackupKey,
} from '../../catalog/keys.ts';

const SAFE_SEGMENT = /^[A-Za-z0-9_%-]+$/;

const HOSTILE_DATABASE_NAMES: readonly string[] = [
  'my shop',
  'a/b',
  '/',
  '..',
  '.',
  '../../etc',
  '%',
  '%2F',
  '100%',
  `it's "quoted"`,
  'back\\slash',
  'emoji 🐘🚀',
  '日本語のデータベース',
  'e\u0301cole', // e + combining acute accent, not the precomposed é
  'école', // precomposed, must not collide with the line above
  'שלום עולם', // right-to-left text
  '\u202Eevil\u202C', // explicit RTL override characters
  '日'.repeat(21), // 63 bytes of UTF-8: PostgreSQL's longest name
  'x'.repeat(63),
  ' leading',
  'trailing ',
  '   ',
  '20261123T183254.123Z-3f9a2c', // looks like a backup id
  '20261123T183254.123Z-3f9a2c.dump.zst',
  'backups',
  'tab\there',
  'new\nline',
  'plus+and=equals?query#hash&amp',
  '~tilde',
];

/** Random names mixing ASCII, BMP and astral code points; never NUL and never a lone surrogate. */
function randomDatabaseNames(count: number, seed: number): string[] {
  const random = mulberry32(seed);
  const between = (low: number, high: number): number => low + Math.floor(random() * (high - low + 1));
  const randomCodePoint = (): number => {
    const pick = random();
    if (pick < 0.5) return between(0x01, 0x7f);
    if (pick < 0.85) {
      const codePoint = between(0x80, 0xffff);
      return codePoint >= 0xd800 && codePoint <= 0xdfff ? codePoint + 0x800 : codePoint;
    }
    return between(0x10000, 0x10ffff);
  };
  const names: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const length = between(1, 24);
    let name = '';
    for (let position = 0; position < length; position += 1) name += String.fromCodePoint(randomCodePoint());
    names.push(name);
  }
  return names;
}

const RANDOM_DATABASE_NAMES = randomDatabaseNames(400, 20_261_123);

describe('database segments', () => {
  it.each(HOSTILE_DATABASE_NAMES.map((name) => [JSON.stringify(name), name]))(
    'encode %s as one safe path component that decodes back exactly',
    (_label, name) => {
      const segment = encodeDatabaseSegment(name);

      expect(segment).toMatch(SAFE_SEGMENT);
      expect(segment).not.toContain('/');
      expect(segment).not.toBe('.');
      expect(segment).not.toBe('..');
      expect(decodeDatabaseSegment(segment)).toBe(name);
    },
  );

  it('round-trip 400 seeded random names of ASCII, BMP and astral characters', () => {
    const failures = RANDOM_DATABASE_NAMES.filter((name) => {
      const segment = encodeDatabaseSegment(name);
      return !SAFE_SEGMENT.test(segment) || decodeDatabaseSegment(segment) !== name;
    });

    expect(RANDOM_DATABASE_NAMES.some((name) => [...name].some((character) => (character.codePointAt(0) ?? 0) > 0xffff))).toBe(true);
    expect(failures).toEqual([]);
  });

  it('keep letters, digits, underscore and hyphen verbatim and percent-encode everything else as uppercase UTF-8 hex', () => {
    expect(encodeDatabaseSegment('Shop_2-eu')).toBe('Shop_2-eu');
    expect(encodeDatabaseSegment('a/b')).toBe('a%2Fb');
    expect(encodeDatabaseSegment('.')).toBe('%2E');
    expect(encodeDatabaseSegment('%2F')).toBe('%252F');
    expect(encodeDatabaseSegment('é')).toBe('%C3%A9');
    expect(encodeDatabaseSegment('🐘')).toBe('%F0%9F%90%98');
  });

  it('never give two distinct names the same segment, and case matters', () => {
    const names = [...new Set([...HOSTILE_DATABASE_NAMES, ...RANDOM_DATABASE_NAMES, 'Shop', 'shop', 'SHOP', 'a', 'a/b', 'a%2Fb'])];

    const segments = names.map(encodeDatabaseSegment);

    expect(new Set(segments).size).toBe(names.length);
    expect(encodeDatabaseSegment('Shop')).not.toBe(encodeDatabaseSegment('shop'));
  });

  it('put each database under its own prefix, so one name being a prefix of another cannot mix their backups', () => {
    expect(databasePrefix('shop')).toBe('backups/shop/');
    expect(databasePrefix('shop2').startsWith(databasePrefix('shop'))).toBe(false);
    expect(databasePrefix('a/b').startsWith(databasePrefix('a'))).toBe(false);
  });

  it('reject an empty name, saying what to give instead', () => {
    expect(() => encodeDatabaseSegment('')).toThrow(CatalogKeyError);
    expect(() => encodeDatabaseSegment('')).toThrow(/database name is empty/);
  });

  it('reject a name containing NUL, saying PostgreSQL does not allow it', () => {
    expect(() => encodeDatabaseSegment('shop\u0000evil')).toThrow(CatalogKeyError);
    expect(() => encodeDatabaseSegment('shop\u0000evil')).toThrow(/NUL character/);
  });

  it('reject a name with an unpaired surrogate, which has no UTF-8 form and would collide with U+FFFD', () => {
    expect(encodeDatabaseSegment('\uFFFD')).toBe('%EF%BF%BD');
    expect(() => encodeDatabaseSegment('bad\uD800')).toThrow(/unpaired UTF-16 surrogate/);
    expect(() => encodeDatabaseSegment('\uDC00bad')).toThrow(CatalogKeyError);
  });

  it.each([
    ['lowercase hex', '%2f'],
    ['an encoded verbatim character', '%41'],
    ['an encoded underscore', 'shop%5F1'],
    ['a truncated escape', 'shop%2'],
    ['a bare percent sign', '%'],
    ['a literal slash', 'a/b'],
    ['a literal dot', 'shop.eu'],
    ['a space', 'my shop'],
    ['an empty segment', ''],
    ['bytes that are not UTF-8', '%FF%FE'],
    ['an overlong UTF-8 encoding of "/"', '%C0%AF'],
  ])('refuse to decode a segment with %s (not written by pgkeep)', (_label, segment) => {
    expect(() => decodeDatabaseSegment(segment)).toThrow(CatalogKeyError);
    expect(() => decodeDatabaseSegment(segment)).toThrow(/segment/);
  });
});

describe('backup ids', () => {
  const startTimesInChronologicalOrder = [
    '1999-12-31T23:59:59.999Z',
    '2000-01-01T00:00:00.000Z',
    '2025-12-31T23:59:59.998Z',
    '2025-12-31T23:59:59.999Z',
    '2026-01-01T00:00:00.000Z',
    '2026-01-01T00:00:00.001Z',
    '2026-02-09T08:00:00.000Z',
    '2026-10-01T00:00:00.000Z',
    '2026-11-23T18:32:54.123Z',
    '2026-11-23T18:32:54.124Z',
  ].map((iso) => new Date(iso));

  it('have a fixed width whatever the date', () => {
    const widths = startTimesInChronologicalOrder.map((startedAt) => newBackupId(startedAt).length);

    expect(new Set(widths)).toEqual(new Set(['20261123T183254.123Z-3f9a2c'.length]));
  });

  it('sort lexicographically in the same order as their start times', () => {
    const ids = startTimesInChronologicalOrder.map((startedAt) => newBackupId(startedAt));
    const shuffled = [ids[4], ids[0], ids[9], ids[2], ids[7], ids[1], ids[8], ids[3], ids[6], ids[5]] as string[];

    const sorted = [...shuffled].sort();

    expect(sorted).toEqual(ids);
  });

  it('encode the start time to the millisecond, which backupIdTime reads back', () => {
    for (const startedAt of startTimesInChronologicalOrder) {
      expect(backupIdTime(newBackupId(startedAt)).toISOString()).toBe(startedAt.toISOString());
    }
  });

  it('have the documented shape, with the given suffix', () => {
    expect(newBackupId(new Date('2026-11-23T18:32:54.123Z'), '3f9a2c')).toBe('20261123T183254.123Z-3f9a2c');
  });

  it('get a random suffix, so two backups started in the same millisecond get distinct ids', () => {
    const startedAt = new Date('2026-11-23T18:32:54.123Z');

    const ids = new Set(Array.from({ length: 20 }, () => newBackupId(startedAt)));

    expect(ids.size).toBeGreaterThan(1);
    for (const id of ids) expect(isBackupId(id)).toBe(true);
  });

  it('reject a suffix that is not 6 lowercase hex digits', () => {
    expect(() => newBackupId(new Date(), 'ABCDEF')).toThrow(CatalogKeyError);
    expect(() => newBackupId(new Date(), 'abc')).toThrow(/6 lowercase hex digits/);
  });

  it.each([
    ['no suffix', '20261123T183254.123Z'],
    ['an uppercase suffix', '20261123T183254.123Z-3F9A2C'],
    ['no milliseconds', '20261123T183254Z-3f9a2c'],
    ['month 13', '20261323T183254.123Z-3f9a2c'],
    ['30 February', '20260230T183254.123Z-3f9a2c'],
    ['hour 24', '20260101T240000.000Z-3f9a2c'],
    ['second 60', '20261231T235960.000Z-3f9a2c'],
  ])('are not recognised with %s', (_label, candidate) => {
    expect(isBackupId(candidate)).toBe(false);
    expect(() => backupIdTime(candidate)).toThrow(CatalogKeyError);
  });
});

describe('backup object keys', () => {
  const backupId = newBackupId(new Date('2026-11-23T18:32:54.123Z'), '3f9a2c');

  it('give the data object and its manifest the same stem, differing only by suffix', () => {
    const { dataKey, manifestKey } = backupObjectKeys('my shop', backupId);

    expect(dataKey).toBe(`backups/my%20shop/${backupId}${DATA_OBJECT_SUFFIX}`);
    expect(manifestKey).toBe(`backups/my%20shop/${backupId}${MANIFEST_SUFFIX}`);
    expect(dataKey.slice(0, -DATA_OBJECT_SUFFIX.length)).toBe(manifestKey.slice(0, -MANIFEST_SUFFIX.length));
  });

  it('refuse a backup id pgkeep did not make', () => {
    expect(() => backupObjectKeys('shop', 'latest')).toThrow(CatalogKeyError);
  });

  it.each(HOSTILE_DATABASE_NAMES.map((name) => [JSON.stringify(name), name]))('parse back to database, id and kind for %s', (_label, database) => {
    const { dataKey, manifestKey } = backupObjectKeys(database, backupId);

    expect(parseBackupKey(dataKey)).toEqual({ database, backupId, kind: 'data' });
    expect(parseBackupKey(manifestKey)).toEqual({ database, backupId, kind: 'manifest' });
  });

  it.each([
    ['another prefix', `restore-drills/shop/${backupId}${DATA_OBJECT_SUFFIX}`],
    ['no prefix', `shop/${backupId}${DATA_OBJECT_SUFFIX}`],
    ['a nested path', `backups/shop/extra/${backupId}${DATA_OBJECT_SUFFIX}`],
    ['an empty database segment', `backups//${backupId}${DATA_OBJECT_SUFFIX}`],
    ['no file name', 'backups/shop/'],
    ['the root prefix only', BACKUP_ROOT_PREFIX],
    ['a bad backup id', `backups/shop/latest${DATA_OBJECT_SUFFIX}`],
    ['an impossible date in the id', `backups/shop/20261323T183254.123Z-3f9a2c${DATA_OBJECT_SUFFIX}`],
    ['an unknown suffix', `backups/shop/${backupId}.dump.gz`],
    ['a temporary-file suffix', `backups/shop/${backupId}${MANIFEST_SUFFIX}.tmp`],
    ['an undecodable database segment', `backups/shop.eu/${backupId}${DATA_OBJECT_SUFFIX}`],
    ['a non-canonical database segment', `backups/%73hop/${backupId}${DATA_OBJECT_SUFFIX}`],
    ['a database segment that is not UTF-8', `backups/%FF/${backupId}${DATA_OBJECT_SUFFIX}`],
  ])('are not parsed from a key with %s', (_label, key) => {
    expect(parseBackupKey(key)).toBeUndefined();
  });
});
