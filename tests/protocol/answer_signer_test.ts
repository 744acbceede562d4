import assert from "node:assert/strict";
import {
  CompactSign,
  compactVerify,
  createLocalJWKSet,
  decodeProtectedHeader,
  jwtVerify,
} from "jose";
import { type AnswerKey, parseAnswerKey } from "../../lib/keys/answer_key.ts";
import {
  fitResponse,
  largestAnswer,
} from "../../lib/protocol/answer_signer.ts";
import {
  handlePacket,
  type HandlerContext,
  type PacketResult,
} from "../../lib/protocol/handler.ts";
import { responseSize } from "../../lib/protocol/token.ts";
import { ReplayCache } from "../../lib/state/replay.ts";
import { MemoryStore } from "../../lib/state/store.ts";
import {
  AUDIENCE,
  makeGroup,
  payloadBytes,
  requestClaims,
  sha256Hex,
  signRequest,
  type TestGroup,
} from "../_helpers.ts";

const NOW = 1_800_000_000;
const secret = new TextEncoder().encode("test-secret\n");
const JTI = "0123456789abcdef0123456789abcdef";
const alpha = await makeGroup("ALPHA", "ES256");
const long = await makeGroup("L".repeat(64), "ES256");
const DIR = new URL("../testdata/answer_keys/", import.meta.url);
const KEYS: Record<string, AnswerKey> = {};
for (const name of ["ed25519", "p256", "rsa2048"]) {
  KEYS[name] = await parseAnswerKey(
    await Deno.readTextFile(new URL(`${name}.pem`, DIR)),
  );
}

function context(key?: AnswerKey): HandlerContext {
  const groups = [alpha, long];
  return {
    keys: new Map(groups.map((g) => [g.key.group, g.key])),
    secret,
    ...(key ? { answerSigner: key.signer } : {}),
    store: new MemoryStore(),
    replay: new ReplayCache(),
    now: () => new Date(NOW * 1000 + 123),
    randomId: () => JTI,
    leewaySec: 30,
    states: 7,
    lanes: new Map(),
  };
}

async function request(
  g: TestGroup,
  n: number,
  extra?: Record<string, unknown>,
): Promise<string> {
  return await signRequest(
    requestClaims(g.key.group, n, NOW, extra),
    g.priv,
    g.alg,
  );
}

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** Verifies an answer with the key's published JWK Set, as a client does. */
async function verifyWithJwks(
  reply: Uint8Array | null,
  key: AnswerKey,
): Promise<Record<string, unknown>> {
  assert.ok(reply, "an answer is sent");
  assert.ok(reply.length < 1000, `answer of ${reply.length} bytes`);
  const token = decode(reply);
  assert.deepEqual(decodeProtectedHeader(token), {
    alg: key.alg,
    typ: "JWT",
    kid: key.kid,
  });
  const jwks = createLocalJWKSet(JSON.parse(JSON.stringify(key.jwks)));
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: [key.alg],
    currentDate: new Date(NOW * 1000),
  });
  // The shared secret cannot make or check it.
  await assert.rejects(
    jwtVerify(token, secret, { currentDate: new Date(NOW * 1000) }),
  );
  return payload;
}

