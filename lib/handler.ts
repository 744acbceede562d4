/**
 * One datagram in, zero or one answer out: the protocol without sockets.
 *
 * The cheap checks (shape, header, group, algorithm fit) run synchronously in
 * arrival order; the signature is verified concurrently; the state machine
 * then runs for each group in arrival order, so a client sending events back
 * to back is answered in order.
 *
 * @module
 */

import { type ErrorCode, ProtocolError } from "./errors.ts";
import { advance } from "./fsm.ts";
import type { GroupKey } from "./keys.ts";
import type { StateStore } from "./store.ts";
import {
  AUDIENCE,
  checkAlg,
  checkClaims,
  keyFor,
  type ParsedToken,
  parseToken,
  readGroup,
  type RequestClaims,
  signResponse,
  verifySignature,
} from "./token.ts";

/** What the handler needs from the server around it. */
export interface HandlerContext {
  /** Loaded keys by upper-case group name. */
  keys: ReadonlyMap<string, GroupKey>;
  /** The HMAC secret for answers, raw bytes. */
  secret: Uint8Array;
  /** Group state. */
  store: StateStore;
  /** The clock. */
  now: () => Date;
  /** Fresh random `jti`s for answers (32 hex digits). */
  randomId: () => string;
  /** Clock leeway in seconds. */
  leewaySec: number;
  /** The number of FSM states. */
  states: number;
  /** Member count of a group when a roster is configured. */
  members?: (group: string) => number | undefined;
  /** Per-group ordering of FSM steps; one map per server. */
  lanes: Map<string, Promise<unknown>>;
}

/** Outcome of one datagram, for the answer and the log. */
export interface PacketResult {
  /** The answer to send, or null for none. */
  reply: Uint8Array | null;
  /** `ok`, an error code, `no_action`, or `dropped:<reason>`. */
  outcome: "ok" | "no_action" | ErrorCode | `dropped:${string}`;
  /** The error code, also when the answer to it was dropped. */
  error?: ErrorCode;
  /** The error message or the reason for no answer. */
  detail?: string;
  /** The upper-case group, once known. */
  group?: string;
  /** The verified claims, when the signature verified. */
  claims?: RequestClaims;
  /** The state before the event. */
  previousState?: number;
  /** The `next_number` answered. */
  nextNumber?: number;
  /** Whether this event completed a walk. */
  completedWalk?: boolean;
}

/** Options of {@linkcode handlePacket}. */
export interface HandleOptions {
  /**
   * Whether error answers may be sent (false once the source's error budget
   * is spent: errors are then dropped without signature work).
   * @default {true}
   */
  answerErrors?: boolean;
}

/** Makes a random 32-hex-digit identifier. */
export function randomHex32(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toHex();
}

/**
 * The ISO 8601 time with a numeric UTC offset, as `otp_timestamp` wants it.
 *
 * @param now The time.
 * @returns e.g. `2026-11-23T13:38:21.123+00:00`.
 */
export function otpTimestamp(now: Date): string {
  return now.toISOString().replace(/Z$/, "+00:00");
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex();
}

function baseClaims(ctx: HandlerContext, sub: string): Record<string, unknown> {
  const now = ctx.now();
  const iat = Math.floor(now.getTime() / 1000);
  return {
    iss: AUDIENCE,
    sub,
    jti: ctx.randomId(),
    iat,
    exp: iat + 30,
    otp_timestamp: otpTimestamp(now),
  };
}

function isAsciiText(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    if (b > 0x7e || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) {
      return false;
    }
  }
  return true;
}

/** The payload bytes of a token that failed early, if they are a JSON object. */
function payloadIfObject(text: string): Uint8Array<ArrayBuffer> | undefined {
  const middle = text.trim().split(".")[1];
  if (middle === undefined || !/^[A-Za-z0-9_-]*$/.test(middle)) return;
  try {
    const bytes = Uint8Array.fromBase64(middle, { alphabet: "base64url" });
    const value = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    );
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return bytes;
    }
  } catch {
    // Not a JSON object: the answer carries no id_request.
  }
}

/** Runs `step` after every earlier step of the same group. */
function inLane<T>(
  ctx: HandlerContext,
  group: string,
  step: () => Promise<T>,
): Promise<T> {
  const previous = ctx.lanes.get(group) ?? Promise.resolve();
  const run = previous.then(step, step);
  const tail = run.catch(() => {});
  ctx.lanes.set(group, tail);
  tail.then(() => {
    if (ctx.lanes.get(group) === tail) ctx.lanes.delete(group);
  });
  return run;
}

/** The datagram as the error path needs it. */
interface Request {
  size: number;
  text: string;
  payload?: Uint8Array<ArrayBuffer>;
}

