/**
 * Public JSON Web Keys (RFC 7517) for `keys_pub/<group>.jwk` (one key) and
 * `keys_pub/<group>.jwks` (a JWK Set of 1 to 8 keys, for key rotation), as
 * docs/protocol.md ("Keys and algorithms") describes them. Each key becomes a
 * {@linkcode PublicKeyInfo} like the PEM and OpenSSH keys; its `alg`, when
 * present, must fit the key type and is the one algorithm the key verifies.
 * Refused with a reason: private members, `use` other than `sig`, `key_ops`
 * without `verify`, an `alg` that contradicts the key. Pure: no files.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseJwk } from "./jwk.ts";
 * const key = parseJwk(
 *   '{"kty":"OKP","crv":"Ed25519","kid":"2026-a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}',
 * );
 * assert.equal(key.alg, "EdDSA");
 * assert.equal(key.kid, "2026-a");
 * ```
 *
 * @module
 */

import {
  EC_CURVES,
  type EcCurve,
  ecKey,
  ed25519Key,
  type KeyAlgorithm,
  type KeyFormat,
  type PublicKeyInfo,
  RSA_ALGORITHMS,
  rsaKey,
} from "./public_key.ts";

/** The most keys a JWK Set may hold. */
export const MAX_SET_KEYS = 8;

/** Members that only private (or symmetric) keys have (RFC 7518 §6). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

function member(
  jwk: Record<string, unknown>,
  name: string,
  what: string,
): Uint8Array {
  const value = jwk[name];
  if (typeof value !== "string" || !/^[A-Za-z0-9_-]+$/.test(value)) {
    throw new SyntaxError(
      `member "${name}" of the ${what} JWK must be a base64url string`,
    );
  }
  return Uint8Array.fromBase64(value, { alphabet: "base64url" });
}

function checkUsage(jwk: Record<string, unknown>): void {
  const secret = PRIVATE_MEMBERS.filter((m) => Object.hasOwn(jwk, m));
  if (secret.length > 0) {
    throw new SyntaxError(
      `this is a private key (member${secret.length > 1 ? "s" : ""} ${
        secret.map((m) => `"${m}"`).join(", ")
      }): publish only the public members`,
    );
  }
  if (Object.hasOwn(jwk, "use") && jwk.use !== "sig") {
    throw new SyntaxError(
      `"use" is ${
        JSON.stringify(jwk.use)?.slice(0, 20)
      }, not "sig": this key is not for signatures`,
    );
  }
  if (Object.hasOwn(jwk, "key_ops")) {
    const ops = jwk.key_ops;
    if (!Array.isArray(ops) || !ops.includes("verify")) {
      throw new SyntaxError(
        `"key_ops" does not include "verify": this key may not verify signatures`,
      );
    }
  }
  if (Object.hasOwn(jwk, "kid")) {
    const { kid } = jwk;
    if (typeof kid !== "string" || !/^[\x20-\x7e]{1,128}$/.test(kid)) {
      throw new SyntaxError(
        `"kid" must be 1-128 printable ASCII characters`,
      );
    }
  }
}

function pickAlg(
  jwk: Record<string, unknown>,
  info: PublicKeyInfo,
): KeyAlgorithm {
  if (!Object.hasOwn(jwk, "alg")) return info.alg;
  const { alg } = jwk;
  const fits: readonly string[] = info.type === "RSA"
    ? RSA_ALGORITHMS
    : info.type === "OKP"
    ? ["EdDSA", "Ed25519"]
    : [info.alg];
  if (typeof alg !== "string" || !fits.includes(alg)) {
    const name = info.type === "RSA"
      ? "an RSA key"
      : `an ${info.type === "OKP" ? "Ed25519" : `EC ${info.curve}`} key`;
    throw new SyntaxError(
      `"alg" ${
        JSON.stringify(alg)?.slice(0, 20)
      } contradicts the key type: ${name} verifies ${fits.join(" or ")}`,
    );
  }
  return alg === "Ed25519" ? "EdDSA" : alg as KeyAlgorithm;
}

function fromObject(value: unknown, format: KeyFormat): PublicKeyInfo {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SyntaxError("a JWK must be a JSON object");
  }
  const jwk = value as Record<string, unknown>;
  checkUsage(jwk);
  const { kty, crv } = jwk;
  let info: PublicKeyInfo;
  if (kty === "RSA") {
    info = rsaKey(member(jwk, "n", "RSA"), member(jwk, "e", "RSA"), format);
  } else if (kty === "EC") {
    if (typeof crv !== "string" || !Object.hasOwn(EC_CURVES, crv)) {
      throw new SyntaxError(
        `EC curve ${
          JSON.stringify(crv)?.slice(0, 20)
        } is not supported (use P-256, P-384 or P-521)`,
      );
    }
    const size = EC_CURVES[crv as EcCurve].size;
    const x = member(jwk, "x", crv);
    const y = member(jwk, "y", crv);
    if (x.length !== size || y.length !== size) {
      throw new SyntaxError(
        `the ${crv} coordinates must be ${size} bytes each`,
      );
    }
    const point = new Uint8Array(1 + 2 * size);
    point[0] = 0x04;
    point.set(x, 1);
    point.set(y, 1 + size);
    info = ecKey(crv as EcCurve, point, format);
  } else if (kty === "OKP") {
    if (crv !== "Ed25519") {
      throw new SyntaxError(
        `OKP curve ${
          JSON.stringify(crv)?.slice(0, 20)
        } is not supported (use Ed25519)`,
      );
    }
    info = ed25519Key(member(jwk, "x", "Ed25519"), format);
  } else {
    throw new SyntaxError(
      `key type (kty) ${
        JSON.stringify(kty)?.slice(0, 20) ?? "(missing)"
      } is not supported (use RSA, EC or OKP)`,
    );
  }
  info.alg = pickAlg(jwk, info);
  if (typeof jwk.kid === "string") info.kid = jwk.kid;
  return info;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `${what} is not valid JSON: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/**
 * Parses a `<group>.jwk` file: one public JWK.
 *
 * @param text The file contents.
 * @returns The key, with its `kid` when it has one.
 * @throws {SyntaxError} With the reason the key is refused.
 */
