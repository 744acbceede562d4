/**
 * The walk of the reference client: it takes a group through the states as
 * a student client does (one signed request per event, docs/protocol.md, "The request"), and
 * copes with loss the way UDP clients must: each request waits for its answer
 * with a timeout that doubles (with jitter) on every retry up to a cap, and a
 * retry resends the identical datagram, so the server answers it from its
 * cache instead of running the state machine again (§6).
 *
 * {@linkcode walk} takes its socket, clock and randomness as arguments, so
 * the retry logic runs in tests against a fake network; `udpjwt send`
 * (lib/cli/send.ts) wires it to a real UDP socket and the console.
 *
 * @module
 */

import { CompactSign, compactVerify } from "jose";
import { COLOURS, expected } from "../protocol/fsm.ts";
import { randomHex32 } from "../protocol/handler.ts";
import { AUDIENCE, sha256Hex } from "../protocol/token.ts";
import type { AnswerVerifier } from "./answer_jwks.ts";
import { backoffDelay, type RetryOptions } from "./retry.ts";
import type { ClientSocket } from "./socket.ts";
import type { KeyAlgorithm } from "../keys/public_key.ts";

/** Signs request payloads with a group's private key. */
export interface Signer {
  /** The algorithm, from the key type. */
  alg: KeyAlgorithm;
  /**
   * Signs the payload bytes exactly as given.
   * @param payload The JSON payload bytes.
   * @returns The compact JWS.
   */
  sign(payload: Uint8Array): Promise<string>;
}

/**
 * A signer over a WebCrypto private key, header `{"alg":…,"typ":"JWT"}`,
 * with the key's `kid` when it has one.
 *
 * @param key The private key, imported for `alg`.
 * @param alg Its algorithm.
 * @param kid The key id for the header, if any.
 * @returns The signer.
 */
export function keySigner(
  key: CryptoKey,
  alg: KeyAlgorithm,
  kid?: string,
): Signer {
  const header = kid === undefined
    ? { alg, typ: "JWT" }
    : { alg, typ: "JWT", kid };
  return {
    alg,
    sign: (payload) =>
      new CompactSign(payload).setProtectedHeader(header).sign(key),
  };
}

/** What happened to one event of the walk. */
export interface StepReport {
  /** The event sent: `seq_state_number`. */
  sn: number;
  /** The colour sent: `seq_state`. */
  colour: string;
  /** The registration number sent. */
  registration: number;
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
   * by `verifyAnswer` (the server's answer key).
   */
  verified: boolean;
}

/** The outcome of a walk. */
export interface WalkResult {
  /** True when every event was acknowledged as expected. */
  ok: boolean;
  /** One report per event sent. */
  steps: StepReport[];
  /** Retransmissions in total. */
  retries: number;
  /** Milliseconds from the first request to the end. */
  elapsedMs: number;
}

/** Options of {@linkcode walk}. */
export interface WalkOptions {
  /** The group name, sent as `sub` (any case). */
  group: string;
  /**
   * Registration numbers, sent in turn, one per event.
   * @default {[0]}
   */
  registrations?: readonly number[];
  /**
   * `seq_max`: the group's member count.
   * @default {the number of distinct registrations}
   */
  seqMax?: number;
  /**
   * The first event sent.
   * @default {0}
   */
  from?: number;
  /**
   * The last event sent.
   * @default {states - 1}
   */
  to?: number;
  /**
   * The server's number of states.
   * @default {7}
   */
  states?: number;
  /**
   * `exp - iat` of each request, in seconds.
   * @default {60}
   */
  lifetimeSec?: number;
  /** The HMAC secret to verify answers with; unverified when absent. */
  secret?: Uint8Array;
  /**
   * Verifies answers signed by the server's own key (`--answer-jwks`)
   * instead of HS256 with `secret`.
   */
  verifyAnswer?: AnswerVerifier;
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
  /**
   * Fresh `jti`s.
   * @default {32 random hex digits}
   */
  randomId?: () => string;
  /** Called after each event with its report. */
  onStep?: (step: StepReport) => void;
}

/** A request as sent: its bytes and the `id_request` its answer carries. */
interface SentRequest {
  bytes: Uint8Array;
  idRequest: string;
  exp: number;
}

/** What one datagram from the server means for the current step. */
type Reading =
  | { kind: "stale" }
  | { kind: "bad"; reason: string }
  | { kind: "answer"; payload: Record<string, unknown>; verified: boolean };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

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

async function readAnswer(
  data: Uint8Array,
  ids: ReadonlySet<string>,
  secret: Uint8Array | undefined,
  verifyAnswer?: AnswerVerifier,
): Promise<Reading> {
  let text: string;
  try {
    text = decoder.decode(data).trim();
  } catch {
    return { kind: "stale" };
  }
  const [h = "", p = "", s] = text.split(".");
  const header = decodeSegment(h);
  const payload = decodeSegment(p);
  // Anything that does not answer one of this event's requests (a late copy
  // of an earlier answer, a stray datagram) is not ours to judge.
  if (
    !header || !payload || s === undefined ||
    typeof payload.id_request !== "string" || !ids.has(payload.id_request)
  ) {
    return { kind: "stale" };
  }
  if (verifyAnswer) {
    const reason = await verifyAnswer(text);
    if (reason !== undefined) return { kind: "bad", reason };
  } else if (header.alg !== "HS256") {
    return {
      kind: "bad",
      reason: `the answer is signed with ${
        JSON.stringify(header.alg)
      }, not HS256: the server signs answers with its own key; verify them with --answer-jwks (its JWK Set)`,
    };
  }
  if (secret && !verifyAnswer) {
    try {
      await compactVerify(text, secret, { algorithms: ["HS256"] });
    } catch {
      return {
        kind: "bad",
        reason:
          "the answer's HS256 signature does not verify with the --secret file: is it the lab's secret byte for byte, trailing newline included?",
      };
    }
  }
  if (payload.iss !== AUDIENCE) {
    return {
      kind: "bad",
      reason: `the answer's "iss" is ${
        JSON.stringify(payload.iss)
      }, not "${AUDIENCE}"`,
    };
  }
  return {
    kind: "answer",
    payload,
    verified: secret !== undefined || verifyAnswer !== undefined,
  };
}

/**
 * Judges a verified answer to event `sn`: the server's error, a wrong
 * `next_number`, or the acknowledgement expected.
 */
function judge(
  payload: Record<string, unknown>,
  want: number,
): Pick<StepReport, "ok" | "error" | "reason" | "fromServer" | "nextNumber"> {
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
        `the server answered next_number ${next}, expected ${want}: it waits for event ${next} (another client of the group is walking, or --from skips states); rerun with --from ${next}`,
    };
  }
  return { ok: true, nextNumber: next };
}

