/**
 * Signature verification backends for RS256 and ES256. Each prepares a
 * per-key verifier once, at key load time, so the per-datagram path is one
 * call with no key import:
 *
 * - `openssl`: the system's libcrypto through Deno's FFI (EVP_PKEY_verify on
 *   a SHA-256 digest, with a context prepared once per key). ECDSA JWS
 *   signatures are raw r||s, so they are re-encoded as DER for OpenSSL.
 * - `webcrypto`: `crypto.subtle.verify`, always available.
 *
 * {@linkcode selectBackend} picks OpenSSL when the library opens (and the
 * `--allow-ffi` permission is granted) and falls back to WebCrypto otherwise;
 * a failing FFI call at run time falls back for that call, never crashes.
 *
 * @module
 */

import type { PublicKeyInfo } from "./public_key.ts";

/** Checks one signature over the JWS signing input. */
export type Verifier = (
  signingInput: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean>;

/** A way to verify signatures. */
export interface VerifyBackend {
  /** `openssl` or `webcrypto`. */
  readonly name: "openssl" | "webcrypto";
  /** A human-readable description, e.g. the library and its version. */
  readonly description: string;
  /**
   * Prepares a verifier for one key.
   * @param info The parsed key.
   * @param key The same key imported into WebCrypto (the fallback path).
   */
  prepare(info: PublicKeyInfo, key: CryptoKey): Promise<Verifier>;
}

/** The WebCrypto backend. */
export const webCryptoBackend: VerifyBackend = {
  name: "webcrypto",
  description: "WebCrypto (crypto.subtle)",
  prepare(info: PublicKeyInfo, key: CryptoKey): Promise<Verifier> {
    const algorithm = info.type === "RSA"
      ? { name: "RSASSA-PKCS1-v1_5" }
      : { name: "ECDSA", hash: "SHA-256" };
    return Promise.resolve((input, signature) =>
      crypto.subtle.verify(
        algorithm,
        key,
        signature as Uint8Array<ArrayBuffer>,
        input as Uint8Array<ArrayBuffer>,
      )
    );
  },
};

const SYMBOLS = {
  OpenSSL_version: { parameters: ["i32"], result: "pointer" },
  d2i_PUBKEY: { parameters: ["pointer", "buffer", "i64"], result: "pointer" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_verify_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_CTX_set_signature_md: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  EVP_sha256: { parameters: [], result: "pointer" },
  SHA256: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
  EVP_PKEY_verify: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  // The same function run on Deno's blocking thread pool: a second core.
  EVP_PKEY_verify_offloaded: {
    name: "EVP_PKEY_verify",
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  ERR_clear_error: { parameters: [], result: "void" },
} as const;

type Crypto = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Where libcrypto 3 usually lives, per OS. */
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
 * Encodes a JWS ECDSA signature (r||s, 32 bytes each) as DER.
 *
 * @param raw The 64-byte signature.
 * @returns `SEQUENCE { INTEGER r, INTEGER s }`, or null when not 64 bytes.
 */
export function rawEcdsaToDer(raw: Uint8Array): Uint8Array | null {
  if (raw.length !== 64) return null;
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return (v[0]! & 0x80)
      ? [0x02, v.length + 1, 0, ...v]
      : [0x02, v.length, ...v];
  };
  const body = [...int(raw.subarray(0, 32)), ...int(raw.subarray(32))];
  return new Uint8Array([0x30, body.length, ...body]);
}

function openSslBackend(
  lib: Crypto,
  path: string,
  offload: boolean,
): VerifyBackend {
  const version = Deno.UnsafePointerView.getCString(lib.OpenSSL_version(0)!);
  const md = lib.EVP_sha256();
  return {
    name: "openssl",
    description: `${version} via FFI (${path}${
      offload ? ", ECDSA on a worker thread" : ""
    })`,
    async prepare(info: PublicKeyInfo, key: CryptoKey): Promise<Verifier> {
      const der = new Uint8Array(await crypto.subtle.exportKey("spki", key));
      // d2i_PUBKEY advances the pointer it is given: pass a copy of it.
      const cursor = new BigUint64Array([
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(der))),
      ]);
      const pkey = lib.d2i_PUBKEY(null, cursor, BigInt(der.length));
      if (pkey === null) throw new Error("OpenSSL cannot read the key");
      // A verify context is not safe to share between threads: keep a pool,
      // one context per verification in flight.
      const pool: Deno.PointerValue[] = [];
      const take = (): Deno.PointerValue => {
        const free = pool.pop();
        if (free) return free;
        const ctx = lib.EVP_PKEY_CTX_new(pkey, null);
        if (
          ctx === null || lib.EVP_PKEY_verify_init(ctx) !== 1 ||
          lib.EVP_PKEY_CTX_set_signature_md(ctx, md) !== 1
        ) {
          throw new Error("OpenSSL cannot prepare a verify context");
        }
        return ctx;
      };
      pool.push(take());
      const fallback = await webCryptoBackend.prepare(info, key);
      const ec = info.type === "EC";
      // Measured: offloading pays for ECDSA (about 95 µs a verification) but
      // not for RSA (about 30 µs, less than the thread hand-off costs).
      const offloaded = offload && ec;
      return async (input, signature) => {
        const sig = ec ? rawEcdsaToDer(signature) : signature;
        if (sig === null) return false;
        // One FFI call: about a third of node:crypto's createHash here.
        const digest = new Uint8Array(32);
        lib.SHA256(
          input as Uint8Array<ArrayBuffer>,
          BigInt(input.length),
          digest,
        );
        let r = -1;
        try {
          const ctx = take();
          const args = [
            ctx,
            sig as Uint8Array<ArrayBuffer>,
            BigInt(sig.length),
            digest,
            32n,
          ] as const;
          try {
            r = offloaded
              ? await lib.EVP_PKEY_verify_offloaded(...args)
              : lib.EVP_PKEY_verify(...args);
          } finally {
            pool.push(ctx);
          }
        } catch {
          // An FFI failure never fails the request: WebCrypto decides below.
        }
        if (r === 1) return true;
        if (!offloaded) lib.ERR_clear_error();
        if (r === 0) return false;
        // Malformed signatures give -1 as well; let WebCrypto decide.
        return await fallback(input, signature);
      };
    },
  };
}

