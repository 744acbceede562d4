/**
 * The HTTP side of the real server (`main.ts --http 127.0.0.1:0`), walked
 * over UDP: the event stream, `/metrics`, `/api/status` and `/healthz` follow
 * the walk; the token rule from a file; the command-line errors of `--http`
 * and `--http-token`. The page in a browser is dashboard_test.ts; the full
 * disk's `/healthz` is disk_full_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runMain, withServer } from "../_server.ts";
import { withClient } from "../_udp_client.ts";
import { checkError, step, token, walk } from "./_server_checks.ts";

/** Reads `/events` in the background, collecting the parsed messages. */
function listen(url: string): {
  events: { event: string; data: Record<string, unknown> }[];
  stop(): Promise<void>;
} {
  const events: { event: string; data: Record<string, unknown> }[] = [];
  const abort = new AbortController();
  const done = (async () => {
    const r = await fetch(url, { signal: abort.signal });
    assert.equal(r.status, 200);
    let buffer = "";
    try {
      for await (const chunk of r.body!.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    }
  })();
  return {
    events,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

/** Polls `test` every 50 ms for up to 5 s. */
async function eventually(test: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!test()) {
    assert.ok(Date.now() < deadline, `not seen in 5 s: ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("main.ts --http: the event stream, /metrics, /api/status and /healthz follow a walk over UDP", async () => {
  await withServer({ args: ["--http", "127.0.0.1:0"] }, async (server) => {
    assert.match(server.http ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
    const stream = listen(`${server.http}/events`);
    try {
      await eventually(() => stream.events.length > 0, "hello");
      const hello = stream.events[0]!;
      assert.equal(hello.event, "hello");
      const keys = hello.data.keys as { group: string; fingerprint: string }[];
      assert.ok(keys.some((k) => k.group === "HEARTBEAT"));
      assert.ok(keys.every((k) => /^SHA256:/.test(k.fingerprint)));
      await withClient(async (client) => {
        await walk(client, server.addr, "HEARTBEAT");
        await step(client, server.addr, "CHEDIMON", 0, 1);
        await step(client, server.addr, "CHEDIMON", 1, 2);
        await client.send(
          server.addr,
          await token("CHEDIMON", 2, undefined, "SEGSANH"),
        );
        await checkError(
          await client.receive(),
          "BAD_SIGNATURE",
          "NO_SUB_CLAIM",
        );
      });
      const groupEvents = () =>
        stream.events.filter((e) => e.event === "group").map((e) => e.data);
      await eventually(
        () =>
          groupEvents().some((d) => d.group === "HEARTBEAT" && d.walks === 1),
        "HEARTBEAT's completed walk",
      );
      const last = groupEvents().findLast((d) => d.group === "HEARTBEAT")!;
      assert.equal(last.state, 6);
      assert.equal(last.colour, "VIOLET");
      assert.equal(typeof last.lastActivity, "string");
      await eventually(
        () =>
          stream.events.some((e) =>
            e.event === "summary" &&
            JSON.stringify(e.data.errors) === '{"":{"BAD_SIGNATURE":1}}'
          ),
        "the bad signature in a summary",
      );
    } finally {
      await stream.stop();
    }

    const metrics = await (await fetch(`${server.http}/metrics`)).text();
    assert.equal(sample(metrics, 'udpjwt_datagrams_total{outcome="ok"}'), 9);
    assert.equal(
      sample(metrics, 'udpjwt_datagrams_total{outcome="BAD_SIGNATURE"}'),
      1,
    );
    assert.equal(sample(metrics, 'udpjwt_group_state{group="HEARTBEAT"}'), 6);
    assert.equal(
      sample(metrics, 'udpjwt_group_walks_total{group="HEARTBEAT"}'),
      1,
    );
    assert.equal(sample(metrics, 'udpjwt_group_state{group="CHEDIMON"}'), 1);
    assert.equal(sample(metrics, "udpjwt_request_duration_seconds_count"), 10);
    // Nine steps, fsync'd in one batch each at least once.
    assert.ok(
      sample(metrics, "udpjwt_journal_commit_duration_seconds_count")! >= 1,
    );
    assert.equal(sample(metrics, "udpjwt_answer_cache_entries"), 9);

    const status = await (await fetch(`${server.http}/api/status`)).json();
    const heartbeat = status.groups.find((g: { group: string }) =>
      g.group === "HEARTBEAT"
    );
    assert.equal(heartbeat.walks, 1);
    assert.equal(heartbeat.state, 6);
    // The vectors' six RS256/ES256 groups and EDGROUP (Ed25519, protocol 2.1).
    assert.equal(status.keys.length, 7);
    assert.deepEqual(status.health, { ok: true });
    const health = await fetch(`${server.http}/healthz`);
    assert.equal(`${health.status} ${await health.text()}`, "200 ok\n");
  });
});

Deno.test("main.ts --http-token FILE: requests without the file's token get a 401", async () => {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_http_" });
  try {
    const file = `${dir}/token`;
    const secret = "3f1c9a7e5b2d4068aa11c0ffee42beef";
    await Deno.writeTextFile(file, `${secret}\n`);
    await withServer(
      { args: ["--http", "127.0.0.1:0", "--http-token", file] },
      async (server) => {
        assert.match(server.stdout(), /^http: .*token required/m);
        const none = await fetch(`${server.http}/api/status`);
        assert.equal(none.status, 401);
        await none.body?.cancel();
        const ok = await fetch(`${server.http}/metrics`, {
          headers: { authorization: `Bearer ${secret}` },
        });
        assert.equal(ok.status, 200);
        assert.match(await ok.text(), /udpjwt_datagrams_total/);
        const page = await fetch(`${server.http}/?token=${secret}`);
        assert.equal(page.status, 200);
        assert.doesNotMatch(await page.text(), new RegExp(secret));
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--http and --http-token mistakes are one clear line and the right exit code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_http_" });
  try {
    await Deno.writeTextFile(`${dir}/short`, "abc\n");
    const cases: [string[], number, RegExp][] = [
      [
        ["--http", "0.0.0.0:44580"],
        2,
        /--http 0\.0\.0\.0:44580 is not a loopback address: pass --http-token FILE/,
      ],
      [
        ["--http", "44580"],
        2,
        /Invalid value for --http: "44580": expected ADDR:PORT/,
      ],
      [["--http", "[::1]:70000"], 2, /Invalid value for --http/],
      [["--http-token", `${dir}/short`], 2, /--http-token needs --http/],
      [
        ["--http", "127.0.0.1:0", "--http-token", `${dir}/missing`],
        1,
        /Cannot read the HTTP token ".*missing": .*openssl rand -hex 24/,
      ],
      [
        ["--http", "127.0.0.1:0", "--http-token", `${dir}/short`],
        1,
        /at least 16 characters/,
      ],
    ];
    for (const [flags, code, message] of cases) {
      const r = await runMain([
        "127.0.0.1",
        "0",
        "tests/testdata/vectors",
        "--state-dir",
        `${dir}/state`,
        "--log-dir",
        `${dir}/logs`,
        ...flags,
      ]);
      assert.equal(r.code, code, `${flags.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      if (flags[0] === "--http" && flags[1] === "0.0.0.0:44580") {
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      }
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
