/**
 * Tests of lib/keys/private_key.ts against keys made by OpenSSL and OpenSSH
 * (tests/testdata/private_keys/generate.sh): every accepted form, encrypted
 * or not, gives its format, its algorithm and the fingerprint ssh-keygen
 * computes; a token signed through `send`'s code path (loadPrivateKey, then
 * keySigner) verifies with `openssl` and with node:crypto against the public
 * key the tools wrote; every refused form and every passphrase problem says
 * why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { keySigner } from "../../lib/client/walk.ts";
import { nodeVerifies, opensslVerifies } from "./_signatures.ts";
import {
  loadPrivateKey,
  parsePrivateKey,
  PassphraseError,
  toPem,
} from "../../lib/keys/private_key.ts";
import {
  describePublicKey,
  sshFingerprint,
} from "../../lib/keys/public_half.ts";
import { jwkThumbprint, type KeyAlgorithm } from "../../lib/keys/public_key.ts";

const DIR = fileURLToPath(
  new URL("../testdata/private_keys/", import.meta.url),
);
const EXPECTED: Record<
  string,
  {
    alg: KeyAlgorithm;
    format: string;
    encrypted: boolean;
    public: string;
    fingerprint: string;
  }
> = JSON.parse(await Deno.readTextFile(`${DIR}expected.json`));
/** passphrase.txt's first line; encrypted.pem predates it. */
const PASSPHRASE = (await Deno.readTextFile(`${DIR}passphrase.txt`)).split(
  "\n",
)[0]!;

function passphraseFor(file: string): () => Promise<string> {
  return () =>
    Promise.resolve(file === "encrypted.pem" ? "secret" : PASSPHRASE);
}

async function signWithSendPath(
  text: string,
  options: Parameters<typeof loadPrivateKey>[1],
): Promise<
  { jws: string; loaded: Awaited<ReturnType<typeof loadPrivateKey>> }
> {
  const loaded = await loadPrivateKey(text, options);
  const signer = keySigner(loaded.key, loaded.alg, loaded.kid);
  const payload = new TextEncoder().encode(
    JSON.stringify({ sub: "ALPHA", seq_state_number: 0 }),
  );
  return { jws: await signer.sign(payload), loaded };
}

Deno.test("loadPrivateKey() reads every fixture; its signatures verify with openssl and node:crypto", async (t) => {
  for (const [file, want] of Object.entries(EXPECTED)) {
    await t.step(file, async () => {
      let asked = 0;
      const ask = passphraseFor(file);
      const { jws, loaded } = await signWithSendPath(
        await Deno.readTextFile(`${DIR}${file}`),
        { passphrase: () => (asked++, ask()) },
      );
      assert.equal(loaded.info.format, want.format);
      assert.equal(loaded.alg, want.alg);
      assert.equal(loaded.info.encrypted, want.encrypted);
      // The passphrase is asked for only when the key has one.
      assert.equal(asked, want.encrypted ? 1 : 0);
      assert.equal(await sshFingerprint(loaded.publicKey), want.fingerprint);
      const header = JSON.parse(
        new TextDecoder().decode(
          Uint8Array.fromBase64(jws.split(".")[0]!, { alphabet: "base64url" }),
        ),
      );
      assert.equal(header.alg, want.alg);
      assert.equal(header.typ, "JWT");
      const pub = `${DIR}${want.public}`;
      assert.ok(await opensslVerifies(jws, want.alg, pub), "openssl");
      assert.ok(nodeVerifies(jws, want.alg, pub), "node:crypto");
      // The derived SPKI is the tools' own, byte for byte (but for the
      // RSASSA-PSS key, whose SPKI names that OID where ours says RSA).
      if (file !== "rsapss.pkcs8.pem") {
        const toolSpki = Deno.readTextFileSync(pub);
        assert.equal(toPem("PUBLIC KEY", loaded.publicKey.spki), toolSpki);
      }
    });
  }
});