/** The HS256 answer as an independent implementation (jose) signs it. */
async function hs256(claims: Record<string, unknown>): Promise<string> {
  return await new CompactSign(encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(secret);
}

Deno.test("handlePacket() without an answer signer answers HS256 byte for byte as before", async () => {
  const ctx = context();
  const token = await request(alpha, 0);
  const ok = await handlePacket(encode(token), ctx);
  const base = {
    iss: AUDIENCE,
    sub: "ALPHA",
    jti: JTI,
    iat: NOW,
    exp: NOW + 30,
    "otp_timestamp": "2027-01-15T08:00:00.123+00:00",
  };
  const id = await sha256Hex(payloadBytes(token));
  assert.equal(
    decode(ok.reply!),
    await hs256({ ...base, "id_request": id, "next_number": 1 }),
  );
  const stranger = await request(alpha, 1, { sub: "NOBODY" });
  const error = await handlePacket(encode(stranger), ctx);
  assert.equal(
    decode(error.reply!),
    await hs256({
      ...base,
      sub: "NO_SUB_CLAIM",
      "id_request": await sha256Hex(payloadBytes(stranger)),
      response: 'ERROR: group "NOBODY" has no public key here',
      error: "UNKNOWN_GROUP",
    }),
  );
});

Deno.test("handlePacket() signs success and error answers with the answer key", async (t) => {
  for (const [name, key] of Object.entries(KEYS)) {
    await t.step(name, async () => {
      const ctx = context(key);
      for (let n = 0; n < 7; n++) {
        const token = await request(alpha, n);
        const r = await handlePacket(encode(token), ctx);
        assert.equal(r.outcome, "ok");
        const p = await verifyWithJwks(r.reply, key);
        assert.equal(p.next_number, (n + 1) % 7);
        assert.equal(p.id_request, await sha256Hex(payloadBytes(token)));
      }
      // A retransmission gets the cached answer byte for byte.
      const token = await request(alpha, 0);
      const first = await handlePacket(encode(token), ctx);
      const again = await handlePacket(encode(token), ctx);
      assert.deepEqual(again.reply, first.reply);
      const errors = [
        await request(alpha, 1, { sub: "NOBODY" }), // unverified
        await request(alpha, 1, { aud: "elsewhere" }), // verified
      ];
      for (const e of errors) {
        const p = await verifyWithJwks(
          (await handlePacket(encode(e), ctx)).reply,
          key,
        );
        assert.match(String(p.error), /^(UNKNOWN_GROUP|BAD_AUDIENCE)$/);
      }
    });
  }
});

Deno.test("handlePacket() keeps RSA-2048 answers under 1,000 bytes", async (t) => {
  const key = KEYS.rsa2048!;
  await t.step("a long error message is shortened to fit", async () => {
    const ctx = context(key);
    const jti = "J".repeat(64);
    await handlePacket(encode(await request(long, 0, { jti })), ctx);
    // The longest message: JTI_REUSED names a 64-character jti and group.
    const reused = await handlePacket(
      encode(await request(long, 1, { jti })),
      ctx,
    );
    const p = await verifyWithJwks(reused.reply, key);
    assert.equal(p.error, "JTI_REUSED");
    assert.equal(p.sub, "L".repeat(64));
    assert.match(String(p.response), /^ERROR: jti "J+\.\.\.$/);
    // With HS256 the same answer fits whole.
    const hs = context();
    await handlePacket(encode(await request(long, 0, { jti })), hs);
    const whole = await handlePacket(
      encode(await request(long, 1, { jti })),
      hs,
    );
    const full = await jwtVerify(decode(whole.reply!), secret, {
      currentDate: new Date(NOW * 1000),
    });
    assert.match(String(full.payload.response), /fresh jti/);
  });
  await t.step("error answers to junk, each verified", async () => {
    const ctx = context(key);
    const junk = [
      `${"e30".repeat(200)}.e30.`,
      `eyJhbGciOiJub25lIn0.${btoa(JSON.stringify({ sub: "x".repeat(400) }))}.`,
      await request(alpha, 1, { sub: "Z".repeat(64) }),
      await request(alpha, 1, { sub: "ü".repeat(40) }),
      (await request(alpha, 1)).replace(/\.[^.]*$/, ".AAAA"),
      await request(long, 1, { aud: "x".repeat(300), iat: NOW + 999 }),
    ];
    for (const j of junk) {
      const r = await handlePacket(encode(j), ctx) as PacketResult;
      if (r.reply) await verifyWithJwks(r.reply, key);
      else assert.match(r.outcome, /^dropped:/);
    }
  });
  await t.step("success answers to a 64-character group name", async () => {
    const ctx = context(key);
    for (let n = 0; n < 7; n++) {
      const ok = await handlePacket(encode(await request(long, n)), ctx);
      await verifyWithJwks(ok.reply, key);
    }
  });
});

Deno.test("handlePacket() drops by the answer signer's own size (anti-amplification)", async () => {
  // An unverified error to a datagram a third the size of the HS256 answer.
  const probe = "x.y.";
  const big = encode(probe.padEnd(400, " "));
  const hsAnswer = (await handlePacket(big, context())).reply;
  const hsLength = hsAnswer?.length ?? 0;
  // Pad with trailing spaces (trimmed before parsing) to a third of it.
  const padded = encode(probe.padEnd(Math.ceil(hsLength / 3), " "));
  const hs = await handlePacket(padded, context());
  assert.ok(hs.reply, "the HS256 answer fits 3x the datagram");
  const rsa = await handlePacket(padded, context(KEYS.rsa2048));
  assert.equal(rsa.reply, null);
  assert.equal(rsa.outcome, "dropped:amplification");
  const ed = await handlePacket(padded, context(KEYS.ed25519));
  assert.equal(ed.reply, null, "an Ed25519 answer is larger than HS256's too");
});

Deno.test("fitResponse() changes nothing that fits and shortens only `response`", () => {
  const claims = { sub: "A", response: "ERROR: too long", error: "BAD_CLAIM" };
  assert.equal(
    fitResponse({ ...claims }, responseSize),
    JSON.stringify(claims),
  );
  const tight = (json: string) => json.length + 950;
  const cut = { ...claims };
  const json = fitResponse(cut, tight);
  assert.ok(tight(json) < 1000);
  assert.deepEqual(Object.keys(JSON.parse(json)), ["sub", "response", "error"]);
  assert.equal(JSON.parse(json).error, "BAD_CLAIM");
  assert.ok(largestAnswer({ size: responseSize }) < 1000, "HS256 fits");
});

Deno.test("compactVerify() of an answer with a JWK Set picks the key by kid", async () => {
  const key = KEYS.p256!;
  const other = KEYS.ed25519!;
  const token = decode(key.signer.sign({ a: 1 }));
  const both = createLocalJWKSet({ keys: [other.jwk, key.jwk] });
  await compactVerify(token, both, { algorithms: ["ES256", "EdDSA"] });
  await assert.rejects(
    compactVerify(token, createLocalJWKSet(other.jwks)),
    { code: "ERR_JWKS_NO_MATCHING_KEY" },
  );
});
