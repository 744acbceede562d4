/**
 * Protocol 2.1 keys (tests/testdata/more_keys, made by ssh-keygen, openssl and
 * jq): Ed25519, P-384 and P-521 in OpenSSH, RFC 4716, SPKI and JWK form,
 * RSA keys whose JWK `alg` picks RS384/RS512/PS256/PS384/PS512, key ids, and
 * the tools' signatures checked by both verify backends.
 *
 * @module
 */

import assert from "node:assert/strict";
import { keyFromText } from "../../lib/keys/key_ring.ts";
import { parseJwk, parseJwkSet } from "../../lib/keys/jwk.ts";
import {
  describeKey,
  fingerprint,
  jwkThumbprint,
  type KeyAlgorithm,
  parsePublicKey,
  type PublicKeyInfo,
} from "../../lib/keys/public_key.ts";
import {
  rawEcdsaToDer,
  selectBackend,
  type VerifyBackend,
  webCryptoBackend,
} from "../../lib/keys/verify.ts";

const DIR = new URL("../testdata/more_keys/", import.meta.url);
const text = (name: string) => Deno.readTextFileSync(new URL(name, DIR));
const expected = JSON.parse(text("expected.json"));
const MESSAGE = Deno.readFileSync(new URL("message.txt", DIR));

// Ed25519 through OpenSSL too (by default the backend hands it to WebCrypto).
const { backend: native } = selectBackend({ ed25519: "openssl" });
const BACKENDS: VerifyBackend[] = native.name === "openssl"
  ? [webCryptoBackend, native]
  : [webCryptoBackend];

function hexOf(b64url: string | undefined): string {
  return Uint8Array.fromBase64(b64url!, { alphabet: "base64url" }).toHex();
}

Deno.test("parsePublicKey() reads the ssh-keygen Ed25519 key in every form, with ssh-keygen's fingerprint", async (t) => {
  const cases: [string, string][] = [
    ["ed25519.ssh", "OpenSSH"],
    ["ed25519.pub", "OpenSSH"],
    ["ed25519.rfc4716.ssh", "RFC 4716"],
    ["ed25519.spki.pem", "PEM SPKI"],
  ];
  for (const [file, format] of cases) {
    await t.step(file, async () => {
      const info = parsePublicKey(text(file));
      assert.equal(info.format, format);
      assert.equal(info.type, "OKP");
      assert.equal(info.alg, "EdDSA");
      assert.equal(info.curve, "Ed25519");
      assert.equal(describeKey(info), "Ed25519");
      assert.equal(hexOf(info.jwk.x), expected.ed25519.xHex);
      assert.equal(await fingerprint(info), expected.ed25519.fingerprint);
      assert.equal(await jwkThumbprint(info), expected.ed25519.thumbprint);
    });
  }
});

Deno.test("parsePublicKey() reads the ssh-keygen P-384 and P-521 keys in every form", async (t) => {
  for (
    const [name, curve, alg, bits] of [
      ["p384", "P-384", "ES384", 384],
      ["p521", "P-521", "ES512", 521],
    ] as const
  ) {
    for (
      const [file, format] of [
        [`${name}.ssh`, "OpenSSH"],
        [`${name}.rfc4716.ssh`, "RFC 4716"],
        [`${name}.spki.pem`, "PEM SPKI"],
      ]
    ) {
      await t.step(file!, async () => {
        const info = parsePublicKey(text(file!));
        assert.equal(info.format, format);
        assert.equal(info.type, "EC");
        assert.equal(info.curve, curve);
        assert.equal(info.alg, alg);
        assert.equal(info.bits, bits);
        assert.equal(describeKey(info), `EC ${curve}`);
        assert.equal(
          `04${hexOf(info.jwk.x)}${hexOf(info.jwk.y)}`,
          expected[name].pointHex,
        );
        assert.equal(await fingerprint(info), expected[name].fingerprint);
        assert.equal(await jwkThumbprint(info), expected[name].thumbprint);
      });
    }
  }
});

Deno.test("parseJwk() reads the tools' JWKs: same key, fingerprint and RFC 7638 thumbprint as the other forms", async () => {
  for (const name of ["ed25519", "p384", "p521"]) {
    const jwk = parseJwk(text(`${name}.jwk`));
    const ssh = parsePublicKey(text(`${name}.ssh`));
    assert.equal(jwk.format, "JWK");
    assert.deepEqual(jwk.jwk, ssh.jwk, name);
    assert.equal(jwk.alg, ssh.alg, name);
    assert.equal(jwk.kid, undefined);
    assert.equal(await fingerprint(jwk), expected[name].fingerprint);
    assert.equal(await jwkThumbprint(jwk), expected[name].thumbprint);
  }
  const rsa = parseJwk(text("rsa-ps256.jwk"));
  assert.equal(rsa.alg, "PS256");
  assert.equal(rsa.kid, "rsa-pss");
  assert.equal(rsa.bits, 2048);
  assert.deepEqual(rsa.jwk, parsePublicKey(text("rsa.spki.pem")).jwk);
  assert.equal(await jwkThumbprint(rsa), expected.rsa.thumbprint);
});

