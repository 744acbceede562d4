/**
 * The HTTP side (lib/net/http.ts) in process, on 127.0.0.1 port 0, over a
 * fake running server: every endpoint, the token rule, the limits, the
 * event stream's coalescing and bounds, and `/metrics` checked by
 * Prometheus' own parser (`promtool check metrics`, Debian's prometheus
 * package; those steps are skipped with a message where it is missing).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type HttpOptions,
  type HttpSide,
  startHttp,
} from "../../lib/net/http.ts";
import { EventHub } from "../../lib/net/events.ts";
import {
  type Health,
  type LiveView,
  Monitor,
  NO_GROUP,
} from "../../lib/net/monitor.ts";
import { emptyRecord, type GroupRecord } from "../../lib/state/store.ts";

const PROMTOOL = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
if (!PROMTOOL) {
  // deno-lint-ignore no-console
  console.log(
    "http_test: promtool not found: the Prometheus parser checks are skipped; install Debian's prometheus package",
  );
}

/** A fake server whose figures the test sets. */
class FakeView implements LiveView {
  countMap = new Map<string, number>([["ok", 7], ["BAD_SIGNATURE", 2]]);
  groupMap = new Map<string, GroupRecord>();
  healthNow: Health = { ok: true };
  inFlightNow = 3;
  counts = () => this.countMap;
  inFlight = () => this.inFlightNow;
  answerCacheEntries = () => 11;
  records = () => this.groupMap;
  keys = () => [
    { group: "ALPHA", alg: "RS256", fingerprint: "SHA256:abc" },
    { group: "<b>X</b>", alg: "ES256", fingerprint: "SHA256:def" },
  ];
  health = () => this.healthNow;
  status = () => ({ groups: [...this.groupMap.keys()], keys: this.keys() });

  setGroup(group: string, state: number, walks = 0): void {
    const r = emptyRecord();
    r.state = state;
    r.walkCount = walks;
    r.lastActivity = "2026-12-01T10:00:00.000Z";
    this.groupMap.set(group, r);
  }
}

/** Starts the side on a fake; closes it after `fn`. */
async function withHttp(
  options: Partial<HttpOptions>,
  fn: (
    origin: string,
    view: FakeView,
    monitor: Monitor,
    side: HttpSide,
  ) => Promise<void>,
): Promise<void> {
  const view = new FakeView();
  const monitor = new Monitor();
  const side = await startHttp({
    hostname: "127.0.0.1",
    port: 0,
    view,
    monitor,
    ...options,
  });
  try {
    await fn(`http://127.0.0.1:${side.addr.port}`, view, monitor, side);
  } finally {
    await side.close();
  }
}

/** GET, body read whole. */
async function get(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; headers: Headers; body: string }> {
  const r = await fetch(url, init);
  return { status: r.status, headers: r.headers, body: await r.text() };
}

/** A raw HTTP/1.1 request over TCP, for what fetch will not send. */
async function raw(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}

