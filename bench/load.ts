/**
 * The udpjwt load tool: drives a server with valid, pre-signed request tokens
 * and reports throughput, latency and the correctness of every
 * `next_number`; or floods it with garbage while a legitimate client walks
 * alongside. Run as its own process:
 *
 * ```sh
 * deno task load -- --mode rs256 --window 64 --seconds 10
 * deno task load -- --mode flood --flood-rate 50000 --json
 * ```
 *
 * By default it generates throwaway keys and an HMAC secret in a temporary
 * lab directory, starts `main.ts 127.0.0.1 0 <lab>` as a subprocess (with
 * `--allow-ffi`, so the server picks its OpenSSL verify backend as
 * `deno task start` does) through `startServer` of `tests/_server.ts`, which
 * reads the port from its start-up summary and waits for `Ready`, and stops
 * it with SIGTERM at the end. It then reads the
 * server's `Ready` and `Stopped after` log records (RSS, outcome counts,
 * replay-cache figures); on Linux it also samples the server's RSS from
 * `/proc/<pid>/status` before the first datagram and after the last answer.
 * `--port` and `--lab` target a server started by hand on a lab the tool
 * prepared (`--lab DIR --prepare`).
 *
 * ## Tokens
 *
 * Every datagram must be a token the server has not seen: a retransmitted
 * token is answered from the replay cache without any verification, and a
 * new token reusing a `jti` is refused. Signing is slow in WebCrypto (RSA
 * 2048 ≈ 300 signatures/s per core, P-256 ≈ 1,000/s per core on the 2-core
 * lab machine), so all tokens are signed before the clock starts,
 * concurrently (WebCrypto signs on a thread pool), each with a fresh random
 * `jti` and `exp` one hour ahead (`--exp`), so none expires during a run.
 *
 * - Default (`distinct`): `--tokens` distinct tokens (default: `--seconds`
 *   times a per-algorithm rate guess). If the server answers faster, the run
 *   ends early when the tokens run out (`exhausted` in the report) and the
 *   figures cover the shorter run. This is the honest mode: the replay cache
 *   grows as it would with real clients.
 * - `--cycle`: sign a small pool and send it round and round. Sound only
 *   because the spawned server gets `--replay-cache 100` (the minimum) and
 *   the pool holds at least `2 × (cache + window)` tokens, so a token is
 *   evicted (with its `jti`) long before it comes round again and takes the
 *   full path (verify, claims, FSM, journal, HMAC) every time (with `--port`,
 *   the server must have been started with `--replay-cache 100`). The server's
 *   `ok` and `replayed` counts in the report confirm it. The cost: the
 *   replay cache stays tiny, so snapshot compaction is cheaper than in
 *   production; use it for long runs, not for memory figures.
 *
 * Each group walks `0, 1, …, N-1, 0, 1, …` (a group's pool is a multiple of
 * N states, so cycling keeps the walk consistent). Groups share one RSA and
 * one P-256 key pair (each group has its own key file on the server, so the
 * server imports and uses them separately; verify cost is per key size).
 *
 * ## Sending
 *
 * A window of `--window` datagrams is kept outstanding, round robin over the
 * groups; each answer (matched by its `id_request`) releases the next send.
 * Sends go out one at a time: Deno does not keep the call order of
 * concurrent `send`s on one socket (a burst leaves roughly reversed), and a
 * group's events must reach the server in walk order. No answer within
 * `--timeout` counts as lost; `--retransmit` resends the same datagram
 * meanwhile, as real clients do (latency then counts from the first send).
 *
 * Flood mode sends garbage at `--flood-rate` from a worker thread and its
 * own socket (by default from 127.0.0.2, so it has its own error budget),
 * while one legitimate client walks its group at `--walker-rate` with one
 * request outstanding and retransmissions every 250 ms; the walker's figures
 * are the result.
 *
 * ## Correctness
 *
 * Tokens of a group are sent in walk order on one socket, and the server
 * promises to run a group's events in arrival order. Afterwards each group's
 * events are replayed in send order through the protocol's state machine,
 * tracking the set of states the server may be in (a lost datagram may or
 * may not have been processed), and an answer is correct when its
 * `next_number` is one the machine could answer. Error answers count as
 * incorrect.
 *
 * ## Modules
 *
 * This file parses the command line and dispatches; the work lives in
 * `bench/load/`: `options.ts` (flags, usage), `lab.ts` (the lab and its
 * keys), `tokens.ts` (sizing and pre-signing), `server.ts` (the spawned
 * server and its log), `window.ts` (the windowed sender), `flood.ts` and
 * `_flood_worker.ts` (flood mode), `summary.ts` (latency and correctness),
 * `proc.ts` (`/proc` sampling), `openssl.ts` (`--openssl`), `report.ts` (the
 * printed report), `run.ts` (one run, start to end) and `compare.ts`
 * (`--compare-ceiling`: the real server against issue 11's lean ceiling).
 *
 * @module
 */

import {
  type Options,
  parseOptions,
  USAGE,
  UsageError,
} from "./load/options.ts";
import { compareCeiling, renderCompare } from "./load/compare.ts";
import { render, type Report } from "./load/report.ts";
import { run } from "./load/run.ts";

function print(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

function progress(line: string): void {
  // deno-lint-ignore no-console
  console.error(line);
}

/**
 * Runs the load tool.
 *
 * @param args The arguments after the script name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let options: Options | "help";
  try {
    // `deno task load -- …` passes the `--` through.
    options = parseOptions(args[0] === "--" ? args.slice(1) : args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    progress(`load: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    print(USAGE);
    return 0;
  }
  if (options.compareCeiling) {
    try {
      const r = await compareCeiling(options, progress);
      if (options.json) print(JSON.stringify(r, null, 2));
      else for (const line of renderCompare(r)) print(line);
      return 0;
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      progress(`load: ${e.message}`);
      return 2;
    }
  }
  let report: Report | undefined;
  try {
    report = await run(options, progress);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    progress(`load: ${e.message}`);
    return 2;
  }
  if (report === undefined) return 0; // --prepare
  if (options.json) print(JSON.stringify(report, null, 2));
  else for (const line of render(report)) print(line);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
