import assert from "node:assert/strict";
import { compactVerify, SignJWT } from "jose";
import {
  handlePacket,
  type HandlerContext,
  type PacketResult,
} from "../../lib/protocol/handler.ts";
import { JournalStore } from "../../lib/state/journal.ts";
import { ReplayCache } from "../../lib/state/replay.ts";
import { MemoryStore } from "../../lib/state/store.ts";
import { AUDIENCE, makeGroup, sha256Hex, type TestGroup } from "../_helpers.ts";

const NOW = 1_800_000_000;
const secret = new TextEncoder().encode("v1-secret"); // no trailing newline
const rsa = await makeGroup("ALPHA", "RS256");
const ec = await makeGroup("BRAVO", "ES256");
const encoder = new TextEncoder();

function context(overrides?: Partial<HandlerContext>): HandlerContext {
  let counter = 0;
  return {
    keys: new Map([[rsa.key.group, rsa.key], [ec.key.group, ec.key]]),
    secret,
    store: new MemoryStore(),
    replay: new ReplayCache(),
    now: () => new Date(NOW * 1000 + 456),
    randomId: () => (++counter).toString(16).padStart(32, "0"),
    leewaySec: 30,
    states: 7,
    lanes: new Map(),
    profile: "v1",
    ...overrides,
  };
}

/** v1 claims as a 2023 client sends them: the four claims, nothing else. */
function v1Claims(
  sn: number,
  extra?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    group: "alpha",
    seq_number: sn,
    seq_max: 3,
    matricula: 20230000 + sn,
    ...extra,
  };
}

async function token(
  claims: Record<string, unknown>,
  g: TestGroup = rsa,
): Promise<Uint8Array> {
  const jws = await new SignJWT(claims)
    .setProtectedHeader({ alg: g.alg, typ: "JWT" })
    .sign(g.priv);
  return encoder.encode(jws);
}

async function run(bytes: Uint8Array, ctx: HandlerContext) {
  return await handlePacket(bytes.slice(), ctx);
}

async function answer(r: PacketResult): Promise<Record<string, unknown>> {
  assert.ok(r.reply, `an answer is sent (${r.outcome}: ${r.detail})`);
  assert.ok(r.reply.length < 1000);
  const { payload, protectedHeader } = await compactVerify(
    new TextDecoder().decode(r.reply),
    secret,
    { algorithms: ["HS256"] },
  );
  assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
  return JSON.parse(new TextDecoder().decode(payload));
}

function payloadOf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(new TextDecoder().decode(bytes).split(".")[1]!, {
    alphabet: "base64url",
  });
}

Deno.test("handlePacket() with profile v1 walks 0..M and answers exactly four claims", async () => {
  const ctx = context();
  for (const [sn, next] of [[0, 1], [1, 2], [2, 3], [3, 0]] as const) {
    const bytes = await token(v1Claims(sn));
    const r = await run(bytes, ctx);
    assert.equal(r.outcome, "ok");
    assert.equal(r.state, sn);
    assert.equal(r.group, "ALPHA");
    const p = await answer(r);
    assert.deepEqual(Object.keys(p), [
      "id_request",
      "next_number",
      "otp_number",
      "otp_timestamp",
    ]);
    assert.equal(p.id_request, await sha256Hex(payloadOf(bytes)));
    assert.equal(p.next_number, next);
    assert.equal(typeof p.otp_number, "string");
    assert.match(p.otp_number as string, /^\d{1,5}$/);
    assert.ok(Number(p.otp_number) <= 20000);
    assert.equal(p.otp_timestamp, NOW);
    assert.equal(r.completedWalk, sn === 3);
  }
  const rec = ctx.store.snapshot().ALPHA!;
  assert.equal(rec.state, 3);
  assert.equal(rec.seqMax, 3);
  assert.equal(rec.walkCount, 1);
  assert.deepEqual(Object.keys(rec.registrations).sort(), [
    "20230000",
    "20230001",
    "20230002",
    "20230003",
  ]);
});

