import assert from "node:assert/strict";
import { seededRandom } from "../../lib/client/client.ts";
import {
  describeKey,
  fingerprint,
  importPublicKey,
  type KeyFormat,
  parsePublicKey,
  parseSshBlob,
  type PublicKeyInfo,
} from "../../lib/keys/public_key.ts";
import {
  encodeWire,
  readMpint,
  readString,
  readText,
} from "../../lib/keys/_ssh_wire.ts";
import {
  bitLength,
  cursor,
  expectEnd,
  readByte,
  readBytes,
  stripLeadingZeros,
} from "../../lib/keys/_bytes.ts";
import {
  enter,
  peekTag,
  readElement,
  readOid,
  readUnsigned,
  TAG,
} from "../../lib/keys/_der.ts";

/** The fixtures written by tests/testdata/keys/generate.sh. */
const KEYS = new URL("../testdata/keys/", import.meta.url);

interface ExpectedKey {
  type: "RSA" | "EC";
  alg: "RS256" | "ES256";
  bits: number;
  curve?: "P-256";
  description: string;
  modulusHex?: string;
  exponent?: number;
  pointHex?: string;
  signatureHex?: string;
  files: Record<string, { format: KeyFormat; fingerprint: string }>;
}

const expected = JSON.parse(
  await Deno.readTextFile(new URL("expected.json", KEYS)),
) as { message: string; keys: Record<string, ExpectedKey> };

const MESSAGE = await Deno.readFile(new URL(expected.message, KEYS));

function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, KEYS));
}

function hex(bytes: Uint8Array): string {
  return bytes.toHex();
}

function fromB64url(text: string | undefined): Uint8Array {
  assert.equal(typeof text, "string");
  return Uint8Array.fromBase64(text!, { alphabet: "base64url" });
}

