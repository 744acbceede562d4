/**
 * Retries of the reference client: how long to wait for an answer before
 * each retransmission (a timeout that doubles, with jitter, up to a cap), and
 * a small seeded random generator so that simulated loss and jitter repeat
 * for a given seed.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./retry.ts";
 * backoffDelay(3, () => 0.5, { initialTimeoutMs: 500 }); // 4000
 * ```
 *
 * @module
 */

/** How requests are retried. */
export interface RetryOptions {
  /**
   * The first wait for an answer, in milliseconds.
   * @default {500}
   */
  initialTimeoutMs?: number;
  /**
   * The longest wait before jitter, in milliseconds.
   * @default {4000}
   */
  maxTimeoutMs?: number;
  /**
   * Retransmissions of one request before the walk gives up.
   * @default {10}
   */
  retries?: number;
  /**
   * Relative jitter: each wait is scaled by a random factor in
   * `[1 - jitter, 1 + jitter)`.
   * @default {0.25}
   */
  jitter?: number;
}

/**
 * How long to wait for an answer before retransmission number `attempt`
 * (0 for the first transmission): `initialTimeoutMs · 2^attempt`, capped at
 * `maxTimeoutMs`, times a jitter factor in `[1 - jitter, 1 + jitter)` so that
 * clients that lost answers together do not retry in lockstep.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./retry.ts";
 * backoffDelay(0, () => 0.5); // 500
 * backoffDelay(10, () => 0.5); // 4000 (the cap)
 * backoffDelay(0, () => 0); // 375 (jitter 0.25)
 * ```
 *
 * @param attempt The number of transmissions so far minus one.
 * @param random A uniform random number in [0, 1).
 * @param options The timeouts and jitter.
 * @returns The wait in milliseconds.
 */
export function backoffDelay(
  attempt: number,
  random: () => number,
  options?: RetryOptions,
): number {
  const { initialTimeoutMs = 500, maxTimeoutMs = 4000, jitter = 0.25 } =
    options ?? {};
  const base = Math.min(maxTimeoutMs, initialTimeoutMs * 2 ** attempt);
  return base * (1 + jitter * (2 * random() - 1));
}

/**
 * A small seeded pseudo-random generator (mulberry32), for reproducible
 * simulated loss and jitter. Not for secrets.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./retry.ts";
 * const a = seededRandom(42);
 * const b = seededRandom(42);
 * a() === b(); // true: one seed, one sequence
 * ```
 *
 * @param seed Any 32-bit integer.
 * @returns A function giving uniform numbers in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
