/**
 * Public key parsing for docs/protocol.md ("Keys and algorithms"): PEM `PUBLIC KEY` (SPKI),
 * `RSA PUBLIC KEY` (PKCS#1) and `CERTIFICATE`, OpenSSH one-line keys and the
 * RFC 4716 `SSH2 PUBLIC KEY` form (JWKs are read by `jwk.ts`). Every format is
 * reduced to a JWK that WebCrypto imports; the key decides the algorithm
 * (RSA → RS256, P-256/384/521 → ES256/384/512, Ed25519 → EdDSA; only a JWK's
 * `alg` may pick another RSA algorithm). Parsing is pure: no files, no clock.
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
  OID_EC,
  OID_ED25519,
  OID_NAMES,
  OID_RSA,
  peekTag,
  readEcCurve,
  readElement,
  readOid,
  readUnsigned,
  TAG,
} from "./_der.ts";

/** The file formats a public key can come in. */
export type KeyFormat =
  | "PEM SPKI"
  | "PEM PKCS#1"
  | "PEM certificate"
  | "OpenSSH"
  | "RFC 4716"
  | "JWK"
  | "JWK Set";

/**
 * Every algorithm a request may be signed with (protocol 2.1), in the order
 * of docs/protocol.md's table. `Ed25519` (RFC 9864) is a header spelling of
 * `EdDSA`, not a separate algorithm.
 */
export const KEY_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

/** One of {@linkcode KEY_ALGORITHMS}. */
export type KeyAlgorithm = typeof KEY_ALGORITHMS[number];

/** What an RSA key may verify or sign with; RS256 is what the key alone means. */
export const RSA_ALGORITHMS: readonly KeyAlgorithm[] = KEY_ALGORITHMS.slice(
  0,
  6,
);

/** EC curves by JWK name: SSH name, coordinate size, algorithm. */
export const EC_CURVES = {
  "P-256": { ssh: "nistp256", size: 32, alg: "ES256" },
  "P-384": { ssh: "nistp384", size: 48, alg: "ES384" },
  "P-521": { ssh: "nistp521", size: 66, alg: "ES512" },
} as const;

/** An EC curve name. */
export type EcCurve = keyof typeof EC_CURVES;

