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
 * `deno task start` does), reads the port from its `listening on … port …
 * (udp)` line, and stops it with SIGTERM at the end. It then reads the
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
 * @module
 */

import { parseArgs } from "node:util";
import { colourOf } from "../lib/protocol/fsm.ts";
import { AUDIENCE } from "../lib/protocol/token.ts";
import type { FloodDone, FloodStart } from "./_flood_worker.ts";
import { type Alg, b64url, KEY_PARAMS, pem, SIGN_PARAMS } from "./_keys.ts";

/** The repository root: `main.ts` lives there and it is the server's cwd. */
const REPO_ROOT = new URL("../", import.meta.url).pathname;

/** Request algorithms. */

/** Load modes. */
const MODES = ["rs256", "es256", "mixed", "flood"] as const;
type Mode = typeof MODES[number];

/** Flood kinds. */
const FLOOD_KINDS = ["random", "forged"] as const;
type FloodKind = typeof FLOOD_KINDS[number];

/**
 * Answers per second assumed when sizing `--tokens`: per algorithm at a wide
 * window, and per outstanding datagram (measured on a 2-core lab machine with
 * the OpenSSL verify backend; a faster server exhausts the tokens early).
 */
const RATE_GUESS: Record<Alg, number> = { RS256: 3000, ES256: 2500 };
const RATE_PER_OUTSTANDING = 400;

/** The smallest `--replay-cache` the server accepts; used with `--cycle`. */
const CYCLE_REPLAY_CACHE = 100;

const USAGE = `Usage: deno task load -- [options]

Drives a udpjwt server with pre-signed valid tokens and reports sent,
received, lost, responses/s, latency (p50/p99/max) and the share of correct
next_numbers.

Target:
  --spawn                start main.ts on a throwaway lab (default)
  --host ADDR            server address (default 127.0.0.1)
  --port PORT            target an already-running server (needs --lab)
  --lab DIR              lab directory with the load keys; created if missing
                         (default: a temporary one, removed at the end)
  --prepare              write the lab (--lab) and exit
  --keep-lab             keep the temporary lab and the server's logs
  --no-fsync             spawn the server with --no-fsync
  --server-arg ARG       extra server flag, repeatable (--server-arg=--log-level=warning)

Load:
  --mode MODE            rs256, es256, mixed or flood (default rs256)
  --window W             datagrams outstanding (default 64)
  --seconds S            sending time (default 10)
  --groups N             groups walking concurrently (default 8)
  --states N             FSM states of the server (default 7)
  --tokens N             distinct tokens to pre-sign (default: S x a rate guess)
  --cycle                send a small pool round and round (spawns the server
                         with --replay-cache 100; with --port, start the server
                         with --replay-cache 100 yourself; see the module docs)
  --exp SECONDS          token lifetime (default 3600)
  --timeout MS           an answer later than this counts as lost (default 2000)
  --retransmit MS        resend an unanswered datagram every MS, as clients do;
                         latency counts from the first send (default: off,
                         250 for the flood mode's walker)

Flood mode (garbage at a fixed rate, one legitimate walker alongside):
  --flood-rate R         garbage datagrams per second (default 50000)
  --flood-kind KIND      random (random bytes) or forged (well-formed tokens of
                         the walker's group with a signature that does not
                         verify) (default random)
  --flood-size BYTES     size of random garbage (default 100)
  --flood-from ADDR      source address of the flood (default 127.0.0.2 for a
                         127.x target, else the walker's)
  --walker-rate N        walker requests per second, one outstanding (default 50)
  --walker-alg ALG       rs256 or es256 (default rs256)

Output:
  --openssl              also run openssl speed (rsa2048, ecdsap256, one core)
                         and report responses/s / verify/s
  --json                 one JSON object on stdout (progress goes to stderr)
  -h, --help             this help`;

/** Parsed options. */
interface Options {
  hostname: string;
  port: number | undefined;
  spawn: boolean;
  lab: string | undefined;
  prepare: boolean;
  keepLab: boolean;
  fsync: boolean;
  serverArgs: string[];
  mode: Mode;
  window: number;
  seconds: number;
  groups: number;
  states: number;
  tokens: number | undefined;
  cycle: boolean;
  expSec: number;
  timeoutMs: number;
  retransmitMs: number | undefined;
  floodRate: number;
  floodKind: FloodKind;
  floodSize: number;
  floodFrom: string | undefined;
  walkerRate: number;
  walkerAlg: Alg;
  openssl: boolean;
  json: boolean;
}

class UsageError extends Error {
  override name = "UsageError";
}

function print(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

function progress(line: string): void {
  // deno-lint-ignore no-console
  console.error(line);
}

function positiveInt(
  flag: string,
  value: string | undefined,
  fallback: number,
  min = 1,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `Invalid value for ${flag}: "${value}": expected a whole number of at least ${min}`,
    );
  }
  return n;
}

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UsageError(
      `Invalid value for ${flag}: "${value}": expected one of ${
        allowed.join(", ")
      }`,
    );
  }
  return v as T;
}

/**
 * Parses the load tool's command line.
 *
 * @param args The arguments after the script name.
 * @returns The options, or `help`.
 * @throws {UsageError} On an unknown flag or a bad value.
 */
