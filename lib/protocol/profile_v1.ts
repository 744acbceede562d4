/**
 * Profile v1, the June 2023 lab (docs/protocol.md, "Profile v1"), as pure
 * functions: its claims (`group`, `seq_number`, `seq_max`, `matricula`; `aud`,
 * `iat`, `exp` and `jti` only checked when present), its machine of states
 * `0 … M`, and its four-claim answers. Keys, transport, error answers and
 * durability are those of protocol 2; the handler picks this profile with
 * `HandlerContext.profile` (lib/protocol/handler_v1.ts runs one step).
 *
 * @example
 * ```ts
 * import { advanceV1 } from "./profile_v1.ts";
 * advanceV1(2, 3, { max: 3 }); // { state: 3, nextNumber: 0 }
 * advanceV1(2, 1, { max: 3 }); // null: out of order, no answer
 * ```
 *
 * @module
 */

import { type ErrorCode, protocolError } from "./errors.ts";
import type { Transition } from "./fsm.ts";
import { AUDIENCE, type ClaimOptions, type RequestClaims } from "./token.ts";

/** The largest `seq_max` (member count) profile v1 accepts. */
export const V1_MAX_MEMBERS = 1000;

/** The largest `otp_number` of a v1 answer. */
export const V1_MAX_OTP = 20_000;

/** The claims of a v1 request that passed every check. */
export interface V1Claims {
  /** `group` as sent. */
  group: string;
  /** `seq_number`: the event, the number of the member it is about. */
  seqNumber: number;
  /** `seq_max`: the group's member count. */
  seqMax: number;
  /**
   * `matricula`: a number, also when sent as a string of digits that is a
   * plain safe integer (`"20230001"`); a string only when it cannot be one
   * (`"007"`, more than 15 digits).
   */
  matricula: number | string;
  /** `iat`, seconds, when sent. */
  iat?: number;
  /** `exp`, seconds, when sent. */
  exp?: number;
  /** `jti`, when sent. */
  jti?: string;
}

/** Options of {@linkcode advanceV1} and {@linkcode expectedV1}. */
export interface V1MachineOptions {
  /** M: the final state (the group's member count). */
  max: number;
}

const GROUP_NAME_ANY_CASE = /^[A-Za-z0-9_-]{1,64}$/;
const JTI = /^[\x21-\x7e]{1,64}$/;
const MATRICULA_DIGITS = /^[0-9]{1,20}$/;
const REQUIRED = ["seq_number", "seq_max", "matricula"] as const;

function fail(code: ErrorCode, message: string): never {
  throw protocolError(code, message);
}

function badClaim(name: string, rule: string): never {
  fail("BAD_CLAIM", `claim "${name}" must be ${rule}`);
}

function isInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/**
 * Reads the v1 group claim, `group`, matched case-insensitively.
 *
 * @param payload The decoded payload.
 * @returns The upper-case group name.
 * @throws {ProtocolError} `MISSING_CLAIM` or `BAD_CLAIM`.
 *
 * @example
 * ```ts
 * import { readGroupV1 } from "./profile_v1.ts";
 * readGroupV1({ group: "heartbeat" }); // "HEARTBEAT"
 * ```
 */
export function readGroupV1(payload: Record<string, unknown>): string {
  if (!Object.hasOwn(payload, "group")) {
    fail(
      "MISSING_CLAIM",
      'claim "group" is missing: set it to your group name',
    );
  }
  const { group } = payload;
  // Test before upper-casing: toUpperCase() maps "ı" to "I" and "ſ" to "S".
  if (typeof group !== "string" || !GROUP_NAME_ANY_CASE.test(group)) {
    fail(
      "BAD_CLAIM",
      'claim "group" must be a group name of 1-64 characters A-Z 0-9 _ -',
    );
  }
  return group.toUpperCase();
}

/**
 * A `matricula` as recorded: numbers stay numbers, a digit string that is a
 * plain safe integer becomes that number (2023 clients sent both forms of the
 * same registration), any other digit string stays a string.
 *
 * @param value The claim's value, already checked.
 * @returns The registration to record.
 */
