/**
 * The hostile datagrams of the fuzz test: signed token pools to mutate
 * ({@linkcode signPools}) and weighted generators of random and mutated
 * datagrams (bit flips and truncations of valid tokens, empty and oversize
 * datagrams, non-UTF-8, deeply nested or huge JSON, giant numbers, odd
 * Unicode in `sub`, header `alg` variations, protocol 2.1 headers: the new
 * algorithms, `kid`s, and `jwk`/`jku`/`x5u`/`x5c` members, some under real
 * Ed25519 signatures by a key of no group), drawn by {@linkcode generate}.
 *
 * @module
 */

import { CompactSign, exportJWK, generateKeyPair } from "jose";
import { COLOURS } from "../../lib/protocol/fsm.ts";
import {
  AUDIENCE,
  b64url,
  nowSec,
  privateKey,
  requestClaims,
  signRequest,
} from "../_helpers.ts";
import {
  ALGS_21,
  GIANT_NUMBERS,
  HEADERS,
  KEY_MEMBERS,
  KIDS,
  ODD_PAYLOADS,
  ODD_SUBS,
  SIGNERS,
  TARGETS,
} from "./_fuzz_corpus.ts";
import type { Rng } from "./_rng.ts";

/** The server's `--max-datagram` (its default). */
const MAX_DATAGRAM = 8192;

const encoder = new TextEncoder();

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
  return `${b64url(header)}.${b64url(payload)}.${b64url(rng.bytes(sigBytes))}`;
}

function flipBit(bytes: Uint8Array, bit: number): void {
  bytes[bit >>> 3] = bytes[bit >>> 3]! ^ (1 << (bit & 7));
}

/**
 * Signed tokens the fuzzer mutates, signed tokens with odd claims, and
 * tokens signed with EdDSA by a key of no group (protocol 2.1 headers).
 */
export interface Pools {
  valid: string[];
  weird: string[];
  strangers: string[];
}

/**
 * Signs the pools: 50 valid requests of the groups in {@linkcode SIGNERS}
 * (expiring in two hours, so they stay valid through a long run), 60
 * requests with odd claims under real signatures, and 30 requests for the
 * Ed25519 group EDGROUP signed by a stranger's Ed25519 key, with a `kid`
 * and the stranger's own key in the header now and then.
 *
 * @param rng The seeded generator.
 * @returns The pools.
 */
export async function signPools(rng: Rng): Promise<Pools> {
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
  // Real Ed25519 signatures that reach the server's EdDSA verification.
  const stranger = await generateKeyPair("EdDSA", { extractable: true });
  const strangerJwk = JSON.stringify(await exportJWK(stranger.publicKey));
  const strangers: string[] = [];
  for (let i = 0; i < 30; i++) {
    const group = i % 3 === 2 ? "HEARTBEAT" : "EDGROUP";
    const fields = baseFields(rng, JSON.stringify(group));
    setField(fields, "exp", String(now + 7200));
    const members = [`"alg":"${i % 4 === 1 ? "Ed25519" : "EdDSA"}"`];
    if (i % 2 === 0) members.push(`"kid":${rng.pick(KIDS)}`);
    if (i % 5 === 0) members.push(`"jwk":${strangerJwk}`);
    if (i % 5 === 1) members.push(rng.pick(KEY_MEMBERS));
    strangers.push(
      await signRaw(`{${members.join(",")}}`, objectText(fields), stranger),
    );
  }
  return { valid, weird, strangers };
}

/** A compact JWS of raw JSON texts, signed with an Ed25519 private key. */
async function signRaw(
  header: string,
  payload: string,
  pair: { privateKey: CryptoKey },
): Promise<string> {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature = await crypto.subtle.sign(
    "Ed25519",
    pair.privateKey,
    encoder.encode(input),
  );
  return `${input}.${b64url(new Uint8Array(signature))}`;
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
            `${b64url(headerFor(t.alg))}.${b64url(payload)}.${
              b64url(rng.bytes(t.sigBytes))
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
      const sig = b64url(rng.bytes(t.sigBytes));
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
            `${b64url(headerFor(t.alg))}.${b64url(objectText(fields))}.${sig}`,
          );
        }
        case 1: // the whole payload
          return encoder.encode(
            `${b64url(headerFor(t.alg))}.${
              b64url(deepFitting(rng, room))
            }.${sig}`,
          );
        case 2: // the header
          return encoder.encode(
            `${b64url(`{"alg":"RS256","x":${deepFitting(rng, room - 100)}}`)}.${
              b64url(`{"sub":"${t.group}"}`)
            }.${sig}`,
          );
        case 3: // raw, not base64url
          return encoder.encode(deepFitting(rng, MAX_DATAGRAM));
        default: // too deep for the size limit
          return encoder.encode(
            `${b64url(headerFor(t.alg))}.${
              b64url(deepJson(rng.int(4), 4000))
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
    "protocol 2.1 headers",
    60,
    (rng, pools) => {
      if (rng.chance(0.4)) {
        // A stranger's real Ed25519 signature, now and then with a bit flipped.
        const t = encoder.encode(rng.pick(pools.strangers));
        if (rng.chance(0.3)) flipBit(t, rng.int(t.length * 8));
        return t;
      }
      const t = rng.pick(TARGETS);
      const { alg, sigBytes } = rng.chance(0.5)
        ? { alg: t.alg, sigBytes: t.sigBytes }
        : rng.pick(ALGS_21);
      const members = [`"alg":"${alg}"`];
      if (rng.chance(0.6)) members.push(`"kid":${rng.pick(KIDS)}`);
      if (rng.chance(0.4)) members.push(rng.pick(KEY_MEMBERS));
      if (rng.chance(0.5)) members.push('"typ":"JWT"');
      const fields = baseFields(rng, JSON.stringify(t.group));
      return encoder.encode(
        junkToken(
          rng,
          `{${(rng.chance(0.5) ? members : members.reverse()).join(",")}}`,
          objectText(fields),
          rng.chance(0.9) ? sigBytes : rng.pick([0, 63, 65, 95, 131, 133]),
        ),
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

/**
 * Draws one hostile datagram from a generator picked by weight.
 *
 * @param rng The seeded generator.
 * @param pools The signed tokens to mutate.
 * @returns The generator's name and the datagram.
 */
export function generate(rng: Rng, pools: Pools): [string, Uint8Array] {
  let r = rng.int(TOTAL_WEIGHT);
  for (const [name, weight, gen] of GENERATORS) {
    if (r < weight) return [name, gen(rng, pools)];
    r -= weight;
  }
  throw new Error("unreachable");
}
