/**
 * Readers and writers for the SSH wire format (RFC 4251 §5): `string` and
 * `mpint`, as used in OpenSSH public key blobs.
 *
 * @module
 */

import { type Cursor, readBytes, stripLeadingZeros } from "./_bytes.ts";

/** The largest string a public key blob may hold, far above any real key. */
const MAX_STRING = 16384;

/**
 * Reads a `string`: a 32-bit big-endian length, then that many bytes.
 *
 * @param c The cursor.
 * @param what What is being read, for the error message.
 * @returns The bytes of the string.
 * @throws {SyntaxError} On short input or an absurd length.
 */
export function readString(c: Cursor, what: string): Uint8Array {
  const len = readBytes(c, 4, `length of ${what}`);
  const n = new DataView(len.buffer, len.byteOffset, 4).getUint32(0);
  if (n > MAX_STRING) {
    throw new SyntaxError(`${what} claims ${n} bytes, more than any key has`);
  }
  return readBytes(c, n, what);
}

/**
 * Reads a `string` that must be ASCII text.
 *
 * @param c The cursor.
 * @param what What is being read, for the error message.
 * @returns The text.
 * @throws {SyntaxError} On short input or non-printable bytes.
 */
export function readText(c: Cursor, what: string): string {
  const bytes = readString(c, what);
  if (bytes.some((b) => b < 0x20 || b > 0x7e)) {
    throw new SyntaxError(`${what} is not printable ASCII`);
  }
  return String.fromCharCode(...bytes);
}

/**
 * Reads a non-negative `mpint` (two's complement, big-endian).
 *
 * @param c The cursor.
 * @param what What is being read, for the error message.
 * @returns The magnitude, without leading zero bytes.
 * @throws {SyntaxError} On short input, an empty or a negative number.
 */
export function readMpint(c: Cursor, what: string): Uint8Array {
  const bytes = readString(c, what);
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) {
    throw new SyntaxError(`${what} is not a positive integer`);
  }
  return stripLeadingZeros(bytes);
}

/**
 * Encodes a sequence of `string`s; `Uint8Array` parts marked as integers
 * are written as `mpint`s.
 *
 * @param parts Text, raw strings, or `{ mpint }` magnitudes.
 * @returns The concatenated wire bytes.
 */
export function encodeWire(
  parts: readonly (string | Uint8Array | { mpint: Uint8Array })[],
): Uint8Array<ArrayBuffer> {
  const chunks = parts.map((p) => {
    if (typeof p === "string") return new TextEncoder().encode(p);
    if (p instanceof Uint8Array) return p;
    const m = stripLeadingZeros(p.mpint);
    if ((m[0]! & 0x80) === 0) return m;
    const padded = new Uint8Array(m.length + 1);
    padded.set(m, 1);
    return padded;
  });
  const out = new Uint8Array(chunks.reduce((n, b) => n + 4 + b.length, 0));
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const b of chunks) {
    view.setUint32(pos, b.length);
    out.set(b, pos + 4);
    pos += 4 + b.length;
  }
  return out;
}
