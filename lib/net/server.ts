/**
 * The UDP receive/send loop around {@linkcode handlePacket}: one reused
 * receive buffer, each datagram copied before it is handled, bounded work in
 * flight, per-source error budgets, and a log record per datagram (written
 * to a {@linkcode DatagramLog}, which must neither throw nor wait). Nothing a
 * datagram contains can stop the loop.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { colourOf } from "../protocol/fsm.ts";
import {
  handlePacket,
  type HandlerContext,
  type PacketResult,
} from "../protocol/handler.ts";
import { ErrorBudget } from "./rate_limit.ts";
import { type KeyRing, mergeReload } from "../keys/key_ring.ts";

/** Options of {@linkcode UdpServer}. */
export interface ServerOptions {
  /**
   * Larger datagrams are dropped.
   * @default {8192}
   */
  maxDatagram?: number;
  /**
   * Error answers per second per source address.
   * @default {50}
   */
  errorRate?: number;
  /**
   * Burst of error answers per source address.
   * @default {100}
   */
  errorBurst?: number;
  /**
   * Datagrams handled concurrently before the loop waits.
   * @default {512}
   */
  maxInFlight?: number;
  /**
   * How often the counts of the last interval are logged, in milliseconds.
   * @default {60000}
   */
  summaryMs?: number;
}

/** The fields of a per-datagram record, in the order the file shows them. */
export interface DatagramRecord {
  /** The source address. */
  peer: string;
  /** The source port; null in a summed rate-limit record. */
  port: number | null;
  /** The datagram's size (summed in a rate-limit record). */
  bytes: number;
  /** The upper-case group, or null. */
  group: string | null;
  /** The outcome. */
  outcome: string;
  /** The error code behind a `dropped:` outcome. */
  error?: string | undefined;
  /** The reason for an error or for no answer. */
  detail?: string | undefined;
  /** Datagrams summed into a rate-limit record. */
  count?: number;
  /** The event, or null. */
  "seq_state_number": number | null;
  /** The number answered, or null. */
  "next_number": number | null;
  /** The registration number, or null. */
  registration: number | null;
  /** Microseconds from receipt to the record, or null. */
  us: number | null;
}

/** Where the server writes its per-datagram records. */
export interface DatagramLog {
  /** Records one datagram (or a sum of rate-limited ones). */
  write(r: DatagramRecord): void;
}

/**
 * Datagrams in flight from which the server counts as busy: ECDSA
 * verifications then go to Deno's thread pool (a second core) instead of
 * running at once on the main thread. At W=1 none are in flight; under load
 * tens are (most waiting for the journal's fdatasync).
 */
const BUSY = 4;

/** The largest UDP payload; the receive buffer holds any datagram whole. */
const RECEIVE_BUFFER = 65536;

/** Serves the protocol on one datagram socket. */
export class UdpServer {
  #conn: Deno.DatagramConn;
  #ctx: HandlerContext;
  #log: Logger;
  #datagramLog: DatagramLog;
  #maxDatagram: number;
  #maxInFlight: number;
  #budget: ErrorBudget;
  /** Datagrams handed to #serve and not yet answered or dropped. */
  #inFlight = 0;
  /** Resolved when #inFlight drops below the limit (the loop waits on it). */
  #room: PromiseWithResolvers<void> | undefined;
  /** Resolved when #inFlight reaches 0 (close waits on it). */
  #drained: PromiseWithResolvers<void> | undefined;
  #closed = false;
  #loopEnded = false;
  #loop: Promise<void> | undefined;
  #summaryMs: number;
  #summaryTimer: ReturnType<typeof setInterval> | undefined;
  #reported = new Map<string, number>();
  #limited = new Map<string, { count: number; bytes: number }>();
  #limitedTimer: ReturnType<typeof setInterval> | undefined;
  /** Datagrams by outcome (`ok`, error codes, `no_action`, `dropped:*`). */
  readonly counts: Map<string, number> = new Map();
  /**
   * Told of every datagram once it is answered or dropped, with the seconds
   * since it was received (the HTTP side's monitor).
   */
  observer: ((r: PacketResult, seconds: number) => void) | undefined;

