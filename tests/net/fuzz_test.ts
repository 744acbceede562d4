/**
 * Abuse-resistance fuzz test: `main.ts` started as a subprocess and flooded
 * over loopback with random and mutated datagrams (bit flips and truncations
 * of valid tokens, empty and oversize datagrams, non-UTF-8, deeply nested or
 * huge JSON, giant numbers, odd Unicode in `sub`, header `alg` variations)
 * while a legitimate client walks HEARTBEAT through 0..6 on its own socket.
 * The server must not crash, the walk must complete, memory must stay
 * bounded, and every datagram sent must be counted by the server or dropped
 * by the kernel.
 *
 * Kernel drops are read from the server socket's own `drops` column of
 * /proc/net/udp (exact, whatever else runs on the machine), with the
 * machine-wide `Udp:` counters of /proc/net/snmp reported beside it; Deno
 * wants `--allow-all` to read /proc/net, so both are read through `cat`.
 * The server's resident set is sampled with `ps` during the flood.
 *
 * The datagrams come from a seeded PRNG; the seed is printed (the signed
 * tokens they mutate carry the current time, so a replay is close, not
 * byte-identical). Two
 * environment variables, read only when `--allow-env` grants them:
 * `UDPJWT_FUZZ_SEED` (a 32-bit unsigned integer) replays a run and
 * `UDPJWT_FUZZ_COUNT` (default 100000) makes a longer one:
 *
 * ```sh
 * UDPJWT_FUZZ_COUNT=1000000 deno test --allow-env=UDPJWT_FUZZ_SEED,UDPJWT_FUZZ_COUNT \
 *   --allow-net=127.0.0.1,[::1] --allow-read --allow-write --allow-run tests/fuzz_test.ts
 * ```
 *
 * Run the default with
 * `deno test --allow-net=127.0.0.1,[::1] --allow-read --allow-write --allow-run tests/fuzz_test.ts`.
 *
 * @module
 */

import { COLOURS } from "../../lib/protocol/fsm.ts";
import assert from "node:assert/strict";
import { CompactSign, compactVerify, jwtVerify } from "jose";
import {
  AUDIENCE,
  envInteger,
  payloadBytes,
  privateKey,
  requestClaims,
  sha256Hex,
  signRequest,
  VECTORS,
} from "../_helpers.ts";
import { type RunningServer, UdpClient, withServer } from "../_server.ts";

