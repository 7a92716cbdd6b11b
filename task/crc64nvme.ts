import { Crc64Nvme } from '@aws-sdk/crc64-nvme';

/**
 * CRC64NVME as S3 computes it (reflected, polynomial 0xAD93D23594C93659, init and xorout all ones),
 * plus combination of two CRCs. The SDK's checksum package computes CRCs but cannot combine them;
 * combining lets the uploader CRC each byte once (per part) and still derive the full-object CRC
 * that S3 checks at CompleteMultipartUpload, instead of hashing every byte twice. The combination
 * is zlib's crc32_combine method (GF(2) polynomial arithmetic) widened to 64 bits; it runs once
 * per part, so BigInt's speed does not matter.
 */
const REFLECTED_POLYNOMIAL = 0x9a6c9329ac4bc9b5n;
const X_POWER_0 = 1n << 63n; // the polynomial "1" in reflected bit order

/** a(x) * b(x) mod P(x), both in reflected bit order. */
function multiplyModPolynomial(a: bigint, b: bigint): bigint {
  let mask = X_POWER_0;
  let product = 0n;
  let multiplicand = b;
  for (;;) {
    if (a & mask) {
      product ^= multiplicand;
      if ((a & (mask - 1n)) === 0n) break;
    }
    mask >>= 1n;
    multiplicand = multiplicand & 1n ? (multiplicand >> 1n) ^ REFLECTED_POLYNOMIAL : multiplicand >> 1n;
  }
  return product;
}

/** x^(2^k) mod P for k = 0..63. */
const X_POWER_2K: bigint[] = (() => {
  const table: bigint[] = [1n << 62n]; // x^1
  for (let k = 1; k < 64; k += 1) {
    const previous = table[k - 1] ?? 0n;
    table.push(multiplyModPolynomial(previous, previous));
  }
  return table;
})();

/** x^(8 * byteCount) mod P: the operator that appends byteCount zero bytes to a CRC's state. */
function zeroBytesOperator(byteCount: number): bigint {
  let power = X_POWER_0;
  let remaining = BigInt(byteCount);
  let k = 3; // 8 = 2^3 bits per byte
  while (remaining > 0n) {
    if (remaining & 1n) power = multiplyModPolynomial(X_POWER_2K[k % 64] ?? 0n, power);
    remaining >>= 1n;
    k += 1;
  }
  return power;
}

/** CRC of A||B from CRC(A), CRC(B) and the length of B. */
export function combineCrc64Nvme(crcOfFirst: bigint, crcOfSecond: bigint, secondLengthBytes: number): bigint {
  if (secondLengthBytes === 0) return crcOfFirst;
  return multiplyModPolynomial(zeroBytesOperator(secondLengthBytes), crcOfFirst) ^ crcOfSecond;
}

export async function crc64Nvme(bytes: Uint8Array): Promise<bigint> {
  const checksum = new Crc64Nvme();
  checksum.update(bytes);
  return Buffer.from(await checksum.digest()).readBigUInt64BE(0);
}

/** S3's representation: base64 of the 8 big-endian bytes. */
export function crc64NvmeToBase64(crc: bigint): string {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(crc);
  return bytes.toString('base64');
}

export function crc64NvmeFromBase64(encoded: string): bigint {
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length !== 8) throw new RangeError(`"${encoded}" is not a base64 CRC64NVME (8 bytes).`);
  return bytes.readBigUInt64BE(0);
}
