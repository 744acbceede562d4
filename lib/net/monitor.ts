/**
 * What the HTTP side watches: the UDP loop reports each datagram's outcome
 * here and the journal each commit; the monitor keeps error counts by group,
 * the groups that had a step accepted since the last look, and the two latency
 * histograms. No I/O, no timers: the SSE hub and `/metrics` read it.
 *
 * @example
 * ```ts
 * import { Monitor } from "./monitor.ts";
 * const m = new Monitor();
 * m.datagram({ outcome: "BAD_SIGNATURE", group: "ALPHA" }, 0.0004);
 * m.errorsByGroup(); // { ALPHA: { BAD_SIGNATURE: 1 } }
 * ```
 *
 * @module
 */

import { Histogram } from "prom-client";
import type { PacketResult } from "../protocol/handler.ts";
import type { GroupRecord } from "../state/store.ts";

/** A group that had a step accepted, for `/events`. */
export interface GroupChange {
  /** The upper-case group name. */
  group: string;
  /** The state after the step. */
  state: number;
  /** The registration of the step's request. */
  registration: number | null;
  /** Whether the step completed a walk. */
  completedWalk: boolean;
}

/** The parts of a datagram's result the monitor reads. */
export type Observed = Pick<
  PacketResult,
  | "outcome"
  | "error"
  | "group"
  | "state"
  | "previousState"
  | "completedWalk"
  | "claims"
>;

/** The key errors without a verified group are counted under. */
export const NO_GROUP = "";

/**
 * Distinct groups with error counts. Groups come from verified signatures,
 * so this is the number of keys at most; the bound is a backstop.
 */
const MAX_ERROR_GROUPS = 20_000;

/** Seconds, from 50 µs to 2.5 s: a request is answered in about a millisecond. */
const REQUEST_BUCKETS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** Seconds: a write plus an fdatasync, from tmpfs to a slow disk. */
const COMMIT_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
];

/** Whether an outcome is an error code (upper case), not ok/replayed/dropped. */
export function isErrorCode(outcome: string): boolean {
  return /^[A-Z_]+$/.test(outcome);
}

/** Collects what the UDP loop and the journal report, for the HTTP side. */
export class Monitor {
  /** Receive to answer sent, per datagram. */
  readonly requestDuration: Histogram = new Histogram({
    name: "udpjwt_request_duration_seconds",
    help:
      "Time from receiving a datagram to its answer sent (or its drop decided)",
    buckets: REQUEST_BUCKETS,
    registers: [],
  });
  /** One journal write (and fdatasync) of a batch of steps. */
  readonly commitDuration: Histogram = new Histogram({
    name: "udpjwt_journal_commit_duration_seconds",
    help: "Time to write (and fdatasync) one batch of journal lines",
    buckets: COMMIT_BUCKETS,
    registers: [],
  });
  #errors = new Map<string, Map<string, number>>();
  #changes = new Map<string, GroupChange>();

  /**
   * One datagram handled.
   *
   * @param r Its result.
   * @param seconds From receive to answer sent.
   */
  datagram(r: Observed, seconds: number): void {
    this.requestDuration.observe(seconds);
    if (r.outcome === "ok") {
      // Every accepted step: even one that keeps the state moves the
      // group's last activity (and a group's first request is at RED).
      if (r.group !== undefined && r.state !== undefined) {
        this.#changes.set(r.group, {
          group: r.group,
          state: r.state,
          registration: r.claims?.registration ?? null,
          completedWalk: r.completedWalk === true ||
            this.#changes.get(r.group)?.completedWalk === true,
        });
      }
      return;
    }
    const code = r.error ?? (isErrorCode(r.outcome) ? r.outcome : undefined);
    if (code === undefined) return;
    let key = r.group ?? NO_GROUP;
    if (!this.#errors.has(key) && this.#errors.size >= MAX_ERROR_GROUPS) {
      key = NO_GROUP;
    }
    let byCode = this.#errors.get(key);
    if (!byCode) this.#errors.set(key, byCode = new Map());
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }

  /**
   * One journal batch made durable.
   *
   * @param seconds The write and the fdatasync.
   */
  commit(seconds: number): void {
    this.commitDuration.observe(seconds);
  }

  /** The groups with steps since the last call, each once with its latest. */
  takeChanges(): GroupChange[] {
    const out = [...this.#changes.values()];
    this.#changes.clear();
    return out;
  }

  /** Errors so far (answered or not), by group (`""` without a verified group) and code. */
  errorsByGroup(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [group, byCode] of this.#errors) {
      out[group] = Object.fromEntries(byCode);
    }
    return out;
  }
}

/** Whether the server can do its job, for `/healthz` and the page. */
export interface Health {
  /** True while the UDP loop receives and the journal is writable. */
  ok: boolean;
  /** Why not, when not. */
  reason?: string;
}

/** A group's key as the page shows it: no key material, a fingerprint. */
export interface KeySummary {
  /** The upper-case group name. */
  group: string;
  /** The signature algorithm. */
  alg: string;
  /** The key's SHA-256 fingerprint. */
  fingerprint: string;
  /** The key id (`kid`, else the RFC 7638 thumbprint), when known. */
  kid?: string;
}

/** The running server as the HTTP side reads it (read-only, cheap calls). */
export interface LiveView {
  /** Datagrams by outcome since the start. */
  counts(): ReadonlyMap<string, number>;
  /** Datagrams being handled now. */
  inFlight(): number;
  /** Answers cached for retransmissions. */
  answerCacheEntries(): number;
  /** Every group's durable record. */
  records(): ReadonlyMap<string, Readonly<GroupRecord>>;
  /** The keys loaded now, every key of a JWK Set in file order. */
  keys(): KeySummary[];
  /** Whether the server can do its job. */
  health(): Health;
  /** The object `udpjwt status --json` prints, from the live state. */
  status(): Record<string, unknown>;
}
