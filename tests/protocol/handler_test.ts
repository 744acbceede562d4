import assert from "node:assert/strict";
import { jwtVerify, SignJWT } from "jose";
import {
  handlePacket,
  type HandlerContext,
  otpTimestamp,
  randomHex32,
} from "../../lib/protocol/handler.ts";
import { ReplayCache } from "../../lib/state/replay.ts";
import { MemoryStore } from "../../lib/state/store.ts";
import {
  AUDIENCE,
  makeGroup,
  requestClaims,
  sha256Hex,
  signRequest,
  type TestGroup,
} from "../_helpers.ts";

const NOW = 1_800_000_000;
const secret = new TextEncoder().encode("test-secret\n");
const rsa = await makeGroup("ALPHA", "RS256");
const ec = await makeGroup("BRAVO", "ES256");

function context(overrides?: Partial<HandlerContext>): HandlerContext {
  return {
    keys: new Map([[rsa.key.group, rsa.key], [ec.key.group, ec.key]]),
    secret,
    store: new MemoryStore(),
    replay: new ReplayCache(),
    now: () => new Date(NOW * 1000 + 123),
    randomId: randomHex32,
    leewaySec: 30,
    states: 7,
    lanes: new Map(),
    ...overrides,
  };
}

async function request(
  g: TestGroup,
  n: number,
  extra?: Record<string, unknown>,
): Promise<Uint8Array> {
  const token = await signRequest(
    requestClaims(g.key.group, n, NOW, extra),
    g.priv,
    g.alg,
  );
  return new TextEncoder().encode(token);
}

async function answer(reply: Uint8Array | null) {
  assert.ok(reply, "an answer is sent");
  assert.ok(reply.length < 1000, `answer of ${reply.length} bytes`);
  const { payload, protectedHeader } = await jwtVerify(
    new TextDecoder().decode(reply),
    secret,
    { algorithms: ["HS256"], currentDate: new Date(NOW * 1000) },
  );
  assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
  return payload;
}

Deno.test("handlePacket() answers a valid request with every success claim", async () => {
  const ctx = context();
  const bytes = await request(rsa, 0, { sub: "alpha" });
  const payloadSegment = new TextDecoder().decode(bytes).split(".")[1]!;
  const payloadBytes = Uint8Array.fromBase64(payloadSegment, {
    alphabet: "base64url",
  });
  const result = await handlePacket(bytes, ctx);
  assert.equal(result.outcome, "ok");
  const p = await answer(result.reply);
  assert.deepEqual(Object.keys(p).sort(), [
    "exp",
    "iat",
    "id_request",
    "iss",
    "jti",
    "next_number",
    "otp_timestamp",
    "sub",
  ]);
  assert.equal(p.iss, AUDIENCE);
  assert.equal(p.sub, "alpha", "sub is echoed as sent");
  assert.match(String(p.jti), /^[0-9a-f]{32}$/);
  assert.equal(p.iat, NOW);
  assert.equal(p.exp, NOW + 30);
  assert.equal(p.id_request, await sha256Hex(payloadBytes));
  assert.equal(p.otp_timestamp, "2027-01-15T08:00:00.123+00:00");
  assert.equal(p.next_number, 1);
});

Deno.test("handlePacket() walks RS256 and ES256 groups independently", async () => {
  const ctx = context();
  const answers: Record<string, unknown[]> = { ALPHA: [], BRAVO: [] };
  for (let n = 0; n < 7; n++) {
    for (const g of [rsa, ec]) {
      const p = await answer(
        (await handlePacket(await request(g, n), ctx)).reply,
      );
      answers[g.key.group]!.push(p.next_number);
    }
  }
  assert.deepEqual(answers.ALPHA, [1, 2, 3, 4, 5, 6, 0]);
  assert.deepEqual(answers.BRAVO, [1, 2, 3, 4, 5, 6, 0]);
  const snap = ctx.store.snapshot();
  assert.equal(snap.ALPHA?.state, 6);
  assert.equal(snap.ALPHA?.walks.length, 1);
  assert.equal(Object.keys(snap.ALPHA?.registrations ?? {}).length, 7);
});

Deno.test("handlePacket() answers events of one group in arrival order", async () => {
  const ctx = context();
  const datagrams = await Promise.all([0, 1, 2, 3].map((n) => request(ec, n)));
  // All four are handled concurrently; the FSM must see them in order.
  const results = await Promise.all(datagrams.map((d) => handlePacket(d, ctx)));
  const next = await Promise.all(
    results.map(async (r) => (await answer(r.reply)).next_number),
  );
  assert.deepEqual(next, [1, 2, 3, 4]);
  assert.equal(ctx.store.state("BRAVO"), 3);
  assert.equal(ctx.lanes.size, 0, "finished lanes are forgotten");
});

Deno.test("handlePacket() gives no answer to an out-of-range event", async () => {
  const ctx = context();
  await handlePacket(await request(rsa, 1), ctx);
  for (const n of [7, 9, -1]) {
    const r = await handlePacket(await request(rsa, n), ctx);
    assert.equal(r.outcome, "no_action");
    assert.equal(r.reply, null);
  }
  assert.equal(ctx.store.state("ALPHA"), 1);
});