const SECRET = await Deno.readFile(
  `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
);

/**
 * Datagrams sent per burst, and the pause between bursts. A burst of large
 * datagrams overflows the server's receive buffer (about 200 KiB) whatever
 * its speed; those kernel drops are counted and expected.
 */
const BURST = 50;
const PAUSE_MS = 5;
/** The legitimate client: wait per attempt, and resends before failing. */
const RETRY_MS = 1_000;
const MAX_RETRIES = 20;
/**
 * The memory bounds on the server's resident set. Under a flood V8 grows its
 * young generation: the resident set levels off about 100 MB above the start
 * (about 40 MB with `--max-semi-space-size=1`), so the growth bound leaves
 * room for that; a leak shows as growth over the flood's second half.
 */
const RSS_GROWTH_LIMIT = 150 * 1024 * 1024;
const RSS_LIMIT = 300 * 1024 * 1024;
const RSS_SECOND_HALF_LIMIT = 64 * 1024 * 1024;
/** The server's `--max-datagram` (its default). */
const MAX_DATAGRAM = 8192;

// ---------------------------------------------------------------------------
// Settings

const SEED = envInteger(
  "UDPJWT_FUZZ_SEED",
  crypto.getRandomValues(new Uint32Array(1))[0]!,
  0xffffffff,
);
const COUNT = envInteger("UDPJWT_FUZZ_COUNT", 100_000, 100_000_000);

function report(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

// ---------------------------------------------------------------------------
// A seeded PRNG (sfc32, seeded through splitmix32)

class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = mix();
    this.#b = mix();
    this.#c = mix();
    this.#d = mix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** An integer in 0..n-1. */
  int(n: number): number {
    return Math.floor(this.u32() / 2 ** 32 * n);
  }

  /** An integer in lo..hi. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() < p * 2 ** 32;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Uint8Array<ArrayBuffer> {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      b[i] = v;
      b[i + 1] = v >>> 8;
      b[i + 2] = v >>> 16;
      b[i + 3] = v >>> 24;
    }
    return b;
  }

  hex(n: number): string {
    return this.bytes(Math.ceil(n / 2)).toHex().slice(0, n);
  }

  /** `n` random characters of the base64url alphabet. */
  b64(n: number): string {
    const alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.u32() & 63];
    return s;
  }
}

// ---------------------------------------------------------------------------
// Token material

const encoder = new TextEncoder();

function b64u(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

/** The groups the fuzzer may sign for: every loaded group but HEARTBEAT. */
const SIGNERS = [
  { group: "CHEDIMON", alg: "ES256" },
  { group: "THEOTHERS", alg: "RS256" },
  { group: "SEGSANH", alg: "ES256" },
  { group: "GUILHONGA", alg: "RS256" },
  { group: "PKCS1GRP", alg: "RS256" },
] as const;

/** `sub`s for unsigned junk: loaded groups, skipped ones, unknown ones. */
const TARGETS: readonly { group: string; alg: string; sigBytes: number }[] = [
  { group: "HEARTBEAT", alg: "RS256", sigBytes: 256 },
  { group: "CHEDIMON", alg: "ES256", sigBytes: 64 },
  { group: "THEOTHERS", alg: "RS256", sigBytes: 384 },
  { group: "SEGSANH", alg: "ES256", sigBytes: 64 },
  { group: "GUILHONGA", alg: "RS256", sigBytes: 256 },
  { group: "PKCS1GRP", alg: "RS256", sigBytes: 256 },
  { group: "WEAKRSA", alg: "RS256", sigBytes: 128 },
  { group: "EDGROUP", alg: "ES256", sigBytes: 64 },
  { group: "NOSUCHGROUP", alg: "RS256", sigBytes: 256 },
];

/** Raw JSON number texts a parser may choke on. */
const GIANT_NUMBERS = [
  "1e308",
  "1e400",
  "-1e400",
  "1.7976931348623157e308",
  "18446744073709551616",
  "-18446744073709551616",
  "9007199254740993",
  "-9223372036854775808",
  "123456789012345678901234567890123456789012345678901234567890",
  "-0",
  "-0.0",
  "0.0",
  "1.0",
  "6.000000000000001",
  "5e-324",
  "1e-400",
  "1E+2",
  "0e0",
  "-1",
  "7",
  "4294967296",
  "1" + "0".repeat(400),
  "0." + "0".repeat(300) + "1",
];

/** Odd `sub` values, as JSON texts. */
const ODD_SUBS: readonly string[] = [
  ...[
    "HEARTBEAT\u200f",
    "\u202eHEARTBEAT",
    "\u202bTABTRAEH\u202c",
    "HEART\u200bBEAT",
    "\ufeffHEARTBEAT",
    "\uff28\uff25\uff21\uff32\uff34\uff22\uff25\uff21\uff34",
    "HEARTBEAT\u0000",
    "HEARTBEAT\n",
    "\t HEARTBEAT",
    "\u0000",
    "",
    "H\u0301EARTBEAT",
    "\ud83d\ude00",
    "\u0001\u0002\u001f\u007f",
    "che\u0064\u0131mon", // dotless i: upper-cases to CHEDIMON
    "\u017fegsanh", // long s: upper-cases to SEGSANH
    "gu\u0131lhonga",
    "pkc\u017f1grp",
    "theother\u017f",
    "CHED\u0130MON", // dotted capital I
    "\u00df",
    "\ufb05",
    "A".repeat(64),
    "A".repeat(65),
    "\u0130".repeat(64),
    "heartbeat",
    "HeArTbEaT",
    "NO_SUB_CLAIM",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "\u0645\u0631\u062d\u0628\u0627",
    "\u{10ffff}",
    "\u0085HEARTBEAT\u2028\u2029",
  ].map((s) => JSON.stringify(s)),
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"HEART\\ud800BEAT"',
  '"\\u0000HEARTBEAT"',
  "null",
  "123",
  "true",
  "[]",
  "{}",
  '["HEARTBEAT"]',
  '{"HEARTBEAT":1}',
];

/** Header texts with odd `alg`s and parameters. */
const HEADERS: readonly string[] = [
  '{"alg":"none"}',
  '{"alg":"none","typ":"JWT"}',
  '{"alg":"HS256","typ":"JWT"}',
  '{"alg":"hs256"}',
  '{"alg":"HS512"}',
  '{"alg":"rs256"}',
  '{"alg":"RS256 "}',
  '{"alg":"RS512"}',
  '{"alg":"PS256"}',
  '{"alg":"ES384"}',
  '{"alg":"EdDSA"}',
  '{"alg":""}',
  '{"alg":null}',
  '{"alg":256}',
  '{"alg":["RS256"]}',
  '{"alg":{"RS256":true}}',
  "{}",
  '{"typ":"JWT"}',
  '{"alg":"RS256","alg":"none"}',
  '{"alg":"none","alg":"RS256"}',
  '{"alg":"R\\u0053256"}',
  '{"alg":"RS256\\u0000"}',
  '{"alg":"ES256","crit":["exp"],"exp":1}',
  '{"alg":"RS256","crit":"b64"}',
  '{"alg":"RS256","crit":[]}',
  '{"alg":"RS256","b64":false,"crit":["b64"]}',
  '{"alg":"ES256","b64":false}',
  '{"alg":"RS256","zip":"DEF"}',
  '{"alg":"RS256","kid":"../../../etc/passwd"}',
  '{"alg":"RS256","jku":"http://127.0.0.1:1/jwks"}',
  '{"alg":"RS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}',
  '{"alg":"ES256","x5c":["AAAA"]}',
  '{"alg":"RS256","__proto__":{"alg":"none"}}',
  "[]",
  "null",
  '"RS256"',
  "1e400",
  '{"alg":"RS256"',
];

/** Payloads that are JSON but not objects, or objects of an odd shape. */
const ODD_PAYLOADS: readonly string[] = [
  "[]",
  "null",
  '"HEARTBEAT"',
  "123",
  "true",
  "{}",
  '{"__proto__":{"sub":"HEARTBEAT"}}',
  '{"constructor":{"prototype":{"sub":"HEARTBEAT"}}}',
  '{"sub":"HEARTBEAT","sub":1}',
  '{"sub":1,"sub":"HEARTBEAT"}',
  '{"sub":"HEARTBEAT"}',
  '{"":""}',
  '{"sub":"HEARTBEAT"} ',
  ' {"sub":"HEARTBEAT"}',
  '{"sub":"HEARTBEAT"}{"sub":"CHEDIMON"}',
  '{"sub":"HEARTBEAT",}',
  "{'sub':'HEARTBEAT'}",
  '{"sub":"HEARTBEAT"',
  "\u0000",
  "",
  "NaN",
  "Infinity",
];

type Fields = [string, string][];

/** Sets one to three numeric claims to a giant or odd number. */
function setGiantNumbers(rng: Rng, fields: Fields): void {
  for (let k = rng.range(1, 3); k > 0; k--) {
    setField(
      fields,
      rng.pick(["seq_state_number", "iat", "exp", "seq_max", "registration"]),
      rng.pick(GIANT_NUMBERS),
    );
  }
}

/** Request claims as raw JSON texts, so odd values can be put in. */
function baseFields(rng: Rng, sub: string): Fields {
  const now = nowSec();
  const n = rng.int(7);
  return [
    ["sub", sub],
    ["aud", JSON.stringify(AUDIENCE)],
    ["iat", String(now)],
    ["exp", String(now + 3600)],
    ["jti", JSON.stringify(rng.hex(32))],
    ["seq_state_number", String(n)],
    ["seq_state", JSON.stringify(COLOURS[n])],
    ["seq_max", "2"],
    ["registration", String(20230000 + rng.int(10000))],
  ];
}

function setField(fields: Fields, name: string, value: string): void {
  const f = fields.find(([k]) => k === name);
  if (f) f[1] = value;
  else fields.push([name, value]);
}

function objectText(fields: Fields): string {
  return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
}

function headerFor(alg: string): string {
  return `{"alg":"${alg}","typ":"JWT"}`;
}

/** A compact JWS of JSON texts and a random signature. */
function junkToken(
  rng: Rng,
  header: string,
  payload: string,
  sigBytes: number,
): string {
  return `${b64u(header)}.${b64u(payload)}.${b64u(rng.bytes(sigBytes))}`;
}

function flipBit(bytes: Uint8Array, bit: number): void {
  bytes[bit >>> 3] = bytes[bit >>> 3]! ^ (1 << (bit & 7));
}

/** Signed tokens the fuzzer mutates, and signed tokens with odd claims. */
interface Pools {
  valid: string[];
  weird: string[];
}

async function signPools(rng: Rng): Promise<Pools> {
  const keys = new Map<string, CryptoKey>();
  for (const { group } of SIGNERS) {
    keys.set(group, await privateKey(group.toLowerCase()));
  }
  const now = nowSec();
  const valid: string[] = [];
  for (let i = 0; i < 50; i++) {
    const { group, alg } = SIGNERS[i % SIGNERS.length]!;
    const n = rng.int(7);
    const extra: Record<string, unknown> = {
      exp: now + 7200,
      jti: rng.hex(32),
    };
    if (i % 7 === 3) extra.sub = group.toLowerCase();
    if (i % 11 === 5) extra.aud = ["other.audience", AUDIENCE];
    valid.push(
      await signRequest(
        requestClaims(group, n, now, extra),
        keys.get(group)!,
        alg,
      ),
    );
  }
  // Odd claims under real signatures: these get past the signature check.
  const weird: string[] = [];
  const folded = [
    '"ched\u0131mon"',
    '"\u017fegsanh"',
    '"gu\u0131lhonga"',
    '"pkc\u017f1grp"',
    '"theother\u017f"',
  ];
  for (let i = 0; i < 60; i++) {
    const { group, alg } = SIGNERS[i % SIGNERS.length]!;
    const fields = baseFields(rng, JSON.stringify(group));
    setField(fields, "exp", String(now + 7200));
    switch (i % 6) {
      case 0:
      case 1:
        setGiantNumbers(rng, fields);
        break;
      case 2:
        setField(fields, "sub", folded[i % folded.length]!);
        break;
      case 3:
        setField(
          fields,
          "x",
          "[".repeat(2000) + "]".repeat(2000),
        );
        break;
      case 4:
        setField(fields, "x", JSON.stringify("\u00e9".repeat(2000)));
        setField(
          fields,
          "aud",
          JSON.stringify([
            ...Array.from({ length: 200 }, (_, k) => `${k}`),
            AUDIENCE,
          ]),
        );
        break;
      default:
        fields.push(["sub", JSON.stringify(group.toLowerCase())]);
        fields.push(["__proto__", '{"seq_state_number":6}']);
    }
    const sign = new CompactSign(encoder.encode(objectText(fields)))
      .setProtectedHeader({ alg, typ: "JWT" });
    weird.push(await sign.sign(keys.get(group)!));
  }
  return { valid, weird };
}

// ---------------------------------------------------------------------------
// The generator

type Generator = (rng: Rng, pools: Pools) => Uint8Array;

function deepJson(kind: number, depth: number): string {
  switch (kind) {
    case 0:
      return "[".repeat(depth) + "]".repeat(depth);
    case 1:
      return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
    case 2:
      return "[".repeat(depth); // never closed
    default:
      return '[{"a":'.repeat(depth >> 1) + "null" + "}]".repeat(depth >> 1);
  }
}

/** Deep JSON (a thousand levels or so, and more) of at most `room` bytes. */
function deepFitting(rng: Rng, room: number): string {
  const kind = rng.int(4);
  const depth = rng.range(1000, 3000);
  const text = deepJson(kind, depth);
  if (text.length <= room) return text;
  return deepJson(kind, Math.floor(depth * room / text.length));
}

/** Payload bytes left in a datagram of the maximum size. */
function payloadRoom(sigBytes: number): number {
  return Math.floor((MAX_DATAGRAM - 60 - Math.ceil(sigBytes * 4 / 3)) * 3 / 4);
}

const GENERATORS: readonly [name: string, weight: number, Generator][] = [
  ["random bytes", 140, (rng) => rng.bytes(rng.range(0, 1500))],
  [
    "random ascii",
    20,
    (rng) => rng.bytes(rng.range(1, 1500)).map((b) => 0x20 + (b % 95)),
  ],
  [
    "empty",
    30,
    (rng) => encoder.encode(rng.pick(["", "", "", " ", "\n", "\r\n\t"])),
  ],
  [
    "oversize",
    15,
    (rng, pools) => {
      const size = rng.range(MAX_DATAGRAM + 1, 20_000);
      if (rng.chance(0.5)) return rng.bytes(size);
      const t = rng.pick(pools.valid);
      return encoder.encode(t + " ".repeat(size - t.length));
    },
  ],
  [
    "non-UTF-8",
    80,
    (rng, pools) => {
      const bad = [
        [0xff],
        [0xfe, 0xff],
        [0xc0, 0x80],
        [0xe0, 0x80, 0x80],
        [0xed, 0xa0, 0x80],
        [0xf4, 0x90, 0x80, 0x80],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0x80],
        [0xc3],
        [0xe2, 0x82],
      ];
      const invalid = new Uint8Array(rng.pick(bad));
      switch (rng.int(4)) {
        case 0: { // a valid token with invalid bytes inside
          const t = encoder.encode(rng.pick(pools.valid));
          const at = rng.int(t.length + 1);
          return new Uint8Array([
            ...t.subarray(0, at),
            ...invalid,
            ...t.subarray(at),
          ]);
        }
        case 1: { // valid UTF-8, not ASCII
          const t = rng.pick(pools.valid);
          const at = rng.int(t.length + 1);
          return encoder.encode(
            t.slice(0, at) + rng.pick(["\u00e9", "\ud83d\ude00", "\u200f"]) +
              t.slice(at),
          );
        }
        case 2: { // a base64url payload that is not UTF-8
          const t = rng.pick(TARGETS);
          const payload = new Uint8Array([
            ...encoder.encode(`{"sub":"${t.group}","x":"`),
            ...invalid,
            ...encoder.encode('"}'),
          ]);
          return encoder.encode(
            `${b64u(headerFor(t.alg))}.${b64u(payload)}.${
              b64u(rng.bytes(t.sigBytes))
            }`,
          );
        }
        default:
          return new Uint8Array([...invalid, ...rng.bytes(rng.range(0, 64))]);
      }
    },
  ],
  [
    "bit flips",
    110,
    (rng, pools) => {
      const t = encoder.encode(rng.pick(pools.valid));
      for (let k = rng.pick([1, 1, 1, 2, 3, 8]); k > 0; k--) {
        flipBit(t, rng.int(t.length * 8));
      }
      return t;
    },
  ],
  [
    "truncations",
    80,
    (rng, pools) => {
      const t = encoder.encode(rng.pick(pools.valid));
      const cut = rng.chance(0.3)
        ? t.length - rng.range(1, 4)
        : rng.int(t.length);
      return t.slice(0, Math.max(0, cut));
    },
  ],
  [
    "token mutations",
    70,
    (rng, pools) => {
      const t = rng.pick(pools.valid);
      const [h, p, s] = t.split(".") as [string, string, string];
      const other = rng.pick(pools.valid).split(".") as [
        string,
        string,
        string,
      ];
      const at = rng.int(t.length);
      return encoder.encode(
        rng.pick([
          () => `${t}.${t}`,
          () => t + t,
          () => `${h}.${other[1]}.${s}`,
          () => `${other[0]}.${p}.${s}`,
          () => `${h}.${p}.${other[2]}`,
          () => `${p}.${h}.${s}`,
          () => `${h}.${p}.`,
          () => `${h}.${p}`,
          () => `${h}..${s}`,
          () => `.${t}`,
          () => `${t}.`,
          () => `${h}.${p}.${s}==`,
          () => `${h}=.${p}.${s}`,
          () => t.slice(0, at) + " " + t.slice(at),
          () => t.slice(0, at) + "\u0000" + t.slice(at),
          () => t.slice(0, at) + rng.b64(1) + t.slice(at + 1),
          () => t.slice(0, at) + t.slice(at + 1),
          () => `\r\n\t ${t} \n`,
          () => t.replaceAll("-", "+").replaceAll("_", "/"),
          () => ".".repeat(rng.range(1, 4000)),
          () => t.split(".").join(".".repeat(rng.range(2, 5))),
        ])(),
      );
    },
  ],
  [
    "deep JSON",
    60,
    (rng) => {
      const t = rng.pick(TARGETS);
      const sig = b64u(rng.bytes(t.sigBytes));
      const room = payloadRoom(t.sigBytes);
      switch (rng.int(5)) {
        case 0: { // deep in a claim of an otherwise valid request
          const fields = baseFields(rng, JSON.stringify(t.group));
          setField(
            fields,
            rng.pick(["x", "aud", "sub", "seq_state_number", "jti"]),
            deepFitting(rng, room - 300),
          );
          return encoder.encode(
            `${b64u(headerFor(t.alg))}.${b64u(objectText(fields))}.${sig}`,
          );
        }
        case 1: // the whole payload
          return encoder.encode(
            `${b64u(headerFor(t.alg))}.${b64u(deepFitting(rng, room))}.${sig}`,
          );
        case 2: // the header
          return encoder.encode(
            `${b64u(`{"alg":"RS256","x":${deepFitting(rng, room - 100)}}`)}.${
              b64u(`{"sub":"${t.group}"}`)
            }.${sig}`,
          );
        case 3: // raw, not base64url
          return encoder.encode(deepFitting(rng, MAX_DATAGRAM));
        default: // too deep for the size limit
          return encoder.encode(
            `${b64u(headerFor(t.alg))}.${
              b64u(deepJson(rng.int(4), 4000))
            }.${sig}`,
          );
      }
    },
  ],
  [
    "huge JSON",
    50,
    (rng) => {
      const t = rng.pick(TARGETS);
      const fields = baseFields(rng, JSON.stringify(t.group));
      // Near the size limit: most just below it, some just above.
      const room = payloadRoom(t.sigBytes) - 260; // the other claims
      const target = rng.range(room - 1000, room + 100);
      switch (rng.int(4)) {
        case 0:
          setField(
            fields,
            rng.pick(["x", "jti", "seq_state", "sub"]),
            JSON.stringify("x".repeat(target)),
          );
          break;
        case 1:
          setField(
            fields,
            "aud",
            JSON.stringify(Array(Math.floor(target / 5)).fill("ab")),
          );
          break;
        case 2:
          for (let i = 0; fields.length * 13 < target; i++) {
            fields.push([`k${i}`, String(i)]);
          }
          break;
        default:
          setField(
            fields,
            "x",
            `"${"\\u0000".repeat(Math.floor(target / 6))}"`,
          );
      }
      return encoder.encode(
        junkToken(rng, headerFor(t.alg), objectText(fields), t.sigBytes),
      );
    },
  ],
  [
    "giant numbers",
    60,
    (rng) => {
      const t = rng.pick(TARGETS);
      const fields = baseFields(rng, JSON.stringify(t.group));
      setGiantNumbers(rng, fields);
      return encoder.encode(
        junkToken(rng, headerFor(t.alg), objectText(fields), t.sigBytes),
      );
    },
  ],
  [
    "odd sub",
    70,
    (rng) => {
      const t = rng.pick(TARGETS);
      const fields = baseFields(rng, rng.pick(ODD_SUBS));
      if (rng.chance(0.1)) fields.shift(); // no sub at all
      return encoder.encode(
        junkToken(rng, headerFor(t.alg), objectText(fields), t.sigBytes),
      );
    },
  ],
  [
    "header alg",
    70,
    (rng) => {
      const t = rng.pick(TARGETS);
      const fields = baseFields(rng, JSON.stringify(t.group));
      const header = rng.chance(0.15)
        ? headerFor(t.alg === "RS256" ? "ES256" : "RS256")
        : rng.pick(HEADERS);
      return encoder.encode(
        junkToken(rng, header, objectText(fields), t.sigBytes),
      );
    },
  ],
  [
    "token-shaped",
    60,
    (rng) => {
      const parts = rng.chance(0.8) ? 3 : rng.range(0, 7);
      return encoder.encode(
        Array.from({ length: parts }, () => rng.b64(rng.range(0, 400))).join(
          ".",
        ),
      );
    },
  ],
  [
    "odd payload",
    40,
    (rng) => {
      const t = rng.pick(TARGETS);
      return encoder.encode(
        junkToken(rng, headerFor(t.alg), rng.pick(ODD_PAYLOADS), t.sigBytes),
      );
    },
  ],
  [
    "junk signature",
    20,
    (rng) => {
      const t = rng.pick(TARGETS);
      const fields = baseFields(rng, JSON.stringify(t.group));
      return encoder.encode(
        junkToken(rng, headerFor(t.alg), objectText(fields), t.sigBytes),
      );
    },
  ],
  [
    "signed odd claims",
    15,
    (rng, pools) => encoder.encode(rng.pick(pools.weird)),
  ],
  ["valid replays", 10, (rng, pools) => encoder.encode(rng.pick(pools.valid))],
];

