/**
 * The public half of a private key, in every form the client and keygen need:
 * the public JWK, the OpenSSH wire blob (and its `SHA256:` fingerprint), the
 * SPKI DER, and a one-line description.
 *
 * @module
 */

import { bitLength } from "./_bytes.ts";
import { encodeWire } from "./_ssh_wire.ts";
import type { KeyCurve } from "./private_key.ts";

/** The public half of a private key, in the forms the server reads. */
export interface PublicHalf {
  /** The key type. */
  type: "RSA" | "EC" | "OKP";
  /** The curve of an EC or Ed25519 key. */
  curve?: KeyCurve;
  /** The RSA modulus size, or the curve's size (255 for Ed25519). */
  bits: number;
  /** The public JWK: `kty` and `n`, `e` or `crv`, `x` (and `y`). */
  jwk: JsonWebKey;
  /** The OpenSSH key type, e.g. `ssh-ed25519`. */
  sshType: string;
  /** The OpenSSH wire blob, the input of the `SHA256:` fingerprint. */
  sshBlob: Uint8Array<ArrayBuffer>;
  /** The SubjectPublicKeyInfo DER. */
  spki: Uint8Array<ArrayBuffer>;
}

/**
 * Decodes a base64url JWK member.
 *
 * @param text The member's value.
 * @param what The member's name, for the error.
 * @returns The bytes.
 * @throws {SyntaxError} When it is not base64url text.
 */
export function unb64url(text: unknown, what: string): Uint8Array {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]+$/.test(text)) {
    throw new SyntaxError(`the JWK's "${what}" is not base64url`);
  }
  return Uint8Array.fromBase64(text, { alphabet: "base64url" });
}

/**
 * Derives the public half of a private WebCrypto key.
 *
 * @param key An extractable private key (RSA, ECDSA or Ed25519).
 * @returns The public key as a JWK, an OpenSSH blob and SPKI DER.
 */
export async function publicKeyOf(key: CryptoKey): Promise<PublicHalf> {
  const jwk = await crypto.subtle.exportKey("jwk", key);
  // Keep only the public members: kty, n and e, or kty, crv, x (and y).
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
  if (publicJwk.kty === "RSA") {
    const n = unb64url(publicJwk.n, "n");
    const e = unb64url(publicJwk.e, "e");
    return {
      type: "RSA",
      bits: bitLength(n),
      jwk: publicJwk,
      sshType: "ssh-rsa",
      sshBlob: encodeWire(["ssh-rsa", { mpint: e }, { mpint: n }]),
      spki,
    };
  }
  const x = unb64url(publicJwk.x, "x");
  if (publicJwk.kty === "OKP") {
    return {
      type: "OKP",
      curve: "Ed25519",
      bits: 255,
      jwk: publicJwk,
      sshType: "ssh-ed25519",
      sshBlob: encodeWire(["ssh-ed25519", x]),
      spki,
    };
  }
  const curve = publicJwk.crv as "P-256" | "P-384" | "P-521";
  const bits = Number(curve.slice(2));
  const point = new Uint8Array(1 + x.length * 2);
  point[0] = 0x04;
  point.set(x, 1);
  point.set(unb64url(publicJwk.y, "y"), 1 + x.length);
  const name = `nistp${bits}`;
  return {
    type: "EC",
    curve,
    bits,
    jwk: publicJwk,
    sshType: `ecdsa-sha2-${name}`,
    sshBlob: encodeWire([`ecdsa-sha2-${name}`, name, point]),
    spki,
  };
}

/**
 * The `ssh-keygen -l` style fingerprint of a public half.
 *
 * @param key The public half.
 * @returns `SHA256:` and the unpadded base64 of the blob's SHA-256.
 */
export async function sshFingerprint(key: PublicHalf): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", key.sshBlob),
  );
  return `SHA256:${digest.toBase64({ omitPadding: true })}`;
}

/**
 * A one-line description, e.g. `RSA 2048`, `EC P-384` or `Ed25519`.
 *
 * @param key The public half.
 * @returns The type and size.
 */
export function describePublicKey(key: PublicHalf): string {
  return key.type === "RSA"
    ? `RSA ${key.bits}`
    : key.curve === "Ed25519"
    ? "Ed25519"
    : `EC ${key.curve}`;
}
