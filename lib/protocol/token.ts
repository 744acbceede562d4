/**
 * Request tokens in, response tokens out (docs/protocol.md, "The request" and "The answer").
 *
 * Checks run in the protocol's order: shape, header `alg` against the
 * allow-list, `sub`, group, the header's `kid`, `alg` against the group's
 * keys, signature, then the other claims. The parts
 * before the signature are cheap and synchronous so junk is shed early.
 * The group's keys decide the algorithm, and their verifiers (OpenSSL through
 * FFI, or WebCrypto) checks the signature; the HS256 answers are signed
 * synchronously with `node:crypto`
 * (faster than a WebCrypto round trip, and usable inside one FSM step).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { type ErrorCode, protocolError } from "./errors.ts";
import { COLOURS } from "./fsm.ts";
import type { GroupKey, VerifyKey } from "../keys/key_ring.ts";
import { KEY_ALGORITHMS } from "../keys/public_key.ts";
import { syncVerifier, type SyncVerifierOptions } from "../keys/verify.ts";

/** The audience every request names and the issuer of every answer. */
export const AUDIENCE = "udp.socket.server.for.jwt";

/**
 * Every algorithm a request may use (protocol 2.1); `--algs` narrows it.
 * `none` and `HS*` are never among them.
 */
export const REQUEST_ALGORITHMS: readonly string[] = KEY_ALGORITHMS;

const ALL_ALGORITHMS: ReadonlySet<string> = new Set(REQUEST_ALGORITHMS);

/** A token split into its parts; nothing verified yet. */
export interface ParsedToken {
  /** The compact JWS as received, whitespace trimmed. */
  text: string;
  /** The decoded header object. */
  header: Record<string, unknown>;
  /** The decoded payload object. */
  payload: Record<string, unknown>;
  /** The payload bytes exactly as signed (base64url-decoded middle part). */
  payloadBytes: Uint8Array<ArrayBuffer>;
  /** The JWS signing input: the ASCII bytes of `header.payload`. */
  signingInput: Uint8Array;
  /** The decoded signature. */
  signature: Uint8Array;
}

/** The claims of a request that passed every check. */
export interface RequestClaims {
  /** `sub` as sent. */
  sub: string;
  /** `iat`, seconds. */
  iat: number;
  /** `exp`, seconds. */
  exp: number;
  /** `jti`. */
  jti: string;
  /** `seq_state_number`: the FSM event. */
  seqStateNumber: number;
  /** `seq_state`: a colour name. */
  seqState: string;
  /** `seq_max`. */
  seqMax: number;
  /** `registration`: a student's registration number. */
  registration: number;
  /** True when `seq_state` is not the colour of `seq_state_number`. */
  colourMismatch: boolean;
}

/** Options of {@linkcode checkClaims}. */
export interface ClaimOptions {
  /** The current time. */
  now: Date;
  /**
   * Allowed clock difference, in seconds.
   * @default {30}
   */
  leewaySec?: number;
  /** The group's member count when a roster is configured. */
  members?: number;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const GROUP_NAME_ANY_CASE = /^[A-Za-z0-9_-]{1,64}$/;
const JTI = /^[\x21-\x7e]{1,64}$/;
const REQUIRED = [
  "sub",
  "aud",
  "iat",
  "exp",
  "jti",
  "seq_state_number",
  "seq_state",
  "seq_max",
  "registration",
] as const;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw protocolError(code, message, cause === undefined ? {} : { cause });
}

function decodeJsonObject(
  segment: string,
  what: string,
): [Record<string, unknown>, Uint8Array<ArrayBuffer>] {
  if (!SEGMENT.test(segment) || segment.length % 4 === 1) {
    fail("MALFORMED_TOKEN", `the ${what} is not base64url`);
  }
  const bytes = Uint8Array.fromBase64(segment, { alphabet: "base64url" });
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch (e) {
    fail("MALFORMED_TOKEN", `the ${what} is not UTF-8 JSON`, e);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("MALFORMED_TOKEN", `the ${what} is not a JSON object`);
  }
  return [value as Record<string, unknown>, bytes];
}

