/**
 * Shared test helpers: a handler context over a key directory, and token
 * signing for test clients.
 *
 * @module
 */

import { SignJWT } from "jose";
import { fileURLToPath } from "node:url";
import { COLOURS } from "../lib/protocol/fsm.ts";
import type { HandlerContext } from "../lib/protocol/handler.ts";
import { loadKeys } from "../lib/keys/key_ring.ts";
import { ReplayCache } from "../lib/state/replay.ts";
import { MemoryStore } from "../lib/state/store.ts";
import type { VerifyBackend } from "../lib/keys/verify.ts";
import type { Io } from "../lib/cli/errors.ts";

/** The interoperability vectors copied from shared/vectors. */
export const VECTORS = fileURLToPath(
  new URL("./testdata/vectors/", import.meta.url),
);

/**
 * The audience of every request and issuer of every answer, as the protocol
 * spells it: written here once so tests check the server against the
 * protocol, not against the server's own constant.
 */
export const AUDIENCE = "udp.socket.server.for.jwt";

/**
 * SHA-256 in lower-case hex through WebCrypto: an oracle independent of the
 * server's `node:crypto` one, for checking `id_request`.
 *
 * @param bytes The bytes to hash.
 * @returns 64 hex digits.
 */
export async function sha256Hex(
  bytes: Uint8Array<ArrayBuffer>,
): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex();
}

/**
 * The payload bytes of a compact JWS, as signed.
 *
 * @param jws A compact JWS (surrounding whitespace allowed).
 * @returns The decoded second segment.
 */
export function payloadBytes(jws: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(jws.trim().split(".")[1]!, {
    alphabet: "base64url",
  });
}

/** Reads a private key of the vectors for a test client. */
export async function privateKey(group: string): Promise<CryptoKey> {
  const { importPKCS8 } = await import("jose");
  const pem = await Deno.readTextFile(`${VECTORS}private/${group}.key`);
  const alg = pem.length > 400 ? "RS256" : "ES256";
  return await importPKCS8(pem, alg);
}

/** A context over the vectors' keys with a pinned clock. */
export async function vectorContext(
  nowSec: number,
  overrides?: Partial<HandlerContext>,
  backend?: VerifyBackend,
): Promise<HandlerContext> {
  const ring = await loadKeys(
    `${VECTORS}keys_pub`,
    backend ? { backend } : {},
  );
  let counter = 0;
  return {
    keys: ring.groups,
    secret: await Deno.readFile(
      `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
    ),
    store: new MemoryStore(),
    replay: new ReplayCache(),
    now: () => new Date(nowSec * 1000),
    randomId: () => (++counter).toString(16).padStart(32, "0"),
    leewaySec: 30,
    states: 7,
    lanes: new Map(),
    ...overrides,
  };
}

/** Request claims for a test client, as student clients send them. */
export function requestClaims(
  group: string,
  n: number,
  nowSec: number,
  extra?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    sub: group,
    aud: AUDIENCE,
    iat: nowSec,
    exp: nowSec + 60,
    jti: crypto.getRandomValues(new Uint8Array(16)).toHex(),
    seq_state_number: n,
    seq_state: COLOURS[n] ?? "RED",
    seq_max: 2,
    registration: 20230000 + n,
    ...extra,
  };
}

/** Signs request claims with a private key. */
export async function signRequest(
  claims: Record<string, unknown>,
  key: CryptoKey,
  alg: "RS256" | "ES256",
): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT" })
    .sign(key);
}

/** A throwaway group: its loaded key and the private key to sign with. */
export interface TestGroup {
  /** The loaded public key, as the server holds it. */
  key: import("../lib/keys/key_ring.ts").GroupKey;
  /** The private key for a test client. */
  priv: CryptoKey;
  /** The algorithm. */
  alg: "RS256" | "ES256";
}

/** Generates a key pair and loads its public half like a keys_pub file. */
export async function makeGroup(
  name: string,
  alg: "RS256" | "ES256",
): Promise<TestGroup> {
  const { exportSPKI, generateKeyPair } = await import("jose");
  const { keyFromText } = await import("../lib/keys/key_ring.ts");
  const pair = await generateKeyPair(alg, { extractable: true });
  const pem = await exportSPKI(pair.publicKey);
  return {
    key: await keyFromText(`${name.toLowerCase()}.pem`, pem),
    priv: pair.privateKey,
    alg,
  };
}

/**
 * An integer from the environment when the test may read it (`--allow-env`),
 * else the fallback: the default runs need no extra permission.
 *
 * @param name The variable.
 * @param fallback Its value when unset or not readable.
 * @param max The largest value accepted.
 * @returns The integer.
 * @throws {Error} When the variable is set but not an integer 0..max.
 */
export function envInteger(
  name: string,
  fallback: number,
  max: number,
): number {
  const { state } = Deno.permissions.querySync({ name: "env", variable: name });
  const text = state === "granted" ? Deno.env.get(name) : undefined;
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new Error(`${name}=${text}: expected an integer 0..${max}`);
  }
  return n;
}

/** The lab's HMAC secret of the vectors, as a file for `--secret`. */
export const SECRET_FILE = `${VECTORS}keys_priv/key_secret_for_hmac.txt`;

/** The lab's HMAC secret of the vectors, to verify answers with. */
export const SECRET: Uint8Array<ArrayBuffer> = await Deno.readFile(SECRET_FILE);

let ipv6: boolean | undefined;

/**
 * Whether `::1` can be bound here: checked on the first call, for a test's
 * `ignore`.
 *
 * @returns True when a UDP socket can be opened on `::1`.
 */
export function hasIpv6(): boolean {
  if (ipv6 === undefined) {
    try {
      Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" })
        .close();
      ipv6 = true;
    } catch {
      ipv6 = false;
    }
  }
  return ipv6;
}

/** What a subcommand printed, line by line, through {@linkcode capture}. */
export interface CapturedIo extends Io {
  /** The lines printed on stdout. */
  lines: string[];
  /** The lines printed on stderr. */
  errors: string[];
}

/** Captures what a subcommand prints. */
export function capture(): CapturedIo {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    lines,
    errors,
    out: (line) => lines.push(line),
    err: (line) => errors.push(line),
  };
}

/** The current time in whole seconds, as a request's `iat`. */
export function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * base64url without padding, as in a compact JWS.
 *
 * @param data Text (encoded as UTF-8) or bytes.
 * @returns The encoding.
 */
export function b64url(data: string | Uint8Array): string {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}
