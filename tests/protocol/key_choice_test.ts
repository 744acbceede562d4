/**
 * Protocol 2.1 through handlePacket: a request verified by Ed25519, P-384,
 * P-521 and RSA-PSS keys; key rotation with a JWK Set (old and new kid both
 * verify, an unknown kid is UNKNOWN_KEY); keys tried in file order without a
 * kid; header keys ignored; `--algs`; and the error precedence of
 * docs/protocol.md.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeJwt, exportJWK, generateKeyPair, importPKCS8 } from "jose";
import { SignJWT } from "jose";
import { type GroupKey, keyFromText } from "../../lib/keys/key_ring.ts";
import {
  handlePacket,
  type HandlerContext,
  randomHex32,
} from "../../lib/protocol/handler.ts";
import { chooseKey } from "../../lib/protocol/token.ts";
import { ReplayCache } from "../../lib/state/replay.ts";
import { MemoryStore } from "../../lib/state/store.ts";
import { requestClaims } from "../_helpers.ts";

const NOW = 1_800_000_000;
const DIR = new URL("../testdata/more_keys/", import.meta.url);
const text = (name: string) => Deno.readTextFileSync(new URL(name, DIR));
const priv = (name: string, alg: string) =>
  importPKCS8(text(`${name}.key.pem`), alg);

const ED = await priv("ed25519", "EdDSA");
const P384 = await priv("p384", "ES384");
const P521 = await priv("p521", "ES512");
const RSA = await priv("rsa", "PS256");
const RSA_PKCS1 = await priv("rsa", "RS256");
const OLD = await priv("rotation-old", "ES256");
const NEW = await priv("rotation-new", "EdDSA");

const edJwk = JSON.parse(text("ed25519.jwk"));
const rotation = JSON.parse(text("rotation.jwks"));
/** Two EdDSA keys: the ssh-keygen one (kid a), then the rotation's new one. */
const twoEd = JSON.stringify({
  keys: [{ ...edJwk, kid: "a" }, { ...rotation.keys[1], kid: "b" }],
});

const FILES: [string, string][] = [
  ["ed.ssh", text("ed25519.ssh")],
  ["p384.pem", text("p384.spki.pem")],
  ["p521.jwk", text("p521.jwk")],
  ["pss.jwk", text("rsa-ps256.jwk")],
  ["team.jwks", text("rotation.jwks")],
  ["multi.jwks", twoEd],
];
const KEYS = new Map<string, GroupKey>();
for (const [file, body] of FILES) {
  const key = await keyFromText(`keys_pub/${file}`, body);
  KEYS.set(key.group, key);
}

function context(overrides?: Partial<HandlerContext>): HandlerContext {
  return {
    keys: KEYS,
    secret: new TextEncoder().encode("test-secret\n"),
    store: new MemoryStore(),
    replay: new ReplayCache(),
    now: () => new Date(NOW * 1000),
    randomId: randomHex32,
    leewaySec: 30,
    states: 7,
    lanes: new Map(),
    ...overrides,
  };
}

async function token(
  key: CryptoKey,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): Promise<Uint8Array> {
  const jws = await new SignJWT(claims)
    .setProtectedHeader({ typ: "JWT", ...header } as unknown as { alg: string })
    .sign(key);
  return new TextEncoder().encode(jws);
}

/** Handles one datagram and returns its outcome and the answer's claims. */
async function send(
  bytes: Uint8Array,
  ctx = context(),
): Promise<{ outcome: string; claims: Record<string, unknown> }> {
  const r = await handlePacket(bytes, ctx);
  assert.ok(r.reply, `an answer (${r.outcome}: ${r.detail})`);
  return {
    outcome: r.outcome,
    claims: decodeJwt(new TextDecoder().decode(r.reply)),
  };
}

const claims = (group: string, extra?: Record<string, unknown>) =>
  requestClaims(group, 0, NOW, extra);

Deno.test("handlePacket() verifies requests signed with Ed25519, ES384, ES512 and PS256 keys", async (t) => {
  const cases: [string, CryptoKey, string][] = [
    ["ED", ED, "EdDSA"],
    ["ED", ED, "Ed25519"],
    ["P384", P384, "ES384"],
    ["P521", P521, "ES512"],
    ["PSS", RSA, "PS256"],
  ];
  for (const [group, key, alg] of cases) {
    await t.step(`${group} ${alg}`, async () => {
      const r = await send(await token(key, { alg }, claims(group)));
      assert.equal(r.outcome, "ok");
      assert.equal(r.claims.next_number, 1);
    });
  }
  await t.step(
    "PS256 with the RS256 header is refused by the key",
    async () => {
      const r = await send(
        await token(RSA_PKCS1, { alg: "RS256" }, claims("PSS")),
      );
      assert.equal(r.outcome, "ALG_NOT_ALLOWED");
    },
  );
});

