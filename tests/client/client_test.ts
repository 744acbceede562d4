/**
 * Tests of `udpjwt send` (lib/client.ts): the backoff, the seeded loss, and
 * the walk's retry logic against a fake network whose "server" is the real
 * `handlePacket` with a pinned, injected clock; then `send` end to end
 * against a real server over loopback, with and without simulated loss.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  backoffDelay,
  type ClientSocket,
  keySigner,
  LossySocket,
  runSend,
  seededRandom,
  walk,
  type WalkOptions,
} from "../../lib/client/client.ts";
import type { Io } from "../../lib/cli/errors.ts";
import { handlePacket, type PacketResult } from "../../lib/protocol/handler.ts";
import { MemoryStore } from "../../lib/state/store.ts";
import { AUDIENCE, privateKey, vectorContext, VECTORS } from "../_helpers.ts";
import { runMain, withServer } from "../_server.ts";

const SECRET = await Deno.readFile(
  `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
);
const SECRET_FILE = `${VECTORS}keys_priv/key_secret_for_hmac.txt`;
const T0 = 1_800_000_000_000;

/** Captures what a subcommand prints. */
function capture(): Io & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    lines,
    errors,
    out: (line) => lines.push(line),
    err: (line) => errors.push(line),
  };
}

function payloadOf(datagram: Uint8Array): Record<string, unknown> {
  const middle = new TextDecoder().decode(datagram).split(".")[1]!;
  return JSON.parse(
    new TextDecoder().decode(
      Uint8Array.fromBase64(middle, { alphabet: "base64url" }),
    ),
  );
}

/** Options of {@linkcode FakeNet}. */
interface FakeNetOptions {
  /** Whether the i-th datagram sent (from 0) is lost on the way. */
  dropSend?: (i: number) => boolean;
  /** Whether the answer to the i-th datagram sent is lost. */
  dropAnswer?: (i: number) => boolean;
  /** One-way latency in ms. */
  latencyMs?: number;
  /** The server's store (default a fresh one). */
  store?: MemoryStore;
}

/**
 * A network with a fake clock: sending hands the datagram to `handlePacket`
 * at once; `receive` advances the clock to the answer or by the timeout.
 */
class FakeNet implements ClientSocket {
  t = T0;
  readonly sent: Uint8Array[] = [];
  readonly waits: number[] = [];
  readonly outcomes: PacketResult["outcome"][] = [];
  readonly replies: Uint8Array[] = [];
  #inbox: { at: number; data: Uint8Array }[] = [];
  #options: FakeNetOptions;
  #ctx: Awaited<ReturnType<typeof vectorContext>> | undefined;

  constructor(options?: FakeNetOptions) {
    this.#options = options ?? {};
  }

  now = (): number => this.t;

