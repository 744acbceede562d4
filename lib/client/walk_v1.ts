/**
 * The reference client's walk for profile v1 (docs/protocol.md, "Profile
 * v1"): events `from … to` of a machine with states `0 … M`, one signed
 * request per event with the claims `group`, `seq_number`, `seq_max` and
 * `matricula`, each answer matched by `id_request` and checked with the lab's
 * HMAC secret. Loss is handled as in lib/client/walk.ts: the identical
 * datagram is resent after a timeout that doubles with jitter.
 *
 * By default the requests also carry `aud`, `iat`, `exp` and `jti`, so the
 * server caches each answer and a resent datagram gets the same bytes back.
 * With `bare`, they carry only the four v1 claims, as the 2023 clients did:
 * RS256 signatures are deterministic, so the same event always makes the
 * same token, and the server runs its machine for every copy (a repeat
 * answers the same `next_number`, so resending is still safe).
 *
 * @module
 */

import { CompactSign, compactVerify } from "jose";
import type { Signer } from "./walk.ts";
import { backoffDelay, type RetryOptions } from "./retry.ts";
import type { ClientSocket } from "./socket.ts";
import { randomHex32 } from "../protocol/handler.ts";
import { expectedV1 } from "../protocol/profile_v1.ts";
import { AUDIENCE, sha256Hex } from "../protocol/token.ts";

/** What happened to one event of a v1 walk. */
export interface StepReportV1 {
  /** The event sent: `seq_number`. */
  sn: number;
  /** The `matricula` sent. */
  matricula: number | string;
  /** The `next_number` that acknowledges the event. */
  expected: number;
  /** The `next_number` answered, when the answer had one. */
  nextNumber?: number;
  /** The answer's `otp_number`, when it had one. */
  otpNumber?: string;
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
  /** Whether the answer's HS256 signature was checked with the secret. */
  verified: boolean;
}

/** The outcome of a v1 walk. */
export interface WalkV1Result {
  /** True when every event was acknowledged as expected. */
  ok: boolean;
  /** One report per event sent. */
  steps: StepReportV1[];
  /** Retransmissions in total. */
  retries: number;
  /** Milliseconds from the first request to the end. */
  elapsedMs: number;
}

/** Options of {@linkcode walkV1}. */
export interface WalkV1Options {
  /** The group name, sent as `group` (any case). */
  group: string;
  /** M, sent as `seq_max`: the group's member count and final state. */
  seqMax: number;
  /**
   * The members' matriculas: one for every event, or M of them, the k-th
   * sent with event k (event 0 sends the first).
   * @default {[0]}
   */
  matriculas?: readonly (number | string)[];
  /**
   * The first event sent.
   * @default {0}
   */
  from?: number;
  /**
   * The last event sent.
   * @default {seqMax}
   */
  to?: number;
  /**
   * Send only the four v1 claims (no `aud`, `iat`, `exp`, `jti`), as the
   * 2023 clients did.
   * @default {false}
   */
  bare?: boolean;
  /**
   * `exp - iat` of each request, in seconds (not with `bare`).
   * @default {60}
   */
  lifetimeSec?: number;
  /** The HMAC secret to verify answers with; unverified when absent. */
  secret?: Uint8Array;
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
  onStep?: (step: StepReportV1) => void;
}

/**
 * The matricula a member sends with event `sn`: the k-th of the list for
 * event k, the first for event 0, or the only one.
 *
 * @param matriculas The list, 1 or M long.
 * @param sn The event.
 * @returns The matricula.
 */
export function matriculaFor(
  matriculas: readonly (number | string)[],
  sn: number,
): number | string {
  if (matriculas.length <= 1) return matriculas[0] ?? 0;
  return matriculas[Math.max(sn, 1) - 1] ?? matriculas[0]!;
}

/**
 * A signer over a WebCrypto private key that signs RS256 and ES256 with
 * WebCrypto itself, so that the 2023 groups' RSA-1024 keys work (jose
 * refuses RSA keys under 2048 bits); other algorithms go through jose.
 *
 * @param key The private key.
 * @param alg Its algorithm.
 * @returns The signer.
 */
export function v1Signer(key: CryptoKey, alg: Signer["alg"]): Signer {
  const header = base64url(
    encoder.encode(JSON.stringify({ alg, typ: "JWT" })),
  );
  const params = alg === "RS256"
    ? { name: "RSASSA-PKCS1-v1_5" }
    : alg === "ES256"
    ? { name: "ECDSA", hash: "SHA-256" }
    : undefined;
  return {
    alg,
    sign: async (payload) => {
      if (!params) {
        return await new CompactSign(payload)
          .setProtectedHeader({ alg, typ: "JWT" }).sign(key);
      }
      const input = `${header}.${base64url(payload)}`;
      const signature = await crypto.subtle.sign(
        params,
        key,
        encoder.encode(input),
      );
      return `${input}.${base64url(new Uint8Array(signature))}`;
    },
  };
}