async function errorResult(
  err: ProtocolError,
  ctx: HandlerContext,
  request: Request,
  verified: { sub: string; group: string } | undefined,
  options: HandleOptions,
): Promise<PacketResult> {
  const base = {
    outcome: err.code,
    error: err.code,
    detail: err.message,
    ...(verified ? { group: verified.group } : {}),
  } as const;
  if (options.answerErrors === false) {
    return { ...base, reply: null, outcome: "dropped:rate_limit" };
  }
  const claims = baseClaims(ctx, verified?.sub.slice(0, 64) ?? "NO_SUB_CLAIM");
  const payload = request.payload ?? payloadIfObject(request.text);
  if (payload) claims.id_request = await sha256Hex(payload);
  claims.response = `ERROR: ${err.message.slice(0, 300)}`;
  claims.error = err.code;
  const reply = new TextEncoder().encode(
    await signResponse(claims, ctx.secret),
  );
  // Anti-amplification: an unverified source never gets more than 3x its bytes.
  if (!verified && reply.length > 3 * request.size) {
    return { ...base, reply: null, outcome: "dropped:amplification" };
  }
  return { ...base, reply };
}

/** What the ordered part of the handling decided. */
type LaneOutcome =
  | { error: ProtocolError; verified?: { sub: string; group: string } }
  | { result: PacketResult; durable?: Promise<void> };

/**
 * Checks the verified request's claims and runs the state machine.
 * Synchronous after the signature, so no other event of the group interleaves.
 */
async function step(
  ctx: HandlerContext,
  parsed: ParsedToken,
  key: GroupKey,
  signature: Promise<void>,
): Promise<LaneOutcome> {
  try {
    await signature;
  } catch (e) {
    if (e instanceof ProtocolError) return { error: e };
    throw e;
  }
  const group = key.group;
  const verified = { sub: String(parsed.payload.sub), group };
  let claims: RequestClaims;
  try {
    const members = ctx.members?.(group);
    claims = checkClaims(parsed.payload, {
      now: ctx.now(),
      leewaySec: ctx.leewaySec,
      ...(members === undefined ? {} : { members }),
    });
  } catch (e) {
    if (e instanceof ProtocolError) return { error: e, verified };
    throw e;
  }
  const previousState = ctx.store.state(group);
  const sn = claims.seqStateNumber;
  const t = advance(previousState, sn, { states: ctx.states });
  if (!t) {
    const detail = `seq_state_number ${sn} is outside 0..${ctx.states - 1}`;
    const outcome = "no_action";
    return {
      result: { reply: null, outcome, detail, group, claims, previousState },
    };
  }
  const completedWalk = sn === ctx.states - 1 &&
    previousState === ctx.states - 2;
  const durable = ctx.store.record(group, {
    state: t.state,
    registration: claims.registration,
    completedWalk,
    at: ctx.now(),
  });
  const result: PacketResult = {
    reply: null,
    outcome: "ok",
    group,
    claims,
    previousState,
    nextNumber: t.nextNumber,
    completedWalk,
  };
  return { result, durable };
}

/**
 * Handles one datagram.
 *
 * @param bytes The datagram (owned by the handler: copy receive buffers).
 * @param ctx Keys, secret, store, clock and limits.
 * @param options Whether error answers may be sent.
 * @returns The answer (or null) and what happened.
 */
export async function handlePacket(
  bytes: Uint8Array,
  ctx: HandlerContext,
  options?: HandleOptions,
): Promise<PacketResult> {
  const opts = options ?? {};
  const ascii = isAsciiText(bytes);
  const request: Request = {
    size: bytes.length,
    text: ascii ? new TextDecoder().decode(bytes) : "",
  };
  let parsed: ParsedToken;
  let key: GroupKey;
  try {
    if (!ascii) {
      throw new ProtocolError(
        "MALFORMED_TOKEN",
        "the datagram is not ASCII text",
      );
    }
    parsed = parseToken(request.text);
    request.payload = parsed.payloadBytes;
    const alg = checkAlg(parsed.header);
    key = keyFor(readGroup(parsed.payload), alg, ctx.keys);
  } catch (e) {
    if (e instanceof ProtocolError) {
      return await errorResult(e, ctx, request, undefined, opts);
    }
    throw e;
  }
  const signature = verifySignature(parsed.text, key);
  signature.catch(() => {}); // awaited in the lane; this avoids an unhandled rejection
  const outcome = await inLane(
    ctx,
    key.group,
    () => step(ctx, parsed, key, signature),
  );
  if ("error" in outcome) {
    return await errorResult(
      outcome.error,
      ctx,
      request,
      outcome.verified,
      opts,
    );
  }
  const { result, durable } = outcome;
  if (durable === undefined) return result;
  // The answer acknowledges the transition: send it only once it is durable.
  await durable;
  const claims = baseClaims(ctx, result.claims!.sub);
  claims.id_request = await sha256Hex(parsed.payloadBytes);
  claims.next_number = result.nextNumber;
  result.reply = new TextEncoder().encode(
    await signResponse(claims, ctx.secret),
  );
  return result;
}
