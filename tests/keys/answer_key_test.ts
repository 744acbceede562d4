import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from "jose";
import { ANSWER_RSA_BITS, parseAnswerKey } from "../../lib/keys/answer_key.ts";
import { largestAnswer } from "../../lib/protocol/answer_signer.ts";

const DIR = new URL("../testdata/answer_keys/", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, DIR));

const USABLE = [
  { file: "ed25519.pem", alg: "EdDSA", description: "Ed25519", sig: 86 },
  { file: "p256.pem", alg: "ES256", description: "EC P-256", sig: 86 },
  { file: "rsa2048.pem", alg: "RS256", description: "RSA 2048", sig: 342 },
] as const;

/**
 * RFC 7638 by hand: the required members in lexicographic order, no
 * whitespace, SHA-256, base64url; from the public key openssl's PEM gives.
 */
function thumbprint(pem: string): string {
  const jwk = createPublicKey(createPrivateKey(pem)).export({ format: "jwk" });
  const names = jwk.kty === "RSA"
    ? ["e", "kty", "n"]
    : jwk.kty === "EC"
    ? ["crv", "kty", "x", "y"]
    : ["crv", "kty", "x"];
  const json = `{${
    names.map((n) => `"${n}":"${jwk[n as keyof typeof jwk]}"`).join(",")
  }}`;
  return createHash("sha256").update(json).digest("base64url");
}

Deno.test("parseAnswerKey() signs with each supported key type, verifiable with its JWK Set", async (t) => {
  for (const { file, alg, description, sig } of USABLE) {
    await t.step(file, async () => {
      const pem = await read(file);
      const key = await parseAnswerKey(pem);
      assert.equal(key.alg, alg);
      assert.equal(key.description, description);
      assert.equal(key.kid, thumbprint(pem), "kid is the RFC 7638 thumbprint");
      assert.equal(key.signer.alg, alg);
      assert.equal(key.signer.kid, key.kid);
      const [jwk] = key.jwks.keys;
      assert.equal(key.jwks.keys.length, 1);
      assert.equal(jwk!.kid, key.kid);
      assert.equal(jwk!.alg, alg);
      assert.equal(jwk!.use, "sig");
      for (const member of ["d", "p", "q", "dp", "dq", "qi"]) {
        assert.ok(!(member in jwk!), `no private member ${member}`);
      }
      const claims = { iss: "udp.socket.server.for.jwt", "next_number": 1 };
      const token = new TextDecoder().decode(key.signer.sign(claims));
      assert.equal(token.length, key.signer.size(JSON.stringify(claims)));
      assert.equal(token.split(".")[2]!.length, sig);
      assert.deepEqual(decodeProtectedHeader(token), {
        alg,
        typ: "JWT",
        kid: key.kid,
      });
      // Through the published JSON, as a client gets it.
      const published = JSON.parse(JSON.stringify(key.jwks));
      const { payload } = await compactVerify(
        token,
        createLocalJWKSet(published),
        { algorithms: [alg] },
      );
      assert.deepEqual(JSON.parse(new TextDecoder().decode(payload)), claims);
      // The same text as a string or as claims.
      assert.equal(
        key.signer.sign(JSON.stringify(claims)).length,
        token.length,
      );
    });
  }
});

Deno.test("parseAnswerKey() accepts only keys whose largest answer stays under 1,000 bytes", async () => {
  const largest: Record<string, number> = {};
  for (const { file } of USABLE) {
    largest[file] = largestAnswer(
      (await parseAnswerKey(await read(file))).signer,
    );
  }
  assert.deepEqual(largest, {
    "ed25519.pem": 732,
    "p256.pem": 732,
    "rsa2048.pem": 988,
  });
});

Deno.test("parseAnswerKey() refuses every other key with the reason", async (t) => {
  const cases: [string, RegExp, ErrorConstructor][] = [
    // A 3072-bit signature is 512 base64url characters: with the header's
    // kid, not even an error answer with an empty response fits.
    ["rsa3072.pem", /RSA 3072 key would take up to 1158 bytes/, TypeError],
    ["rsa4096.pem", /RSA 4096 key would take up to 1\d{3} bytes/, TypeError],
    ["rsa1024.pem", /RSA key of 1024 bits is too weak/, TypeError],
    ["p384.pem", /EC curve "secp384r1" is not supported/, TypeError],
    ["ed448.pem", /key type "ed448" is not supported/, TypeError],
    ["encrypted.pem", /the private key is encrypted/, TypeError],
    ["public.pem", /this is a public key: give the private key/, TypeError],
    ["rsa2048.pkcs1.pem", /"RSA PRIVATE KEY" is not PKCS#8/, TypeError],
  ];
  for (const [file, message, type] of cases) {
    await t.step(file, async () => {
      await assert.rejects(parseAnswerKey(await read(file)), (e: unknown) => {
        assert.ok(e instanceof type, String(e));
        assert.match((e as Error).message, message);
        return true;
      });
    });
  }
  await t.step("not PEM, a corrupt body, two keys", async () => {
    await assert.rejects(parseAnswerKey("hello"), SyntaxError);
    await assert.rejects(
      parseAnswerKey(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      ),
      /does not parse/,
    );
    const two = (await read("p256.pem")) + (await read("ed25519.pem"));
    await assert.rejects(parseAnswerKey(two), /2 PEM blocks/);
  });
  assert.deepEqual(ANSWER_RSA_BITS, { min: 2048, max: 2048 });
});
