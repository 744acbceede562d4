/**
 * A read cursor over bytes with small readers that throw a `SyntaxError` as
 * soon as the input runs short, shared by the SSH wire and DER parsers.
 *
 * @module
 */

/** A position in a byte array. */
export interface Cursor {
  /** The bytes being read. */
  bytes: Uint8Array;
  /** The index of the next byte to read. */
  pos: number;
}

/**
 * Makes a cursor at the start of `bytes`.
 *
 * @param bytes The input.
 * @returns A cursor at position 0.
 */
export function cursor(bytes: Uint8Array): Cursor {
  return { bytes, pos: 0 };
}

/**
 * Reads one byte.
 *
 * @param c The cursor, advanced by one.
 * @param what What is being read, for the error message.
 * @returns The byte.
 * @throws {SyntaxError} When the input has ended.
 */
export function readByte(c: Cursor, what: string): number {
  const b = c.bytes[c.pos];
  if (b === undefined) throw new SyntaxError(`truncated ${what}`);
  c.pos += 1;
  return b;
}

/**
 * Reads `n` bytes, as a view into the input.
 *
 * @param c The cursor, advanced by `n`.
 * @param n How many bytes to read.
 * @param what What is being read, for the error message.
 * @returns The bytes.
 * @throws {SyntaxError} When fewer than `n` bytes remain.
 */
export function readBytes(c: Cursor, n: number, what: string): Uint8Array {
  if (n < 0 || c.pos + n > c.bytes.length) {
    throw new SyntaxError(`truncated ${what}`);
  }
  const out = c.bytes.subarray(c.pos, c.pos + n);
  c.pos += n;
  return out;
}

/**
 * Checks that the whole input was read.
 *
 * @param c The cursor.
 * @param what What was read, for the error message.
 * @throws {SyntaxError} When bytes remain.
 */
export function expectEnd(c: Cursor, what: string): void {
  if (c.pos !== c.bytes.length) {
    throw new SyntaxError(
      `${c.bytes.length - c.pos} unexpected trailing bytes after ${what}`,
    );
  }
}

/**
 * Drops the leading zero bytes of a big-endian unsigned integer.
 *
 * @param bytes The integer.
 * @returns A view without leading zeros (at least one byte).
 */
export function stripLeadingZeros(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

/**
 * The bit length of a big-endian unsigned integer.
 *
 * @param bytes The integer, without leading zeros.
 * @returns Its number of significant bits.
 */
export function bitLength(bytes: Uint8Array): number {
  const top = bytes[0] ?? 0;
  if (top === 0) return 0;
  return (bytes.length - 1) * 8 + (32 - Math.clz32(top));
}
