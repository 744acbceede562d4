/**
 * The scale benchmark's walk: many groups of a lab, spread evenly over it,
 * walk 0..6 at once. Every token is signed before the clock starts (claims
 * as student clients send them, `seq_max` the roster's size), at most
 * `window` requests are outstanding over `sockets` UDP sockets, a request
 * without an answer after 1 s is sent again, and every answer is verified
 * (HS256 with the lab secret, `iss`, `sub`, `id_request`, no `error`) and
 * its `next_number` checked.
 *
 * @module
 */

import { jwtVerify } from "jose";
import { colourOf, COLOURS, expected } from "../../lib/protocol/fsm.ts";
import { AUDIENCE } from "../../lib/protocol/token.ts";
import { udpCounters } from "../load/proc.ts";
import { type Signed, signToken } from "../load/tokens.ts";
import { type Lab, type LabGroup, mapLimit, MEMBERS } from "./lab.ts";

/** States of the default machine: a walk is 0..6. */
export const STATES: number = COLOURS.length;
const RETRANSMIT_MS = 1000;
/** Sends of one request before the walk of its group counts as failed. */
const MAX_SENDS = 10;
const WALK_TIMEOUT_MS = 120_000;
const TOKEN_LIFETIME_SEC = 300;
/** Wrong answers and failures kept as examples. */
const SAMPLES = 10;

/** Options of {@linkcode walk}. */
export interface WalkOptions {
  /**
   * Requests outstanding at most.
   * @default {64}
   */
  window?: number;
  /**
   * Client UDP sockets.
   * @default {4}
   */
  sockets?: number;
}

/** What a walk produced. */
export interface WalkResult {
  /** Groups walking. */
  groups: number;
  /** Those with an RSA key. */
  rsaGroups: number;
  /** Requests sent (retransmissions not counted). */
  requests: number;
  /** Right answers. */
  answers: number;
  /** Wrong or unverifiable answers. */
  wrong: number;
  /** A few of the wrong answers and failures. */
  wrongSamples: string[];
  /** Answers to a request already answered. */
  duplicates: number;
  /** Answers matching no request. */
  unmatched: number;
  /** Requests sent again. */
  retransmissions: number;
  /** Datagrams dropped by full socket receive buffers (system-wide). */
  rcvbufErrors: number | undefined;
  /** Groups whose walk failed. */
  failedGroups: number;
  /** Groups that reached the final state. */
  completedGroups: number;
  /** Seconds signing took. */
  signSec: number;
  /** Seconds from the first send to the last answer. */
  walkSec: number;
  /** Right answers per second. */
  answersPerSec: number;
  /** From the first send of a request to its answer. */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

/** A walking group. */
interface Walker {
  group: LabGroup;
  /** Its index among the sockets. */
  socket: number;
  steps: Signed[];
  /** The step outstanding or next to send. */
  at: number;
  firstSentAt: number;
  lastSentAt: number;
  sends: number;
  inFlight: boolean;
  failed?: string;
}

/**
 * `count` groups spread evenly, with an offset that cycles through the
 * RSA/P-256 pattern (every tenth group of 10,000 would be RSA only).
 */
function chooseGroups(groups: LabGroup[], count: number): LabGroup[] {
  const stride = groups.length / count;
  const offset = Math.max(1, Math.floor(stride));
  return Array.from(
    { length: count },
    (_, i) => groups[Math.floor(i * stride) + i % offset]!,
  );
}

/** Signs a group's walk 0..6, one roster member after another. */
async function signWalk(group: LabGroup, nowSec: number): Promise<Signed[]> {
  const steps: Signed[] = [];
  for (let sn = 0; sn < STATES; sn++) {
    const claims = {
      sub: group.name,
      aud: AUDIENCE,
      iat: nowSec,
      exp: nowSec + TOKEN_LIFETIME_SEC,
      jti: crypto.getRandomValues(new Uint8Array(16)).toHex(),
      "seq_state_number": sn,
      "seq_state": colourOf(sn),
      "seq_max": MEMBERS,
      registration: group.members[sn % MEMBERS]!,
    };
    steps.push(await signToken(claims, group.alg, group.priv));
  }
  return steps;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

async function rcvbufErrors(): Promise<number | undefined> {
  return (await udpCounters())?.RcvbufErrors;
}

/**
 * Walks `count` groups of the lab (spread evenly) from 0 to 6 at once.
 *
 * @param lab The lab the server loaded.
 * @param server The server's address.
 * @param options Window and socket count, and how many groups walk.
 * @returns Counts, rates and latencies.
 */
export async function walk(
  lab: Lab,
  server: Deno.NetAddr,
  options: WalkOptions & { count: number },
): Promise<WalkResult> {
  const { count, window = 64 } = options;
  const chosen = chooseGroups(lab.groups, count);
  const t0 = performance.now();
  const nowSec = Math.floor(Date.now() / 1000);
  const signed = await mapLimit(chosen, 32, (g) => signWalk(g, nowSec));
  const signSec = (performance.now() - t0) / 1000;
  const hmac = await crypto.subtle.importKey(
    "raw",
    lab.secret,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const sockets = Array.from(
    { length: Math.min(options.sockets ?? 4, count) },
    () =>
      Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" }),
  );
  const walkers: Walker[] = chosen.map((group, i) => ({
    group,
    socket: i % sockets.length,
    steps: signed[i]!,
    at: 0,
    firstSentAt: 0,
    lastSentAt: 0,
    sends: 0,
    inFlight: false,
  }));
  const byId = new Map<string, [Walker, Signed]>();
  for (const w of walkers) for (const s of w.steps) byId.set(s.id, [w, s]);
  const r: WalkResult = {
    groups: count,
    rsaGroups: chosen.filter((g) => g.alg === "RS256").length,
    requests: 0,
    answers: 0,
    wrong: 0,
    wrongSamples: [],
    duplicates: 0,
    unmatched: 0,
    retransmissions: 0,
    rcvbufErrors: undefined,
    failedGroups: 0,
    completedGroups: 0,
    signSec,
    walkSec: 0,
    answersPerSec: 0,
    latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 },
  };
  const latencies: number[] = [];
  const finished = Promise.withResolvers<void>();
  /** Walkers with a step to send, from `readyHead` on. */
  const ready: Walker[] = [...walkers];
  let readyHead = 0;
  let inFlight = 0;
  let lastAnswerAt = 0;

  function sample(text: string): void {
    if (r.wrongSamples.length < SAMPLES) r.wrongSamples.push(text);
  }

  // Sends go out one at a time per socket: Deno does not keep the call
  // order of concurrent sends on one socket.
  const queues = sockets.map(() => [] as Uint8Array[]);
  const pumping = sockets.map(() => false);
  async function pump(s: number): Promise<void> {
    if (pumping[s]) return;
    pumping[s] = true;
    const q = queues[s]!;
    while (q.length > 0) {
      try {
        await sockets[s]!.send(q.shift()!, server);
      } catch {
        // A refused send is retransmitted after the timeout.
      }
    }
    pumping[s] = false;
  }
  function send(w: Walker): void {
    const now = performance.now();
    if (w.sends === 0) w.firstSentAt = now;
    else r.retransmissions++;
    w.lastSentAt = now;
    w.sends++;
    queues[w.socket]!.push(w.steps[w.at]!.bytes);
    pump(w.socket);
  }
  /** Sends the next steps of ready walkers while the window has room. */
  function fill(): void {
    while (inFlight < window && readyHead < ready.length) {
      const w = ready[readyHead++]!;
      w.inFlight = true;
      w.sends = 0;
      inFlight++;
      r.requests++;
      send(w);
    }
    if (readyHead > 4096) {
      ready.splice(0, readyHead);
      readyHead = 0;
    }
    if (r.completedGroups + r.failedGroups === count) finished.resolve();
  }
  function fail(w: Walker, why: string): void {
    w.failed = why;
    if (w.inFlight) inFlight--;
    w.inFlight = false;
    r.failedGroups++;
    sample(`${w.group.name}: ${why}`);
  }

  async function onAnswer(data: Uint8Array): Promise<void> {
    const text = new TextDecoder().decode(data).trim();
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(text, hmac, {
        algorithms: ["HS256"],
        issuer: AUDIENCE,
      }));
    } catch (e) {
      r.wrong++;
      sample(`unverifiable answer: ${e}: ${text.slice(0, 80)}`);
      return;
    }
    const hit = byId.get(String(claims.id_request));
    if (!hit) {
      r.unmatched++;
      return;
    }
    const [w, step] = hit;
    if (w.failed || !w.inFlight || w.steps[w.at] !== step) {
      r.duplicates++; // an answer to a retransmission already answered
      return;
    }
    const want = expected(step.sn);
    if (
      claims.error !== undefined || claims.sub !== w.group.name ||
      claims.next_number !== want
    ) {
      r.wrong++;
      fail(
        w,
        `step ${step.sn}: expected next_number ${want}, got ${
          JSON.stringify(claims)
        }`,
      );
    } else {
      const now = performance.now();
      lastAnswerAt = now;
      latencies.push(now - w.firstSentAt);
      r.answers++;
      w.inFlight = false;
      inFlight--;
      w.at++;
      if (w.at === STATES) r.completedGroups++;
      else ready.push(w);
    }
    fill();
  }