  /**
   * @param conn A bound datagram socket; the server owns it from now on.
   * @param ctx The handler context.
   * @param loggers The event logger and the per-datagram log.
   * @param options Limits.
   */
  constructor(
    conn: Deno.DatagramConn,
    ctx: HandlerContext,
    loggers: { events: Logger; datagrams: DatagramLog },
    options?: ServerOptions,
  ) {
    const {
      maxDatagram = 8192,
      errorRate = 50,
      errorBurst = 100,
      maxInFlight = 512,
      summaryMs = 60_000,
    } = options ?? {};
    this.#summaryMs = summaryMs;
    this.#conn = conn;
    this.#ctx = ctx;
    this.#log = loggers.events;
    this.#datagramLog = loggers.datagrams;
    this.#maxDatagram = maxDatagram;
    this.#maxInFlight = maxInFlight;
    this.#budget = new ErrorBudget({ rate: errorRate, burst: errorBurst });
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#conn.addr as Deno.NetAddr;
  }

  /** Datagrams being handled now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Whether the receive loop is running (started, not closed, not ended). */
  get receiving(): boolean {
    return this.#loop !== undefined && !this.#closed && !this.#loopEnded;
  }

  /** The handler context (keys can be swapped in place). */
  get context(): HandlerContext {
    return this.#ctx;
  }