/**
 * Walks a group through events `from` … `to`: for each, signs a request
 * (claims as docs/protocol.md, "The request"), sends it, and waits for the answer that carries
 * its `id_request`, resending the identical datagram after each timeout. Stops
 * at the first event that fails: a server error, no answer within the retry
 * cap, an answer that does not verify, or an unexpected `next_number`.
 *
 * @param socket The socket to the server.
 * @param signer Signs the requests with the group's key.
 * @param options The group, events, secret, retries, clock and randomness.
 * @returns A report per event and whether the walk completed.
 */
export async function walk(
  socket: ClientSocket,
  signer: Signer,
  options: WalkOptions,
): Promise<WalkResult> {
  const {
    group,
    registrations = [0],
    states = 7,
    from = 0,
    to = states - 1,
    lifetimeSec = 60,
    secret,
    verifyAnswer,
    retry = {},
    now = Date.now,
    random = Math.random,
    randomId = randomHex32,
    onStep,
  } = options;
  const seqMax = options.seqMax ?? Math.max(1, new Set(registrations).size);
  const retries = retry.retries ?? 10;
  const start = now();
  const steps: StepReport[] = [];

  async function request(sn: number, registration: number) {
    const iat = Math.floor(now() / 1000);
    const claims = {
      sub: group,
      aud: AUDIENCE,
      iat,
      exp: iat + lifetimeSec,
      jti: randomId(),
      // The claim names of docs/protocol.md, "The request", in its order.
      "seq_state_number": sn,
      "seq_state": COLOURS[sn % COLOURS.length]!,
      "seq_max": seqMax,
      registration,
    };
    const payload = encoder.encode(JSON.stringify(claims));
    const token = await signer.sign(payload);
    return {
      bytes: encoder.encode(token),
      idRequest: sha256Hex(payload),
      exp: claims.exp,
    };
  }

  for (let sn = from; sn <= to; sn++) {
    const registration = registrations[(sn - from) % registrations.length] ??
      0;
    const step: StepReport = {
      sn,
      colour: COLOURS[sn % COLOURS.length]!,
      registration,
      expected: expected(sn, { states }),
      ok: false,
      elapsedMs: 0,
      retries: 0,
      resigned: 0,
      stale: 0,
      verified: false,
    };
    const stepStart = now();
    let sent: SentRequest = await request(sn, registration);
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
        const reading = await readAnswer(data, ids, secret, verifyAnswer);
        if (reading.kind === "stale") {
          step.stale++;
          continue;
        }
        step.rttMs = now() - sentAt;
        done = true;
        if (reading.kind === "bad") {
          Object.assign(step, { error: "BAD_ANSWER", reason: reading.reason });
        } else {
          step.verified = reading.verified;
          Object.assign(step, judge(reading.payload, step.expected));
        }
      }
      if (done) break;
      if (attempt >= retries) {
        Object.assign(step, {
          error: "NO_ANSWER",
          reason: `no answer after ${
            retries + 1
          } transmissions: is the server running at that address and port, and does it have --states ${states} or more?`,
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
        sent = await request(sn, registration);
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