function normalizeMatricula(value: number | string): number | string {
  if (typeof value === "number") return value;
  const n = Number(value);
  return Number.isSafeInteger(n) && String(n) === value ? n : value;
}

/**
 * Checks a v1 request's claims after the signature, in the protocol's order:
 * presence, types (`aud`, `iat`, `exp`, `jti` when present, then
 * `seq_number`, `seq_max`, `matricula`), audience, times, then the roster's
 * member count.
 *
 * @param payload The verified payload.
 * @param options The clock, leeway and the roster's member count.
 * @returns The typed claims.
 * @throws {ProtocolError} `MISSING_CLAIM`, `BAD_CLAIM`, `BAD_AUDIENCE`,
 * `TOKEN_EXPIRED`, `TOKEN_NOT_YET_VALID` or `SEQ_MAX_MISMATCH`.
 *
 * @example
 * ```ts
 * import { checkClaimsV1 } from "./profile_v1.ts";
 * const claims = { group: "g", seq_number: 1, seq_max: 3, matricula: "42" };
 * checkClaimsV1(claims, { now: new Date() }).matricula; // 42
 * ```
 */
export function checkClaimsV1(
  payload: Record<string, unknown>,
  options: ClaimOptions,
): V1Claims {
  const { now, leewaySec = 30, members } = options;
  const has = (name: string) => Object.hasOwn(payload, name);
  if (!has("group")) fail("MISSING_CLAIM", 'claim "group" is missing');
  const missing = REQUIRED.find((name) => !has(name));
  if (missing) fail("MISSING_CLAIM", `claim "${missing}" is missing`);
  const { group, aud, iat, exp, jti, seq_number: sn } = payload;
  const { seq_max: seqMax, matricula } = payload;
  if (typeof group !== "string") badClaim("group", "a string");
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (
    has("aud") &&
    (audiences.length === 0 || !audiences.every((a) => typeof a === "string"))
  ) {
    badClaim("aud", "a string or an array of strings");
  }
  if (has("iat") && !isTime(iat)) badClaim("iat", "a number of seconds");
  if (has("exp") && !isTime(exp)) badClaim("exp", "a number of seconds");
  if (has("jti") && (typeof jti !== "string" || !JTI.test(jti))) {
    badClaim("jti", "1-64 printable ASCII characters without spaces");
  }
  if (!isInteger(sn)) badClaim("seq_number", "an integer");
  if (!isInteger(seqMax) || seqMax < 1 || seqMax > V1_MAX_MEMBERS) {
    badClaim("seq_max", `an integer from 1 to ${V1_MAX_MEMBERS}`);
  }
  if (
    !isInteger(matricula) &&
    !(typeof matricula === "string" && MATRICULA_DIGITS.test(matricula))
  ) {
    badClaim("matricula", "an integer or a string of 1-20 digits");
  }
  if (has("aud") && !audiences.includes(AUDIENCE)) {
    fail("BAD_AUDIENCE", `claim "aud" must be "${AUDIENCE}"`);
  }
  const t = now.getTime() / 1000;
  if (isTime(exp) && exp < t - leewaySec) {
    fail("TOKEN_EXPIRED", `token expired ${Math.round(t - exp)} s ago`);
  }
  if (isTime(iat) && iat > t + leewaySec) {
    fail(
      "TOKEN_NOT_YET_VALID",
      `token issued ${Math.round(iat - t)} s in the future: check the clock`,
    );
  }
  if (members !== undefined && seqMax !== members) {
    fail(
      "SEQ_MAX_MISMATCH",
      `claim "seq_max" must be ${members}, the group's member count`,
    );
  }
  return {
    group,
    seqNumber: sn,
    seqMax,
    matricula: normalizeMatricula(matricula),
    ...(isTime(iat) ? { iat } : {}),
    ...(isTime(exp) ? { exp } : {}),
    ...(typeof jti === "string" ? { jti } : {}),
  };
}

/**
 * The event a v1 machine waits for in `state`: 0 in the final state M, else
 * the next member's number.
 *
 * @param state The current state.
 * @param options M.
 * @returns The expected event number.
 */
