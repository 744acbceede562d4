/**
 * Per-source token buckets for error answers (docs/protocol.md, "Transport"). Time comes in
 * as an argument; the table of sources is bounded.
 *
 * @example
 * ```ts
 * import { ErrorBudget } from "./rate_limit.ts";
 * const budget = new ErrorBudget({ rate: 50, burst: 100 });
 * budget.available("192.0.2.1", 0); // true
 * ```
 *
 * @module
 */

/** Options of {@linkcode ErrorBudget}. */
export interface ErrorBudgetOptions {
  /**
   * Tokens added per second.
   * @default {50}
   */
  rate?: number;
  /**
   * Bucket size.
   * @default {100}
   */
  burst?: number;
  /**
   * Most sources tracked at once; past it, the least recently used is forgotten.
   * @default {65536}
   */
  maxSources?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets keyed by source address. */
export class ErrorBudget {
  #rate: number;
  #burst: number;
  #maxSources: number;
  #buckets = new Map<string, Bucket>();

  /** @param options Rate, burst and table size. */
  constructor(options?: ErrorBudgetOptions) {
    const { rate = 50, burst = 100, maxSources = 65536 } = options ?? {};
    this.#rate = rate;
    this.#burst = burst;
    this.#maxSources = maxSources;
  }

  #refill(source: string, nowMs: number): Bucket | undefined {
    const b = this.#buckets.get(source);
    if (!b) return undefined;
    b.tokens = Math.min(
      this.#burst,
      // A clock that went back refills nothing and takes nothing away.
      b.tokens + Math.max(0, nowMs - b.at) / 1000 * this.#rate,
    );
    b.at = nowMs;
    return b;
  }

  /**
   * Whether `source` may get an error answer now.
   *
   * @param source The source address.
   * @param nowMs The clock, in milliseconds.
   * @returns True while the bucket holds a token.
   */
  available(source: string, nowMs: number): boolean {
    return (this.#refill(source, nowMs)?.tokens ?? this.#burst) >= 1;
  }

  /**
   * Spends one token of `source`, if it has one.
   *
   * @param source The source address.
   * @param nowMs The clock, in milliseconds.
   * @returns True when a token was spent, false when the bucket is empty.
   */
  take(source: string, nowMs: number): boolean {
    const b = this.#refill(source, nowMs) ?? { tokens: this.#burst, at: nowMs };
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    // Re-insert so the Map's order is least recently used first.
    this.#buckets.delete(source);
    if (this.#buckets.size >= this.#maxSources) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    this.#buckets.set(source, b);
    return ok;
  }

  /** The number of sources tracked. */
  get size(): number {
    return this.#buckets.size;
  }
}
