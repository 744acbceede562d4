/**
 * `--compare-ceiling`: the real server against the lean ceiling of issue 11
 * (`../shared/ceiling/lean_server.ts`, the least a `Deno.listenDatagram`
 * server does per valid request). One lab and one pre-signed, cycled pool of
 * tokens per algorithm; then, for each algorithm, `pairs` pairs of runs, the
 * lean server and `main.ts` (its defaults: fsync on, logs on; plus
 * `--replay-cache 100`, which a cycled pool needs), interleaved, the order
 * swapped from one pair to the next so that a drift of the machine weighs on
 * both. Each run gets a fresh server, so every group starts at `RED`. The
 * figure is the server process's CPU time (`/proc/PID/stat`, utime + stime)
 * over the run divided by the answers carrying a `next_number`; a shared
 * machine drifts, so the ratio within a pair is what holds.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { Alg } from "../_keys.ts";
import { type FsyncFigures, measureFdatasync } from "./fsync.ts";
import { prepareLab } from "./lab.ts";
import { type Options, UsageError } from "./options.ts";
import {
  clockTicks,
  type CpuReading,
  type Machine,
  machine,
  processCpu,
} from "./proc.ts";
import { spawnServer } from "./server.ts";
import { round, summarize } from "./summary.ts";
import {
  groupOrder,
  type GroupPlan,
  presign,
  tokensPerGroup,
} from "./tokens.ts";
import { runWindow } from "./window.ts";

/** The lean server beside the repository, where issue 11 keeps it. */
export const DEFAULT_CEILING: string = fileURLToPath(
  new URL("../../../shared/ceiling/lean_server.ts", import.meta.url),
);

/** How long the lean server may take to start. */
const LEAN_START_MS = 30_000;

/** The two servers compared. */
export type Contender = "lean" | "main";

/** One run of one server. */
export interface CompareRun {
  /** Which server. */
  server: Contender;
  /** The pair it belongs to, from 1. */
  pair: number;
  /** Answers with a `next_number`. */
  answers: number;
  /** Error answers. */
  errors: number;
  /** Datagrams without an answer in time. */
  lost: number;
  /** Answers whose `next_number` the state machine could not give. */
  wrong: number;
  /** Answers per second over the run. */
  answersPerSec: number;
  /** Latency p50 in ms. */
  p50Ms: number | null;
  /** Whole-process CPU per answer, µs. */
  processUs: number | null;
  /** Main-thread CPU per answer, µs. */
  mainUs: number | null;
}

/** The runs of one algorithm and their medians. */
export interface CompareAlg {
  /** The algorithm. */
  alg: Alg;
  /** Every run, in the order they ran. */
  runs: CompareRun[];
  /** main / lean process CPU per answer, per pair. */
  ratios: (number | null)[];
  /** Medians over the pairs. */
  median: {
    leanUs: number | null;
    mainUs: number | null;
    ratio: number | null;
    leanPerSec: number | null;
    mainPerSec: number | null;
  };
}

/** What `--compare-ceiling` reports. */
export interface CompareReport {
  /** The lean server's path. */
  ceiling: string;
  /** `--window`. */
  window: number;
  /** `--seconds` of each run. */
  seconds: number;
  /** `--groups` per algorithm. */
  groups: number;
  /** Pairs per algorithm. */
  pairs: number;
  /** The main server's arguments after `main.ts` (first run). */
  mainArgs: string[];
  /** Per algorithm. */
  algs: CompareAlg[];
  /** The machine, read before the first run. */
  machine: Machine;
  /**
   * fdatasync of small appends where `main.ts` keeps its state, measured
   * before the first run: with fsync on, an answer waits at least this.
   */
  fdatasync?: FsyncFigures;
}

/**
 * CPU microseconds per answer between two readings.
 *
 * @param before The reading before the load.
 * @param after The reading after it.
 * @param answers The answers counted in between.
 * @returns Whole-process and main-thread µs per answer; null without answers.
 */
export function cpuPerAnswer(
  before: CpuReading,
  after: CpuReading,
  answers: number,
): { processUs: number | null; mainUs: number | null } {
  if (answers <= 0) return { processUs: null, mainUs: null };
  return {
    processUs: round((after.process - before.process) * 1e6 / answers, 1),
    mainUs: round((after.main - before.main) * 1e6 / answers, 1),
  };
}

/**
 * The median of the numbers among `values` (nulls left out).
 *
 * @param values The values.
 * @returns The median (the mean of the middle two for an even count), or
 * null when there is no number.
 */
