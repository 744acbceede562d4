/**
 * Scale benchmark (issue 12, item 4): how start-up, memory and the two
 * offline commands grow with the number of groups, and whether the server
 * answers every step correctly when many groups walk at once.
 *
 * ```sh
 * deno run -A bench/scale.ts [--groups 100,1000,10000] [--walkers 1000]
 * ```
 *
 * For each size of `--groups` (a size may be repeated: its lab is built once
 * and each run gets a fresh state and log directory) it:
 *
 * 1. builds a lab in a temporary directory: `keys_pub/` with one file per
 *    group, one in `--rsa-every` (default 5) an RSA 2048 key as PEM SPKI and
 *    the others P-256, alternately PEM SPKI and an OpenSSH
 *    `ecdsa-sha2-nistp256` line; `keys_priv/key_secret_for_hmac.txt`; and
 *    `groups.json` with four members per group. RSA key generation is slow,
 *    so `--rsa-pool` RSA pairs (default 16) are made once and each is reused
 *    by several groups (the server still reads, parses and imports every
 *    file on its own); every P-256 group has a key pair of its own;
 * 2. starts `main.ts 127.0.0.1 0 DIR` as a user does (`deno run` with
 *    `--allow-net --allow-read --allow-write --allow-ffi`), after one untimed
 *    `main.ts --version` so module loading is warm, and measures the time from
 *    spawn to the `Ready` line on stdout and the server's RSS at that moment
 *    (`VmRSS` of `/proc/<pid>/status`; the `rss` of the `Ready` log record is
 *    reported too);
 * 3. has `min(--walkers, groups)` groups, spread evenly over the lab, walk
 *    0..6 at once: every token is signed before the clock starts (jose
 *    `SignJWT`, claims as student clients send them; `seq_max` is 4 because
 *    the roster gives each group four members, and the server requires
 *    `seq_max` to equal that count), at most `--window` requests are
 *    outstanding over `--sockets` UDP sockets on 127.0.0.1, a request without
 *    an answer after 1 s is sent again, and every answer is verified (HS256
 *    with the lab secret, `iss`, `sub`, `id_request`, no `error`) and its
 *    `next_number` checked. The default window of 64 fits the server's
 *    default socket receive buffer (`net.core.rmem_default`, 208 KiB here);
 *    with 200 the kernel drops about 1 % of the requests (counted as buffer
 *    drops from `/proc/net/snmp`) and retransmission recovers them;
 * 4. times `main.ts keys DIR` and `main.ts status DIR --state-dir …` (with the
 *    walked state, while the server runs), then stops the server (SIGTERM).
 *
 * Finally it prints a markdown table. Everything runs on loopback; the run is
 * bounded by `--timeout` (default 900 s), after which every server still
 * running is killed and the script exits with code 3. Exit code 1 when an
 * answer was wrong or missing, or a command failed.
 *
 * This file holds the options and the loop; `bench/scale/` the rest:
 * `lab.ts` builds a lab, `run.ts` starts the server and times the commands,
 * `walk.ts` walks, `report.ts` prints the tables.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type StartedServer, withTimeout } from "../tests/_server.ts";
import { machine } from "./load/proc.ts";
import { buildLab, type Lab, type LabOptions } from "./scale/lab.ts";
import { render } from "./scale/report.ts";
import { runOnce, type RunResult, timeMain } from "./scale/run.ts";
import type { WalkOptions } from "./scale/walk.ts";

/** How long a hard stop waits for a server still starting. */
const ABORT_MS = 30_000;

const USAGE = `Usage: deno run -A bench/scale.ts [options]

Options:
  --groups LIST      lab sizes, comma-separated; a repeated size is run again
                     on the same lab (default 100,1000,10000)
  --walkers N        groups walking at once, at most the size (default 1000)
  --window N         requests outstanding at most (default 64)
  --sockets N        client UDP sockets (default 4)
  --rsa-every N      one group in N has an RSA key (default 5)
  --rsa-pool N       distinct RSA key pairs, reused (default 16)
  --timeout SECONDS  hard limit for the whole run (default 900)
  --json             print the results as JSON after the table
  -h, --help         show this help`;

