/**
 * Answers signed by the server's own key, checked by a client: the JWK Set
 * the server publishes (`udpjwt keys --answer-key FILE --jwks`, or its
 * `/jwks.json`), and a verifier that picks the key by the answer's `kid`
 * (docs/protocol.md, "Answers signed by the server's key"). `udpjwt send
 * --answer-jwks FILE` uses it instead of the HMAC secret.
 *
 * @module
 */

import {
  compactVerify,
  createLocalJWKSet,
  type JSONWebKeySet,
  type JWK,
} from "jose";

/** Checks one answer; resolves to the reason it is refused, or undefined. */
export type AnswerVerifier = (token: string) => Promise<string | undefined>;

/** The algorithms an answer key may sign with. */
const ANSWER_ALGS = ["EdDSA", "ES256", "RS256"] as const;
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/**
 * Parses a JWK Set of answer keys: 1 to 8 public keys, each with a `kid`
 * and an `alg` of `EdDSA`, `ES256` or `RS256`.
 *
 * @param text The file's text.
 * @returns The set.
 * @throws {SyntaxError} When the text is not such a JSON object.
 * @example
 * ```ts
 * import { parseJwks } from "./answer_jwks.ts";
 * const set = parseJwks('{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA"}]}');
 * set.keys.length; // 1
 * ```
 */
export function parseJwks(text: string): JSONWebKeySet {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError('not JSON: expected a JWK Set {"keys": [...]}', {
      cause: e,
    });
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > 8) {
    throw new SyntaxError(
      'not a JWK Set of 1 to 8 keys: expected {"keys": [...]}',
    );
  }
  keys.forEach((key: unknown, i) => {
    const k = key as Record<string, unknown> | null;
    const where = `key ${i + 1}`;
    if (typeof k !== "object" || k === null || typeof k.kty !== "string") {
      throw new SyntaxError(`${where} is not a JWK`);
    }
    if (PRIVATE_MEMBERS.some((m) => Object.hasOwn(k, m))) {
      throw new SyntaxError(
        `${where} has private members: this is a private key; publish only the public half`,
      );
    }
    if (typeof k.kid !== "string" || k.kid === "") {
      throw new SyntaxError(`${where} has no "kid"`);
    }
    if (!(ANSWER_ALGS as readonly unknown[]).includes(k.alg)) {
      throw new SyntaxError(
        `${where} ("${k.kid}") has "alg" ${
          JSON.stringify(k.alg)
        }: expected one of ${ANSWER_ALGS.join(", ")}`,
      );
    }
  });
  return { keys: keys as JWK[] };
}

/**
 * A verifier of answers signed by one of the set's keys, chosen by the
 * header's `kid`; the key's own `alg` is the only algorithm allowed.
 *
 * @param jwks The server's published JWK Set.
 * @returns The verifier.
 */
export function jwksVerifier(jwks: JSONWebKeySet): AnswerVerifier {
  const getKey = createLocalJWKSet(jwks);
  return async (token) => {
    const header = decodeHeader(token);
    if (header?.alg === "HS256") {
      return "the answer is signed with HS256 (the shared secret), not by the server's key: was the server started with --answer-key?";
    }
    if (typeof header?.kid !== "string") {
      return 'the answer\'s header has no "kid": was the server started with --answer-key?';
    }
    const kid = header.kid.slice(0, 64);
    const key = jwks.keys.find((k) => k.kid === header.kid);
    if (!key) {
      return `no key of --answer-jwks has kid "${kid}": is it the server's current JWK Set?`;
    }
    const alg = key.alg;
    if (alg === undefined || header.alg !== alg) {
      return `the answer is signed with ${
        JSON.stringify(header.alg)
      }, but key "${kid}" of --answer-jwks is for ${key.alg}`;
    }
    try {
      await compactVerify(token, getKey, { algorithms: [alg] });
      return undefined;
    } catch {
      return `the answer's signature does not verify with key "${kid}" of --answer-jwks`;
    }
  };
}

function decodeHeader(token: string): Record<string, unknown> | undefined {
  try {
    const segment = token.split(".")[0] ?? "";
    const value = JSON.parse(
      new TextDecoder().decode(
        Uint8Array.fromBase64(segment, { alphabet: "base64url" }),
      ),
    );
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}
