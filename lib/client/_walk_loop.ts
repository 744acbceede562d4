/**
 * The loop both walks of the reference client share (protocol 2 in walk.ts,
 * profile v1 in walk_v1.ts): for each event it sends a signed request and
 * waits for the answer that carries its `id_request`, with a timeout that
 * doubles (with jitter) on every retry up to a cap. A retry resends the
 * identical datagram, so the server answers it from its cache instead of
 * running its machine again (docs/protocol.md, §6). A profile says how
 * requests are built and answers checked; the loop does the rest.
 *
 * @module
 */

import { compactVerify } from "jose";
import { backoffDelay, type RetryOptions } from "./retry.ts";
import type { ClientSocket } from "./socket.ts";
import { sha256Hex } from "../protocol/token.ts";

/** What happened to one event of a walk, whatever the profile. */
export interface StepReportBase {
  /** The event sent. */
  sn: number;
  /** The `next_number` that acknowledges the event. */
  expected: number;
  /** The `next_number` answered, when the answer had one. */
  nextNumber?: number;
  /** Whether the event was acknowledged as expected. */
  ok: boolean;
  /**
   * On failure, the server's error code, or the client's: `NO_ANSWER`,
   * `UNEXPECTED_NEXT_NUMBER` or `BAD_ANSWER`.
   */
  error?: string;
  /** The reason: the server's text after `ERROR:`, or the client's. */
  reason?: string;
  /** Whether the error came from the server. */
  fromServer?: boolean;
  /** Milliseconds from the last transmission to the answer. */
  rttMs?: number;
  /** Milliseconds from the first transmission to the end of the step. */
  elapsedMs: number;
  /** Retransmissions of this event. */
  retries: number;
  /** Fresh tokens signed because the previous one was about to expire. */
  resigned: number;
  /** Answers ignored because they did not answer this event's request. */
  stale: number;
  /**
   * Whether the answer's signature was checked: HS256 with the secret, or
   * by the server's answer key.
   */
  verified: boolean;
}

/** The fields of a step report that the loop fills in: all but two. */
type Outcome = Exclude<keyof StepReportBase, "sn" | "expected">;

/** The verdict on an answer's payload. */
export type Judgement = Pick<
  StepReportBase,
  "ok" | "error" | "reason" | "fromServer" | "nextNumber"
>;

/** The outcome of a walk. */
export interface WalkOutcome<S extends StepReportBase> {
  /** True when every event was acknowledged as expected. */
  ok: boolean;
  /** One report per event sent. */
  steps: S[];
  /** Retransmissions in total. */
  retries: number;
  /** Milliseconds from the first request to the end. */
  elapsedMs: number;
}

/** A request as sent: its bytes, the `id_request` its answer carries. */
interface SentRequest {
  bytes: Uint8Array;
  idRequest: string;
  /** Its `exp` in seconds (`Infinity` without one). */
  exp: number;
}

/** What a walk's profile tells the loop. */
export interface WalkProfile<S extends StepReportBase> {
  /** The first event sent. */
  from: number;
  /** The last event sent. */
  to: number;
  /** The report of event `sn` before it is sent: what is sent, expected. */
  begin(sn: number): Omit<S, Outcome>;
  /** The claims of a fresh request for the step's event, in their order. */
  claims(step: S): Record<string, unknown>;
  /** Signs a payload's bytes exactly as given, giving a compact JWS. */
  sign(payload: Uint8Array): Promise<string>;
  /**
   * Checks the signature and fixed claims of an answer to the step's
   * request.
   * @returns Why it is bad, or undefined when it is fine.
   */
  check(
    text: string,
    header: Record<string, unknown>,
    payload: Record<string, unknown>,
  ): Promise<string | undefined>;
  /** Whether `check` verifies signatures. */
  verified: boolean;
  /** Judges a checked answer to an event that expects `want`. */
  judge(payload: Record<string, unknown>, want: number): Partial<S>;
  /** The reason after "no answer after N transmissions: ". */
  noAnswer: string;
}

