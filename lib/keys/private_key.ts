/**
 * Private keys for the reference client and `keygen`: PEM `PRIVATE KEY`
 * (PKCS#8), and the older `RSA PRIVATE KEY` (PKCS#1) and `EC PRIVATE KEY`
 * (SEC1) forms, which are rewrapped as PKCS#8 for WebCrypto. The key type
 * decides the algorithm, as on the server: RSA → RS256, P-256 → ES256.
 * Parsing is pure; importing goes through WebCrypto.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePrivateKey } from "./private_key.ts";
 * const key = parsePrivateKey(`-----BEGIN PRIVATE KEY-----
 * MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgA65k8TAkEavSnS6F
 * gzWaccCwBP+7Kh8oZxExTzm/A9yhRANCAASPCu/T/AAZjjvAGvQ5v4jtfVcLBh1b
 * 77U1br0KtOBQ5qIVp75GLlRRBjLpdzGy6Cwdj4OTyIryUDP3Z1CCBnvO
 * -----END PRIVATE KEY-----`);
 * assert.equal(key.alg, "ES256");
 * ```
 *
 * @module
 */

import { cursor } from "./_bytes.ts";
import {
  enter,
  expectP256,
  OID_EC,
  OID_RSA,
  peekTag,
  readElement,
  readOid,
  TAG,
  unsupportedKeyType,
} from "./_der.ts";
import { parsePublicKey, type PublicKeyInfo } from "./public_key.ts";

/** A parsed private key, ready to import. */
export interface PrivateKeyInfo {
  /** The PEM form it was read from. */
  format: "PKCS#8" | "PKCS#1" | "SEC1";
  /** The key type. */
  type: "RSA" | "EC";
  /** The JWS algorithm this key signs with. */
  alg: "RS256" | "ES256";
  /** The key as PKCS#8 DER, for `crypto.subtle.importKey`. */
  pkcs8: Uint8Array<ArrayBuffer>;
}

/** An imported private key and its public half. */
export interface LoadedPrivateKey {
  /** The parsed key. */
  info: PrivateKeyInfo;
  /** The WebCrypto signing key. */
  key: CryptoKey;
  /** The public half, as the server would load it (for the fingerprint). */
  publicKey: PublicKeyInfo;
}

const TAG_OCTET_STRING = 0x04;
/** `AlgorithmIdentifier` of rsaEncryption with NULL parameters. */
const RSA_ALGORITHM = Uint8Array.fromHex("300d06092a864886f70d0101010500");
/** `AlgorithmIdentifier` of id-ecPublicKey on prime256v1. */
const P256_ALGORITHM = Uint8Array.fromHex(
  "301306072a8648ce3d020106082a8648ce3d030107",
);
/** DER of INTEGER 0, the PKCS#8 version. */
const VERSION_0 = Uint8Array.fromHex("020100");

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return [0x80 | bytes.length, ...bytes];
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const body = parts.reduce((n, p) => n + p.length, 0);
  const head = [tag, ...derLength(body)];
  const out = new Uint8Array(head.length + body);
  out.set(head);
  let pos = head.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function pkcs8Of(algorithm: Uint8Array, inner: Uint8Array) {
  return tlv(TAG.SEQUENCE, VERSION_0, algorithm, tlv(TAG_OCTET_STRING, inner));
}

function parsePkcs8(der: Uint8Array<ArrayBuffer>): PrivateKeyInfo {
  const outer = cursor(der);
  const info = enter(outer, TAG.SEQUENCE, "PrivateKeyInfo");
  readElement(info, TAG.INTEGER, "version");
  const algId = enter(info, TAG.SEQUENCE, "AlgorithmIdentifier");
  const oid = readOid(algId, "algorithm OID");
  readElement(info, TAG_OCTET_STRING, "privateKey");
  if (oid === OID_RSA) {
    return { format: "PKCS#8", type: "RSA", alg: "RS256", pkcs8: der };
  }
  if (oid === OID_EC) {
    expectP256(algId);
    return { format: "PKCS#8", type: "EC", alg: "ES256", pkcs8: der };
  }
  throw unsupportedKeyType(oid);
}

function parseSec1(der: Uint8Array): PrivateKeyInfo {
  const outer = cursor(der);
  const key = enter(outer, TAG.SEQUENCE, "ECPrivateKey");
  readElement(key, TAG.INTEGER, "version");
  readElement(key, TAG_OCTET_STRING, "privateKey");
  if (peekTag(key) === TAG.CONTEXT_0) {
    expectP256(enter(key, TAG.CONTEXT_0, "parameters"));
  }
  return {
    format: "SEC1",
    type: "EC",
    alg: "ES256",
    pkcs8: pkcs8Of(P256_ALGORITHM, der),
  };
}

