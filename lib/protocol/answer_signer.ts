/**
 * Who signs the answers, and how big they come out. By default the HS256 MAC
 * of token.ts with the lab's shared secret; with `--answer-key` the server's
 * own private key (lib/keys/answer_key.ts). Both sign synchronously and know
 * an answer's exact size before signing it, which the anti-amplification
 * check and the 1,000-byte limit need.
 *
 * @module
 */

import { signResponse } from "./token.ts";

/** Signs answers: the HS256 default or the server's own key. */
export interface AnswerSigner {
  /** The JWS `alg` of the answers. */
  readonly alg: string;
  /** The `kid` in the answers' header, when the signer has one. */
  readonly kid?: string;
  /**
   * Signs an answer.
   *
   * @param claims The answer's claims, or their JSON text.
   * @returns The compact JWS as bytes.
   */
  sign(claims: Record<string, unknown> | string): Uint8Array;
  /**
   * The exact length of the compact JWS {@linkcode AnswerSigner.sign} makes
   * of a claims JSON text, known before any signature work.
   *
   * @param json The claims as JSON.
   * @returns The answer's size in bytes.
   */
  size(json: string): number;
}

/** Every answer is smaller than this (clients read into 1 KiB buffers). */
export const ANSWER_LIMIT = 1000;

/**
 * The length of the unpadded base64url text of `bytes` bytes.
 *
 * @param bytes A byte count.
 * @returns The number of base64url characters.
 * @example
 * ```ts
 * import { base64urlLength } from "./answer_signer.ts";
 * base64urlLength(64); // 86
 * ```
 */
export function base64urlLength(bytes: number): number {
  return Math.ceil(bytes * 4 / 3);
}

/**
 * The JSON of an error answer's claims, its `response` text shortened when
 * the signed answer would otherwise reach {@linkcode ANSWER_LIMIT} bytes
 * (a 3072-bit RSA signature leaves less room than the HS256 MAC). Answers
 * that fit come out exactly as `JSON.stringify(claims)`.
 *
 * @param claims The claims; `response` is replaced when it is shortened.
 * @param size The signer's size function.
 * @returns The claims' JSON text.
 * @example
 * ```ts
 * import { fitResponse } from "./answer_signer.ts";
 * const claims = { response: "ERROR: " + "x".repeat(2000), error: "BAD_CLAIM" };
 * const json = fitResponse(claims, (j) => j.length + 100);
 * json.length + 100 < 1000; // true
 * ```
 */
export function fitResponse(
  claims: Record<string, unknown>,
  size: (json: string) => number,
): string {
  let json = JSON.stringify(claims);
  let over = size(json) - (ANSWER_LIMIT - 1);
  while (over > 0 && typeof claims.response === "string") {
    const text: string = claims.response;
    // Base64url grows 3 bytes to 4 characters: cut at least 3/4 of the excess.
    const cut = Math.max(1, Math.ceil(over * 3 / 4));
    const keep = text.length - cut - 3;
    claims.response = keep > 0 ? `${text.slice(0, keep)}...` : "";
    json = JSON.stringify(claims);
    over = size(json) - (ANSWER_LIMIT - 1);
    if (claims.response === "") break;
  }
  return json;
}

/** The shortest `response` text every error answer has room for. */
export const MIN_RESPONSE = 48;

/**
 * The size of the largest answer a signer can be made to sign, in bytes:
 * a success answer or an error answer (with a `response` of
 * {@linkcode MIN_RESPONSE} characters; longer ones are shortened by
 * {@linkcode fitResponse}) to a group of 64 characters, every claim at its
 * longest. A signer is usable when this is under {@linkcode ANSWER_LIMIT}.
 *
 * @param signer The answers' signer.
 * @returns The size in bytes.
 */
export function largestAnswer(signer: Pick<AnswerSigner, "size">): number {
  const common = {
    iss: "udp.socket.server.for.jwt",
    sub: "G".repeat(64),
    jti: "f".repeat(32),
    iat: 9_999_999_999,
    exp: 9_999_999_999,
    "otp_timestamp": "2026-11-23T13:38:21.123+00:00",
    "id_request": "f".repeat(64),
  };
  // --states goes up to 1000: next_number has at most three digits.
  const ok = JSON.stringify({ ...common, "next_number": 999 });
  const error = JSON.stringify({
    ...common,
    response: `ERROR: ${"x".repeat(MIN_RESPONSE - 7)}`,
    error: "TOKEN_NOT_YET_VALID",
  });
  return Math.max(signer.size(ok), signer.size(error));
}

/**
 * Signs an answer with the answer key when the server has one, else HS256
 * with the shared secret (docs/protocol.md, "Answers").
 *
 * @param ctx The answer key, if any, and the secret.
 * @param claims The answer's claims, or their JSON.
 * @returns The compact JWS.
 */
export function signAnswer(
  ctx: { answerSigner?: AnswerSigner; secret: Uint8Array },
  claims: Record<string, unknown> | string,
): Uint8Array {
  return ctx.answerSigner
    ? ctx.answerSigner.sign(claims)
    : signResponse(claims, ctx.secret);
}
