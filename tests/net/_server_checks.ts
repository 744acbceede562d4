/**
 * Shared by the end-to-end server tests: the vectors' good groups, request
 * tokens signed with their keys, checks of the answers (docs/protocol.md, "The answer"), a
 * walk through the states, and tallies of the server's datagram log.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type JWTPayload, jwtVerify } from "jose";
import {
  AUDIENCE,
  nowSec,
  payloadBytes,
  privateKey,
  requestClaims,
  SECRET,
  sha256Hex,
  signRequest,
} from "../_helpers.ts";
import type { UdpClient } from "../_udp_client.ts";

/** The six good groups of the vectors, one per accepted key format. */
export const GROUPS = [
  { group: "HEARTBEAT", alg: "RS256", format: "PEM SPKI" },
  { group: "CHEDIMON", alg: "ES256", format: "PEM SPKI" },
  { group: "THEOTHERS", alg: "RS256", format: "OpenSSH" },
  { group: "SEGSANH", alg: "ES256", format: "OpenSSH" },
  { group: "GUILHONGA", alg: "RS256", format: "RFC 4716" },
  { group: "PKCS1GRP", alg: "RS256", format: "PEM PKCS#1" },
] as const;
export type Group = typeof GROUPS[number]["group"];

const keyCache = new Map<string, Promise<CryptoKey>>();

/** The private key of `group` for a test client, read once. */
export function keyOf(group: Group): Promise<CryptoKey> {
  let k = keyCache.get(group);
  if (!k) keyCache.set(group, k = privateKey(group.toLowerCase()));
  return k;
}

/** The algorithm of `group`'s key. */
export function algOf(group: Group): "RS256" | "ES256" {
  return GROUPS.find((g) => g.group === group)!.alg;
}

/**
 * A request token for `group` and event `n`, signed with `signer`'s key
 * (default: the group's own).
 */
export async function token(
  group: Group,
  n: number,
  extra?: Record<string, unknown>,
  signer: Group = group,
): Promise<string> {
  return await signRequest(
    requestClaims(group, n, nowSec(), extra),
    await keyOf(signer),
    algOf(signer),
  );
}

/**
 * Verifies an answer and the claims every answer carries (docs/protocol.md, "The answer").
 *
 * @param answer The datagram received.
 * @param request The token it answers, for `id_request` (omit when the
 * request had no JSON payload).
 */
export async function checkAnswer(
  answer: Uint8Array,
  request?: string,
): Promise<JWTPayload> {
  assert.ok(answer.length < 1000, `answer of ${answer.length} bytes`);
  const text = new TextDecoder().decode(answer);
  const { payload, protectedHeader } = await jwtVerify(text, SECRET, {
    algorithms: ["HS256"],
  });
  assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
  assert.equal(payload.iss, AUDIENCE);
  assert.match(String(payload.jti), /^[0-9a-f]{32}$/);
  assert.equal(typeof payload.iat, "number");
  assert.ok(Math.abs(payload.iat! - Date.now() / 1000) < 10, "iat is now");
  assert.equal(payload.exp, payload.iat! + 30);
  const otp = String(payload.otp_timestamp);
  assert.match(otp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);
  assert.ok(
    Math.abs(Date.parse(otp) - payload.iat! * 1000) < 2000,
    `otp_timestamp ${otp} matches iat ${payload.iat}`,
  );
  if (request !== undefined) {
    assert.equal(payload.id_request, await sha256Hex(payloadBytes(request)));
  }
  return payload;
}

/** Checks a success answer. */
export async function checkOk(
  answer: Uint8Array,
  request: string,
  sub: string,
  nextNumber: number,
): Promise<void> {
  const p = await checkAnswer(answer, request);
  assert.equal(p.sub, sub);
  assert.equal(p.next_number, nextNumber);
  assert.equal(p.error, undefined);
  assert.equal(p.response, undefined);
}

/** Checks an error answer. */
export async function checkError(
  answer: Uint8Array,
  code: string,
  sub: string,
  request?: string,
): Promise<JWTPayload> {
  const p = await checkAnswer(answer, request);
  assert.equal(p.error, code, String(p.response));
  assert.match(String(p.response), /^ERROR: \S/);
  assert.equal(p.sub, sub);
  assert.equal(p.next_number, undefined);
  return p;
}

/** Sends a token for event `n` and checks the `next_number` answered. */
export async function step(
  client: UdpClient,
  to: Deno.NetAddr,
  group: Group,
  n: number,
  next: number,
  extra?: Record<string, unknown>,
): Promise<void> {
  const t = await token(group, n, extra);
  await client.send(to, t);
  await checkOk(await client.receive(), t, String(extra?.sub ?? group), next);
}

/** Walks `group` through 0..6 and checks every answer. */
export async function walk(
  client: UdpClient,
  to: Deno.NetAddr,
  group: Group,
  extra?: Record<string, unknown>,
): Promise<void> {
  for (let n = 0; n <= 6; n++) {
    await step(client, to, group, n, (n + 1) % 7, extra);
  }
}

/**
 * Asserts that nothing comes back for a while, then that the next answer to
 * a fresh legitimate request is that request's own (no late answer queued).
 */
export async function expectNoAnswer(
  client: UdpClient,
  to: Deno.NetAddr,
): Promise<void> {
  const late = await client.next(400);
  assert.equal(late, undefined, "no answer expected");
  await step(client, to, "PKCS1GRP", 0, 1);
}

/** Datagram log records (category `datagram`). */
export function datagrams(
  log: Record<string, unknown>[],
): Record<string, unknown>[] {
  return log.filter((r) => r.category === "datagram");
}

/** The outcome of every datagram; summed records (`count`) stand for many. */
export function outcomes(log: Record<string, unknown>[]): unknown[] {
  return datagrams(log).flatMap((r) =>
    Array(typeof r.count === "number" ? r.count : 1).fill(r.outcome)
  );
}

/** How many times each value occurs. */
export function tally(values: unknown[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
}
