/**
 * CRC64NVME as S3 computes it (reflected, polynomial 0xAD93D23594C93659, init and xorout all ones):
 * computing it fast, and combining two CRCs.
 *
 * Combining: the SDK's checksum package computes CRCs but cannot combine them; combining lets the
 * uploader CRC each byte once (per part) and still derive the full-object CRC that S3 checks at
 * CompleteMultipartUpload, instead of hashing every byte twice. The combination is zlib's
 * crc32_combine method (GF(2) polynomial arithmetic) widened to 64 bits; it runs once per part, so
 * BigInt's speed does not matter.
 *
 * Computing: see crc64Nvme below for why this is not the SDK's implementation.
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

/**
 * CRC64NVME of the bytes, slicing-by-16 in WebAssembly, synchronously.
 *
 * Why not a library: the SDK's pure-JavaScript implementation (@aws-sdk/crc64-nvme) runs at
 * ~0.4 GB/s here and was the largest CPU cost of the backup task's own process; this runs at
 * ~2.0 GB/s (~4 ms per 8 MiB part). The SDK's native alternative (aws-crt's crc64nvme, through
 * @aws-sdk/crc64-nvme-crt) measured the same 2.0 GB/s on this machine for 44 MB of platform-specific
 * binaries. The WebAssembly module is assembled below from named instructions rather than shipped
 * as an opaque binary; test/task/crc64nvme.test.ts checks it against the SDK's implementation.
 */
export function crc64Nvme(bytes: Uint8Array): bigint {
  const { update, heap } = crc64NvmeKernel();
  let state = CRC64_ALL_ONES;
  for (let offset = 0; offset < bytes.length; offset += CRC_KERNEL_DATA_BYTES) {
    const piece = bytes.subarray(offset, offset + CRC_KERNEL_DATA_BYTES);
    heap.set(piece, CRC_KERNEL_DATA_OFFSET);
    state = update(state, CRC_KERNEL_DATA_OFFSET, piece.length);
  }
  return BigInt.asUintN(64, state ^ CRC64_ALL_ONES);
}

const CRC64_ALL_ONES = 0xffff_ffff_ffff_ffffn;
const CRC_TABLES = 16;
const CRC_TABLE_BYTES = 256 * 8;
const CRC_KERNEL_PAGES = 5;
const CRC_KERNEL_DATA_OFFSET = CRC_TABLES * CRC_TABLE_BYTES;
const CRC_KERNEL_DATA_BYTES = CRC_KERNEL_PAGES * 65_536 - CRC_KERNEL_DATA_OFFSET;

let kernel: { update: (crc: bigint, pointer: number, length: number) => bigint; heap: Uint8Array } | undefined;