function parsePkcs1(der: Uint8Array): PrivateKeyInfo {
  const outer = cursor(der);
  const key = enter(outer, TAG.SEQUENCE, "RSAPrivateKey");
  readElement(key, TAG.INTEGER, "version");
  readElement(key, TAG.INTEGER, "modulus");
  return {
    format: "PKCS#1",
    type: "RSA",
    alg: "RS256",
    pkcs8: pkcs8Of(RSA_ALGORITHM, der),
  };
}

function decodeBody(body: string, label: string): Uint8Array<ArrayBuffer> {
  try {
    return Uint8Array.fromBase64(body.replace(/\s+/g, ""));
  } catch {
    throw new SyntaxError(`the PEM ${label} body is not valid base64`);
  }
}

/**
 * Parses a PEM private key: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY`
 * (PKCS#1) or `EC PRIVATE KEY` (SEC1), unencrypted.
 *
 * @param text The file contents.
 * @returns The key type, its algorithm and its PKCS#8 bytes.
 * @throws {SyntaxError} When the text holds no usable private key; the message
 * says why and how to convert it.
 */
export function parsePrivateKey(text: string): PrivateKeyInfo {
  const blocks = [
    ...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g),
  ];
  // `openssl ecparam -genkey` writes an EC PARAMETERS block first.
  const block = blocks.find((m) => m[1]?.includes("PRIVATE KEY"));
  if (!block) {
    if (text.includes("ssh-rsa ") || text.includes("ecdsa-sha2-")) {
      throw new SyntaxError(
        "this is an OpenSSH public key: pass the private key",
      );
    }
    const label = blocks[0]?.[1];
    throw new SyntaxError(
      label
        ? `PEM type "${label}" is not a private key`
        : "not a PEM private key (expected -----BEGIN PRIVATE KEY-----)",
    );
  }
  const [, label = "", body = ""] = block;
  if (label === "ENCRYPTED PRIVATE KEY" || /Proc-Type:.*ENCRYPTED/.test(body)) {
    throw new SyntaxError(
      "the key is encrypted: decrypt it first (openssl pkey -in KEY -out PLAIN.key)",
    );
  }
  if (label === "OPENSSH PRIVATE KEY") {
    throw new SyntaxError(
      'OpenSSH private keys are not read: convert a copy to PKCS#8 with ssh-keygen -p -N "" -m PKCS8 -f COPY',
    );
  }
  const der = decodeBody(body, label);
  if (label === "PRIVATE KEY") return parsePkcs8(der);
  if (label === "RSA PRIVATE KEY") return parsePkcs1(der);
  if (label === "EC PRIVATE KEY") return parseSec1(der);
  throw new SyntaxError(`PEM type "${label}" is not supported`);
}

/**
 * Formats DER bytes as PEM with 64-character lines.
 *
 * @param label The PEM label, e.g. `PRIVATE KEY`.
 * @param der The DER bytes.
 * @returns The PEM text, newline-terminated.
 */
export function toPem(label: string, der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----\n`;
}

/**
 * Derives the public half of a private WebCrypto key, parsed as the server
 * parses a `keys_pub/` file.
 *
 * @param key An extractable private key (RSASSA-PKCS1-v1_5 or ECDSA P-256).
 * @returns The public key.
 */
export async function publicKeyOf(key: CryptoKey): Promise<PublicKeyInfo> {
  const jwk = await crypto.subtle.exportKey("jwk", key);
  // Keep only the public members: kty, n and e, or kty, crv, x and y.
  const publicJwk = Object.fromEntries(
    Object.entries(jwk).filter(([name]) =>
      ["kty", "n", "e", "crv", "x", "y"].includes(name)
    ),
  ) as JsonWebKey;
  const pub = await crypto.subtle.importKey(
    "jwk",
    publicJwk,
    key.algorithm,
    true,
    ["verify"],
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pub));
  return parsePublicKey(toPem("PUBLIC KEY", spki));
}

/**
 * Parses and imports a private key for signing.
 *
 * @param text The PEM file contents.
 * @returns The signing key, its type and its public half.
 * @throws {SyntaxError} When the text is not a usable private key or
 * WebCrypto rejects it.
 */
export async function loadPrivateKey(text: string): Promise<LoadedPrivateKey> {
  const info = parsePrivateKey(text);
  const algorithm = info.type === "RSA"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "ECDSA", namedCurve: "P-256" };
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      "pkcs8",
      info.pkcs8,
      algorithm,
      true,
      ["sign"],
    );
  } catch (e) {
    throw new SyntaxError(
      `WebCrypto rejects the ${info.format} key: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  return { info, key, publicKey: await publicKeyOf(key) };
}
