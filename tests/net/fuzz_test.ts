/**
 * Abuse-resistance fuzz test: `main.ts` started as a subprocess and flooded
 * over loopback with random and mutated datagrams (bit flips and truncations
 * of valid tokens, empty and oversize datagrams, non-UTF-8, deeply nested or
 * huge JSON, giant numbers, odd Unicode in `sub`, header `alg` variations)
 * while a legitimate client walks HEARTBEAT through 0..6 on its own socket.
 * The server must not crash, the walk must complete, memory must stay
 * bounded, and every datagram sent must be counted by the server or dropped
 * by the kernel.
 *
 * Kernel drops are read from the server socket's own `drops` column of
 * /proc/net/udp (exact, whatever else runs on the machine), with the
 * machine-wide `Udp:` counters of /proc/net/snmp reported beside it; Deno
 * wants `--allow-all` to read /proc/net, so both are read through `cat`.
 * The server's resident set is sampled with `ps` during the flood.
 *
 * The datagrams come from a seeded PRNG; the seed is printed (the signed
 * tokens they mutate carry the current time, so a replay is close, not
 * byte-identical); they are drawn by tests/net/_fuzz_inputs.ts. Two
 * environment variables, read only when `--allow-env` grants them:
 * `UDPJWT_FUZZ_SEED` (a 32-bit unsigned integer) replays a run and
 * `UDPJWT_FUZZ_COUNT` (default 100000) makes a longer one:
 *
 * ```sh
 * UDPJWT_FUZZ_COUNT=1000000 deno test --allow-env=UDPJWT_FUZZ_SEED,UDPJWT_FUZZ_COUNT \
 *   --allow-net=127.0.0.1,[::1] --allow-read --allow-write --allow-run tests/net/fuzz_test.ts
 * ```
 *
 * Run the default with
 * `deno test --allow-net=127.0.0.1,[::1] --allow-read --allow-write --allow-run tests/net/fuzz_test.ts`.
 *
 * The server's error budget sheds almost all of one source's flood before
 * the signature check, so a second test feeds the same generators' datagrams
 * straight to `handlePacket` (no budget, no network) on the WebCrypto and the
 * OpenSSL backend: every one gets an error code, an answer or no answer by
 * design, never an exception, and no token signed by a key of no group
 * passes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { compactVerify, jwtVerify } from "jose";
import {
  envInteger,
  nowSec,
  payloadBytes,
  privateKey,
  requestClaims,
  SECRET,
  sha256Hex,
  signRequest,
} from "../_helpers.ts";
import { type RunningServer, withServer } from "../_server.ts";
import { ERROR_CODES } from "../../lib/protocol/errors.ts";
import { handlePacket } from "../../lib/protocol/handler.ts";
import { loadKeys } from "../../lib/keys/key_ring.ts";
import {
  selectBackend,
  type VerifyBackend,
  webCryptoBackend,
} from "../../lib/keys/verify.ts";
import { vectorContext, VECTORS } from "../_helpers.ts";
import { UdpClient } from "../_udp_client.ts";
import { generate, signPools } from "./_fuzz_inputs.ts";
import { Rng } from "./_rng.ts";

/**
 * Datagrams sent per burst, and the pause between bursts. A burst of large
 * datagrams overflows the server's receive buffer (about 200 KiB) whatever
 * its speed; those kernel drops are counted and expected.
 */
const BURST = 50;
const PAUSE_MS = 5;
/** The legitimate client: wait per attempt, and resends before failing. */
const RETRY_MS = 1_000;
const MAX_RETRIES = 20;
/**
 * The memory bounds on the server's resident set. Under a flood V8 grows its
 * young generation: the resident set levels off about 100 MB above the start
 * (about 40 MB with `--max-semi-space-size=1`), so the growth bound leaves
 * room for that; a leak shows as growth over the flood's second half.
 */
const RSS_GROWTH_LIMIT = 150 * 1024 * 1024;
const RSS_LIMIT = 300 * 1024 * 1024;
const RSS_SECOND_HALF_LIMIT = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Settings

const SEED = envInteger(
  "UDPJWT_FUZZ_SEED",
  crypto.getRandomValues(new Uint32Array(1))[0]!,
  0xffffffff,
);
const COUNT = envInteger("UDPJWT_FUZZ_COUNT", 100_000, 100_000_000);

