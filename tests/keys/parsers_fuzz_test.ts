/**
 * Fuzzing of the protocol 2.1 key parsers: JWK and JWK Set files, OpenSSH
 * private keys (lib/keys/_openssh_private.ts), the `ssh-ed25519` and
 * `ecdsa-sha2-nistp384/521` public key blobs in their one-line and RFC 4716
 * forms, and PEM SPKI of Ed25519, P-384 and P-521. Seeds are the tools' keys
 * of tests/testdata (vectors21, more_keys, private_keys). Every truncation
 * must be refused with the documented error type (`SyntaxError`, and
 * `PassphraseError` for protected private keys); byte flips and odd member
 * values must load or be refused the same way, through the server's whole
 * load path (`keyFromText`: parse, WebCrypto import, verify backend) on every
 * backend. Never another exception, never a slow call.
 *
 * The flips come from a seeded PRNG; the seed is printed, and
 * `UDPJWT_FUZZ_SEED` (read only when `--allow-env` grants it) replays a run:
 *
 * ```sh
 * UDPJWT_FUZZ_SEED=1234 deno test --allow-env=UDPJWT_FUZZ_SEED --allow-read --allow-ffi tests/keys/parsers_fuzz_test.ts
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { keyFromText, parseKeyFile } from "../../lib/keys/key_ring.ts";
import { parsePublicKey, sshType } from "../../lib/keys/public_key.ts";
import {
  parseOpenSshPrivateKey,
  type PassphraseSource,
} from "../../lib/keys/_openssh_private.ts";
import {
  parsePrivateKey,
  PassphraseError,
} from "../../lib/keys/private_key.ts";
import { encodeWire } from "../../lib/keys/_ssh_wire.ts";
import {
  selectBackend,
  type VerifyBackend,
  webCryptoBackend,
} from "../../lib/keys/verify.ts";
import { envInteger } from "../_helpers.ts";
import { Rng } from "../net/_rng.ts";

const SEED = envInteger(
  "UDPJWT_FUZZ_SEED",
  crypto.getRandomValues(new Uint32Array(1))[0]!,
  0xffffffff,
);
/** No single parse or load may take longer than this. */
const SLOW_MS = 2_000;

const TESTDATA = new URL("../testdata/", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, TESTDATA));

const { backend: native } = selectBackend({ ed25519: "openssl" });
const BACKENDS: VerifyBackend[] = native.name === "openssl"
  ? [webCryptoBackend, native]
  : [webCryptoBackend];

type ErrorClass = abstract new (...args: never[]) => Error;

/** How one call ended: loaded, or refused with an allowed error. */
type Outcome = "ok" | "refused";

/**
 * Runs one parse or load: it must return, or throw one of `allowed` with a
 * message, and do so quickly. Anything else fails the test, naming the input.
 */
async function clean(
  what: string,
  run: () => unknown,
  allowed: readonly ErrorClass[] = [SyntaxError],
): Promise<Outcome> {
  const started = performance.now();
  try {
    await run();
    return "ok";
  } catch (e) {
    if (!allowed.some((c) => e instanceof c)) {
      const name = e instanceof Error ? e.name : typeof e;
      assert.fail(
        `${what}: unexpected ${name}: ${e instanceof Error ? e.message : e}`,
      );
    }
    assert.ok((e as Error).message.length > 0, `${what}: an empty message`);
    return "refused";
  } finally {
    const ms = performance.now() - started;
    assert.ok(ms < SLOW_MS, `${what} took ${ms.toFixed(0)} ms`);
  }
}

/** Copies of `bytes` with one byte changed (xor a random non-zero value), at every position. */
function flips(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (b, i) => {
    const copy = bytes.slice();
    copy[i] = b ^ rng.range(1, 255);
    return copy;
  });
}

/** Characters that matter to JSON, and some that do not belong in it. */
const JSON_CHARS = [...'"{}[],:\\ 0-9eE.+-_aAzZ/=\u0000\u00e9\ud83d'];

