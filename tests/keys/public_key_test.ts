/**
 * Tests of lib/keys/public_key.ts on the fixtures: every format of the RSA
 * and P-256 keys parses to what ssh-keygen and openssl report, imports into
 * WebCrypto and verifies; text that is not a key is refused; and fuzzed
 * input only ever parses to a valid key or throws a SyntaxError. The SSH and
 * PEM/DER refusals are in public_key_ssh_test.ts and public_key_pem_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { seededRandom } from "../../lib/client/retry.ts";
import {
  describeKey,
  fingerprint,
  importPublicKey,
  type KeyFormat,
  parsePublicKey,
  parseSshBlob,
  type PublicKeyInfo,
} from "../../lib/keys/public_key.ts";
import { encodeWire } from "../../lib/keys/_ssh_wire.ts";
import {
  concat,
  expected,
  fixture,
  fromB64url,
  hex,
  MESSAGE,
  P256,
  P256_BLOB,
  P256_CERT,
  P256_SPKI,
  pem,
  RSA,
  RSA_BLOB,
  RSA_CERT,
  RSA_LINE,
  RSA_PKCS1,
  RSA_SPKI,
  sshLine,
  throwsSyntax,
  u32,
} from "./_fixtures.ts";

Deno.test("expected.json lists every key format for the RSA and P-256 fixtures", () => {
  // Guards the tables below against a generate.sh that silently lost a file.
  assert.deepEqual(Object.keys(RSA.files).sort(), [
    "rsa2048.crt.pem",
    "rsa2048.nocomment.ssh",
    "rsa2048.pkcs1.pem",
    "rsa2048.rfc4716.ssh",
    "rsa2048.spki.pem",
    "rsa2048.ssh",
  ]);
  assert.deepEqual(Object.keys(P256.files).sort(), [
    "p256.crt.pem",
    "p256.rfc4716.ssh",
    "p256.spki.pem",
    "p256.ssh",
  ]);
  for (const key of Object.values(expected.keys)) {
    const prints = new Set(Object.values(key.files).map((f) => f.fingerprint));
    assert.equal(prints.size, 1, "ssh-keygen saw different keys in one set");
    assert.match([...prints][0]!, /^SHA256:[A-Za-z0-9+/]{43}$/);
  }
});

Deno.test("parsePublicKey() reads every fixture with the format, type, algorithm and size the tools report", async (t) => {
  for (const [name, key] of Object.entries(expected.keys)) {
    for (const [file, { format }] of Object.entries(key.files)) {
      await t.step(`${name}: ${file}`, () => {
        const info = parsePublicKey(fixture(file));
        assert.equal(info.format, format);
        assert.equal(info.type, key.type);
        assert.equal(info.alg, key.alg);
        assert.equal(info.bits, key.bits);
        assert.equal(info.curve, key.curve);
        assert.equal(describeKey(info), key.description);
        if (key.type === "RSA") {
          assert.deepEqual(Object.keys(info.jwk).sort(), ["e", "kty", "n"]);
          assert.equal(info.jwk.kty, "RSA");
          assert.equal(hex(fromB64url(info.jwk.n)), key.modulusHex);
          assert.equal(
            Number(BigInt(`0x${hex(fromB64url(info.jwk.e))}`)),
            key.exponent,
          );
        } else {
          assert.deepEqual(Object.keys(info.jwk).sort(), [
            "crv",
            "kty",
            "x",
            "y",
          ]);
          assert.equal(info.jwk.kty, "EC");
          assert.equal(info.jwk.crv, "P-256");
          const x = fromB64url(info.jwk.x);
          const y = fromB64url(info.jwk.y);
          assert.equal(x.length, 32);
          assert.equal(y.length, 32);
          assert.equal(`04${hex(x)}${hex(y)}`, key.pointHex);
        }
      });
    }
  }
});

Deno.test("fingerprint() equals what ssh-keygen -l prints for every fixture", async (t) => {
  for (const key of Object.values(expected.keys)) {
    for (const [file, { fingerprint: want }] of Object.entries(key.files)) {
      await t.step(file, async () => {
        assert.equal(await fingerprint(parsePublicKey(fixture(file))), want);
      });
    }
  }
});

Deno.test("parsePublicKey() gives one key the same JWK and SSH blob in every format", async (t) => {
  for (const [name, key] of Object.entries(expected.keys)) {
    await t.step(name, () => {
      const infos = Object.keys(key.files).map((f) =>
        parsePublicKey(fixture(f))
      );
      assert.ok(infos.length >= 2);
      for (const info of infos.slice(1)) {
        assert.deepEqual(info.jwk, infos[0]!.jwk);
        assert.deepEqual(info.sshBlob, infos[0]!.sshBlob);
      }
    });
  }
  await t.step("the SSH blob is byte for byte the one ssh-keygen wrote", () => {
    assert.deepEqual(
      parsePublicKey(fixture("rsa2048.spki.pem")).sshBlob,
      RSA_BLOB,
    );
    assert.deepEqual(
      parsePublicKey(fixture("p256.crt.pem")).sshBlob,
      P256_BLOB,
    );
  });
  await t.step("different keys differ", async () => {
    const a = parsePublicKey(fixture("rsa2048.ssh"));
    const b = parsePublicKey(fixture("rsa1024.ssh"));
    assert.notDeepEqual(a.jwk, b.jwk);
    assert.notEqual(await fingerprint(a), await fingerprint(b));
  });
});

Deno.test("importPublicKey() yields a key that verifies a signature made by openssl", async (t) => {
  for (const key of [RSA, P256]) {
    const signature = Uint8Array.fromHex(key.signatureHex!);
    for (const file of Object.keys(key.files)) {
      await t.step(file, async () => {
        const info = parsePublicKey(fixture(file));
        const cryptoKey = await importPublicKey(info);
        assert.equal(cryptoKey.type, "public");
        assert.equal(cryptoKey.extractable, true, "public: exportable as SPKI");
        assert.deepEqual(cryptoKey.usages, ["verify"]);
        const algorithm = info.type === "RSA"
          ? { name: "RSASSA-PKCS1-v1_5" }
          : { name: "ECDSA", hash: "SHA-256" };
        assert.equal(cryptoKey.algorithm.name, algorithm.name);
        assert.equal(
          await crypto.subtle.verify(
            algorithm,
            cryptoKey,
            signature,
            MESSAGE,
          ),
          true,
        );
        const tampered = MESSAGE.slice();
        tampered[0]! ^= 1;
        assert.equal(
          await crypto.subtle.verify(
            algorithm,
            cryptoKey,
            signature,
            tampered,
          ),
          false,
        );
      });
    }
  }
});

Deno.test("importPublicKey() rejects keys that parse but cannot verify anything", async (t) => {
  const point = new Uint8Array(65).fill(1);
  point[0] = 4;
  const n = fromB64url(parsePublicKey(RSA_LINE).jwk.n);
  const evenN = n.slice();
  evenN[evenN.length - 1]! &= 0xfe;
  const cases: [string, Uint8Array][] = [
    [
      "a P-256 point off the curve",
      encodeWire(["ecdsa-sha2-nistp256", "nistp256", point]),
    ],
    [
      "an RSA exponent of 1",
      encodeWire(["ssh-rsa", { mpint: new Uint8Array([1]) }, { mpint: n }]),
    ],
    [
      "an even RSA modulus",
      encodeWire(["ssh-rsa", { mpint: new Uint8Array([1, 0, 1]) }, {
        mpint: evenN,
      }]),
    ],
  ];
  for (const [name, blob] of cases) {
    await t.step(name, async () => {
      // The parser only reads the structure; WebCrypto judges the numbers.
      const info = parseSshBlob(blob, "OpenSSH");
      await assert.rejects(importPublicKey(info));
    });
  }
});

Deno.test("describeKey() names the type and size", () => {
  assert.equal(describeKey(parsePublicKey(fixture("rsa1024.ssh"))), "RSA 1024");
  assert.equal(describeKey(parsePublicKey(fixture("p256.ssh"))), "EC P-256");
});

Deno.test("parsePublicKey() tolerates whitespace, CRLF line endings and comments around a key", async (t) => {
  const cases: [string, string, string][] = [
    ["PEM with CRLF", "rsa2048.spki.pem", "crlf"],
    ["PKCS#1 with CRLF", "rsa2048.pkcs1.pem", "crlf"],
    ["certificate with CRLF", "p256.crt.pem", "crlf"],
    ["RFC 4716 with CRLF", "p256.rfc4716.ssh", "crlf"],
    ["OpenSSH line with CRLF", "p256.ssh", "crlf"],
    ["PEM after blank lines", "p256.spki.pem", "blank"],
    ["RFC 4716 after blank lines", "rsa2048.rfc4716.ssh", "blank"],
    ["OpenSSH line after blank lines", "rsa2048.ssh", "blank"],
    ["OpenSSH line after # comments", "rsa2048.ssh", "comment"],
    ["OpenSSH line with tabs", "p256.ssh", "tabs"],
    ["PEM body with one long line", "rsa2048.spki.pem", "oneline"],
    ["RFC 4716 indented", "p256.rfc4716.ssh", "indent"],
  ];
  for (const [name, file, how] of cases) {
    await t.step(name, async () => {
      const text = fixture(file);
      const variant = how === "crlf"
        ? text.replace(/\n/g, "\r\n")
        : how === "blank"
        ? `\n \n\t\n${text}\n\n`
        : how === "comment"
        ? `# the lab key\n\n#another: comment\n${text}`
        : how === "tabs"
        ? text.replace(/ /g, "\t")
        : how === "oneline"
        ? text.replace(/(?<!-----)\n(?!-----END)/g, "")
        : text.replace(/^/gm, "  ");
      assert.notEqual(variant, text);
      const info = parsePublicKey(variant);
      const key = Object.values(expected.keys).find((k) => file in k.files)!;
      assert.equal(await fingerprint(info), key.files[file]!.fingerprint);
    });
  }
});

Deno.test("parsePublicKey() refuses text that is not a key, saying what was expected", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "empty",
      "",
      /not a public key: expected PEM, an OpenSSH line or RFC 4716/,
    ],
    ["whitespace", " \n\t\r\n", /not a public key/],
    ["comments only", "# nothing here\n#\n", /not a public key/],
    ["a type without data", "ssh-rsa", /not a public key/],
    [
      "garbage base64 in a line",
      "ssh-rsa AAAA!!!! x",
      /OpenSSH key data is not valid base64/,
    ],
    [
      "a JSON web key",
      '{"kty":"RSA","n":"AQAB","e":"AQAB"}',
      /not a public key/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      throwsSyntax(() => parsePublicKey(text), message);
    });
  }
});

const FORMATS: readonly KeyFormat[] = [
  "PEM SPKI",
  "PEM PKCS#1",
  "PEM certificate",
  "OpenSSH",
  "RFC 4716",
];

/** Checks a key that parsed: consistent fields, a JWK WebCrypto could take. */
function assertValidKey(info: PublicKeyInfo, context: string): void {
  assert.ok(FORMATS.includes(info.format), context);
  if (info.type === "RSA") {
    assert.equal(info.alg, "RS256", context);
    assert.equal(info.curve, undefined, context);
    assert.equal(info.jwk.kty, "RSA", context);
    const n = fromB64url(info.jwk.n);
    const e = fromB64url(info.jwk.e);
    assert.ok(n.length > 0 && e.length > 0, context);
    const value = BigInt(`0x${hex(n)}`);
    assert.equal(
      info.bits,
      value === 0n ? 0 : value.toString(2).length,
      context,
    );
  } else if (info.type === "OKP") {
    assert.equal(info.alg, "EdDSA", context);
    assert.equal(info.curve, "Ed25519", context);
    assert.equal(info.jwk.crv, "Ed25519", context);
    assert.equal(fromB64url(info.jwk.x).length, 32, context);
  } else {
    assert.equal(info.type, "EC", context);
    const curves = {
      "P-256": ["ES256", 256, 32],
      "P-384": ["ES384", 384, 48],
      "P-521": ["ES512", 521, 66],
    } as const;
    const want = curves[info.curve as keyof typeof curves];
    assert.ok(want, context);
    assert.equal(info.alg, want[0], context);
    assert.equal(info.bits, want[1], context);
    assert.equal(info.jwk.crv, info.curve, context);
    assert.equal(fromB64url(info.jwk.x).length, want[2], context);
    assert.equal(fromB64url(info.jwk.y).length, want[2], context);
  }
  const again = parseSshBlob(info.sshBlob, "OpenSSH");
  assert.deepEqual(again.jwk, info.jwk, context);
}

