/**
 * A fake network for the client tests: its "server" is the real
 * `handlePacket` with a pinned clock, and its clock moves only as the client
 * waits, so retries and timeouts run without real time passing.
 *
 * @module
 */

import type { ClientSocket } from "../../lib/client/socket.ts";
import { handlePacket, type PacketResult } from "../../lib/protocol/handler.ts";
import { MemoryStore } from "../../lib/state/store.ts";
import { vectorContext } from "../_helpers.ts";

/** The fake clock's start, in epoch milliseconds. */
export const T0 = 1_800_000_000_000;

/** Options of {@linkcode FakeNet}. */
export interface FakeNetOptions {
  /** Whether the i-th datagram sent (from 0) is lost on the way. */
  dropSend?: (i: number) => boolean;
  /** Whether the answer to the i-th datagram sent is lost. */
  dropAnswer?: (i: number) => boolean;
  /** One-way latency in ms. */
  latencyMs?: number;
  /** The server's store (default a fresh one). */
  store?: MemoryStore;
}

/**
 * A network with a fake clock: sending hands the datagram to `handlePacket`
 * at once; `receive` advances the clock to the answer or by the timeout.
 */
export class FakeNet implements ClientSocket {
  t = T0;
  readonly sent: Uint8Array[] = [];
  readonly waits: number[] = [];
  readonly outcomes: PacketResult["outcome"][] = [];
  readonly replies: Uint8Array[] = [];
  #inbox: { at: number; data: Uint8Array }[] = [];
  #options: FakeNetOptions;
  #ctx: Awaited<ReturnType<typeof vectorContext>> | undefined;

  constructor(options?: FakeNetOptions) {
    this.#options = options ?? {};
  }

  now = (): number => this.t;

  async #context() {
    this.#ctx ??= await vectorContext(T0 / 1000, {
      now: () => new Date(this.t),
      store: this.#options.store ?? new MemoryStore(),
    });
    return this.#ctx;
  }

  /** Puts a datagram in the inbox, as if it arrived `afterMs` from now. */
  inject(data: Uint8Array, afterMs = 0): void {
    this.#inbox.push({ at: this.t + afterMs, data });
    this.#inbox.sort((a, b) => a.at - b.at);
  }

  async send(data: Uint8Array): Promise<void> {
    const i = this.sent.length;
    this.sent.push(data.slice());
    if (this.#options.dropSend?.(i)) return;
    const result = await handlePacket(data.slice(), await this.#context());
    this.outcomes.push(result.outcome);
    if (result.reply) this.replies.push(result.reply);
    if (result.reply && !this.#options.dropAnswer?.(i)) {
      this.inject(result.reply, 2 * (this.#options.latencyMs ?? 1));
    }
  }

  receive(timeoutMs: number): Promise<Uint8Array | undefined> {
    this.waits.push(timeoutMs);
    const next = this.#inbox[0];
    if (next && next.at <= this.t + timeoutMs) {
      this.t = Math.max(this.t, next.at);
      this.#inbox.shift();
      return Promise.resolve(next.data);
    }
    this.t += timeoutMs;
    return Promise.resolve(undefined);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
