/**
 * Tests of lib/keys/public_key.ts on broken PEM and DER input: bad PEM
 * framing, private keys given as public ones, unsupported algorithms in
 * SubjectPublicKeyInfo, DER cut at every length or with garbled lengths, and
 * a padded modulus read at its real size. Every refusal is a SyntaxError
 * saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parsePublicKey } from "../../lib/keys/public_key.ts";
import { TAG } from "../../lib/keys/_der.ts";
import {
  concat,
  der,
  elements,
  fixture,
  P256_CERT,
  P256_SPKI,
  pem,
  pemDer,
  RSA_BLOB,
  RSA_CERT,
  RSA_LINE,
  RSA_PKCS1,
  RSA_SPKI,
  throwsSyntax,
} from "./_fixtures.ts";

Deno.test("parsePublicKey() refuses broken PEM with a message saying why", async (t) => {
  const spki = fixture("rsa2048.spki.pem");
  const cases: [string, string, RegExp][] = [
    [
      "missing END line",
      spki.replace(/-----END PUBLIC KEY-----\s*$/, ""),
      /^PEM block has no matching END line$/,
    ],
    [
      "END label that does not match",
      spki.replace("END PUBLIC KEY", "END RSA PUBLIC KEY"),
      /PEM block has no matching END line/,
    ],
    [
      "garbage base64",
      pem("PUBLIC KEY", new Uint8Array(4)).replace("AAAAAA==", "A*A&A"),
      /the PEM PUBLIC KEY body is not valid base64/,
    ],
    [
      "base64 that is not DER",
      "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
      /expected SubjectPublicKeyInfo \(DER tag 0x30\), found tag 0x6e/,
    ],
    [
      "empty body",
      "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
      /truncated SubjectPublicKeyInfo/,
    ],
    [
      "unknown label",
      pem("X509 CRL", RSA_SPKI),
      /^PEM type "X509 CRL" is not a public key$/,
    ],
    [
      "an SPKI labelled RSA PUBLIC KEY",
      pem("RSA PUBLIC KEY", RSA_SPKI),
      /expected RSA modulus \(DER tag 0x2\), found tag 0x30/,
    ],
    [
      "a PKCS#1 key labelled PUBLIC KEY",
      pem("PUBLIC KEY", RSA_PKCS1),
      /expected AlgorithmIdentifier \(DER tag 0x30\), found tag 0x2/,
    ],
    [
      "trailing bytes after the SPKI",
      pem("PUBLIC KEY", concat(RSA_SPKI, new Uint8Array([0, 0]))),
      /2 unexpected trailing bytes after SubjectPublicKeyInfo/,
    ],
    [
      "trailing bytes after PKCS#1",
      pem("RSA PUBLIC KEY", concat(RSA_PKCS1, new Uint8Array([5, 0]))),
      /2 unexpected trailing bytes after RSAPublicKey/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      throwsSyntax(() => parsePublicKey(text), message);
    });
  }
});

Deno.test("parsePublicKey() explains that a private key is not a public key", async (t) => {
  const text = fixture("private.pem");
  assert.match(text, /^-----BEGIN PRIVATE KEY-----/);
  const body = pemDer(text);
  for (
    const label of [
      "PRIVATE KEY",
      "EC PRIVATE KEY",
      "RSA PRIVATE KEY",
      "OPENSSH PRIVATE KEY",
      "ENCRYPTED PRIVATE KEY",
    ]
  ) {
    await t.step(label, () => {
      const input = label === "PRIVATE KEY" ? text : pem(label, body);
      throwsSyntax(
        () => parsePublicKey(input),
        new RegExp(
          `^this is a ${label}, not a public key: export the public half \\(openssl pkey -pubout\\)$`,
        ),
      );
    });
  }
});

Deno.test("parsePublicKey() refuses unsupported key algorithms in SPKI, naming them", async (t) => {
  await t.step("Ed448", () => {
    throwsSyntax(
      () =>
        parsePublicKey(Deno.readTextFileSync(
          new URL("../testdata/more_keys/ed448.spki.pem", import.meta.url),
        )),
      /^key type Ed448 is not supported \(use RSA, EC P-256\/P-384\/P-521 or Ed25519\)$/,
    );
  });
  const [algId, bits] = elements(elements(P256_SPKI)[0]!.contents);
  const [ecOid] = elements(algId!.contents);
  await t.step("an unnamed curve by its OID", () => {
    // 1.2.840.10045.3.1.7 (P-256) with the last arc changed to 8.
    const curve = Uint8Array.fromHex("06082a8648ce3d030108");
    const spki = der(
      TAG.SEQUENCE,
      der(TAG.SEQUENCE, ecOid!.all, curve),
      bits!.all,
    );
    throwsSyntax(
      () => parsePublicKey(pem("PUBLIC KEY", spki)),
      /EC curve 1\.2\.840\.10045\.3\.1\.8 is not supported/,
    );
  });
  await t.step("an EC key without a curve", () => {
    const spki = der(
      TAG.SEQUENCE,
      der(TAG.SEQUENCE, ecOid!.all, der(TAG.NULL)),
      bits!.all,
    );
    throwsSyntax(
      () => parsePublicKey(pem("PUBLIC KEY", spki)),
      /EC curve \(none\) is not supported/,
    );
  });
  await t.step("an unknown algorithm by its OID", () => {
    const oid = der(TAG.OID, new Uint8Array([0x2a, 0x03, 0x04]));
    const spki = der(TAG.SEQUENCE, der(TAG.SEQUENCE, oid), bits!.all);
    throwsSyntax(
      () => parsePublicKey(pem("PUBLIC KEY", spki)),
      /^key type OID 1\.2\.3\.4 is not supported/,
    );
  });
  await t.step("a BIT STRING with unused bits", () => {
    const odd = bits!.contents.slice();
    odd[0] = 3;
    const spki = der(TAG.SEQUENCE, algId!.all, der(TAG.BIT_STRING, odd));
    throwsSyntax(
      () => parsePublicKey(pem("PUBLIC KEY", spki)),
      /subjectPublicKey has unused bits/,
    );
  });
});

Deno.test("parsePublicKey() throws a SyntaxError for DER cut at every length", async (t) => {
  const cases: [string, string, Uint8Array][] = [
    ["RSA SPKI", "PUBLIC KEY", RSA_SPKI],
    ["P-256 SPKI", "PUBLIC KEY", P256_SPKI],
    ["PKCS#1", "RSA PUBLIC KEY", RSA_PKCS1],
    ["RSA certificate", "CERTIFICATE", RSA_CERT],
    ["P-256 certificate", "CERTIFICATE", P256_CERT],
  ];
  for (const [name, label, bytes] of cases) {
    await t.step(name, () => {
      assert.doesNotThrow(() => parsePublicKey(pem(label, bytes)));
      for (let len = 0; len < bytes.length; len++) {
        throwsSyntax(
          () => parsePublicKey(pem(label, bytes.subarray(0, len))),
          undefined,
          `${name} cut at ${len} of ${bytes.length}`,
        );
      }
    });
  }
  // Cuts inside a structure whose enclosing lengths are fixed up, so that
  // the inner readers, not the outer length check, meet the short input.
  await t.step("SPKI contents cut, outer SEQUENCE length adjusted", () => {
    for (const spki of [RSA_SPKI, P256_SPKI]) {
      const contents = elements(spki)[0]!.contents;
      for (let len = 0; len < contents.length; len++) {
        throwsSyntax(
          () =>
            parsePublicKey(
              pem("PUBLIC KEY", der(TAG.SEQUENCE, contents.subarray(0, len))),
            ),
          undefined,
          `SPKI contents cut at ${len}`,
        );
      }
    }
  });
  await t.step("subjectPublicKey cut, every length adjusted", () => {
    for (const spki of [RSA_SPKI, P256_SPKI]) {
      const [algId, bits] = elements(elements(spki)[0]!.contents);
      for (let len = 0; len < bits!.contents.length; len++) {
        const cut = der(
          TAG.SEQUENCE,
          algId!.all,
          der(TAG.BIT_STRING, bits!.contents.subarray(0, len)),
        );
        throwsSyntax(
          () => parsePublicKey(pem("PUBLIC KEY", cut)),
          undefined,
          `subjectPublicKey cut at ${len}`,
        );
      }
    }
  });
  await t.step("RSAPublicKey contents cut, SEQUENCE length adjusted", () => {
    const contents = elements(RSA_PKCS1)[0]!.contents;
    for (let len = 0; len < contents.length; len++) {
      throwsSyntax(
        () =>
          parsePublicKey(
            pem("RSA PUBLIC KEY", der(TAG.SEQUENCE, contents.subarray(0, len))),
          ),
        /truncated|not a positive integer/,
        `RSAPublicKey contents cut at ${len}`,
      );
    }
  });
});

Deno.test("parsePublicKey() refuses garbled DER lengths", async (t) => {
  const contents = elements(RSA_SPKI)[0]!.contents;
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "indefinite length",
      concat(new Uint8Array([0x30, 0x80]), contents, new Uint8Array([0, 0])),
      /unsupported length encoding in SubjectPublicKeyInfo/,
    ],
    [
      "four length bytes",
      concat(new Uint8Array([0x30, 0x84, 0, 0, 1, 0x22]), contents),
      /unsupported length encoding in SubjectPublicKeyInfo/,
    ],
    [
      "a length far past the end",
      concat(new Uint8Array([0x30, 0x83, 0xff, 0xff, 0xff]), contents),
      /truncated SubjectPublicKeyInfo/,
    ],
    [
      "a length byte missing",
      new Uint8Array([0x30, 0x82, 0x01]),
      /truncated length of SubjectPublicKeyInfo/,
    ],
    [
      "a length one short",
      concat(new Uint8Array([0x30, 0x82, 0x01, 0x21]), contents),
      /trailing bytes after SubjectPublicKeyInfo|truncated/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    await t.step(name, () => {
      throwsSyntax(() => parsePublicKey(pem("PUBLIC KEY", bytes)), message);
    });
  }
  await t.step("a negative modulus", () => {
    const [n, e] = elements(elements(RSA_PKCS1)[0]!.contents);
    const negative = der(TAG.INTEGER, n!.contents.subarray(1));
    throwsSyntax(
      () =>
        parsePublicKey(
          pem("RSA PUBLIC KEY", der(TAG.SEQUENCE, negative, e!.all)),
        ),
      /RSA modulus is not a positive integer/,
    );
  });
  await t.step("an empty exponent", () => {
    const [n] = elements(elements(RSA_PKCS1)[0]!.contents);
    throwsSyntax(
      () =>
        parsePublicKey(
          pem("RSA PUBLIC KEY", der(TAG.SEQUENCE, n!.all, der(TAG.INTEGER))),
        ),
      /RSA exponent is not a positive integer/,
    );
  });
});

Deno.test("parsePublicKey() reads a modulus with redundant leading zero bytes at its real size", () => {
  // BER-style padding seen in hand-made keys: the value, not the encoding,
  // decides the size and the JWK.
  const [n, e] = elements(elements(RSA_PKCS1)[0]!.contents);
  const padded = der(TAG.INTEGER, new Uint8Array([0, 0]), n!.contents);
  const info = parsePublicKey(
    pem("RSA PUBLIC KEY", der(TAG.SEQUENCE, padded, e!.all)),
  );
  assert.equal(info.bits, 2048);
  assert.deepEqual(info.jwk, parsePublicKey(RSA_LINE).jwk);
  assert.deepEqual(info.sshBlob, RSA_BLOB);
});