Deno.test("handlePacket() rotates keys with a JWK Set: old and new kid verify, an unknown kid is UNKNOWN_KEY", async (t) => {
  const ctx = context();
  await t.step("old kid, old key", async () => {
    const r = await send(
      await token(OLD, { alg: "ES256", kid: "2026-old" }, claims("team")),
      ctx,
    );
    assert.equal(r.outcome, "ok");
  });
  await t.step("new kid, new key", async () => {
    const r = await send(
      await token(
        NEW,
        { alg: "EdDSA", kid: "2026-new" },
        requestClaims("team", 1, NOW),
      ),
      ctx,
    );
    assert.equal(r.outcome, "ok");
    assert.equal(r.claims.next_number, 2);
  });
  await t.step("no kid: the key whose algorithm is the header's", async () => {
    for (const [key, alg] of [[OLD, "ES256"], [NEW, "EdDSA"]] as const) {
      const r = await send(await token(key, { alg }, claims("team")));
      assert.equal(r.outcome, "ok", alg);
    }
  });
  await t.step("an unknown kid", async () => {
    const r = await send(
      await token(NEW, { alg: "EdDSA", kid: "2025" }, claims("team")),
    );
    assert.equal(r.outcome, "UNKNOWN_KEY");
    assert.equal(r.claims.error, "UNKNOWN_KEY");
    assert.equal(r.claims.sub, "NO_SUB_CLAIM");
    assert.match(
      String(r.claims.response),
      /^ERROR: group TEAM has no key with kid "2025"/,
    );
  });
  await t.step("a kid that is not a string", async () => {
    const r = await send(
      await token(NEW, { alg: "EdDSA", kid: 2026 }, claims("team")),
    );
    assert.equal(r.outcome, "UNKNOWN_KEY");
  });
  await t.step("the old kid with the new key's algorithm", async () => {
    const r = await send(
      await token(NEW, { alg: "EdDSA", kid: "2026-old" }, claims("team")),
    );
    assert.equal(r.outcome, "ALG_NOT_ALLOWED");
    assert.match(
      String(r.claims.response),
      /key "2026-old" of group TEAM verifies ES256, not EdDSA/,
    );
  });
  await t.step("the new kid, signed by another Ed25519 key", async () => {
    const r = await send(
      await token(ED, { alg: "EdDSA", kid: "2026-new" }, claims("team")),
    );
    assert.equal(r.outcome, "BAD_SIGNATURE");
  });
  await t.step(
    "a single-key group knows its key by its thumbprint",
    async () => {
      const kid = KEYS.get("ED")!.kid;
      const ok = await send(
        await token(ED, { alg: "EdDSA", kid }, claims("ed")),
      );
      assert.equal(ok.outcome, "ok");
      const r = await send(
        await token(ED, { alg: "EdDSA", kid: "other" }, claims("ed")),
      );
      assert.equal(r.outcome, "UNKNOWN_KEY");
      assert.match(
        String(r.claims.response),
        new RegExp(`its key is "${kid}"`),
      );
    },
  );
});

Deno.test("handlePacket() tries every key of the header's algorithm in file order when there is no kid", async () => {
  for (const key of [ED, NEW]) {
    const r = await send(await token(key, { alg: "EdDSA" }, claims("multi")));
    assert.equal(r.outcome, "ok");
  }
  const stranger = await generateKeyPair("EdDSA", { extractable: true });
  const bad = await send(
    await token(stranger.privateKey, { alg: "EdDSA" }, claims("multi")),
  );
  assert.equal(bad.outcome, "BAD_SIGNATURE");
  const wrongAlg = await send(
    await token(P384, { alg: "ES384" }, claims("multi")),
  );
  assert.equal(wrongAlg.outcome, "ALG_NOT_ALLOWED");
  assert.match(
    String(wrongAlg.claims.response),
    /no key of group MULTI verifies ES384: sign with EdDSA/,
  );
});

