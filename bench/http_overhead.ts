/**
 * What the HTTP side costs the UDP path (issue 10): the load tool's RS256
 * answers/s with `--clients` Server-Sent Events clients on `/events` and a
 * `/metrics` scrape every `--scrape-ms`, against none, on one server started
 * once with `--http 127.0.0.1:0` (`startServer`). Runs go in pairs, the order
 * alternating: `bench/load.ts --port P --lab LAB --mode rs256 --window 32
 * --cycle` (`--cycle`, hence `--replay-cache 100`, keeps signing out of the
 * way). The HTTP clients live in this process and read every byte; a run
 * fails unless every stream got its `hello` and the scrapes answered. The
 * server's CPU per answer (`/proc`, from the load tool's `running` line to
 * its exit) is printed too: steadier than answers/s on a shared machine.
 * Exit 0 within or over the 10 % limit, 1 when something broke.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  REPO_ROOT,
  runLoadTool,
  type StartedServer,
  startServer,
  withTimeout,
} from "../tests/_server.ts";
import {
  clockTicks,
  type CpuReading,
  cpuUse,
  machine,
  processCpu,
} from "./load/proc.ts";
import { round } from "./load/summary.ts";

const USAGE = `Usage: deno task bench:http [options]

Measures the load tool's RS256 answers/s with HTTP clients on the server
(SSE streams on /events and /metrics scrapes) against none.

  --pairs N        pairs of runs, order alternating (default 3)
  --seconds S      seconds of load per run (default 6)
  --clients N      SSE clients during the "http" runs (default 20)
  --scrape-ms MS   time between /metrics scrapes (default 100)
  --json           one JSON object on stdout (progress goes to stderr)
  -h, --help       this help`;

/** The largest drop of answers/s the issue allows, in per cent. */
const LIMIT_PCT = 10;

type Options = ReturnType<typeof parseOptions>;

/** What the HTTP clients of one run got. */
interface HttpTally {
  sseBytes: number;
  sseEvents: number[];
  scrapes: number;
  scrapeBytes: number;
  scrapeMs: number[];
}

/** One load run. */
type Run = Awaited<ReturnType<typeof loadOnce>> & {
  pair: number;
  variant: "none" | "http";
  http?: HttpTally;
};

