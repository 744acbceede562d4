/**
 * The requests of a load run, signed before the clock starts: which groups
 * take part, how many tokens each walks, and the tokens themselves (each
 * with a fresh random `jti`, signed concurrently: WebCrypto signs on a
 * thread pool).
 *
 * @module
 */

import { colourOf } from "../../lib/protocol/fsm.ts";
import { AUDIENCE } from "../../lib/protocol/token.ts";
import { type AnyAlg as Alg, b64url, SIGN_PARAMS } from "../_keys.ts";
import { groupName, type Lab } from "./lab.ts";
import {
  CYCLE_REPLAY_CACHE,
  MODE_ALGS,
  type Options,
  replayCacheArg,
  UsageError,
} from "./options.ts";

/**
 * Answers per second assumed when sizing `--tokens`: per algorithm at a wide
 * window, and per outstanding datagram (measured on a 2-core lab machine with
 * the OpenSSL verify backend; a faster server exhausts the tokens early).
 */
const RATE_GUESS: Record<Alg, number> = {
  RS256: 3000,
  ES256: 2500,
  // Guesses from the bench rows' verify times (deno task bench).
  RS384: 3000,
  RS512: 3000,
  PS256: 3000,
  PS384: 3000,
  PS512: 3000,
  ES384: 1200,
  ES512: 800,
  EdDSA: 3000,
};
const RATE_PER_OUTSTANDING = 400;

/** One pre-signed request. */
export interface Signed {
  /** The datagram. */
  bytes: Uint8Array;
  /** The `id_request` its answer carries. */
  id: string;
  /** Its `seq_state_number`. */
  sn: number;
}

/** A group taking part: its name, algorithm and tokens in walk order. */
export interface GroupPlan {
  /** The group name (the token's `sub`). */
  name: string;
  /** Its algorithm. */
  alg: Alg;
  /** Its tokens, in walk order. */
  tokens: Signed[];
}

const encoder = new TextEncoder();

/** What {@linkcode requestClaims} needs besides the group. */
export interface ClaimOptions {
  /** The group's index in the run (sets its `registration`). */
  index: number;
  /** The `seq_state_number`. */
  sn: number;
  /** `iat`, in seconds. */
  nowSec: number;
  /** The lifetime, in seconds. */
  expSec: number;
}

/**
 * The claims of one request of a group's walk, with a fresh random `jti`.
 *
 * @param group The group name.
 * @param request The event and the times.
 * @returns The claims.
 */
export function requestClaims(
  group: string,
  request: ClaimOptions,
): Record<string, unknown> {
  const { index, sn, nowSec, expSec } = request;
  return {
    sub: group,
    aud: AUDIENCE,
    iat: nowSec,
    exp: nowSec + expSec,
    jti: crypto.getRandomValues(new Uint8Array(16)).toHex(),
    seq_state_number: sn,
    seq_state: colourOf(sn),
    seq_max: 2,
    registration: 20250000 + index,
  };
}

/**
 * Signs claims into a compact JWS and computes its `id_request`.
 *
 * @param claims The payload.
 * @param alg The algorithm.
 * @param key The private key.
 * @returns The datagram, its `id_request` and `seq_state_number`.
 */
export async function signToken(
  claims: Record<string, unknown>,
  alg: Alg,
  key: CryptoKey,
): Promise<Signed> {
  const header = b64url(encoder.encode(JSON.stringify({ alg, typ: "JWT" })));
  const payloadBytes = encoder.encode(JSON.stringify(claims));
  const input = `${header}.${b64url(payloadBytes)}`;
  const [sig, digest] = await Promise.all([
    crypto.subtle.sign(SIGN_PARAMS[alg], key, encoder.encode(input)),
    crypto.subtle.digest("SHA-256", payloadBytes),
  ]);
  return {
    bytes: encoder.encode(`${input}.${b64url(new Uint8Array(sig))}`),
    id: new Uint8Array(digest).toHex(),
    sn: claims.seq_state_number as number,
  };
}

/** Options of {@linkcode presign}. */
export interface PresignOptions {
  /** FSM states of the server (a walk's length). */
  states: number;
  /** Token lifetime, in seconds. */
  expSec: number;
  /** Receives a progress line every 2 s. */
  progress: (line: string) => void;
}

/**
 * Signs every group's walk, many signatures at once.
 *
 * @param plans The groups and how many tokens each gets.
 * @param lab The lab holding the private keys.
 * @param options Walk length, lifetime and progress output.
 * @returns The groups with their tokens, and the seconds signing took.
 */