Deno.test("handlePacket() never takes a key from the token's header (jwk, jku, x5u, x5c)", async () => {
  const attacker = await generateKeyPair("EdDSA", { extractable: true });
  const jwk = await exportJWK(attacker.publicKey);
  const r = await send(
    await token(attacker.privateKey, {
      alg: "EdDSA",
      jwk,
      jku: "http://127.0.0.1:1/keys.json",
      x5u: "http://127.0.0.1:1/cert.pem",
      x5c: ["MIIB"],
    }, claims("ed")),
  );
  assert.equal(r.outcome, "BAD_SIGNATURE");
  const own = await send(
    await token(ED, { alg: "EdDSA", jwk }, claims("ed")),
  );
  assert.equal(own.outcome, "ok", "the group's own key still decides");
});

Deno.test("handlePacket() follows the server's allow-list (--algs)", async () => {
  const ctx = context({ algs: new Set(["ES256", "ES384"]) });
  const ed = await send(await token(ED, { alg: "EdDSA" }, claims("ed")), ctx);
  assert.equal(ed.outcome, "ALG_NOT_ALLOWED");
  assert.match(String(ed.claims.response), /sign with ES256, ES384/);
  const p384 = await send(
    await token(P384, { alg: "ES384" }, claims("p384")),
    ctx,
  );
  assert.equal(p384.outcome, "ok");
  const old = await send(
    await token(OLD, { alg: "ES256", kid: "2026-old" }, claims("team")),
    ctx,
  );
  assert.equal(old.outcome, "ok");
});

Deno.test("handlePacket() reports the first failing check in the protocol 2.1 order", async (t) => {
  const expired = { exp: NOW - 3600, iat: NOW - 7200 };
  const cases: [
    string,
    Promise<Uint8Array>,
    string,
    Partial<HandlerContext>?,
  ][] = [
    [
      "alg outside the allow-list before an unknown group and kid",
      token(ED, { alg: "EdDSA", kid: "nope" }, claims("nosuch", expired)),
      "ALG_NOT_ALLOWED",
      { algs: new Set(["ES256"]) },
    ],
    [
      "a missing sub before an unknown kid",
      token(
        NEW,
        { alg: "EdDSA", kid: "nope" },
        claims("team", { sub: undefined }),
      ),
      "MISSING_CLAIM",
    ],
    [
      "a bad sub before an unknown kid",
      token(NEW, { alg: "EdDSA", kid: "nope" }, claims("team", { sub: "a b" })),
      "BAD_CLAIM",
    ],
    [
      "an unknown group before an unknown kid",
      token(NEW, { alg: "EdDSA", kid: "nope" }, claims("nosuch")),
      "UNKNOWN_GROUP",
    ],
    [
      "an unknown kid before an algorithm that fits no key",
      token(P384, { alg: "ES384", kid: "nope" }, claims("team", expired)),
      "UNKNOWN_KEY",
    ],
    [
      "an algorithm that is not the kid's before a bad signature",
      token(P384, { alg: "ES384", kid: "2026-new" }, claims("team", expired)),
      "ALG_NOT_ALLOWED",
    ],
    [
      "an algorithm that fits no key before a bad signature",
      token(P384, { alg: "ES384" }, claims("team", expired)),
      "ALG_NOT_ALLOWED",
    ],
    [
      "a bad signature before the claims",
      token(ED, { alg: "EdDSA", kid: "2026-new" }, claims("team", expired)),
      "BAD_SIGNATURE",
    ],
    [
      "then the claims",
      token(NEW, { alg: "EdDSA", kid: "2026-new" }, claims("team", expired)),
      "TOKEN_EXPIRED",
    ],
  ];
  for (const [name, bytes, code, overrides] of cases) {
    await t.step(name, async () => {
      const r = await send(await bytes, context(overrides));
      assert.equal(r.outcome, code);
      assert.equal(r.claims.error, code);
    });
  }
});

Deno.test("chooseKey() makes its choices once per group: no new object per datagram", () => {
  const a = chooseKey({ group: "TEAM", alg: "EdDSA", kid: "2026-new" }, KEYS);
  const b = chooseKey({ group: "TEAM", alg: "EdDSA", kid: "2026-new" }, KEYS);
  assert.equal(a, b);
  assert.equal(a.kid, "2026-new");
  assert.equal(a.group, "TEAM");
  const c = chooseKey({ group: "MULTI", alg: "EdDSA" }, KEYS);
  assert.equal(c, chooseKey({ group: "MULTI", alg: "EdDSA" }, KEYS));
  const ed = KEYS.get("ED")!;
  assert.equal(chooseKey({ group: "ED", alg: "EdDSA" }, KEYS), ed);
  assert.equal(chooseKey({ group: "ED", alg: "EdDSA", kid: ed.kid }, KEYS), ed);
});