Deno.test("loadPrivateKey() takes the JWK's kid and alg, and --alg choices that fit the key", async (t) => {
  const read = (f: string) => Deno.readTextFileSync(`${DIR}${f}`);
  await t.step(
    "a JWK's kid goes into the header; an explicit kid wins",
    async () => {
      const { jws } = await signWithSendPath(read("ed25519.jwk"), {});
      assert.match(atob(jws.split(".")[0]!), /"kid":"ed-2026"/);
      const other = await signWithSendPath(read("ed25519.jwk"), {
        kid: "mine",
      });
      assert.match(atob(other.jws.split(".")[0]!), /"kid":"mine"/);
      const none = await signWithSendPath(read("id_ed25519"), {});
      assert.doesNotMatch(atob(none.jws.split(".")[0]!), /kid/);
    },
  );
  for (const alg of ["RS384", "RS512", "PS256", "PS384", "PS512"] as const) {
    await t.step(`an RSA key signs ${alg} when asked`, async () => {
      const { jws, loaded } = await signWithSendPath(read("id_rsa"), { alg });
      assert.equal(loaded.alg, alg);
      const pub = `${DIR}public/id_rsa.spki.pem`;
      assert.ok(await opensslVerifies(jws, alg, pub));
      assert.ok(nodeVerifies(jws, alg, pub));
    });
  }
  await t.step("an RSASSA-PSS key signs PS* only", async () => {
    const pss = read("rsapss.pkcs8.pem");
    const { jws } = await signWithSendPath(pss, { alg: "PS512" });
    assert.ok(
      await opensslVerifies(jws, "PS512", `${DIR}public/rsapss.spki.pem`),
    );
    await assert.rejects(
      loadPrivateKey(pss, { alg: "RS256" }),
      /does not fit this RSA key \(it signs PS256, PS384, PS512\)/,
    );
  });
  await t.step("a byte order mark before a JWK or PEM is ignored", async () => {
    for (const f of ["ed25519.jwk", "p256.pkcs8.pem"]) {
      const key = await loadPrivateKey(`\uFEFF${read(f)}`);
      assert.equal(key.info.type === "OKP" ? "EdDSA" : "ES256", key.alg);
    }
  });
  await t.step("Ed25519 (RFC 9864) is EdDSA", async () => {
    const { loaded } = await signWithSendPath(read("id_ed25519"), {
      alg: "Ed25519",
    });
    assert.equal(loaded.alg, "EdDSA");
  });
  await t.step("an algorithm that does not fit is refused", async () => {
    await assert.rejects(
      loadPrivateKey(read("id_ecdsa384"), { alg: "ES256" }),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          'algorithm "ES256" does not fit this EC P-384 key (it signs ES384)',
    );
    await assert.rejects(
      loadPrivateKey(read("id_ed25519"), { alg: "RS256" }),
      /does not fit this Ed25519 key \(it signs EdDSA\)/,
    );
    await assert.rejects(
      loadPrivateKey(read("rsa.ps256.jwk"), { alg: "RS256" }),
      /does not fit this RSA key \(its JWK says "alg": "PS256"\)/,
    );
    await assert.rejects(
      loadPrivateKey(read("rsa.pkcs8.pem"), { alg: "HS256" }),
      /does not fit this RSA key \(it signs RS256, RS384, RS512, PS256, PS384, PS512\)/,
    );
  });
  await t.step(
    "the public half: description and RFC 7638 thumbprint",
    async () => {
      const ed = await loadPrivateKey(read("ed25519.jwk"));
      assert.equal(describePublicKey(ed.publicKey), "Ed25519");
      // RFC 8037 appendix A.3's key and thumbprint.
      const rfc = await loadPrivateKey(JSON.stringify({
        kty: "OKP",
        crv: "Ed25519",
        d: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
      }));
      assert.equal(
        await jwkThumbprint(rfc.publicKey),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
      );
      const p521 = await loadPrivateKey(read("p521.sec1.pem"));
      assert.equal(describePublicKey(p521.publicKey), "EC P-521");
      const rsa = await loadPrivateKey(read("id_rsa_pass"), {
        passphrase: () => Promise.resolve(PASSPHRASE),
      });
      assert.equal(describePublicKey(rsa.publicKey), "RSA 3072");
      assert.equal(rsa.info.comment?.length ? true : false, true);
    },
  );
});

