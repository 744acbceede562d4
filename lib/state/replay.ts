/**
 * The retransmission cache of docs/protocol.md, "Retransmissions and replays": answers by exact token text,
 * and the `jti`s seen per group, both kept until the token's `exp` plus the
 * leeway and bounded by a hard cap. Time comes in as an argument.
 *
 * @example
 * ```ts
 * import { ReplayCache } from "./replay.ts";
 * const cache = new ReplayCache({ maxEntries: 1000 });
 * cache.add({ token: "a.b.c", group: "G", jti: "1", reply: null, expiresAt: 100 });
 * cache.lookup("a.b.c", 50)?.reply; // null: answered with nothing
 * ```
 *
 * @module
 */

/** One answered token. */
export interface ReplayEntry {
  /** The compact JWS, whitespace trimmed. */
  token: string;
  /** The upper-case group. */
  group: string;
  /** The token's `jti`. */
  jti: string;
  /** The answer sent, or null when none was (NO ACTION). */
  reply: Uint8Array | null;
  /** Seconds since the epoch after which the entry is forgotten. */
  expiresAt: number;
  /** Resolves once the answer may be sent (its transition is durable). */
  ready?: Promise<void>;
}

/** Options of {@linkcode ReplayCache}. */
export interface ReplayCacheOptions {
  /**
   * The most entries kept; past it the oldest are evicted.
   * @default {20000}
   */
  maxEntries?: number;
}

/** Answers to recently seen tokens, by token and by group and `jti`. */
export class ReplayCache {
  #byToken = new Map<string, ReplayEntry>();
  #byJti = new Map<string, ReplayEntry>();
  #maxEntries: number;
  /** Entries evicted by the cap before they expired. */
  evicted = 0;

  /** @param options The cap. */
  constructor(options?: ReplayCacheOptions) {
    this.#maxEntries = options?.maxEntries ?? 20_000;
  }

  /** The number of entries. */
  get size(): number {
    return this.#byToken.size;
  }

  /**
   * The entry for an identical token, if it has not expired.
   *
   * @param token The trimmed token text.
   * @param nowSec The clock, in seconds.
   * @returns The entry, or undefined.
   */
  lookup(token: string, nowSec: number): ReplayEntry | undefined {
    const e = this.#byToken.get(token);
    if (!e) return undefined;
    if (e.expiresAt < nowSec) {
      this.#delete(e);
      return undefined;
    }
    return e;
  }

  /**
   * Whether a group's `jti` was seen in an unexpired token.
   *
   * @param group The upper-case group.
   * @param jti The `jti`.
   * @param nowSec The clock, in seconds.
   * @returns True when seen.
   */
  hasJti(group: string, jti: string, nowSec: number): boolean {
    const e = this.#byJti.get(`${group}\u0000${jti}`);
    if (!e) return false;
    if (e.expiresAt < nowSec) {
      this.#delete(e);
      return false;
    }
    return true;
  }

  /**
   * Adds an entry, evicting expired ones and, past the cap, the oldest.
   *
   * @param entry The answered token.
   * @param nowSec The clock, in seconds (for the sweep of expired entries).
   */
  add(entry: ReplayEntry, nowSec?: number): void {
    const old = this.#byToken.get(entry.token);
    if (old) this.#delete(old);
    this.#byToken.set(entry.token, entry);
    this.#byJti.set(`${entry.group}\u0000${entry.jti}`, entry);
    // Oldest first: expired entries at the front go at once; the cap bounds
    // the rest whatever the expiry times are.
    for (const e of this.#byToken.values()) {
      const full = this.#byToken.size > this.#maxEntries;
      if (!full && (nowSec === undefined || e.expiresAt >= nowSec)) break;
      if (full && e.expiresAt >= (nowSec ?? -Infinity)) this.evicted++;
      this.#delete(e);
    }
  }

  /**
   * The unexpired entries, oldest first (for snapshots).
   *
   * @param nowSec The clock, in seconds.
   * @returns The entries.
   */
  entries(nowSec: number): ReplayEntry[] {
    return [...this.#byToken.values()].filter((e) => e.expiresAt >= nowSec);
  }

  /**
   * Forgets an entry and its `jti` (an answer that must not go out after
   * all), unless a newer entry for the same token replaced it.
   *
   * @param entry The entry added before.
   */
  remove(entry: ReplayEntry): void {
    if (this.#byToken.get(entry.token) === entry) this.#delete(entry);
  }

  #delete(e: ReplayEntry): void {
    this.#byToken.delete(e.token);
    const key = `${e.group}\u0000${e.jti}`;
    if (this.#byJti.get(key) === e) this.#byJti.delete(key);
  }
}
