/**
 * The figures of a windowed run: loss, responses/s, latency percentiles and
 * the share of correct answers. An answer is correct when its `next_number`
 * is one the protocol's machine could give: each group's events are replayed
 * in send order over the set of states the server may be in (a lost datagram
 * may or may not have been processed). Error answers count as incorrect.
 *
 * @module
 */

import type { SendRecord, WindowResult } from "./window.ts";

/** What the protocol's machine does with event `sn` in `state`. */
function advance(
  state: number,
  sn: number,
  states: number,
): { state: number; next: number } {
  const expected = (s: number) => s >= states - 1 ? 0 : s + 1;
  if (sn === 0) return { state: 0, next: 1 };
  if (sn === state + 1) return { state: sn, next: expected(sn) };
  return { state, next: expected(state) };
}

/**
 * Counts the answers whose `next_number` the state machine could give,
 * replaying each group's events in send order over the set of states the
 * server may be in (all of them at first: a reused lab may hold state).
 */
function countCorrect(
  records: SendRecord[],
  groupCount: number,
  states: number,
): number {
  const all = () => new Set(Array.from({ length: states }, (_, i) => i));
  const possible = Array.from({ length: groupCount }, all);
  let correct = 0;
  for (const r of records) {
    const now = possible[r.group]!;
    if (r.lost) {
      // Lost on the way there (unchanged) or back (processed).
      for (const s of [...now]) now.add(advance(s, r.sn, states).state);
    } else if (r.error !== undefined || r.next === undefined) {
      // An error answer: the machine did not run.
    } else {
      const after = new Set<number>();
      for (const s of now) {
        const t = advance(s, r.sn, states);
        if (t.next === r.next) after.add(t.state);
      }
      if (after.size > 0) {
        correct++;
        possible[r.group] = after;
      } else {
        possible[r.group] = all(); // wrong answer: resynchronise
      }
    }
  }
  return correct;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.max(0, Math.ceil(p / 100 * sorted.length) - 1);
  return sorted[Math.min(i, sorted.length - 1)]!;
}

/**
 * Rounds to `digits` decimals, passing null through.
 *
 * @param n The number.
 * @param digits Decimals to keep.
 * @returns The rounded number, or null.
 */
export function round(n: number | null, digits = 2): number | null {
  if (n === null) return null;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The figures of a run (the counters as the windowed sender gave them). */
export interface Summary extends
  Pick<
    WindowResult,
    | "sent"
    | "received"
    | "late"
    | "unmatched"
    | "sendErrors"
    | "retransmissions"
    | "exhausted"
  > {
  /** Datagrams without an answer within the timeout. */
  lost: number;
  /** Error answers by code. */
  errors: Record<string, number>;
  /** Answers with a `next_number` the machine could give. */
  correct: number;
  /** `correct / received`, or null without answers. */
  correctShare: number | null;
  /** Answers per second over the active time. */
  responsesPerSec: number;
  /** Seconds from the first send to the last answer. */
  activeSec: number;
  /** Latency of the answers, in ms, from the first send. */
  latencyMs: {
    p50: number | null;
    p90: number | null;
    p99: number | null;
    max: number | null;
    mean: number | null;
  };
}

/**
 * Computes the figures of a windowed run.
 *
 * @param r The run's records and counters.
 * @param groups How many groups walked.
 * @param states FSM states of the server.
 * @returns The figures.
 */
export function summarize(
  r: WindowResult,
  groups: number,
  states: number,
): Summary {
  const latencies = r.records.flatMap((x) =>
    x.latencyMs === undefined ? [] : [x.latencyMs]
  ).sort((a, b) => a - b);
  const errors: Record<string, number> = {};
  for (const x of r.records) {
    if (x.error !== undefined) errors[x.error] = (errors[x.error] ?? 0) + 1;
  }
  const correct = countCorrect(r.records, groups, states);
  const mean = latencies.length === 0
    ? null
    : latencies.reduce((a, b) => a + b, 0) / latencies.length;
  return {
    sent: r.sent,
    received: r.received,
    lost: r.records.filter((x) => x.lost).length,
    late: r.late,
    unmatched: r.unmatched,
    sendErrors: r.sendErrors,
    retransmissions: r.retransmissions,
    errors,
    correct,
    correctShare: r.received === 0 ? null : round(correct / r.received, 6),
    responsesPerSec: round(r.received / Math.max(r.activeMs / 1000, 1e-3), 1)!,
    activeSec: round(r.activeMs / 1000, 3)!,
    exhausted: r.exhausted,
    latencyMs: {
      p50: round(percentile(latencies, 50), 3),
      p90: round(percentile(latencies, 90), 3),
      p99: round(percentile(latencies, 99), 3),
      max: round(latencies.at(-1) ?? null, 3),
      mean: round(mean, 3),
    },
  };
}
