import assert from "node:assert/strict";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { ProtocolError } from "../../lib/protocol/errors.ts";
import {
  AUDIENCE as SERVER_AUDIENCE,
  checkAlg,
  checkClaims,
  parseToken,
  readGroup,
  signResponse,
} from "../../lib/protocol/token.ts";
import { AUDIENCE } from "../_helpers.ts";

Deno.test("AUDIENCE is the protocol's audience string", () => {
  assert.equal(SERVER_AUDIENCE, AUDIENCE);
});

const NOW = 1_700_000_100;
const now = new Date(NOW * 1000);

function b64(text: string): string {
  return new TextEncoder().encode(text).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

function claims(extra?: Record<string, unknown>): Record<string, unknown> {
  return {
    sub: "HEARTBEAT",
    aud: AUDIENCE,
    iat: NOW,
    exp: NOW + 60,
    jti: "0123456789abcdef0123456789abcdef",
    seq_state_number: 1,
    seq_state: "ORANGE",
    seq_max: 2,
    registration: 20230001,
    ...extra,
  };
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return "ok";
}

Deno.test("parseToken() rejects what is not a compact JWS of JSON objects", async (t) => {
  const h = b64('{"alg":"RS256"}');
  const p = b64('{"sub":"A"}');
  const cases: [string, string][] = [
    ["two segments", `${h}.${p}`],
    ["four segments", `${h}.${p}.c2ln.c2ln`],
    ["empty", ""],
    ["standard base64 characters", `${h}.${p}+/.c2ln`],
    ["padding", `${h}.${p}=.c2ln`],
    ["header not JSON", `${b64("nope")}.${p}.c2ln`],
    ["header is an array", `${b64("[1]")}.${p}.c2ln`],
    ["payload is a string", `${h}.${b64('"x"')}.c2ln`],
    ["payload is null", `${h}.${b64("null")}.c2ln`],
    [
      "payload not UTF-8",
      `${h}.${
        new Uint8Array([0x7b, 0xff, 0x7d]).toBase64({
          alphabet: "base64url",
          omitPadding: true,
        })
      }.c2ln`,
    ],
    ["signature with bad characters", `${h}.${p}.c2ln!`],
    ["a single base64 character", `${h}.${p}.A`],
  ];
  for (const [name, token] of cases) {
    await t.step(name, () => {
      assert.equal(codeOf(() => parseToken(token)), "MALFORMED_TOKEN");
    });
  }
  await t.step("surrounding whitespace is ignored", () => {
    const parsed = parseToken(`\n ${h}.${p}.c2ln\r\n`);
    assert.equal(parsed.text, `${h}.${p}.c2ln`);
    assert.deepEqual(parsed.payload, { sub: "A" });
    assert.equal(new TextDecoder().decode(parsed.payloadBytes), '{"sub":"A"}');
  });
});

Deno.test("checkAlg() allows the protocol's table, reads Ed25519 as EdDSA and never none or HS*", () => {
  for (
    const alg of [
      "RS256",
      "RS384",
      "RS512",
      "PS256",
      "PS384",
      "PS512",
      "ES256",
      "ES384",
      "ES512",
      "EdDSA",
    ]
  ) {
    assert.equal(checkAlg({ alg }), alg);
  }
  assert.equal(checkAlg({ alg: "Ed25519" }), "EdDSA");
  for (
    const alg of [
      "none",
      "HS256",
      "HS384",
      "HS512",
      "rs256",
      "Ed448",
      "ES256K",
      1,
    ]
  ) {
    assert.equal(codeOf(() => checkAlg({ alg })), "ALG_NOT_ALLOWED", `${alg}`);
  }
  assert.equal(codeOf(() => checkAlg({})), "ALG_NOT_ALLOWED");
});

Deno.test("checkAlg() follows a narrowed allow-list (--algs)", () => {
  const allowed = new Set(["EdDSA", "ES384"]);
  assert.equal(checkAlg({ alg: "Ed25519" }, allowed), "EdDSA");
  assert.equal(checkAlg({ alg: "ES384" }, allowed), "ES384");
  for (const alg of ["RS256", "ES256", "PS256", "none", "HS256"]) {
    assert.equal(
      codeOf(() => checkAlg({ alg }, allowed)),
      "ALG_NOT_ALLOWED",
      alg,
    );
  }
});

Deno.test("readGroup() matches sub case-insensitively and rejects non-names", () => {
  assert.equal(readGroup({ sub: "heartbeat" }), "HEARTBEAT");
  assert.equal(readGroup({ sub: "Team_7-b" }), "TEAM_7-B");
  assert.equal(codeOf(() => readGroup({})), "MISSING_CLAIM");
  const unicode = ["chedımon", "ſegsanh", "ﬅ", "grüppe"];
  for (const sub of [1, "", "a b", "x".repeat(65), ...unicode, null, ["A"]]) {
    assert.equal(codeOf(() => readGroup({ sub })), "BAD_CLAIM", `${sub}`);
  }
});

Deno.test("checkClaims() accepts a well-formed request and types its claims", () => {
  const c = checkClaims(claims(), { now });
  assert.equal(c.seqStateNumber, 1);
  assert.equal(c.registration, 20230001);
  assert.equal(c.colourMismatch, false);
  assert.equal(
    checkClaims(claims({ seq_state: "RED" }), { now }).colourMismatch,
    true,
  );
});

Deno.test("checkClaims() applies each claim rule", async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["integer written 1.0 counts", { seq_state_number: 1.0 }, "ok"],
    ["fractional event", { seq_state_number: 1.5 }, "BAD_CLAIM"],
    ["event as a string", { seq_state_number: "1" }, "BAD_CLAIM"],
    ["event as a boolean", { seq_state_number: true }, "BAD_CLAIM"],
    ["negative event is an integer", { seq_state_number: -3 }, "ok"],
    ["unknown colour", { seq_state: "PINK" }, "BAD_CLAIM"],
    ["lower-case colour", { seq_state: "orange" }, "BAD_CLAIM"],
    ["seq_max 0", { seq_max: 0 }, "BAD_CLAIM"],
    ["seq_max fractional", { seq_max: 2.5 }, "BAD_CLAIM"],
    ["registration string", { registration: "20230001" }, "BAD_CLAIM"],
    ["empty jti", { jti: "" }, "BAD_CLAIM"],
    ["jti of 64 characters", { jti: "a".repeat(64) }, "ok"],
    ["jti of 65 characters", { jti: "a".repeat(65) }, "BAD_CLAIM"],
    ["jti with a space", { jti: "ab cd" }, "BAD_CLAIM"],
    ["jti not ASCII", { jti: "abcé" }, "BAD_CLAIM"],
    ["jti a number", { jti: 12 }, "BAD_CLAIM"],
    ["iat a string", { iat: "now" }, "BAD_CLAIM"],
    ["exp null", { exp: null }, "BAD_CLAIM"],
    ["aud a number", { aud: 5 }, "BAD_CLAIM"],
    ["aud an empty array", { aud: [] }, "BAD_CLAIM"],
    [
      "aud array containing it",
      { aud: ["x", AUDIENCE] },
      "ok",
    ],
    ["aud array without it", { aud: ["x"] }, "BAD_AUDIENCE"],
    ["wrong aud", { aud: "udp.socket.server" }, "BAD_AUDIENCE"],
    ["exp 30 s ago (leeway)", { exp: NOW - 30 }, "ok"],
    ["exp 31 s ago", { exp: NOW - 31 }, "TOKEN_EXPIRED"],
    ["iat 30 s ahead (leeway)", { iat: NOW + 30 }, "ok"],
    ["iat 31 s ahead", { iat: NOW + 31 }, "TOKEN_NOT_YET_VALID"],
    ["fractional times", { iat: NOW + 0.5, exp: NOW + 0.25 }, "ok"],
  ];
  for (const [name, extra, code] of cases) {
    await t.step(name, () => {
      assert.equal(codeOf(() => checkClaims(claims(extra), { now })), code);
    });
  }
  for (const name of Object.keys(claims())) {
    await t.step(`missing ${name}`, () => {
      const c = claims();
      delete c[name];
      assert.equal(codeOf(() => checkClaims(c, { now })), "MISSING_CLAIM");
    });
  }
});

