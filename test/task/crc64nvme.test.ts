import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { describe, expect, it } from 'vitest';
import { combineCrc64Nvme, crc64Nvme, crc64NvmeFromBase64, crc64NvmeToBase64 } from '../../task/crc64nvme.ts';
import { mulberry32, seededBytes as randomBytes } from '../support/seeded-random.ts';

/** The SDK's own implementation: the reference the fast one must agree with, byte for byte. */
async function sdkCrc64Nvme(bytes: Uint8Array): Promise<bigint> {
  const checksum = new Crc64Nvme();
  checksum.update(bytes);
  return Buffer.from(await checksum.digest()).readBigUInt64BE(0);
}

describe('crc64Nvme', () => {
  it('gives the standard check value for "123456789"', () => {
    expect(crc64Nvme(Buffer.from('123456789', 'ascii'))).toBe(0xae8b14860a799888n);
  });

  it('gives 0 for no bytes (initial value and final xor cancel out)', () => {
    expect(crc64Nvme(new Uint8Array(0))).toBe(0n);
  });

  it('agrees with the SDK for every length from 0 to 64 bytes (the 16-byte rounds and the byte-wise tail)', async () => {
    const bytes = randomBytes(mulberry32(16), 64);

    for (let length = 0; length <= 64; length += 1) {
      const slice = bytes.subarray(0, length);

      expect({ length, crc: crc64Nvme(slice) }).toEqual({ length, crc: await sdkCrc64Nvme(slice) });
    }
  });

  it('agrees with the SDK on views that start at odd offsets of their buffer', async () => {
    const bytes = randomBytes(mulberry32(17), 10_000);

    for (const offset of [1, 3, 7, 9, 15]) {
      const view = bytes.subarray(offset, offset + 4_099);

      expect({ offset, crc: crc64Nvme(view) }).toEqual({ offset, crc: await sdkCrc64Nvme(view) });
    }
  });

  it('agrees with the SDK on inputs larger than its working memory, split at and around the window size', async () => {
    // The kernel copies its input through a fixed window of WebAssembly memory (~288 KiB).
    const random = mulberry32(18);
    const bytes = randomBytes(random, 3 * 2 ** 20 + 5);
    const windowBytes = 5 * 65_536 - 16 * 256 * 8;
    const lengths = [
      windowBytes - 1,
      windowBytes,
      windowBytes + 1,
      2 * windowBytes + 15,
      bytes.length,
      ...Array.from({ length: 4 }, () => Math.floor(random() * bytes.length)),
    ];

    for (const length of lengths) {
      const slice = bytes.subarray(0, length);

      expect({ length, crc: crc64Nvme(slice) }).toEqual({ length, crc: await sdkCrc64Nvme(slice) });
    }
  });

  it('does not depend on earlier calls (no state survives between inputs)', () => {
    const first = randomBytes(mulberry32(19), 1_000_000);
    const second = Buffer.from('123456789', 'ascii');

    crc64Nvme(first);

    expect(crc64Nvme(second)).toBe(0xae8b14860a799888n);
  });
});

describe('combineCrc64Nvme', () => {
  const random = mulberry32(64);
  const whole = randomBytes(random, 70_000);

  it('gives the CRC of A||B from the CRCs of A and B and the length of B, for random splits', () => {
    const splits = [0, 1, 7, 8, 9, 4_096, 65_535, 69_999, 70_000, ...Array.from({ length: 12 }, () => Math.floor(random() * 70_001))];
    const expected = crc64Nvme(whole);

    for (const split of splits) {
      const first = whole.subarray(0, split);
      const second = whole.subarray(split);

      const combined = combineCrc64Nvme(crc64Nvme(first), crc64Nvme(second), second.length);

      expect({ split, crc: combined }).toEqual({ split, crc: expected });
    }
  });

  it('is the identity when B is empty and returns CRC(B) when A is empty', () => {
    const bytes = whole.subarray(0, 1_000);
    const crc = crc64Nvme(bytes);

    expect(combineCrc64Nvme(crc, 0n, 0)).toBe(crc);
    expect(combineCrc64Nvme(0n, crc, bytes.length)).toBe(crc);
  });

  it('folds a chain of 20 parts of random sizes (some empty) into the CRC of the whole', () => {
    const partLengths = Array.from({ length: 20 }, (_unused, index) => (index % 7 === 3 ? 0 : 1 + Math.floor(random() * 9_000)));
    const parts: Buffer[] = [];
    let offset = 0;
    for (const length of partLengths) {
      parts.push(whole.subarray(offset, offset + length));
      offset += length;
    }

    let folded = 0n;
    for (const part of parts) folded = combineCrc64Nvme(folded, crc64Nvme(part), part.length);

    expect(folded).toBe(crc64Nvme(Buffer.concat(parts)));
  });

  it('depends on the length of B (combining with the wrong length gives another CRC)', () => {
    const first = whole.subarray(0, 100);
    const second = whole.subarray(100, 200);

    const wrongLength = combineCrc64Nvme(crc64Nvme(first), crc64Nvme(second), 99);

    expect(wrongLength).not.toBe(crc64Nvme(whole.subarray(0, 200)));
  });
});

describe('the base64 form S3 uses', () => {
  it.each([0n, 1n, 0xae8b14860a799888n, 0xffffffffffffffffn])('round-trips %s', (crc) => {
    const encoded = crc64NvmeToBase64(crc);

    expect(encoded).toMatch(/^[A-Za-z0-9+/]{11}=$/);
    expect(crc64NvmeFromBase64(encoded)).toBe(crc);
  });

  it('is the 8 big-endian bytes', () => {
    expect(crc64NvmeToBase64(0xae8b14860a799888n)).toBe(Buffer.from('ae8b14860a799888', 'hex').toString('base64'));
  });

  it.each([
    ['4 bytes', 'AAAAAA=='],
    ['9 bytes', 'AAAAAAAAAAAA'],
    ['nothing', ''],
  ])('rejects base64 of %s', (_label, encoded) => {
    expect(() => crc64NvmeFromBase64(encoded)).toThrow(RangeError);
    expect(() => crc64NvmeFromBase64(encoded)).toThrow(/not a base64 CRC64NVME \(8 bytes\)/);
  });
});