function base64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

type Reading =
  | { kind: "stale" }
  | { kind: "bad"; reason: string }
  | { kind: "answer"; payload: Record<string, unknown>; verified: boolean };

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
  if (
    !header || !payload || s === undefined ||
    typeof payload.id_request !== "string" || !ids.has(payload.id_request)
  ) {
    return { kind: "stale" };
  }
  if (header.alg !== "HS256") {
    return {
      kind: "bad",
      reason: `the answer is signed with ${
        JSON.stringify(header.alg)
      }, not HS256`,
    };
  }
  if (secret) {
    try {
      await compactVerify(text, secret, { algorithms: ["HS256"] });
    } catch {
      return {
        kind: "bad",
        reason:
          "the answer's HS256 signature does not verify with the --secret file: is it the lab's secret byte for byte (a v1 lab's file has no trailing newline)?",
      };
    }
  }
  return { kind: "answer", payload, verified: secret !== undefined };
}

function judge(
  payload: Record<string, unknown>,
  want: number,
): Pick<
  StepReportV1,
  "ok" | "error" | "reason" | "fromServer" | "nextNumber" | "otpNumber"
> {
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
  const otp = typeof payload.otp_number === "string"
    ? { otpNumber: payload.otp_number }
    : {};
  if (next !== want) {
    return {
      ok: false,
      nextNumber: next,
      ...otp,
      error: "UNEXPECTED_NEXT_NUMBER",
      reason:
        `the server answered next_number ${next}, expected ${want}: it waits for event ${next}; rerun with --from ${next}`,
    };
  }
  return { ok: true, nextNumber: next, ...otp };
}

/**
 * Walks a v1 group through events `from` … `to`: for each, signs a request,
 * sends it, and waits for the answer carrying its `id_request`, resending the
 * identical datagram after each timeout. Stops at the first event that
 * fails: a server error, no answer within the retry cap (the server sends
 * nothing for an out-of-order event), an answer that does not verify, or an
 * unexpected `next_number`.
 *
 * @param socket The socket to the server.
 * @param signer Signs the requests with the group's key.
 * @param options The group, M, matriculas, events, secret, retries, clock.
 * @returns A report per event and whether the walk completed.
 */
export async function walkV1(
  socket: ClientSocket,
  signer: Signer,
  options: WalkV1Options,
): Promise<WalkV1Result> {
  const {
    group,
    seqMax,
    matriculas = [0],
    from = 0,
    to = seqMax,
    bare = false,
    lifetimeSec = 60,
    secret,
    retry = {},
    now = Date.now,
    random = Math.random,
    randomId = randomHex32,
    onStep,
  } = options;
  const retries = retry.retries ?? 10;
  const start = now();
  const steps: StepReportV1[] = [];

  async function request(sn: number, matricula: number | string) {
    const iat = Math.floor(now() / 1000);
    const times = bare
      ? {}
      : { aud: AUDIENCE, iat, exp: iat + lifetimeSec, jti: randomId() };
    const claims = {
      group,
      "seq_number": sn,
      "seq_max": seqMax,
      matricula,
      ...times,
    };
    const payload = encoder.encode(JSON.stringify(claims));
    const token = await signer.sign(payload);
    return {
      bytes: encoder.encode(token),
      idRequest: sha256Hex(payload),
      exp: bare ? Infinity : iat + lifetimeSec,
    };
  }

  for (let sn = from; sn <= to; sn++) {
    const matricula = matriculaFor(matriculas, sn);
    const step: StepReportV1 = {
      sn,
      matricula,
      expected: expectedV1(sn, { max: seqMax }),
      ok: false,
      elapsedMs: 0,
      retries: 0,
      resigned: 0,
      stale: 0,
      verified: false,
    };
    const stepStart = now();
    let sent = await request(sn, matricula);
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
        if (data === undefined) continue;
        const reading = await readAnswer(data, ids, secret);
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
          } transmissions: is a --profile v1 server running at that address and port? It sends nothing for an event out of order (rerun from event 0) or past seq_max`,
        });
        break;
      }
      attempt++;
      step.retries++;
      // As in walk.ts: a copy must arrive before its token expires.
      if (now() + 1000 >= sent.exp * 1000) {
        sent = await request(sn, matricula);
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