/** The value of one sample line, e.g. `name{label="v"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Reads SSE messages from a stream until `until` holds or time runs out. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  until: (events: { event: string; data: unknown }[]) => boolean,
  timeoutMs = 3000,
): Promise<{ event: string; data: unknown }[]> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const events: { event: string; data: unknown }[] = [];
  let buffer = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!until(events)) {
      const left = deadline - Date.now();
      assert.ok(left > 0, `events so far: ${JSON.stringify(events)}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) =>
          timer = setTimeout(() => reject(new Error("no event in time")), left)
        ),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) break;
      buffer += chunk.value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
  } finally {
    await reader.cancel();
  }
  return events;
}

Deno.test("GET / is the self-contained page with a policy that forbids any other origin", async () => {
  await withHttp({}, async (origin) => {
    const r = await get(`${origin}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type")!, /^text\/html/);
    assert.match(r.body, /^<!doctype html>/);
    assert.doesNotMatch(
      r.body,
      /\b(src|href)="(https?:)?\/\//,
      "no external URL",
    );
    const csp = r.headers.get("content-security-policy")!;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    // The script's hash in the policy is the hash of the page's script.
    const script = /<script>([\s\S]*)<\/script>/.exec(r.body)![1]!;
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(script)),
    );
    assert.ok(csp.includes(`'sha256-${btoa(String.fromCharCode(...digest))}'`));
    const head = await fetch(`${origin}/`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });
});

Deno.test("GET /api/status, /healthz (200 and 503 with the reason), /jwks.json and unknown paths", async () => {
  await withHttp({}, async (origin, view) => {
    view.setGroup("ALPHA", 3);
    const status = await get(`${origin}/api/status`);
    assert.equal(status.status, 200);
    assert.match(status.headers.get("content-type")!, /^application\/json/);
    assert.deepEqual(JSON.parse(status.body), view.status());
    assert.deepEqual(
      [await get(`${origin}/healthz`)].map((r) => [r.status, r.body]),
      [[200, "ok\n"]],
    );
    view.healthNow = { ok: false, reason: "the state journal is not writable" };
    const sick = await get(`${origin}/healthz`);
    assert.equal(sick.status, 503);
    assert.equal(sick.body, "the state journal is not writable\n");
    const jwks = await get(`${origin}/jwks.json`);
    assert.equal(jwks.status, 404);
    assert.match(jwks.body, /no answer key/);
    assert.equal((await get(`${origin}/nope`)).status, 404);
  });
});

Deno.test("with a token, every path needs it as a Bearer header or ?token=", async () => {
  const token = "0123456789abcdef-token";
  await withHttp({ token }, async (origin) => {
    for (
      const path of ["/", "/api/status", "/metrics", "/healthz", "/events"]
    ) {
      const none = await get(`${origin}${path}`);
      assert.equal(none.status, 401, path);
      assert.match(none.headers.get("www-authenticate")!, /^Bearer/);
      assert.doesNotMatch(none.body, /ALPHA|udpjwt_/, "nothing leaks");
      const wrong = await get(`${origin}${path}?token=${token}x`, {
        headers: { authorization: `Bearer ${token.slice(0, -1)}` },
      });
      assert.equal(wrong.status, 401, path);
    }
    const bearer = await get(`${origin}/healthz`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(bearer.status, 200);
    const query = await get(`${origin}/api/status?token=${token}`);
    assert.equal(query.status, 200);
    const events = await fetch(`${origin}/events?token=${token}`);
    assert.equal(events.status, 200);
    await events.body!.cancel();
  });
});

Deno.test("the limits: read-only methods, no body, bounded URL and headers, bounded requests at once", async () => {
  await withHttp({}, async (origin, _view, _monitor, side) => {
    const post = await get(`${origin}/api/status`, {
      method: "POST",
      body: "x",
    });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    const long = await get(`${origin}/?q=${"a".repeat(3000)}`);
    assert.equal(long.status, 414);
    const big = await get(`${origin}/healthz`, {
      headers: { "x-filler": "b".repeat(9000) },
    });
    assert.equal(big.status, 431);
    const withBody = await raw(
      side.addr.port,
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert.match(withBody, /^HTTP\/1\.1 413 /);
  });
  await withHttp({ maxRequests: 0 }, async (origin) => {
    const busy = await get(`${origin}/healthz`);
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get("retry-after"), "1");
  });
});

Deno.test({
  name:
    "GET /metrics is valid Prometheus text (promtool) with the server's figures",
  ignore: !PROMTOOL,
  fn: async () => {
    await withHttp({}, async (origin, view, monitor) => {
      view.setGroup("ALPHA", 4, 2);
      monitor.datagram({ outcome: "ok" }, 0.0003);
      monitor.datagram({ outcome: "BAD_SIGNATURE" }, 0.002);
      monitor.commit(0.004);
      const r = await get(`${origin}/metrics`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type")!, /version=0\.0\.4/);
      const check = await new Deno.Command(PROMTOOL!, {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = check.stdin.getWriter();
      await writer.write(new TextEncoder().encode(r.body));
      await writer.close();
      const out = await check.output();
      const said = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `promtool check metrics: ${said}`);
      const m = r.body;
      assert.equal(sample(m, 'udpjwt_datagrams_total{outcome="ok"}'), 7);
      assert.equal(
        sample(m, 'udpjwt_datagrams_total{outcome="BAD_SIGNATURE"}'),
        2,
      );
      assert.equal(
        sample(m, 'udpjwt_datagrams_total{outcome="JTI_REUSED"}'),
        0,
      );
      assert.equal(sample(m, 'udpjwt_group_state{group="ALPHA"}'), 4);
      assert.equal(sample(m, 'udpjwt_group_walks_total{group="ALPHA"}'), 2);
      assert.equal(sample(m, 'udpjwt_group_state{group="<b>X</b>"}'), 0);
      assert.equal(sample(m, "udpjwt_in_flight"), 3);
      assert.equal(sample(m, "udpjwt_answer_cache_entries"), 11);
      assert.equal(sample(m, "udpjwt_healthy"), 1);
      assert.equal(sample(m, "udpjwt_request_duration_seconds_count"), 2);
      assert.equal(
        sample(m, 'udpjwt_request_duration_seconds_bucket{le="0.0005"}'),
        1,
      );
      assert.equal(
        sample(m, "udpjwt_journal_commit_duration_seconds_count"),
        1,
      );
      assert.ok(sample(m, "process_resident_memory_bytes")! > 1e6);
      assert.ok(sample(m, "process_cpu_seconds_total")! > 0);
      const start = sample(m, "process_start_time_seconds")!;
      assert.ok(Math.abs(start - Date.now() / 1000) < 3600, String(start));
    });
  },
});

Deno.test("GET /events: hello, then one coalesced group event per change and a summary each second", async () => {
  await withHttp({}, async (origin, view, monitor) => {
    const before = view.status();
    const r = await fetch(`${origin}/events`);
    assert.equal(r.headers.get("content-type"), "text/event-stream");
    const changes = (async () => {
      // After the hello: ALPHA moves three times within one flush.
      await new Promise((ok) => setTimeout(ok, 50));
      for (const state of [1, 2, 3]) {
        view.setGroup("ALPHA", state);
        monitor.datagram({
          outcome: "ok",
          group: "ALPHA",
          previousState: state - 1,
          state,
        }, 0.001);
      }
      monitor.datagram({ outcome: "BAD_SIGNATURE", group: "ALPHA" }, 0.001);
    })();
    const events = await readEvents(
      r.body!,
      (es) => es.some((e) => e.event === "summary"),
    );
    await changes;
    assert.equal(events[0]!.event, "hello");
    assert.deepEqual(events[0]!.data, before);
    const groups = events.filter((e) => e.event === "group");
    assert.deepEqual(groups.map((e) => e.data), [{
      group: "ALPHA",
      state: 3,
      colour: "GREEN",
      walks: 0,
      lastActivity: "2026-12-01T10:00:00.000Z",
      registration: null,
    }]);
    const summary = events.find((e) => e.event === "summary")!.data as Record<
      string,
      unknown
    >;
    assert.deepEqual(summary.totals, { ok: 7, BAD_SIGNATURE: 2 });
    assert.deepEqual(summary.errors, { ALPHA: { BAD_SIGNATURE: 1 } });
    assert.deepEqual(summary.health, { ok: true });
  });
});

Deno.test("GET /events is bounded: past maxClients a 503, and a closed side ends the streams", async () => {
  await withHttp({ maxClients: 2 }, async (origin, _view, _monitor, side) => {
    const a = await fetch(`${origin}/events`);
    const b = await fetch(`${origin}/events`);
    const c = await fetch(`${origin}/events`);
    assert.deepEqual([a.status, b.status, c.status], [200, 200, 503]);
    await c.body?.cancel();
    assert.equal(side.hub.clients, 2);
    await a.body!.cancel();
    // The server sees the cancel when its next write fails or the stream ends.
    const deadline = Date.now() + 3000;
    while (side.hub.clients > 1 && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.equal(side.hub.clients, 1);
    const d = await fetch(`${origin}/events`);
    assert.equal(d.status, 200);
    side.hub.close();
    // Both streams end: reading them to the end finishes.
    await Promise.all([b.text(), d.text()]);
  });
});

Deno.test("EventHub drops a client that stops reading instead of buffering for it", async () => {
  const view = new FakeView();
  const monitor = new Monitor();
  const hub = new EventHub(view, monitor, { flushMs: 5, maxQueued: 3 });
  const stream = hub.connect()!;
  const feed = setInterval(() => {
    monitor.datagram({
      outcome: "ok",
      group: "ALPHA",
      previousState: 0,
      state: 1,
    }, 0);
  }, 2);
  try {
    const deadline = Date.now() + 3000;
    while (hub.clients > 0 && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 10));
    }
    assert.equal(hub.clients, 0);
    assert.equal(hub.dropped, 1);
    // What was queued can still be read; then the stream fails.
    const reader = stream.getReader();
    await assert.rejects(async () => {
      for (let i = 0; i < 10; i++) await reader.read();
    }, /too slow/);
  } finally {
    clearInterval(feed);
    hub.close();
  }
});

Deno.test("Monitor counts errors by verified group, unverified ones apart, and coalesces changes", () => {
  const m = new Monitor();
  m.datagram({ outcome: "BAD_SIGNATURE", error: "BAD_SIGNATURE" }, 0);
  m.datagram({ outcome: "TOKEN_EXPIRED", group: "ALPHA" }, 0);
  m.datagram({
    outcome: "dropped:rate_limit",
    error: "JTI_REUSED",
    group: "ALPHA",
  }, 0);
  m.datagram({ outcome: "dropped:oversize" }, 0);
  m.datagram({ outcome: "replayed", group: "ALPHA" }, 0);
  assert.deepEqual(m.errorsByGroup(), {
    [NO_GROUP]: { BAD_SIGNATURE: 1 },
    ALPHA: { TOKEN_EXPIRED: 1, JTI_REUSED: 1 },
  });
  m.datagram({ outcome: "ok", group: "B", previousState: 5, state: 6 }, 0);
  m.datagram({
    outcome: "ok",
    group: "B",
    previousState: 6,
    state: 0,
    completedWalk: true,
  }, 0);
  m.datagram({ outcome: "ok", group: "B", previousState: 0, state: 0 }, 0);
  assert.deepEqual(m.takeChanges(), [{
    group: "B",
    state: 0,
    registration: null,
    completedWalk: true,
  }]);
  assert.deepEqual(m.takeChanges(), []);
});

Deno.test("GET /jwks.json serves the answer key's JWK Set, without the token", async () => {
  const jwks = {
    keys: [{
      kty: "OKP",
      crv: "Ed25519",
      x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
      kid: "kid-1",
      alg: "EdDSA",
      use: "sig",
    }],
  };
  const token = "0123456789abcdef-token";
  await withHttp({ jwks, token }, async (origin) => {
    const r = await get(`${origin}/jwks.json`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/jwk-set+json");
    assert.deepEqual(JSON.parse(r.body), jwks);
    const head = await fetch(`${origin}/jwks.json`, { method: "HEAD" });
    assert.equal(head.status, 200);
    await head.body?.cancel();
    // Only the public key is open: everything else still needs the token.
    assert.equal((await get(`${origin}/api/status`)).status, 401);
  });
});

Deno.test("GET /events: a profile v1 group's event carries its M and no rainbow colour", async () => {
  await withHttp({}, async (origin, view, monitor) => {
    const r = await fetch(`${origin}/events`);
    setTimeout(() => {
      view.setGroup("V1GROUP", 3);
      view.groupMap.get("V1GROUP")!.seqMax = 5;
      monitor.datagram({
        outcome: "ok",
        group: "V1GROUP",
        previousState: 2,
        state: 3,
      }, 0.001);
    }, 50);
    const events = await readEvents(
      r.body!,
      (es) => es.some((e) => e.event === "group"),
    );
    const group = events.find((e) => e.event === "group")!.data as Record<
      string,
      unknown
    >;
    assert.equal(group.colour, "-");
    assert.equal(group.seqMax, 5);
    assert.equal(group.state, 3);
  });
});