/** Options of the walks that the loop uses. */
export interface WalkLoopOptions<S extends StepReportBase> {
  /** Timeouts, retries and jitter. */
  retry?: RetryOptions;
  /**
   * The clock: epoch milliseconds.
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Uniform random numbers in [0, 1) for the jitter.
   * @default {Math.random}
   */
  random?: () => number;
  /** Called after each event with its report. */
  onStep?: (step: S) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Signs a fresh request for the step's event. */
async function request<S extends StepReportBase>(
  step: S,
  profile: WalkProfile<S>,
): Promise<SentRequest> {
  const claims = profile.claims(step);
  const payload = encoder.encode(JSON.stringify(claims));
  return {
    bytes: encoder.encode(await profile.sign(payload)),
    idRequest: sha256Hex(payload),
    exp: typeof claims.exp === "number" ? claims.exp : Infinity,
  };
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(
      decoder.decode(Uint8Array.fromBase64(segment, { alphabet: "base64url" })),
    );
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a compact JWS verifies as HS256 with the secret.
 *
 * @param text The answer.
 * @param secret The lab's HMAC secret.
 * @returns True when it verifies.
 */
export async function verifiesHs256(
  text: string,
  secret: Uint8Array,
): Promise<boolean> {
  try {
    await compactVerify(text, secret, { algorithms: ["HS256"] });
    return true;
  } catch {
    return false;
  }
}

/**
 * Judges an answer's payload: the server's error, a wrong `next_number`, or
 * the acknowledgement expected.
 *
 * @param payload The checked answer's claims.
 * @param want The `next_number` that acknowledges the event.
 * @param why Said after "it waits for event N" on a wrong `next_number`.
 * @returns The verdict.
 */
export function judgeAnswer(
  payload: Record<string, unknown>,
  want: number,
  why: string,
): Judgement {
  if (typeof payload.error === "string") {
    const response = typeof payload.response === "string"
      ? payload.response.replace(/^ERROR:\s*/, "")
      : "(no reason given)";
    return {
      ok: false,
      error: payload.error,
      reason: response,
      fromServer: true,
    };
  }
  const next = payload.next_number;
  if (typeof next !== "number" || !Number.isInteger(next)) {
    return {
      ok: false,
      error: "BAD_ANSWER",
      reason: 'the answer has neither "next_number" nor "error"',
    };
  }
  if (next !== want) {
    return {
      ok: false,
      nextNumber: next,
      error: "UNEXPECTED_NEXT_NUMBER",
      reason:
        `the server answered next_number ${next}, expected ${want}: it waits for event ${next}${why}; rerun with --from ${next}`,
    };
  }
  return { ok: true, nextNumber: next };
}

/**
 * What one datagram means for the current step: undefined when it does not
 * answer one of the step's requests (a late copy of an earlier answer, a
 * stray datagram), else the step's outcome.
 */
async function readAnswer<S extends StepReportBase>(
  data: Uint8Array,
  ids: ReadonlySet<string>,
  want: number,
  profile: WalkProfile<S>,
): Promise<Partial<S> | undefined> {
  let text: string;
  try {
    text = decoder.decode(data).trim();
  } catch {
    return undefined;
  }
  const [h = "", p = "", s] = text.split(".");
  const header = decodeSegment(h);
  const payload = decodeSegment(p);
  if (
    !header || !payload || s === undefined ||
    typeof payload.id_request !== "string" || !ids.has(payload.id_request)
  ) {
    return undefined;
  }
  const reason = await profile.check(text, header, payload);
  if (reason !== undefined) {
    return { error: "BAD_ANSWER", reason } as Partial<S>;
  }
  return {
    verified: profile.verified,
    ...profile.judge(payload, want),
  };
}

/**
 * Walks events `from` … `to`: for each, signs a request, sends it, and
 * waits for the answer that carries its `id_request`, resending the
 * identical datagram after each timeout. Stops at the first event that
 * fails: a server error, no answer within the retry cap, an answer that
 * does not verify, or an unexpected `next_number`.
 *
 * @param socket The socket to the server.
 * @param profile How requests are built and answers checked.
 * @param options Retries, clock, randomness and the step callback.
 * @returns A report per event and whether the walk completed.
 */
export async function walkEvents<S extends StepReportBase>(
  socket: ClientSocket,
  profile: WalkProfile<S>,
  options?: WalkLoopOptions<S>,
): Promise<WalkOutcome<S>> {
  const {
    retry = {},
    now = Date.now,
    random = Math.random,
    onStep,
  } = options ?? {};
  const { from, to } = profile;
  const retries = retry.retries ?? 10;
  const start = now();
  const steps: S[] = [];
  for (let sn = from; sn <= to; sn++) {
    const step = {
      ...profile.begin(sn),
      ok: false,
      elapsedMs: 0,
      retries: 0,
      resigned: 0,
      stale: 0,
      verified: false,
    } as S;
    const stepStart = now();
    let sent = await request(step, profile);
    const ids = new Set([sent.idRequest]);
    let sentAt = now();
    await socket.send(sent.bytes);
    let attempt = 0;
    let done = false;
    while (!done) {
      const deadline = sentAt + backoffDelay(attempt, random, retry);
      while (!done) {
        const left = deadline - now();
        if (left <= 0) break;
        const data = await socket.receive(left);
        if (data === undefined) continue; // the loop re-checks the deadline
        const outcome = await readAnswer(data, ids, step.expected, profile);
        if (outcome === undefined) {
          step.stale++;
          continue;
        }
        step.rttMs = now() - sentAt;
        done = true;
        Object.assign(step, outcome);
      }
      if (done) break;
      if (attempt >= retries) {
        Object.assign(step, {
          error: "NO_ANSWER",
          reason: `no answer after ${
            retries + 1
          } transmissions: ${profile.noAnswer}`,
        });
        break;
      }
      attempt++;
      step.retries++;
      // A copy must reach the server before its token expires (with a second
      // to spare), or the server has forgotten the answer and rejects it; a
      // fresh token for the same event is safe, because the state machine
      // answers a repeat as it did the first time.
      if (now() + 1000 >= sent.exp * 1000) {
        sent = await request(step, profile);
        ids.add(sent.idRequest);
        step.resigned++;
      }
      sentAt = now();
      await socket.send(sent.bytes);
    }
    step.elapsedMs = now() - stepStart;
    steps.push(step);
    onStep?.(step);
    if (!step.ok) break;
  }
  return {
    ok: steps.length === to - from + 1 && steps.every((s) => s.ok),
    steps,
    retries: steps.reduce((n, s) => n + s.retries, 0),
    elapsedMs: now() - start,
  };
}
