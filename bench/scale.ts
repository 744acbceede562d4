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
 * @module
 */

import { jwtVerify, SignJWT } from "jose";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { COLOURS } from "../lib/protocol/fsm.ts";

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

/** The protocol's audience of requests and issuer of answers. */
const AUDIENCE = "udp.socket.server.for.jwt";
/** States of the default machine: a walk is 0..6. */
const STATES = 7;
/** Roster members per group. */
const MEMBERS = 4;
const RETRANSMIT_MS = 1000;
/** Sends of one request before the walk of its group counts as failed. */
const MAX_SENDS = 10;
const START_TIMEOUT_MS = 120_000;
const WALK_TIMEOUT_MS = 120_000;
const REPO = fileURLToPath(new URL("../", import.meta.url));
const SERVER_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
];

export interface Options {
  sizes: number[];
  walkers: number;
  window: number;
  sockets: number;
  rsaEvery: number;
  rsaPool: number;
  timeoutSec: number;
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

function parseOptions(args: string[]): Options | "help" {
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

// ---------------------------------------------------------------- the lab

type Alg = "RS256" | "ES256";

export interface LabGroup {
  /** Upper-case group name. */
  name: string;
  alg: Alg;
  /** `PEM SPKI` or `OpenSSH`. */
  format: string;
  priv: CryptoKey;
  /** Registration numbers of its roster members. */
  members: number[];
}

export interface Lab {
  dir: string;
  groups: LabGroup[];
  secret: Uint8Array<ArrayBuffer>;
  rsaGroups: number;
  rsaKeys: number;
  buildSec: number;
}

const RSA_PARAMS: RsaHashedKeyGenParams = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
const EC_PARAMS: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };

function pem(label: string, der: ArrayBuffer): string {
  const lines = new Uint8Array(der).toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----\n`;
}

/** The OpenSSH wire encoding: each field as a uint32 length and its bytes. */
function sshWire(fields: (string | Uint8Array)[]): Uint8Array<ArrayBuffer> {
  const parts = fields.map((f) =>
    typeof f === "string" ? new TextEncoder().encode(f) : f
  );
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const p of parts) {
    view.setUint32(pos, p.length);
    out.set(p, pos + 4);
    pos += 4 + p.length;
  }
  return out;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  return out;
}

let rsaPool: CryptoKeyPair[] | undefined;

async function rsaPairs(count: number): Promise<CryptoKeyPair[]> {
  rsaPool ??= [];
  while (rsaPool.length < count) {
    const more = await Promise.all(
      Array.from(
        { length: count - rsaPool.length },
        () =>
          crypto.subtle.generateKey(RSA_PARAMS, true, [
            "sign",
            "verify",
          ]) as Promise<CryptoKeyPair>,
      ),
    );
    rsaPool.push(...more);
  }
  return rsaPool.slice(0, count);
}

/**
 * Builds a lab of `size` groups under `root`.
 *
 * @param root A fresh directory.
 * @param size The number of groups.
 * @param options The RSA share and pool size.
 * @returns The lab with every group's private key.
 */
export async function buildLab(
  root: string,
  size: number,
  options: Options,
): Promise<Lab> {
  const t0 = performance.now();
  await Deno.mkdir(`${root}/keys_pub`, { recursive: true });
  await Deno.mkdir(`${root}/keys_priv`, { recursive: true });
  const hex = crypto.getRandomValues(new Uint8Array(16)).toHex();
  const secret = new TextEncoder().encode(`udpjwt-scale-${hex}\n`);
  await Deno.writeFile(`${root}/keys_priv/key_secret_for_hmac.txt`, secret);
  const rsaGroups = Math.ceil(size / options.rsaEvery);
  const pool = await rsaPairs(Math.min(options.rsaPool, rsaGroups));
  const rsaPems = await Promise.all(
    pool.map(async (p) =>
      pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", p.publicKey))
    ),
  );
  const indexes = Array.from({ length: size }, (_, i) => i);
  const groups = await mapLimit(indexes, 64, async (i): Promise<LabGroup> => {
    const stem = `scale_${String(i).padStart(5, "0")}`;
    const name = stem.toUpperCase();
    const members = Array.from(
      { length: MEMBERS },
      (_, m) => 30_000_000 + i * MEMBERS + m,
    );
    if (i % options.rsaEvery === 0) {
      const k = Math.floor(i / options.rsaEvery) % pool.length;
      await Deno.writeTextFile(`${root}/keys_pub/${stem}.pem`, rsaPems[k]!);
      return {
        name,
        alg: "RS256",
        format: "PEM SPKI",
        priv: pool[k]!.privateKey,
        members,
      };
    }
    const pair = await crypto.subtle.generateKey(EC_PARAMS, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    // Alternate the two formats among the P-256 groups.
    const ecIndex = i - Math.floor(i / options.rsaEvery) - 1;
    if (ecIndex % 2 === 0) {
      const spki = await crypto.subtle.exportKey("spki", pair.publicKey);
      await Deno.writeTextFile(
        `${root}/keys_pub/${stem}.pem`,
        pem("PUBLIC KEY", spki),
      );
      return {
        name,
        alg: "ES256",
        format: "PEM SPKI",
        priv: pair.privateKey,
        members,
      };
    }
    const point = new Uint8Array(
      await crypto.subtle.exportKey("raw", pair.publicKey),
    );
    const blob = sshWire(["ecdsa-sha2-nistp256", "nistp256", point]);
    await Deno.writeTextFile(
      `${root}/keys_pub/${stem}.ssh`,
      `ecdsa-sha2-nistp256 ${blob.toBase64()} ${stem}@scale\n`,
    );
    return {
      name,
      alg: "ES256",
      format: "OpenSSH",
      priv: pair.privateKey,
      members,
    };
  });
  const roster = Object.fromEntries(groups.map((g) => [g.name, g.members]));
  await Deno.writeTextFile(
    `${root}/groups.json`,
    JSON.stringify({ groups: roster }),
  );
  return {
    dir: root,
    groups,
    secret,
    rsaGroups,
    rsaKeys: pool.length,
    buildSec: (performance.now() - t0) / 1000,
  };
}

// ------------------------------------------------------------- processes

/** Servers and commands still running, killed on the hard timeout. */
const children = new Set<Deno.ChildProcess>();

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

async function readProcStatus(pid: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const text = await Deno.readTextFile(`/proc/${pid}/status`);
    for (const m of text.matchAll(/^(Vm\w+|Threads):\s+(\d+)/gm)) {
      out[m[1]!] = Number(m[2]);
    }
  } catch {
    // Not Linux, or the process is gone.
  }
  return out;
}

/** The 1, 5 and 15 minute load averages, or "-" off Linux. */
async function loadAverage(): Promise<string> {
  try {
    const text = await Deno.readTextFile("/proc/loadavg");
    return text.split(" ").slice(0, 3).join(" ");
  } catch {
    return "-";
  }
}

interface Server {
  child: Deno.ChildProcess;
  port: number;
  /** Seconds from spawn to the `Ready` line. */
  readySec: number;
  /** `VmRSS` at `Ready`, in kB. */
  rssKb: number | undefined;
  /** The 1-minute load average at `Ready`. */
  load: string;
  /** Everything printed so far on stderr. */
  stderr: string[];
  /** Lines printed on stdout after `Ready`. */
  stdout: string[];
}

/** Reads a byte stream line by line into `sink` until it ends. */
async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  if (rest !== "") onLine(rest);
}

async function startServer(
  lab: Lab,
  stateDir: string,
  logDir: string,
): Promise<Server> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SERVER_PERMISSIONS,
      "main.ts",
      "127.0.0.1",
      "0",
      lab.dir,
      "--log-dir",
      logDir,
      "--state-dir",
      stateDir,
    ],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  const stderr: string[] = [];
  const stdout: string[] = [];
  let port: number | undefined;
  let readySec: number | undefined;
  const { promise: ready, resolve, reject } = Promise.withResolvers<void>();
  pumpLines(child.stdout, (line) => {
    if (readySec !== undefined) {
      if (stdout.length < 1000) stdout.push(line);
      return;
    }
    const m = /^listening on \S+ port (\d+) \(udp\)/.exec(line);
    if (m) port = Number(m[1]);
    if (/ Ready: /.test(line)) {
      readySec = (performance.now() - t0) / 1000;
      resolve();
    }
  }).catch(() => {});
  pumpLines(child.stderr, (line) => {
    if (stderr.length < 1000) stderr.push(line);
  }).catch(() => {});
  child.status.then((s) => {
    reject(
      new Error(`the server exited with code ${s.code}: ${stderr.join("\n")}`),
    );
  });
  const timer = setTimeout(
    () => reject(new Error("the server did not print Ready in time")),
    START_TIMEOUT_MS,
  );
  try {
    await ready;
  } catch (e) {
    await stopServer(child);
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const rssKb = (await readProcStatus(child.pid)).VmRSS;
  const load = (await loadAverage()).split(" ")[0] ?? "-";
  if (port === undefined) {
    await stopServer(child);
    throw new Error("the server printed no port");
  }
  return { child, port, readySec: readySec!, rssKb, load, stderr, stdout };
}

async function stopServer(child: Deno.ChildProcess): Promise<void> {
  kill(child, "SIGTERM");
  const timer = setTimeout(() => kill(child, "SIGKILL"), 10_000);
  try {
    await child.status;
  } finally {
    clearTimeout(timer);
    children.delete(child);
  }
}

interface Timed {
  sec: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts` with `args` to completion, timed from spawn to exit. */
async function timeMain(args: string[]): Promise<Timed> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...SERVER_PERMISSIONS, "main.ts", ...args],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  const timer = setTimeout(() => kill(child, "SIGKILL"), START_TIMEOUT_MS);
  try {
    const out = await child.output();
    const sec = (performance.now() - t0) / 1000;
    const text = new TextDecoder();
    return {
      sec,
      code: out.code,
      stdout: text.decode(out.stdout),
      stderr: text.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
    children.delete(child);
  }
}

/** The JSON log's records with a given message prefix. */
async function logRecords(
  logDir: string,
  prefix: string,
): Promise<Record<string, unknown>[]> {
  try {
    const text = await Deno.readTextFile(`${logDir}/udpjwt.jsonl`);
    return text.split("\n").filter((l) => l.includes(`"message":"${prefix}`))
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

// ------------------------------------------------------------------ walk

interface Step {
  sn: number;
  bytes: Uint8Array<ArrayBuffer>;
  /** `id_request`: the hex SHA-256 of the token's payload bytes. */
  id: string;
}

interface Walker {
  group: LabGroup;
  socket: number;
  steps: Step[];
  /** The step outstanding or next to send. */
  at: number;
  firstSentAt: number;
  lastSentAt: number;
  sends: number;
  inFlight: boolean;
  failed?: string;
}

/** What a walk produced. */
interface WalkResult {
  groups: number;
  rsaGroups: number;
  requests: number;
  answers: number;
  wrong: number;
  wrongSamples: string[];
  duplicates: number;
  unmatched: number;
  retransmissions: number;
  /** Datagrams dropped by full socket receive buffers (system-wide). */
  rcvbufErrors: number | undefined;
  failedGroups: number;
  completedGroups: number;
  signSec: number;
  walkSec: number;
  answersPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function signSteps(group: LabGroup, nowSec: number): Promise<Step[]> {
  const steps: Step[] = [];
  for (let sn = 0; sn < STATES; sn++) {
    const token = await new SignJWT({
      sub: group.name,
      aud: AUDIENCE,
      iat: nowSec,
      exp: nowSec + 300,
      jti: crypto.getRandomValues(new Uint8Array(16)).toHex(),
      seq_state_number: sn,
      seq_state: COLOURS[sn] ?? "RED",
      seq_max: MEMBERS,
      registration: group.members[sn % MEMBERS]!,
    }).setProtectedHeader({ alg: group.alg, typ: "JWT" }).sign(group.priv);
    const payload = Uint8Array.fromBase64(token.split(".")[1]!, {
      alphabet: "base64url",
    });
    steps.push({
      sn,
      bytes: new TextEncoder().encode(token),
      id: sha256Hex(payload),
    });
  }
  return steps;
}

/** Linux's system-wide count of UDP datagrams dropped for a full buffer. */
async function rcvbufErrors(): Promise<number | undefined> {
  try {
    const lines = (await Deno.readTextFile("/proc/net/snmp")).split("\n")
      .filter((l) => l.startsWith("Udp: "));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    const i = names.indexOf("RcvbufErrors");
    return i < 0 ? undefined : Number(values[i]);
  } catch {
    return undefined;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

/**
 * Walks `count` groups of the lab (spread evenly) from 0 to 6 at once.
 *
 * @param lab The lab the server loaded.
 * @param port The server's port on 127.0.0.1.
 * @param count How many groups walk.
 * @param options Window and socket count.
 * @returns Counts, rates and latencies.
 */
async function walk(
  lab: Lab,
  port: number,
  count: number,
  options: Options,
): Promise<WalkResult> {
  // Evenly spread, with an offset that cycles through the RSA/P-256 pattern
  // (every tenth group of 10,000 would be RSA only).
  const stride = lab.groups.length / count;
  const chosen = Array.from(
    { length: count },
    (_, i) =>
      lab.groups[
        Math.floor(i * stride) + i % Math.max(1, Math.floor(stride))
      ]!,
  );
  const t0 = performance.now();
  const nowSec = Math.floor(Date.now() / 1000);
  const signed = await mapLimit(chosen, 32, (g) => signSteps(g, nowSec));
  const signSec = (performance.now() - t0) / 1000;
  const hmac = await crypto.subtle.importKey(
    "raw",
    lab.secret,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const sockets = Array.from(
    { length: Math.min(options.sockets, count) },
    () =>
      Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" }),
  );
  const walkers: Walker[] = chosen.map((group, i) => ({
    group,
    socket: i % sockets.length,
    steps: signed[i]!,
    at: 0,
    firstSentAt: 0,
    lastSentAt: 0,
    sends: 0,
    inFlight: false,
  }));
  const byId = new Map<string, [Walker, Step]>();
  for (const w of walkers) for (const s of w.steps) byId.set(s.id, [w, s]);
  const server: Deno.NetAddr = {
    transport: "udp",
    hostname: "127.0.0.1",
    port,
  };
  const r: WalkResult = {
    groups: count,
    rsaGroups: chosen.filter((g) => g.alg === "RS256").length,
    requests: 0,
    answers: 0,
    wrong: 0,
    wrongSamples: [],
    duplicates: 0,
    unmatched: 0,
    retransmissions: 0,
    rcvbufErrors: undefined,
    failedGroups: 0,
    completedGroups: 0,
    signSec,
    walkSec: 0,
    answersPerSec: 0,
    latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 },
  };
  const latencies: number[] = [];
  const { promise: finished, resolve: finish } = Promise.withResolvers<
    void
  >();
  const ready: Walker[] = [...walkers];
  let readyHead = 0;
  let inFlight = 0;
  let lastAnswerAt = 0;

  // Sends go out one at a time per socket: Deno does not keep the call
  // order of concurrent sends on one socket.
  const queues = sockets.map(() => [] as Uint8Array<ArrayBuffer>[]);
  const pumping = sockets.map(() => false);
  async function pump(s: number): Promise<void> {
    if (pumping[s]) return;
    pumping[s] = true;
    const q = queues[s]!;
    while (q.length > 0) {
      try {
        await sockets[s]!.send(q.shift()!, server);
      } catch {
        // A refused send is retransmitted after the timeout.
      }
    }
    pumping[s] = false;
  }
  function send(w: Walker): void {
    const now = performance.now();
    if (w.sends === 0) w.firstSentAt = now;
    else r.retransmissions++;
    w.lastSentAt = now;
    w.sends++;
    queues[w.socket]!.push(w.steps[w.at]!.bytes);
    pump(w.socket);
  }
  function settle(): void {
    if (r.completedGroups + r.failedGroups === count) finish();
  }
  function fill(): void {
    while (inFlight < options.window && readyHead < ready.length) {
      const w = ready[readyHead++]!;
      w.inFlight = true;
      w.sends = 0;
      inFlight++;
      r.requests++;
      send(w);
    }
    if (readyHead > 4096) {
      ready.splice(0, readyHead);
      readyHead = 0;
    }
  }
  function fail(w: Walker, why: string): void {
    w.failed = why;
    if (w.inFlight) inFlight--;
    w.inFlight = false;
    r.failedGroups++;
    if (r.wrongSamples.length < 10) {
      r.wrongSamples.push(`${w.group.name}: ${why}`);
    }
  }

  async function onAnswer(data: Uint8Array): Promise<void> {
    const text = new TextDecoder().decode(data).trim();
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(text, hmac, {
        algorithms: ["HS256"],
        issuer: AUDIENCE,
      }));
    } catch (e) {
      r.wrong++;
      if (r.wrongSamples.length < 10) {
        r.wrongSamples.push(`unverifiable answer: ${e}: ${text.slice(0, 80)}`);
      }
      return;
    }
    const hit = byId.get(String(claims.id_request));
    if (!hit) {
      r.unmatched++;
      return;
    }
    const [w, step] = hit;
    if (w.failed || !w.inFlight || w.steps[w.at] !== step) {
      r.duplicates++; // an answer to a retransmission already answered
      return;
    }
    const want = (step.sn + 1) % STATES;
    if (
      claims.error !== undefined || claims.sub !== w.group.name ||
      claims.next_number !== want
    ) {
      r.wrong++;
      fail(
        w,
        `step ${step.sn}: expected next_number ${want}, got ${
          JSON.stringify(claims)
        }`,
      );
    } else {
      const now = performance.now();
      lastAnswerAt = now;
      latencies.push(now - w.firstSentAt);
      r.answers++;
      w.inFlight = false;
      inFlight--;
      w.at++;
      if (w.at === STATES) r.completedGroups++;
      else ready.push(w);
    }
    fill();
    settle();
  }

  const receivers = sockets.map(async (conn) => {
    while (true) {
      let data: Uint8Array;
      try {
        [data] = await conn.receive();
      } catch {
        return; // closed
      }
      onAnswer(data).catch((e) => progress(`scale: answer: ${e}`));
    }
  });
  const retransmit = setInterval(() => {
    const now = performance.now();
    for (const w of walkers) {
      if (!w.inFlight || now - w.lastSentAt < RETRANSMIT_MS) continue;
      if (w.sends >= MAX_SENDS) {
        fail(w, `step ${w.at}: no answer after ${MAX_SENDS} sends`);
        continue;
      }
      send(w);
    }
    fill();
    settle();
  }, 100);
  const udpBefore = await rcvbufErrors();
  const start = performance.now();
  const deadline = setTimeout(finish, WALK_TIMEOUT_MS);
  fill();
  await finished;
  clearTimeout(deadline);
  clearInterval(retransmit);
  for (const w of walkers) {
    if (!w.failed && w.at < STATES) fail(w, `step ${w.at}: walk timed out`);
  }
  for (const s of sockets) s.close();
  await Promise.all(receivers);
  const udpAfter = await rcvbufErrors();
  if (udpBefore !== undefined && udpAfter !== undefined) {
    r.rcvbufErrors = udpAfter - udpBefore;
  }
  r.walkSec = ((lastAnswerAt || performance.now()) - start) / 1000;
  r.answersPerSec = r.answers / r.walkSec;
  latencies.sort((a, b) => a - b);
  r.latencyMs = {
    p50: percentile(latencies, 0.5),
    p90: percentile(latencies, 0.9),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? NaN,
  };
  return r;
}

// ------------------------------------------------------------------- runs

interface RunResult {
  groups: number;
  run: number;
  readySec: number;
  load: string;
  rssMb: number | undefined;
  logRssMb: number | undefined;
  keysSec: number;
  keysCode: number;
  statusSec: number;
  statusCode: number;
  statusWalked: number | undefined;
  rssAfterWalkMb: number | undefined;
  hwmMb: number | undefined;
  serverCounts: unknown;
  walk: WalkResult | undefined;
}

function mb(kb: number | undefined): number | undefined {
  return kb === undefined ? undefined : kb / 1024;
}

async function runOnce(
  lab: Lab,
  run: number,
  options: Options,
  tmp: string,
): Promise<RunResult> {
  const size = lab.groups.length;
  const stateDir = `${tmp}/state-${size}-${run}`;
  const logDir = `${tmp}/log-${size}-${run}`;
  progress(`scale: ${size} groups, run ${run}: starting the server`);
  const server = await startServer(lab, stateDir, logDir);
  let walked: WalkResult | undefined;
  let status: Timed;
  let statusWalked: number | undefined;
  let after: Record<string, number>;
  try {
    progress(
      `scale: ready in ${server.readySec.toFixed(2)} s, RSS ${
        (mb(server.rssKb) ?? NaN).toFixed(0)
      } MB; walking ${Math.min(options.walkers, size)} groups`,
    );
    walked = await walk(
      lab,
      server.port,
      Math.min(options.walkers, size),
      options,
    );
    progress(
      `scale: ${walked.answers} answers in ${
        walked.walkSec.toFixed(2)
      } s, ${walked.wrong} wrong, ${walked.retransmissions} retransmissions`,
    );
    after = await readProcStatus(server.child.pid);
    status = await timeMain(["status", lab.dir, "--state-dir", stateDir]);
    const json = await timeMain([
      "status",
      lab.dir,
      "--state-dir",
      stateDir,
      "--json",
    ]);
    if (json.code === 0) {
      const groups = JSON.parse(json.stdout).groups as { walks: number }[];
      statusWalked = groups.filter((g) => g.walks >= 1).length;
    }
  } finally {
    await stopServer(server.child);
  }
  progress(`scale: timing keys`);
  const keys = await timeMain(["keys", lab.dir]);
  if (keys.code !== 0) progress(`scale: keys: ${keys.stderr.slice(0, 500)}`);
  if (status.code !== 0) {
    progress(`scale: status: ${status.stderr.slice(0, 500)}`);
  }
  const readyRecord = (await logRecords(logDir, "Ready:"))[0];
  const stopped = (await logRecords(logDir, "Stopped after"))[0];
  const logRss = readyRecord?.rss;
  return {
    groups: size,
    run,
    readySec: server.readySec,
    load: server.load,
    rssMb: mb(server.rssKb),
    logRssMb: typeof logRss === "number" ? logRss / 2 ** 20 : undefined,
    keysSec: keys.sec,
    keysCode: keys.code,
    statusSec: status.sec,
    statusCode: status.code,
    statusWalked,
    rssAfterWalkMb: mb(after.VmRSS),
    hwmMb: mb(after.VmHWM),
    serverCounts: stopped?.counts,
    walk: walked,
  };
}

function fmt(n: number | undefined, digits: number): string {
  return n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits);
}

function table(results: RunResult[], limits: string): string[] {
  const lines = [
    "| groups | run | start-up s | RSS at Ready MB (log) | keys s | status s | RSS after walk MB (peak) | load at Ready |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.groups} | ${r.run} | ${fmt(r.readySec, 2)} | ${fmt(r.rssMb, 0)} (${
        fmt(r.logRssMb, 0)
      }) | ${fmt(r.keysSec, 2)}${r.keysCode ? ` (exit ${r.keysCode})` : ""} | ${
        fmt(r.statusSec, 2)
      }${r.statusCode ? ` (exit ${r.statusCode})` : ""} | ${
        fmt(r.rssAfterWalkMb, 0)
      } (${fmt(r.hwmMb, 0)}) | ${r.load} |`,
    );
  }
  lines.push("", limits, "");
  lines.push(
    "| groups | run | walkers (RSA) | answers | answers/s | wrong | retransmissions (buffer drops) | duplicates | completed | p50 / p99 ms | server counts | status walked |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
  );
  for (const r of results) {
    const w = r.walk;
    if (!w) continue;
    lines.push(
      `| ${r.groups} | ${r.run} | ${w.groups} (${w.rsaGroups}) | ${w.answers}/${
        w.groups * STATES
      } | ${fmt(w.answersPerSec, 0)} | ${w.wrong} | ${w.retransmissions} (${
        w.rcvbufErrors ?? "-"
      }) | ${w.duplicates} | ${w.completedGroups}/${w.groups} | ${
        fmt(w.latencyMs.p50, 0)
      } / ${fmt(w.latencyMs.p99, 0)} | ${JSON.stringify(r.serverCounts)} | ${
        r.statusWalked ?? "-"
      } |`,
    );
  }
  return lines;
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
  const loadBefore = await loadAverage();
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_scale_" });
  // Deno.exit skips the finally below: kill and clean up here as well.
  const abort = (code: number) => {
    for (const c of children) kill(c, "SIGKILL");
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch {
      // A server may still be writing; the directory is in /tmp.
    }
    Deno.exit(code);
  };
  const hard = setTimeout(() => {
    progress(`scale: hard timeout of ${options.timeoutSec} s reached`);
    abort(3);
  }, options.timeoutSec * 1000);
  const onSignal = () => abort(130);
  Deno.addSignalListener("SIGINT", onSignal);
  const results: RunResult[] = [];
  let bad = false;
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
      const r = await runOnce(lab, run, options, tmp);
      results.push(r);
      const w = r.walk;
      if (
        r.keysCode !== 0 || r.statusCode !== 0 || !w || w.wrong > 0 ||
        w.completedGroups !== w.groups || w.unmatched > 0
      ) bad = true;
      for (const s of w?.wrongSamples ?? []) progress(`scale: ${s}`);
    }
  } finally {
    for (const c of children) kill(c, "SIGKILL");
    clearTimeout(hard);
    Deno.removeSignalListener("SIGINT", onSignal);
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
    .match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  print(
    `machine: ${navigator.hardwareConcurrency} CPUs (${cpu}), deno ${Deno.version.deno}, v8 ${Deno.version.v8}; load average ${loadBefore} before, ${await loadAverage()} after`,
  );
  print(
    `mix: 1 group in ${options.rsaEvery} RSA 2048 (PEM SPKI; at most ${options.rsaPool} distinct RSA keys, reused), the rest P-256 (half PEM SPKI, half OpenSSH); ${MEMBERS} roster members per group`,
  );
  print("");
  for (
    const line of table(
      results,
      "Targets: start-up < 5 s, RSS < 300 MB, keys < 5 s, status < 5 s.",
    )
  ) print(line);
  if (options.json) print(JSON.stringify(results));
  return bad ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
