/**
 * One datagram in, zero or one answer out: the protocol without sockets.
 *
 * The cheap checks (shape, header, group, algorithm fit) run synchronously in
 * arrival order. A signature the group's key checks on the calling thread
 * (OpenSSL's inline RSA) is verified at once and the request decided in the
 * same call, as long as no earlier request of the group is still waiting for
 * its signature; otherwise it joins the group's lane, a queue decided in
 * arrival order as the signatures settle, so a client sending events back to
 * back is answered in order. A retransmitted token gets the cached answer
 * byte for byte, and an answer that acknowledges a transition is released
 * only once the store says the transition is durable.
 *
 * @module
 */

import { type AnswerSigner, fitResponse, signAnswer } from "./answer_signer.ts";
import { type ErrorCode, ProtocolError, protocolError } from "./errors.ts";
import { advance } from "./fsm.ts";
import { stepV1 } from "./handler_v1.ts";
import { checkClaimsV1, readGroupV1 } from "./profile_v1.ts";
import type { GroupKey } from "../keys/key_ring.ts";
import type { ReplayCache, ReplayEntry } from "../state/replay.ts";
import type { Roster } from "../state/roster.ts";
import type { GroupEvent, StateStore } from "../state/store.ts";
import {
  AUDIENCE,
  checkAlg,
  checkClaims,
  chooseKey,
  type ParsedToken,
  parseToken,
  readGroup,
  type RequestClaims,
  responseSize,
  sha256Hex,
  trimToken,
  verifySignature,
  verifySignatureNow,
} from "./token.ts";

/** What the handler needs from the server around it. */
export interface HandlerContext {
  /** Loaded keys by upper-case group name (replaced on reload). */
  keys: ReadonlyMap<string, GroupKey>;
  /** The HMAC secret for answers, raw bytes. */
  secret: Uint8Array;
  /** Signs answers instead of HS256 with `secret` (`--answer-key`). */
  answerSigner?: AnswerSigner;
  /** Group state. */
  store: StateStore;
  /** Answers to recent tokens, and the `jti`s seen. */
  replay: ReplayCache;
  /** The clock. */
  now: () => Date;
  /** Fresh random `jti`s for answers (32 hex digits). */
  randomId: () => string;
  /** Clock leeway in seconds. */
  leewaySec: number;
  /** The number of FSM states. */
  states: number;
  /** Members by group, when a roster is configured. */
  roster?: Roster;
  /**
   * Per-group queues of requests waiting for their signature, decided in
   * arrival order; one map per server (start with an empty map).
   */
  lanes: Map<string, Lane>;
  /**
   * The protocol served: 2, or profile v1 (the June 2023 lab's claims,
   * machine and answers; lib/protocol/handler_v1.ts).
   * @default {"2"}
   */
  profile?: "2" | "v1";
  /** The request algorithms allowed (`--algs`); every one when absent. */
  algs?: ReadonlySet<string>;
}

/** Outcome of one datagram, for the answer and the log. */
export interface PacketResult {
  /** The answer to send, or null for none. */
  reply: Uint8Array | null;
  /**
   * `ok`, `replayed` (a retransmission answered from the cache), an error
   * code, `no_action`, or `dropped:<reason>`.
   */
  outcome: "ok" | "replayed" | "no_action" | ErrorCode | `dropped:${string}`;
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
  /** The state after the event. */
  state?: number;
  /** The `next_number` answered. */
  nextNumber?: number;
  /** Whether this event completed a walk. */
  completedWalk?: boolean;
  /** Whether a roster exists and does not list the registration. */
  unlisted?: boolean;
}

/** Options of {@linkcode handlePacket}. */
export interface HandleOptions {
  /**
   * Whether the source may still get error answers. When false, requests
   * that fail a cheap check are dropped before any signature work.
   * @default {true}
   */
  answerErrors?: boolean;
  /**
   * Spends one error answer of the source's budget; false drops the answer.
   * @default {() => true}
   */
  takeErrorToken?: () => boolean;
  /**
   * Whether the server is busy (many datagrams in flight): a signature
   * that can be checked on another thread then is, for throughput; when
   * not busy it is checked at once, which costs less CPU and latency.
   * @default {false}
   */
  busy?: boolean;
}

/** Random hex digits drawn 256 identifiers at a time. */
let randomPool = "";
let randomAt = 0;

/**
 * Makes a random 32-hex-digit identifier. The bytes come from
 * `crypto.getRandomValues`, fetched 4 KiB at a time: one call and one hex
 * conversion serve 256 identifiers.
 */
export function randomHex32(): string {
  if (randomAt === randomPool.length) {
    randomPool = crypto.getRandomValues(new Uint8Array(4096)).toHex();
    randomAt = 0;
  }
  return randomPool.slice(randomAt, randomAt += 32);
}