Deno.test("handlePacket() with profile v1 sends nothing for out-of-order events (NO ACTION)", async (t) => {
  const ctx = context();
  await run(await token(v1Claims(0)), ctx);
  await run(await token(v1Claims(1)), ctx);
  for (const sn of [-1, 3, 4, 1000]) {
    await t.step(`event ${sn} in state 1 of 0..3`, async () => {
      const r = await run(await token(v1Claims(sn)), ctx);
      assert.equal(r.outcome, "no_action");
      assert.equal(r.reply, null);
      assert.equal(r.previousState, 1);
      assert.match(r.detail ?? "", /seq_number/);
      assert.equal(ctx.store.state("ALPHA"), 1);
    });
  }
  await t.step("a repeat of 1 still answers 2", async () => {
    const p = await answer(await run(await token(v1Claims(1)), ctx));
    assert.equal(p.next_number, 2);
  });
  await t.step(
    "state 0 does not repeat: event 0 restarts, answers 1",
    async () => {
      const p = await answer(await run(await token(v1Claims(0)), ctx));
      assert.equal(p.next_number, 1);
      assert.equal(ctx.store.state("ALPHA"), 0);
    },
  );
});

Deno.test("handlePacket() with profile v1 takes M from each request's seq_max", async () => {
  const ctx = context();
  const step = async (sn: number, seqMax: number) =>
    await run(await token(v1Claims(sn, { seq_max: seqMax })), ctx);
  await step(0, 5);
  await step(1, 5);
  await step(2, 5);
  // M falls to 2: state 2 is now final, so its repeat answers 0.
  assert.equal((await answer(await step(2, 2))).next_number, 0);
  assert.equal(ctx.store.snapshot().ALPHA!.seqMax, 2);
  // M falls to 1: state 2 is above it, only event 0 leaves.
  assert.equal((await step(2, 1)).outcome, "no_action");
  assert.equal((await step(3, 1)).outcome, "no_action");
  assert.equal((await answer(await step(0, 1))).next_number, 1);
  assert.equal((await answer(await step(1, 1))).next_number, 0);
  // M grows: the finished walk can go on.
  assert.equal((await answer(await step(2, 4))).next_number, 3);
  assert.equal(ctx.store.snapshot().ALPHA!.seqMax, 4);
});

Deno.test("handlePacket() with profile v1 takes M from the roster when it lists the group", async () => {
  const roster = new Map([["ALPHA", new Set([1, 2])]]);
  const ctx = context({ roster });
  const r = await run(await token(v1Claims(0, { seq_max: 3 })), ctx);
  assert.equal(r.outcome, "SEQ_MAX_MISMATCH");
  assert.match((await answer(r)).response as string, /must be 2/);
  const two = (sn: number, extra?: Record<string, unknown>) =>
    token(v1Claims(sn, { seq_max: 2, ...extra }));
  assert.equal((await answer(await run(await two(0), ctx))).next_number, 1);
  const first = await run(await two(1, { matricula: 1 }), ctx);
  assert.equal((await answer(first)).next_number, 2);
  assert.equal(first.unlisted, false);
  const second = await run(await two(2, { matricula: "777" }), ctx);
  assert.equal((await answer(second)).next_number, 0);
  assert.equal(second.unlisted, true);
  assert.equal(ctx.store.snapshot().ALPHA!.seqMax, 2);
  // BRAVO is not on the roster: its own seq_max decides.
  const bravo = await token(
    { group: "bravo", seq_number: 1, seq_max: 1, matricula: 9 },
    ec,
  );
  const b = await run(bravo, ctx);
  assert.equal((await answer(b)).next_number, 0);
});