export function median(values: (number | null)[]): number | null {
  const xs = values.filter((x): x is number => x !== null).sort((a, b) =>
    a - b
  );
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/**
 * main / lean, per pair, of process CPU per answer.
 *
 * @param runs The runs of one algorithm.
 * @param pairs How many pairs.
 * @returns One ratio per pair (null when either figure is missing).
 */
export function pairRatios(
  runs: CompareRun[],
  pairs: number,
): (number | null)[] {
  return Array.from({ length: pairs }, (_, i) => {
    const of = (s: Contender) =>
      runs.find((r) => r.pair === i + 1 && r.server === s)?.processUs ?? null;
    const lean = of("lean");
    const main = of("main");
    return lean === null || main === null || lean === 0
      ? null
      : round(main / lean, 3);
  });
}

/** A running lean server. */
interface Lean {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

async function startLean(path: string, labDir: string): Promise<Lean> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", path, "127.0.0.1", "0", labDir],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const errText = new Response(child.stderr).text();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), LEAN_START_MS);
  });
  let port: number | undefined;
  while (port === undefined) {
    const chunk = await Promise.race([reader.read(), timeout]);
    if (chunk === undefined || chunk.done) break;
    text += chunk.value;
    const m = /listening on \S+ port (\d+)/.exec(text);
    if (m) port = Number(m[1]);
  }
  clearTimeout(timer);
  if (port === undefined) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    throw new Error(
      `The lean server "${path}" did not print its port: ${text}${await errText}`,
    );
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  return {
    pid: child.pid,
    port,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await child.status;
      await drained;
      await errText;
    },
  };
}

/** Runs one server over the pool and measures it. */
async function measure(
  server: Contender,
  pair: number,
  groups: GroupPlan[],
  target: { pid: number; port: number },
  options: Options,
): Promise<CompareRun> {
  const ticks = await clockTicks();
  const before = await processCpu(target.pid, ticks);
  const result = await runWindow(groups, {
    hostname: "127.0.0.1",
    port: target.port,
    window: options.window,
    seconds: options.seconds,
    timeoutMs: options.timeoutMs,
    cycle: true,
  });
  const after = await processCpu(target.pid, ticks);
  const s = summarize(result, groups.length, options.states);
  const answers = result.records.filter((r) => r.next !== undefined).length;
  const cpu = before && after
    ? cpuPerAnswer(before, after, answers)
    : { processUs: null, mainUs: null };
  return {
    server,
    pair,
    answers,
    errors: Object.values(s.errors).reduce((a, b) => a + b, 0),
    lost: s.lost,
    wrong: s.received - s.correct,
    answersPerSec: s.responsesPerSec,
    p50Ms: s.latencyMs.p50,
    ...cpu,
  };
}

/**
 * Runs the comparison.
 *
 * @param options The parsed options (`compareCeiling` set).
 * @param progress Receives progress lines (stderr).
 * @returns The report.
 * @throws {UsageError} When the lean server's file is missing.
 */
