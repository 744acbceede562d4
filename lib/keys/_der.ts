/**
 * A minimal DER reader (ITU-T X.690): enough to take apart SubjectPublicKeyInfo,
 * PKCS#1 RSAPublicKey and X.509 certificates.
 *
 * @module
 */

import {
  type Cursor,
  cursor,
  readByte,
  readBytes,
  stripLeadingZeros,
} from "./_bytes.ts";

/** rsaEncryption. */
export const OID_RSA = "1.2.840.113549.1.1.1";
/** id-ecPublicKey. */
export const OID_EC = "1.2.840.10045.2.1";
/** prime256v1 (P-256). */
export const OID_P256 = "1.2.840.10045.3.1.7";
/** Names of key algorithms and curves that are refused, for messages. */
export const OID_NAMES: Record<string, string> = {
  "1.3.101.112": "Ed25519",
  "1.3.101.113": "Ed448",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
  "1.2.840.10040.4.1": "DSA",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
};

/**
 * The error for a key algorithm other than RSA or EC P-256.
 *
 * @param oid The algorithm's OID.
 * @returns A `SyntaxError` naming it.
 */
export function unsupportedKeyType(oid: string): SyntaxError {
  return new SyntaxError(
    `key type ${
      OID_NAMES[oid] ?? `OID ${oid}`
    } is not supported (use RSA for RS256 or EC P-256 for ES256)`,
  );
}

/** DER tags used here. */
export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  CONTEXT_0: 0xa0,
} as const;

/**
 * Reads one element and checks its tag.
 *
 * @param c The cursor.
 * @param tag The expected tag.
 * @param what What is being read, for the error message.
 * @returns The element's contents.
 * @throws {SyntaxError} On a different tag, a bad length or short input.
 */
export function readElement(c: Cursor, tag: number, what: string): Uint8Array {
  const got = readByte(c, what);
  if (got !== tag) {
    throw new SyntaxError(
      `expected ${what} (DER tag 0x${tag.toString(16)}), found tag 0x${
        got.toString(16)
      }`,
    );
  }
  let len = readByte(c, `length of ${what}`);
  if (len & 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 3) {
      throw new SyntaxError(`unsupported length encoding in ${what}`);
    }
    len = 0;
    for (const b of readBytes(c, count, `length of ${what}`)) {
      len = len * 256 + b;
    }
  }
  return readBytes(c, len, what);
}

/**
 * Peeks at the tag of the next element.
 *
 * @param c The cursor (not advanced).
 * @returns The tag, or `undefined` at the end.
 */
export function peekTag(c: Cursor): number | undefined {
  return c.bytes[c.pos];
}

/**
 * Reads an element and returns a cursor over its contents.
 *
 * @param c The cursor.
 * @param tag The expected tag.
 * @param what What is being read, for the error message.
 * @returns A cursor over the contents.
 */
export function enter(c: Cursor, tag: number, what: string): Cursor {
  return cursor(readElement(c, tag, what));
}

/**
 * Reads a positive INTEGER.
 *
 * @param c The cursor.
 * @param what What is being read, for the error message.
 * @returns The magnitude, without leading zero bytes.
 * @throws {SyntaxError} When the integer is negative or empty.
 */
export function readUnsigned(c: Cursor, what: string): Uint8Array {
  const bytes = readElement(c, TAG.INTEGER, what);
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) {
    throw new SyntaxError(`${what} is not a positive integer`);
  }
  // All leading zeros, not just the sign byte: the size and the JWK must come
  // from the value, as they do for SSH mpints.
  return stripLeadingZeros(bytes);
}

/**
 * Reads an OBJECT IDENTIFIER.
 *
 * @param c The cursor.
 * @param what What is being read, for the error message.
 * @returns The identifier in dotted form.
 */
export function readOid(c: Cursor, what: string): string {
  const bytes = readElement(c, TAG.OID, what);
  if (bytes.length === 0) throw new SyntaxError(`empty ${what}`);
  if ((bytes[bytes.length - 1]! & 0x80) !== 0) {
    throw new SyntaxError(`truncated ${what}: its last arc is cut off`);
  }
  const arcs: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join(".");
}

/**
 * Reads the curve parameter of an id-ecPublicKey `AlgorithmIdentifier` and
 * checks that it is P-256.
 *
 * @param algId A cursor after the algorithm OID.
 * @throws {SyntaxError} Naming any other (or a missing) curve.
 */
export function expectP256(algId: Cursor): void {
  const curve = peekTag(algId) === TAG.OID
    ? readOid(algId, "curve OID")
    : "(none)";
  if (curve !== OID_P256) {
    throw new SyntaxError(
      `EC curve ${
        OID_NAMES[curve] ?? curve
      } is not supported (only P-256, for ES256)`,
    );
  }
}

/** Ed25519 (RFC 8410). */
export const OID_ED25519 = "1.3.101.112";

/** The EC curves of protocol 2.1 by OID (SEC 2, RFC 5480). */
export const EC_CURVE_OIDS: Record<string, "P-256" | "P-384" | "P-521"> = {
  [OID_P256]: "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
};

/**
 * Reads the curve parameter of an id-ecPublicKey `AlgorithmIdentifier`:
 * P-256, P-384 or P-521.
 *
 * @param algId A cursor after the algorithm OID.
 * @returns The curve's JWK name.
 * @throws {SyntaxError} Naming any other (or a missing) curve.
 */
export function readEcCurve(algId: Cursor): "P-256" | "P-384" | "P-521" {
  const oid = peekTag(algId) === TAG.OID
    ? readOid(algId, "curve OID")
    : "(none)";
  const curve = EC_CURVE_OIDS[oid];
  if (!curve) {
    throw new SyntaxError(
      `EC curve ${
        OID_NAMES[oid] ?? oid
      } is not supported (use P-256, P-384 or P-521)`,
    );
  }
  return curve;
}
