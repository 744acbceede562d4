/**
 * One run of the scale benchmark on a lab: start the server as a user does
 * (through `startServer` of `tests/_server.ts`), time it to `Ready` and read
 * its RSS, walk some groups, time `udpjwt status` (with the walked state,
 * while the server runs), stop the server, then time `udpjwt keys`.
 *
 * @module
 */

import {
  type CommandResult,
  readLog,
  RUN_ARGS,
  runDeno,
  type StartedServer,
  startServer,
} from "../../tests/_server.ts";
import { machine, processRss } from "../load/proc.ts";
import type { Lab } from "./lab.ts";
import { walk, type WalkOptions, type WalkResult } from "./walk.ts";

/** How long the server may take to start, and a command to finish. */
const TIMEOUT_MS = 120_000;

/** What one run measured. */
export interface RunResult {
  /** Groups in the lab. */
  groups: number;
  /** The run's number on this lab, from 1. */
  run: number;
  /** Seconds from spawn to `Ready`. */
  readySec: number;
  /** The 1-minute load average at `Ready`. */
  load: string;
  /** `VmRSS` at `Ready`. */
  rssMb: number | undefined;
  /** The `rss` of the `Ready` log record. */
  logRssMb: number | undefined;
  /** Seconds `udpjwt keys` took, and its exit code. */
  keysSec: number;
  keysCode: number;
  /** Seconds `udpjwt status` took, and its exit code. */
  statusSec: number;
  statusCode: number;
  /** Groups `status --json` shows with a walk. */
  statusWalked: number | undefined;
  /** `VmRSS` and `VmHWM` after the walk. */
  rssAfterWalkMb: number | undefined;
  hwmMb: number | undefined;
  /** The outcome counts of the `Stopped after` log record. */
  serverCounts: unknown;
  /** The walk, when it ran. */
  walk: WalkResult | undefined;
}

/** Options of {@linkcode runOnce}. */
export interface RunOptions extends WalkOptions {
  /** The run's number on this lab. */
  run: number;
  /** Groups walking at once (at most the lab's size). */
  walkers: number;
  /** Where the state and log directories go. */
  tmp: string;
  /** Receives progress lines. */
  progress: (line: string) => void;
  /**
   * Holds the server, from its spawn to its stop, for the caller to stop it
   * on a hard timeout.
   */
  running: Set<Promise<StartedServer>>;
}

/** A finished `main.ts` command and the seconds from spawn to exit. */
export interface Timed extends CommandResult {
  /** Seconds from spawn to exit. */
  sec: number;
}

/**
 * Runs `main.ts` with `args` to completion, as a user does.
 *
 * @param args The arguments after `main.ts`.
 * @returns Its exit code and output, and how long it took.
 */
export async function timeMain(args: string[]): Promise<Timed> {
  const t0 = performance.now();
  const out = await runDeno(
    [...RUN_ARGS, ...args],
    TIMEOUT_MS,
    `main.ts ${args.join(" ")} did not finish in ${TIMEOUT_MS / 1000} s`,
  );
  return { ...out, sec: (performance.now() - t0) / 1000 };
}

function mb(bytes: number | undefined): number | undefined {
  return bytes === undefined ? undefined : bytes / 2 ** 20;
}

/**
 * Starts the server on a lab, walks, times `status` and `keys`.
 *
 * @param lab The lab.
 * @param options The run's number, the walk and where to write.
 * @returns What the run measured.
 */
export async function runOnce(
  lab: Lab,
  options: RunOptions,
): Promise<RunResult> {
  const { run, tmp, progress, running } = options;
  const size = lab.groups.length;
  const stateDir = `${tmp}/state-${size}-${run}`;
  const logDir = `${tmp}/log-${size}-${run}`;
  const walkers = Math.min(options.walkers, size);
  progress(`scale: ${size} groups, run ${run}: starting the server`);
  const t0 = performance.now();
  const starting = startServer({
    dir: lab.dir,
    logDir,
    stateDir,
    timeoutMs: TIMEOUT_MS,
  });
  // Kept until the stop (a failed start kills the server itself).
  running.add(starting);
  const server = await starting;
  const readySec = (performance.now() - t0) / 1000;
  let walked: WalkResult;
  let status: Timed;
  let statusWalked: number | undefined;
  let after: { rss?: number; peak?: number };
  let ready: { rss?: number; load: string };
  try {
    ready = {
      ...await processRss(server.pid),
      load: (await machine()).loadAvg.split(" ")[0] ?? "-",
    };
    progress(
      `scale: ready in ${readySec.toFixed(2)} s, RSS ${
        (mb(ready.rss) ?? NaN).toFixed(0)
      } MB; walking ${walkers} groups`,
    );
    walked = await walk(lab, server.addr, { ...options, count: walkers });
    progress(
      `scale: ${walked.answers} answers in ${
        walked.walkSec.toFixed(2)
      } s, ${walked.wrong} wrong, ${walked.retransmissions} retransmissions`,
    );
    after = await processRss(server.pid);
    const statusArgs = ["status", lab.dir, "--state-dir", stateDir];
    status = await timeMain(statusArgs);
    const json = await timeMain([...statusArgs, "--json"]);
    if (json.code === 0) {
      const groups = JSON.parse(json.stdout).groups as { walks: number }[];
      statusWalked = groups.filter((g) => g.walks >= 1).length;
    }
  } finally {
    await server.stop();
    running.delete(starting);
  }
  progress(`scale: timing keys`);
  const keys = await timeMain(["keys", lab.dir]);
  if (keys.code !== 0) progress(`scale: keys: ${keys.stderr.slice(0, 500)}`);
  if (status.code !== 0) {
    progress(`scale: status: ${status.stderr.slice(0, 500)}`);
  }
  const log = await readLog(logDir);
  const record = (prefix: string) =>
    log.find((r) => String(r.message).startsWith(prefix));
  const logRss = record("Ready:")?.rss;
  return {
    groups: size,
    run,
    readySec,
    load: ready.load,
    rssMb: mb(ready.rss),
    logRssMb: typeof logRss === "number" ? mb(logRss) : undefined,
    keysSec: keys.sec,
    keysCode: keys.code,
    statusSec: status.sec,
    statusCode: status.code,
    statusWalked,
    rssAfterWalkMb: mb(after.rss),
    hwmMb: mb(after.peak),
    serverCounts: record("Stopped after")?.counts,
    walk: walked,
  };
}
