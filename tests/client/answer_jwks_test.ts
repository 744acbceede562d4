import assert from "node:assert/strict";
import { jwksVerifier, parseJwks } from "../../lib/client/answer_jwks.ts";
import { parseAnswerKey } from "../../lib/keys/answer_key.ts";
import { signResponse } from "../../lib/protocol/token.ts";

const DIR = new URL("../testdata/answer_keys/", import.meta.url);
const ed = await parseAnswerKey(
  await Deno.readTextFile(new URL("ed25519.pem", DIR)),
);
const ec = await parseAnswerKey(
  await Deno.readTextFile(new URL("p256.pem", DIR)),
);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("parseJwks() reads a published set and refuses what cannot verify answers", async (t) => {
  await t.step("the server's own set, and a rotation of two", () => {
    assert.deepEqual(parseJwks(JSON.stringify(ed.jwks)), ed.jwks);
    const two = { keys: [ed.jwk, ec.jwk] };
    assert.equal(parseJwks(JSON.stringify(two)).keys.length, 2);
  });
  const bad: [string, unknown, RegExp][] = [
    ["not JSON", "{", /not JSON/],
    ["no keys", {}, /not a JWK Set of 1 to 8 keys/],
    ["empty", { keys: [] }, /1 to 8 keys/],
    ["nine", { keys: Array(9).fill(ed.jwk) }, /1 to 8 keys/],
    ["not a JWK", { keys: [42] }, /key 1 is not a JWK/],
    ["private", { keys: [{ ...ed.jwk, d: "AAAA" }] }, /private members/],
    ["no kid", { keys: [{ ...ed.jwk, kid: undefined }] }, /no "kid"/],
    ["HS256", { keys: [{ ...ed.jwk, alg: "HS256" }] }, /"alg" "HS256"/],
  ];
  for (const [name, value, message] of bad) {
    await t.step(name, () => {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      assert.throws(() => parseJwks(text), (e: unknown) => {
        assert.ok(e instanceof SyntaxError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

Deno.test("jwksVerifier() verifies by kid and says why an answer is refused", async () => {
  const verify = jwksVerifier({ keys: [ed.jwk, ec.jwk] });
  const claims = { iss: "udp.socket.server.for.jwt", "next_number": 1 };
  assert.equal(await verify(decode(ed.signer.sign(claims))), undefined);
  assert.equal(await verify(decode(ec.signer.sign(claims))), undefined);
  const hs = decode(signResponse(claims, new TextEncoder().encode("s\n")));
  assert.match((await verify(hs))!, /signed with HS256 \(the shared secret\)/);
  const onlyEc = jwksVerifier(ec.jwks);
  assert.match(
    (await onlyEc(decode(ed.signer.sign(claims))))!,
    new RegExp(`no key of --answer-jwks has kid "${ed.kid}"`),
  );
  // A signature of one key under the other's kid.
  const [h, p] = decode(ed.signer.sign(claims)).split(".");
  const forged = `${h}.${p}.${decode(ec.signer.sign(claims)).split(".")[2]}`;
  assert.match((await verify(forged))!, /does not verify with key/);
  const header = (o: unknown) =>
    new TextEncoder().encode(JSON.stringify(o)).toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
  const noKid = `${header({ alg: "EdDSA" })}.${p}.AAAA`;
  assert.match((await verify(noKid))!, /no "kid"/);
  const wrongAlg = `${header({ alg: "ES256", kid: ed.kid })}.${p}.AAAA`;
  assert.match((await verify(wrongAlg))!, /is for EdDSA/);
});