function parseOptions(args: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        "spawn": { type: "boolean" },
        "host": { type: "string" },
        "port": { type: "string" },
        "lab": { type: "string" },
        "prepare": { type: "boolean" },
        "keep-lab": { type: "boolean" },
        "no-fsync": { type: "boolean" },
        "server-arg": { type: "string", multiple: true },
        "mode": { type: "string" },
        "window": { type: "string" },
        "seconds": { type: "string" },
        "groups": { type: "string" },
        "states": { type: "string" },
        "tokens": { type: "string" },
        "cycle": { type: "boolean" },
        "exp": { type: "string" },
        "timeout": { type: "string" },
        "retransmit": { type: "string" },
        "flood-rate": { type: "string" },
        "flood-kind": { type: "string" },
        "flood-size": { type: "string" },
        "flood-from": { type: "string" },
        "walker-rate": { type: "string" },
        "walker-alg": { type: "string" },
        "openssl": { type: "boolean" },
        "json": { type: "boolean" },
        "help": { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError(
      e instanceof Error ? e.message.split(". ")[0] ?? e.message : String(e),
    );
  }
  const v = parsed.values;
  if (v.help) return "help";
  const port = v.port === undefined
    ? undefined
    : positiveInt("--port", v.port, 0);
  const spawn = v.spawn === true || port === undefined;
  if (port !== undefined && v.spawn) {
    throw new UsageError("Pass either --port or --spawn, not both");
  }
  if (!spawn && v.lab === undefined) {
    throw new UsageError(
      "--port needs --lab DIR: the lab whose keys_pub the server loaded (make one with --lab DIR --prepare)",
    );
  }
  if (v.prepare && v.lab === undefined) {
    throw new UsageError("--prepare needs --lab DIR");
  }
  if (!spawn && (v["no-fsync"] || v["server-arg"])) {
    throw new UsageError(
      "--no-fsync and --server-arg need a server the tool starts: drop --port",
    );
  }
  const states = positiveInt("--states", v.states, 7, 2);
  return {
    hostname: (v.host ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1"),
    port,
    spawn,
    lab: v.lab,
    prepare: v.prepare === true,
    keepLab: v["keep-lab"] === true,
    fsync: v["no-fsync"] !== true,
    serverArgs: v["server-arg"] ?? [],
    mode: oneOf("--mode", v.mode, MODES, "rs256"),
    window: positiveInt("--window", v.window, 64),
    seconds: positiveInt("--seconds", v.seconds, 10),
    groups: positiveInt("--groups", v.groups, 8),
    states,
    tokens: v.tokens === undefined
      ? undefined
      : positiveInt("--tokens", v.tokens, 1),
    cycle: v.cycle === true,
    expSec: positiveInt("--exp", v.exp, 3600),
    timeoutMs: positiveInt("--timeout", v.timeout, 2000),
    retransmitMs: v.retransmit === undefined
      ? undefined
      : positiveInt("--retransmit", v.retransmit, 1),
    floodRate: positiveInt("--flood-rate", v["flood-rate"], 50_000),
    floodKind: oneOf("--flood-kind", v["flood-kind"], FLOOD_KINDS, "random"),
    floodSize: positiveInt("--flood-size", v["flood-size"], 100),
    floodFrom: v["flood-from"],
    walkerRate: positiveInt("--walker-rate", v["walker-rate"], 50),
    walkerAlg: oneOf(
      "--walker-alg",
      v["walker-alg"],
      ["rs256", "es256"],
      "rs256",
    )
      .toUpperCase() as Alg,
    openssl: v.openssl === true,
    json: v.json === true,
  };
}

// ---------------------------------------------------------------- the lab --

/** A lab directory prepared for load: keys_pub, the secret, private keys. */
interface Lab {
  dir: string;
  temporary: boolean;
  privateKeys: Map<Alg, CryptoKey>;
}

function unpem(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.fromBase64(b64);
}

/** The group name of the i-th load group of an algorithm. */
function groupName(alg: Alg, i: number): string {
  return `LOAD_${alg}_${String(i).padStart(3, "0")}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Creates (or completes) a lab: one private key per algorithm in
 * `load_keys/`, a key file per group in `keys_pub/`, and an HMAC secret.
 */
async function prepareLab(
  dir: string | undefined,
  groups: Map<Alg, number>,
  spawn: boolean,
): Promise<Lab> {
  const temporary = dir === undefined;
  const root = dir ?? await Deno.makeTempDir({ prefix: "udpjwt_load_" });
  for (const sub of ["keys_pub", "keys_priv", "load_keys"]) {
    await Deno.mkdir(`${root}/${sub}`, { recursive: true });
  }
  const secretFile = `${root}/keys_priv/key_secret_for_hmac.txt`;
  if (!await exists(secretFile)) {
    const hex = crypto.getRandomValues(new Uint8Array(16)).toHex();
    await Deno.writeTextFile(secretFile, `udpjwt-load-${hex}\n`);
  }
  const privateKeys = new Map<Alg, CryptoKey>();
  for (const [alg, count] of groups) {
    if (count === 0) continue;
    const privFile = `${root}/load_keys/${alg.toLowerCase()}.key`;
    const pubFile = `${root}/load_keys/${alg.toLowerCase()}.pub.pem`;
    let priv: CryptoKey;
    let pubPem: string;
    if (await exists(privFile) && await exists(pubFile)) {
      priv = await crypto.subtle.importKey(
        "pkcs8",
        unpem(await Deno.readTextFile(privFile)),
        KEY_PARAMS[alg],
        false,
        ["sign"],
      );
      pubPem = await Deno.readTextFile(pubFile);
    } else {
      const pair = await crypto.subtle.generateKey(KEY_PARAMS[alg], true, [
        "sign",
        "verify",
      ]) as CryptoKeyPair;
      priv = pair.privateKey;
      pubPem = pem(
        "PUBLIC KEY",
        await crypto.subtle.exportKey("spki", pair.publicKey),
      );
      await Deno.writeTextFile(
        privFile,
        pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", priv)),
        { mode: 0o600 },
      );
      await Deno.writeTextFile(pubFile, pubPem);
    }
    privateKeys.set(alg, priv);
    for (let i = 0; i < count; i++) {
      const file = `${root}/keys_pub/${groupName(alg, i).toLowerCase()}.pem`;
      if (await exists(file)) continue;
      if (!spawn) {
        throw new UsageError(
          `The lab "${root}" has no key for group ${
            groupName(alg, i)
          }: run with --lab ${root} --prepare and the same --mode/--groups, then restart the server`,
        );
      }
      await Deno.writeTextFile(file, pubPem);
    }
  }
  return { dir: root, temporary, privateKeys };
}

// ------------------------------------------------------------- the tokens --

/** One pre-signed request. */
interface Signed {
  /** The datagram. */
  bytes: Uint8Array;
  /** The `id_request` its answer carries. */
  id: string;
  /** Its `seq_state_number`. */
  sn: number;
}

/** A group taking part: its name, algorithm and tokens in walk order. */
interface GroupPlan {
  name: string;
  alg: Alg;
  tokens: Signed[];
}

const encoder = new TextEncoder();

function requestClaims(
  group: string,
  index: number,
  sn: number,
  nowSec: number,
  expSec: number,
): Record<string, unknown> {
  return {
    sub: group,
    aud: AUDIENCE,
    iat: nowSec,
    exp: nowSec + expSec,
    jti: crypto.getRandomValues(new Uint8Array(16)).toHex(),
    seq_state_number: sn,
    seq_state: colourOf(sn),
    seq_max: 2,
    registration: 20250000 + index,
  };
}

async function signToken(
  claims: Record<string, unknown>,
  alg: Alg,
  key: CryptoKey,
): Promise<Signed> {
  const header = b64url(encoder.encode(JSON.stringify({ alg, typ: "JWT" })));
  const payloadBytes = encoder.encode(JSON.stringify(claims));
  const input = `${header}.${b64url(payloadBytes)}`;
  const [sig, digest] = await Promise.all([
    crypto.subtle.sign(SIGN_PARAMS[alg], key, encoder.encode(input)),
    crypto.subtle.digest("SHA-256", payloadBytes),
  ]);
  return {
    bytes: encoder.encode(`${input}.${b64url(new Uint8Array(sig))}`),
    id: new Uint8Array(digest).toHex(),
    sn: claims.seq_state_number as number,
  };
}

/** Signs every group's walk, many signatures at once. */
async function presign(
  plans: { name: string; alg: Alg; count: number }[],
  lab: Lab,
  options: { states: number; expSec: number },
): Promise<{ groups: GroupPlan[]; seconds: number }> {
  const nowSec = Math.floor(Date.now() / 1000);
  const total = plans.reduce((n, p) => n + p.count, 0);
  const groups: GroupPlan[] = plans.map((p) => ({
    name: p.name,
    alg: p.alg,
    tokens: new Array<Signed>(p.count),
  }));
  const jobs: [number, number][] = [];
  const longest = Math.max(...plans.map((p) => p.count));
  for (let k = 0; k < longest; k++) {
    plans.forEach((p, g) => {
      if (k < p.count) jobs.push([g, k]);
    });
  }
  const started = performance.now();
  let next = 0;
  let done = 0;
  let lastReport = started;
  const worker = async () => {
    while (next < jobs.length) {
      const [g, k] = jobs[next++]!;
      const plan = groups[g]!;
      const claims = requestClaims(
        plan.name,
        g,
        k % options.states,
        nowSec,
        options.expSec,
      );
      plan.tokens[k] = await signToken(
        claims,
        plan.alg,
        lab.privateKeys.get(plan.alg)!,
      );
      done++;
      const now = performance.now();
      if (now - lastReport > 2000) {
        lastReport = now;
        progress(
          `  signed ${done}/${total} (${
            Math.round(done / ((now - started) / 1000))
          }/s)`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return { groups, seconds: (performance.now() - started) / 1000 };
}

// ------------------------------------------------------------- the server --

/** What the server's log says about its start and stop. */
interface ServerFacts {
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

/** Server CPU time over the load. */
interface CpuUse {
  /** Datagrams the tool sent during the load. */
  datagrams: number;
  wallSec: number;
  mainSec: number;
  processSec: number;
  /** Main-thread CPU per datagram, in µs. */
  mainUsPerDatagram: number;
  /** Whole-process CPU per datagram, in µs. */
  processUsPerDatagram: number;
}

/** A server started by the tool. */
interface SpawnedServer {
  hostname: string;
  port: number;
  args: string[];
  logDir: string;
  /** The `verify:` line of the start-up summary (the backend in use). */
  verify: string | undefined;
  /** Its process id. */
  pid: number;
  stop(): Promise<ServerFacts>;
}

/** Reads a stream to its end, keeping its first and last bytes of text. */
function drain(stream: ReadableStream<Uint8Array>): {
  head: () => string;
  tail: () => string;
  bytes: () => number;
  done: Promise<void>;
  wait: (re: RegExp) => Promise<RegExpMatchArray>;
} {
  let head = "";
  let tail = "";
  let bytes = 0;
  const waiters: (() => void)[] = [];
  const decoder = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream) {
      bytes += chunk.length;
      const text = decoder.decode(chunk, { stream: true });
      if (head.length < 16384) head += text;
      tail = (tail + text).slice(-4096);
      for (const w of waiters) w();
    }
    for (const w of waiters) w();
  })();
  const wait = (re: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      let finished = false;
      done.then(() => finished = true);
      const check = () => {
        const m = head.match(re);
        if (m) return resolve(m);
        if (finished) {
          reject(new Error(`the server exited before printing ${re}`));
        }
      };
      waiters.push(check);
      check();
    });
  return {
    head: () => head,
    tail: () => tail,
    bytes: () => bytes,
    done,
    wait,
  };
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

async function spawnServer(
  lab: Lab,
  options: Options,
  runDir: string,
): Promise<SpawnedServer> {
  const logDir = `${runDir}/logs`;
  const args = [
    options.hostname,
    "0",
    lab.dir,
    "--log-dir",
    logDir,
    "--state-dir",
    `${runDir}/state`,
    ...(options.fsync ? [] : ["--no-fsync"]),
    ...(options.states === 7 ? [] : ["--states", String(options.states)]),
    ...(options.cycle && replayCacheArg(options.serverArgs) === undefined
      ? ["--replay-cache", String(CYCLE_REPLAY_CACHE)]
      : []),
    ...options.serverArgs,
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-ffi",
      "main.ts",
      ...args,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = drain(child.stdout);
  const err = drain(child.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let m: RegExpMatchArray;
  try {
    m = await Promise.race([
      out.wait(/^listening on (.+) port (\d+) \(udp\)$/m),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("the server did not print its port in 30 s")),
          30_000,
        );
      }),
    ]);
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    throw new Error(
      `Cannot start the server: ${
        e instanceof Error ? e.message : e
      }\nstdout:\n${out.head()}\nstderr:\n${err.tail()}`,
    );
  } finally {
    clearTimeout(timer);
  }
  // The backend line follows the port line; give it a moment to arrive.
  await Promise.race([
    out.wait(/^verify: .*$/m).catch(() => {}),
    new Promise((r) => setTimeout(r, 1000)),
  ]);
  return {
    hostname: options.hostname,
    port: Number(m[2]),
    args,
    logDir,
    verify: /^verify: (.*)$/m.exec(out.head())?.[1],
    pid: child.pid,
    stop: async () => {
      const t0 = performance.now();
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        child.status,
        new Promise<Deno.CommandStatus>((resolve) => {
          killTimer = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch {
              // Already exited.
            }
            resolve(child.status);
          }, 60_000);
        }),
      ]);
      clearTimeout(killTimer);
      const stopSec = (performance.now() - t0) / 1000;
      await Promise.all([out.done, err.done]);
      if (status.code !== 0) {
        progress(`server exited ${status.code}; stderr:\n${err.tail()}`);
      }
      return {
        ...await readServerLog(logDir),
        exitCode: status.code,
        stopSec,
      };
    },
  };
}

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`). */
async function clockTicks(): Promise<number> {
  try {
    const out = await new Deno.Command("getconf", {
      args: ["CLK_TCK"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/** User plus system seconds from a `/proc/.../stat` line. */
function statSeconds(stat: string | undefined, ticks: number) {
  if (!stat) return undefined;
  // Fields after the ")" that ends the command name: utime and stime are
  // the 12th and 13th of them (fields 14 and 15 of proc(5)).
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const t = Number(f[11]) + Number(f[12]);
  return Number.isFinite(t) ? t / ticks : undefined;
}

/** CPU seconds of a process and of its main thread so far (Linux). */
async function processCpu(
  pid: number,
  ticks: number,
): Promise<{ at: number; process: number; main: number } | undefined> {
  const at = performance.now();
  const process = statSeconds(await readProc(`/proc/${pid}/stat`), ticks);
  const main = statSeconds(
    await readProc(`/proc/${pid}/task/${pid}/stat`),
    ticks,
  );
  return process === undefined || main === undefined
    ? undefined
    : { at, process, main };
}

function cpuUse(
  before: { at: number; process: number; main: number },
  after: { at: number; process: number; main: number },
  datagrams: number,
): CpuUse {
  const mainSec = after.main - before.main;
  const processSec = after.process - before.process;
  return {
    datagrams,
    wallSec: round((after.at - before.at) / 1000, 3)!,
    mainSec: round(mainSec, 2)!,
    processSec: round(processSec, 2)!,
    mainUsPerDatagram: round(mainSec * 1e6 / datagrams, 1)!,
    processUsPerDatagram: round(processSec * 1e6 / datagrams, 1)!,
  };
}

/** VmRSS and VmHWM of a process, in bytes (Linux). */
async function processRss(
  pid: number,
): Promise<{ rss?: number; peak?: number }> {
  const text = await readProc(`/proc/${pid}/status`) ?? "";
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const rss = kb("VmRSS");
  const peak = kb("VmHWM");
  return {
    ...(rss === undefined ? {} : { rss }),
    ...(peak === undefined ? {} : { peak }),
  };
}

function replayCacheArg(serverArgs: string[]): number | undefined {
  for (let i = serverArgs.length - 1; i >= 0; i--) {
    const a = serverArgs[i]!;
    const m = /^--replay-cache(?:=(\d+))?$/.exec(a);
    if (m) return Number(m[1] ?? serverArgs[i + 1]);
  }
  return undefined;
}

// ---------------------------------------------------------------- the run --

/** One datagram sent. */
interface SendRecord {
  group: number;
  id: string;
  sn: number;
  /** When it was first handed to the socket. */
  sentAt: number;
  /** When it was last (re)sent. */
  lastSentAt: number;
  latencyMs?: number;
  next?: number;
  error?: string;
  lost: boolean;
}

/** The raw outcome of a windowed run. */
interface WindowResult {
  records: SendRecord[];
  sent: number;
  received: number;
  late: number;
  unmatched: number;
  sendErrors: number;
  retransmissions: number;
  exhausted: boolean;
  /** Milliseconds from the first send to the last answer. */
  activeMs: number;
}

/** Options of {@linkcode runWindow}. */
interface WindowOptions {
  hostname: string;
  port: number;
  window: number;
  seconds: number;
  timeoutMs: number;
  cycle: boolean;
  /** Most sends per second (the paced walker); unlimited when undefined. */
  pace?: number;
  /** Resend an unanswered datagram after this many ms, as clients do. */
  retransmitMs?: number;
}

function bindAddress(hostname: string): string {
  if (hostname.includes(":")) return hostname === "::1" ? "::1" : "::";
  return hostname.startsWith("127.") || hostname === "localhost"
    ? "127.0.0.1"
    : "0.0.0.0";
}

function decodeAnswer(
  data: Uint8Array,
): { id?: string; next?: number; error?: string } | undefined {
  const text = new TextDecoder().decode(data);
  const parts = text.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(
      new TextDecoder().decode(
        Uint8Array.fromBase64(parts[1]!, { alphabet: "base64url" }),
      ),
    );
    return {
      ...(typeof claims.id_request === "string"
        ? { id: claims.id_request }
        : {}),
      ...(typeof claims.next_number === "number"
        ? { next: claims.next_number }
        : {}),
      ...(typeof claims.error === "string" ? { error: claims.error } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Keeps `window` datagrams outstanding for `seconds`, round robin over the
 * groups, each group's tokens in walk order; then waits for the last answers
 * (at most the timeout).
 */
async function runWindow(
  groups: GroupPlan[],
  options: WindowOptions,
): Promise<WindowResult> {
  const { window, timeoutMs, cycle, pace, retransmitMs } = options;
  const conn = Deno.listenDatagram({
    hostname: bindAddress(options.hostname),
    port: 0,
    transport: "udp",
  });
  const addr: Deno.NetAddr = {
    transport: "udp",
    hostname: options.hostname,
    port: options.port,
  };
  const records: SendRecord[] = [];
  const pending = new Map<string, SendRecord>();
  const timedOut = new Set<string>();
  let head = 0;
  let outstanding = 0;
  let sendIndex = 0;
  let received = 0;
  let late = 0;
  let unmatched = 0;
  let sendErrors = 0;
  let retransmissions = 0;
  let exhausted = false;
  let stopSending = false;
  let paceTimer: ReturnType<typeof setTimeout> | undefined;
  const start = performance.now();
  const endAt = start + options.seconds * 1000;
  let lastAnswerAt = start;
  const finished = Promise.withResolvers<void>();
  const count = groups.length;

  const nextToken = (): [number, Signed] | undefined => {
    const g = sendIndex % count;
    const k = Math.floor(sendIndex / count);
    const tokens = groups[g]!.tokens;
    if (k >= tokens.length && !cycle) return undefined;
    sendIndex++;
    return [g, tokens[k % tokens.length]!];
  };

  // Deno does not keep the call order of concurrent sends on one socket
  // (a burst goes out roughly reversed), so sends are made one at a time: a
  // group's events must reach the server in walk order.
  const queue: [SendRecord, Uint8Array, boolean][] = [];
  const bytesOf = new Map<SendRecord, Uint8Array>();
  let pumping = false;
  const pump = async () => {
    pumping = true;
    for (let i = 0; i < queue.length; i++) {
      const [rec, bytes, again] = queue[i]!;
      if (again && (rec.latencyMs !== undefined || rec.lost)) continue;
      rec.lastSentAt = performance.now();
      if (!again) rec.sentAt = rec.lastSentAt;
      try {
        await conn.send(bytes, addr);
      } catch {
        sendErrors++;
      }
    }
    queue.length = 0;
    pumping = false;
  };

  const fill = () => {
    const now = performance.now();
    if (now >= endAt) stopSending = true;
    while (!stopSending && outstanding < window) {
      if (pace !== undefined && records.length > 0) {
        const last = records.at(-1)!.sentAt;
        const dueAt = Number.isFinite(last) ? last + 1000 / pace : now + 1;
        if (dueAt > now) {
          paceTimer ??= setTimeout(() => {
            paceTimer = undefined;
            fill();
          }, dueAt - now);
          break;
        }
      }
      const item = nextToken();
      if (!item) {
        exhausted = true;
        stopSending = true;
        break;
      }
      const [g, token] = item;
      const rec: SendRecord = {
        group: g,
        id: token.id,
        sn: token.sn,
        sentAt: Infinity,
        lastSentAt: Infinity,
        lost: false,
      };
      records.push(rec);
      pending.set(token.id, rec);
      outstanding++;
      queue.push([rec, token.bytes, false]);
      if (retransmitMs !== undefined) bytesOf.set(rec, token.bytes);
    }
    if (!pumping && queue.length > 0) pump();
    if (stopSending && outstanding === 0) finished.resolve();
  };

  const receiving = (async () => {
    const buffer = new Uint8Array(4096);
    while (true) {
      let data: Uint8Array;
      try {
        [data] = await conn.receive(buffer);
      } catch {
        return; // closed
      }
      const now = performance.now();
      const answer = decodeAnswer(data);
      const rec = answer?.id === undefined ? undefined : pending.get(answer.id);
      if (!answer || !rec) {
        if (answer?.id !== undefined && timedOut.has(answer.id)) late++;
        else unmatched++;
        continue;
      }
      pending.delete(rec.id);
      bytesOf.delete(rec);
      rec.latencyMs = now - rec.sentAt;
      if (answer.next !== undefined) rec.next = answer.next;
      if (answer.error !== undefined) rec.error = answer.error;
      outstanding--;
      received++;
      lastAnswerAt = now;
      fill();
    }
  })();

  const sweeper = setInterval(() => {
    const now = performance.now();
    while (head < records.length) {
      const r = records[head]!;
      if (r.latencyMs !== undefined || r.lost) {
        head++;
        continue;
      }
      if (now - r.sentAt < timeoutMs) break;
      r.lost = true;
      bytesOf.delete(r);
      if (pending.get(r.id) === r) pending.delete(r.id);
      timedOut.add(r.id);
      outstanding--;
      head++;
    }
    if (retransmitMs !== undefined) {
      for (const [r, bytes] of bytesOf) {
        if (now - r.lastSentAt < retransmitMs) continue;
        r.lastSentAt = now;
        retransmissions++;
        queue.push([r, bytes, true]);
      }
    }
    fill();
  }, 20);

  fill();
  await finished.promise;
  clearInterval(sweeper);
  clearTimeout(paceTimer);
  conn.close();
  await receiving;
  return {
    records,
    sent: records.length,
    received,
    late,
    unmatched,
    sendErrors,
    retransmissions,
    exhausted,
    activeMs: lastAnswerAt - start,
  };
}

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

function round(n: number | null, digits = 2): number | null {
  if (n === null) return null;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The figures of a run. */
interface Summary {
  sent: number;
  received: number;
  lost: number;
  late: number;
  unmatched: number;
  sendErrors: number;
  retransmissions: number;
  errors: Record<string, number>;
  correct: number;
  correctShare: number | null;
  responsesPerSec: number;
  activeSec: number;
  exhausted: boolean;
  latencyMs: {
    p50: number | null;
    p90: number | null;
    p99: number | null;
    max: number | null;
    mean: number | null;
  };
}

function summarize(r: WindowResult, groups: number, states: number): Summary {
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

// ----------------------------------------------------------- flood mode --

/** Garbage for the flood: random bytes, or tampered tokens of a group. */
async function floodPayloads(
  kind: FloodKind,
  size: number,
  walker: GroupPlan,
  lab: Lab,
  expSec: number,
): Promise<Uint8Array[]> {
  if (kind === "random") {
    return Array.from(
      { length: 256 },
      () => crypto.getRandomValues(new Uint8Array(size)),
    );
  }
  // A real signature over other claims: the server must do the whole
  // verification to find out it does not match.
  const nowSec = Math.floor(Date.now() / 1000);
  const donor = await signToken(
    requestClaims(walker.name, 0, 1, nowSec, expSec),
    walker.alg,
    lab.privateKeys.get(walker.alg)!,
  );
  const [header, , signature] = new TextDecoder().decode(donor.bytes).split(
    ".",
  );
  return Array.from({ length: 256 }, (_, i) => {
    const claims = requestClaims(walker.name, 0, i % 7, nowSec, expSec);
    const payload = b64url(encoder.encode(JSON.stringify(claims)));
    return encoder.encode(`${header}.${payload}.${signature}`);
  });
}

function floodSource(options: Options): string {
  if (options.floodFrom) return options.floodFrom;
  return options.hostname.startsWith("127.")
    ? "127.0.0.2"
    : bindAddress(options.hostname);
}

async function runFlood(
  payloads: Uint8Array[],
  walker: GroupPlan,
  target: { hostname: string; port: number },
  options: Options,
): Promise<{ flood: FloodDone; walker: WindowResult }> {
  const worker = new Worker(
    new URL("./_flood_worker.ts", import.meta.url),
    { type: "module" },
  );
  try {
    const messages: { type: string }[] = [];
    let wake: (() => void) | undefined;
    worker.onmessage = (e: MessageEvent) => {
      messages.push(e.data);
      wake?.();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      messages.push({ type: "error", message: e.message } as {
        type: string;
      });
      wake?.();
    };
    const waitFor = async (type: string) => {
      while (true) {
        const m = messages.shift();
        if (m?.type === type) return m;
        if (m?.type === "error") {
          throw new Error(
            `The flood worker failed: ${(m as { message?: string }).message}`,
          );
        }
        if (!m) await new Promise<void>((r) => wake = r);
      }
    };
    const start: FloodStart = {
      type: "start",
      hostname: target.hostname,
      port: target.port,
      bind: floodSource(options),
      rate: options.floodRate,
      seconds: options.seconds,
      payloads,
    };
    worker.postMessage(start);
    await waitFor("ready");
    worker.postMessage({ type: "go" });
    const walked = await runWindow([walker], {
      ...target,
      window: 1,
      seconds: options.seconds,
      timeoutMs: options.timeoutMs,
      cycle: options.cycle,
      pace: options.walkerRate,
      retransmitMs: options.retransmitMs ?? 250,
    });
    worker.postMessage({ type: "stop" });
    const flood = await waitFor("done") as FloodDone;
    return { flood, walker: walked };
  } finally {
    worker.terminate();
  }
}

// ------------------------------------------------------------- reference --

/** One-core sign and verify rates from `openssl speed`. */
interface SpeedFigures {
  signPerSec: number;
  verifyPerSec: number;
}

/**
 * Reads `openssl speed`'s table: the header holding `sign/s verify/s` and
 * the line after it (OpenSSL 3.0 and 3.2+ layouts).
 */
function parseOpensslSpeed(text: string): SpeedFigures | undefined {
  const lines = text.split("\n");
  const h = lines.findIndex((l) => /\bsign\/s\s+verify\/s\b/.test(l));
  const data = lines[h + 1];
  if (h < 0 || data === undefined) return undefined;
  const columns = lines[h]!.trim().split(/\s+/);
  const values = data.trim().split(/\s+/).slice(-columns.length);
  const sign = Number(values[columns.indexOf("sign/s")]);
  const verify = Number(values[columns.indexOf("verify/s")]);
  if (!Number.isFinite(sign) || !Number.isFinite(verify)) return undefined;
  return { signPerSec: sign, verifyPerSec: verify };
}

async function opensslSpeed(
  algorithm: string,
): Promise<SpeedFigures | undefined> {
  try {
    const out = await new Deno.Command("openssl", {
      args: ["speed", "-seconds", "3", algorithm],
      stdout: "piped",
      stderr: "null",
    }).output();
    return parseOpensslSpeed(new TextDecoder().decode(out.stdout));
  } catch {
    return undefined;
  }
}

// --------------------------------------------------------------- context --

interface Machine {
  nproc: number;
  cpu: string;
  loadAvg: string;
  deno: string;
}

/**
 * Reads a Linux `/proc` file through `cat`: Deno asks for `--allow-all` to
 * read `/proc` directly, and the tool already may run programs.
 */
async function readProc(path: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("cat", {
      args: [path],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined; // not Linux
  }
}

async function machine(): Promise<Machine> {
  const info = await readProc("/proc/cpuinfo") ?? "";
  const cpu = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? "unknown";
  const load = await readProc("/proc/loadavg");
  const loadAvg = load?.split(" ").slice(0, 3).join(" ") ?? "unknown";
  return {
    nproc: navigator.hardwareConcurrency,
    cpu,
    loadAvg,
    deno: Deno.version.deno,
  };
}

/** Linux's UDP counters (system-wide): receive-buffer drops show as loss. */
async function udpCounters(): Promise<Record<string, number> | undefined> {
  const text = await readProc("/proc/net/snmp");
  if (text === undefined) return undefined;
  {
    const lines = text.split("\n").filter((l) => l.startsWith("Udp:"));
    const names = lines[0]?.split(/\s+/).slice(1) ?? [];
    const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
    return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
  }
}

// ------------------------------------------------------------------ main --

function groupsFor(options: Options): Map<Alg, number> {
  switch (options.mode) {
    case "rs256":
      return new Map([["RS256", options.groups], ["ES256", 0]]);
    case "es256":
      return new Map([["RS256", 0], ["ES256", options.groups]]);
    case "mixed":
      return new Map([
        ["RS256", Math.ceil(options.groups / 2)],
        ["ES256", Math.floor(options.groups / 2)],
      ]);
    case "flood":
      return new Map([
        ["RS256", options.walkerAlg === "RS256" ? 1 : 0],
        ["ES256", options.walkerAlg === "ES256" ? 1 : 0],
      ]);
  }
}

/** The groups of the run, interleaved by algorithm in mixed mode. */
function groupOrder(counts: Map<Alg, number>): { name: string; alg: Alg }[] {
  const rs = counts.get("RS256") ?? 0;
  const es = counts.get("ES256") ?? 0;
  const out: { name: string; alg: Alg }[] = [];
  for (let i = 0; i < Math.max(rs, es); i++) {
    if (i < rs) out.push({ name: groupName("RS256", i), alg: "RS256" });
    if (i < es) out.push({ name: groupName("ES256", i), alg: "ES256" });
  }
  return out;
}

/** Tokens per group: enough for the run, a whole number of walks. */
function tokensPerGroup(
  options: Options,
  order: { alg: Alg }[],
): number {
  const walk = options.states;
  const g = order.length;
  let total: number;
  if (options.tokens !== undefined) {
    total = options.tokens;
  } else if (options.mode === "flood") {
    total = Math.ceil(options.walkerRate * options.seconds * 1.05) + walk;
  } else if (options.cycle) {
    total = 0; // the minimum below
  } else {
    const mix = order.reduce((n, o) => n + RATE_GUESS[o.alg], 0) / g;
    const rate = Math.min(mix, options.window * RATE_PER_OUTSTANDING);
    total = Math.ceil(rate * options.seconds);
  }
  if (options.cycle) {
    const cache = replayCacheArg(options.serverArgs) ?? CYCLE_REPLAY_CACHE;
    const window = options.mode === "flood" ? 1 : options.window;
    const minimum = 2 * (cache + window);
    if (options.tokens !== undefined && options.tokens < minimum) {
      throw new UsageError(
        `--cycle needs --tokens of at least ${minimum} (2 x (replay cache ${cache} + window ${window})) so every token is evicted before it comes round again`,
      );
    }
    total = Math.max(total, minimum);
  }
  return Math.max(1, Math.ceil(total / g / walk)) * walk;
}

/** Everything the tool reports. */
interface Report {
  mode: Mode;
  window: number;
  seconds: number;
  groups: { name: string; alg: Alg }[];
  tokens: {
    distinct: number;
    cycle: boolean;
    signSec: number;
    signedPerSec: number;
    expSec: number;
  };
  target: {
    hostname: string;
    port: number;
    spawned: boolean;
    /** The server's verify backend, as its start-up summary says. */
    verify?: string;
  };
  serverArgs?: string[];
  result?: Summary;
  flood?: {
    kind: FloodKind;
    size: number | null;
    from: string;
    targetRate: number;
    sent: number;
    achievedRate: number;
    sendErrors: number;
    answers: number;
    walker: Summary;
  };
  server?: ServerFacts;
  udp?: Record<string, number>;
  openssl?: {
    rsa2048?: SpeedFigures;
    ecdsap256?: SpeedFigures;
    /** The one-core verify rate of the run's algorithm mix. */
    mixVerifyPerSec?: number;
    /** responses/s ÷ mixVerifyPerSec. */
    ratio?: number;
  };
  machine: Machine;
}

function mb(bytes: number | undefined): string {
  return bytes === undefined || Number.isNaN(bytes)
    ? "?"
    : `${(bytes / 1048576).toFixed(1)} MB`;
}

function describe(s: Summary, indent = ""): string[] {
  const l = s.latencyMs;
  const errors = Object.entries(s.errors);
  return [
    `${indent}sent          ${s.sent}`,
    `${indent}received      ${s.received}${
      s.late > 0 ? ` (+${s.late} after the timeout)` : ""
    }${s.unmatched > 0 ? ` (+${s.unmatched} unmatched)` : ""}`,
    `${indent}lost          ${s.lost}${
      s.sendErrors > 0 ? ` (${s.sendErrors} send errors)` : ""
    }${s.retransmissions > 0 ? ` (${s.retransmissions} retransmissions)` : ""}`,
    `${indent}responses/s   ${s.responsesPerSec} (over ${s.activeSec} s${
      s.exhausted ? "; tokens ran out: raise --tokens" : ""
    })`,
    `${indent}latency ms    p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}  mean ${l.mean}`,
    `${indent}correct       ${
      s.correctShare === null ? "-" : `${(s.correctShare * 100).toFixed(2)} %`
    } (${s.correct} of ${s.received})`,
    ...(errors.length > 0
      ? [
        `${indent}errors        ${
          errors.map(([c, n]) => `${c} ${n}`).join(", ")
        }`,
      ]
      : []),
  ];
}

function render(r: Report): string[] {
  const lines = [
    `udpjwt load: mode ${r.mode}${
      r.mode === "flood" ? "" : `, window ${r.window}`
    }, ${r.seconds} s, groups ${r.groups.length} (${
      [...new Set(r.groups.map((g) => g.alg))].join("+")
    })`,
    `machine       ${r.machine.nproc} x ${r.machine.cpu}, load ${r.machine.loadAvg}, deno ${r.machine.deno}`,
    `target        ${r.target.hostname} port ${r.target.port}${
      r.target.spawned ? ` (spawned: ${r.serverArgs?.slice(3).join(" ")})` : ""
    }`,
    ...(r.target.verify ? [`verify        ${r.target.verify}`] : []),
    `tokens        ${r.tokens.distinct} distinct${
      r.tokens.cycle ? ", cycled" : ""
    }, signed in ${r.tokens.signSec} s (${r.tokens.signedPerSec}/s), exp +${r.tokens.expSec} s`,
  ];
  if (r.result) lines.push(...describe(r.result));
  if (r.flood) {
    const f = r.flood;
    lines.push(
      `flood         ${f.kind}${
        f.size === null ? "" : ` ${f.size} B`
      } from ${f.from}: ${f.sent} sent at ${f.achievedRate}/s (target ${f.targetRate}/s), ${f.answers} answered${
        f.sendErrors > 0 ? `, ${f.sendErrors} send errors` : ""
      }`,
      "walker:",
      ...describe(f.walker, "  "),
    );
  }
  if (r.server) {
    const s = r.server;
    lines.push(
      `server        rss ${mb(s.procRss?.before)} before the load -> ${
        mb(s.procRss?.after)
      } after (peak ${mb(s.procRss?.peak)}); log: ${
        mb(s.readyRss)
      } at Ready -> ${mb(s.stoppedRss)} at Stop`,
      `server        replay cache ${s.cached ?? "?"} cached, ${
        s.evicted ?? "?"
      } evicted; stopped in ${s.stopSec?.toFixed(1)} s (exit ${s.exitCode})`,
      `server counts ${JSON.stringify(s.counts ?? {})}`,
    );
    if (s.cpu) {
      const share = (sec: number) => Math.round(100 * sec / s.cpu!.wallSec);
      lines.push(
        `server cpu    main thread ${s.cpu.mainUsPerDatagram} µs per datagram (${
          share(s.cpu.mainSec)
        } % of a core), whole process ${s.cpu.processUsPerDatagram} µs (${
          share(s.cpu.processSec)
        } %)`,
      );
    }
  }
  if (r.udp) {
    lines.push(
      `kernel udp    RcvbufErrors +${r.udp.RcvbufErrors ?? 0}, InErrors +${
        r.udp.InErrors ?? 0
      } (system-wide)`,
    );
  }
  if (r.openssl) {
    const o = r.openssl;
    lines.push(
      `openssl       rsa2048 verify ${
        o.rsa2048?.verifyPerSec ?? "?"
      }/s, ecdsap256 verify ${o.ecdsap256?.verifyPerSec ?? "?"}/s (one core)${
        o.ratio === undefined
          ? ""
          : `; responses/s / verify/s = ${o.ratio.toFixed(4)}`
      }`,
    );
  }
  return lines;
}

async function run(options: Options): Promise<Report | undefined> {
  const counts = groupsFor(options);
  const order = groupOrder(counts);
  const lab = await prepareLab(options.lab, counts, options.spawn);
  if (options.prepare) {
    progress(`lab ready: ${lab.dir}`);
    progress(
      `start a server on it, e.g.: deno run --allow-net --allow-read --allow-write --allow-ffi main.ts 127.0.0.1 44555 ${lab.dir}`,
    );
    return undefined;
  }
  const runDir = await Deno.makeTempDir({ prefix: "udpjwt_load_run_" });
  let server: SpawnedServer | undefined;
  try {
    const m = await machine();
    let speeds: Report["openssl"];
    if (options.openssl) {
      progress("openssl speed -seconds 3 rsa2048 / ecdsap256 …");
      const rsa2048 = await opensslSpeed("rsa2048");
      const ecdsap256 = await opensslSpeed("ecdsap256");
      speeds = {
        ...(rsa2048 ? { rsa2048 } : {}),
        ...(ecdsap256 ? { ecdsap256 } : {}),
      };
    }
    const perGroup = tokensPerGroup(options, order);
    progress(
      `signing ${
        perGroup * order.length
      } tokens (${order.length} groups x ${perGroup}) …`,
    );
    const signed = await presign(
      order.map((o) => ({ ...o, count: perGroup })),
      lab,
      { states: options.states, expSec: options.expSec },
    );
    const distinct = perGroup * order.length;
    let target = { hostname: options.hostname, port: options.port ?? 0 };
    if (options.spawn) {
      server = await spawnServer(lab, options, runDir);
      target = { hostname: server.hostname, port: server.port };
      progress(`server listening on ${target.hostname} port ${target.port}`);
    }
    const udpBefore = await udpCounters();
    const rssBefore = server ? await processRss(server.pid) : undefined;
    const ticks = await clockTicks();
    const cpuBefore = server ? await processCpu(server.pid, ticks) : undefined;
    const report: Report = {
      mode: options.mode,
      window: options.mode === "flood" ? 1 : options.window,
      seconds: options.seconds,
      groups: order,
      tokens: {
        distinct,
        cycle: options.cycle,
        signSec: round(signed.seconds, 2)!,
        signedPerSec: Math.round(distinct / signed.seconds),
        expSec: options.expSec,
      },
      target: {
        ...target,
        spawned: options.spawn,
        ...(server?.verify ? { verify: server.verify } : {}),
      },
      ...(server ? { serverArgs: server.args } : {}),
      machine: m,
    };
    progress(`running ${options.mode} for ${options.seconds} s …`);
    if (options.mode === "flood") {
      const walker = signed.groups[0]!;
      const payloads = await floodPayloads(
        options.floodKind,
        options.floodSize,
        walker,
        lab,
        options.expSec,
      );
      const { flood, walker: walked } = await runFlood(
        payloads,
        walker,
        target,
        options,
      );
      report.flood = {
        kind: options.floodKind,
        size: options.floodKind === "random" ? options.floodSize : null,
        from: floodSource(options),
        targetRate: options.floodRate,
        sent: flood.sent,
        achievedRate: Math.round(flood.sent / Math.max(flood.elapsedSec, 1e-3)),
        sendErrors: flood.sendErrors,
        answers: flood.answers,
        walker: summarize(walked, 1, options.states),
      };
    } else {
      const result = await runWindow(signed.groups, {
        ...target,
        window: options.window,
        seconds: options.seconds,
        timeoutMs: options.timeoutMs,
        cycle: options.cycle,
        ...(options.retransmitMs === undefined
          ? {}
          : { retransmitMs: options.retransmitMs }),
      });
      report.result = summarize(result, order.length, options.states);
    }
    const udpAfter = await udpCounters();
    if (udpBefore && udpAfter) {
      report.udp = Object.fromEntries(
        Object.entries(udpAfter).map(([k, v]) => [k, v - (udpBefore[k] ?? 0)]),
      );
    }
    if (server) {
      const cpuAfter = await processCpu(server.pid, ticks);
      const rssAfter = await processRss(server.pid);
      const datagrams = report.flood
        ? report.flood.sent + report.flood.walker.sent
        : report.result?.sent ?? 0;
      progress("stopping the server …");
      report.server = {
        ...await server.stop(),
        ...(cpuBefore && cpuAfter && datagrams > 0
          ? { cpu: cpuUse(cpuBefore, cpuAfter, datagrams) }
          : {}),
        procRss: {
          ...(rssBefore?.rss === undefined ? {} : { before: rssBefore.rss }),
          ...(rssAfter.rss === undefined ? {} : { after: rssAfter.rss }),
          ...(rssAfter.peak === undefined ? {} : { peak: rssAfter.peak }),
        },
      };
      server = undefined;
    }
    if (speeds) {
      const rps = report.result?.responsesPerSec;
      const rs = speeds.rsa2048?.verifyPerSec;
      const es = speeds.ecdsap256?.verifyPerSec;
      const shareRs = (counts.get("RS256") ?? 0) / order.length;
      const mix = rs !== undefined && es !== undefined
        ? 1 / (shareRs / rs + (1 - shareRs) / es)
        : undefined;
      report.openssl = {
        ...speeds,
        ...(mix !== undefined ? { mixVerifyPerSec: Math.round(mix) } : {}),
        ...(rps !== undefined && mix !== undefined
          ? { ratio: round(rps / mix, 5)! }
          : {}),
      };
    }
    return report;
  } finally {
    if (server) await server.stop().catch(() => {});
    if (options.keepLab) {
      progress(`kept: lab ${lab.dir}, server logs and state ${runDir}`);
    } else {
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
      if (lab.temporary) {
        await Deno.remove(lab.dir, { recursive: true }).catch(() => {});
      }
    }
  }
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
  let report: Report | undefined;
  try {
    report = await run(options);
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
