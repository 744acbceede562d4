/**
 * The server under test, when the tool starts it: `main.ts 127.0.0.1 0 <lab>`
 * through `tests/_server.ts` (with `--allow-ffi`, so the server picks its
 * OpenSSL verify backend as `deno task start` does), and what its JSON log
 * says about its start and stop (RSS, outcome counts, replay-cache
 * figures).
 *
 * @module
 */

import { ServerStartError, startServer } from "../../tests/_server.ts";
import { CYCLE_REPLAY_CACHE, type Options, replayCacheArg } from "./options.ts";
import type { CpuUse } from "./proc.ts";

/** How long the server may take to start, and to stop before SIGKILL. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/** What the server's log says about its start and stop. */
export interface ServerFacts {
  /** RSS in bytes at the `Ready` record. */
  readyRss?: number;
  /** RSS in bytes at the `Stopped after` record. */
  stoppedRss?: number;
  /** Datagrams by outcome. */
  counts?: Record<string, number>;
  /** Replay-cache entries at the stop. */
  cached?: number;
  /** Replay-cache entries evicted by the cap before they expired. */
  evicted?: number;
  /** The server's exit code. */
  exitCode?: number;
  /** Seconds from SIGTERM to exit. */
  stopSec?: number;
  /**
   * RSS in bytes from `/proc/<pid>/status` (Linux): before the first
   * datagram, after the last answer, and the peak (VmHWM) by then.
   */
  procRss?: { before?: number; after?: number; peak?: number };
  /**
   * CPU time the server used while the load ran (Linux), per datagram sent:
   * its main thread (the receive loop, which bounds throughput) and the whole
   * process (with ECDSA threads, GC and I/O). Steadier than responses/s on a
   * shared machine.
   */
  cpu?: CpuUse;
}

/** A server started by the tool. */
export interface SpawnedServer {
  /** The address it listens on (`--host`). */
  hostname: string;
  /** The port it bound. */
  port: number;
  /** Its arguments after `main.ts`. */
  args: string[];
  /** Its `--log-dir`. */
  logDir: string;
  /** The `verify:` line of the start-up summary (the backend in use). */
  verify: string | undefined;
  /** Its process id. */
  pid: number;
  /** Stops it with SIGTERM and reads its log. */
  stop(): Promise<ServerFacts>;
}

/** Finds the `Ready` and `Stopped after` records in the server's JSON log. */
async function readServerLog(logDir: string): Promise<ServerFacts> {
  const facts: ServerFacts = {};
  let names: string[] = [];
  try {
    for await (const e of Deno.readDir(logDir)) {
      if (e.isFile && e.name.startsWith("udpjwt.jsonl")) names.push(e.name);
    }
  } catch {
    return facts;
  }
  names = names.sort();
  for (const name of names) {
    const text = await Deno.readTextFile(`${logDir}/${name}`);
    for (const line of text.split("\n")) {
      if (
        !line.includes('"message":"Ready') &&
        !line.includes('"message":"Stopped after')
      ) {
        continue;
      }
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line);
      } catch {
        continue;
      }
      const message = String(r.message);
      if (message.startsWith("Ready")) {
        facts.readyRss = Number(r.rss);
      } else {
        facts.stoppedRss = Number(r.rss);
        facts.counts = r.counts as Record<string, number>;
        facts.cached = Number(r.cached);
        facts.evicted = Number(r.evicted);
      }
    }
  }
  return facts;
}

/** Options of {@linkcode spawnServer}. */
export interface SpawnOptions
  extends
    Pick<Options, "hostname" | "fsync" | "states" | "cycle" | "serverArgs"> {
  /** The directory for the server's `logs/` and `state/`. */
  runDir: string;
  /** Receives the server's stderr when it exits with an error. */
  progress: (line: string) => void;
}

/**
 * Starts the server on a lab, on port 0.
 *
 * @param labDir The lab directory (the server's DIR).
 * @param options Address, server flags, run directory and progress output.
 * @returns The running server.
 * @throws {Error} When it does not start.
 */
export async function spawnServer(
  labDir: string,
  options: SpawnOptions,
): Promise<SpawnedServer> {
  const { runDir, progress } = options;
  const logDir = `${runDir}/logs`;
  const server = await startServer({
    hostname: options.hostname,
    dir: labDir,
    logDir,
    stateDir: `${runDir}/state`,
    args: [
      ...(options.fsync ? [] : ["--no-fsync"]),
      ...(options.states === 7 ? [] : ["--states", String(options.states)]),
      ...(options.cycle && replayCacheArg(options.serverArgs) === undefined
        ? ["--replay-cache", String(CYCLE_REPLAY_CACHE)]
        : []),
      ...options.serverArgs,
    ],
    // A run at --log-level debug prints a line per datagram.
    boundedOutput: true,
    timeoutMs: START_TIMEOUT_MS,
  }).catch((e: unknown) => {
    if (!(e instanceof ServerStartError)) throw e;
    throw new Error(`Cannot start the server: ${e.message}`);
  });
  return {
    hostname: options.hostname,
    port: server.port,
    args: server.args,
    logDir,
    verify: server.verify,
    pid: server.pid,
    stop: async () => {
      const stopped = await server.stop(STOP_TIMEOUT_MS);
      if (stopped.code !== 0) {
        progress(`server exited ${stopped.code}; stderr:\n${stopped.stderr}`);
      }
      return {
        ...await readServerLog(logDir),
        exitCode: stopped.code,
        stopSec: stopped.stopSec,
      };
    },
  };
}