Deno.test("handlePacket() answers an out-of-order event with the expected number", async () => {
  const ctx = context();
  await handlePacket(await request(rsa, 0), ctx);
  await handlePacket(await request(rsa, 1), ctx);
  const p = await answer(
    (await handlePacket(await request(rsa, 4), ctx)).reply,
  );
  assert.equal(p.next_number, 2);
  assert.equal(ctx.store.state("ALPHA"), 1);
});

Deno.test("handlePacket() signs error answers with the error claims", async (t) => {
  const ctx = context();
  await t.step(
    "before the signature verifies, sub is NO_SUB_CLAIM",
    async () => {
      const wrongKey = await signRequest(
        requestClaims("ALPHA", 0, NOW),
        (await makeGroup("X", "RS256")).priv,
        "RS256",
      );
      const r = await handlePacket(new TextEncoder().encode(wrongKey), ctx);
      assert.equal(r.outcome, "BAD_SIGNATURE");
      const p = await answer(r.reply);
      assert.equal(p.sub, "NO_SUB_CLAIM");
      assert.equal(p.error, "BAD_SIGNATURE");
      assert.match(String(p.response), /^ERROR: .*ALPHA/);
      assert.match(String(p.id_request), /^[0-9a-f]{64}$/);
      assert.match(String(p.otp_timestamp), /\+00:00$/);
      assert.equal(p.exp, Number(p.iat) + 30);
      assert.equal(p.next_number, undefined);
    },
  );
  await t.step(
    "after the signature verifies, sub is echoed as sent",
    async () => {
      const r = await handlePacket(
        await request(rsa, 0, { sub: "Alpha", aud: "x" }),
        ctx,
      );
      assert.equal(r.outcome, "BAD_AUDIENCE");
      const p = await answer(r.reply);
      assert.equal(p.sub, "Alpha");
      assert.equal(p.error, "BAD_AUDIENCE");
    },
  );
  await t.step(
    "the key-confusion attack is refused before any HMAC",
    async () => {
      const pem = new TextEncoder().encode(
        "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
      );
      const token = await new SignJWT(requestClaims("ALPHA", 0, NOW))
        .setProtectedHeader({ alg: "HS256" }).sign(pem);
      const r = await handlePacket(new TextEncoder().encode(token), ctx);
      assert.equal(r.outcome, "ALG_NOT_ALLOWED");
    },
  );
  await t.step(
    "a payload that is not a JSON object gets no id_request",
    async () => {
      const junk = new TextEncoder().encode("x".repeat(300));
      const r = await handlePacket(junk, ctx);
      assert.equal(r.outcome, "MALFORMED_TOKEN");
      const p = await answer(r.reply);
      assert.equal(p.id_request, undefined);
    },
  );
  await t.step("non-ASCII bytes are malformed", async () => {
    const bytes = new Uint8Array(300).fill(0xff);
    const r = await handlePacket(bytes, ctx);
    assert.equal(r.error, "MALFORMED_TOKEN");
  });
});

Deno.test("handlePacket() never answers an unverified source with more than 3x its bytes", async () => {
  const ctx = context();
  for (const size of [0, 1, 10, 100, 150, 199, 200, 250, 1000]) {
    const r = await handlePacket(new Uint8Array(size).fill(0x41), ctx);
    assert.equal(r.error, "MALFORMED_TOKEN");
    if (r.reply) assert.ok(r.reply.length <= 3 * size, `size ${size}`);
    else assert.equal(r.outcome, "dropped:amplification");
  }
  const big = await handlePacket(new Uint8Array(1000).fill(0x41), ctx);
  assert.ok(big.reply, "a large datagram gets its error answer");
});

Deno.test("handlePacket() drops errors without answering once the error budget is spent", async () => {
  const ctx = context();
  const junk = new Uint8Array(500).fill(0x41);
  const r = await handlePacket(junk, ctx, { answerErrors: false });
  assert.equal(r.outcome, "dropped:rate_limit");
  assert.equal(r.error, "MALFORMED_TOKEN");
  assert.equal(r.reply, null);
  const ok = await handlePacket(await request(rsa, 0), ctx, {
    answerErrors: false,
  });
  assert.equal(
    (await answer(ok.reply)).next_number,
    1,
    "valid requests still pass",
  );
});

Deno.test("handlePacket() decides junk and durable retransmissions without a promise", async () => {
  const ctx = context();
  for (
    const junk of [
      new Uint8Array(0),
      new Uint8Array([0xff, 0x00, 0x41]),
      new TextEncoder().encode("not.a.token"),
      new TextEncoder().encode(`${"A".repeat(400)}.e30.`),
    ]
  ) {
    const r = handlePacket(junk, ctx, { answerErrors: false });
    assert.ok(!(r instanceof Promise), `junk of ${junk.length} bytes`);
    assert.equal(r.outcome, "dropped:rate_limit");
  }
  const token = await request(rsa, 0);
  const first = handlePacket(token, ctx);
  assert.ok(first instanceof Promise, "a fresh token is verified first");
  const answered = await first;
  const again = handlePacket(token, ctx);
  assert.ok(!(again instanceof Promise), "the cached answer is durable");
  assert.equal(again.outcome, "replayed");
  assert.deepEqual(again.reply, answered.reply);
});