/**
 * Removes surrounding ASCII whitespace (space, tab, LF, VT, FF, CR).
 *
 * @param text The datagram as text.
 * @returns The text without surrounding whitespace.
 */
export function trimToken(text: string): string {
  // Most datagrams have nothing to trim: two char codes tell.
  if (text.length === 0) return text;
  const first = text.charCodeAt(0);
  const last = text.charCodeAt(text.length - 1);
  if (
    first !== 0x20 && (first < 0x09 || first > 0x0d) &&
    last !== 0x20 && (last < 0x09 || last > 0x0d)
  ) return text;
  return text.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, "");
}

/**
 * Splits and decodes a compact JWS without verifying anything.
 *
 * @param text The datagram as text.
 * @returns The header, payload and payload bytes.
 * @throws {ProtocolError} `MALFORMED_TOKEN`.
 */
export function parseToken(text: string): ParsedToken {
  const trimmed = trimToken(text);
  const parts = trimmed.split(".");
  if (parts.length !== 3) {
    fail(
      "MALFORMED_TOKEN",
      `expected a compact JWS of 3 dot-separated parts, got ${
        Math.min(parts.length, 99)
      }`,
    );
  }
  const [h = "", p = "", s = ""] = parts;
  const [header] = decodeJsonObject(h, "header");
  const [payload, payloadBytes] = decodeJsonObject(p, "payload");
  if (s !== "" && (!SEGMENT.test(s) || s.length % 4 === 1)) {
    fail("MALFORMED_TOKEN", "the signature is not base64url");
  }
  if (Object.hasOwn(header, "crit")) {
    // RFC 7515 §4.1.11: extensions we do not understand must be refused.
    fail("MALFORMED_TOKEN", 'header parameter "crit" is not supported');
  }
  return {
    text: trimmed,
    header,
    payload,
    payloadBytes,
    signingInput: encoder.encode(`${h}.${p}`),
    signature: Uint8Array.fromBase64(s, { alphabet: "base64url" }),
  };
}

/**
 * Checks the header's `alg` against the algorithms requests may use. The
 * header value `Ed25519` (RFC 9864) is read as `EdDSA`.
 *
 * @param header The decoded header.
 * @param allowed The server's allow-list (`--algs`).
 * @default {REQUEST_ALGORITHMS}
 * @returns The algorithm, `EdDSA` for `Ed25519`.
 * @throws {ProtocolError} `ALG_NOT_ALLOWED`.
 */
export function checkAlg(
  header: Record<string, unknown>,
  allowed: ReadonlySet<string> = ALL_ALGORITHMS,
): string {
  const alg = header.alg === "Ed25519" ? "EdDSA" : header.alg;
  if (typeof alg !== "string" || !allowed.has(alg)) {
    fail(
      "ALG_NOT_ALLOWED",
      `algorithm ${
        typeof header.alg === "string"
          ? `"${header.alg.slice(0, 16)}"`
          : "(missing)"
      } is not allowed: sign with ${[...allowed].join(", ")}`,
    );
  }
  return alg;
}

/**
 * Reads `sub` as a group name, matched case-insensitively.
 *
 * @param payload The decoded payload.
 * @returns The upper-case group name.
 * @throws {ProtocolError} `MISSING_CLAIM` or `BAD_CLAIM`.
 */
export function readGroup(payload: Record<string, unknown>): string {
  if (!Object.hasOwn(payload, "sub")) {
    fail("MISSING_CLAIM", 'claim "sub" is missing: set it to your group name');
  }
  const { sub } = payload;
  // Test before upper-casing: toUpperCase() maps "ı" to "I" and "ſ" to "S".
  if (typeof sub !== "string" || !GROUP_NAME_ANY_CASE.test(sub)) {
    fail(
      "BAD_CLAIM",
      'claim "sub" must be a group name of 1-64 characters A-Z 0-9 _ -',
    );
  }
  return sub.toUpperCase();
}

