/**
 * ES256 and RS256 answer signatures through the system's libcrypto (Deno's
 * FFI), for `--answer-key`: `node:crypto`'s `sign()` takes about 0.6 ms an
 * ECDSA P-256 signature and 2 ms an RSA 2048 one here, OpenSSL about 20 µs
 * and 0.25 ms, and the handler signs synchronously, so that time stalls the
 * receive loop. Ed25519 stays on `node:crypto`, which is as fast as OpenSSL
 * for it. Only lib/keys/answer_key.ts's callers use this module.
 *
 * @module
 */

import type { SignatureFactory } from "./answer_key.ts";

const SYMBOLS = {
  OpenSSL_version: { parameters: ["i32"], result: "pointer" },
  d2i_AutoPrivateKey: {
    parameters: ["pointer", "buffer", "i64"],
    result: "pointer",
  },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_sign_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_CTX_set_signature_md: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  EVP_sha256: { parameters: [], result: "pointer" },
  SHA256: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
  EVP_PKEY_sign: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  ERR_clear_error: { parameters: [], result: "void" },
} as const;

/** Where libcrypto 3 usually lives, per OS (as lib/keys/verify.ts looks). */
const LIBRARY_NAMES: Record<string, string[]> = {
  linux: ["libcrypto.so.3"],
  darwin: [
    "libcrypto.3.dylib",
    "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
    "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
  ],
  windows: ["libcrypto-3-x64.dll", "libcrypto-3.dll"],
};

/**
 * Turns a DER ECDSA signature into the JWS form: `r || s`, 32 bytes each.
 *
 * @param der `SEQUENCE { INTEGER r, INTEGER s }`.
 * @returns The 64 bytes.
 * @throws {SyntaxError} When the DER is not such a sequence.
 */
export function derEcdsaToRaw(der: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  let pos = 2;
  if (der[0] !== 0x30 || der[1] !== der.length - 2) {
    throw new SyntaxError("not a DER ECDSA signature");
  }
  for (const offset of [0, 32]) {
    const len = der[pos + 1] ?? 0;
    if (der[pos] !== 0x02 || pos + 2 + len > der.length) {
      throw new SyntaxError("not a DER ECDSA signature");
    }
    let v = der.subarray(pos + 2, pos + 2 + len);
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    if (v.length > 32) throw new SyntaxError("ECDSA integer over 32 bytes");
    out.set(v, offset + 32 - v.length);
    pos += 2 + len;
  }
  return out;
}

/**
 * Opens libcrypto for answer signatures.
 *
 * @returns The factory and OpenSSL's version, or the reason it is not used.
 */
export function openSslSignatures():
  | { factory: SignatureFactory; version: string }
  | { problem: string } {
  if (typeof Deno.dlopen !== "function") return { problem: "no FFI" };
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return { problem: "no --allow-ffi" };
  }
  const problems: string[] = [];
  for (const path of LIBRARY_NAMES[Deno.build.os] ?? []) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      problems.push(`${path}: ${e instanceof Error ? e.message : e}`);
      continue;
    }
    const s = lib.symbols;
    const version = Deno.UnsafePointerView.getCString(s.OpenSSL_version(0)!);
    const md = s.EVP_sha256();
    const factory: SignatureFactory = (pkcs8, alg) => {
      if (alg === "EdDSA") return undefined;
      // d2i_AutoPrivateKey advances the pointer it is given: pass a copy.
      const cursor = new BigUint64Array([
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(pkcs8))),
      ]);
      const pkey = s.d2i_AutoPrivateKey(null, cursor, BigInt(pkcs8.length));
      const ctx = pkey === null ? null : s.EVP_PKEY_CTX_new(pkey, null);
      if (
        ctx === null || s.EVP_PKEY_sign_init(ctx) !== 1 ||
        s.EVP_PKEY_CTX_set_signature_md(ctx, md) !== 1
      ) {
        s.ERR_clear_error();
        return undefined;
      }
      // The key and its context live as long as the server.
      const digest = new Uint8Array(32);
      const buffer = new Uint8Array(1024);
      const length = new BigUint64Array(1);
      return (input) => {
        s.SHA256(
          input as Uint8Array<ArrayBuffer>,
          BigInt(input.length),
          digest,
        );
        length[0] = BigInt(buffer.length);
        if (s.EVP_PKEY_sign(ctx, buffer, length, digest, 32n) !== 1) {
          s.ERR_clear_error();
          throw new Error("OpenSSL could not sign an answer");
        }
        const signature = buffer.slice(0, Number(length[0]));
        return alg === "ES256" ? derEcdsaToRaw(signature) : signature;
      };
    };
    return { factory, version };
  }
  return { problem: problems.join("; ") || "no library for this OS" };
}