  /**
   * Reloads the groups' keys without a restart (SIGHUP): a group whose file
   * became unusable keeps its previous key, and the swap takes effect from the
   * next datagram. A failed load keeps every key. Never throws.
   *
   * @param dir The keys directory, for the log.
   * @param load Loads the keys afresh.
   */
  async reloadKeys(dir: string, load: () => Promise<KeyRing>): Promise<void> {
    let fresh: KeyRing;
    try {
      fresh = await load();
    } catch (e) {
      this.#log.error("Reload of {dir} failed, keeping every key: {error}", {
        dir,
        error: String(e),
      });
      return;
    }
    const r = mergeReload(this.#ctx.keys, fresh);
    this.#ctx.keys = r.groups;
    for (const s of r.kept) {
      this.#log.warn(
        "Reload: {file} is unusable ({reason}); keeping the previous key",
        { ...s },
      );
    }
    for (const s of fresh.skipped) {
      if (!r.kept.includes(s)) {
        this.#log.warn("Reload: skipped {file}: {reason}", { ...s });
      }
    }
    this.#log.info(
      "Reloaded {dir}: {count} groups; added {added}, changed {changed}, removed {removed}",
      {
        dir,
        count: r.groups.size,
        added: r.added,
        changed: r.changed,
        removed: r.removed,
      },
    );
  }

  /** Starts the receive loop; resolves when the server is closed. */
  run(): Promise<void> {
    if (!this.#loop) {
      this.#summaryTimer = setInterval(
        () => this.#summary(),
        this.#summaryMs,
      );
      Deno.unrefTimer(this.#summaryTimer as unknown as number);
      this.#limitedTimer = setInterval(() => this.#flushLimited(), 1000);
      Deno.unrefTimer(this.#limitedTimer as unknown as number);
      this.#loop = this.#receiveLoop().finally(() => {
        this.#loopEnded = true;
      });
    }
    return this.#loop;
  }

  /** Logs what happened since the last summary, if anything did. */
  #summary(): void {
    const delta: Record<string, number> = {};
    let total = 0;
    for (const [outcome, n] of this.counts) {
      const d = n - (this.#reported.get(outcome) ?? 0);
      if (d > 0) delta[outcome] = d;
      total += d;
    }
    const health = this.#ctx.store.health;
    if (!health.writable) {
      this.#log.warn(
        "State not writable since {since}: {error}; {refused} steps refused in all",
        {
          since: health.since?.toISOString(),
          error: health.error,
          refused: health.refused,
        },
      );
    }
    if (total === 0) return;
    this.#reported = new Map(this.counts);
    this.#log.info("Last {seconds} s: {total} datagrams: {counts}", {
      seconds: this.#summaryMs / 1000,
      total,
      counts: delta,
      rss: Deno.memoryUsage().rss,
    });
  }

  /**
   * Stops receiving, waits for datagrams in flight (at most `graceMs`), and
   * closes the socket.
   *
   * @param graceMs How long to wait for in-flight work.
   */
  async close(graceMs = 1500): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#summaryTimer);
    clearInterval(this.#limitedTimer);
    let drained = Promise.resolve();
    if (this.#inFlight > 0) {
      this.#drained = Promise.withResolvers();
      drained = this.#drained.promise;
    }
    // The loop may be waiting for room: let it see #closed.
    this.#room?.resolve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise((r) => timer = setTimeout(r, graceMs));
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
    this.#flushLimited();
  }

  /** One record per source for the rate-limited drops summed since the last. */
  #flushLimited(): void {
    for (const [peer, t] of this.#limited) {
      this.#datagramLog.write({
        peer,
        port: null,
        bytes: t.bytes,
        group: null,
        outcome: "dropped:rate_limit",
        count: t.count,
        seq_state_number: null,
        next_number: null,
        registration: null,
        us: null,
      });
    }
    this.#limited.clear();
  }

  #count(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }

  async #receiveLoop(): Promise<void> {
    const buffer = new Uint8Array(RECEIVE_BUFFER);
    while (!this.#closed) {
      let data: Uint8Array;
      let peer: Deno.NetAddr;
      try {
        const [d, a] = await this.#conn.receive(buffer);
        data = d;
        peer = a as Deno.NetAddr;
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) break;
        // ICMP errors from earlier sends surface here on some systems.
        this.#log.debug("Receive failed: {error}", { error: String(e) });
        continue;
      }
      const started = performance.now();
      if (data.length > this.#maxDatagram) {
        this.#record(peer, data.length, started, {
          reply: null,
          outcome: "dropped:oversize",
          detail: `${data.length} bytes > --max-datagram ${this.#maxDatagram}`,
        });
        continue;
      }
      try {
        this.#handle(data.slice(), peer, started);
      } catch (e) {
        this.#failed(e, peer); // logging itself failed: keep serving
      }
      if (this.#inFlight >= this.#maxInFlight) {
        this.#room = Promise.withResolvers();
        await this.#room.promise;
        this.#room = undefined;
      }
    }
  }

  /**
   * Handles one datagram. Junk refused by a cheap check and given no answer
   * is recorded synchronously; the rest is finished by {@linkcode #serve}.
   */
  #handle(bytes: Uint8Array, peer: Deno.NetAddr, started: number): void {
    let result: PacketResult | Promise<PacketResult>;
    try {
      const source = peer.hostname;
      result = handlePacket(bytes, this.#ctx, {
        // A monotonic clock: a step of the wall clock neither refills nor
        // freezes the budgets.
        answerErrors: this.#budget.available(source, started),
        takeErrorToken: () => this.#budget.take(source, performance.now()),
        busy: this.#inFlight >= BUSY,
      });
    } catch (e) {
      result = this.#failed(e, peer);
    }
    if (!(result instanceof Promise) && !result.reply) {
      this.#record(peer, bytes.length, started, result);
      return;
    }
    this.#inFlight++;
    this.#serve(result, peer, bytes.length, started);
  }

  /**
   * Waits for the decision (and its durability), sends the answer, if any,
   * then logs the datagram. One async function per datagram instead of a
   * chain of promises and closures; never rejects.
   */
  async #serve(
    pending: PacketResult | Promise<PacketResult>,
    peer: Deno.NetAddr,
    size: number,
    started: number,
  ): Promise<void> {
    try {
      let result: PacketResult;
      try {
        result = pending instanceof Promise ? await pending : pending;
      } catch (e) {
        result = this.#failed(e, peer);
      }
      if (result.reply) {
        try {
          await this.#conn.send(result.reply, peer);
        } catch (e) {
          result = {
            ...result,
            outcome: "dropped:send_failed",
            detail: String(e),
          };
        }
      }
      this.#record(peer, size, started, result);
    } catch (e) {
      try {
        this.#failed(e, peer);
      } catch {
        // Logging itself failed: keep serving.
      }
    } finally {
      const n = --this.#inFlight;
      if (n < this.#maxInFlight) this.#room?.resolve();
      if (n === 0) this.#drained?.resolve();
    }
  }

  /** A bug, not the client's fault: count it, log it, keep serving. */
  #failed(e: unknown, peer: Deno.NetAddr): PacketResult {
    this.#log.error("Handler failed on a datagram from {peer}: {error}", {
      peer: `${peer.hostname}:${peer.port}`,
      error: e instanceof Error ? e.stack ?? e.message : String(e),
    });
    return { reply: null, outcome: "dropped:internal_error" };
  }

  #record(
    peer: Deno.NetAddr,
    size: number,
    started: number,
    r: PacketResult,
  ): void {
    this.#count(r.outcome);
    const elapsed = performance.now() - started;
    this.observer?.(r, elapsed / 1000);
    if (r.outcome === "dropped:rate_limit") {
      // A flooding source would otherwise cost a log record per datagram:
      // its rate-limited drops are summed and logged once a second.
      const t = this.#limited.get(peer.hostname) ?? { count: 0, bytes: 0 };
      t.count++;
      t.bytes += size;
      this.#limited.set(peer.hostname, t);
      return;
    }
    const c = r.claims;
    this.#datagramLog.write({
      peer: peer.hostname,
      port: peer.port,
      bytes: size,
      group: r.group ?? null,
      outcome: r.outcome,
      error: r.error && r.error !== r.outcome ? r.error : undefined,
      detail: r.detail ? r.detail : undefined,
      seq_state_number: c?.seqStateNumber ?? null,
      next_number: r.nextNumber ?? null,
      registration: c?.registration ?? null,
      us: Math.round(elapsed * 1000),
    });
    this.#logEvent(peer, r);
  }

  #logEvent(peer: Deno.NetAddr, r: PacketResult): void {
    const c = r.claims;
    if (r.outcome === "ok" && c) {
      if (c.colourMismatch) {
        this.#log.warn(
          "{group} sent seq_state {colour} with seq_state_number {sn} ({expected}); accepted",
          {
            group: r.group,
            colour: c.seqState,
            sn: c.seqStateNumber,
            expected: colourOf(c.seqStateNumber),
          },
        );
      }
      // Debug: at thousands of requests a second a console line each would
      // cost more than the request; the periodic summary covers them. The
      // properties are built only when debug records are kept.
      this.#log.debug(
        "{group} event {sn} {colour}: state {from_state} -> {to_state}, next_number {next}, registration {registration} from {peer}",
        () => ({
          group: r.group,
          sn: c.seqStateNumber,
          colour: c.seqState,
          from_state: r.previousState,
          to_state: r.state,
          next: r.nextNumber,
          registration: c.registration,
          peer: `${peer.hostname}:${peer.port}`,
        }),
      );
      if (r.unlisted) {
        this.#log.warn(
          "{group}: registration {registration} is not on the roster; accepted and flagged",
          { group: r.group, registration: c.registration },
        );
      }
      if (r.completedWalk) {
        this.#log.info("{group} completed a walk", { group: r.group });
      }
    } else if (r.outcome === "no_action") {
      this.#log.warn("{group}: {detail}; no answer (NO ACTION) to {peer}", {
        group: r.group,
        detail: r.detail,
        peer: `${peer.hostname}:${peer.port}`,
      });
    } else if (r.claims === undefined && r.group !== undefined) {
      // An error after the signature verified: a real client's mistake.
      this.#log.info("{group}: {error} {detail} to {peer}", {
        group: r.group,
        error: r.error ?? r.outcome,
        detail: r.detail,
        peer: `${peer.hostname}:${peer.port}`,
      });
    }
  }
}
