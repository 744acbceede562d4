/**
 * Public key parsing for docs/protocol.md ("Keys and algorithms"): PEM `PUBLIC KEY` (SPKI),
 * `RSA PUBLIC KEY` (PKCS#1) and `CERTIFICATE`, OpenSSH one-line keys and the
 * RFC 4716 `SSH2 PUBLIC KEY` form. Every format is reduced to a JWK that
 * WebCrypto imports; the key type decides the algorithm (RSA → RS256,
 * P-256 → ES256). Parsing is pure: no files, no clock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePublicKey } from "./public_key.ts";
 * const key = parsePublicKey(
 *   "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHW/wwP/lC16llOIYs0DIRhbsI/9TsvEmRY4vANRgOxeWpndNp4+VGk7Y/S1b33WqmPBYY+6HIYXU24XorrM8Ek= bob@lab",
 * );
 * assert.equal(key.alg, "ES256");
 * ```
 *
 * @module
 */

import { bitLength, cursor, expectEnd } from "./_bytes.ts";
import { encodeWire, readMpint, readString, readText } from "./_ssh_wire.ts";
import {
  enter,
  expectP256,
  OID_EC,
  OID_RSA,
  peekTag,
  readElement,
  readOid,
  readUnsigned,
  TAG,
  unsupportedKeyType,
} from "./_der.ts";

/** The file formats a public key can come in. */
export type KeyFormat =
  | "PEM SPKI"
  | "PEM PKCS#1"
  | "PEM certificate"
  | "OpenSSH"
  | "RFC 4716";

/** A parsed public key, ready to import. */
export interface PublicKeyInfo {
  /** The file format it was read from. */
  format: KeyFormat;
  /** The key type. */
  type: "RSA" | "EC";
  /** The only JWS algorithm this key verifies. */
  alg: "RS256" | "ES256";
  /** RSA modulus size in bits, or 256 for P-256. */
  bits: number;
  /** `P-256` for EC keys. */
  curve?: "P-256";
  /** The key as a JWK, for `crypto.subtle.importKey`. */
  jwk: JsonWebKey;
  /** The OpenSSH wire blob, the input of the `SHA256:` fingerprint. */
  sshBlob: Uint8Array<ArrayBuffer>;
}

function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function decodeBase64(text: string, what: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(text.replace(/\s+/g, ""));
  } catch {
    throw new SyntaxError(`${what} is not valid base64`);
  }
}

function rsaKey(
  n: Uint8Array,
  e: Uint8Array,
  format: KeyFormat,
): PublicKeyInfo {
  return {
    format,
    type: "RSA",
    alg: "RS256",
    bits: bitLength(n),
    jwk: { kty: "RSA", n: b64url(n), e: b64url(e) },
    sshBlob: encodeWire(["ssh-rsa", { mpint: e }, { mpint: n }]),
  };
}

function p256Key(point: Uint8Array, format: KeyFormat): PublicKeyInfo {
  if (point.length !== 65 || point[0] !== 0x04) {
    throw new SyntaxError(
      "the P-256 point is not an uncompressed 65-byte point",
    );
  }
  return {
    format,
    type: "EC",
    alg: "ES256",
    bits: 256,
    curve: "P-256",
    jwk: {
      kty: "EC",
      crv: "P-256",
      x: b64url(point.subarray(1, 33)),
      y: b64url(point.subarray(33)),
    },
    sshBlob: encodeWire(["ecdsa-sha2-nistp256", "nistp256", point]),
  };
}

function parsePkcs1(der: Uint8Array, format: KeyFormat): PublicKeyInfo {
  const outer = cursor(der);
  const seq = enter(outer, TAG.SEQUENCE, "RSAPublicKey");
  const n = readUnsigned(seq, "RSA modulus");
  const e = readUnsigned(seq, "RSA exponent");
  expectEnd(seq, "RSAPublicKey");
  expectEnd(outer, "RSAPublicKey");
  return rsaKey(n, e, format);
}