Deno.test("checkClaims() reports the first failing check in the protocol's order", () => {
  const check = (extra: Record<string, unknown>, drop?: string) => {
    const c = claims(extra);
    if (drop) delete c[drop];
    return codeOf(() => checkClaims(c, { now, members: 3 }));
  };
  const all = { "seq_max": 2, exp: NOW - 100, aud: "x", "seq_state": "PINK" };
  assert.equal(check({ ...all, iat: NOW + 100 }, "jti"), "MISSING_CLAIM");
  assert.equal(check({ ...all, iat: NOW + 100 }), "BAD_CLAIM");
  assert.equal(
    check({ seq_max: 2, exp: NOW - 100, aud: "x", iat: NOW + 100 }),
    "BAD_AUDIENCE",
  );
  assert.equal(
    check({ seq_max: 2, exp: NOW - 100, iat: NOW + 100 }),
    "TOKEN_EXPIRED",
  );
  assert.equal(check({ seq_max: 2, iat: NOW + 100 }), "TOKEN_NOT_YET_VALID");
  assert.equal(check({ seq_max: 2 }), "SEQ_MAX_MISMATCH");
  assert.equal(check({ seq_max: 3 }), "ok");
});

Deno.test("checkClaims() uses the configured leeway", () => {
  const c = claims({ exp: NOW - 50 });
  assert.equal(codeOf(() => checkClaims(c, { now })), "TOKEN_EXPIRED");
  assert.equal(codeOf(() => checkClaims(c, { now, leewaySec: 60 })), "ok");
  assert.equal(
    codeOf(() => checkClaims(claims({ exp: NOW - 1 }), { now, leewaySec: 0 })),
    "TOKEN_EXPIRED",
  );
});

Deno.test("signResponse() signs HS256 with the raw secret, trailing newline included", async () => {
  const secret = new TextEncoder().encode("secret-key-for-dec7557\n");
  const token = new TextDecoder().decode(
    signResponse({ iss: "x", next_number: 3 }, secret),
  );
  assert.equal(token.split(".")[0], b64('{"alg":"HS256","typ":"JWT"}'));
  assert.deepEqual(decodeProtectedHeader(token), { alg: "HS256", typ: "JWT" });
  const { payload } = await jwtVerify(token, secret, { algorithms: ["HS256"] });
  assert.equal(payload.next_number, 3);
  const withoutNewline = new TextEncoder().encode("secret-key-for-dec7557");
  await assert.rejects(
    jwtVerify(token, withoutNewline, { algorithms: ["HS256"] }),
    { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" },
  );
});