/** A parsed public key, ready to import. */
export interface PublicKeyInfo {
  /** The file format it was read from. */
  format: KeyFormat;
  /** The key type (JWK `kty`): `OKP` is Ed25519. */
  type: "RSA" | "EC" | "OKP";
  /** The only JWS algorithm this key verifies. */
  alg: KeyAlgorithm;
  /** RSA modulus size in bits, the curve's size, or 256 for Ed25519. */
  bits: number;
  /** The curve of EC and OKP keys. */
  curve?: EcCurve | "Ed25519";
  /** The key as a JWK, for `crypto.subtle.importKey`. */
  jwk: JsonWebKey;
  /** The OpenSSH wire blob, the input of the `SHA256:` fingerprint. */
  sshBlob: Uint8Array<ArrayBuffer>;
  /** The JWK's `kid`, when the key came with one. */
  kid?: string;
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

/**
 * Builds an RSA key from its modulus and exponent.
 *
 * @param n The modulus, big-endian.
 * @param e The exponent, big-endian.
 * @param format The format to record.
 * @returns The key, verifying RS256.
 */
export function rsaKey(
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

/**
 * Builds an EC key from its uncompressed point.
 *
 * @param curve The curve.
 * @param point `04 || x || y`.
 * @param format The format to record.
 * @returns The key, verifying ES256, ES384 or ES512.
 * @throws {SyntaxError} When the point is not uncompressed or has the wrong size.
 */
export function ecKey(
  curve: EcCurve,
  point: Uint8Array,
  format: KeyFormat,
): PublicKeyInfo {
  const { ssh, size, alg } = EC_CURVES[curve];
  if (point.length !== 1 + 2 * size || point[0] !== 0x04) {
    throw new SyntaxError(
      `the ${curve} point is not an uncompressed ${1 + 2 * size}-byte point`,
    );
  }
  return {
    format,
    type: "EC",
    alg,
    bits: curve === "P-521" ? 521 : size * 8,
    curve,
    jwk: {
      kty: "EC",
      crv: curve,
      x: b64url(point.subarray(1, 1 + size)),
      y: b64url(point.subarray(1 + size)),
    },
    sshBlob: encodeWire([`ecdsa-sha2-${ssh}`, ssh, point]),
  };
}

/**
 * Builds an Ed25519 key.
 *
 * @param x The 32-byte public key.
 * @param format The format to record.
 * @returns The key, verifying EdDSA.
 * @throws {SyntaxError} When the key is not 32 bytes.
 */
export function ed25519Key(x: Uint8Array, format: KeyFormat): PublicKeyInfo {
  if (x.length !== 32) {
    throw new SyntaxError(`the Ed25519 key has ${x.length} bytes, not 32`);
  }
  return {
    format,
    type: "OKP",
    alg: "EdDSA",
    bits: 256,
    curve: "Ed25519",
    jwk: { kty: "OKP", crv: "Ed25519", x: b64url(x) },
    sshBlob: encodeWire(["ssh-ed25519", x]),
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
  if (oid === OID_EC) return ecKey(readEcCurve(algId), key, format);
  if (oid === OID_ED25519) {
    expectEnd(algId, "Ed25519 AlgorithmIdentifier");
    return ed25519Key(key, format);
  }
  throw new SyntaxError(
    `key type ${
      OID_NAMES[oid] ?? `OID ${oid}`
    } is not supported (use RSA, EC P-256/P-384/P-521 or Ed25519)`,
  );
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

/** OpenSSH key types and the EC curve each names. */
const SSH_EC_TYPES: Record<string, EcCurve> = {
  "ecdsa-sha2-nistp256": "P-256",
  "ecdsa-sha2-nistp384": "P-384",
  "ecdsa-sha2-nistp521": "P-521",
};

/**
 * The OpenSSH key type of a parsed key (`ssh-rsa`, `ssh-ed25519`,
 * `ecdsa-sha2-nistp…`).
 *
 * @param key A parsed key.
 * @returns Its OpenSSH type name.
 */
export function sshType(key: PublicKeyInfo): string {
  if (key.type === "RSA") return "ssh-rsa";
  if (key.type === "OKP") return "ssh-ed25519";
  return `ecdsa-sha2-${EC_CURVES[key.curve as EcCurve].ssh}`;
}

/**
 * Decodes an OpenSSH public key blob (`ssh-rsa`, `ssh-ed25519` or
 * `ecdsa-sha2-nistp256/384/521`).
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
  if (type === "ssh-ed25519") {
    const x = readString(c, "Ed25519 key");
    expectEnd(c, "ssh-ed25519 key");
    return ed25519Key(x, format);
  }
  const ec = SSH_EC_TYPES[type];
  if (ec) {
    const curve = readText(c, "curve name");
    if (curve !== EC_CURVES[ec].ssh) {
      throw new SyntaxError(`curve "${curve}" does not match key type ${type}`);
    }
    const point = readString(c, "EC point");
    expectEnd(c, `${type} key`);
    return ecKey(ec, point, format);
  }
  throw new SyntaxError(
    `key type "${type}" is not supported (use ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521)`,
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
  const declared = sshType(key);
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
 * The RFC 7638 JWK thumbprint: the unpadded base64url SHA-256 of the key's
 * required members, in lexicographic order, without whitespace. A key
 * without a `kid` is known by it.
 *
 * @param key A parsed key.
 * @returns The thumbprint, 43 characters.
 */
export async function jwkThumbprint(key: { jwk: JsonWebKey }): Promise<string> {
  const { kty, crv, e, n, x, y } = key.jwk;
  const members = kty === "RSA"
    ? { e, kty, n }
    : kty === "EC"
    ? { crv, kty, x, y }
    : { crv, kty, x };
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(JSON.stringify(members)),
  );
  return b64url(new Uint8Array(digest));
}

/** The hash of each algorithm (EdDSA hashes internally). */
const HASHES: Record<KeyAlgorithm, "SHA-256" | "SHA-384" | "SHA-512" | null> = {
  RS256: "SHA-256",
  RS384: "SHA-384",
  RS512: "SHA-512",
  PS256: "SHA-256",
  PS384: "SHA-384",
  PS512: "SHA-512",
  ES256: "SHA-256",
  ES384: "SHA-384",
  ES512: "SHA-512",
  EdDSA: null,
};

/**
 * The digest an algorithm signs, or null for EdDSA.
 *
 * @param alg The algorithm.
 * @returns `SHA-256`, `SHA-384`, `SHA-512` or null.
 */
export function hashOf(
  alg: KeyAlgorithm,
): "SHA-256" | "SHA-384" | "SHA-512" | null {
  return HASHES[alg];
}

/**
 * WebCrypto's parameters for a key: those of `importKey` and those of
 * `verify` (RSA-PSS salts as long as the digest, RFC 7518 §3.5).
 *
 * @param key A parsed key.
 * @returns The import and verify parameters.
 */
export function webCryptoParams(
  key: PublicKeyInfo,
): {
  importParams: RsaHashedImportParams | EcKeyImportParams | Algorithm;
  verifyParams: Algorithm | EcdsaParams | RsaPssParams;
} {
  const hash = HASHES[key.alg];
  if (key.type === "OKP") {
    return {
      importParams: { name: "Ed25519" },
      verifyParams: { name: "Ed25519" },
    };
  }
  if (key.type === "EC") {
    return {
      importParams: { name: "ECDSA", namedCurve: key.curve as EcCurve },
      verifyParams: { name: "ECDSA", hash: hash! },
    };
  }
  if (key.alg.startsWith("PS")) {
    return {
      importParams: { name: "RSA-PSS", hash: hash! },
      verifyParams: {
        name: "RSA-PSS",
        saltLength: Number(hash!.slice(4)) / 8,
      } as RsaPssParams,
    };
  }
  return {
    importParams: { name: "RSASSA-PKCS1-v1_5", hash: hash! },
    verifyParams: { name: "RSASSA-PKCS1-v1_5" },
  };
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
  const { importParams, verifyParams } = webCryptoParams(key);
  // Extractable: it is a public key, and the OpenSSL backend exports it as
  // SPKI DER for libcrypto.
  const imported = await crypto.subtle.importKey(
    "jwk",
    key.jwk,
    importParams,
    true,
    ["verify"],
  );
  // Deno checks a JWK only when it first verifies with it: a trial run makes a
  // malformed key (a point off the curve, an even RSA modulus) fail here, at
  // load time, instead of on every token of its group.
  await crypto.subtle.verify(
    verifyParams,
    imported,
    new Uint8Array(key.type === "OKP" ? 64 : 0),
    new Uint8Array(),
  );
  return imported;
}

/**
 * A one-line description for start-up summaries, e.g. `RSA 2048`,
 * `EC P-384` or `Ed25519`.
 *
 * @param key A parsed key.
 * @returns The type and size.
 */
export function describeKey(key: PublicKeyInfo): string {
  if (key.type === "RSA") return `RSA ${key.bits}`;
  return key.type === "OKP" ? "Ed25519" : `EC ${key.curve}`;
}