function parseSpkiContents(
  spki: ReturnType<typeof cursor>,
  format: KeyFormat,
): PublicKeyInfo {
  const algId = enter(spki, TAG.SEQUENCE, "AlgorithmIdentifier");
  const oid = readOid(algId, "algorithm OID");
  const bits = readElement(spki, TAG.BIT_STRING, "subjectPublicKey");
  expectEnd(spki, "SubjectPublicKeyInfo");
  if (bits[0] !== 0) throw new SyntaxError("subjectPublicKey has unused bits");
  const key = bits.subarray(1);
  if (oid === OID_RSA) return parsePkcs1(key, format);
  if (oid === OID_EC) {
    expectP256(algId);
    return p256Key(key, format);
  }
  throw unsupportedKeyType(oid);
}

function parseSpki(der: Uint8Array): PublicKeyInfo {
  const outer = cursor(der);
  const spki = enter(outer, TAG.SEQUENCE, "SubjectPublicKeyInfo");
  expectEnd(outer, "SubjectPublicKeyInfo");
  return parseSpkiContents(spki, "PEM SPKI");
}

function parseCertificate(der: Uint8Array): PublicKeyInfo {
  const outer = cursor(der);
  const cert = enter(outer, TAG.SEQUENCE, "Certificate");
  const tbs = enter(cert, TAG.SEQUENCE, "TBSCertificate");
  if (peekTag(tbs) === TAG.CONTEXT_0) {
    readElement(tbs, TAG.CONTEXT_0, "version");
  }
  readElement(tbs, TAG.INTEGER, "serialNumber");
  readElement(tbs, TAG.SEQUENCE, "signature algorithm");
  readElement(tbs, TAG.SEQUENCE, "issuer");
  readElement(tbs, TAG.SEQUENCE, "validity");
  readElement(tbs, TAG.SEQUENCE, "subject");
  const spki = enter(tbs, TAG.SEQUENCE, "SubjectPublicKeyInfo");
  return parseSpkiContents(spki, "PEM certificate");
}

/**
 * Decodes an OpenSSH public key blob (`ssh-rsa` or `ecdsa-sha2-nistp256`).
 *
 * @param blob The wire bytes.
 * @param format The format to record.
 * @returns The key.
 * @throws {SyntaxError} On short, malformed or unsupported blobs.
 */
export function parseSshBlob(
  blob: Uint8Array,
  format: KeyFormat,
): PublicKeyInfo {
  const c = cursor(blob);
  const type = readText(c, "key type");
  if (type === "ssh-rsa") {
    const e = readMpint(c, "RSA exponent");
    const n = readMpint(c, "RSA modulus");
    expectEnd(c, "ssh-rsa key");
    return rsaKey(n, e, format);
  }
  if (type === "ecdsa-sha2-nistp256") {
    const curve = readText(c, "curve name");
    if (curve !== "nistp256") {
      throw new SyntaxError(`curve "${curve}" does not match key type ${type}`);
    }
    const point = readString(c, "EC point");
    expectEnd(c, "ecdsa-sha2-nistp256 key");
    return p256Key(point, format);
  }
  throw new SyntaxError(
    `key type "${type}" is not supported (use ssh-rsa or ecdsa-sha2-nistp256)`,
  );
}

function parseOpenSshLine(text: string): PublicKeyInfo {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) =>
    l !== "" && !l.startsWith("#")
  );
  const [type, data] = (line ?? "").split(/\s+/);
  if (type === undefined || data === undefined) {
    throw new SyntaxError(
      "not a public key: expected PEM, an OpenSSH line or RFC 4716",
    );
  }
  const key = parseSshBlob(
    decodeBase64(data, "the OpenSSH key data"),
    "OpenSSH",
  );
  const declared = key.type === "RSA" ? "ssh-rsa" : "ecdsa-sha2-nistp256";
  if (type !== declared) {
    throw new SyntaxError(
      `the line says "${type}" but its key data is ${declared}`,
    );
  }
  return key;
}