Deno.test("handlePacket() with profile v1 records a matricula sent as a number or a digit string", async () => {
  const ctx = context();
  await run(await token(v1Claims(0, { matricula: "20230001" })), ctx);
  await run(await token(v1Claims(1, { matricula: 20230001 })), ctx);
  await run(await token(v1Claims(2, { matricula: "0042" })), ctx);
  const r = await run(
    await token(v1Claims(3, { matricula: "12345678901234567890" })),
    ctx,
  );
  assert.equal(r.outcome, "ok");
  assert.deepEqual(
    Object.keys(ctx.store.snapshot().ALPHA!.registrations).sort(),
    ["0042", "12345678901234567890", "20230001"],
  );
  const bad = await run(await token(v1Claims(0, { matricula: "12-3" })), ctx);
  assert.equal(bad.outcome, "BAD_CLAIM");
});

Deno.test("handlePacket() with profile v1 runs the machine again for a repeated token without exp", async () => {
  const ctx = context();
  // A 2023 client: deterministic RS256 signatures over the same claims, so
  // its second walk sends the very same bytes.
  const tokens = await Promise.all(
    [0, 1, 2, 3].map((sn) => token(v1Claims(sn))),
  );
  for (const walk of [1, 2]) {
    for (const [i, bytes] of tokens.entries()) {
      const r = await run(bytes, ctx);
      assert.equal(r.outcome, "ok", `walk ${walk}, event ${i}`);
      assert.equal(r.previousState, i === 0 ? (walk === 1 ? 0 : 3) : i - 1);
      assert.equal((await answer(r)).next_number, [1, 2, 3, 0][i]);
    }
  }
  assert.equal(ctx.store.snapshot().ALPHA!.walkCount, 2);
  assert.equal(ctx.replay.size, 0, "nothing cached without exp");
  // A resend of event 3 in state 3 is a repeat: the same next_number.
  const again = await run(tokens[3]!, ctx);
  assert.equal(again.outcome, "ok");
  assert.equal((await answer(again)).next_number, 0);
});

Deno.test("handlePacket() with profile v1 answers a retransmitted token with exp byte for byte", async () => {
  const ctx = context();
  const jti = "0123456789abcdef0123456789abcdef";
  const bytes = await token(
    v1Claims(0, { aud: AUDIENCE, iat: NOW, exp: NOW + 60, jti }),
  );
  const first = await run(bytes, ctx);
  assert.equal(first.outcome, "ok");
  const copy = await run(bytes, ctx);
  assert.equal(copy.outcome, "replayed");
  assert.deepEqual(copy.reply, first.reply);
  assert.equal(ctx.store.snapshot().ALPHA!.lastActivity !== null, true);
  // A different token with the same jti is refused while it is remembered.
  const reuse = await run(
    await token(v1Claims(1, { exp: NOW + 60, jti })),
    ctx,
  );
  assert.equal(reuse.outcome, "JTI_REUSED");
  assert.equal((await answer(reuse)).sub, "alpha");
  // A NO ACTION token with exp is cached too: its copy gets nothing again.
  const skip = await token(v1Claims(3, { exp: NOW + 60 }));
  assert.equal((await run(skip, ctx)).outcome, "no_action");
  const skipCopy = await run(skip, ctx);
  assert.equal(skipCopy.outcome, "replayed");
  assert.equal(skipCopy.reply, null);
});

