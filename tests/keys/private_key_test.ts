/**
 * Tests of lib/private_key.ts against keys made by OpenSSL and OpenSSH
 * (tests/testdata/private_keys/generate.sh): every accepted PEM form gives
 * the algorithm and the public key fingerprint that ssh-keygen computes, and
 * every refused form says why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { CompactSign, compactVerify } from "jose";
import {
  loadPrivateKey,
  parsePrivateKey,
  toPem,
} from "../../lib/keys/private_key.ts";
import { fingerprint, importPublicKey } from "../../lib/keys/public_key.ts";

const DIR = fileURLToPath(
  new URL("../testdata/private_keys/", import.meta.url),
);
const EXPECTED: Record<
  string,
  { alg: string; format: string; fingerprint: string }
> = JSON.parse(await Deno.readTextFile(`${DIR}expected.json`));

Deno.test("loadPrivateKey() reads PKCS#8, PKCS#1 and SEC1 keys and derives the public key", async (t) => {
  for (const [file, want] of Object.entries(EXPECTED)) {
    await t.step(file, async () => {
      const loaded = await loadPrivateKey(
        await Deno.readTextFile(`${DIR}${file}`),
      );
      assert.equal(loaded.info.alg, want.alg);
      assert.equal(loaded.info.format, want.format);
      assert.equal(await fingerprint(loaded.publicKey), want.fingerprint);
      // The key signs, and its derived public half verifies the signature.
      const jws = await new CompactSign(new TextEncoder().encode("{}"))
        .setProtectedHeader({ alg: loaded.info.alg })
        .sign(loaded.key);
      const pub = await importPublicKey(loaded.publicKey);
      await compactVerify(jws, pub, { algorithms: [loaded.info.alg] });
    });
  }
});

Deno.test("parsePrivateKey() refuses what it cannot use, saying why", async (t) => {
  const cases: [string, RegExp][] = [
    ["ed25519.pkcs8.pem", /^key type Ed25519 is not supported/],
    ["p384.pkcs8.pem", /^EC curve P-384 is not supported \(only P-256/],
    ["encrypted.pem", /^the key is encrypted: decrypt it first/],
    ["openssh.key", /^OpenSSH private keys are not read: .*-m PKCS8/],
    ["public.pem", /^PEM type "PUBLIC KEY" is not a private key$/],
  ];
  for (const [file, message] of cases) {
    await t.step(file, async () => {
      assert.throws(
        () => parsePrivateKey(Deno.readTextFileSync(`${DIR}${file}`)),
        (e: unknown) => e instanceof SyntaxError && message.test(e.message),
      );
      await assert.rejects(
        loadPrivateKey(await Deno.readTextFile(`${DIR}${file}`)),
        SyntaxError,
      );
    });
  }
  await t.step("not PEM at all", () => {
    assert.throws(() => parsePrivateKey("hello"), /not a PEM private key/);
    assert.throws(
      () => parsePrivateKey("ssh-rsa AAAAB3NzaC1yc2E= me@host"),
      /OpenSSH public key/,
    );
  });
  await t.step("a truncated body", () => {
    const pem = Deno.readTextFileSync(`${DIR}p256.pkcs8.pem`);
    const der = Uint8Array.fromBase64(
      pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""),
    );
    assert.throws(
      () => parsePrivateKey(toPem("PRIVATE KEY", der.subarray(0, 20))),
      (e: unknown) => e instanceof SyntaxError && /truncated/.test(e.message),
    );
  });
});

Deno.test("toPem() writes 64-character base64 lines that parse back", () => {
  const der = crypto.getRandomValues(new Uint8Array(100));
  const pem = toPem("TEST", der);
  const lines = pem.trimEnd().split("\n");
  assert.equal(lines[0], "-----BEGIN TEST-----");
  assert.equal(lines.at(-1), "-----END TEST-----");
  assert.ok(lines.slice(1, -1).every((l) => l.length <= 64));
  assert.equal(lines[1]!.length, 64);
  assert.deepEqual(
    Uint8Array.fromBase64(lines.slice(1, -1).join("")),
    der,
  );
});
