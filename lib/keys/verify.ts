/**
 * Signature verification backends for every algorithm of protocol 2.1
 * (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA). Each prepares a
 * per-key verifier once, at key load time, so the per-datagram path is one
 * call with no key import:
 *
 * - `openssl`: the system's libcrypto through Deno's FFI. RSA and ECDSA:
 *   EVP_PKEY_verify on a SHA-256/384/512 digest, with a context prepared once
 *   per key (PSS: padding and a salt as long as the digest). ECDSA JWS
 *   signatures are raw r||s, so they are re-encoded as DER for OpenSSL.
 *   Ed25519 signs the message itself: EVP_DigestVerifyInit without a digest,
 *   then the one-shot EVP_DigestVerify. Measured here, OpenSSL 3.0's Ed25519
 *   is several times slower than WebCrypto's, so the `openssl` backend hands
 *   Ed25519 keys to WebCrypto unless `ed25519: "openssl"` asks otherwise.
 * - `webcrypto`: `crypto.subtle.verify`, always available.
 *
 * {@linkcode selectBackend} picks OpenSSL when the library opens (and the
 * `--allow-ffi` permission is granted) and falls back to WebCrypto otherwise;
 * a failing FFI call at run time falls back for that call, never crashes.
 *
 * @module
 */

import {
  EC_CURVES,
  type EcCurve,
  hashOf,
  type PublicKeyInfo,
  webCryptoParams,
} from "./public_key.ts";

