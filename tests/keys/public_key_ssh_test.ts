/**
 * Tests of lib/keys/public_key.ts on broken OpenSSH input: SSH wire blobs
 * cut short, with garbled lengths or malformed values, unsupported SSH key
 * types, OpenSSH lines whose type does not match their data, and broken
 * RFC 4716 text. Every refusal is a SyntaxError saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parsePublicKey, parseSshBlob } from "../../lib/keys/public_key.ts";
import { encodeWire } from "../../lib/keys/_ssh_wire.ts";
import {
  concat,
  fixture,
  fromB64url,
  P256_BLOB,
  RSA_BLOB,
  RSA_LINE,
  sshBlob,
  sshLine,
  throwsSyntax,
  u32,
} from "./_fixtures.ts";

Deno.test("parseSshBlob() throws a SyntaxError for a blob cut at every length", async (t) => {
  for (
    const [name, blob] of [["ssh-rsa", RSA_BLOB], [
      "nistp256",
      P256_BLOB,
    ]] as const
  ) {
    await t.step(name, () => {
      for (let len = 0; len < blob.length; len++) {
        throwsSyntax(
          () => parseSshBlob(blob.subarray(0, len), "OpenSSH"),
          /truncated|not a positive integer|65-byte point/,
          `${name} cut at ${len} of ${blob.length}`,
        );
      }
      assert.equal(parseSshBlob(blob, "OpenSSH").format, "OpenSSH");
    });
    await t.step(`${name} as an OpenSSH line and RFC 4716`, () => {
      const type = name === "ssh-rsa" ? "ssh-rsa" : "ecdsa-sha2-nistp256";
      for (let len = 0; len < blob.length; len++) {
        const cut = blob.subarray(0, len);
        throwsSyntax(
          () => parsePublicKey(sshLine(type, cut)),
          undefined,
          `line cut at ${len}`,
        );
        throwsSyntax(
          () =>
            parsePublicKey(
              `---- BEGIN SSH2 PUBLIC KEY ----\n${cut.toBase64()}\n---- END SSH2 PUBLIC KEY ----`,
            ),
          undefined,
          `RFC 4716 cut at ${len}`,
        );
      }
    });
  }
});

Deno.test("parseSshBlob() refuses garbled length fields", async (t) => {
  // Offsets of the 4-byte length fields in each blob: type, then e/n or
  // curve/point.
  const offsets = (blob: Uint8Array): number[] => {
    const out = [];
    let pos = 0;
    while (pos < blob.length) {
      out.push(pos);
      pos += 4 + new DataView(blob.buffer, blob.byteOffset + pos).getUint32(0);
    }
    return out;
  };
  for (
    const [name, blob] of [["ssh-rsa", RSA_BLOB], [
      "nistp256",
      P256_BLOB,
    ]] as const
  ) {
    assert.equal(offsets(blob).length, 3);
    for (const at of offsets(blob)) {
      for (const value of [0xffffffff, 0x80000000, 0x7fffffff, 16385]) {
        await t.step(`${name}: length at ${at} set to ${value}`, () => {
          const bad = blob.slice();
          bad.set(u32(value), at);
          throwsSyntax(
            () => parseSshBlob(bad, "OpenSSH"),
            new RegExp(`claims ${value} bytes, more than any key has`),
          );
        });
      }
      await t.step(`${name}: length at ${at} one past the end`, () => {
        const bad = blob.slice();
        const view = new DataView(bad.buffer);
        view.setUint32(at, blob.length - at - 4 + 1);
        throwsSyntax(() => parseSshBlob(bad, "OpenSSH"), /truncated/);
      });
    }
  }
});

Deno.test("parseSshBlob() refuses malformed values with a message saying which", async (t) => {
  const e = new Uint8Array([1, 0, 1]);
  const n = fromB64url(parsePublicKey(RSA_LINE).jwk.n);
  const point = P256_BLOB.subarray(P256_BLOB.length - 65);
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "negative exponent",
      encodeWire(["ssh-rsa", new Uint8Array([0x81, 0, 1]), { mpint: n }]),
      /RSA exponent is not a positive integer/,
    ],
    [
      "negative modulus (no sign byte)",
      encodeWire(["ssh-rsa", { mpint: e }, n]),
      /RSA modulus is not a positive integer/,
    ],
    [
      "empty modulus",
      encodeWire(["ssh-rsa", { mpint: e }, new Uint8Array()]),
      /RSA modulus is not a positive integer/,
    ],
    [
      "missing modulus",
      encodeWire(["ssh-rsa", { mpint: e }]),
      /truncated length of RSA modulus/,
    ],
    [
      "trailing byte after an RSA key",
      concat(RSA_BLOB, new Uint8Array([0])),
      /1 unexpected trailing bytes after ssh-rsa key/,
    ],
    [
      "a trailing string after a P-256 key",
      concat(P256_BLOB, encodeWire(["extra"])),
      /9 unexpected trailing bytes after ecdsa-sha2-nistp256 key/,
    ],
    [
      "wrong curve name",
      encodeWire(["ecdsa-sha2-nistp256", "nistp384", point]),
      /curve "nistp384" does not match key type ecdsa-sha2-nistp256/,
    ],
    [
      "compressed point",
      encodeWire(["ecdsa-sha2-nistp256", "nistp256", point.slice(0, 33)]),
      /not an uncompressed 65-byte point/,
    ],
    [
      "point without its 0x04 prefix",
      encodeWire([
        "ecdsa-sha2-nistp256",
        "nistp256",
        concat(new Uint8Array([2]), point.subarray(1)),
      ]),
      /not an uncompressed 65-byte point/,
    ],
    [
      "point one byte short",
      encodeWire(["ecdsa-sha2-nistp256", "nistp256", point.subarray(0, 64)]),
      /not an uncompressed 65-byte point/,
    ],
    [
      "key type with a control character",
      encodeWire(["ssh-rsa\n", { mpint: e }, { mpint: n }]),
      /key type is not printable ASCII/,
    ],
    [
      "curve name with a high byte",
      encodeWire([
        "ecdsa-sha2-nistp256",
        new Uint8Array([0x6e, 0xe9]),
        point,
      ]),
      /curve name is not printable ASCII/,
    ],
    ["empty blob", new Uint8Array(), /truncated length of key type/],
    ["empty key type", encodeWire([""]), /key type "" is not supported/],
  ];
  for (const [name, blob, message] of cases) {
    await t.step(name, () => {
      throwsSyntax(() => parseSshBlob(blob, "OpenSSH"), message);
      if (blob.length > 0) {
        throwsSyntax(() => parsePublicKey(sshLine("ssh-rsa", blob)), message);
      }
    });
  }
  await t.step("leading zeros of an mpint are not part of the value", () => {
    const info = parseSshBlob(
      encodeWire([
        "ssh-rsa",
        concat(new Uint8Array([0, 0]), e),
        concat(new Uint8Array([0, 0]), n),
      ]),
      "OpenSSH",
    );
    assert.equal(info.bits, 2048);
    assert.deepEqual(info.jwk, parsePublicKey(RSA_LINE).jwk);
    assert.deepEqual(info.sshBlob, RSA_BLOB);
  });
});

Deno.test("parsePublicKey() refuses unsupported SSH key types, naming the type", async (t) => {
  const cases: [string, string][] = [
    ["dsa.ssh", "ssh-dss"],
  ];
  for (const [file, type] of cases) {
    await t.step(type, () => {
      const text = fixture(file);
      assert.ok(text.startsWith(`${type} `), `${file} is not a ${type} key`);
      throwsSyntax(
        () => parsePublicKey(text),
        new RegExp(
          `^key type "${type}" is not supported \\(use ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521\\)$`,
        ),
      );
      const rfc = `---- BEGIN SSH2 PUBLIC KEY ----\n${
        sshBlob(text).toBase64()
      }\n---- END SSH2 PUBLIC KEY ----\n`;
      throwsSyntax(() => parsePublicKey(rfc), new RegExp(`"${type}"`));
    });
  }
});

Deno.test("parsePublicKey() refuses an OpenSSH line whose type does not match its key data", async (t) => {
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "ecdsa-sha2-nistp256",
      RSA_BLOB,
      /^the line says "ecdsa-sha2-nistp256" but its key data is ssh-rsa$/,
    ],
    [
      "ssh-rsa",
      P256_BLOB,
      /^the line says "ssh-rsa" but its key data is ecdsa-sha2-nistp256$/,
    ],
    ["ssh-ed25519", RSA_BLOB, /line says "ssh-ed25519"/],
    ["SSH-RSA", RSA_BLOB, /line says "SSH-RSA"/],
    ["ecdsa-sha2-nistp384", P256_BLOB, /line says "ecdsa-sha2-nistp384"/],
  ];
  for (const [type, blob, message] of cases) {
    await t.step(
      `${type} line with a ${blob === RSA_BLOB ? "RSA" : "P-256"} blob`,
      () => {
        throwsSyntax(() => parsePublicKey(sshLine(type, blob)), message);
      },
    );
  }
});

Deno.test("parsePublicKey() refuses broken RFC 4716 text", async (t) => {
  const text = fixture("p256.rfc4716.ssh");
  await t.step("missing END line", () => {
    throwsSyntax(
      () => parsePublicKey(text.replace("---- END SSH2 PUBLIC KEY ----", "")),
      /RFC 4716 key has no END line/,
    );
  });
  await t.step("garbage base64", () => {
    throwsSyntax(
      () => parsePublicKey(text.replace(/^AAAA/m, "AA*A")),
      /RFC 4716 key data is not valid base64/,
    );
  });
  await t.step("a header continuation that is not skipped", () => {
    // Without the backslash the "andContinuesHere" line is key data.
    throwsSyntax(() => parsePublicKey(text.replace(" \\\n", "\n")));
  });
});