/** What {@linkcode chooseKey} looks for. */
export interface KeyQuery {
  /** The upper-case group name. */
  group: string;
  /** The token's algorithm, as {@linkcode checkAlg} returned it. */
  alg: string;
  /** The header's `kid`, when it has one. */
  kid?: unknown;
}

/**
 * Views of a group's keys, by `kid:<id>` or `alg:<alg>`: made once per group
 * and key set, so choosing a key allocates nothing per datagram.
 */
const views = new WeakMap<GroupKey, Map<string, GroupKey | null>>();

function view(
  group: GroupKey,
  name: string,
  make: () => GroupKey | null,
): GroupKey | null {
  let byName = views.get(group);
  if (!byName) views.set(group, byName = new Map());
  let v = byName.get(name);
  if (v === undefined) {
    // Bounded: a group holds at most 8 keys and the algorithms are few; an
    // unknown kid is not cached.
    v = make();
    if (v !== null || name.startsWith("alg:")) byName.set(name, v);
  }
  return v;
}

/** Tries each key in file order; true when one verifies. */
function anyOf(keys: readonly VerifyKey[]): VerifyKey["verify"] {
  return async (input, signature) => {
    for (const k of keys) {
      try {
        if (await k.verify(input, signature)) return true;
      } catch {
        // A signature malformed for one key does not verify with it.
      }
    }
    return false;
  };
}

/**
 * Chooses the key(s) a token is verified with (docs/protocol.md, "Choosing
 * the key"): with a header `kid`, only the group's key of that id; without,
 * every key of the group whose algorithm is the token's, tried in file
 * order. A token never brings its own key: `jwk`, `jku`, `x5u` and `x5c`
 * header members are not looked at.
 *
 * @param query The group, the algorithm and the header's `kid`.
 * @param keys The loaded keys.
 * @returns The group's keys as one {@linkcode GroupKey} whose `verify`
 * checks the chosen key(s) (the group's own entry when it is its only key).
 * @throws {ProtocolError} `UNKNOWN_GROUP`, `UNKNOWN_KEY` or `ALG_NOT_ALLOWED`.
 */
export function chooseKey(
  query: KeyQuery,
  keys: ReadonlyMap<string, GroupKey>,
): GroupKey {
  const { group, alg, kid } = query;
  const entry = keys.get(group);
  if (!entry) fail("UNKNOWN_GROUP", `group "${group}" has no public key here`);
  if (kid !== undefined) {
    if (typeof kid !== "string") {
      fail("UNKNOWN_KEY", 'header "kid" must be a string');
    }
    const chosen = view(entry, `kid:${kid}`, () => {
      const k = entry.keys.find((k) => k.kid === kid);
      return k ? (k === entry.keys[0] ? entry : { ...entry, ...k }) : null;
    });
    if (!chosen) {
      fail(
        "UNKNOWN_KEY",
        `group ${group} has no key with kid "${kid.slice(0, 64)}"${
          entry.keys.length > 1 ? "" : `: its key is "${entry.kid}"`
        }`,
      );
    }
    if (chosen.info.alg !== alg) {
      fail(
        "ALG_NOT_ALLOWED",
        `key "${
          kid.slice(0, 64)
        }" of group ${group} verifies ${chosen.info.alg}, not ${alg}`,
      );
    }
    return chosen;
  }
  if (entry.keys.length === 1 && entry.info.alg === alg) return entry;
  const chosen = view(entry, `alg:${alg}`, () => {
    const fit = entry.keys.filter((k) => k.info.alg === alg);
    if (fit.length === 0) return null;
    if (fit.length === 1 && fit[0] === entry.keys[0]) return entry;
    return { ...entry, ...fit[0]!, verify: anyOf(fit) };
  });
  if (!chosen) {
    const algs = [...new Set(entry.keys.map((k) => k.info.alg))];
    fail(
      "ALG_NOT_ALLOWED",
      entry.keys.length === 1
        ? `group ${group} has an ${
          entry.info.type === "OKP" ? "Ed25519" : entry.info.type
        } key: sign with ${entry.info.alg}, not ${alg}`
        : `no key of group ${group} verifies ${alg}: sign with ${
          algs.join(" or ")
        }`,
    );
  }
  return chosen;
}

