/**
 * Key fixtures and encoders shared by the key parser tests: the files
 * written by tests/testdata/keys/generate.sh with what the tools report about
 * them, decoders written without udpjwt's code, builders of PEM, OpenSSH and
 * DER input, and {@linkcode throwsSyntax}.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { KeyFormat } from "../../lib/keys/public_key.ts";

/** The fixtures written by tests/testdata/keys/generate.sh. */
export const KEYS = new URL("../testdata/keys/", import.meta.url);

/** What expected.json records about one key, as the tools reported it. */
export interface ExpectedKey {
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

/** expected.json: the signed message's file and every key's facts. */
export const expected = JSON.parse(
  await Deno.readTextFile(new URL("expected.json", KEYS)),
) as { message: string; keys: Record<string, ExpectedKey> };

/** The message that openssl signed with each fixture's private key. */
export const MESSAGE = await Deno.readFile(new URL(expected.message, KEYS));

/** The text of a fixture file. */
export function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, KEYS));
}

/** Lower-case hex of some bytes. */
export function hex(bytes: Uint8Array): string {
  return bytes.toHex();
}

/** Decodes a base64url JWK member, asserting that it is present. */
export function fromB64url(text: string | undefined): Uint8Array {
  assert.equal(typeof text, "string");
  return Uint8Array.fromBase64(text!, { alphabet: "base64url" });
}

/** The bytes of a PEM file's body, decoded without udpjwt's code. */
export function pemDer(text: string): Uint8Array {
  const body = text.replace(/-----[A-Z0-9 ]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.fromBase64(body);
}

/** A PEM block of `der` under `label`, in 64-character lines. */
export function pem(label: string, der: Uint8Array): string {
  const b64 = der.toBase64();
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----\n`;
}

/** The wire blob of an OpenSSH line, decoded without udpjwt's code. */
export function sshBlob(line: string): Uint8Array {
  return Uint8Array.fromBase64(line.trim().split(/\s+/)[1]!);
}

/** An OpenSSH public key line of `type` with `blob` as its key data. */
export function sshLine(type: string, blob: Uint8Array): string {
  return `${type} ${blob.toBase64()} test@lab`;
}

/** The bytes of `parts`, one after another. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A DER element (definite length, short or long form up to 65535). */
export function der(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = concat(...contents);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concat(new Uint8Array([tag, ...len]), body);
}

/** Splits DER into its top-level elements: tag, full bytes, contents. */
export function elements(
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
export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** Calls `fn` and checks that it throws a `SyntaxError` (and nothing else). */
export function throwsSyntax(
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

/** The fixtures of the RSA 2048 key and the P-256 key, parsed without udpjwt's code. */
export const RSA = expected.keys["rsa2048"]!;
export const P256 = expected.keys["p256"]!;
export const RSA_LINE = fixture("rsa2048.ssh");
export const P256_LINE = fixture("p256.ssh");
export const RSA_BLOB = sshBlob(RSA_LINE);
export const P256_BLOB = sshBlob(P256_LINE);
export const RSA_SPKI = pemDer(fixture("rsa2048.spki.pem"));
export const RSA_PKCS1 = pemDer(fixture("rsa2048.pkcs1.pem"));
export const RSA_CERT = pemDer(fixture("rsa2048.crt.pem"));
export const P256_SPKI = pemDer(fixture("p256.spki.pem"));
export const P256_CERT = pemDer(fixture("p256.crt.pem"));