/** The `YYYY-MM-DDTHH:MM:SS.` of the last second formatted, and its second. */
let isoSecond = NaN;
let isoPrefix = "";

/**
 * The ISO 8601 time with a numeric UTC offset, as `otp_timestamp` wants it.
 *
 * @param now The time.
 * @returns e.g. `2026-11-23T13:38:21.123+00:00`.
 */
export function otpTimestamp(now: Date): string {
  const ms = now.getTime();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    // Formatted once a second; the milliseconds are appended below.
    const iso = now.toISOString();
    if (!iso.endsWith("Z") || iso.length !== 24) {
      return `${iso.slice(0, -1)}+00:00`; // a year beyond 0000-9999
    }
    isoSecond = second;
    isoPrefix = iso.slice(0, 20);
  }
  const milli = ms - second * 1000;
  return `${isoPrefix}${
    milli < 10 ? "00" : milli < 100 ? "0" : ""
  }${milli}+00:00`;
}

function baseClaims(
  ctx: HandlerContext,
  sub: string,
  now: Date,
): Record<string, unknown> {
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

/**
 * Printable ASCII plus the whitespace that may surround a token: one regular
 * expression over the decoded text (a byte outside ASCII decodes to a
 * character outside these ranges, U+FFFD when it is not UTF-8).
 */
const ASCII_TEXT = /^[\t-\r\x20-\x7e]*$/;
const decoder = new TextDecoder();

/** The payload bytes of a token that failed early, if they are a JSON object. */
function payloadIfObject(text: string): Uint8Array | undefined {
  const middle = text.split(".")[1];
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

/** A request of a group's lane, waiting for its signature. */
interface Waiting {
  parsed: ParsedToken;
  key: GroupKey;
  request: Request;
  options: HandleOptions;
  /** How the signature settled; undefined until it has. */
  verdict: "ok" | ProtocolError | { bug: unknown } | undefined;
  /** Settles the promise {@linkcode handlePacket} returned. */
  settle: (r: PacketResult | Promise<PacketResult>) => void;
}

/** A group's requests waiting for their signature, in arrival order. */
export type Lane = Waiting[];

/**
 * Queues a request whose signature settles later behind its group's earlier
 * ones; each is decided once it and every request before it have settled.
 */
function enqueue(
  ctx: HandlerContext,
  waiting: Omit<Waiting, "verdict" | "settle">,
): Promise<PacketResult> {
  const { promise, resolve } = Promise.withResolvers<PacketResult>();
  const w: Waiting = { ...waiting, verdict: undefined, settle: resolve };
  const group = w.key.group;
  const lane = ctx.lanes.get(group);
  if (lane) lane.push(w);
  else ctx.lanes.set(group, [w]);
  verifySignature(w.parsed, w.key).then(
    () => w.verdict = "ok",
    // Anything but a ProtocolError is a bug: rethrown where it settles.
    (e) => w.verdict = e instanceof ProtocolError ? e : { bug: e },
  ).then(() => drain(ctx, group));
  return promise;
}

/** Decides the settled requests at the head of a group's lane, in order. */
function drain(ctx: HandlerContext, group: string): void {
  const lane = ctx.lanes.get(group);
  if (!lane) return;
  while (lane.length > 0 && lane[0]!.verdict !== undefined) {
    const w = lane.shift()!;
    try {
      const v = w.verdict!;
      if (v !== "ok" && !(v instanceof ProtocolError)) throw v.bug;
      const outcome = v === "ok"
        ? decide(ctx, w.parsed, w.key, ctx.now())
        : { error: v };
      w.settle(finish(outcome, ctx, w.request, w.options));
    } catch (e) {
      w.settle(Promise.reject(e));
    }
  }
  if (lane.length === 0) ctx.lanes.delete(group);
}

/**
 * A lower bound of any error answer's size: the header, the MAC, and the
 * base64url of the shortest claims (`iss`, `sub`, `jti`, `iat`, `exp`,
 * `otp_timestamp`, `response`, `error`) come to more than this.
 */
const MIN_ERROR_ANSWER = 360;

/** The datagram as the error path needs it. */
interface Request {
  size: number;
  text: string;
  payload?: Uint8Array;
}

function errorResult(
  err: ProtocolError,
  ctx: HandlerContext,
  request: Request,
  verified: { sub: string; group: string } | undefined,
  options: HandleOptions,
): PacketResult {
  const base = {
    outcome: err.code,
    error: err.code,
    detail: err.message,
    ...(verified ? { group: verified.group } : {}),
  } as const;
  if (options.answerErrors === false) {
    return { ...base, reply: null, outcome: "dropped:rate_limit" };
  }
  // Anti-amplification: an unverified source never gets more than 3x its
  // bytes. The size is known before signing, so junk costs no HMAC; it still
  // spends the source's error budget, so a flood of it soon costs even less.
  const amplification = () => {
    options.takeErrorToken?.();
    return { ...base, reply: null, outcome: "dropped:amplification" } as const;
  };
  if (!verified && 3 * request.size < MIN_ERROR_ANSWER) return amplification();
  const claims = baseClaims(
    ctx,
    verified?.sub.slice(0, 64) ?? "NO_SUB_CLAIM",
    ctx.now(),
  );
  const payload = request.payload ?? payloadIfObject(request.text);
  if (payload) claims.id_request = sha256Hex(payload);
  claims.response = `ERROR: ${err.message.slice(0, 300)}`;
  claims.error = err.code;
  const signer = ctx.answerSigner;
  const size = signer ? (j: string) => signer.size(j) : responseSize;
  const json = fitResponse(claims, size);
  if (!verified && size(json) > 3 * request.size) {
    return amplification();
  }
  if (options.takeErrorToken && !options.takeErrorToken()) {
    return { ...base, reply: null, outcome: "dropped:rate_limit" };
  }
  return { ...base, reply: signAnswer(ctx, json) };
}

/** What the ordered part of the handling decided. */
export type LaneOutcome =
  | { error: ProtocolError; verified?: { sub: string; group: string } }
  | { result: PacketResult; ready?: Promise<void> };

function replayed(entry: ReplayEntry): LaneOutcome {
  const result: PacketResult = {
    reply: entry.reply,
    outcome: "replayed",
    group: entry.group,
  };
  return entry.ready ? { result, ready: entry.ready } : { result };
}

/**
 * Checks a verified request's claims and runs the state machine,
 * synchronously, so no other event of the group interleaves.
 */
function decide(
  ctx: HandlerContext,
  parsed: ParsedToken,
  key: GroupKey,
  now: Date,
): LaneOutcome {
  const nowSec = now.getTime() / 1000;
  // An identical token answered while this copy was being verified.
  const hit = ctx.replay.lookup(parsed.text, nowSec);
  if (hit) return replayed(hit);
  if (ctx.profile === "v1") return stepV1(ctx, parsed, key.group);
  const group = key.group;
  const verified = { sub: String(parsed.payload.sub), group };
  const members = ctx.roster?.get(group);
  let claims: RequestClaims;
  try {
    claims = checkClaims(parsed.payload, {
      now,
      leewaySec: ctx.leewaySec,
      ...(members ? { members: members.size } : {}),
    });
    if (ctx.replay.hasJti(group, claims.jti, nowSec)) {
      throw protocolError(
        "JTI_REUSED",
        `jti "${claims.jti}" was already used by group ${group}: use a fresh jti for each new request`,
      );
    }
  } catch (e) {
    if (e instanceof ProtocolError) return { error: e, verified };
    throw e;
  }
  const entry: ReplayEntry = {
    token: parsed.text,
    group,
    jti: claims.jti,
    reply: null,
    expiresAt: claims.exp + ctx.leewaySec,
  };
  const previousState = ctx.store.state(group);
  const sn = claims.seqStateNumber;
  const t = advance(previousState, sn, { states: ctx.states });
  const base = { group, claims, previousState };
  if (!t) {
    ctx.replay.add(entry, nowSec);
    const detail = `seq_state_number ${sn} is outside 0..${ctx.states - 1}`;
    return {
      result: { ...base, reply: null, outcome: "no_action", detail },
    };
  }
  const answer = baseClaims(ctx, claims.sub, now);
  answer.id_request = sha256Hex(parsed.payloadBytes);
  answer.next_number = t.nextNumber;
  const reply = entry.reply = signAnswer(ctx, answer);
  const completedWalk = sn === ctx.states - 1 &&
    previousState === ctx.states - 2;
  const unlisted = members ? !members.has(claims.registration) : false;
  const event = {
    state: t.state,
    registration: claims.registration,
    completedWalk,
    at: now,
    ...(unlisted ? { unlisted } : {}),
    replay: entry,
  };
  const ready = recordStep(ctx, group, event, entry, nowSec);
  const result: PacketResult = {
    ...base,
    reply,
    outcome: "ok",
    state: t.state,
    nextNumber: t.nextNumber,
    completedWalk,
    unlisted,
  };
  return { result, ready };
}

/**
 * Records an accepted step and returns the barrier its answer waits for. Once
 * the step is durable, retransmissions of its token need not wait. When it
 * cannot be made durable (a full disk), an answer that acknowledges only what
 * is already on disk may still go out; any other is never sent, and the token
 * is forgotten so that its retransmission is tried afresh. Both profiles use
 * it.
 *
 * @param ctx The handler context.
 * @param group The upper-case group.
 * @param event The step.
 * @param entry The token's cache entry, when the token is cached.
 * @param nowSec The time, for the cache.
 * @returns Resolves when the answer may go out; rejects when it may not.
 */
export function recordStep(
  ctx: HandlerContext,
  group: string,
  event: GroupEvent,
  entry: ReplayEntry | undefined,
  nowSec: number,
): Promise<void> {
  const ready = ctx.store.record(group, event).then(() => {
    if (entry) delete entry.ready;
  }, (e) => {
    if (ctx.store.durableState(group) === event.state) {
      if (entry) delete entry.ready;
      return;
    }
    if (entry) ctx.replay.remove(entry);
    throw e;
  });
  if (entry) {
    // finish() awaits it at once, retransmissions later.
    entry.ready = ready;
    ctx.replay.add(entry, nowSec);
  }
  return ready;
}

/** The answer of a decided request, released once its transition is durable. */
function finish(
  outcome: LaneOutcome,
  ctx: HandlerContext,
  request: Request,
  options: HandleOptions,
): PacketResult | Promise<PacketResult> {
  if ("error" in outcome) {
    return errorResult(outcome.error, ctx, request, outcome.verified, options);
  }
  // The answer acknowledges a transition: release it only once durable.
  const { result, ready } = outcome;
  return ready
    ? ready.then(() => result, (e) => notDurable(result, e))
    : result;
}

/** No answer: the transition it would acknowledge is not on disk. */
function notDurable(result: PacketResult, e: unknown): PacketResult {
  return {
    ...result,
    reply: null,
    outcome: "dropped:not_durable",
    detail: e instanceof Error ? e.message : String(e),
  };
}

/**
 * Handles one datagram. A datagram refused by a cheap check, a retransmission
 * whose answer is already durable, and a request whose signature is checked
 * on this thread and refused or whose claims fail are decided synchronously;
 * the others return a promise (an answer that acknowledges a transition
 * waits for the store, a signature checked on another thread for it).
 *
 * @param bytes The datagram (owned by the handler: copy receive buffers).
 * @param ctx Keys, secret, store, cache, clock and limits.
 * @param options The source's error budget.
 * @returns The answer (or null) and what happened, or a promise of them.
 */
export function handlePacket(
  bytes: Uint8Array,
  ctx: HandlerContext,
  options?: HandleOptions,
): PacketResult | Promise<PacketResult> {
  const opts = options ?? {};
  const decoded = decoder.decode(bytes);
  const ascii = ASCII_TEXT.test(decoded);
  const request: Request = {
    size: bytes.length,
    text: ascii ? trimToken(decoded) : "",
  };
  const now = ctx.now();
  const hit = ascii
    ? ctx.replay.lookup(request.text, now.getTime() / 1000)
    : undefined;
  if (hit) return finish(replayed(hit), ctx, request, opts);
  let parsed: ParsedToken;
  let key: GroupKey;
  try {
    if (!ascii) {
      throw protocolError("MALFORMED_TOKEN", "the datagram is not ASCII text");
    }
    parsed = parseToken(request.text);
    request.payload = parsed.payloadBytes;
    const alg = checkAlg(parsed.header, ctx.algs);
    const v1 = ctx.profile === "v1";
    const group = v1 ? readGroupV1(parsed.payload) : readGroup(parsed.payload);
    key = chooseKey({ group, alg, kid: parsed.header.kid }, ctx.keys);
    if (opts.answerErrors === false) {
      // Over budget: a request that would fail its claims is shed here,
      // without signature work.
      (v1 ? checkClaimsV1 : checkClaims)(parsed.payload, {
        now,
        leewaySec: ctx.leewaySec,
      });
    }
  } catch (e) {
    if (e instanceof ProtocolError) {
      return errorResult(e, ctx, request, undefined, opts);
    }
    throw e;
  }
  if (!ctx.lanes.has(key.group)) {
    // No earlier request of the group is waiting: when the key can check
    // the signature on this thread, decide now, in one synchronous pass.
    let verified: boolean | undefined;
    try {
      verified = verifySignatureNow(parsed, key, { busy: opts.busy ?? false });
    } catch (e) {
      if (e instanceof ProtocolError) {
        return errorResult(e, ctx, request, undefined, opts);
      }
      throw e;
    }
    if (verified) {
      return finish(decide(ctx, parsed, key, now), ctx, request, opts);
    }
  }
  return enqueue(ctx, { parsed, key, request, options: opts });
}
