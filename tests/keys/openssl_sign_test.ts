import assert from "node:assert/strict";
import { compactVerify, createLocalJWKSet } from "jose";
import { parseAnswerKey } from "../../lib/keys/answer_key.ts";
import {
  derEcdsaToRaw,
  openSslSignatures,
} from "../../lib/keys/_openssl_sign.ts";

const DIR = new URL("../testdata/answer_keys/", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, DIR));
const openssl = openSslSignatures();

Deno.test("derEcdsaToRaw() pads and strips the DER integers to 32 bytes each", () => {
  const r = new Uint8Array(32).fill(0x81); // high bit: DER adds a zero byte
  const s = new Uint8Array([0x01]); // short: padded on the left
  const der = new Uint8Array([
    0x30,
    4 + 33 + 1,
    0x02,
    33,
    0,
    ...r,
    0x02,
    1,
    ...s,
  ]);
  const raw = derEcdsaToRaw(der);
  assert.deepEqual(raw.subarray(0, 32), r);
  assert.deepEqual(
    raw.subarray(32),
    new Uint8Array(32).fill(0, 0, 31).fill(1, 31),
  );
  assert.throws(() => derEcdsaToRaw(new Uint8Array([0x31, 0])), SyntaxError);
  assert.throws(() => derEcdsaToRaw(der.subarray(0, 20)), SyntaxError);
});

Deno.test({
  name:
    "openSslSignatures() signs ES256 and RS256 answers that verify with the JWK Set",
  ignore: !("factory" in openssl),
  async fn(t) {
    if (!("factory" in openssl)) return;
    const signatures = { factory: openssl.factory, engine: "openssl" };
    for (
      const [file, engine] of [
        ["p256.pem", "openssl"],
        ["rsa2048.pem", "openssl"],
        ["ed25519.pem", "node:crypto"], // node:crypto is as fast for Ed25519
      ] as const
    ) {
      await t.step(file, async () => {
        const key = await parseAnswerKey(await read(file), { signatures });
        assert.equal(key.engine, engine);
        const jwks = createLocalJWKSet(key.jwks);
        for (let i = 0; i < 50; i++) {
          const claims = { n: i, pad: "x".repeat(i) };
          const token = key.signer.sign(claims);
          assert.equal(token.length, key.signer.size(JSON.stringify(claims)));
          await compactVerify(new TextDecoder().decode(token), jwks, {
            algorithms: [key.alg],
          });
        }
      });
    }
  },
});

Deno.test("parseAnswerKey() keeps node:crypto when another engine's signature does not verify", async () => {
  const key = await parseAnswerKey(await read("p256.pem"), {
    signatures: {
      factory: () => () => new Uint8Array(64),
      engine: "broken",
    },
  });
  assert.equal(key.engine, "node:crypto");
  const token = new TextDecoder().decode(key.signer.sign({ a: 1 }));
  await compactVerify(token, createLocalJWKSet(key.jwks));
});