const TOTAL_WEIGHT = GENERATORS.reduce((sum, [, w]) => sum + w, 0);

function generate(rng: Rng, pools: Pools): [string, Uint8Array] {
  let r = rng.int(TOTAL_WEIGHT);
  for (const [name, weight, gen] of GENERATORS) {
    if (r < weight) return [name, gen(rng, pools)];
    r -= weight;
  }
  throw new Error("unreachable");
}

// ---------------------------------------------------------------------------
// Kernel counters

/**
 * The output of a command, or undefined when it cannot run. Deno asks for
 * `--allow-all` to read /proc/net directly; `cat` needs only `--allow-run`.
 */
async function command(
  cmd: string,
  args: string[],
): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** `Udp:` counters of /proc/net/snmp, or undefined where unreadable. */
async function udpSnmp(): Promise<Record<string, number> | undefined> {
  const text = await command("cat", ["/proc/net/snmp"]);
  const lines = text?.split("\n").filter((l) => l.startsWith("Udp: "));
  if (!lines || lines.length < 2) return undefined;
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
}

/**
 * Datagrams the kernel dropped for the socket bound to 127.0.0.1:`port`
 * (the `drops` column of /proc/net/udp), or undefined where unreadable.
 */
async function socketDrops(port: number): Promise<number | undefined> {
  const text = await command("cat", ["/proc/net/udp"]);
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of text?.split("\n") ?? []) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local) return Number(cols[cols.length - 1]);
  }
  return undefined;
}