Deno.test("handlePacket() checks seq_max against a roster's member count", async () => {
  const ctx = context({
    roster: new Map([["ALPHA", new Set([20230000, 20230001, 20230002])]]),
  });
  const r = await handlePacket(await request(rsa, 0), ctx);
  assert.equal(r.outcome, "SEQ_MAX_MISMATCH");
  const ok = await handlePacket(await request(rsa, 0, { seq_max: 3 }), ctx);
  assert.equal(ok.outcome, "ok");
  assert.equal((await handlePacket(await request(ec, 0), ctx)).outcome, "ok");
});

Deno.test("handlePacket() answers only once the store says the event is durable", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const memory = new MemoryStore();
  let recorded = 0;
  const store = {
    state: (g: string) => memory.state(g),
    durableState: (g: string) => memory.state(g),
    snapshot: () => memory.snapshot(),
    records: () => memory.records(),
    health: memory.health,
    close: () => memory.close(),
    record: async (g: string, e: Parameters<MemoryStore["record"]>[1]) => {
      recorded++;
      await memory.record(g, e);
      await gate;
    },
  };
  const ctx = context({ store });
  let done = false;
  const result = handlePacket(await request(rsa, 0), ctx);
  assert.ok(result instanceof Promise, "a valid request is decided later");
  const pending = result.then((r) => {
    done = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(recorded, 1);
  assert.equal(done, false, "no answer before the store is durable");
  release();
  assert.equal((await answer((await pending).reply)).next_number, 1);
});

Deno.test("handlePacket() never acknowledges a step the store could not make durable", async () => {
  const memory = new MemoryStore();
  let full = false;
  const store = {
    state: (g: string) => memory.state(g),
    durableState: (g: string) => memory.state(g),
    snapshot: () => memory.snapshot(),
    records: () => memory.records(),
    health: memory.health,
    close: () => memory.close(),
    record: (g: string, e: Parameters<MemoryStore["record"]>[1]) =>
      full
        ? Promise.reject(new Error("No space left on device (os error 28)"))
        : memory.record(g, e),
  };
  const ctx = context({ store });
  const first = await request(rsa, 0);
  const firstReply = (await handlePacket(first, ctx)).reply;
  assert.equal((await answer(firstReply)).next_number, 1);
  full = true;
  const second = await request(rsa, 1);
  const refused = await handlePacket(second, ctx);
  assert.equal(refused.outcome, "dropped:not_durable");
  assert.equal(refused.reply, null, "no answer acknowledges the step");
  assert.match(refused.detail ?? "", /No space left/);
  assert.equal(memory.state("ALPHA"), 0);
  const again = await handlePacket(first, ctx);
  assert.equal(again.outcome, "replayed");
  assert.deepEqual(again.reply, firstReply, "an acknowledged step is resent");
  const repeat = await handlePacket(await request(rsa, 0), ctx);
  assert.equal(repeat.outcome, "ok", "a step that changes nothing is answered");
  assert.equal((await answer(repeat.reply)).next_number, 1);
  full = false;
  const retried = await handlePacket(second, ctx);
  assert.equal(retried.outcome, "ok", "the retransmission is tried afresh");
  assert.equal((await answer(retried.reply)).next_number, 2);
  assert.equal(memory.state("ALPHA"), 1);
});

Deno.test("handlePacket() survives a wall-clock step of an hour either way", async (t) => {
  let offsetMs = 0;
  const ctx = context({ now: () => new Date(NOW * 1000 + 123 + offsetMs) });
  const first = await request(rsa, 0);
  const reply = (await handlePacket(first, ctx)).reply;
  assert.equal((await answer(reply)).next_number, 1);
  await t.step("back: the cached answer is still resent", async () => {
    offsetMs = -3_600_000;
    const again = await handlePacket(first, ctx);
    assert.equal(again.outcome, "replayed");
    assert.deepEqual(again.reply, reply);
  });
  await t.step(
    "forward: the token has expired, and nothing changes",
    async () => {
      offsetMs = 3_600_000;
      const late = await handlePacket(first, ctx);
      assert.equal(late.outcome, "TOKEN_EXPIRED");
      assert.equal(ctx.store.state("ALPHA"), 0);
    },
  );
  await t.step("back again: the group goes on where it was", async () => {
    offsetMs = 0;
    const next = await handlePacket(await request(rsa, 1), ctx);
    assert.equal((await answer(next.reply)).next_number, 2);
  });
});

Deno.test("otpTimestamp() writes UTC with +00:00, never Z", () => {
  assert.equal(
    otpTimestamp(new Date(Date.UTC(2026, 10, 23, 13, 38, 21, 123))),
    "2026-11-23T13:38:21.123+00:00",
  );
});
