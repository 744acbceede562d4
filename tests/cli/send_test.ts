/**
 * Tests of `udpjwt send` (lib/cli/send.ts) end to end: walks against a real
 * server over loopback, with and without simulated loss, over IPv6, through
 * `deno task demo`, and the command line's usage errors and unusable files.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runSend } from "../../lib/cli/send.ts";
import { capture, hasIpv6, SECRET_FILE, VECTORS } from "../_helpers.ts";
import { runMain, withServer } from "../_server.ts";

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

Deno.test({
  name: "send walks over IPv6 to [::1]",
  ignore: !hasIpv6(),
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
    cwd: fileURLToPath(new URL("../../", import.meta.url)),
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