/** Copies of `text` with one character replaced, at every position. */
function charFlips(rng: Rng, text: string): string[] {
  return Array.from(
    text,
    (_, i) => text.slice(0, i) + rng.pick(JSON_CHARS) + text.slice(i + 1),
  );
}

function b64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

function pem(label: string, der: Uint8Array): string {
  const body = b64(der).match(/.{1,64}/g)?.join("\n") ?? "";
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function pemBody(text: string): Uint8Array {
  const body = text.split("\n").filter((l) => l && !l.startsWith("-----"))
    .join("");
  return Uint8Array.fromBase64(body);
}

function report(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

report(`parser fuzz seed ${SEED} (UDPJWT_FUZZ_SEED)`);

// ---------------------------------------------------------------------------
// JWK and JWK Set

const JWK_SEEDS = [
  "vectors21/keys_pub/pss256.jwk",
  "vectors21/keys_pub/pss512.jwk",
  "vectors21/keys_pub/rs384.jwk",
  "vectors21/keys_pub/rotation.jwks",
  "more_keys/ed25519.jwk",
  "more_keys/p384.jwk",
  "more_keys/p521.jwk",
  "more_keys/rsa-ps256.jwk",
  "more_keys/rotation.jwks",
];

Deno.test("parseKeyFile() refuses every truncation of the tools' JWK and JWK Set files with a SyntaxError", async () => {
  let count = 0;
  for (const seed of JWK_SEEDS) {
    const text = read(seed).trim();
    assert.equal(await clean(seed, () => parseKeyFile(seed, text)), "ok");
    for (let n = 0; n < text.length; n++) {
      const cut = text.slice(0, n);
      assert.equal(
        await clean(`${seed} cut at ${n}`, () => parseKeyFile(seed, cut)),
        "refused",
      );
      count++;
    }
  }
  assert.ok(count > 3000, `${count} truncations`);
});

Deno.test("keyFromText() loads or refuses with a SyntaxError every one-character change of the JWK files (every backend)", async () => {
  const rng = new Rng(SEED);
  const outcomes = { ok: 0, refused: 0 };
  for (const seed of JWK_SEEDS) {
    const variants = charFlips(rng, read(seed).trim());
    for (const [i, text] of variants.entries()) {
      const what = `${seed} with character ${i} changed`;
      outcomes[await clean(what, () => parseKeyFile(seed, text))]++;
      // The whole load path for a sample: WebCrypto and OpenSSL imports.
      if (i % 8 !== 0) continue;
      for (const backend of BACKENDS) {
        await clean(
          `${what} (${backend.name})`,
          () => keyFromText(seed, text, { backend }),
        );
      }
    }
  }
  assert.ok(outcomes.refused > 1000, JSON.stringify(outcomes));
});

/** Odd values for each member of a JWK, as JSON texts. */
const ODD_VALUES = [
  "null",
  "true",
  "0",
  "-1",
  "1e400",
  '""',
  '"A"',
  '"AA=="',
  '"AQAB"',
  '"%%%"',
  '"\\u0000"',
  "[]",
  '["verify"]',
  "{}",
  '{"__proto__":{"d":"AA"}}',
  "[".repeat(50_000) + "]".repeat(50_000),
  JSON.stringify("A".repeat(4096)),
  JSON.stringify("_".repeat(70_000)),
];

Deno.test("keyFromText() loads or refuses with a SyntaxError a JWK whose members are odd, missing or added (every backend)", async () => {
  const outcomes = { ok: 0, refused: 0 };
  for (const seed of JWK_SEEDS.filter((s) => s.endsWith(".jwk"))) {
    const jwk = JSON.parse(read(seed)) as Record<string, unknown>;
    const members = [
      ...Object.keys(jwk),
      "kid",
      "alg",
      "use",
      "key_ops",
      "d",
      "crv",
    ];
    for (const member of new Set(members)) {
      const { [member]: _, ...without } = jwk;
      const texts = [
        JSON.stringify(without),
        ...ODD_VALUES.map((v) =>
          `{${
            Object.entries(without).map(([k, x]) =>
              `${JSON.stringify(k)}:${JSON.stringify(x)}`
            ).join(",")
          },${JSON.stringify(member)}:${v}}`
        ),
      ];
      for (const [i, text] of texts.entries()) {
        for (const backend of BACKENDS) {
          outcomes[
            await clean(
              `${seed} with "${member}" ${
                i === 0 ? "missing" : `= ${ODD_VALUES[i - 1]!.slice(0, 20)}`
              } (${backend.name})`,
              () => keyFromText(seed, text, { backend }),
            )
          ]++;
        }
      }
    }
  }
  assert.ok(outcomes.refused > 500, JSON.stringify(outcomes));
});

Deno.test("parseKeyFile() refuses odd JWK Sets with a SyntaxError", async () => {
  const set = JSON.parse(read("vectors21/keys_pub/rotation.jwks")) as {
    keys: Record<string, unknown>[];
  };
  const [a, b] = set.keys as [Record<string, unknown>, Record<string, unknown>];
  const odd: unknown[] = [
    {},
    { keys: null },
    { keys: {} },
    { keys: [] },
    { keys: [null] },
    { keys: [[a]] },
    { keys: [a, a] },
    { keys: [a, { ...b, kid: undefined }] },
    { keys: Array.from({ length: 9 }, (_, i) => ({ ...a, kid: `k${i}` })) },
    { keys: Array.from({ length: 100_000 }, () => 0) },
    { keys: [a, { ...b, kid: 7 }] },
    { keys: [a, { ...b, d: b.x }] },
    { keys: [a, { ...b, alg: "ES256" }] },
    [a],
    a,
    "keys",
  ];
  for (const value of odd) {
    const text = JSON.stringify(value);
    assert.equal(
      await clean(text.slice(0, 60), () => parseKeyFile("g.jwks", text)),
      "refused",
      text.slice(0, 60),
    );
  }
});

// ---------------------------------------------------------------------------
// OpenSSH private keys

const PASSPHRASE = read("private_keys/passphrase.txt").split("\n")[0]!;
const OPENSSH_SEEDS: [file: string, encrypted: boolean][] = [
  ["private_keys/id_ed25519", false],
  ["private_keys/id_ecdsa256", false],
  ["private_keys/id_ecdsa384", false],
  ["private_keys/id_rsa", false],
  ["private_keys/id_ed25519_pass", true],
  ["private_keys/id_ecdsa521_pass", true],
  ["private_keys/id_rsa_pass", true],
  ["vectors21/private/edssh.key", false],
  ["vectors21/private/p384ssh.key", false],
  ["vectors21/private/p521rfc.key", false],
];
const PRIVATE_ERRORS = [SyntaxError, PassphraseError];
const none: PassphraseSource = () => Promise.resolve(undefined);
const right: PassphraseSource = () => Promise.resolve(PASSPHRASE);

Deno.test("parseOpenSshPrivateKey() refuses every truncation of ssh-keygen's keys with a SyntaxError", async () => {
  let count = 0;
  for (const [seed, encrypted] of OPENSSH_SEEDS) {
    const der = pemBody(read(seed));
    // The whole key opens (a protected one only with its passphrase).
    assert.equal(
      await clean(seed, () => parseOpenSshPrivateKey(der, right)),
      "ok",
    );
    for (let n = 0; n < der.length; n++) {
      // The private section comes last: no truncation reaches the KDF.
      assert.equal(
        await clean(
          `${seed} cut at ${n}`,
          () => parseOpenSshPrivateKey(der.subarray(0, n), right),
        ),
        "refused",
      );
      count++;
    }
    if (encrypted) continue;
    const text = read(seed).trim();
    for (let n = 0; n < text.length; n += 7) {
      const cut = text.slice(0, n);
      assert.equal(
        await clean(`${seed} text cut at ${n}`, () => parsePrivateKey(cut)),
        "refused",
      );
    }
  }
  assert.ok(count > 3000, `${count} truncations`);
});

Deno.test("parseOpenSshPrivateKey() opens or refuses cleanly ssh-keygen's keys with any one byte changed", async () => {
  const rng = new Rng(SEED ^ 0x5eed);
  const outcomes = { ok: 0, refused: 0 };
  for (const [seed, encrypted] of OPENSSH_SEEDS) {
    const der = pemBody(read(seed));
    for (const [i, variant] of flips(rng, der).entries()) {
      // No passphrase for protected keys: bcrypt_pbkdf takes a fifth of a
      // second, and a changed rounds count could ask for far more.
      outcomes[
        await clean(
          `${seed} with byte ${i} changed`,
          () =>
            parsePrivateKey(pem("OPENSSH PRIVATE KEY", variant), {
              passphrase: none,
            }),
          PRIVATE_ERRORS,
        )
      ]++;
    }
    if (!encrypted) continue;
    // A few changes in the encrypted section, with the right passphrase.
    for (let k = 0; k < 2; k++) {
      const variant = der.slice();
      const at = der.length - 1 - rng.int(64);
      variant[at] = variant[at]! ^ rng.range(1, 255);
      await clean(
        `${seed} with encrypted byte ${at} changed`,
        () =>
          parsePrivateKey(pem("OPENSSH PRIVATE KEY", variant), {
            passphrase: right,
          }),
        PRIVATE_ERRORS,
      );
    }
  }
  assert.ok(outcomes.refused > 1000, JSON.stringify(outcomes));
});

Deno.test("parseOpenSshPrivateKey() refuses an RSA key whose primes are 0 or 1 with a SyntaxError (found by fuzzing: it threw a RangeError)", async () => {
  const n = new Uint8Array(128).fill(0x7f);
  const e = new Uint8Array([1, 0, 1]);
  for (const prime of [[0], [1]]) {
    const p = new Uint8Array(prime);
    const section = new Uint8Array([
      ...[0, 0, 0, 7, 0, 0, 0, 7],
      ...encodeWire([
        "ssh-rsa",
        { mpint: n },
        { mpint: e },
        { mpint: n },
        { mpint: new Uint8Array([1]) },
        { mpint: p },
        { mpint: p },
        "crafted@lab",
      ]),
    ]);
    const blob = new Uint8Array([
      ...new TextEncoder().encode("openssh-key-v1\0"),
      ...encodeWire(["none", "none", new Uint8Array()]),
      ...[0, 0, 0, 1],
      ...encodeWire([
        encodeWire(["ssh-rsa", { mpint: e }, { mpint: n }]),
        section,
      ]),
    ]);
    await assert.rejects(
      parseOpenSshPrivateKey(blob, none),
      (err: unknown) =>
        err instanceof SyntaxError && /primes are not primes/.test(err.message),
    );
    await assert.rejects(
      parsePrivateKey(pem("OPENSSH PRIVATE KEY", blob)),
      SyntaxError,
    );
  }
});

// ---------------------------------------------------------------------------
// OpenSSH public keys of the new types, and PEM SPKI of the new curves

const SSH_SEEDS = [
  "vectors21/keys_pub/edssh.pub",
  "vectors21/keys_pub/p384ssh.ssh",
  "vectors21/keys_pub/p521rfc.ssh",
  "more_keys/ed25519.rfc4716.ssh",
  "more_keys/p384.rfc4716.ssh",
  "more_keys/p521.ssh",
];

/** The one-line and RFC 4716 forms of a (possibly damaged) key blob. */
function sshForms(type: string, blob: Uint8Array): string[] {
  const data = b64(blob);
  return [
    `${type} ${data} fuzz@lab\n`,
    `---- BEGIN SSH2 PUBLIC KEY ----\nComment: "fuzz"\n${
      data.match(/.{1,70}/g)?.join("\n") ?? ""
    }\n---- END SSH2 PUBLIC KEY ----\n`,
  ];
}

Deno.test("parsePublicKey() refuses every truncation of the ssh-ed25519 and ecdsa-sha2-nistp384/521 blobs with a SyntaxError", async () => {
  let count = 0;
  for (const seed of SSH_SEEDS) {
    const key = parsePublicKey(read(seed));
    const type = sshType(key);
    for (let n = 0; n < key.sshBlob.length; n++) {
      for (const text of sshForms(type, key.sshBlob.subarray(0, n))) {
        assert.equal(
          await clean(`${seed} blob cut at ${n}`, () => parsePublicKey(text)),
          "refused",
        );
        count++;
      }
    }
    // And the file's text itself, cut anywhere inside its key data.
    const text = read(seed).trim();
    for (let n = 0; n < text.length; n++) {
      await clean(
        `${seed} text cut at ${n}`,
        () => parsePublicKey(text.slice(0, n)),
      );
    }
  }
  assert.ok(count > 1000, `${count} truncations`);
});

Deno.test("keyFromText() loads or refuses with a SyntaxError the new SSH key types with any one byte changed (every backend)", async () => {
  const rng = new Rng(SEED ^ 0x55);
  const outcomes = { ok: 0, refused: 0 };
  for (const seed of SSH_SEEDS) {
    const key = parsePublicKey(read(seed));
    const type = sshType(key);
    for (const [i, variant] of flips(rng, key.sshBlob).entries()) {
      const [line] = sshForms(type, variant);
      for (const backend of BACKENDS) {
        outcomes[
          await clean(
            `${seed} with blob byte ${i} changed (${backend.name})`,
            () => keyFromText("g.ssh", line!, { backend }),
          )
        ]++;
      }
    }
  }
  assert.ok(outcomes.refused > 500, JSON.stringify(outcomes));
});

const SPKI_SEEDS = [
  "vectors21/keys_pub/edspki.pem",
  "more_keys/ed25519.spki.pem",
  "more_keys/p384.spki.pem",
  "more_keys/p521.spki.pem",
  "more_keys/ed448.spki.pem",
];

Deno.test("parsePublicKey() refuses every truncation of Ed25519, P-384 and P-521 SPKI with a SyntaxError", async () => {
  let count = 0;
  for (const seed of SPKI_SEEDS) {
    const text = read(seed);
    const der = pemBody(text);
    for (let n = 0; n < der.length; n++) {
      assert.equal(
        await clean(
          `${seed} DER cut at ${n}`,
          () => parsePublicKey(pem("PUBLIC KEY", der.subarray(0, n))),
        ),
        "refused",
      );
      count++;
    }
    const trimmed = text.trim();
    for (let n = 0; n < trimmed.length; n++) {
      assert.equal(
        await clean(
          `${seed} text cut at ${n}`,
          () => parsePublicKey(trimmed.slice(0, n)),
        ),
        "refused",
      );
    }
  }
  assert.ok(count > 400, `${count} truncations`);
});

Deno.test("keyFromText() loads or refuses with a SyntaxError SPKI of the new curves with any one byte changed (every backend)", async () => {
  const rng = new Rng(SEED ^ 0x5b1);
  const outcomes = { ok: 0, refused: 0 };
  for (const seed of SPKI_SEEDS) {
    const der = pemBody(read(seed));
    for (const [i, variant] of flips(rng, der).entries()) {
      for (const backend of BACKENDS) {
        outcomes[
          await clean(
            `${seed} with DER byte ${i} changed (${backend.name})`,
            () => keyFromText("g.pem", pem("PUBLIC KEY", variant), { backend }),
          )
        ]++;
      }
    }
  }
  assert.ok(outcomes.refused > 300, JSON.stringify(outcomes));
});