/**
 * Finds the group's key for a token without a `kid` and checks that the
 * token's `alg` fits it: {@linkcode chooseKey} without a `kid`.
 *
 * @param group The upper-case group name.
 * @param alg The token's algorithm.
 * @param keys The loaded keys.
 * @returns The group's key(s) for that algorithm.
 * @throws {ProtocolError} `UNKNOWN_GROUP` or `ALG_NOT_ALLOWED`.
 */
export function keyFor(
  group: string,
  alg: string,
  keys: ReadonlyMap<string, GroupKey>,
): GroupKey {
  return chooseKey({ group, alg }, keys);
}

/**
 * Verifies the signature with the group's key (whose algorithm was checked
 * by {@linkcode keyFor}), through the verify backend chosen at start-up.
 *
 * @param parsed The parsed token.
 * @param key The group's key.
 * @throws {ProtocolError} `BAD_SIGNATURE`.
 */
export async function verifySignature(
  parsed: ParsedToken,
  key: GroupKey,
): Promise<void> {
  let ok: boolean;
  try {
    ok = await key.verify(parsed.signingInput, parsed.signature);
  } catch (e) {
    // WebCrypto throws on some malformed signatures: they do not verify.
    fail("BAD_SIGNATURE", `signature of group ${key.group} is malformed`, e);
  }
  if (!ok) {
    fail(
      "BAD_SIGNATURE",
      `signature does not verify with the key of group ${key.group}`,
    );
  }
}

/**
 * Verifies the signature on this thread when the key's verifier can
 * (OpenSSL inline): {@linkcode verifySignature} without a promise.
 *
 * @param parsed The parsed token.
 * @param key The group's key.
 * @param options Whether the main thread is busy (then a key verified on
 * another thread is left to {@linkcode verifySignature}).
 * @returns True when verified; undefined when only the asynchronous
 * {@linkcode verifySignature} can decide.
 * @throws {ProtocolError} `BAD_SIGNATURE`.
 */
export function verifySignatureNow(
  parsed: ParsedToken,
  key: GroupKey,
  options?: SyncVerifierOptions,
): true | undefined {
  const sync = syncVerifier(key.verify, options);
  if (sync === undefined) return undefined;
  const ok = sync(parsed.signingInput, parsed.signature);
  if (ok === false) {
    fail(
      "BAD_SIGNATURE",
      `signature does not verify with the key of group ${key.group}`,
    );
  }
  return ok;
}

function isInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function badClaim(name: string, rule: string): never {
  fail("BAD_CLAIM", `claim "${name}" must be ${rule}`);
}

/**
 * Checks the claims after the signature: presence, types, audience, times and
 * the roster's member count, in the protocol's order.
 *
 * @param payload The verified payload.
 * @param options The clock, leeway and roster size.
 * @returns The typed claims.
 * @throws {ProtocolError} `MISSING_CLAIM`, `BAD_CLAIM`, `BAD_AUDIENCE`,
 * `TOKEN_EXPIRED`, `TOKEN_NOT_YET_VALID` or `SEQ_MAX_MISMATCH`.
 */