function report(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

// ---------------------------------------------------------------------------
// Kernel counters

/**
 * The output of a command, or undefined when it cannot run. Deno asks for
 * `--allow-all` to read /proc/net directly; `cat` needs only `--allow-run`.
 */
async function command(
  cmd: string,
  args: string[],
): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** `Udp:` counters of /proc/net/snmp, or undefined where unreadable. */
async function udpSnmp(): Promise<Record<string, number> | undefined> {
  const text = await command("cat", ["/proc/net/snmp"]);
  const lines = text?.split("\n").filter((l) => l.startsWith("Udp: "));
  if (!lines || lines.length < 2) return undefined;
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
}

/**
 * Datagrams the kernel dropped for the socket bound to 127.0.0.1:`port`
 * (the `drops` column of /proc/net/udp), or undefined where unreadable.
 */
async function socketDrops(port: number): Promise<number | undefined> {
  const text = await command("cat", ["/proc/net/udp"]);
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of text?.split("\n") ?? []) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local) return Number(cols[cols.length - 1]);
  }
  return undefined;
}

/** The process id of the server whose log goes to `logDir`, through `ps`. */
async function serverPid(logDir: string): Promise<string | undefined> {
  const text = await command("ps", ["-eo", "pid=,args="]);
  for (const line of text?.split("\n") ?? []) {
    if (line.includes(`--log-dir ${logDir}`) && line.includes("main.ts")) {
      return line.trim().split(/\s+/)[0];
    }
  }
  return undefined;
}

/** The resident set of process `pid` in bytes, through `ps`. */
async function rssOf(pid: string | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const text = await command("ps", ["-o", "rss=", "-p", pid]);
  const kb = Number(text?.trim());
  return text && Number.isFinite(kb) ? kb * 1024 : undefined;
}

// ---------------------------------------------------------------------------
// The legitimate client

/** What the legitimate client did. */
interface Walk {
  sent: number;
  retries: number;
  stale: number;
  answers: number[];
}

/**
 * Sends HEARTBEAT event `n` and resends the identical datagram until the
 * answer to it arrives; checks the answer. Late answers to earlier requests
 * are skipped.
 */
async function exchange(
  client: UdpClient,
  to: Deno.NetAddr,
  key: CryptoKey,
  n: number,
  walk: Walk,
): Promise<number> {
  const token = await signRequest(
    requestClaims("HEARTBEAT", n, nowSec()),
    key,
    "RS256",
  );
  const want = await sha256Hex(payloadBytes(token));
  for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
    if (attempt > 0) walk.retries++;
    await client.send(to, token);
    walk.sent++;
    const deadline = Date.now() + RETRY_MS;
    while (true) {
      const answer = await client.next(deadline - Date.now());
      if (!answer) break;
      assert.ok(answer.length < 1000, `answer of ${answer.length} bytes`);
      const { payload, protectedHeader } = await jwtVerify(
        new TextDecoder().decode(answer),
        SECRET,
        { algorithms: ["HS256"] },
      );
      assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
      if (payload.id_request !== want) {
        walk.stale++;
        continue;
      }
      assert.equal(payload.sub, "HEARTBEAT");
      assert.equal(payload.error, undefined, String(payload.response));
      assert.equal(typeof payload.next_number, "number");
      return payload.next_number as number;
    }
  }
  assert.fail(
    `no answer to HEARTBEAT event ${n} after ${MAX_RETRIES} resends`,
  );
}

/** Resolves waiters once the fuzzer has sent enough datagrams. */
class Progress {
  sent = 0;
  #waiters: { at: number; resolve: () => void }[] = [];

  update(sent: number): void {
    this.sent = sent;
    this.#waiters = this.#waiters.filter((w) => {
      if (w.at > sent) return true;
      w.resolve();
      return false;
    });
  }

  finish(): void {
    this.update(Infinity);
  }

  until(at: number): Promise<void> {
    if (at <= this.sent) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ at, resolve }));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// The run

/** Everything the run measured, for the assertions after the stop. */
interface Figures {
  fuzzSent: number;
  bytesSent: number;
  byCategory: Record<string, number>;
  answered: number;
  answeredBy: Record<string, number>;
  walk: Walk;
  finalNext: number;
  drops: number | undefined;
  snmpBefore: Record<string, number> | undefined;
  snmpAfter: Record<string, number> | undefined;
  readyRss: number | undefined;
  /** The server's resident set during the flood: [datagrams sent, bytes]. */
  rssSamples: [number, number][];
  seconds: number;
}

