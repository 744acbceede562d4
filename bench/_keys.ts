/**
 * Key and token helpers shared by the load tool and the micro-benchmarks:
 * the WebCrypto parameters of every request algorithm, PEM armour and
 * base64url.
 *
 * @module
 */

import type { KeyAlgorithm } from "../lib/keys/public_key.ts";

/** The two request algorithms of protocol 2 (the load tool's modes). */
export type Alg = "RS256" | "ES256";

/** Every request algorithm of protocol 2.1. */
export type AnyAlg = KeyAlgorithm;

function rsa(name: string, hash: string): RsaHashedKeyGenParams {
  return {
    name,
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash,
  };
}

/** Key generation parameters per algorithm (RSA 2048, the NIST curves, Ed25519). */
export const KEY_PARAMS: Record<
  AnyAlg,
  RsaHashedKeyGenParams | EcKeyGenParams | Algorithm
> = {
  RS256: rsa("RSASSA-PKCS1-v1_5", "SHA-256"),
  RS384: rsa("RSASSA-PKCS1-v1_5", "SHA-384"),
  RS512: rsa("RSASSA-PKCS1-v1_5", "SHA-512"),
  PS256: rsa("RSA-PSS", "SHA-256"),
  PS384: rsa("RSA-PSS", "SHA-384"),
  PS512: rsa("RSA-PSS", "SHA-512"),
  ES256: { name: "ECDSA", namedCurve: "P-256" },
  ES384: { name: "ECDSA", namedCurve: "P-384" },
  ES512: { name: "ECDSA", namedCurve: "P-521" },
  EdDSA: { name: "Ed25519" },
};

/** Signing parameters per algorithm (PSS salts as long as the digest). */
export const SIGN_PARAMS: Record<
  AnyAlg,
  AlgorithmIdentifier | EcdsaParams | RsaPssParams
> = {
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  RS384: { name: "RSASSA-PKCS1-v1_5" },
  RS512: { name: "RSASSA-PKCS1-v1_5" },
  PS256: { name: "RSA-PSS", saltLength: 32 } as RsaPssParams,
  PS384: { name: "RSA-PSS", saltLength: 48 } as RsaPssParams,
  PS512: { name: "RSA-PSS", saltLength: 64 } as RsaPssParams,
  ES256: { name: "ECDSA", hash: "SHA-256" },
  ES384: { name: "ECDSA", hash: "SHA-384" },
  ES512: { name: "ECDSA", hash: "SHA-512" },
  EdDSA: { name: "Ed25519" },
};

/**
 * Wraps DER in PEM armour.
 *
 * @param label e.g. `PUBLIC KEY`.
 * @param der The DER bytes.
 * @returns The PEM text.
 */
export function pem(label: string, der: ArrayBuffer): string {
  const lines = new Uint8Array(der).toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----\n`;
}

/**
 * Unpadded base64url.
 *
 * @param bytes The input.
 * @returns The encoding.
 */
export function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}
