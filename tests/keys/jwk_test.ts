/**
 * Tests of lib/keys/jwk.ts: every reason a `.jwk` or `.jwks` file is refused,
 * and the refusals as the key ring reports them (file and reason).
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseJwk, parseJwkSet } from "../../lib/keys/jwk.ts";
import { loadKeys } from "../../lib/keys/key_ring.ts";

const DIR = new URL("../testdata/more_keys/", import.meta.url);
const read = (name: string) =>
  JSON.parse(Deno.readTextFileSync(new URL(name, DIR)));
const ED = read("ed25519.jwk") as Record<string, unknown>;
const P384 = read("p384.jwk") as Record<string, unknown>;
const RSA = read("rsa-ps256.jwk") as Record<string, unknown>;
const ROTATION = read("rotation.jwks") as { keys: Record<string, unknown>[] };

function refused(text: string, message: RegExp, set = false): void {
  assert.throws(
    () => set ? parseJwkSet(text) : parseJwk(text),
    (e) => {
      assert.ok(e instanceof SyntaxError, String(e));
      assert.match(e.message, message);
      return true;
    },
  );
}

const jwk = (base: Record<string, unknown>, extra: Record<string, unknown>) =>
  JSON.stringify({ ...base, ...extra });

Deno.test("parseJwk() refuses private members: this is a private key", async (t) => {
  for (const m of ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]) {
    await t.step(m, () => {
      refused(
        jwk(RSA, { [m]: "AQAB" }),
        new RegExp(`^this is a private key \\(member "${m}"\\)`),
      );
    });
  }
  await t.step("a symmetric key", () => {
    refused('{"kty":"oct","k":"c2VjcmV0"}', /^this is a private key/);
  });
  await t.step("several members are all named", () => {
    refused(
      jwk(ED, { d: "AQAB", k: "AQAB" }),
      /^this is a private key \(members "d", "k"\)/,
    );
  });
});

Deno.test("parseJwk() refuses a key not meant for verifying signatures", async (t) => {
  await t.step('use "enc"', () => {
    refused(jwk(ED, { use: "enc" }), /^"use" is "enc", not "sig"/);
  });
  await t.step("use not a string", () => {
    refused(jwk(ED, { use: 1 }), /^"use" is 1, not "sig"/);
  });
  await t.step('key_ops without "verify"', () => {
    refused(
      jwk(ED, { key_ops: ["sign", "encrypt"] }),
      /^"key_ops" does not include "verify"/,
    );
  });
  await t.step("key_ops not an array", () => {
    refused(jwk(ED, { key_ops: "verify" }), /"key_ops" does not include/);
  });
  await t.step('use "sig" and key_ops with "verify" are fine', () => {
    assert.equal(
      parseJwk(jwk(ED, { use: "sig", key_ops: ["verify"] })).alg,
      "EdDSA",
    );
  });
});

Deno.test("parseJwk() refuses an alg that contradicts the key type, and takes one that fits", async (t) => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [P384, "ES256", /an EC P-384 key verifies ES384$/],
    [P384, "EdDSA", /an EC P-384 key verifies ES384$/],
    [ED, "ES256", /an Ed25519 key verifies EdDSA or Ed25519$/],
    [ED, "RS256", /an Ed25519 key verifies EdDSA or Ed25519$/],
    [RSA, "ES256", /an RSA key verifies RS256 or RS384/],
    [RSA, "HS256", /an RSA key verifies/],
    [RSA, "none", /an RSA key verifies/],
  ];
  for (const [base, alg, message] of cases) {
    await t.step(`${base.kty} ${base.crv ?? ""} with ${alg}`, () => {
      refused(
        jwk(base, { alg }),
        new RegExp(
          `^"alg" "${alg}" contradicts the key type: ${message.source}`,
        ),
      );
    });
  }
  await t.step("fitting algorithms", () => {
    for (const alg of ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]) {
      assert.equal(parseJwk(jwk(RSA, { alg })).alg, alg);
    }
    assert.equal(parseJwk(jwk(ED, { alg: "Ed25519" })).alg, "EdDSA");
    assert.equal(parseJwk(jwk(P384, { alg: "ES384" })).alg, "ES384");
    const { alg: _, ...rsa } = RSA;
    assert.equal(parseJwk(JSON.stringify(rsa)).alg, "RS256");
  });
});

Deno.test("parseJwk() refuses malformed and unsupported keys", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["not JSON", "{", /^the JWK is not valid JSON/],
    ["an array", "[]", /^a JWK must be a JSON object/],
    [
      "a set",
      Deno.readTextFileSync(new URL("rotation.jwks", DIR)),
      /this is a JWK Set: name the file <group>\.jwks/,
    ],
    ["no kty", "{}", /^key type \(kty\) \(missing\) is not supported/],
    [
      "X25519",
      jwk(ED, { crv: "X25519" }),
      /^OKP curve "X25519" is not supported/,
    ],
    [
      "secp256k1",
      jwk(P384, { crv: "secp256k1" }),
      /^EC curve "secp256k1" is not supported/,
    ],
    ["short x", jwk(P384, { x: "AQAB" }), /P-384 coordinates must be 48 bytes/],
    [
      "x not base64url",
      jwk(ED, { x: "a+b/" }),
      /member "x" of the Ed25519 JWK must be a base64url string/,
    ],
    ["no n", jwk(RSA, { n: undefined }), /member "n" of the RSA JWK/],
    [
      "kid a number",
      jwk(ED, { kid: 7 }),
      /^"kid" must be 1-128 printable ASCII/,
    ],
    ["kid empty", jwk(ED, { kid: "" }), /^"kid" must be/],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => refused(text, message));
  }
});

Deno.test("parseJwkSet() refuses sets of the wrong size, without kids, with repeated kids or a bad key", async (t) => {
  const set = (keys: unknown[]) => JSON.stringify({ keys });
  const cases: [string, string, RegExp][] = [
    [
      "a bare JWK",
      JSON.stringify(ED),
      /^a JWK Set is an object with a "keys" array/,
    ],
    ["no keys", set([]), /^a JWK Set holds 1 to 8 keys, this one 0$/],
    [
      "nine keys",
      set(Array.from({ length: 9 }, (_, i) => ({ ...ED, kid: `k${i}` }))),
      /holds 1 to 8 keys, this one 9$/,
    ],
    [
      "two keys, one kid",
      set([{ ...ED, kid: "a" }, P384]),
      /^key 2 of 2 has no "kid": every key of a set of several needs one$/,
    ],
    [
      "a repeated kid",
      set([{ ...ED, kid: "a" }, { ...P384, kid: "a" }]),
      /^key 2 of 2 repeats "kid" "a": key ids must be unique$/,
    ],
    [
      "a private key inside",
      set([ROTATION.keys[0], { ...ROTATION.keys[1], d: "AQAB" }]),
      /^key 2 of 2: this is a private key/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => refused(text, message, true));
  }
  await t.step("one key needs no kid", () => {
    assert.equal(parseJwkSet(set([ED])).length, 1);
  });
});

Deno.test("loadKeys() reports a refused JWK or JWK Set by file, with the reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files: Record<string, string> = {
      "good.jwk": JSON.stringify(ED),
      "team.jwks": Deno.readTextFileSync(new URL("rotation.jwks", DIR)),
      "private.jwk": jwk(ED, { d: "AQAB" }),
      "enc.jwk": jwk(ED, { use: "enc" }),
      "ops.jwk": jwk(ED, { key_ops: ["sign"] }),
      "alg.jwk": jwk(P384, { alg: "ES256" }),
      "weak.jwks": JSON.stringify({
        keys: [{ ...ED, kid: "a" }, {
          kty: "RSA",
          kid: "b",
          e: "AQAB",
          n: new Uint8Array(128).fill(0xc1).toBase64({
            alphabet: "base64url",
            omitPadding: true,
          }),
        }],
      }),
    };
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    const ring = await loadKeys(dir);
    assert.deepEqual([...ring.groups.keys()].sort(), ["GOOD", "TEAM"]);
    assert.equal(ring.groups.get("TEAM")!.keys.length, 2);
    const reasons = Object.fromEntries(
      ring.skipped.map((s) => [s.file.slice(dir.length + 1), s.reason]),
    );
    assert.match(reasons["private.jwk"]!, /^this is a private key/);
    assert.match(reasons["enc.jwk"]!, /not "sig"/);
    assert.match(reasons["ops.jwk"]!, /"key_ops" does not include "verify"/);
    assert.match(reasons["alg.jwk"]!, /"alg" "ES256" contradicts the key type/);
    assert.match(
      reasons["weak.jwks"]!,
      /^key 2 of 2: RSA key of 1024 bits is shorter than the minimum of 2048/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
