/**
 * Key and token helpers shared by the load tool and the micro-benchmarks:
 * the WebCrypto parameters of the two algorithms, PEM armour and base64url.
 *
 * @module
 */

/** The two request algorithms. */
export type Alg = "RS256" | "ES256";

/** Key generation parameters per algorithm (RSA 2048, P-256). */
export const KEY_PARAMS: Record<Alg, RsaHashedKeyGenParams | EcKeyGenParams> = {
  RS256: {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  ES256: { name: "ECDSA", namedCurve: "P-256" },
};

/** Signing parameters per algorithm. */
export const SIGN_PARAMS: Record<Alg, AlgorithmIdentifier | EcdsaParams> = {
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  ES256: { name: "ECDSA", hash: "SHA-256" },
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