Deno.test("parseJwkSet() reads the rotation set in file order with its kids", async () => {
  const keys = parseJwkSet(text("rotation.jwks"));
  assert.deepEqual(keys.map((k) => [k.kid, k.alg, k.format]), [
    ["2026-old", "ES256", "JWK Set"],
    ["2026-new", "EdDSA", "JWK Set"],
  ]);
  assert.equal(
    await jwkThumbprint(keys[0]!),
    expected.rotation.old.thumbprint,
  );
  assert.equal(
    await jwkThumbprint(keys[1]!),
    expected.rotation.new.thumbprint,
  );
});

Deno.test("keyFromText() gives each key its kid, else its thumbprint", async () => {
  const set = await keyFromText("keys_pub/team.jwks", text("rotation.jwks"));
  assert.equal(set.group, "TEAM");
  assert.deepEqual(set.keys.map((k) => [k.kid, k.kidSource]), [
    ["2026-old", "kid"],
    ["2026-new", "kid"],
  ]);
  assert.equal(set.kid, "2026-old");
  const ed = await keyFromText("keys_pub/ed.pub", text("ed25519.pub"));
  assert.equal(ed.kid, expected.ed25519.thumbprint);
  assert.equal(ed.kidSource, "thumbprint");
  assert.equal(ed.keys.length, 1);
});

/** The signatures the tools made over message.txt, by key and algorithm. */
function toolSignatures(): [string, PublicKeyInfo, string][] {
  const rsa = parsePublicKey(text("rsa.spki.pem"));
  const out: [string, PublicKeyInfo, string][] = [
    [
      "Ed25519",
      parsePublicKey(text("ed25519.ssh")),
      expected.ed25519.signatureHex,
    ],
    ["P-384", parsePublicKey(text("p384.ssh")), expected.p384.signatureHex],
    ["P-521", parsePublicKey(text("p521.ssh")), expected.p521.signatureHex],
  ];
  for (const [alg, sig] of Object.entries(expected.rsa.signatures)) {
    out.push([alg, { ...rsa, alg: alg as KeyAlgorithm }, sig as string]);
  }
  return out;
}

for (const backend of BACKENDS) {
  Deno.test(`${backend.name}: the tools' signatures verify, and a changed byte does not (every algorithm)`, async (t) => {
    for (const [name, info, sigHex] of toolSignatures()) {
      await t.step(`${name} ${info.alg}`, async () => {
        const key = await keyFromText(
          `k.jwk`,
          JSON.stringify({ ...info.jwk, alg: info.alg }),
          { backend },
        );
        const signature = Uint8Array.fromHex(sigHex);
        assert.equal(await key.verify(MESSAGE, signature), true);
        const other = MESSAGE.slice();
        other[0]! ^= 1;
        assert.equal(await key.verify(other, signature), false);
        const bad = signature.slice();
        bad[bad.length - 1]! ^= 1;
        assert.equal(await key.verify(MESSAGE, bad), false);
        assert.equal(await key.verify(MESSAGE, signature.subarray(1)), false);
      });
    }
  });
}

Deno.test({
  name:
    "the OpenSSL and WebCrypto backends agree on every algorithm, for good, bad and malformed signatures",
  ignore: native.name !== "openssl",
  fn: async () => {
    let checked = 0;
    for (const [, info, sigHex] of toolSignatures()) {
      const jwk = JSON.stringify({ ...info.jwk, alg: info.alg });
      const fast = await keyFromText("k.jwk", jwk, { backend: native });
      const slow = await keyFromText("k.jwk", jwk);
      const good = Uint8Array.fromHex(sigHex);
      const variants = [
        good,
        good.map((b, i) => i === 3 ? b ^ 0x80 : b),
        good.subarray(0, good.length - 1),
        new Uint8Array(good.length),
        new Uint8Array(good.length).fill(0xff),
        new Uint8Array(0),
      ];
      for (const sig of variants) {
        const a = await fast.verify(MESSAGE, sig);
        const b = await slow.verify(MESSAGE, sig).catch(() => false);
        assert.equal(a, b, `${info.alg} signature of ${sig.length} bytes`);
        checked++;
      }
    }
    assert.equal(checked, 8 * 6);
  },
});

Deno.test({
  name: "selectBackend() hands Ed25519 to WebCrypto unless told otherwise",
  ignore: native.name !== "openssl",
  fn: () => {
    assert.match(selectBackend().backend.description, /Ed25519 by WebCrypto/);
    assert.doesNotMatch(native.description, /Ed25519 by WebCrypto/);
  },
});

Deno.test("rawEcdsaToDer() handles P-384 and P-521 sizes (long DER length form)", () => {
  const p521 = Uint8Array.fromHex(expected.p521.signatureHex);
  assert.equal(p521.length, 132);
  const der = rawEcdsaToDer(p521, 66)!;
  assert.equal(der[0], 0x30);
  assert.equal(der[1], 0x81);
  assert.equal(der[2], der.length - 3);
  assert.equal(rawEcdsaToDer(p521, 48), null);
  const p384 = Uint8Array.fromHex(expected.p384.signatureHex);
  assert.equal(rawEcdsaToDer(p384, 48)![0], 0x30);
});