Deno.test("parsePublicKey() only ever throws a SyntaxError or returns a valid key on fuzzed input", () => {
  const random = seededRandom(0x5eed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

  function mutateBytes(input: Uint8Array): Uint8Array {
    let b = input.slice();
    for (let k = 1 + int(3); k > 0; k--) {
      const at = int(b.length + 1);
      switch (int(6)) {
        case 0: // one random byte
          if (b.length > 0) b[Math.min(at, b.length - 1)] = int(256);
          break;
        case 1: // flip a bit
          if (b.length > 0) b[Math.min(at, b.length - 1)]! ^= 1 << int(8);
          break;
        case 2: // cut
          b = b.slice(0, at);
          break;
        case 3: // delete a range
          b = concat(b.subarray(0, at), b.subarray(at + 1 + int(8)));
          break;
        case 4: // insert random bytes
          b = concat(
            b.subarray(0, at),
            Uint8Array.from({ length: 1 + int(8) }, () => int(256)),
            b.subarray(at),
          );
          break;
        default: // overwrite four bytes with an interesting length
          if (b.length >= 4) {
            b.set(
              u32(
                pick([
                  0,
                  1,
                  0x7f,
                  0x80,
                  0x100,
                  16384,
                  16385,
                  0x7fffffff,
                  0xffffffff,
                ]),
              ),
              Math.min(at, b.length - 4),
            );
          }
      }
    }
    return b;
  }

  function mutateText(input: string): string {
    let s = input;
    const chars = 'AZaz09+/=-:\\ \n\r\t#"-----BEGIN END';
    for (let k = 1 + int(3); k > 0; k--) {
      const at = int(s.length + 1);
      switch (int(4)) {
        case 0:
          s = s.slice(0, at) + pick([...chars]) + s.slice(at + 1);
          break;
        case 1:
          s = s.slice(0, at) + s.slice(at + 1 + int(20));
          break;
        case 2:
          s = s.slice(0, at) + pick([...chars]) + s.slice(at);
          break;
        default:
          s = s.slice(0, at);
      }
    }
    return s;
  }

  const rfc4716 = (blob: Uint8Array) =>
    `---- BEGIN SSH2 PUBLIC KEY ----\nComment: "fuzz"\n${
      (blob.toBase64().match(/.{1,70}/g) ?? []).join("\n")
    }\n---- END SSH2 PUBLIC KEY ----\n`;
  const binary: [(b: Uint8Array) => string, Uint8Array][] = [
    [(b) => sshLine("ssh-rsa", b), RSA_BLOB],
    [(b) => sshLine("ecdsa-sha2-nistp256", b), P256_BLOB],
    [rfc4716, RSA_BLOB],
    [rfc4716, P256_BLOB],
    [(b) => pem("PUBLIC KEY", b), RSA_SPKI],
    [(b) => pem("PUBLIC KEY", b), P256_SPKI],
    [(b) => pem("RSA PUBLIC KEY", b), RSA_PKCS1],
    [(b) => pem("CERTIFICATE", b), RSA_CERT],
    [(b) => pem("CERTIFICATE", b), P256_CERT],
  ];
  const texts = [
    ...Object.keys(RSA.files),
    ...Object.keys(P256.files),
    "ed25519.ssh",
    "p384.spki.pem",
    "private.pem",
  ].map(fixture);
  const prefixes = [
    "",
    "ssh-rsa ",
    "ecdsa-sha2-nistp256 ",
    "-----BEGIN PUBLIC KEY-----\n",
    "---- BEGIN SSH2 PUBLIC KEY ----\n",
  ];

  let parsed = 0;
  let refused = 0;
  const RUNS = 4000;
  for (let i = 0; i < RUNS; i++) {
    let input: string;
    const kind = int(10);
    if (kind < 6) {
      const [wrap, bytes] = pick(binary);
      input = wrap(mutateBytes(bytes));
    } else if (kind < 9) {
      input = mutateText(pick(texts));
    } else {
      input = pick(prefixes) +
        String.fromCharCode(
          ...Array.from({ length: int(200) }, () => int(128)),
        );
    }
    const context = `fuzz run ${i}: ${JSON.stringify(input.slice(0, 300))}`;
    let info: PublicKeyInfo;
    try {
      info = parsePublicKey(input);
    } catch (e) {
      assert.ok(
        e instanceof SyntaxError,
        `${context}: threw ${
          e instanceof Error ? `${e.name}: ${e.message}` : String(e)
        }`,
      );
      assert.notEqual(e.message, "", context);
      refused++;
      continue;
    }
    assertValidKey(info, context);
    parsed++;
  }
  // Both outcomes must occur, or the fuzzer is not reaching the parsers.
  assert.ok(parsed > RUNS / 50, `only ${parsed} fuzzed inputs parsed`);
  assert.ok(refused > RUNS / 2, `only ${refused} fuzzed inputs were refused`);
});