Deno.test("parsePrivateKey() refuses what it cannot use, saying why", async (t) => {
  const cases: [string, RegExp][] = [
    [
      "pbes1.encrypted.pem",
      /^the key is encrypted with an old scheme \(OID 1\.2\.840\.113549\.1\.12\.1\.3\), not PBES2: re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc/,
    ],
    [
      "rsa.legacy.encrypted.pem",
      /^the key is encrypted in the legacy OpenSSL format: convert it with openssl pkcs8 -topk8 -v2 aes-256-cbc/,
    ],
    ["public.pem", /^PEM type "PUBLIC KEY" is not a private key$/],
    [
      "id_ed25519.pub",
      /^this is an OpenSSH public key: pass the private key \(the file without \.pub\)$/,
    ],
    [
      "ed25519.public.jwk",
      /^this JWK has no "d": it is a public key, pass the private key$/,
    ],
  ];
  for (const [file, message] of cases) {
    await t.step(file, async () => {
      await assert.rejects(
        parsePrivateKey(await Deno.readTextFile(`${DIR}${file}`), {
          passphrase: () => Promise.resolve(PASSPHRASE),
        }),
        (e: unknown) => e instanceof SyntaxError && message.test(e.message),
      );
    });
  }
  const bad: [string, string, RegExp][] = [
    [
      "not PEM at all",
      "hello",
      /^not a private key \(expected PEM, OpenSSH or a JWK\)$/,
    ],
    [
      "broken JSON",
      "{ nope",
      /^the file starts with \{ but is not valid JSON$/,
    ],
    [
      "a JWK of another kind",
      '{"kty":"oct","k":"AA","d":"AA"}',
      /JWK key type "oct" is not supported/,
    ],
    [
      "an X25519 JWK",
      '{"kty":"OKP","crv":"X25519","x":"AA","d":"AA"}',
      /OKP curve "X25519" is not supported/,
    ],
    [
      "a JWK for encryption",
      '{"kty":"OKP","crv":"Ed25519","use":"enc","x":"AA","d":"AA"}',
      /"use" is "enc", not "sig"/,
    ],
    [
      "a JWK whose alg contradicts it",
      '{"kty":"EC","crv":"P-256","alg":"ES384","x":"AA","y":"AA","d":"AA"}',
      /the JWK's "alg" "ES384" does not fit its EC P-256 key/,
    ],
    ["a JWK Set of two keys", '{"keys":[{},{}]}', /the JWK Set holds 2 keys/],
    [
      "bad base64",
      "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
      /not valid base64/,
    ],
  ];
  for (const [name, text, message] of bad) {
    await t.step(name, async () => {
      await assert.rejects(
        parsePrivateKey(text),
        (e: unknown) => e instanceof SyntaxError && message.test(e.message),
      );
    });
  }
  await t.step("truncated PKCS#8 and OpenSSH bodies", async () => {
    for (
      const [file, label] of [
        ["p256.pkcs8.pem", "PRIVATE KEY"],
        ["id_ed25519", "OPENSSH PRIVATE KEY"],
        ["id_ed25519_pass", "OPENSSH PRIVATE KEY"],
        ["p521.pkcs8.encrypted.pem", "ENCRYPTED PRIVATE KEY"],
      ]
    ) {
      const pem = Deno.readTextFileSync(`${DIR}${file}`);
      const der = Uint8Array.fromBase64(
        pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""),
      );
      await assert.rejects(
        parsePrivateKey(toPem(label!, der.subarray(0, 60)), {
          passphrase: () => Promise.resolve(PASSPHRASE),
        }),
        (e: unknown) => e instanceof SyntaxError && /truncated/.test(e.message),
        file,
      );
    }
  });
});

Deno.test("parsePrivateKey() on encrypted keys: no passphrase, a wrong one", async (t) => {
  const encrypted = Object.entries(EXPECTED).filter(([, w]) => w.encrypted);
  assert.equal(encrypted.length, 7);
  for (const [file] of encrypted) {
    await t.step(file, async () => {
      const text = await Deno.readTextFile(`${DIR}${file}`);
      await assert.rejects(parsePrivateKey(text), {
        name: "PassphraseError",
        code: "PASSPHRASE_REQUIRED",
      });
      for (const wrong of ["", "wrong", `${PASSPHRASE}\n`, "secreT"]) {
        await assert.rejects(
          parsePrivateKey(text, { passphrase: () => Promise.resolve(wrong) }),
          (e: unknown) =>
            e instanceof PassphraseError && e.code === "BAD_PASSPHRASE" &&
            e.message === "wrong passphrase: the key does not decrypt with it",
        );
      }
    });
  }
});