/** The bytes of a PEM file's body, decoded without udpjwt's code. */
function pemDer(text: string): Uint8Array {
  const body = text.replace(/-----[A-Z0-9 ]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.fromBase64(body);
}

function pem(label: string, der: Uint8Array): string {
  const b64 = der.toBase64();
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----\n`;
}

/** The wire blob of an OpenSSH line, decoded without udpjwt's code. */
function sshBlob(line: string): Uint8Array {
  return Uint8Array.fromBase64(line.trim().split(/\s+/)[1]!);
}

function sshLine(type: string, blob: Uint8Array): string {
  return `${type} ${blob.toBase64()} test@lab`;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A DER element (definite length, short or long form up to 65535). */
function der(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = concat(...contents);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concat(new Uint8Array([tag, ...len]), body);
}

/** Splits DER into its top-level elements: tag, full bytes, contents. */
function elements(
  bytes: Uint8Array,
): { tag: number; all: Uint8Array; contents: Uint8Array }[] {
  const out = [];
  let pos = 0;
  while (pos < bytes.length) {
    const tag = bytes[pos]!;
    let len = bytes[pos + 1]!;
    let header = 2;
    if (len & 0x80) {
      const count = len & 0x7f;
      len = 0;
      for (let i = 0; i < count; i++) len = len * 256 + bytes[pos + 2 + i]!;
      header += count;
    }
    out.push({
      tag,
      all: bytes.subarray(pos, pos + header + len),
      contents: bytes.subarray(pos + header, pos + header + len),
    });
    pos += header + len;
  }
  return out;
}

/** A 32-bit big-endian length. */
function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** Calls `fn` and checks that it throws a `SyntaxError` (and nothing else). */
function throwsSyntax(
  fn: () => unknown,
  message?: RegExp,
  context = "",
): SyntaxError {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    assert.ok(
      e instanceof SyntaxError,
      `expected a SyntaxError${context && ` (${context})`}, got ${
        e instanceof Error ? `${e.name}: ${e.message}` : String(e)
      }`,
    );
    assert.notEqual(e.message, "", `empty message${context}`);
    if (message) assert.match(e.message, message, context || undefined);
    return e;
  }
  assert.fail(
    `expected a SyntaxError${context && ` (${context})`}, got ${
      JSON.stringify(result, (_k, v) => v instanceof Uint8Array ? hex(v) : v)
    }`,
  );
}

const RSA = expected.keys["rsa2048"]!;
const P256 = expected.keys["p256"]!;
const RSA_LINE = fixture("rsa2048.ssh");
const P256_LINE = fixture("p256.ssh");
const RSA_BLOB = sshBlob(RSA_LINE);
const P256_BLOB = sshBlob(P256_LINE);
const RSA_SPKI = pemDer(fixture("rsa2048.spki.pem"));
const RSA_PKCS1 = pemDer(fixture("rsa2048.pkcs1.pem"));
const RSA_CERT = pemDer(fixture("rsa2048.crt.pem"));
const P256_SPKI = pemDer(fixture("p256.spki.pem"));
const P256_CERT = pemDer(fixture("p256.crt.pem"));

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
    ["ed25519.ssh", "ssh-ed25519"],
    ["dsa.ssh", "ssh-dss"],
    ["p384.ssh", "ecdsa-sha2-nistp384"],
  ];
  for (const [file, type] of cases) {
    await t.step(type, () => {
      const text = fixture(file);
      assert.ok(text.startsWith(`${type} `), `${file} is not a ${type} key`);
      throwsSyntax(
        () => parsePublicKey(text),
        new RegExp(
          `^key type "${type}" is not supported \\(use ssh-rsa or ecdsa-sha2-nistp256\\)$`,
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
  await t.step("Ed25519", () => {
    throwsSyntax(
      () => parsePublicKey(fixture("ed25519.spki.pem")),
      /^key type Ed25519 is not supported \(use RSA for RS256 or EC P-256 for ES256\)$/,
    );
  });
  await t.step("P-384", () => {
    throwsSyntax(
      () => parsePublicKey(fixture("p384.spki.pem")),
      /^EC curve P-384 is not supported \(only P-256, for ES256\)$/,
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

Deno.test("readByte(), readBytes() and expectEnd() throw a SyntaxError on short or long input", async (t) => {
  await t.step("readByte() reads then stops at the end", () => {
    const c = cursor(new Uint8Array([7, 9]));
    assert.equal(readByte(c, "x"), 7);
    assert.equal(readByte(c, "x"), 9);
    assert.equal(c.pos, 2);
    throwsSyntax(() => readByte(c, "tag byte"), /^truncated tag byte$/);
    assert.equal(c.pos, 2);
  });
  await t.step("readBytes() returns a view and checks the count", () => {
    const c = cursor(new Uint8Array([1, 2, 3]));
    assert.deepEqual(readBytes(c, 0, "x"), new Uint8Array());
    assert.deepEqual(readBytes(c, 2, "x"), new Uint8Array([1, 2]));
    throwsSyntax(() => readBytes(c, 2, "body"), /^truncated body$/);
    assert.equal(c.pos, 2);
    throwsSyntax(() => readBytes(c, -1, "body"), /^truncated body$/);
    assert.deepEqual(readBytes(c, 1, "x"), new Uint8Array([3]));
  });
  await t.step("expectEnd() counts the bytes left over", () => {
    const c = cursor(new Uint8Array(5));
    c.pos = 2;
    throwsSyntax(
      () => expectEnd(c, "thing"),
      /^3 unexpected trailing bytes after thing$/,
    );
    c.pos = 5;
    assert.doesNotThrow(() => expectEnd(c, "thing"));
  });
});

Deno.test("stripLeadingZeros() and bitLength() measure big-endian integers", async (t) => {
  const strip: [number[], number[]][] = [
    [[], []],
    [[0], [0]],
    [[0, 0, 0], [0]],
    [[0, 1], [1]],
    [[0, 0, 0x80, 0], [0x80, 0]],
    [[1, 0], [1, 0]],
  ];
  for (const [input, output] of strip) {
    await t.step(`stripLeadingZeros([${input}])`, () => {
      assert.deepEqual(
        stripLeadingZeros(new Uint8Array(input)),
        new Uint8Array(output),
      );
    });
  }
  const bits: [number[], number][] = [
    [[], 0],
    [[0], 0],
    [[1], 1],
    [[0x7f], 7],
    [[0x80], 8],
    [[1, 0], 9],
    [[0xff, 0xff], 16],
    [[0x01, 0, 0], 17],
  ];
  for (const [input, n] of bits) {
    await t.step(`bitLength([${input}]) is ${n}`, () => {
      assert.equal(bitLength(new Uint8Array(input)), n);
    });
  }
});

Deno.test("readString(), readText() and readMpint() read the SSH wire format", async (t) => {
  await t.step("readString() reads a length-prefixed string", () => {
    const c = cursor(Uint8Array.fromHex("00000003616263000000"));
    assert.deepEqual(readString(c, "s"), new TextEncoder().encode("abc"));
    throwsSyntax(() => readString(c, "next"), /^truncated length of next$/);
  });
  await t.step("readString() refuses an absurd length before reading", () => {
    throwsSyntax(
      () => readString(cursor(Uint8Array.fromHex("00004001")), "blob"),
      /^blob claims 16385 bytes, more than any key has$/,
    );
    throwsSyntax(
      () => readString(cursor(Uint8Array.fromHex("00004000")), "blob"),
      /^truncated blob$/,
    );
  });
  await t.step("readText() accepts printable ASCII only", () => {
    assert.equal(readText(cursor(encodeWire(["ssh-rsa"])), "t"), "ssh-rsa");
    assert.equal(readText(cursor(encodeWire([""])), "t"), "");
    for (const bad of [[0x7f], [0x1f], [0x00], [0xc3, 0xa9]]) {
      throwsSyntax(
        () => readText(cursor(encodeWire([new Uint8Array(bad)])), "name"),
        /^name is not printable ASCII$/,
      );
    }
  });
  await t.step("readMpint() strips leading zeros and refuses negatives", () => {
    assert.deepEqual(
      readMpint(cursor(Uint8Array.fromHex("0000000300ff01")), "m"),
      new Uint8Array([0xff, 1]),
    );
    assert.deepEqual(
      readMpint(cursor(Uint8Array.fromHex("00000001" + "00")), "m"),
      new Uint8Array([0]),
    );
    throwsSyntax(
      () => readMpint(cursor(Uint8Array.fromHex("00000001ff")), "m"),
      /^m is not a positive integer$/,
    );
    throwsSyntax(
      () => readMpint(cursor(Uint8Array.fromHex("00000000")), "m"),
      /^m is not a positive integer$/,
    );
  });
  await t.step(
    "encodeWire() writes strings and mpints as RFC 4251 says",
    () => {
      assert.equal(
        hex(encodeWire([
          "ab",
          { mpint: new Uint8Array([0x80]) },
          { mpint: new Uint8Array([0, 0, 1]) },
          new Uint8Array([0xff]),
        ])),
        "000000026162" + "000000020080" + "0000000101" + "00000001ff",
      );
      assert.equal(hex(encodeWire([])), "");
    },
  );
  await t.step("readMpint() reads back what encodeWire() wrote", () => {
    for (
      const h of [
        "01",
        "7f",
        "80",
        "ff",
        "0100",
        "ffff",
        "00ab",
        "8000000000000000",
      ]
    ) {
      const value = Uint8Array.fromHex(h);
      const c = cursor(encodeWire([{ mpint: value }]));
      assert.deepEqual(readMpint(c, "m"), stripLeadingZeros(value), h);
      assert.doesNotThrow(() => expectEnd(c, "m"));
    }
  });
});

Deno.test("readElement(), readUnsigned() and readOid() read DER", async (t) => {
  await t.step("readElement() reads short and long form lengths", () => {
    const long = new Uint8Array(300).fill(7);
    const c = cursor(
      concat(
        der(TAG.OID, new Uint8Array([1])),
        der(TAG.SEQUENCE, new Uint8Array(200)),
        der(TAG.SEQUENCE, long),
      ),
    );
    assert.deepEqual(readElement(c, TAG.OID, "a"), new Uint8Array([1]));
    assert.equal(peekTag(c), TAG.SEQUENCE);
    assert.equal(readElement(c, TAG.SEQUENCE, "b").length, 200);
    assert.deepEqual(enter(c, TAG.SEQUENCE, "c").bytes, long);
    assert.equal(peekTag(c), undefined);
  });
  await t.step("readElement() names the expected and found tags", () => {
    throwsSyntax(
      () =>
        readElement(cursor(Uint8Array.fromHex("0500")), TAG.SEQUENCE, "thing"),
      /^expected thing \(DER tag 0x30\), found tag 0x5$/,
    );
  });
  await t.step(
    "readUnsigned() drops the sign byte and refuses negatives",
    () => {
      assert.deepEqual(
        readUnsigned(cursor(Uint8Array.fromHex("020200ff")), "i"),
        new Uint8Array([0xff]),
      );
      assert.deepEqual(
        readUnsigned(cursor(Uint8Array.fromHex("020100")), "i"),
        new Uint8Array([0]),
      );
      throwsSyntax(
        () => readUnsigned(cursor(Uint8Array.fromHex("0201ff")), "i"),
        /^i is not a positive integer$/,
      );
      throwsSyntax(
        () => readUnsigned(cursor(Uint8Array.fromHex("0200")), "i"),
        /^i is not a positive integer$/,
      );
    },
  );
  const oids: [string, string][] = [
    ["06092a864886f70d010101", "1.2.840.113549.1.1.1"],
    ["06072a8648ce3d0201", "1.2.840.10045.2.1"],
    ["06082a8648ce3d030107", "1.2.840.10045.3.1.7"],
    ["06032b6570", "1.3.101.112"],
    ["06052b81040022", "1.3.132.0.34"],
    ["06028837", "2.999"],
    ["060100", "0.0"],
  ];
  for (const [bytes, dotted] of oids) {
    await t.step(`readOid() reads ${dotted}`, () => {
      assert.equal(readOid(cursor(Uint8Array.fromHex(bytes)), "oid"), dotted);
    });
  }
  await t.step("readOid() refuses an empty OID and a cut-off last arc", () => {
    throwsSyntax(
      () => readOid(cursor(Uint8Array.fromHex("0600")), "oid"),
      /empty oid/,
    );
    throwsSyntax(
      () => readOid(cursor(Uint8Array.fromHex("06022a86")), "oid"),
      /truncated oid/,
    );
    throwsSyntax(
      () => readOid(cursor(Uint8Array.fromHex("06042a864886")), "oid"),
      /truncated oid/,
    );
    assert.equal(
      readOid(cursor(Uint8Array.fromHex("06032a8648")), "oid"),
      "1.2.840",
    );
  });
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
  } else {
    assert.equal(info.type, "EC", context);
    assert.equal(info.alg, "ES256", context);
    assert.equal(info.curve, "P-256", context);
    assert.equal(info.bits, 256, context);
    assert.equal(info.jwk.crv, "P-256", context);
    assert.equal(fromB64url(info.jwk.x).length, 32, context);
    assert.equal(fromB64url(info.jwk.y).length, 32, context);
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
