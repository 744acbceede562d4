/**
 * `GET /events`: the Server-Sent Events stream the dashboard lives on.
 *
 * - `hello`, on each connection: the status object of `/api/status`.
 * - `group`: `{group, state, colour, walks, lastActivity, registration}`
 *   (and `seqMax`, M, for a profile v1 group, whose colour is `-`),
 *   once per group that had a step accepted since the last flush.
 * - `summary`, each second: `{at, totals, perSecond, errors, health}`.
 *
 * Updates are coalesced: the hub flushes every `flushMs` (100 ms, so at most
 * ten writes a second per client), a group that moved several times in
 * between is sent once with its latest state, and every client gets the same
 * bytes. The number of clients is bounded, and a client that stops reading
 * is dropped once its queue is `maxQueued` flushes deep, never buffered
 * without limit.
 *
 * @module
 */

import { colourOf } from "../protocol/fsm.ts";
import type { LiveView, Monitor } from "./monitor.ts";

/** Options of {@linkcode EventHub}. */
export interface EventHubOptions {
  /**
   * Clients at once; more get a 503.
   * @default {32}
   */
  maxClients?: number;
  /**
   * Flushes queued for one client before it is dropped as too slow.
   * @default {50}
   */
  maxQueued?: number;
  /**
   * How often group changes are sent, in milliseconds.
   * @default {100}
   */
  flushMs?: number;
  /**
   * How often the summary is sent, in milliseconds.
   * @default {1000}
   */
  summaryMs?: number;
  /**
   * The reconnection delay announced to clients, in milliseconds.
   * @default {2000}
   */
  retryMs?: number;
}

const encoder = new TextEncoder();

/** One Server-Sent Events message (JSON never holds a raw newline). */
function message(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The fan-out of live updates to `/events` clients. */
export class EventHub {
  #view: LiveView;
  #monitor: Monitor;
  #maxClients: number;
  #maxQueued: number;
  #flushMs: number;
  #summaryMs: number;
  #retryMs: number;
  #clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastSummary = 0;
  #lastCounts = new Map<string, number>();
  #closed = false;
  /** Clients dropped for not reading, since the start. */
  dropped = 0;

  /**
   * @param view The running server.
   * @param monitor Where group changes and error counts come from.
   * @param options Limits and intervals.
   */
  constructor(view: LiveView, monitor: Monitor, options?: EventHubOptions) {
    this.#view = view;
    this.#monitor = monitor;
    this.#maxClients = options?.maxClients ?? 32;
    this.#maxQueued = options?.maxQueued ?? 50;
    this.#flushMs = options?.flushMs ?? 100;
    this.#summaryMs = options?.summaryMs ?? 1000;
    this.#retryMs = options?.retryMs ?? 2000;
  }

  /** Connected clients. */
  get clients(): number {
    return this.#clients.size;
  }

  /**
   * Opens a stream for a new client, starting with `hello`.
   *
   * @returns The response body, or undefined when the hub is full or closed.
   */
  connect(): ReadableStream<Uint8Array> | undefined {
    if (this.#closed || this.#clients.size >= this.#maxClients) return;
    let self: ReadableStreamDefaultController<Uint8Array>;
    const first = `retry: ${this.#retryMs}\n\n` +
      message("hello", this.#view.status());
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        self = c;
        c.enqueue(encoder.encode(first));
        this.#clients.add(c);
        if (this.#clients.size === 1) this.#start();
      },
      cancel: () => this.#remove(self),
    }, new CountQueuingStrategy({ highWaterMark: 1 }));
  }

  /** Ends every stream and stops the timer. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#clients]) {
      this.#remove(c);
      try {
        c.close();
      } catch {
        // Already closed or errored.
      }
    }
  }

  #start(): void {
    // Changes queued while nobody watched are in each client's hello.
    this.#monitor.takeChanges();
    this.#lastCounts = new Map(this.#view.counts());
    this.#lastSummary = performance.now();
    this.#timer = setInterval(() => this.#flush(), this.#flushMs);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  #remove(c: ReadableStreamDefaultController<Uint8Array>): void {
    if (!this.#clients.delete(c)) return;
    if (this.#clients.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Sends what changed since the last flush, and the summary when due. */
  #flush(): void {
    let text = "";
    const records = this.#view.records();
    for (const change of this.#monitor.takeChanges()) {
      const r = records.get(change.group);
      text += message("group", {
        group: change.group,
        state: change.state,
        // Profile v1 groups (with an M) have no rainbow colour.
        colour: r?.seqMax === undefined ? colourOf(change.state) : "-",
        ...(r?.seqMax === undefined ? {} : { seqMax: r.seqMax }),
        walks: r ? r.walkCount ?? r.walks.length : 0,
        lastActivity: r?.lastActivity ?? null,
        registration: change.registration,
      });
    }
    const now = performance.now();
    if (now - this.#lastSummary >= this.#summaryMs - this.#flushMs / 2) {
      text += message("summary", this.#summary(now));
    }
    if (text === "") return;
    const bytes = encoder.encode(text);
    for (const c of [...this.#clients]) {
      // desiredSize falls by one per queued flush the client has not read.
      if ((c.desiredSize ?? 0) < -this.#maxQueued) {
        this.dropped++;
        this.#remove(c);
        c.error(new Error("too slow: dropped"));
        continue;
      }
      c.enqueue(bytes);
    }
  }

  #summary(now: number): Record<string, unknown> {
    const counts = this.#view.counts();
    const seconds = (now - this.#lastSummary) / 1000;
    const perSecond: Record<string, number> = {};
    for (const [outcome, n] of counts) {
      const d = n - (this.#lastCounts.get(outcome) ?? 0);
      if (d > 0) perSecond[outcome] = Math.round(d / seconds * 10) / 10;
    }
    this.#lastCounts = new Map(counts);
    this.#lastSummary = now;
    return {
      at: new Date().toISOString(),
      totals: Object.fromEntries(counts),
      perSecond,
      errors: this.#monitor.errorsByGroup(),
      health: this.#view.health(),
    };
  }
}