/** Checks one signature over the JWS signing input. */
export type Verifier = (
  signingInput: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean>;

/**
 * A verifier's check decided on the calling thread: true or false, or
 * undefined when only the asynchronous verifier can tell (an FFI failure, a
 * signature OpenSSL calls malformed: WebCrypto then decides).
 */
export type SyncVerifier = (
  signingInput: Uint8Array,
  signature: Uint8Array,
) => boolean | undefined;

/**
 * The synchronous form of the verifiers that have one, and whether the
 * verifier itself runs on another thread.
 */
const syncForms = new WeakMap<
  Verifier,
  { sync: SyncVerifier; offloaded: boolean }
>();

/** Options of {@linkcode syncVerifier}. */
export interface SyncVerifierOptions {
  /**
   * Whether the main thread is busy: then a verifier that can run on
   * another thread is left to it (no synchronous form), for throughput.
   * @default {false}
   */
  busy?: boolean;
}

/**
 * The synchronous form of a verifier, when it has one (OpenSSL's RSA and
 * ECDSA), so a request can be decided without a promise. ECDSA verifiers
 * that run on Deno's thread pool have one too, used while the server is not
 * busy: the thread hand-off costs latency and CPU, and pays only in
 * throughput once the main thread is saturated.
 *
 * @param verify A verifier made by a backend.
 * @param options Whether the main thread is busy.
 * @returns Its synchronous form, or undefined.
 */
export function syncVerifier(
  verify: Verifier,
  options?: SyncVerifierOptions,
): SyncVerifier | undefined {
  const form = syncForms.get(verify);
  if (form === undefined || (form.offloaded && options?.busy)) return;
  return form.sync;
}

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
    const algorithm = webCryptoParams(info).verifyParams;
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
  EVP_sha384: { parameters: [], result: "pointer" },
  EVP_sha512: { parameters: [], result: "pointer" },
  SHA256: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
  SHA384: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
  SHA512: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
  EVP_PKEY_CTX_set_rsa_padding: {
    parameters: ["pointer", "i32"],
    result: "i32",
  },
  EVP_PKEY_CTX_set_rsa_pss_saltlen: {
    parameters: ["pointer", "i32"],
    result: "i32",
  },
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_DigestVerifyInit: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  EVP_DigestVerify: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  EVP_DigestVerify_offloaded: {
    name: "EVP_DigestVerify",
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
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

function derInteger(b: Uint8Array): number[] {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return (v[0]! & 0x80)
    ? [0x02, v.length + 1, 0, ...v]
    : [0x02, v.length, ...v];
}

/**
 * Encodes a JWS ECDSA signature (r||s) as DER.
 *
 * @param raw The signature: 64, 96 or 132 bytes for P-256, P-384, P-521.
 * @param size The size of r and of s in bytes: 32 (P-256, the default), 48
 * or 66.
 * @returns `SEQUENCE { INTEGER r, INTEGER s }`, or null when not `2 * size`
 * bytes.
 */
export function rawEcdsaToDer(raw: Uint8Array, size = 32): Uint8Array | null {
  if (raw.length !== 2 * size) return null;
  const body = [
    ...derInteger(raw.subarray(0, size)),
    ...derInteger(raw.subarray(size)),
  ];
  // P-521 signatures pass 127 bytes: the long length form.
  const length = body.length < 128 ? [body.length] : [0x81, body.length];
  return new Uint8Array([0x30, ...length, ...body]);
}

const RSA_PKCS1_PSS_PADDING = 6;

function openSslBackend(
  lib: Crypto,
  path: string,
  options: { offload: boolean; ed25519: "openssl" | "webcrypto" },
): VerifyBackend {
  const { offload, ed25519 } = options;
  const version = Deno.UnsafePointerView.getCString(lib.OpenSSL_version(0)!);
  const digests = {
    "SHA-256": { md: lib.EVP_sha256(), size: 32, hash: lib.SHA256 },
    "SHA-384": { md: lib.EVP_sha384(), size: 48, hash: lib.SHA384 },
    "SHA-512": { md: lib.EVP_sha512(), size: 64, hash: lib.SHA512 },
  };
  return {
    name: "openssl",
    description: `${version} via FFI (${path}${
      offload ? ", ECDSA P-384/P-521 on a worker thread when busy" : ""
    }${ed25519 === "webcrypto" ? ", Ed25519 by WebCrypto" : ""})`,
    async prepare(info: PublicKeyInfo, key: CryptoKey): Promise<Verifier> {
      if (info.type === "OKP" && ed25519 === "webcrypto") {
        return await webCryptoBackend.prepare(info, key);
      }
      const der = new Uint8Array(await crypto.subtle.exportKey("spki", key));
      // d2i_PUBKEY advances the pointer it is given: pass a copy of it.
      const cursor = new BigUint64Array([
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(der))),
      ]);
      const pkey = lib.d2i_PUBKEY(null, cursor, BigInt(der.length));
      if (pkey === null) throw new Error("OpenSSL cannot read the key");
      const fallback = await webCryptoBackend.prepare(info, key);
      const hash = hashOf(info.alg);
      // Measured (docs/performance.md, issue 11): with the request decided
      // synchronously, P-256 verified on the main thread costs 147-151 µs
      // of process CPU per answer under load against 178-189 µs on the
      // thread pool, for as many answers a second; RSA (about 30 µs) never
      // paid for the hand-off. Only the slow curves (P-384, P-521: about
      // 600 µs) and OpenSSL's Ed25519 may go to a second core, and only
      // while the server is busy (see syncVerifier).
      const offloaded = offload && info.type !== "RSA" &&
        !(info.type === "EC" && info.curve === "P-256");
      if (hash === null) return ed25519Verifier(lib, pkey, offloaded, fallback);
      const digest = digests[hash];
      const pss = info.alg.startsWith("PS");
      // A verify context is not safe to share between threads: keep a pool,
      // one context per verification in flight.
      const pool: Deno.PointerValue[] = [];
      const take = (): Deno.PointerValue => {
        const free = pool.pop();
        if (free) return free;
        const ctx = lib.EVP_PKEY_CTX_new(pkey, null);
        if (
          ctx === null || lib.EVP_PKEY_verify_init(ctx) !== 1 ||
          lib.EVP_PKEY_CTX_set_signature_md(ctx, digest.md) !== 1 ||
          (pss && (
            lib.EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) !==
              1 ||
            lib.EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, digest.size) !== 1
          ))
        ) {
          throw new Error("OpenSSL cannot prepare a verify context");
        }
        return ctx;
      };
      pool.push(take());
      const ecSize = info.type === "EC"
        ? EC_CURVES[info.curve as EcCurve].size
        : 0;
      const md = new Uint8Array(digest.size);
      // On the calling thread: one synchronous FFI call, so the handler can
      // decide the request without a promise; one digest buffer serves
      // every call.
      const sync: SyncVerifier = (input, signature) => {
        const sig = ecSize ? rawEcdsaToDer(signature, ecSize) : signature;
        if (sig === null) return false;
        let r = -1;
        try {
          digest.hash(
            input as Uint8Array<ArrayBuffer>,
            BigInt(input.length),
            md,
          );
          const ctx = take();
          try {
            r = lib.EVP_PKEY_verify(
              ctx,
              sig as Uint8Array<ArrayBuffer>,
              BigInt(sig.length),
              md,
              BigInt(digest.size),
            );
          } finally {
            pool.push(ctx);
          }
        } catch {
          // An FFI failure never fails the request: WebCrypto decides.
          return undefined;
        }
        if (r === 1) return true;
        lib.ERR_clear_error();
        return r === 0 ? false : undefined;
      };
      if (!offloaded) {
        const verifier: Verifier = (input, signature) => {
          const r = sync(input, signature);
          return r === undefined
            ? fallback(input, signature)
            : Promise.resolve(r);
        };
        syncForms.set(verifier, { sync, offloaded });
        return verifier;
      }
      const verifier: Verifier = async (input, signature) => {
        const sig = ecSize ? rawEcdsaToDer(signature, ecSize) : signature;
        if (sig === null) return false;
        // One FFI call: about a third of node:crypto's createHash here.
        const md = new Uint8Array(digest.size);
        digest.hash(
          input as Uint8Array<ArrayBuffer>,
          BigInt(input.length),
          md,
        );
        let r = -1;
        try {
          const ctx = take();
          const args = [
            ctx,
            sig as Uint8Array<ArrayBuffer>,
            BigInt(sig.length),
            md,
            BigInt(digest.size),
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
      syncForms.set(verifier, { sync, offloaded });
      return verifier;
    },
  };
}

/**
 * Ed25519 through EVP_DigestVerify: PureEdDSA hashes the message itself, so
 * there is no digest to compute first and EVP_PKEY_verify does not apply.
 * A digest context is set up per verification (EVP_DigestVerifyInit is
 * cheap next to the signature check) and freed after it.
 */
function ed25519Verifier(
  lib: Crypto,
  pkey: Deno.PointerValue,
  offloaded: boolean,
  fallback: Verifier,
): Verifier {
  return async (input, signature) => {
    if (signature.length !== 64) return false;
    let r = -1;
    try {
      const ctx = lib.EVP_MD_CTX_new();
      if (ctx === null) throw new Error("EVP_MD_CTX_new failed");
      try {
        if (lib.EVP_DigestVerifyInit(ctx, null, null, null, pkey) === 1) {
          const args = [
            ctx,
            signature as Uint8Array<ArrayBuffer>,
            64n,
            input as Uint8Array<ArrayBuffer>,
            BigInt(input.length),
          ] as const;
          r = offloaded
            ? await lib.EVP_DigestVerify_offloaded(...args)
            : lib.EVP_DigestVerify(...args);
        }
      } finally {
        lib.EVP_MD_CTX_free(ctx);
      }
    } catch {
      // An FFI failure never fails the request: WebCrypto decides below.
    }
    if (r === 1) return true;
    lib.ERR_clear_error();
    if (r === 0) return false;
    return await fallback(input, signature);
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
   * Let the slow OpenSSL verifications (ECDSA P-384 and P-521, Ed25519)
   * run on Deno's thread pool while the server is busy, so the receive loop
   * keeps a core of its own; RSA and P-256 always run on the main thread.
   * @default {navigator.hardwareConcurrency > 1}
   */
  offload?: boolean;
  /**
   * Who verifies Ed25519 in the `openssl` backend. WebCrypto by default:
   * measured on the lab machine, alternating the two in one process, a
   * verification took 50-130 µs in WebCrypto and 200-330 µs through OpenSSL
   * 3.0's FFI (docs/performance.md has the `deno task bench` rows).
   * @default {"webcrypto"}
   */
  ed25519?: "openssl" | "webcrypto";
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
        return {
          backend: openSslBackend(lib.symbols, path, {
            offload,
            ed25519: options?.ed25519 ?? "webcrypto",
          }),
        };
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