export async function presign(
  plans: { name: string; alg: Alg; count: number }[],
  lab: Lab,
  options: PresignOptions,
): Promise<{ groups: GroupPlan[]; seconds: number }> {
  const { progress } = options;
  const nowSec = Math.floor(Date.now() / 1000);
  const total = plans.reduce((n, p) => n + p.count, 0);
  const groups: GroupPlan[] = plans.map((p) => ({
    name: p.name,
    alg: p.alg,
    tokens: new Array<Signed>(p.count),
  }));
  const jobs: [number, number][] = [];
  const longest = Math.max(...plans.map((p) => p.count));
  for (let k = 0; k < longest; k++) {
    plans.forEach((p, g) => {
      if (k < p.count) jobs.push([g, k]);
    });
  }
  const started = performance.now();
  let next = 0;
  let done = 0;
  let lastReport = started;
  const worker = async () => {
    while (next < jobs.length) {
      const [g, k] = jobs[next++]!;
      const plan = groups[g]!;
      const claims = requestClaims(plan.name, {
        index: g,
        sn: k % options.states,
        nowSec,
        expSec: options.expSec,
      });
      plan.tokens[k] = await signToken(
        claims,
        plan.alg,
        lab.privateKeys.get(plan.alg)!,
      );
      done++;
      const now = performance.now();
      if (now - lastReport > 2000) {
        lastReport = now;
        progress(
          `  signed ${done}/${total} (${
            Math.round(done / ((now - started) / 1000))
          }/s)`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return { groups, seconds: (performance.now() - started) / 1000 };
}

/**
 * How many groups of each algorithm the mode uses.
 *
 * @param options The mode, `--groups` and the walker's algorithm.
 * @returns Groups per algorithm.
 */
export function groupsFor(
  options: Pick<Options, "mode" | "groups" | "walkerAlg">,
): Map<Alg, number> {
  const single = MODE_ALGS[options.mode];
  if (single) return new Map([[single, options.groups]]);
  switch (options.mode) {
    case "rs256":
      return new Map([["RS256", options.groups], ["ES256", 0]]);
    case "es256":
      return new Map([["RS256", 0], ["ES256", options.groups]]);
    case "mixed":
      return new Map([
        ["RS256", Math.ceil(options.groups / 2)],
        ["ES256", Math.floor(options.groups / 2)],
      ]);
    case "flood":
      return new Map([
        ["RS256", options.walkerAlg === "RS256" ? 1 : 0],
        ["ES256", options.walkerAlg === "ES256" ? 1 : 0],
      ]);
    default:
      throw new Error(`mode ${options.mode} has no algorithm`);
  }
}

/**
 * The groups of the run, interleaved by algorithm in mixed mode.
 *
 * @param counts Groups per algorithm.
 * @returns The groups in sending order.
 */
export function groupOrder(
  counts: Map<Alg, number>,
): { name: string; alg: Alg }[] {
  const out: { name: string; alg: Alg }[] = [];
  const most = Math.max(0, ...counts.values());
  for (let i = 0; i < most; i++) {
    for (const [alg, count] of counts) {
      if (i < count) out.push({ name: groupName(alg, i), alg });
    }
  }
  return out;
}

/**
 * Tokens per group: enough for the run, a whole number of walks.
 *
 * @param options The load flags that size the pool.
 * @param order The groups of the run.
 * @returns Tokens per group.
 * @throws {UsageError} When `--cycle` gets too few `--tokens`.
 */
export function tokensPerGroup(
  options: Pick<
    Options,
    | "states"
    | "tokens"
    | "mode"
    | "walkerRate"
    | "seconds"
    | "cycle"
    | "window"
    | "serverArgs"
  >,
  order: { alg: Alg }[],
): number {
  const walk = options.states;
  const g = order.length;
  let total: number;
  if (options.tokens !== undefined) {
    total = options.tokens;
  } else if (options.mode === "flood") {
    total = Math.ceil(options.walkerRate * options.seconds * 1.05) + walk;
  } else if (options.cycle) {
    total = 0; // the minimum below
  } else {
    const mix = order.reduce((n, o) => n + RATE_GUESS[o.alg], 0) / g;
    const rate = Math.min(mix, options.window * RATE_PER_OUTSTANDING);
    total = Math.ceil(rate * options.seconds);
  }
  if (options.cycle) {
    const cache = replayCacheArg(options.serverArgs) ?? CYCLE_REPLAY_CACHE;
    const window = options.mode === "flood" ? 1 : options.window;
    const minimum = 2 * (cache + window);
    if (options.tokens !== undefined && options.tokens < minimum) {
      throw new UsageError(
        `--cycle needs --tokens of at least ${minimum} (2 x (replay cache ${cache} + window ${window})) so every token is evicted before it comes round again`,
      );
    }
    total = Math.max(total, minimum);
  }
  return Math.max(1, Math.ceil(total / g / walk)) * walk;
}