/** The process id of the server whose log goes to `logDir`, through `ps`. */
async function serverPid(logDir: string): Promise<string | undefined> {
  const text = await command("ps", ["-eo", "pid=,args="]);
  for (const line of text?.split("\n") ?? []) {
    if (line.includes(`--log-dir ${logDir}`) && line.includes("main.ts")) {
      return line.trim().split(/\s+/)[0];
    }
  }
  return undefined;
}

/** The resident set of process `pid` in bytes, through `ps`. */
async function rssOf(pid: string | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const text = await command("ps", ["-o", "rss=", "-p", pid]);
  const kb = Number(text?.trim());
  return text && Number.isFinite(kb) ? kb * 1024 : undefined;
}

// ---------------------------------------------------------------------------
// The legitimate client

/** What the legitimate client did. */
interface Walk {
  sent: number;
  retries: number;
  stale: number;
  answers: number[];
}

/**
 * Sends HEARTBEAT event `n` and resends the identical datagram until the
 * answer to it arrives; checks the answer. Late answers to earlier requests
 * are skipped.
 */
async function exchange(
  client: UdpClient,
  to: Deno.NetAddr,
  key: CryptoKey,
  n: number,
  walk: Walk,
): Promise<number> {
  const token = await signRequest(
    requestClaims("HEARTBEAT", n, nowSec()),
    key,
    "RS256",
  );
  const want = await sha256Hex(payloadBytes(token));
  for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
    if (attempt > 0) walk.retries++;
    await client.send(to, token);
    walk.sent++;
    const deadline = Date.now() + RETRY_MS;
    while (true) {
      const answer = await client.next(deadline - Date.now());
      if (!answer) break;
      assert.ok(answer.length < 1000, `answer of ${answer.length} bytes`);
      const { payload, protectedHeader } = await jwtVerify(
        new TextDecoder().decode(answer),
        SECRET,
        { algorithms: ["HS256"] },
      );
      assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
      if (payload.id_request !== want) {
        walk.stale++;
        continue;
      }
      assert.equal(payload.sub, "HEARTBEAT");
      assert.equal(payload.error, undefined, String(payload.response));
      assert.equal(typeof payload.next_number, "number");
      return payload.next_number as number;
    }
  }
  assert.fail(
    `no answer to HEARTBEAT event ${n} after ${MAX_RETRIES} resends`,
  );
}