/** The part of the WebAssembly API used here (the project's TypeScript libraries do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { update: (crc: bigint, pointer: number, length: number) => bigint; memory: { buffer: ArrayBuffer } } };
}

function crc64NvmeKernel(): NonNullable<typeof kernel> {
  if (kernel) return kernel;
  const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
  const { update, memory } = new wasm.Instance(new wasm.Module(assembleCrc64NvmeModule())).exports;
  // Table t maps a byte to its CRC contribution when 15 - t more bytes follow it in the block.
  const tables = new BigUint64Array(memory.buffer, 0, CRC_TABLES * 256);
  for (let byte = 0; byte < 256; byte += 1) {
    let crc = BigInt(byte);
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 1n ? (crc >> 1n) ^ REFLECTED_POLYNOMIAL : crc >> 1n;
    tables[byte] = crc;
  }
  for (let table = 1; table < CRC_TABLES; table += 1) {
    for (let byte = 0; byte < 256; byte += 1) {
      const previous = tables[(table - 1) * 256 + byte] ?? 0n;
      tables[table * 256 + byte] = (previous >> 8n) ^ (tables[Number(previous & 0xffn)] ?? 0n);
    }
  }
  kernel = { update, heap: new Uint8Array(memory.buffer) };
  return kernel;
}

/** update(crc: i64, pointer: i32, length: i32) -> i64 over the tables at address 0. */
function assembleCrc64NvmeModule(): Uint8Array {
  const unsignedLeb = (value: number): number[] => {
    const out: number[] = [];
    do {
      const low = value & 0x7f;
      value >>>= 7;
      out.push(value === 0 ? low : low | 0x80);
    } while (value !== 0);
    return out;
  };
  const signedLeb = (value: number): number[] => {
    const out: number[] = [];
    for (;;) {
      const low = value & 0x7f;
      value >>= 7;
      if ((value === 0 && (low & 0x40) === 0) || (value === -1 && (low & 0x40) !== 0)) return [...out, low];
      out.push(low | 0x80);
    }
  };
  // Laid out as the opcode table it is, not one entry a line.
  // prettier-ignore
  const op = {
    block: [0x02, 0x40], loop: [0x03, 0x40], end: [0x0b], br: 0x0c, brIf: 0x0d, localGet: 0x20, localSet: 0x21,
    i64Load: 0x29, i32Load8U: 0x2d, i32Const: 0x41, i64Const: 0x42, i32Eqz: 0x45, i32LtU: 0x49, i32Add: 0x6a,
    i32Sub: 0x6b, i32And: 0x71, i32Shl: 0x74, i32Xor: 0x73, i64Xor: 0x85, i64ShrU: 0x88, i32WrapI64: 0xa7,
  } as const;
  const [CRC, POINTER, LENGTH, SECOND_WORD] = [0, 1, 2, 3];
  const ALIGN_8 = 3;
  // tables[table][(word >> shift) & 0xff], as an i64 on the stack.
  // prettier-ignore
  const lookup = (word: number, table: number, shift: number): number[] => [
    op.localGet, word,
    ...(shift > 0 ? [op.i64Const, ...signedLeb(shift), op.i64ShrU] : []),
    op.i32WrapI64, op.i32Const, ...signedLeb(0xff), op.i32And, op.i32Const, 3, op.i32Shl,
    op.i64Load, ALIGN_8, ...unsignedLeb(table * CRC_TABLE_BYTES),
  ];
  // prettier-ignore
  const advance = (bytes: number): number[] => [
    op.localGet, POINTER, op.i32Const, bytes, op.i32Add, op.localSet, POINTER,
    op.localGet, LENGTH, op.i32Const, bytes, op.i32Sub, op.localSet, LENGTH,
  ];
  // One line per group of WebAssembly instructions, as the comments beside them describe.
  // prettier-ignore
  const body = [
    1, 1, 0x7e, // one extra local, an i64: SECOND_WORD
    // 16 bytes per round: crc ^= first 8 bytes; then each of the 16 bytes through its own table.
    ...op.block, ...op.loop,
    op.localGet, LENGTH, op.i32Const, 16, op.i32LtU, op.brIf, 1,
    op.localGet, CRC, op.localGet, POINTER, op.i64Load, ALIGN_8, 0, op.i64Xor, op.localSet, CRC,
    op.localGet, POINTER, op.i64Load, ALIGN_8, 8, op.localSet, SECOND_WORD,
    ...lookup(CRC, 15, 0),
    ...[1, 2, 3, 4, 5, 6, 7].flatMap((index) => [...lookup(CRC, 15 - index, 8 * index), op.i64Xor]),
    ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((index) => [...lookup(SECOND_WORD, 7 - index, 8 * index), op.i64Xor]),
    op.localSet, CRC,
    ...advance(16), op.br, 0,
    ...op.end, ...op.end,
    // The last 0-15 bytes one at a time: crc = tables[0][(crc ^ byte) & 0xff] ^ (crc >> 8).
    ...op.block, ...op.loop,
    op.localGet, LENGTH, op.i32Eqz, op.brIf, 1,
    op.localGet, CRC, op.i64Const, 8, op.i64ShrU,
    op.localGet, CRC, op.i32WrapI64, op.localGet, POINTER, op.i32Load8U, 0, 0, op.i32Xor,
    op.i32Const, ...signedLeb(0xff), op.i32And, op.i32Const, 3, op.i32Shl, op.i64Load, ALIGN_8, 0,
    op.i64Xor, op.localSet, CRC,
    ...advance(1), op.br, 0,
    ...op.end, ...op.end,
    op.localGet, CRC,
    ...op.end,
  ];
  const section = (id: number, content: number[]): number[] => [id, ...unsignedLeb(content.length), ...content];
  const name = (text: string): number[] => [...unsignedLeb(text.length), ...Buffer.from(text, 'ascii')];
  const I64 = 0x7e;
  const I32 = 0x7f;
  // One line per module section, as in the comments beside them.
  // prettier-ignore
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 3, I64, I32, I32, 1, I64]), // type 0: (i64, i32, i32) -> i64
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0x00, CRC_KERNEL_PAGES]), // one memory, at least CRC_KERNEL_PAGES pages
    ...section(7, [2, ...name('update'), 0x00, 0, ...name('memory'), 0x02, 0]), // exports
    ...section(10, [1, ...unsignedLeb(body.length), ...body]), // code
  ]);
}