  async #context() {
    this.#ctx ??= await vectorContext(T0 / 1000, {
      now: () => new Date(this.t),
      store: this.#options.store ?? new MemoryStore(),
    });
    return this.#ctx;
  }

  /** Puts a datagram in the inbox, as if it arrived `afterMs` from now. */
  inject(data: Uint8Array, afterMs = 0): void {
    this.#inbox.push({ at: this.t + afterMs, data });
    this.#inbox.sort((a, b) => a.at - b.at);
  }

  async send(data: Uint8Array): Promise<void> {
    const i = this.sent.length;
    this.sent.push(data.slice());
    if (this.#options.dropSend?.(i)) return;
    const result = await handlePacket(data.slice(), await this.#context());
    this.outcomes.push(result.outcome);
    if (result.reply) this.replies.push(result.reply);
    if (result.reply && !this.#options.dropAnswer?.(i)) {
      this.inject(result.reply, 2 * (this.#options.latencyMs ?? 1));
    }
  }

  receive(timeoutMs: number): Promise<Uint8Array | undefined> {
    this.waits.push(timeoutMs);
    const next = this.#inbox[0];
    if (next && next.at <= this.t + timeoutMs) {
      this.t = Math.max(this.t, next.at);
      this.#inbox.shift();
      return Promise.resolve(next.data);
    }
    this.t += timeoutMs;
    return Promise.resolve(undefined);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const heartbeat = keySigner(await privateKey("heartbeat"), "RS256");

/** jtis unique across the file: each FakeNet's replay cache is fresh, but
 * identical payloads would give identical `id_request`s. */
let id = 0;

function options(net: FakeNet, extra?: Partial<WalkOptions>): WalkOptions {
  return {
    group: "heartbeat",
    secret: SECRET,
    now: net.now,
    random: () => 0.5, // no jitter: waits are exactly 500, 1000, …
    randomId: () => (++id).toString(16).padStart(32, "0"),
    ...extra,
  };
}

Deno.test("backoffDelay() doubles from the first timeout up to the cap, with jitter", async (t) => {
  await t.step("without jitter (random 0.5)", () => {
    const waits = [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, () => 0.5));
    assert.deepEqual(waits, [500, 1000, 2000, 4000, 4000, 4000]);
  });
  await t.step("jitter scales by [1 - j, 1 + j)", () => {
    assert.equal(backoffDelay(0, () => 0), 375);
    assert.equal(backoffDelay(2, () => 0), 1500);
    assert.ok(backoffDelay(0, () => 0.999999) < 625);
    assert.ok(backoffDelay(0, () => 0.999999) > 624);
    assert.equal(backoffDelay(1, () => 0, { jitter: 0.5 }), 500);
  });
  await t.step("custom timeouts; jitter 0", () => {
    const o = { initialTimeoutMs: 100, maxTimeoutMs: 350, jitter: 0 };
    const waits = [0, 1, 2, 3].map((a) => backoffDelay(a, Math.random, o));
    assert.deepEqual(waits, [100, 200, 350, 350]);
  });
});

Deno.test("seededRandom() repeats per seed and is uniform enough", () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 10_000 }, () => a());
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  assert.notEqual(seededRandom(43)(), xs[0]);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  const below = xs.filter((x) => x < 0.3).length / xs.length;
  assert.ok(Math.abs(below - 0.3) < 0.02, `P(x < 0.3) = ${below}`);
});

Deno.test("LossySocket drops datagrams each way with its probability", async (t) => {
  await t.step(
    "probability 0 passes everything, 1 drops everything",
    async () => {
      for (const [p, expectSent] of [[0, 3], [1, 0]] as const) {
        const net = new FakeNet();
        const lossy = new LossySocket(net, {
          probability: p,
          random: seededRandom(1),
          now: net.now,
        });
        for (let i = 0; i < 3; i++) {
          await lossy.send(
            new TextEncoder().encode("x"),
          );
        }
        assert.equal(net.sent.length, expectSent);
        assert.equal(lossy.dropped.sent, 3 - expectSent);
      }
    },
  );
  await t.step("a dropped answer does not end the wait early", async () => {
    const net = new FakeNet();
    net.inject(new TextEncoder().encode("first"), 10);
    net.inject(new TextEncoder().encode("second"), 20);
    const draws = [0.1, 0.9]; // drop the first answer, keep the second
    const lossy = new LossySocket(net, {
      probability: 0.5,
      random: () => draws.shift()!,
      now: net.now,
    });
    const got = await lossy.receive(100);
    assert.equal(new TextDecoder().decode(got), "second");
    assert.equal(lossy.dropped.received, 1);
    assert.equal(net.t, T0 + 20);
  });
  await t.step("30% each way over many datagrams", async () => {
    const net = new FakeNet();
    const lossy = new LossySocket(net, {
      probability: 0.3,
      random: seededRandom(7),
      now: net.now,
    });
    for (let i = 0; i < 2000; i++) {
      await lossy.send(new TextEncoder().encode("junk"));
    }
    const rate = lossy.dropped.sent / 2000;
    assert.ok(Math.abs(rate - 0.3) < 0.04, `dropped ${rate}`);
  });
});

Deno.test("walk() sends the claims of PROTOCOL.md §3 and completes a walk", async () => {
  const net = new FakeNet();
  const steps: number[] = [];
  const result = await walk(
    net,
    heartbeat,
    options(net, {
      registrations: [20230001, 20230002],
      onStep: (s) => steps.push(s.sn),
    }),
  );
  assert.equal(result.ok, true);
  assert.deepEqual(steps, [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(result.steps.map((s) => s.nextNumber), [
    1,
    2,
    3,
    4,
    5,
    6,
    0,
  ]);
  assert.ok(result.steps.every((s) => s.verified && s.retries === 0));
  assert.equal(result.retries, 0);
  assert.equal(net.sent.length, 7);
  assert.deepEqual(net.outcomes, Array(7).fill("ok"));
  const colours = [
    "RED",
    "ORANGE",
    "YELLOW",
    "GREEN",
    "BLUE",
    "INDIGO",
    "VIOLET",
  ];
  net.sent.forEach((datagram, i) => {
    const claims = payloadOf(datagram);
    assert.deepEqual(Object.keys(claims), [
      "sub",
      "aud",
      "iat",
      "exp",
      "jti",
      "seq_state_number",
      "seq_state",
      "seq_max",
      "registration",
    ]);
    assert.equal(claims.sub, "heartbeat");
    assert.equal(claims.aud, AUDIENCE);
    assert.equal(claims.exp, (claims.iat as number) + 60);
    assert.match(String(claims.jti), /^[0-9a-f]{32}$/);
    assert.equal(claims.seq_state_number, i);
    assert.equal(claims.seq_state, colours[i]);
    assert.equal(claims.seq_max, 2, "distinct registrations");
    assert.equal(claims.registration, i % 2 ? 20230002 : 20230001);
  });
});

Deno.test("walk() retransmits the identical datagram and backs off until answered", async () => {
  // The first event's first two datagrams are lost, then its third answer.
  const net = new FakeNet({
    dropSend: (i) => i < 2,
    dropAnswer: (i) => i === 2,
  });
  const result = await walk(net, heartbeat, options(net, { to: 1 }));
  assert.equal(result.ok, true);
  const [first, second] = result.steps;
  assert.equal(first?.retries, 3);
  assert.equal(second?.retries, 0);
  assert.equal(net.sent.length, 5);
  for (const copy of net.sent.slice(1, 4)) assert.deepEqual(copy, net.sent[0]);
  assert.notDeepEqual(net.sent[4], net.sent[0]);
  // One wait per transmission, doubling: 500, 1000, 2000, then the answer.
  assert.deepEqual(net.waits.slice(0, 3), [500, 1000, 2000]);
  // The third copy ran the state machine; the fourth got the cached answer.
  assert.deepEqual(net.outcomes, ["ok", "replayed", "ok"]);
  assert.ok(first!.rttMs !== undefined && first!.rttMs < 10);
});

Deno.test("walk() gives up after the retry cap with NO_ANSWER", async () => {
  const net = new FakeNet({ dropSend: () => true });
  const reports: string[] = [];
  const result = await walk(
    net,
    heartbeat,
    options(net, {
      retry: { retries: 3, initialTimeoutMs: 100, jitter: 0 },
      onStep: (s) => reports.push(`${s.sn} ${s.error}`),
    }),
  );
  assert.equal(result.ok, false);
  assert.deepEqual(reports, ["0 NO_ANSWER"]);
  assert.equal(result.steps[0]?.retries, 3);
  assert.equal(net.sent.length, 4);
  assert.deepEqual(net.waits, [100, 200, 400, 800]);
  assert.equal(net.t - T0, 1500);
  assert.match(
    result.steps[0]?.reason ?? "",
    /no answer after 4 transmissions/,
  );
});

Deno.test("walk() stops at an error answer and reports its code and reason", async () => {
  const net = new FakeNet();
  // Group HEARTBEAT has an RSA key; sign with another group's RSA key.
  const wrong = keySigner(await privateKey("pkcs1grp"), "RS256");
  const result = await walk(net, wrong, options(net));
  assert.equal(result.ok, false);
  assert.equal(result.steps.length, 1);
  const [step] = result.steps;
  assert.equal(step?.error, "BAD_SIGNATURE");
  assert.equal(step?.fromServer, true);
  assert.match(step?.reason ?? "", /^signature does not verify/);
});

Deno.test("walk() checks the answers' HS256 signature when given the secret", async (t) => {
  await t.step("a wrong secret fails with BAD_ANSWER", async () => {
    const net = new FakeNet();
    const result = await walk(
      net,
      heartbeat,
      options(net, { secret: new TextEncoder().encode("not the secret") }),
    );
    assert.equal(result.ok, false);
    assert.equal(result.steps[0]?.error, "BAD_ANSWER");
    assert.match(result.steps[0]?.reason ?? "", /does not verify/);
  });
  await t.step(
    "without a secret the answers are read, unverified",
    async () => {
      const net = new FakeNet();
      const { secret: _, ...rest } = options(net);
      const result = await walk(net, heartbeat, rest);
      assert.equal(result.ok, true);
      assert.ok(result.steps.every((s) => !s.verified));
    },
  );
});

Deno.test("walk() fails on an unexpected next_number and says what the server waits for", async () => {
  const store = new MemoryStore({
    HEARTBEAT: {
      state: 3,
      registrations: {},
      walks: [],
      walkCount: 0,
      lastActivity: null,
    },
  });
  const net = new FakeNet({ store });
  const result = await walk(net, heartbeat, options(net, { from: 5 }));
  assert.equal(result.ok, false);
  const [step] = result.steps;
  assert.equal(step?.error, "UNEXPECTED_NEXT_NUMBER");
  assert.equal(step?.nextNumber, 4);
  assert.equal(step?.expected, 6);
  assert.match(step?.reason ?? "", /rerun with --from 4/);
  // Resuming where the server waits completes the walk.
  const again = await walk(net, heartbeat, options(net, { from: 4 }));
  assert.equal(again.ok, true);
  assert.deepEqual(again.steps.map((s) => s.sn), [4, 5, 6]);
});

Deno.test("walk() ignores answers to other requests", async () => {
  // A genuine answer, correctly signed, but to another request.
  const other = new FakeNet();
  await walk(other, heartbeat, options(other, { to: 0 }));
  const genuine = other.replies[0]!;
  const net = new FakeNet({ latencyMs: 5 });
  net.inject(new TextEncoder().encode("not a token"), 1);
  net.inject(genuine, 2);
  const result = await walk(net, heartbeat, options(net, { to: 0 }));
  assert.equal(result.ok, true);
  assert.equal(result.steps[0]?.stale, 2);
  assert.equal(result.steps[0]?.retries, 0);
  assert.equal(result.steps[0]?.nextNumber, 1);
});

Deno.test("walk() signs a fresh token when a retry would outlive the old one", async () => {
  // Lifetime 5 s; waits of 2 s then 4 s: the first retry (at 2 s) resends
  // the token, the second (at 6 s) would come after exp, so the event is
  // re-signed (a repeat is harmless to the state machine).
  const net = new FakeNet({ dropSend: (i) => i < 2 });
  const result = await walk(
    net,
    heartbeat,
    options(net, {
      to: 0,
      lifetimeSec: 5,
      retry: { initialTimeoutMs: 2000, maxTimeoutMs: 4000, jitter: 0 },
    }),
  );
  assert.equal(result.ok, true);
  const [step] = result.steps;
  assert.equal(step?.retries, 2);
  assert.equal(step?.resigned, 1);
  assert.deepEqual(net.sent[1], net.sent[0]);
  assert.notDeepEqual(net.sent[2], net.sent[0]);
  assert.equal(payloadOf(net.sent[2]!).seq_state_number, 0);
});

Deno.test("send walks every group of the vectors against a real server", async () => {
  const groups = [
    "heartbeat",
    "chedimon",
    "theothers",
    "segsanh",
    "guilhonga",
    "pkcs1grp",
  ];
  const stopped = await withServer({}, async (server) => {
    for (const group of groups) {
      const io = capture();
      const code = await runSend([
        "127.0.0.1",
        String(server.port),
        "--group",
        group,
        "--key",
        `${VECTORS}private/${group}.key`,
        "--secret",
        SECRET_FILE,
        "--registration",
        "20230001",
      ], io);
      assert.equal(code, 0, io.lines.join("\n"));
      const steps = io.lines.filter((l) => /^\s+\d+ [A-Z]+ /.test(l));
      assert.equal(steps.length, 7, io.lines.join("\n"));
      assert.match(
        steps[0]!,
        /^ {2}0 RED +next_number 1 +rtt +[\d.]+ ms +retries 0$/,
      );
      assert.match(steps[6]!, /^ {2}6 VIOLET +next_number 0 /);
      assert.match(io.lines.at(-1)!, /^walk complete: events 0-6 acknowledged/);
      assert.match(io.lines[1]!, /^answers verified with /);
    }
  });
  const ok = stopped.log.filter((r) => r.outcome === "ok").length;
  assert.equal(ok, 7 * groups.length);
});

Deno.test("send completes walks under 30% simulated loss, retransmissions answered from the cache", async () => {
  const stopped = await withServer({}, async (server) => {
    for (const seed of [7, 36]) {
      const io = capture();
      const code = await runSend([
        "127.0.0.1",
        String(server.port),
        "--group",
        "segsanh",
        "--key",
        `${VECTORS}private/segsanh.key`,
        "--secret",
        SECRET_FILE,
        "--simulate-loss",
        "0.3",
        "--seed",
        String(seed),
        "--timeout",
        "50",
        "--max-timeout",
        "200",
        "--retries",
        "20",
        "--json",
      ], io);
      const objects = io.lines.map((l) => JSON.parse(l));
      const summary = objects.at(-1);
      assert.equal(code, 0, io.lines.join("\n"));
      assert.equal(summary.type, "summary");
      assert.equal(summary.ok, true);
      assert.equal(summary.seed, seed);
      assert.equal(objects.filter((o) => o.type === "step").length, 7);
      // The seeds chosen drop datagrams both ways; each failed attempt costs
      // a retransmission (a late duplicate can be dropped without one, so
      // the counts need not be equal).
      assert.ok(summary.dropped.sent > 0 && summary.dropped.received > 0);
      assert.ok(summary.retries > 0, JSON.stringify(summary));
    }
  });
  // The state machine ran once per event; lost answers were resent from
  // the cache.
  const segsanh = stopped.log.filter((r) => r.group === "SEGSANH");
  assert.equal(segsanh.filter((r) => r.outcome === "ok").length, 14);
  assert.ok(segsanh.filter((r) => r.outcome === "replayed").length > 0);
});

/** Whether `::1` can be bound here. */
const HAS_IPV6 = (() => {
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" })
      .close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "send walks over IPv6 to [::1]",
  ignore: !HAS_IPV6,
  fn: async () => {
    await withServer({ hostname: "::1" }, async (server) => {
      const io = capture();
      const code = await runSend([
        "[::1]",
        String(server.port),
        "--group",
        "chedimon",
        "--key",
        `${VECTORS}private/chedimon.key`,
        "--secret",
        SECRET_FILE,
      ], io);
      assert.equal(code, 0, io.lines.join("\n"));
      assert.match(io.lines[0]!, / to \[::1\] port \d+, /);
    });
  },
});

Deno.test("deno task demo walks HEARTBEAT under 30% loss and stops its server", async () => {
  // Run the task's own command line, with a seed whose losses are known.
  const tasks = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ).tasks;
  const [deno, ...args] = String(tasks.demo).split(" ");
  assert.equal(deno, "deno");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args, "--seed", "1485850009"],
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `${stdout}${new TextDecoder().decode(out.stderr)}`);
  assert.match(stdout, /^demo: server on 127\.0\.0\.1 port \d+, /);
  assert.match(
    stdout,
    /simulating loss: dropping each datagram with probability 0\.3 \(seed 1485850009\)/,
  );
  assert.match(
    stdout,
    // Timing can add retries on a slow machine, so counts are not pinned.
    /\nwalk complete: events 0-6 acknowledged \(7 steps, \d+ retries, .*simulated loss dropped \d+ sent and \d+ received datagrams/,
  );
  assert.match(stdout, /\ndemo: the walk completed despite the loss\n/);
  assert.match(
    stdout,
    /\ndemo: server stopped after \d+ datagrams: \{"ok":7(,"replayed":\d+)?\}\n$/,
  );
});

Deno.test("send prints an error answer as CODE: reason and exits 1", async () => {
  await withServer({}, async (server) => {
    const io = capture();
    const code = await runSend([
      "127.0.0.1",
      String(server.port),
      "--group",
      "chedimon",
      "--key",
      `${VECTORS}private/heartbeat.key`,
    ], io);
    assert.equal(code, 1);
    assert.ok(
      io.lines.some((l) =>
        /^ {2}0 RED +ALG_NOT_ALLOWED: group CHEDIMON has an EC key: sign with ES256, not RS256/
          .test(l)
      ),
      io.lines.join("\n"),
    );
    assert.match(
      io.lines.at(-1)!,
      /^walk FAILED at event 0 RED: ALG_NOT_ALLOWED/,
    );
    assert.match(io.lines[1]!, /answers NOT verified/);
  });
});

Deno.test("send reports NO_ANSWER when nothing listens", async () => {
  const probe = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const io = capture();
  const code = await runSend([
    "127.0.0.1",
    String(port),
    "--group",
    "heartbeat",
    "--key",
    `${VECTORS}private/heartbeat.key`,
    "--timeout",
    "20",
    "--retries",
    "2",
  ], io);
  assert.equal(code, 1);
  assert.ok(
    io.lines.some((l) =>
      l.includes("NO_ANSWER: no answer after 3 transmissions")
    ),
  );
});

Deno.test("udpjwt send: --help, usage errors and unusable files", async (t) => {
  await t.step("--help prints the usage and exits 0", async () => {
    const r = await runMain(["send", "--help"]);
    assert.equal(r.code, 0);
    assert.match(
      r.stdout,
      /^Usage: udpjwt send HOST PORT --group G --key PRIVATE\.pem/,
    );
    assert.match(r.stdout, /--simulate-loss P/);
  });
  const key = `${VECTORS}private/heartbeat.key`;
  const cases: [string[], RegExp][] = [
    [[], /^udpjwt: Missing HOST and PORT/],
    [["127.0.0.1", "1", "--key", key], /^udpjwt: Missing --group/],
    [["127.0.0.1", "1", "--group", "g"], /^udpjwt: Missing --key/],
    [
      ["127.0.0.1", "0", "--group", "g", "--key", key],
      /Invalid value for PORT: "0"/,
    ],
    [
      ["127.0.0.1", "1", "--group", "a b", "--key", key],
      /Invalid value for --group/,
    ],
    [[
      "127.0.0.1",
      "1",
      "--group",
      "g",
      "--key",
      key,
      "--from",
      "5",
      "--to",
      "2",
    ], /--from 5 is after --to 2/],
    [
      ["127.0.0.1", "1", "--group", "g", "--key", key, "--to", "7"],
      /Invalid value for --to: "7": expected a whole number from 0 to 6/,
    ],
    [
      [
        "127.0.0.1",
        "1",
        "--group",
        "g",
        "--key",
        key,
        "--simulate-loss",
        "1.5",
      ],
      /--simulate-loss: "1.5"/,
    ],
    [
      ["127.0.0.1", "1", "--group", "g", "--key", key, "--registration", "x"],
      /--registration: "x"/,
    ],
    [["127.0.0.1", "1", "--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    await t.step(`send ${args.join(" ")}`, async () => {
      const r = await runMain(["send", ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Usage: udpjwt send/);
      assert.equal(r.stderr.split("\n")[0]!.startsWith("udpjwt: "), true);
    });
  }
  await t.step(
    "a missing key file, a public key, an empty secret: exit 1",
    async () => {
      const tmp = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${tmp}/empty`, "");
        const base = ["send", "127.0.0.1", "1", "--group", "g"];
        const missing = await runMain([...base, "--key", `${tmp}/nope.key`]);
        assert.equal(missing.code, 1);
        assert.match(
          missing.stderr,
          /^udpjwt: Cannot read --key ".*nope\.key": file not found\n$/,
        );
        const pub = await runMain([
          ...base,
          "--key",
          `${VECTORS}keys_pub/heartbeat.pem`,
        ]);
        assert.equal(pub.code, 1);
        assert.match(
          pub.stderr,
          /Cannot use the private key ".*heartbeat\.pem": PEM type "PUBLIC KEY" is not a private key/,
        );
        const empty = await runMain([
          ...base,
          "--key",
          key,
          "--secret",
          `${tmp}/empty`,
        ]);
        assert.equal(empty.code, 1);
        assert.match(empty.stderr, /The --secret file ".*empty" is empty/);
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    },
  );
});