/** Options of {@linkcode selectBackend}. */
export interface SelectOptions {
  /**
   * `auto` (OpenSSL when it opens), `openssl` (required) or `webcrypto`.
   * @default {"auto"}
   */
  prefer?: "auto" | "openssl" | "webcrypto";
  /**
   * Run OpenSSL verifications on a worker thread, so the receive loop keeps
   * a core of its own.
   * @default {navigator.hardwareConcurrency > 1}
   */
  offload?: boolean;
}

/**
 * Chooses the verify backend at start-up.
 *
 * @param options The preference.
 * @returns The backend, and why OpenSSL is not used when it is not.
 * @throws {Error} When `openssl` is required and cannot be opened.
 */
export function selectBackend(
  options?: SelectOptions,
): { backend: VerifyBackend; note?: string } {
  const prefer = options?.prefer ?? "auto";
  const offload = options?.offload ?? navigator.hardwareConcurrency > 1;
  if (prefer === "webcrypto") return { backend: webCryptoBackend };
  const problems: string[] = [];
  if (typeof Deno.dlopen !== "function") {
    problems.push("FFI is not available");
  } else if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    problems.push("FFI permission not granted (--allow-ffi)");
  } else {
    for (const path of LIBRARY_NAMES[Deno.build.os] ?? []) {
      try {
        const lib = Deno.dlopen(path, SYMBOLS);
        return { backend: openSslBackend(lib.symbols, path, offload) };
      } catch (e) {
        problems.push(`${path}: ${e instanceof Error ? e.message : e}`);
      }
    }
  }
  const note = `OpenSSL not used: ${
    problems.join("; ") || "no library for this OS"
  }`;
  if (prefer === "openssl") throw new Error(note);
  return { backend: webCryptoBackend, note };
}