  const receivers = sockets.map(async (conn) => {
    while (true) {
      let data: Uint8Array;
      try {
        [data] = await conn.receive();
      } catch {
        return; // closed
      }
      onAnswer(data).catch((e) => sample(`answer: ${e}`));
    }
  });
  const retransmit = setInterval(() => {
    const now = performance.now();
    for (const w of walkers) {
      if (!w.inFlight || now - w.lastSentAt < RETRANSMIT_MS) continue;
      if (w.sends >= MAX_SENDS) {
        fail(w, `step ${w.at}: no answer after ${MAX_SENDS} sends`);
        continue;
      }
      send(w);
    }
    fill();
  }, 100);
  const udpBefore = await rcvbufErrors();
  const start = performance.now();
  const deadline = setTimeout(finished.resolve, WALK_TIMEOUT_MS);
  fill();
  await finished.promise;
  clearTimeout(deadline);
  clearInterval(retransmit);
  for (const w of walkers) {
    if (!w.failed && w.at < STATES) fail(w, `step ${w.at}: walk timed out`);
  }
  for (const s of sockets) s.close();
  await Promise.all(receivers);
  const udpAfter = await rcvbufErrors();
  if (udpBefore !== undefined && udpAfter !== undefined) {
    r.rcvbufErrors = udpAfter - udpBefore;
  }
  r.walkSec = ((lastAnswerAt || performance.now()) - start) / 1000;
  r.answersPerSec = r.answers / r.walkSec;
  latencies.sort((a, b) => a - b);
  r.latencyMs = {
    p50: percentile(latencies, 0.5),
    p90: percentile(latencies, 0.9),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? NaN,
  };
  return r;
}