// deno-lint-ignore no-console
const print = (line: string): void => console.log(line);
// deno-lint-ignore no-console
const progress = (line: string): void => console.error(line);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function parseOptions(args: string[]) {
  const { values: v } = parseArgs({
    args: args[0] === "--" ? args.slice(1) : args,
    options: {
      pairs: { type: "string", default: "3" },
      seconds: { type: "string", default: "6" },
      clients: { type: "string", default: "20" },
      "scrape-ms": { type: "string", default: "100" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const int = (flag: "pairs" | "seconds" | "clients" | "scrape-ms") => {
    if (!/^[1-9]\d{0,6}$/.test(v[flag])) {
      throw new TypeError(`Invalid value for --${flag}: "${v[flag]}"`);
    }
    return Number(v[flag]);
  };
  return {
    pairs: int("pairs"),
    seconds: int("seconds"),
    clients: int("clients"),
    scrapeMs: int("scrape-ms"),
    json: v.json,
    help: v.help,
  };
}

/**
 * Connects `--clients` event streams and waits for every `hello`, then
 * scrapes `/metrics` every `--scrape-ms`; `stop()` ends them all.
 */
async function startHttpLoad(origin: string, options: Options) {
  const t: HttpTally = {
    sseBytes: 0,
    sseEvents: Array(options.clients).fill(0),
    scrapes: 0,
    scrapeBytes: 0,
    scrapeMs: [],
  };
  const abort = new AbortController();
  const events = async (i: number) => {
    const res = await fetch(`${origin}/events`);
    if (!res.ok || !res.body) throw new Error(`GET /events: ${res.status}`);
    // Aborting the fetch does not always end a body being read (Deno 2.9.6).
    const reader = res.body.getReader();
    abort.signal.addEventListener("abort", () => reader.cancel());
    const decoder = new TextDecoder();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      t.sseBytes += r.value.length;
      const text = rest + decoder.decode(r.value, { stream: true });
      const lines = text.split("\n");
      rest = lines.pop()!;
      t.sseEvents[i]! += lines.filter((l) => l.startsWith("event: ")).length;
    }
    if (!abort.signal.aborted) throw new Error("An event stream ended early");
  };
  const scrape = async () => {
    while (!abort.signal.aborted) {
      const started = performance.now();
      const res = await fetch(`${origin}/metrics`);
      const body = await res.text();
      if (!res.ok || !body.includes("udpjwt_datagrams_total")) {
        throw new Error(`GET /metrics: ${res.status}: ${body.slice(0, 200)}`);
      }
      t.scrapes++;
      t.scrapeBytes += body.length;
      t.scrapeMs.push(round(performance.now() - started, 2)!);
      await sleep(Math.max(options.scrapeMs - performance.now() + started, 0));
    }
  };
  const tasks = t.sseEvents.map((_, i) => events(i));
  const hellos = async () => {
    while (t.sseEvents.includes(0)) await sleep(20);
  };
  const all = Promise.race([hellos(), Promise.all(tasks)]);
  await withTimeout(all, 10_000, "No hello on every stream in 10 s");
  tasks.push(scrape());
  tasks.at(-1)!.catch(() => {}); // seen by stop()
  return {
    stop: async (): Promise<HttpTally> => {
      abort.abort();
      await Promise.all(tasks);
      if (t.scrapes === 0) throw new Error("No /metrics scrape finished");
      return t;
    },
  };
}

/** Runs the load tool once, reading the server's CPU while it sends. */
async function loadOnce(server: StartedServer, lab: string, s: number) {
  const ticks = await clockTicks();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-net", "--allow-read", "--allow-write", "--allow-run"],
      ...["bench/load.ts", "--port", `${server.port}`, "--lab", lab],
      ...["--mode", "rs256", "--window", "32", "--cycle", "--seconds", `${s}`],
      "--json",
    ],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let before: Promise<CpuReading | undefined> | undefined;
  let stderr = "";
  const stdout = new Response(child.stdout).text();
  for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
    stderr += text;
    // Signing is over: the load starts.
    if (!before && /^running /m.test(stderr)) {
      before = processCpu(server.pid, ticks);
    }
  }
  const after = await processCpu(server.pid, ticks);
  if (!(await child.status).success) {
    throw new Error(`The load tool failed:\n${stderr}`);
  }
  const r = JSON.parse(await stdout).result;
  const start = await before;
  const cpu = start && after && cpuUse(start, after, r.received);
  return {
    answersPerSec: r.responsesPerSec as number,
    lost: r.lost as number,
    serverUsPerAnswer: cpu?.processUsPerDatagram,
    mainUsPerAnswer: cpu?.mainUsPerDatagram,
  };
}

function describe(r: Run): string {
  const line = `pair ${r.pair} ${r.variant}: ${r.answersPerSec} answers/s, ` +
    `server CPU ${r.serverUsPerAnswer} µs/answer ` +
    `(main thread ${r.mainUsPerAnswer}), lost ${r.lost}`;
  const h = r.http;
  if (!h) return line;
  const ms = [...h.scrapeMs].sort((a, b) => a - b);
  return `${line}\n  SSE: ${h.sseEvents.length} clients, ${h.sseBytes} ` +
    `bytes, ${h.sseEvents.reduce((a, b) => a + b)} events (at least ` +
    `${Math.min(...h.sseEvents)} each); /metrics: ${h.scrapes} scrapes of ` +
    `${Math.round(h.scrapeBytes / h.scrapes)} bytes, p50 ` +
    `${round(median(ms), 1)} ms, max ${round(ms.at(-1)!, 1)} ms`;
}

/**
 * Runs the benchmark.
 *
 * @param args The arguments after the script name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(args);
  } catch (e) {
    progress(`bench:http: ${e instanceof Error ? e.message : e}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    print(USAGE);
    return 0;
  }
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_http_bench_" });
  const lab = `${tmp}/lab`;
  let server: StartedServer | undefined;
  try {
    const prepared = await runLoadTool(["--lab", lab, "--prepare"], 120e3);
    if (prepared.code !== 0) throw new Error(prepared.stderr);
    server = await startServer({
      dir: lab,
      logDir: `${tmp}/logs`,
      stateDir: `${tmp}/state`,
      args: ["--http", "127.0.0.1:0", "--replay-cache", "100"],
      boundedOutput: true,
      timeoutMs: 30_000,
    });
    const origin = /^http: (http:\/\/\S+?)\/ /m.exec(server.stdout())?.[1];
    if (!origin) throw new Error(`No "http:" line in:\n${server.stdout()}`);
    progress(`server: UDP port ${server.port}, ${origin}`);
    const runs: Run[] = [];
    for (let pair = 1; pair <= options.pairs; pair++) {
      const order = ["none", "http"] as const;
      for (const variant of pair % 2 ? order : [...order].reverse()) {
        progress(`pair ${pair}: ${variant} …`);
        const http = variant === "http"
          ? await startHttpLoad(origin, options)
          : undefined;
        const result = await loadOnce(server, lab, options.seconds);
        const run: Run = { pair, variant, ...result };
        if (http) run.http = await http.stop();
        runs.push(run);
        if (!options.json) print(describe(run));
      }
    }
    type Key = "answersPerSec" | "serverUsPerAnswer";
    const med = (v: Run["variant"], k: Key) =>
      median(runs.filter((r) => r.variant === v).map((r) => r[k] ?? NaN));
    const pct = (k: Key) =>
      round((med("http", k) / med("none", k) - 1) * 100, 1)!;
    const none = med("none", "answersPerSec");
    const http = med("http", "answersPerSec");
    const diffPct = pct("answersPerSec");
    const cpuPct = pct("serverUsPerAnswer");
    const pass = diffPct > -LIMIT_PCT;
    const m = await machine();
    const figures = { none, http, diffPct, cpuPct, pass, limitPct: LIMIT_PCT };
    if (options.json) {
      print(JSON.stringify({ options, machine: m, runs, figures }, null, 2));
      return 0;
    }
    const signed = (x: number) => `${x > 0 ? "+" : ""}${x} %`;
    print(`machine: ${m.nproc} x ${m.cpu}, load ${m.loadAvg}, deno ${m.deno}`);
    print(
      `median answers/s: none ${Math.round(none)}, http ${Math.round(http)} ` +
        `(${signed(diffPct)}); ` +
        `server CPU per answer ${signed(cpuPct)}`,
    );
    print(`${pass ? "PASS" : "FAIL"} (limit ${LIMIT_PCT} %)`);
    return 0;
  } catch (e) {
    progress(`bench:http: ${e instanceof Error ? e.stack : e}`);
    return 1;
  } finally {
    await server?.stop(60_000);
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