export function parseJwk(text: string): PublicKeyInfo {
  const value = parseJson(text, "the JWK");
  if (
    typeof value === "object" && value !== null && Object.hasOwn(value, "keys")
  ) {
    throw new SyntaxError(
      "this is a JWK Set: name the file <group>.jwks",
    );
  }
  return fromObject(value, "JWK");
}

/**
 * Parses a `<group>.jwks` file: a JWK Set `{"keys": [...]}` of 1 to 8 public
 * keys; when it holds more than one, each has a `kid`, unique in the set.
 *
 * @param text The file contents.
 * @returns The keys, in file order.
 * @throws {SyntaxError} With the reason the set is refused, naming the key
 * (`key 2 of 3`) when one key is the problem.
 */
export function parseJwkSet(text: string): PublicKeyInfo[] {
  const value = parseJson(text, "the JWK Set");
  const keys = typeof value === "object" && value !== null
    ? (value as { keys?: unknown }).keys
    : undefined;
  if (!Array.isArray(keys)) {
    throw new SyntaxError(
      'a JWK Set is an object with a "keys" array (one bare JWK goes in <group>.jwk)',
    );
  }
  if (keys.length < 1 || keys.length > MAX_SET_KEYS) {
    throw new SyntaxError(
      `a JWK Set holds 1 to ${MAX_SET_KEYS} keys, this one ${keys.length}`,
    );
  }
  const seen = new Set<string>();
  return keys.map((jwk, i) => {
    const which = `key ${i + 1} of ${keys.length}`;
    let info: PublicKeyInfo;
    try {
      info = fromObject(jwk, "JWK Set");
    } catch (e) {
      throw new SyntaxError(
        `${which}: ${e instanceof Error ? e.message : e}`,
      );
    }
    if (keys.length > 1) {
      if (info.kid === undefined) {
        throw new SyntaxError(
          `${which} has no "kid": every key of a set of several needs one`,
        );
      }
      if (seen.has(info.kid)) {
        throw new SyntaxError(
          `${which} repeats "kid" "${info.kid}": key ids must be unique`,
        );
      }
      seen.add(info.kid);
    }
    return info;
  });
}