/** The `Ready` record, from the oldest log file (the log may have rotated). */
async function readyRecord(
  logDir: string,
): Promise<Record<string, unknown> | undefined> {
  const files: string[] = [];
  for await (const e of Deno.readDir(logDir)) {
    if (e.name.startsWith("udpjwt.jsonl")) files.push(e.name);
  }
  const age = (f: string) => Number(f.split(".")[2] ?? 0);
  files.sort((a, b) => age(b) - age(a));
  for (const f of files) {
    using file = await Deno.open(`${logDir}/${f}`);
    const head = new Uint8Array(256 * 1024);
    const n = await file.read(head) ?? 0;
    for (
      const line of new TextDecoder().decode(head.subarray(0, n)).split("\n")
    ) {
      if (!line.includes('"Ready: ')) continue;
      try {
        return JSON.parse(line);
      } catch {
        // A line cut by the 256 KiB window.
      }
    }
  }
  return undefined;
}

async function flood(server: RunningServer, figures: Figures): Promise<void> {
  const rng = new Rng(SEED);
  const pools = await signPools(rng);
  const heartbeat = await privateKey("heartbeat");
  const fuzzer = new UdpClient();
  const legit = new UdpClient();
  const progress = new Progress();
  let stop = false;
  const started = performance.now();
  try {
    const pid = await serverPid(server.logDir);
    const sample = async () => {
      const rss = await rssOf(pid);
      if (rss !== undefined) figures.rssSamples.push([figures.fuzzSent, rss]);
    };
    await sample();
    const dropsBefore = await socketDrops(server.port);
    figures.snmpBefore = await udpSnmp();

    const sampleEvery = Math.ceil(COUNT / 4 / BURST) * BURST;
    const fuzz = async () => {
      try {
        for (let i = 0; i < COUNT && !stop; i++) {
          const [name, bytes] = generate(rng, pools);
          await fuzzer.send(server.addr, bytes);
          figures.fuzzSent++;
          figures.bytesSent += bytes.length;
          figures.byCategory[name] = (figures.byCategory[name] ?? 0) + 1;
          if ((i + 1) % BURST === 0) {
            progress.update(i + 1);
            if ((i + 1) % sampleEvery === 0) {
              await sample();
            }
            await delay(PAUSE_MS);
          }
        }
      } finally {
        progress.finish();
      }
    };
    // The walk starts once the flood is under way and is spread across it.
    const walkThrough = async () => {
      try {
        for (let n = 0; n <= 6; n++) {
          await progress.until(Math.floor(COUNT * (0.05 + n * 0.1)));
          figures.walk.answers.push(
            await exchange(legit, server.addr, heartbeat, n, figures.walk),
          );
        }
      } catch (e) {
        stop = true;
        throw e;
      }
    };
    const [f, w] = await Promise.allSettled([fuzz(), walkThrough()]);
    if (f.status === "rejected") throw f.reason;
    if (w.status === "rejected") throw w.reason;

    // A fresh request after the flood; its answer also tells that the server
    // has read every datagram sent before it.
    figures.finalNext = await exchange(
      legit,
      server.addr,
      heartbeat,
      0,
      figures.walk,
    );
    figures.seconds = (performance.now() - started) / 1000;
    await delay(200); // datagrams in flight finish (the stop grants 1.5 s more)
    await sample();
    const dropsAfter = await socketDrops(server.port);
    figures.drops = dropsBefore === undefined || dropsAfter === undefined
      ? undefined
      : dropsAfter - dropsBefore;
    figures.snmpAfter = await udpSnmp();
    figures.readyRss = (await readyRecord(server.logDir))?.rss as
      | number
      | undefined;

    // Every answer the fuzzer got is a well-formed HS256 answer under 1 KB.
    for (let a = await fuzzer.next(0); a; a = await fuzzer.next(0)) {
      assert.ok(a.length < 1000, `an answer of ${a.length} bytes`);
      const { payload } = await compactVerify(
        new TextDecoder().decode(a),
        SECRET,
        { algorithms: ["HS256"] },
      );
      const claims = JSON.parse(new TextDecoder().decode(payload));
      const code = claims.error ??
        // deno-lint-ignore no-control-regex
        (/[^\x00-\x7f]/.test(claims.sub)
          ? "success, non-ASCII sub"
          : "success");
      figures.answered++;
      figures.answeredBy[code] = (figures.answeredBy[code] ?? 0) + 1;
      assert.ok(
        typeof claims.sub === "string" && claims.sub.length <= 64,
        `sub of an answer: ${JSON.stringify(claims.sub)}`,
      );
    }
  } finally {
    stop = true;
    progress.finish();
    await fuzzer.close();
    await legit.close();
  }
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

Deno.test(
  `main.ts survives ${COUNT} hostile datagrams while a client walks 0..6`,
  async (t) => {
    report(
      `fuzz seed ${SEED} (UDPJWT_FUZZ_SEED), ${COUNT} datagrams (UDPJWT_FUZZ_COUNT)`,
    );
    const figures: Figures = {
      fuzzSent: 0,
      bytesSent: 0,
      byCategory: {},
      answered: 0,
      answeredBy: {},
      walk: { sent: 0, retries: 0, stale: 0, answers: [] },
      finalNext: -1,
      drops: undefined,
      snmpBefore: undefined,
      snmpAfter: undefined,
      readyRss: undefined,
      rssSamples: [],
      seconds: 0,
    };
    const stopped = await withServer({}, (server) => flood(server, figures));

    const ready = stopped.log.find((r) =>
      String(r.message).startsWith("Ready: ")
    );
    const end = stopped.log.findLast((r) =>
      String(r.message).startsWith("Stopped after ")
    );
    assert.ok(end, "the server logs its counts when it stops");
    const counts = end.counts as Record<string, number>;
    const errors = stopped.log.filter((r) =>
      r.level === "error" || r.level === "fatal"
    );
    const counted = sum(counts);
    const sent = figures.fuzzSent + figures.walk.sent;
    const snmp = (name: string) =>
      figures.snmpBefore && figures.snmpAfter
        ? figures.snmpAfter[name]! - figures.snmpBefore[name]!
        : undefined;
    const startRss = (ready?.rss ?? figures.readyRss) as number | undefined;
    const endRss = end.rss as number;

    report(
      [
        `sent ${figures.fuzzSent} fuzz datagrams (${
          mb(figures.bytesSent)
        }) + ${figures.walk.sent} from the client in ${
          figures.seconds.toFixed(1)
        } s`,
        `by category: ${JSON.stringify(figures.byCategory)}`,
        `server counts (${counted}): ${JSON.stringify(counts)}`,
        `kernel drops: socket ${
          figures.drops ?? "n/a"
        }, /proc/net/snmp Udp InErrors +${
          snmp("InErrors") ?? "n/a"
        } RcvbufErrors +${snmp("RcvbufErrors") ?? "n/a"} (machine-wide)`,
        `answers to the fuzzer: ${figures.answered} ${
          JSON.stringify(figures.answeredBy)
        }`,
        `client: next_number ${
          figures.walk.answers.join(",")
        }, then ${figures.finalNext}; ${figures.walk.retries} resends, ${figures.walk.stale} late answers skipped`,
        `rss: ${startRss === undefined ? "n/a" : mb(startRss)} at start, ${
          mb(endRss)
        } at stop; replay cache ${end.cached} entries, ${end.evicted} evicted`,
        `rss during the flood (datagrams sent: MB): ${
          figures.rssSamples.map(([n, b]) => `${n}: ${mb(b)}`).join(", ")
        }`,
      ].join("\n"),
    );

    await t.step("the server logs no error and exits 0", () => {
      // withServer has checked the exit code.
      assert.deepEqual(errors.map((r) => r.message), []);
      assert.doesNotMatch(stopped.stderr, / (ERROR|FATAL) /);
    });

    await t.step("the client's walk completes through the flood", () => {
      assert.deepEqual(figures.walk.answers, [1, 2, 3, 4, 5, 6, 0]);
      assert.equal(figures.finalNext, 1, "a fresh request after the flood");
    });

    await t.step(
      `the counts add up: ${counted} counted + ${
        figures.drops ?? snmp("InErrors") ?? "?"
      } kernel drops = ${sent} sent`,
      () => {
        assert.equal(counts["dropped:internal_error"], undefined);
        if (figures.drops !== undefined) {
          // The server socket's own drop counter: exact.
          assert.equal(counted + figures.drops, sent);
        } else if (snmp("InErrors") !== undefined) {
          // Machine-wide counters also count other programs' drops.
          assert.ok(counted <= sent, `${counted} counted ≤ ${sent} sent`);
          assert.ok(
            counted + snmp("InErrors")! >= sent,
            `${counted} counted + ${snmp("InErrors")} drops ≥ ${sent} sent`,
          );
        } else {
          assert.ok(counted <= sent, `${counted} counted ≤ ${sent} sent`);
        }
      },
    );

    await t.step(
      `memory stays bounded: rss ${
        startRss === undefined ? "?" : mb(startRss)
      } → ${mb(endRss)}`,
      () => {
        assert.ok(endRss < RSS_LIMIT, `${mb(endRss)} < ${mb(RSS_LIMIT)}`);
        assert.ok(startRss !== undefined, "the Ready record carries rss");
        assert.ok(
          endRss < startRss + RSS_GROWTH_LIMIT,
          `${mb(endRss)} < ${mb(startRss)} + ${mb(RSS_GROWTH_LIMIT)}`,
        );
        // Sampled with ps where available: [0%, 25%, 50%, 75%, 100%, after].
        const samples = figures.rssSamples;
        if (samples.length >= 5) {
          const half = samples.find(([n]) => n >= COUNT / 2)![1];
          const last = samples[samples.length - 1]![1];
          assert.ok(
            last - half < RSS_SECOND_HALF_LIMIT,
            `rss ${mb(half)} half-way, ${mb(last)} at the end`,
          );
        }
      },
    );
  },
);

/** Datagrams in the direct `handlePacket` run. */
const DIRECT_COUNT = 10_000;

Deno.test(`handlePacket() answers ${DIRECT_COUNT} generated hostile datagrams without an exception, alike on every backend`, async (t) => {
  const rng = new Rng(SEED ^ 0xd1ec7);
  const pools = await signPools(rng);
  const datagrams: [string, Uint8Array][] = [];
  while (datagrams.length < DIRECT_COUNT) {
    const [name, bytes] = generate(rng, pools);
    // The server drops these unread.
    if (bytes.length <= 8192) datagrams.push([name, bytes]);
  }
  const backends: VerifyBackend[] = [webCryptoBackend];
  const { backend: native } = selectBackend({ ed25519: "openssl" });
  if (native.name === "openssl") backends.push(native);
  const allowed = new Set<string>([
    ...ERROR_CODES,
    "ok",
    "replayed",
    "no_action",
    "dropped:amplification",
  ]);
  const now = nowSec();
  const outcomes: string[][] = [];
  for (const backend of backends) {
    await t.step(backend.name, async () => {
      const ring = await loadKeys(`${VECTORS}keys_pub`, { backend });
      const ctx = await vectorContext(now, { keys: ring.groups }, backend);
      const seen: Record<string, number> = {};
      const started = performance.now();
      const run: string[] = [];
      for (const [i, [name, bytes]] of datagrams.entries()) {
        const result = await handlePacket(bytes, ctx);
        const what = `${name} datagram ${i}: ${
          new TextDecoder().decode(bytes.subarray(0, 60))
        }`;
        assert.ok(allowed.has(result.outcome), `${what}: ${result.outcome}`);
        if (result.reply) assert.ok(result.reply.length < 1000, what);
        run.push(result.outcome);
        if (name === "protocol 2.1 headers") {
          assert.notEqual(result.outcome, "ok", what);
          seen[result.outcome] = (seen[result.outcome] ?? 0) + 1;
        }
      }
      outcomes.push(run);
      const seconds = (performance.now() - started) / 1000;
      report(
        `direct (${backend.name}): ${DIRECT_COUNT} datagrams in ${
          seconds.toFixed(1)
        } s; protocol 2.1 headers: ${JSON.stringify(seen)}`,
      );
      assert.ok((seen.BAD_SIGNATURE ?? 0) > 50, JSON.stringify(seen));
      assert.ok((seen.UNKNOWN_KEY ?? 0) > 50, JSON.stringify(seen));
    });
  }
  if (outcomes.length === 2) {
    const differ = outcomes[0]!.flatMap((o, i) =>
      o === outcomes[1]![i] ? [] : [`${i}: ${o} / ${outcomes[1]![i]}`]
    );
    assert.deepEqual(differ, [], "WebCrypto and OpenSSL disagree");
  }
});