Deno.test("handlePacket() with profile v1 answers errors as protocol 2 does, group as sub", async (t) => {
  const ctx = context();
  await t.step(
    "a verified request with a bad claim: sub is the group as sent",
    async () => {
      const r = await run(
        await token(v1Claims(1, { group: "AlPhA", seq_max: 0 })),
        ctx,
      );
      assert.equal(r.outcome, "BAD_CLAIM");
      const p = await answer(r);
      assert.equal(p.sub, "AlPhA");
      assert.equal(p.iss, AUDIENCE);
      assert.equal(p.error, "BAD_CLAIM");
      assert.match(p.response as string, /^ERROR: claim "seq_max"/);
      assert.equal(typeof p.otp_timestamp, "string");
    },
  );
  await t.step("a bad signature: NO_SUB_CLAIM", async () => {
    const bytes = await token(v1Claims(1));
    const text = new TextDecoder().decode(bytes);
    const forged = text.slice(0, -6) +
      (text.endsWith("AAAAAA") ? "BBBBBB" : "AAAAAA");
    const r = await run(encoder.encode(forged), ctx);
    assert.equal(r.outcome, "BAD_SIGNATURE");
    assert.equal((await answer(r)).sub, "NO_SUB_CLAIM");
  });
  await t.step("a protocol 2 token: the group claim is missing", async () => {
    const r = await run(
      await token({ sub: "alpha", seq_state_number: 0, registration: 1 }),
      ctx,
    );
    assert.equal(r.outcome, "MISSING_CLAIM");
    const p = await answer(r);
    assert.equal(p.sub, "NO_SUB_CLAIM");
    assert.match(p.response as string, /"group"/);
  });
  await t.step("an unknown group", async () => {
    const r = await run(await token(v1Claims(0, { group: "zulu" })), ctx);
    assert.equal(r.outcome, "UNKNOWN_GROUP");
  });
  await t.step("an expired exp", async () => {
    const r = await run(await token(v1Claims(0, { exp: NOW - 100 })), ctx);
    assert.equal(r.outcome, "TOKEN_EXPIRED");
    assert.equal((await answer(r)).sub, "alpha");
  });
  await t.step("a wrong aud", async () => {
    const r = await run(await token(v1Claims(0, { aud: "x" })), ctx);
    assert.equal(r.outcome, "BAD_AUDIENCE");
  });
});

Deno.test("handlePacket() with profile v1 sheds over-budget requests that would fail their claims", async () => {
  const ctx = context();
  const r = await handlePacket(await token(v1Claims(0, { seq_max: 0 })), ctx, {
    answerErrors: false,
  });
  assert.equal(r.outcome, "dropped:rate_limit");
  assert.equal(r.error, "BAD_CLAIM");
  // A valid request from the same source is still served.
  const ok = await handlePacket(await token(v1Claims(0)), ctx, {
    answerErrors: false,
  });
  assert.equal(ok.outcome, "ok");
});

Deno.test("handlePacket() without a profile still serves protocol 2 only", async () => {
  const ctx = context({ profile: "2" });
  const r = await run(await token(v1Claims(0)), ctx);
  assert.equal(r.outcome, "MISSING_CLAIM");
  assert.match(r.detail ?? "", /"sub"/);
});

Deno.test("handlePacket() with profile v1 keeps state, M and cached answers across a restart of the journal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt-v1-journal-" });
  try {
    const cache = new ReplayCache();
    const opened = await JournalStore.open(dir, {
      nowSec: () => NOW,
      replayEntries: () => cache.entries(NOW),
    });
    const ctx = context({ store: opened.store, replay: cache });
    await run(await token(v1Claims(0, { seq_max: 4 })), ctx);
    const withExp = await token(
      v1Claims(1, { seq_max: 4, matricula: "007", exp: NOW + 60 }),
    );
    const first = await run(withExp, ctx);
    assert.equal(first.outcome, "ok");
    await opened.store.close();

    const again = await JournalStore.open(dir, { nowSec: () => NOW });
    try {
      const replay = new ReplayCache();
      for (const e of again.replay) replay.add(e);
      assert.equal(replay.size, 1, "only the token with exp is cached");
      const rec = again.store.snapshot().ALPHA!;
      assert.equal(rec.state, 1);
      assert.equal(rec.seqMax, 4);
      assert.ok("007" in rec.registrations);
      const ctx2 = context({ store: again.store, replay });
      const copy = await run(withExp, ctx2);
      assert.equal(copy.outcome, "replayed");
      assert.deepEqual(
        new Uint8Array(copy.reply ?? []),
        new Uint8Array(first.reply ?? []),
      );
      const next = await run(await token(v1Claims(2, { seq_max: 4 })), ctx2);
      assert.equal((await answer(next)).next_number, 3);
    } finally {
      await again.store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
