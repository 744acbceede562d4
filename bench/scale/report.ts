/**
 * The scale benchmark's report: the machine, the lab's key mix, and two
 * markdown tables (start-up, memory and command times; the walk).
 *
 * @module
 */

import type { Machine } from "../load/proc.ts";
import { type LabOptions, MEMBERS } from "./lab.ts";
import type { RunResult } from "./run.ts";
import { STATES } from "./walk.ts";

const TARGETS =
  "Targets: start-up < 5 s, RSS < 300 MB, keys < 5 s, status < 5 s.";

/** What the report says besides the runs. */
export interface ReportContext extends Required<LabOptions> {
  /** The machine before the runs. */
  before: Machine;
  /** The machine after them (for the load average). */
  after: Machine;
}

function fmt(n: number | undefined, digits: number): string {
  return n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits);
}

function exit(code: number): string {
  return code ? ` (exit ${code})` : "";
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(" | ")} |`;
}

function startTable(results: RunResult[]): string[] {
  return [
    "| groups | run | start-up s | RSS at Ready MB (log) | keys s | status s | RSS after walk MB (peak) | load at Ready |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...results.map((r) =>
      row([
        r.groups,
        r.run,
        fmt(r.readySec, 2),
        `${fmt(r.rssMb, 0)} (${fmt(r.logRssMb, 0)})`,
        fmt(r.keysSec, 2) + exit(r.keysCode),
        fmt(r.statusSec, 2) + exit(r.statusCode),
        `${fmt(r.rssAfterWalkMb, 0)} (${fmt(r.hwmMb, 0)})`,
        r.load,
      ])
    ),
  ];
}

function walkTable(results: RunResult[]): string[] {
  const lines = [
    "| groups | run | walkers (RSA) | answers | answers/s | wrong | retransmissions (buffer drops) | duplicates | completed | p50 / p99 ms | server counts | status walked |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
  ];
  for (const r of results) {
    const w = r.walk;
    if (!w) continue;
    lines.push(row([
      r.groups,
      r.run,
      `${w.groups} (${w.rsaGroups})`,
      `${w.answers}/${w.groups * STATES}`,
      fmt(w.answersPerSec, 0),
      w.wrong,
      `${w.retransmissions} (${w.rcvbufErrors ?? "-"})`,
      w.duplicates,
      `${w.completedGroups}/${w.groups}`,
      `${fmt(w.latencyMs.p50, 0)} / ${fmt(w.latencyMs.p99, 0)}`,
      `${JSON.stringify(r.serverCounts)}`,
      r.statusWalked ?? "-",
    ]));
  }
  return lines;
}

/**
 * The report's lines.
 *
 * @param results Every run, in order.
 * @param context The machine and the lab's key mix.
 * @returns The lines to print.
 */
export function render(results: RunResult[], context: ReportContext): string[] {
  const { before, after, rsaEvery, rsaPool } = context;
  return [
    `machine: ${before.nproc} CPUs (${before.cpu}), deno ${before.deno}, v8 ${Deno.version.v8}; load average ${before.loadAvg} before, ${after.loadAvg} after`,
    `mix: 1 group in ${rsaEvery} RSA 2048 (PEM SPKI; at most ${rsaPool} distinct RSA keys, reused), the rest P-256 (half PEM SPKI, half OpenSSH); ${MEMBERS} roster members per group`,
    "",
    ...startTable(results),
    "",
    TARGETS,
    "",
    ...walkTable(results),
  ];
}
