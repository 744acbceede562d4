/**
 * Micro-benchmarks of the per-datagram hot path: `deno task bench`.
 *
 * Each piece a valid request goes through (parse, claims, signature, FSM,
 * `id_request` hash, HS256 answer, log record), the whole `handlePacket` for
 * fresh valid tokens, and the paths garbage takes. Signature verification
 * runs once per backend in `BACKENDS` (the backends of `lib/verify.ts`:
 * OpenSSL on a worker thread and inline, WebCrypto; plus jose's
 * `compactVerify`, the pre-FFI path, for reference), for every algorithm of
 * protocol 2.1 (RS256/384/512 and PS256/384/512 with RSA 2048, ES256/384/512
 * with P-256/384/521, EdDSA with Ed25519), one at a time (latency) and 64 at
 * once (capacity); `handlePacket` runs for RS256, ES256 and EdDSA.
 * Keys and tokens are made at start-up, in memory.
 *
 * The OpenSSL backends need `--allow-ffi`; without it their benchmarks are
 * skipped with a note on stderr.
 *
 * @module
 */

import { compactVerify } from "jose";
import { advance } from "../lib/protocol/fsm.ts";
import {
  handlePacket,
  type HandlerContext,
  otpTimestamp,
  randomHex32,
} from "../lib/protocol/handler.ts";
import { type GroupKey, keyFromText } from "../lib/keys/key_ring.ts";
import { formatJsonLine } from "../lib/cli/log.ts";
import { ReplayCache } from "../lib/state/replay.ts";
import { MemoryStore } from "../lib/state/store.ts";
import {
  AUDIENCE,
  checkAlg,
  checkClaims,
  keyFor,
  parseToken,
  readGroup,
  sha256Hex,
  signResponse,
  verifySignature,
} from "../lib/protocol/token.ts";
import {
  selectBackend,
  type VerifyBackend,
  webCryptoBackend,
} from "../lib/keys/verify.ts";
import { KEY_ALGORITHMS } from "../lib/keys/public_key.ts";
import {
  type AnyAlg as Alg,
  b64url,
  KEY_PARAMS,
  pem,
  SIGN_PARAMS,
} from "./_keys.ts";

/** The algorithms `handlePacket` runs with (a pool of fresh tokens each). */
const ALGS: Alg[] = ["RS256", "ES256", "EdDSA"];

/** Every algorithm, for the signature benchmarks. */
const VERIFY_ALGS: readonly Alg[] = KEY_ALGORITHMS;

/** A verify backend under a short label for the benchmark names. */
interface Backend {
  label: string;
  backend: VerifyBackend;
}

/**
 * The verify backends to compare, the server's default on this machine first
 * (a new backend goes in this list). The pre-FFI path, jose's
 * `compactVerify` over WebCrypto, is benchmarked alongside for reference.
 */
const BACKENDS: Backend[] = [];
try {
  // Ed25519 through OpenSSL here, to compare it with WebCrypto's (the server
  // hands Ed25519 to WebCrypto by default: see SelectOptions.ed25519).
  const ed25519 = "openssl";
  const offloaded = selectBackend({
    prefer: "openssl",
    offload: true,
    ed25519,
  });
  const inline = selectBackend({ prefer: "openssl", offload: false, ed25519 });
  const byDefault = selectBackend({ ed25519 }).backend.description;
  const openssl = [
    { label: "openssl, ECDSA on a thread", backend: offloaded.backend },
    { label: "openssl, all inline", backend: inline.backend },
  ];
  if (byDefault === inline.backend.description) openssl.reverse();
  BACKENDS.push(...openssl);
} catch (e) {
  // deno-lint-ignore no-console
  console.error(`skipping the openssl backends: ${e}`);
}
BACKENDS.push({ label: "webcrypto", backend: webCryptoBackend });

const encoder = new TextEncoder();

const NOW_SEC = Math.floor(Date.now() / 1000);

function claimsFor(group: string, sn: number): Record<string, unknown> {
  return {
    sub: group,
    aud: AUDIENCE,
    iat: NOW_SEC,
    exp: NOW_SEC + 3600,
    jti: randomHex32(),
    seq_state_number: sn,
    seq_state: ["RED", "ORANGE", "YELLOW", "GREEN", "BLUE", "INDIGO", "VIOLET"][
      sn
    ],
    seq_max: 2,
    registration: 20250001,
  };
}

async function sign(
  claims: Record<string, unknown>,
  alg: Alg,
  key: CryptoKey,
): Promise<string> {
  const input = `${
    b64url(encoder.encode(JSON.stringify({ alg, typ: "JWT" })))
  }.${b64url(encoder.encode(JSON.stringify(claims)))}`;
  const sig = await crypto.subtle.sign(
    SIGN_PARAMS[alg],
    key,
    encoder.encode(input),
  );
  return `${input}.${b64url(new Uint8Array(sig))}`;
}