/** Resolves waiters once the fuzzer has sent enough datagrams. */
class Progress {
  sent = 0;
  #waiters: { at: number; resolve: () => void }[] = [];

  update(sent: number): void {
    this.sent = sent;
    this.#waiters = this.#waiters.filter((w) => {
      if (w.at > sent) return true;
      w.resolve();
      return false;
    });
  }

  finish(): void {
    this.update(Infinity);
  }

  until(at: number): Promise<void> {
    if (at <= this.sent) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ at, resolve }));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// The run

/** Everything the run measured, for the assertions after the stop. */
interface Figures {
  fuzzSent: number;
  bytesSent: number;
  byCategory: Record<string, number>;
  answered: number;
  answeredBy: Record<string, number>;
  walk: Walk;
  finalNext: number;
  drops: number | undefined;
  snmpBefore: Record<string, number> | undefined;
  snmpAfter: Record<string, number> | undefined;
  readyRss: number | undefined;
  /** The server's resident set during the flood: [datagrams sent, bytes]. */
  rssSamples: [number, number][];
  seconds: number;
}

/** The `Ready` record, from the oldest log file (the log may have rotated). */
async function readyRecord(
  logDir: string,
): Promise<Record<string, unknown> | undefined> {
  const files: string[] = [];
  for await (const e of Deno.readDir(logDir)) {
    if (e.name.startsWith("udpjwt.jsonl")) files.push(e.name);
  }
  const age = (f: string) => Number(f.split(".")[2] ?? 0);
  files.sort((a, b) => age(b) - age(a));
  for (const f of files) {
    using file = await Deno.open(`${logDir}/${f}`);
    const head = new Uint8Array(256 * 1024);
    const n = await file.read(head) ?? 0;
    for (
      const line of new TextDecoder().decode(head.subarray(0, n)).split("\n")
    ) {
      if (!line.includes('"Ready: ')) continue;
      try {
        return JSON.parse(line);
      } catch {
        // A line cut by the 256 KiB window.
      }
    }
  }
  return undefined;
}

