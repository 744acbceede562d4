/**
 * CRC-32 (IEEE 802.3, as in zlib and PNG), to detect damaged journal lines.
 *
 * @module
 */

const TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/**
 * The CRC-32 of some bytes.
 *
 * @param bytes The input.
 * @returns The checksum as 8 lower-case hex digits.
 */
export function crc32Hex(bytes: Uint8Array): string {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
}