/** Per algorithm: the key pair, the group key per backend, tokens. */
interface Fixture {
  group: string;
  pem: string;
  priv: CryptoKey;
  keys: Map<Backend, GroupKey>;
  token: string;
  /** Fresh tokens walking 0..6 for handlePacket; a multiple of 7. */
  pool: Uint8Array[];
}

/** Tokens per algorithm for handlePacket (RS256 signing is ~300/s). */
const POOL = 7 * 100;

async function fixture(alg: Alg): Promise<Fixture> {
  const group = `BENCH_${alg}`;
  const pair = await crypto.subtle.generateKey(KEY_PARAMS[alg], true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = pem(
    "PUBLIC KEY",
    await crypto.subtle.exportKey("spki", pair.publicKey),
  );
  // Only a JWK's alg picks RS384/RS512/PS*: those load as <group>.jwk.
  const { kty, n, e } = await crypto.subtle.exportKey(
    "jwk",
    pair.publicKey,
  );
  const [file, text] = alg.startsWith("RS") && alg !== "RS256" ||
      alg.startsWith("PS")
    ? [`${group.toLowerCase()}.jwk`, JSON.stringify({ kty, n, e, alg })]
    : [`${group.toLowerCase()}.pem`, spki];
  const keys = new Map<Backend, GroupKey>();
  for (const b of BACKENDS) {
    keys.set(b, await keyFromText(file, text, { backend: b.backend }));
  }
  const pool = await Promise.all(
    Array.from(
      { length: ALGS.includes(alg) ? POOL : 0 },
      async (_, i) =>
        encoder.encode(
          await sign(claimsFor(group, i % 7), alg, pair.privateKey),
        ),
    ),
  );
  return {
    group,
    pem: spki,
    priv: pair.privateKey,
    keys,
    token: await sign(claimsFor(group, 1), alg, pair.privateKey),
    pool,
  };
}

const fixtures = new Map<Alg, Fixture>();
for (const alg of VERIFY_ALGS) fixtures.set(alg, await fixture(alg));
const fx = (alg: Alg) => fixtures.get(alg)!;
const serverBackend = BACKENDS[0]!;

function context(backend: Backend): HandlerContext {
  const keys = new Map<string, GroupKey>();
  for (const alg of ALGS) {
    const key = fx(alg).keys.get(backend)!;
    keys.set(key.group, key); // upper case: BENCH_EDDSA
  }
  return {
    keys,
    secret: encoder.encode("udpjwt-bench-secret\n"),
    store: new MemoryStore(),
    replay: new ReplayCache(),
    now: () => new Date(),
    randomId: randomHex32,
    leewaySec: 30,
    states: 7,
    lanes: new Map(),
  };
}

// ------------------------------------------------------------- parsing --

for (const alg of ["RS256", "ES256"] as const) {
  Deno.bench({
    name: `parseToken ${alg}`,
    group: "parse",
    baseline: alg === "RS256",
    fn() {
      parseToken(fx(alg).token);
    },
  });
}

const parsedRs = parseToken(fx("RS256").token);
const ring = context(serverBackend).keys;
Deno.bench({
  name: "checkAlg + readGroup + keyFor",
  group: "parse",
  fn() {
    keyFor(readGroup(parsedRs.payload), checkAlg(parsedRs.header), ring);
  },
});

Deno.bench({
  name: "checkClaims",
  group: "parse",
  fn() {
    checkClaims(parsedRs.payload, { now: new Date(), leewaySec: 30 });
  },
});

// ---------------------------------------------------------- signatures --

for (const alg of VERIFY_ALGS) {
  const parsed = parseToken(fx(alg).token);
  for (const backend of BACKENDS) {
    const key = fx(alg).keys.get(backend)!;
    Deno.bench({
      name: `verifySignature ${alg} ${backend.label}`,
      group: `verify ${alg}`,
      baseline: backend === serverBackend,
      async fn() {
        await verifySignature(parsed, key);
      },
    });
  }
  // Capacity rather than latency: 64 verifications in flight at once, as
  // under load (an offloaded backend can use a second core), per token.
  for (const backend of BACKENDS) {
    const key = fx(alg).keys.get(backend)!;
    Deno.bench({
      name: `verifySignature ${alg} ${backend.label}, 64 at once (per 64)`,
      group: `verify ${alg} x64`,
      baseline: backend === serverBackend,
      async fn() {
        const all: Promise<void>[] = [];
        for (let i = 0; i < 64; i++) all.push(verifySignature(parsed, key));
        await Promise.all(all);
      },
    });
  }
  const cryptoKey = fx(alg).keys.get(BACKENDS.at(-1)!)!.key;
  Deno.bench({
    name: `jose compactVerify ${alg} webcrypto (pre-FFI path)`,
    group: `verify ${alg}`,
    async fn() {
      await compactVerify(fx(alg).token, cryptoKey, { algorithms: [alg] });
    },
  });
}

// -------------------------------------------------------------- answer --

const payloadBytes = parsedRs.payloadBytes;
function answerClaims(): Record<string, unknown> {
  const now = new Date();
  const iat = Math.floor(now.getTime() / 1000);
  return {
    iss: AUDIENCE,
    sub: fx("RS256").group,
    jti: randomHex32(),
    iat,
    exp: iat + 30,
    otp_timestamp: otpTimestamp(now),
    id_request: sha256Hex(payloadBytes),
    next_number: 2,
  };
}
const secret = encoder.encode("udpjwt-bench-secret\n");
const fixedAnswer = answerClaims();

Deno.bench({
  name: "sha256Hex (id_request)",
  group: "answer",
  fn() {
    sha256Hex(payloadBytes);
  },
});

Deno.bench({
  name: "randomHex32 + otpTimestamp",
  group: "answer",
  fn() {
    randomHex32();
    otpTimestamp(new Date());
  },
});

Deno.bench({
  name: "signResponse (HS256)",
  group: "answer",
  baseline: true,
  fn() {
    signResponse(fixedAnswer, secret);
  },
});

Deno.bench({
  name: "answer claims + signResponse",
  group: "answer",
  fn() {
    signResponse(answerClaims(), secret);
  },
});

let state = 0;
Deno.bench({
  name: "advance (FSM step)",
  group: "answer",
  fn() {
    const t = advance(state, (state + 1) % 7, { states: 7 });
    state = t?.state ?? 0;
  },
});

// A per-datagram log record as the server writes it (LogTape's record
// shape; the file sink's buffering and I/O are not included).
const record = {
  category: ["udpjwt", "datagram"],
  level: "info",
  timestamp: Date.now(),
  message: ["", "ok", " from ", "127.0.0.1", ":", 40000, ""],
  rawMessage: "{outcome} from {peer}:{port}",
  properties: {
    peer: "127.0.0.1",
    port: 40000,
    bytes: 700,
    group: "BENCH_RS256",
    outcome: "ok",
    seq_state_number: 1,
    next_number: 2,
    registration: 20250001,
    us: 512,
  },
} as unknown as Parameters<typeof formatJsonLine>[0];
Deno.bench({
  name: "formatJsonLine (per-datagram log record)",
  group: "answer",
  fn() {
    formatJsonLine(record);
  },
});

// ------------------------------------------------------- handlePacket --

for (const alg of ALGS) {
  for (const backend of BACKENDS) {
    const ctx = context(backend);
    const pool = fx(alg).pool;
    let i = 0;
    Deno.bench({
      name: `handlePacket ${alg} fresh token, ${backend.label}`,
      group: `handlePacket ${alg}`,
      baseline: backend === serverBackend,
      async fn(b) {
        if (i === pool.length) {
          // The pool wrapped: forget it all, so each token is new again.
          i = 0;
          ctx.replay = new ReplayCache();
          ctx.store = new MemoryStore();
        }
        const bytes = pool[i++]!;
        b.start();
        const r = await handlePacket(bytes, ctx);
        b.end();
        if (r.outcome !== "ok") throw new Error(`unexpected ${r.outcome}`);
      },
    });
  }
}

{
  const ctx = context(serverBackend);
  const token = fx("RS256").pool[0]!;
  await handlePacket(token, ctx);
  Deno.bench({
    name: "handlePacket retransmission (replay cache hit)",
    group: "handlePacket garbage",
    async fn() {
      await handlePacket(token, ctx);
    },
  });
}

const garbage = crypto.getRandomValues(new Uint8Array(100));
{
  const ctx = context(serverBackend);
  Deno.bench({
    name: "handlePacket 100 random bytes, budget left (signs an error)",
    group: "handlePacket garbage",
    baseline: true,
    async fn() {
      await handlePacket(garbage, ctx);
    },
  });
  Deno.bench({
    name: "handlePacket 100 random bytes, over budget (dropped)",
    group: "handlePacket garbage",
    async fn() {
      await handlePacket(garbage, ctx, { answerErrors: false });
    },
  });
  // Well-formed, valid claims, a real signature over other claims: the cheap
  // checks pass, so the signature is verified even over budget.
  const [h, , s] = fx("RS256").token.split(".");
  const forged = encoder.encode(
    `${h}.${
      b64url(encoder.encode(JSON.stringify(claimsFor(fx("RS256").group, 1))))
    }.${s}`,
  );
  Deno.bench({
    name: "handlePacket forged RS256 token, over budget (verified, dropped)",
    group: "handlePacket garbage",
    async fn() {
      await handlePacket(forged, ctx, { answerErrors: false });
    },
  });
}