function parseRfc4716(text: string): PublicKeyInfo {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const begin = lines.indexOf("---- BEGIN SSH2 PUBLIC KEY ----");
  const end = lines.indexOf("---- END SSH2 PUBLIC KEY ----");
  if (begin < 0 || end < begin) {
    throw new SyntaxError("RFC 4716 key has no END line");
  }
  let body = "";
  let continued = false;
  for (const line of lines.slice(begin + 1, end)) {
    // Header lines are "Tag: value"; a trailing backslash continues them.
    if (continued || /^[^:\s]{1,64}:/.test(line)) {
      continued = line.endsWith("\\");
      continue;
    }
    body += line;
  }
  return parseSshBlob(decodeBase64(body, "the RFC 4716 key data"), "RFC 4716");
}

function parsePem(text: string): PublicKeyInfo {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new SyntaxError("PEM block has no matching END line");
  const [, label = "", body = ""] = m;
  const der = decodeBase64(body, `the PEM ${label} body`);
  if (label === "PUBLIC KEY") return parseSpki(der);
  if (label === "RSA PUBLIC KEY") return parsePkcs1(der, "PEM PKCS#1");
  if (label === "CERTIFICATE") return parseCertificate(der);
  if (label.includes("PRIVATE KEY")) {
    throw new SyntaxError(
      `this is a ${label}, not a public key: export the public half (openssl pkey -pubout)`,
    );
  }
  throw new SyntaxError(`PEM type "${label}" is not a public key`);
}

/**
 * Parses a public key file's text in any accepted format.
 *
 * @param text The file contents.
 * @returns The key, its format, type, size and JWK.
 * @throws {SyntaxError} When the text is not a supported public key; the
 * message says why.
 */
export function parsePublicKey(text: string): PublicKeyInfo {
  const trimmed = text.trim();
  if (trimmed.startsWith("---- BEGIN SSH2")) return parseRfc4716(trimmed);
  if (trimmed.startsWith("-----BEGIN ")) return parsePem(trimmed);
  return parseOpenSshLine(trimmed);
}

/**
 * The `ssh-keygen -l` style fingerprint: `SHA256:` and the unpadded base64 of
 * the SHA-256 of the OpenSSH key blob. Identical keys in different formats
 * have the same fingerprint.
 *
 * @param key A parsed key.
 * @returns The fingerprint.
 */
export async function fingerprint(key: PublicKeyInfo): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", key.sshBlob),
  );
  return `SHA256:${digest.toBase64({ omitPadding: true })}`;
}

/**
 * Imports a parsed key into WebCrypto for signature verification.
 *
 * @param key A parsed key.
 * @returns A `verify` key for its algorithm (extractable: it is public).
 * @throws {Error} When WebCrypto rejects the key (e.g. a point off the curve).
 */
export async function importPublicKey(
  key: PublicKeyInfo,
): Promise<CryptoKey> {
  const algorithm = key.type === "RSA"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "ECDSA", namedCurve: "P-256" };
  // Extractable: it is a public key, and the OpenSSL backend exports it as
  // SPKI DER for libcrypto.
  const imported = await crypto.subtle.importKey(
    "jwk",
    key.jwk,
    algorithm,
    true,
    ["verify"],
  );
  // Deno checks a JWK only when it first verifies with it: a trial run makes a
  // malformed key (a point off the curve, an even RSA modulus) fail here, at
  // load time, instead of on every token of its group.
  await crypto.subtle.verify(
    key.type === "RSA" ? algorithm : { name: "ECDSA", hash: "SHA-256" },
    imported,
    new Uint8Array(),
    new Uint8Array(),
  );
  return imported;
}

/**
 * A one-line description for start-up summaries, e.g. `RSA 2048` or
 * `EC P-256`.
 *
 * @param key A parsed key.
 * @returns The type and size.
 */
export function describeKey(key: PublicKeyInfo): string {
  return key.type === "RSA" ? `RSA ${key.bits}` : `EC ${key.curve}`;
}
