/**
 * Tests of lib/client/walk.ts: the walk's claims and retry logic against a
 * fake network whose "server" is the real `handlePacket` with a pinned,
 * injected clock.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CompactSign, decodeProtectedHeader } from "jose";
import { keySigner, walk, type WalkOptions } from "../../lib/client/walk.ts";
import { MemoryStore } from "../../lib/state/store.ts";
import { AUDIENCE, payloadBytes, privateKey, SECRET } from "../_helpers.ts";
import { FakeNet, T0 } from "./_fake_net.ts";

/** The claims of a request datagram. */
function payloadOf(datagram: Uint8Array): Record<string, unknown> {
  const decoder = new TextDecoder();
  return JSON.parse(decoder.decode(payloadBytes(decoder.decode(datagram))));
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

Deno.test("walk() sends the request claims of docs/protocol.md and completes a walk", async () => {
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

Deno.test("keySigner() signs RS256 and ES256 as jose does, RSA-1024 keys and kid included", async (t) => {
  const payload = new TextEncoder().encode('{"sub":"heartbeat"}');
  await t.step("RS256 with a 2048-bit key: the bytes of jose", async () => {
    const key = await privateKey("heartbeat");
    for (const kid of [undefined, "k1"]) {
      const header = kid === undefined
        ? { alg: "RS256", typ: "JWT" }
        : { alg: "RS256", typ: "JWT", kid };
      assert.equal(
        await keySigner(key, "RS256", kid).sign(payload),
        await new CompactSign(payload).setProtectedHeader(header).sign(key),
      );
    }
  });
  for (const alg of ["RS256", "ES256"] as const) {
    await t.step(`${alg} verifies with the public key`, async () => {
      const { privateKey: key, publicKey } = await crypto.subtle.generateKey(
        alg === "RS256"
          ? {
            name: "RSASSA-PKCS1-v1_5",
            modulusLength: 1024, // jose refuses it; the 2023 keys are this size
            publicExponent: new Uint8Array([1, 0, 1]),
            hash: "SHA-256",
          }
          : { name: "ECDSA", namedCurve: "P-256" },
        false,
        ["sign", "verify"],
      );
      const token = await keySigner(key, alg, "k2").sign(payload);
      // WebCrypto checks it: jose's compactVerify refuses RSA-1024 too.
      const [h = "", p = "", s = ""] = token.split(".");
      const verified = await crypto.subtle.verify(
        alg === "RS256"
          ? "RSASSA-PKCS1-v1_5"
          : { name: "ECDSA", hash: "SHA-256" },
        publicKey,
        Uint8Array.fromBase64(s, { alphabet: "base64url" }),
        new TextEncoder().encode(`${h}.${p}`),
      );
      assert.ok(verified);
      assert.deepEqual(decodeProtectedHeader(token), {
        alg,
        typ: "JWT",
        kid: "k2",
      });
    });
  }
});