async function flood(server: RunningServer, figures: Figures): Promise<void> {
  const rng = new Rng(SEED);
  const pools = await signPools(rng);
  const heartbeat = await privateKey("heartbeat");
  const fuzzer = new UdpClient();
  const legit = new UdpClient();
  const progress = new Progress();
  let stop = false;
  const started = performance.now();
  try {
    const pid = await serverPid(server.logDir);
    const sample = async () => {
      const rss = await rssOf(pid);
      if (rss !== undefined) figures.rssSamples.push([figures.fuzzSent, rss]);
    };
    await sample();
    const dropsBefore = await socketDrops(server.port);
    figures.snmpBefore = await udpSnmp();

    const sampleEvery = Math.ceil(COUNT / 4 / BURST) * BURST;
    const fuzz = async () => {
      try {
        for (let i = 0; i < COUNT && !stop; i++) {
          const [name, bytes] = generate(rng, pools);
          await fuzzer.send(server.addr, bytes);
          figures.fuzzSent++;
          figures.bytesSent += bytes.length;
          figures.byCategory[name] = (figures.byCategory[name] ?? 0) + 1;
          if ((i + 1) % BURST === 0) {
            progress.update(i + 1);
            if ((i + 1) % sampleEvery === 0) {
              await sample();
            }
            await delay(PAUSE_MS);
          }
        }
      } finally {
        progress.finish();
      }
    };
    // The walk starts once the flood is under way and is spread across it.
    const walkThrough = async () => {
      try {
        for (let n = 0; n <= 6; n++) {
          await progress.until(Math.floor(COUNT * (0.05 + n * 0.1)));
          figures.walk.answers.push(
            await exchange(legit, server.addr, heartbeat, n, figures.walk),
          );
        }
      } catch (e) {
        stop = true;
        throw e;
      }
    };
    const [f, w] = await Promise.allSettled([fuzz(), walkThrough()]);
    if (f.status === "rejected") throw f.reason;
    if (w.status === "rejected") throw w.reason;

    // A fresh request after the flood; its answer also tells that the server
    // has read every datagram sent before it.
    figures.finalNext = await exchange(
      legit,
      server.addr,
      heartbeat,
      0,
      figures.walk,
    );
    figures.seconds = (performance.now() - started) / 1000;
    await delay(200); // datagrams in flight finish (the stop grants 1.5 s more)
    await sample();
    const dropsAfter = await socketDrops(server.port);
    figures.drops = dropsBefore === undefined || dropsAfter === undefined
      ? undefined
      : dropsAfter - dropsBefore;
    figures.snmpAfter = await udpSnmp();
    figures.readyRss = (await readyRecord(server.logDir))?.rss as
      | number
      | undefined;

    // Every answer the fuzzer got is a well-formed HS256 answer under 1 KB.
    for (let a = await fuzzer.next(0); a; a = await fuzzer.next(0)) {
      assert.ok(a.length < 1000, `an answer of ${a.length} bytes`);
      const { payload } = await compactVerify(
        new TextDecoder().decode(a),
        SECRET,
        { algorithms: ["HS256"] },
      );
      const claims = JSON.parse(new TextDecoder().decode(payload));
      const code = claims.error ??
        // deno-lint-ignore no-control-regex
        (/[^\x00-\x7f]/.test(claims.sub)
          ? "success, non-ASCII sub"
          : "success");
      figures.answered++;
      figures.answeredBy[code] = (figures.answeredBy[code] ?? 0) + 1;
      assert.ok(
        typeof claims.sub === "string" && claims.sub.length <= 64,
        `sub of an answer: ${JSON.stringify(claims.sub)}`,
      );
    }
  } finally {
    stop = true;
    progress.finish();
    await fuzzer.close();
    await legit.close();
  }
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

Deno.test(
  `main.ts survives ${COUNT} hostile datagrams while a client walks 0..6`,
  async (t) => {
    report(
      `fuzz seed ${SEED} (UDPJWT_FUZZ_SEED), ${COUNT} datagrams (UDPJWT_FUZZ_COUNT)`,
    );
    const figures: Figures = {
      fuzzSent: 0,
      bytesSent: 0,
      byCategory: {},
      answered: 0,
      answeredBy: {},
      walk: { sent: 0, retries: 0, stale: 0, answers: [] },
      finalNext: -1,
      drops: undefined,
      snmpBefore: undefined,
      snmpAfter: undefined,
      readyRss: undefined,
      rssSamples: [],
      seconds: 0,
    };
    const stopped = await withServer({}, (server) => flood(server, figures));

    const ready = stopped.log.find((r) =>
      String(r.message).startsWith("Ready: ")
    );
    const end = stopped.log.findLast((r) =>
      String(r.message).startsWith("Stopped after ")
    );
    assert.ok(end, "the server logs its counts when it stops");
    const counts = end.counts as Record<string, number>;
    const errors = stopped.log.filter((r) =>
      r.level === "error" || r.level === "fatal"
    );
    const counted = sum(counts);
    const sent = figures.fuzzSent + figures.walk.sent;
    const snmp = (name: string) =>
      figures.snmpBefore && figures.snmpAfter
        ? figures.snmpAfter[name]! - figures.snmpBefore[name]!
        : undefined;
    const startRss = (ready?.rss ?? figures.readyRss) as number | undefined;
    const endRss = end.rss as number;

    report(
      [
        `sent ${figures.fuzzSent} fuzz datagrams (${
          mb(figures.bytesSent)
        }) + ${figures.walk.sent} from the client in ${
          figures.seconds.toFixed(1)
        } s`,
        `by category: ${JSON.stringify(figures.byCategory)}`,
        `server counts (${counted}): ${JSON.stringify(counts)}`,
        `kernel drops: socket ${
          figures.drops ?? "n/a"
        }, /proc/net/snmp Udp InErrors +${
          snmp("InErrors") ?? "n/a"
        } RcvbufErrors +${snmp("RcvbufErrors") ?? "n/a"} (machine-wide)`,
        `answers to the fuzzer: ${figures.answered} ${
          JSON.stringify(figures.answeredBy)
        }`,
        `client: next_number ${
          figures.walk.answers.join(",")
        }, then ${figures.finalNext}; ${figures.walk.retries} resends, ${figures.walk.stale} late answers skipped`,
        `rss: ${startRss === undefined ? "n/a" : mb(startRss)} at start, ${
          mb(endRss)
        } at stop; replay cache ${end.cached} entries, ${end.evicted} evicted`,
        `rss during the flood (datagrams sent: MB): ${
          figures.rssSamples.map(([n, b]) => `${n}: ${mb(b)}`).join(", ")
        }`,
      ].join("\n"),
    );

    await t.step("the server logs no error and exits 0", () => {
      // withServer has checked the exit code.
      assert.deepEqual(errors.map((r) => r.message), []);
      assert.doesNotMatch(stopped.stderr, / (ERROR|FATAL) /);
    });

    await t.step("the client's walk completes through the flood", () => {
      assert.deepEqual(figures.walk.answers, [1, 2, 3, 4, 5, 6, 0]);
      assert.equal(figures.finalNext, 1, "a fresh request after the flood");
    });

    await t.step(
      `the counts add up: ${counted} counted + ${
        figures.drops ?? snmp("InErrors") ?? "?"
      } kernel drops = ${sent} sent`,
      () => {
        assert.equal(counts["dropped:internal_error"], undefined);
        if (figures.drops !== undefined) {
          // The server socket's own drop counter: exact.
          assert.equal(counted + figures.drops, sent);
        } else if (snmp("InErrors") !== undefined) {
          // Machine-wide counters also count other programs' drops.
          assert.ok(counted <= sent, `${counted} counted ≤ ${sent} sent`);
          assert.ok(
            counted + snmp("InErrors")! >= sent,
            `${counted} counted + ${snmp("InErrors")} drops ≥ ${sent} sent`,
          );
        } else {
          assert.ok(counted <= sent, `${counted} counted ≤ ${sent} sent`);
        }
      },
    );

    await t.step(
      `memory stays bounded: rss ${
        startRss === undefined ? "?" : mb(startRss)
      } → ${mb(endRss)}`,
      () => {
        assert.ok(endRss < RSS_LIMIT, `${mb(endRss)} < ${mb(RSS_LIMIT)}`);
        assert.ok(startRss !== undefined, "the Ready record carries rss");
        assert.ok(
          endRss < startRss + RSS_GROWTH_LIMIT,
          `${mb(endRss)} < ${mb(startRss)} + ${mb(RSS_GROWTH_LIMIT)}`,
        );
        // Sampled with ps where available: [0%, 25%, 50%, 75%, 100%, after].
        const samples = figures.rssSamples;
        if (samples.length >= 5) {
          const half = samples.find(([n]) => n >= COUNT / 2)![1];
          const last = samples[samples.length - 1]![1];
          assert.ok(
            last - half < RSS_SECOND_HALF_LIMIT,
            `rss ${mb(half)} half-way, ${mb(last)} at the end`,
          );
        }
      },
    );
  },
);