/** The command line, parsed. */
export interface Options extends Required<LabOptions>, Required<WalkOptions> {
  /** Lab sizes, in run order. */
  sizes: number[];
  /** Groups walking at once. */
  walkers: number;
  /** Hard limit for the whole run. */
  timeoutSec: number;
  /** Print the results as JSON after the table. */
  json: boolean;
}

function print(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

function progress(line: string): void {
  // deno-lint-ignore no-console
  console.error(line);
}

function positive(name: string, text: string | undefined, def: number): number {
  if (text === undefined) return def;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new TypeError(`--${name} "${text}" is not a positive integer`);
  }
  return n;
}

/**
 * Parses the command line.
 *
 * @param args The arguments after the script name.
 * @returns The options, or "help".
 * @throws {TypeError} On a bad value.
 */
export function parseOptions(args: string[]): Options | "help" {
  const { values: v } = parseArgs({
    args,
    options: {
      groups: { type: "string" },
      walkers: { type: "string" },
      window: { type: "string" },
      sockets: { type: "string" },
      "rsa-every": { type: "string" },
      "rsa-pool": { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) return "help";
  const sizes = (v.groups ?? "100,1000,10000").split(",").map((s) =>
    positive("groups", s.trim(), 0)
  );
  if (sizes.some((n) => n > 99_999)) {
    throw new TypeError("--groups: at most 99999 groups");
  }
  return {
    sizes,
    walkers: positive("walkers", v.walkers, 1000),
    window: positive("window", v.window, 64),
    sockets: positive("sockets", v.sockets, 4),
    rsaEvery: positive("rsa-every", v["rsa-every"], 5),
    rsaPool: positive("rsa-pool", v["rsa-pool"], 16),
    timeoutSec: positive("timeout", v.timeout, 900),
    json: v.json ?? false,
  };
}

/** Whether a run failed: a command, or a wrong or missing answer. */
function failed(r: RunResult): boolean {
  const w = r.walk;
  return r.keysCode !== 0 || r.statusCode !== 0 || !w || w.wrong > 0 ||
    w.completedGroups !== w.groups || w.unmatched > 0;
}

/**
 * Runs the benchmark.
 *
 * @param args The arguments after the script name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let options: Options | "help";
  try {
    options = parseOptions(args);
  } catch (e) {
    progress(`scale: ${e instanceof Error ? e.message : e}\n\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    print(USAGE);
    return 0;
  }
  const before = await machine();
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_scale_" });
  /** The server from its spawn to its stop. */
  const running = new Set<Promise<StartedServer>>();
  // Deno.exit skips the finally below: stop and clean up here as well.
  async function abort(code: number): Promise<void> {
    const stops = [...running].map((p) => p.then((s) => s.stop(0), () => {}));
    await withTimeout(Promise.all(stops), ABORT_MS, "").catch(() => {});
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    Deno.exit(code);
  }
  const hard = setTimeout(() => {
    progress(`scale: hard timeout of ${options.timeoutSec} s reached`);
    abort(3);
  }, options.timeoutSec * 1000);
  const onSignal = () => abort(130);
  Deno.addSignalListener("SIGINT", onSignal);
  const results: RunResult[] = [];
  try {
    // Warm Deno's module cache, so the first timed start does not transpile.
    await timeMain(["--version"]);
    const labs = new Map<number, Lab>();
    for (const size of options.sizes) {
      let lab = labs.get(size);
      if (!lab) {
        progress(`scale: building a lab of ${size} groups`);
        lab = await buildLab(`${tmp}/lab-${size}`, size, options);
        progress(
          `scale: built in ${
            lab.buildSec.toFixed(1)
          } s (${lab.rsaGroups} RSA groups sharing ${lab.rsaKeys} RSA keys)`,
        );
        labs.set(size, lab);
      }
      const run = results.filter((r) => r.groups === size).length + 1;
      const r = await runOnce(lab, {
        ...options,
        run,
        tmp,
        progress,
        running,
      });
      results.push(r);
      for (const s of r.walk?.wrongSamples ?? []) progress(`scale: ${s}`);
    }
  } finally {
    clearTimeout(hard);
    Deno.removeSignalListener("SIGINT", onSignal);
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const report = render(results, {
    ...options,
    before,
    after: await machine(),
  });
  for (const line of report) print(line);
  if (options.json) print(JSON.stringify(results));
  return results.some(failed) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