export function expectedV1(state: number, options: V1MachineOptions): number {
  return state === options.max ? 0 : state + 1;
}

/**
 * Applies the event `sn` to a v1 machine in `state`, states `0 … M`.
 *
 * | event | new state | `next_number` |
 * | --- | --- | --- |
 * | `sn = 0` | 0 | 1 |
 * | `sn = s`, `1 ≤ s ≤ M` (a repeat) | `s` | `expectedV1(s)` |
 * | `sn = s + 1 ≤ M` | `sn` | `expectedV1(sn)` |
 * | anything else | `s` | none (NO ACTION) |
 *
 * A state above M (M fell since it was reached) is left only by `sn = 0`.
 *
 * @param state The current state.
 * @param sn The event: the request's `seq_number`.
 * @param options M: the roster's member count or the request's `seq_max`.
 * @returns The transition, or `null` for NO ACTION (no answer at all).
 */
export function advanceV1(
  state: number,
  sn: number,
  options: V1MachineOptions,
): Transition | null {
  const { max } = options;
  if (sn === 0) return { state: 0, nextNumber: 1 };
  if (!Number.isInteger(sn) || sn < 0 || sn > max) return null;
  if (sn === state && state >= 1) {
    return { state, nextNumber: expectedV1(state, { max }) };
  }
  if (sn === state + 1) {
    return { state: sn, nextNumber: expectedV1(sn, { max }) };
  }
  return null;
}

/**
 * The `otp_number` of an answer: a number from 0 to 20000 written as a JSON
 * string, drawn from a fresh random identifier (the handler's `randomId`, so
 * tests pin it).
 *
 * @param randomHex A fresh random identifier of at least 8 hex digits.
 * @returns e.g. `"3205"`.
 */
export function otpNumber(randomHex: string): string {
  const n = Number.parseInt(randomHex.slice(0, 8), 16);
  return String((Number.isFinite(n) ? n : 0) % (V1_MAX_OTP + 1));
}

/** What a v1 success answer says. */
export interface V1Answer {
  /** Lower-case hex SHA-256 of the request's payload bytes. */
  idRequest: string;
  /** The event the machine now waits for. */
  nextNumber: number;
  /** The answer time. */
  now: Date;
  /** A fresh random identifier (hex) for `otp_number`. */
  randomHex: string;
}

/**
 * The claims of a v1 success answer: exactly `id_request`, `next_number`,
 * `otp_number` (a string) and `otp_timestamp` (integer Unix seconds).
 *
 * @param answer The request's hash, the number and the time.
 * @returns The claims, in the order written.
 *
 * @example
 * ```ts
 * import { answerClaimsV1 } from "./profile_v1.ts";
 * answerClaimsV1({
 *   idRequest: "ab", nextNumber: 2, now: new Date(1.7e12), randomHex: "00000005",
 * }); // { id_request: "ab", next_number: 2, otp_number: "5", otp_timestamp: 1700000000 }
 * ```
 */
export function answerClaimsV1(answer: V1Answer): Record<string, unknown> {
  return {
    id_request: answer.idRequest,
    next_number: answer.nextNumber,
    otp_number: otpNumber(answer.randomHex),
    otp_timestamp: Math.floor(answer.now.getTime() / 1000),
  };
}

/**
 * The v1 claims in the shape the server's log and monitor read (protocol 2's
 * names: `seq_number` as `seqStateNumber`, `matricula` as `registration`).
 * v1 has no colours: `seqState` is empty and never a mismatch. A `matricula`
 * kept as a string (`"007"`) shows as its number there (7), or NaN past the
 * safe integers; the store records it exactly.
 *
 * @param claims The checked v1 claims.
 * @returns The same facts as {@linkcode RequestClaims}.
 */
export function asRequestClaims(claims: V1Claims): RequestClaims {
  return {
    sub: claims.group,
    iat: claims.iat ?? NaN,
    exp: claims.exp ?? NaN,
    jti: claims.jti ?? "",
    seqStateNumber: claims.seqNumber,
    seqState: "",
    seqMax: claims.seqMax,
    registration: Number(claims.matricula),
    colourMismatch: false,
  };
}