export function checkClaims(
  payload: Record<string, unknown>,
  options: ClaimOptions,
): RequestClaims {
  const { now, leewaySec = 30, members } = options;
  const missing = REQUIRED.find((name) => !Object.hasOwn(payload, name));
  if (missing) fail("MISSING_CLAIM", `claim "${missing}" is missing`);
  const p = payload;
  const { sub, aud, iat, exp, jti, seq_state_number: sn } = p;
  const { seq_state: colour, seq_max: seqMax, registration } = p;
  if (typeof sub !== "string") badClaim("sub", "a string");
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (
    audiences.length === 0 || !audiences.every((a) => typeof a === "string")
  ) {
    badClaim("aud", "a string or an array of strings");
  }
  if (!isTime(iat)) badClaim("iat", "a number of seconds");
  if (!isTime(exp)) badClaim("exp", "a number of seconds");
  if (typeof jti !== "string" || !JTI.test(jti)) {
    badClaim("jti", "1-64 printable ASCII characters without spaces");
  }
  if (!isInteger(sn)) badClaim("seq_state_number", "an integer");
  if (typeof colour !== "string" || !COLOURS.includes(colour)) {
    badClaim("seq_state", `one of ${COLOURS.join(" ")}`);
  }
  if (!isInteger(seqMax) || seqMax < 1) {
    badClaim("seq_max", "a positive integer");
  }
  if (!isInteger(registration)) badClaim("registration", "an integer");
  if (!audiences.includes(AUDIENCE)) {
    fail("BAD_AUDIENCE", `claim "aud" must be "${AUDIENCE}"`);
  }
  const t = now.getTime() / 1000;
  if (exp < t - leewaySec) {
    fail("TOKEN_EXPIRED", `token expired ${Math.round(t - exp)} s ago`);
  }
  if (iat > t + leewaySec) {
    fail(
      "TOKEN_NOT_YET_VALID",
      `token issued ${Math.round(iat - t)} s in the future: check the clock`,
    );
  }
  if (members !== undefined && seqMax !== members) {
    fail(
      "SEQ_MAX_MISMATCH",
      `claim "seq_max" must be ${members}, the group's member count`,
    );
  }
  return {
    sub,
    iat,
    exp,
    jti,
    seqStateNumber: sn,
    seqState: colour,
    seqMax,
    registration,
    // States past the seventh have no colour of their own to match.
    colourMismatch: sn < COLOURS.length && COLOURS[sn] !== colour,
  };
}

/** The base64url header of every answer: `{"alg":"HS256","typ":"JWT"}`. */
const RESPONSE_HEADER = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString(
  "base64url",
);

/**
 * Signs an answer with HS256 and the raw secret bytes. Synchronous (through
 * `node:crypto`), so an answer can be made and journaled in one step.
 *
 * @param claims The answer's claims, in the order they are written, or
 * their JSON text.
 * @param secret The HMAC secret, exactly as stored.
 * @returns The compact JWS as bytes.
 */
export function signResponse(
  claims: Record<string, unknown> | string,
  secret: Uint8Array,
): Uint8Array {
  const json = typeof claims === "string" ? claims : JSON.stringify(claims);
  const input = `${RESPONSE_HEADER}.${Buffer.from(json).toString("base64url")}`;
  return Buffer.from(`${input}.${hmacSha256(secret, input)}`);
}

/** The HMAC pads of each secret, computed once (RFC 2104). */
const pads = new WeakMap<Uint8Array, [Buffer, Buffer]>();

/**
 * HMAC-SHA-256 as two SHA-256 passes over precomputed pads: the same bytes as
 * `createHmac`, without setting up an HMAC context per answer (measured about
 * four times faster here).
 */
function hmacSha256(secret: Uint8Array, input: string): string {
  let p = pads.get(secret);
  if (!p) {
    const key = Buffer.alloc(64);
    if (secret.length > 64) {
      createHash("sha256").update(secret).digest().copy(key);
    } else key.set(secret);
    p = [key.map((b) => b ^ 0x36), key.map((b) => b ^ 0x5c)] as [
      Buffer,
      Buffer,
    ];
    pads.set(secret, p);
  }
  const inner = createHash("sha256").update(p[0]).update(input).digest();
  return createHash("sha256").update(p[1]).update(inner).digest("base64url");
}

/**
 * The size in bytes of the answer {@linkcode signResponse} makes of a claims
 * JSON text, known before any HMAC work.
 *
 * @param json The claims as JSON.
 * @returns The compact JWS's length.
 */
export function responseSize(json: string): number {
  const base64 = Math.ceil(Buffer.byteLength(json) * 4 / 3);
  return RESPONSE_HEADER.length + 1 + base64 + 1 + 43; // 43: HS256 MAC
}

/**
 * The lower-case hex SHA-256 of some bytes (the `id_request` claim).
 *
 * @param bytes The request's payload bytes.
 * @returns 64 hex digits.
 */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