export async function compareCeiling(
  options: Options,
  progress: (line: string) => void,
): Promise<CompareReport> {
  const c = options.compareCeiling!;
  const path = c.path ?? DEFAULT_CEILING;
  try {
    await Deno.stat(path);
  } catch {
    throw new UsageError(
      `Cannot find the lean ceiling server "${path}": ${
        c.path === undefined
          ? "it lives outside this repository (../shared/ceiling/ of issue 11); "
          : ""
      }pass --compare-ceiling PATH`,
    );
  }
  const counts = new Map<Alg, number>(
    (["RS256", "ES256"] as const).map((a) => [
      a,
      c.algs.includes(a) ? options.groups : 0,
    ]),
  );
  const lab = await prepareLab(options.lab, counts, { spawn: true });
  const runDir = await Deno.makeTempDir({ prefix: "udpjwt_compare_" });
  try {
    const m = await machine();
    const fdatasync = await measureFdatasync(runDir);
    const report: CompareReport = {
      ceiling: path,
      window: options.window,
      seconds: options.seconds,
      groups: options.groups,
      pairs: c.pairs,
      mainArgs: [],
      algs: [],
      machine: m,
      fdatasync,
    };
    for (const alg of c.algs) {
      const order = groupOrder(
        new Map([[alg, options.groups]]) as Map<Alg, number>,
      );
      const perGroup = tokensPerGroup({ ...options, mode: "rs256" }, order);
      progress(`${alg}: signing ${perGroup * order.length} tokens …`);
      const { groups } = await presign(
        order.map((o) => ({ ...o, count: perGroup })),
        lab,
        { states: options.states, expSec: options.expSec, progress },
      );
      const runs: CompareRun[] = [];
      for (let pair = 1; pair <= c.pairs; pair++) {
        const turn: Contender[] = pair % 2 === 1
          ? ["lean", "main"]
          : ["main", "lean"];
        for (const who of turn) {
          progress(
            `${alg} pair ${pair}/${c.pairs}: ${who}, ${options.seconds} s …`,
          );
          let run: CompareRun;
          if (who === "lean") {
            const lean = await startLean(path, lab.dir);
            try {
              run = await measure(who, pair, groups, lean, options);
            } finally {
              await lean.stop();
            }
          } else {
            const dir = `${runDir}/${alg}_${pair}`;
            const server = await spawnServer(lab.dir, {
              hostname: "127.0.0.1",
              fsync: true,
              states: options.states,
              cycle: true,
              serverArgs: options.serverArgs,
              runDir: dir,
              progress,
            });
            if (report.mainArgs.length === 0) report.mainArgs = server.args;
            try {
              run = await measure(who, pair, groups, server, options);
            } finally {
              await server.stop();
              await Deno.remove(dir, { recursive: true }).catch(() => {});
            }
          }
          progress(`  ${describeRun(run)}`);
          runs.push(run);
        }
      }
      const ratios = pairRatios(runs, c.pairs);
      const of = (s: Contender) => runs.filter((r) => r.server === s);
      report.algs.push({
        alg,
        runs,
        ratios,
        median: {
          leanUs: median(of("lean").map((r) => r.processUs)),
          mainUs: median(of("main").map((r) => r.processUs)),
          ratio: median(ratios),
          leanPerSec: median(of("lean").map((r) => r.answersPerSec)),
          mainPerSec: median(of("main").map((r) => r.answersPerSec)),
        },
      });
    }
    return report;
  } finally {
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
    if (lab.temporary && !options.keepLab) {
      await Deno.remove(lab.dir, { recursive: true }).catch(() => {});
    }
  }
}

function describeRun(r: CompareRun): string {
  const faults = r.errors + r.lost + r.wrong;
  return `${r.server.padEnd(4)} ${
    String(Math.round(r.answersPerSec)).padStart(6)
  } answers/s  process ${
    String(r.processUs ?? "?").padStart(6)
  } µs/answer  main thread ${String(r.mainUs ?? "?").padStart(6)} µs  p50 ${
    r.p50Ms ?? "?"
  } ms${
    faults > 0
      ? `  (${r.errors} errors, ${r.lost} lost, ${r.wrong} wrong next_number)`
      : ""
  }`;
}

/**
 * The comparison as text lines.
 *
 * @param r The report.
 * @returns The lines to print.
 */
export function renderCompare(r: CompareReport): string[] {
  const lines = [
    `udpjwt load --compare-ceiling: window ${r.window}, ${r.seconds} s, ${r.groups} groups, ${r.pairs} pairs per algorithm`,
    `machine       ${r.machine.nproc} x ${r.machine.cpu}, load ${r.machine.loadAvg}, deno ${r.machine.deno}`,
    ...(r.fdatasync
      ? [
        `fdatasync     p50 ${r.fdatasync.p50Ms} ms  p99 ${r.fdatasync.p99Ms} ms (${r.fdatasync.samples} appends where main.ts keeps its state)`,
      ]
      : []),
    `lean          ${r.ceiling}`,
    `main          main.ts ${r.mainArgs.slice(3).join(" ")}`,
  ];
  const f = (x: number | null, d = 1) => x === null ? "?" : x.toFixed(d);
  for (const a of r.algs) {
    lines.push(`${a.alg}:`);
    for (const run of a.runs) {
      lines.push(`  pair ${run.pair}  ${describeRun(run)}`);
    }
    lines.push(
      `  ratios main/lean (process CPU per answer): ${
        a.ratios.map((x) => f(x, 3)).join(" · ")
      }`,
      `  median  lean ${f(a.median.leanUs)} µs, ${
        f(a.median.leanPerSec, 0)
      }/s; main ${f(a.median.mainUs)} µs, ${
        f(a.median.mainPerSec, 0)
      }/s; ratio ${f(a.median.ratio, 3)}`,
    );
  }
  return lines;
}
