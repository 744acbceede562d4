/**
 * `udpjwt send`: a reference client. It walks a group through the states as
 * a student client does (one signed request per event, PROTOCOL.md §3), and
 * copes with loss the way UDP clients must: each request waits for its answer
 * with a timeout that doubles (with jitter) on every retry up to a cap, and a
 * retry resends the identical datagram, so the server answers it from its
 * cache instead of running the state machine again (§6).
 *
 * The walk ({@linkcode walk}) takes its socket, clock and randomness as
 * arguments, so the retry logic runs in tests against a fake network;
 * {@linkcode runSend} wires it to a real UDP socket and the console.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./client.ts";
 * backoffDelay(3, () => 0.5, { initialTimeoutMs: 500 }); // 4000
 * ```
 *
 * @module
 */

import { CompactSign, compactVerify } from "jose";
import { parseFlags, usageError, wholeNumber } from "../cli/_flags.ts";
import { ConfigError, fileProblem, type Io } from "../cli/errors.ts";
import { COLOURS, expected } from "../protocol/fsm.ts";
import { describeKey, fingerprint } from "../keys/public_key.ts";
import { loadPrivateKey } from "../keys/private_key.ts";
import { GROUP_NAME } from "../keys/key_ring.ts";
import { randomHex32 } from "../protocol/handler.ts";
import { AUDIENCE, sha256Hex } from "../protocol/token.ts";

/** A datagram socket talking to one server. */
export interface ClientSocket {
  /**
   * Sends one datagram to the server.
   * @param data The datagram.
   */
  send(data: Uint8Array): Promise<void>;
  /**
   * The next datagram from the server, or `undefined` once `timeoutMs` passed.
   * @param timeoutMs How long to wait.
   */
  receive(timeoutMs: number): Promise<Uint8Array | undefined>;
  /** Releases the socket. */
  close(): Promise<void>;
}

/** How requests are retried. */
export interface RetryOptions {
  /**
   * The first wait for an answer, in milliseconds.
   * @default {500}
   */
  initialTimeoutMs?: number;
  /**
   * The longest wait before jitter, in milliseconds.
   * @default {4000}
   */
  maxTimeoutMs?: number;
  /**
   * Retransmissions of one request before the walk gives up.
   * @default {10}
   */
  retries?: number;
  /**
   * Relative jitter: each wait is scaled by a random factor in
   * `[1 - jitter, 1 + jitter)`.
   * @default {0.25}
   */
  jitter?: number;
}

/**
 * How long to wait for an answer before retransmission number `attempt`
 * (0 for the first transmission): `initialTimeoutMs · 2^attempt`, capped at
 * `maxTimeoutMs`, times a jitter factor in `[1 - jitter, 1 + jitter)` so that
 * clients that lost answers together do not retry in lockstep.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./client.ts";
 * backoffDelay(0, () => 0.5); // 500
 * backoffDelay(10, () => 0.5); // 4000 (the cap)
 * backoffDelay(0, () => 0); // 375 (jitter 0.25)
 * ```
 *
 * @param attempt The number of transmissions so far minus one.
 * @param random A uniform random number in [0, 1).
 * @param options The timeouts and jitter.
 * @returns The wait in milliseconds.
 */
export function backoffDelay(
  attempt: number,
  random: () => number,
  options?: RetryOptions,
): number {
  const { initialTimeoutMs = 500, maxTimeoutMs = 4000, jitter = 0.25 } =
    options ?? {};
  const base = Math.min(maxTimeoutMs, initialTimeoutMs * 2 ** attempt);
  return base * (1 + jitter * (2 * random() - 1));
}

/**
 * A small seeded pseudo-random generator (mulberry32), for reproducible
 * simulated loss and jitter. Not for secrets.
 *
 * @param seed Any 32-bit integer.
 * @returns A function giving uniform numbers in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@linkcode LossySocket}. */
export interface LossOptions {
  /** The probability of dropping each datagram, each way, 0 to 1. */
  probability: number;
  /** Uniform random numbers in [0, 1) deciding each drop. */
  random: () => number;
  /** The clock in milliseconds, to keep waiting after a dropped answer. */
  now: () => number;
}

/**
 * A socket that drops each outgoing and each incoming datagram with a given
 * probability: a lossy network for testing clients (`--simulate-loss`).
 */
export class LossySocket implements ClientSocket {
  #inner: ClientSocket;
  #probability: number;
  #random: () => number;
  #now: () => number;
  /** Datagrams dropped: sent ones that never left, and answers discarded. */
  readonly dropped = { sent: 0, received: 0 };

  /**
   * @param inner The real socket.
   * @param options The drop probability, its randomness and the clock.
   */
  constructor(inner: ClientSocket, options: LossOptions) {
    this.#inner = inner;
    this.#probability = options.probability;
    this.#random = options.random;
    this.#now = options.now;
  }

  async send(data: Uint8Array): Promise<void> {
    if (this.#random() < this.#probability) {
      this.dropped.sent++;
      return;
    }
    await this.#inner.send(data);
  }

  async receive(timeoutMs: number): Promise<Uint8Array | undefined> {
    const deadline = this.#now() + timeoutMs;
    while (true) {
      const data = await this.#inner.receive(
        Math.max(0, deadline - this.#now()),
      );
      if (data === undefined) return undefined;
      if (this.#random() >= this.#probability) return data;
      this.dropped.received++;
    }
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Signs request payloads with a group's private key. */
export interface Signer {
  /** The algorithm, from the key type. */
  alg: "RS256" | "ES256";
  /**
   * Signs the payload bytes exactly as given.
   * @param payload The JSON payload bytes.
   * @returns The compact JWS.
   */
  sign(payload: Uint8Array): Promise<string>;
}

/**
 * A signer over a WebCrypto private key, header `{"alg":…,"typ":"JWT"}`.
 *
 * @param key The private key.
 * @param alg Its algorithm.
 * @returns The signer.
 */
export function keySigner(key: CryptoKey, alg: "RS256" | "ES256"): Signer {
  return {
    alg,
    sign: (payload) =>
      new CompactSign(payload).setProtectedHeader({ alg, typ: "JWT" }).sign(
        key,
      ),
  };
}

/** What happened to one event of the walk. */
export interface StepReport {
  /** The event sent: `seq_state_number`. */
  sn: number;
  /** The colour sent: `seq_state`. */
  colour: string;
  /** The registration number sent. */
  registration: number;
  /** The `next_number` that acknowledges the event. */
  expected: number;
  /** The `next_number` answered, when the answer had one. */
  nextNumber?: number;
  /** Whether the event was acknowledged as expected. */
  ok: boolean;
  /**
   * On failure, the server's error code, or the client's: `NO_ANSWER`,
   * `UNEXPECTED_NEXT_NUMBER` or `BAD_ANSWER`.
   */
  error?: string;
  /** The reason: the server's text after `ERROR:`, or the client's. */
  reason?: string;
  /** Whether the error came from the server. */
  fromServer?: boolean;
  /** Milliseconds from the last transmission to the answer. */
  rttMs?: number;
  /** Milliseconds from the first transmission to the end of the step. */
  elapsedMs: number;
  /** Retransmissions of this event. */
  retries: number;
  /** Fresh tokens signed because the previous one was about to expire. */
  resigned: number;
  /** Answers ignored because they did not answer this event's request. */
  stale: number;
  /** Whether the answer's HS256 signature was checked with the secret. */
  verified: boolean;
}

/** The outcome of a walk. */
export interface WalkResult {
  /** True when every event was acknowledged as expected. */
  ok: boolean;
  /** One report per event sent. */
  steps: StepReport[];
  /** Retransmissions in total. */
  retries: number;
  /** Milliseconds from the first request to the end. */
  elapsedMs: number;
}

/** Options of {@linkcode walk}. */
export interface WalkOptions {
  /** The group name, sent as `sub` (any case). */
  group: string;
  /**
   * Registration numbers, sent in turn, one per event.
   * @default {[0]}
   */
  registrations?: readonly number[];
  /**
   * `seq_max`: the group's member count.
   * @default {the number of distinct registrations}
   */
  seqMax?: number;
  /**
   * The first event sent.
   * @default {0}
   */
  from?: number;
  /**
   * The last event sent.
   * @default {states - 1}
   */
  to?: number;
  /**
   * The server's number of states.
   * @default {7}
   */
  states?: number;
  /**
   * `exp - iat` of each request, in seconds.
   * @default {60}
   */
  lifetimeSec?: number;
  /** The HMAC secret to verify answers with; unverified when absent. */
  secret?: Uint8Array;
  /** Timeouts, retries and jitter. */
  retry?: RetryOptions;
  /**
   * The clock: epoch milliseconds.
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Uniform random numbers in [0, 1) for the jitter.
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * Fresh `jti`s.
   * @default {32 random hex digits}
   */
  randomId?: () => string;
  /** Called after each event with its report. */
  onStep?: (step: StepReport) => void;
}

/** A request as sent: its bytes and the `id_request` its answer carries. */
interface SentRequest {
  bytes: Uint8Array;
  idRequest: string;
  exp: number;
}

/** What one datagram from the server means for the current step. */
type Reading =
  | { kind: "stale" }
  | { kind: "bad"; reason: string }
  | { kind: "answer"; payload: Record<string, unknown>; verified: boolean };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(
      decoder.decode(Uint8Array.fromBase64(segment, { alphabet: "base64url" })),
    );
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value
      : undefined;
  } catch {
    return undefined;
  }
}

async function readAnswer(
  data: Uint8Array,
  ids: ReadonlySet<string>,
  secret: Uint8Array | undefined,
): Promise<Reading> {
  let text: string;
  try {
    text = decoder.decode(data).trim();
  } catch {
    return { kind: "stale" };
  }
  const [h = "", p = "", s] = text.split(".");
  const header = decodeSegment(h);
  const payload = decodeSegment(p);
  // Anything that does not answer one of this event's requests (a late copy
  // of an earlier answer, a stray datagram) is not ours to judge.
  if (
    !header || !payload || s === undefined ||
    typeof payload.id_request !== "string" || !ids.has(payload.id_request)
  ) {
    return { kind: "stale" };
  }
  if (header.alg !== "HS256") {
    return {
      kind: "bad",
      reason: `the answer is signed with ${
        JSON.stringify(header.alg)
      }, not HS256`,
    };
  }
  if (secret) {
    try {
      await compactVerify(text, secret, { algorithms: ["HS256"] });
    } catch {
      return {
        kind: "bad",
        reason:
          "the answer's HS256 signature does not verify with the --secret file: is it the lab's secret byte for byte, trailing newline included?",
      };
    }
  }
  if (payload.iss !== AUDIENCE) {
    return {
      kind: "bad",
      reason: `the answer's "iss" is ${
        JSON.stringify(payload.iss)
      }, not "${AUDIENCE}"`,
    };
  }
  return { kind: "answer", payload, verified: secret !== undefined };
}

/**
 * Judges a verified answer to event `sn`: the server's error, a wrong
 * `next_number`, or the acknowledgement expected.
 */
function judge(
  payload: Record<string, unknown>,
  want: number,
): Pick<StepReport, "ok" | "error" | "reason" | "fromServer" | "nextNumber"> {
  if (typeof payload.error === "string") {
    const response = typeof payload.response === "string"
      ? payload.response.replace(/^ERROR:\s*/, "")
      : "(no reason given)";
    return {
      ok: false,
      error: payload.error,
      reason: response,
      fromServer: true,
    };
  }
  const next = payload.next_number;
  if (typeof next !== "number" || !Number.isInteger(next)) {
    return {
      ok: false,
      error: "BAD_ANSWER",
      reason: 'the answer has neither "next_number" nor "error"',
    };
  }
  if (next !== want) {
    return {
      ok: false,
      nextNumber: next,
      error: "UNEXPECTED_NEXT_NUMBER",
      reason:
        `the server answered next_number ${next}, expected ${want}: it waits for event ${next} (another client of the group is walking, or --from skips states); rerun with --from ${next}`,
    };
  }
  return { ok: true, nextNumber: next };
}

/**
 * Walks a group through events `from` … `to`: for each, signs a request
 * (claims as PROTOCOL.md §3), sends it, and waits for the answer that carries
 * its `id_request`, resending the identical datagram after each timeout. Stops
 * at the first event that fails: a server error, no answer within the retry
 * cap, an answer that does not verify, or an unexpected `next_number`.
 *
 * @param socket The socket to the server.
 * @param signer Signs the requests with the group's key.
 * @param options The group, events, secret, retries, clock and randomness.
 * @returns A report per event and whether the walk completed.
 */
export async function walk(
  socket: ClientSocket,
  signer: Signer,
  options: WalkOptions,
): Promise<WalkResult> {
  const {
    group,
    registrations = [0],
    states = 7,
    from = 0,
    to = states - 1,
    lifetimeSec = 60,
    secret,
    retry = {},
    now = Date.now,
    random = Math.random,
    randomId = randomHex32,
    onStep,
  } = options;
  const seqMax = options.seqMax ?? Math.max(1, new Set(registrations).size);
  const retries = retry.retries ?? 10;
  const start = now();
  const steps: StepReport[] = [];

  async function request(sn: number, registration: number) {
    const iat = Math.floor(now() / 1000);
    const claims = {
      sub: group,
      aud: AUDIENCE,
      iat,
      exp: iat + lifetimeSec,
      jti: randomId(),
      // The claim names of PROTOCOL.md §3, in its order.
      "seq_state_number": sn,
      "seq_state": COLOURS[sn % COLOURS.length]!,
      "seq_max": seqMax,
      registration,
    };
    const payload = encoder.encode(JSON.stringify(claims));
    const token = await signer.sign(payload);
    return {
      bytes: encoder.encode(token),
      idRequest: sha256Hex(payload),
      exp: claims.exp,
    };
  }

  for (let sn = from; sn <= to; sn++) {
    const registration = registrations[(sn - from) % registrations.length] ??
      0;
    const step: StepReport = {
      sn,
      colour: COLOURS[sn % COLOURS.length]!,
      registration,
      expected: expected(sn, { states }),
      ok: false,
      elapsedMs: 0,
      retries: 0,
      resigned: 0,
      stale: 0,
      verified: false,
    };
    const stepStart = now();
    let sent: SentRequest = await request(sn, registration);
    const ids = new Set([sent.idRequest]);
    let sentAt = now();
    await socket.send(sent.bytes);
    let attempt = 0;
    let done = false;
    while (!done) {
      const deadline = sentAt + backoffDelay(attempt, random, retry);
      while (!done) {
        const left = deadline - now();
        if (left <= 0) break;
        const data = await socket.receive(left);
        if (data === undefined) continue; // the loop re-checks the deadline
        const reading = await readAnswer(data, ids, secret);
        if (reading.kind === "stale") {
          step.stale++;
          continue;
        }
        step.rttMs = now() - sentAt;
        done = true;
        if (reading.kind === "bad") {
          Object.assign(step, { error: "BAD_ANSWER", reason: reading.reason });
        } else {
          step.verified = reading.verified;
          Object.assign(step, judge(reading.payload, step.expected));
        }
      }
      if (done) break;
      if (attempt >= retries) {
        Object.assign(step, {
          error: "NO_ANSWER",
          reason: `no answer after ${
            retries + 1
          } transmissions: is the server running at that address and port, and does it have --states ${states} or more?`,
        });
        break;
      }
      attempt++;
      step.retries++;
      // A copy must reach the server before its token expires (with a second
      // to spare), or the server has forgotten the answer and rejects it; a
      // fresh token for the same event is safe, because the state machine
      // answers a repeat as it did the first time.
      if (now() + 1000 >= sent.exp * 1000) {
        sent = await request(sn, registration);
        ids.add(sent.idRequest);
        step.resigned++;
      }
      sentAt = now();
      await socket.send(sent.bytes);
    }
    step.elapsedMs = now() - stepStart;
    steps.push(step);
    onStep?.(step);
    if (!step.ok) break;
  }
  return {
    ok: steps.length === to - from + 1 && steps.every((s) => s.ok),
    steps,
    retries: steps.reduce((n, s) => n + s.retries, 0),
    elapsedMs: now() - start,
  };
}

/**
 * A UDP socket bound to an ephemeral port, sending to one server and keeping
 * only datagrams from it. One background loop receives into a queue, so a
 * receive that times out never swallows a later datagram.
 */
export class UdpClientSocket implements ClientSocket {
  #conn: Deno.DatagramConn;
  #to: Deno.NetAddr;
  #queue: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #loop: Promise<void>;

  /**
   * @param hostname The server's address or name.
   * @param port The server's port.
   * @throws {ConfigError} When the socket cannot be opened.
   */
  constructor(hostname: string, port: number) {
    const host = hostname === "localhost"
      ? "127.0.0.1"
      : hostname.replace(/^\[(.*)\]$/, "$1");
    const bind = host === "::1"
      ? "::1"
      : host.includes(":")
      ? "::"
      : host.startsWith("127.")
      ? "127.0.0.1"
      : "0.0.0.0";
    if (typeof Deno.listenDatagram !== "function") {
      throw new ConfigError(
        "UDP sockets need Deno's unstable net feature: run through the deno.json tasks or pass --unstable-net",
        { exitCode: 1 },
      );
    }
    let conn: Deno.DatagramConn;
    try {
      conn = Deno.listenDatagram({
        hostname: bind,
        port: 0,
        transport: "udp",
      });
    } catch (e) {
      throw new ConfigError(
        `Cannot open a UDP socket on ${bind}: ${
          e instanceof Error ? e.message : e
        }`,
        { exitCode: 1, cause: e },
      );
    }
    this.#conn = conn;
    this.#to = { transport: "udp", hostname: host, port };
    const literal = /^[\d.]+$/.test(host) || host.includes(":");
    this.#loop = (async () => {
      while (true) {
        let data: Uint8Array;
        let from: Deno.Addr;
        try {
          [data, from] = await conn.receive(new Uint8Array(65536));
        } catch {
          break; // closed
        }
        const source = from as Deno.NetAddr;
        const sourceHost = source.hostname.replace(/^::ffff:/, "");
        if (source.port === port && (!literal || sourceHost === host)) {
          this.#queue.push(data.slice());
          this.#wake?.();
        }
      }
      this.#wake?.();
    })();
  }

  async send(data: Uint8Array): Promise<void> {
    try {
      await this.#conn.send(data, this.#to);
    } catch (e) {
      // A send can fail for a moment (an ICMP error from an earlier one);
      // the retry logic treats it as a lost datagram.
      if (e instanceof Deno.errors.PermissionDenied) throw e;
    }
  }

  async receive(timeoutMs: number): Promise<Uint8Array | undefined> {
    if (this.#queue.length === 0 && timeoutMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.#queue.shift();
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}

/** The usage text of `udpjwt send`. */
export const SEND_USAGE =
  `Usage: udpjwt send HOST PORT --group G --key PRIVATE.pem [options]

Walks group G through the states like a student client: one signed request
per event (RS256 for an RSA key, ES256 for a P-256 key), waiting for each
answer and resending the identical datagram when it is lost. Prints one line
per event; exits 0 only when the walk completes.

Arguments:
  HOST                   the server's address (127.0.0.1, ::1, a name)
  PORT                   the server's UDP port

Options:
  --group G              the group name, sent as "sub" (required)
  --key FILE             the group's private key: PEM PRIVATE KEY (PKCS#8),
                         RSA PRIVATE KEY or EC PRIVATE KEY (required)
  --registration R       registration number sent as "registration"; repeat
                         the flag to send several in turn (default 0)
  --seq-max N            "seq_max", the group's member count (default: the
                         number of distinct registrations)
  --secret FILE          the lab's HMAC secret, to verify the answers
                         (without it they are decoded but not verified)
  --from N               first event sent (default 0)
  --to M                 last event sent (default: the final state)
  --states N             the server's number of states, 2-1000 (default 7)
  --timeout MS           first wait for an answer (default 500); doubled on
                         each retry, with +-25% jitter
  --max-timeout MS       longest wait (default 4000)
  --retries N            retransmissions per event before giving up
                         (default 10)
  --lifetime SECONDS     exp - iat of each request, 5-3600 (default 60)
  --json                 one JSON object per event, then a summary
  --simulate-loss P      testing only: drop each outgoing and incoming
                         datagram with probability P (0-0.9)
  --seed N               seed of the simulated loss and the jitter
                         (default: random, printed in the summary)
  -h, --help             show this help

Exit codes: 0 walk complete, 1 walk failed (error answer, no answer, wrong
next_number, answer that does not verify) or a file cannot be read, 2 usage.

Examples:
  udpjwt send 127.0.0.1 44555 --group heartbeat --key examples/heartbeat_demo.key \\
    --secret keys_priv/key_secret_for_hmac.txt
  udpjwt send lab.example.org 44555 --group alpha --key alpha.key \\
    --registration 20230001 --registration 20230002`;

/** The parsed command line of `send`. */
interface SendArgs {
  hostname: string;
  port: number;
  group: string;
  keyFile: string;
  secretFile?: string;
  registrations: number[];
  seqMax?: number;
  from: number;
  to: number;
  states: number;
  lifetimeSec: number;
  retry: Required<Omit<RetryOptions, "jitter">>;
  json: boolean;
  loss: number;
  seed?: number;
}

function parseSendArgs(args: readonly string[]): SendArgs | undefined {
  const u = SEND_USAGE;
  const { values: v, positionals } = parseFlags(args, {
    group: { type: "string" },
    key: { type: "string" },
    registration: { type: "string", multiple: true },
    "seq-max": { type: "string" },
    secret: { type: "string" },
    from: { type: "string" },
    to: { type: "string" },
    states: { type: "string" },
    timeout: { type: "string" },
    "max-timeout": { type: "string" },
    retries: { type: "string" },
    lifetime: { type: "string" },
    json: { type: "boolean" },
    "simulate-loss": { type: "string" },
    seed: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, u);
  if (v.help) return undefined;
  if (positionals.length !== 2) {
    throw usageError(
      positionals.length < 2
        ? "Missing HOST and PORT: give the server's address and port"
        : `Too many arguments: "${
          positionals.slice(2).join(" ")
        }": expected HOST PORT`,
      u,
    );
  }
  const [hostname = "", portText] = positionals;
  if (hostname === "" || /\s/.test(hostname)) {
    throw usageError(`Invalid HOST "${hostname}"`, u);
  }
  const port = wholeNumber("PORT", portText, 0, {
    min: 1,
    max: 65535,
    usage: u,
  });
  if (v.group === undefined) {
    throw usageError("Missing --group: give the group's name", u);
  }
  if (!GROUP_NAME.test(v.group.toUpperCase()) || /[^\x20-\x7e]/.test(v.group)) {
    throw usageError(
      `Invalid value for --group: "${v.group}": expected 1-64 characters of A-Z 0-9 _ -`,
      u,
    );
  }
  if (v.key === undefined) {
    throw usageError(
      "Missing --key: give the group's private key file (PEM)",
      u,
    );
  }
  const registrations = (v.registration ?? ["0"]).map((r) => {
    if (!/^-?\d+$/.test(r) || !Number.isSafeInteger(Number(r))) {
      throw usageError(
        `Invalid value for --registration: "${r}": expected a whole number`,
        u,
      );
    }
    return Number(r);
  });
  const states = wholeNumber("--states", v.states, 7, {
    min: 2,
    max: 1000,
    usage: u,
  });
  const last = states - 1;
  const from = wholeNumber("--from", v.from, 0, {
    min: 0,
    max: last,
    usage: u,
  });
  const to = wholeNumber("--to", v.to, last, { min: 0, max: last, usage: u });
  if (to < from) {
    throw usageError(
      `Invalid range: --from ${from} is after --to ${to}`,
      u,
    );
  }
  let loss = 0;
  if (v["simulate-loss"] !== undefined) {
    const text = v["simulate-loss"];
    loss = /^(0|0?\.\d+|1)$/.test(text) ? Number(text) : NaN;
    if (!(loss >= 0 && loss <= 0.9)) {
      throw usageError(
        `Invalid value for --simulate-loss: "${text}": expected a probability from 0 to 0.9`,
        u,
      );
    }
  }
  const initialTimeoutMs = wholeNumber("--timeout", v.timeout, 500, {
    min: 1,
    max: 60_000,
    usage: u,
  });
  return {
    hostname,
    port,
    group: v.group,
    keyFile: v.key,
    ...(v.secret === undefined ? {} : { secretFile: v.secret }),
    registrations,
    ...(v["seq-max"] === undefined ? {} : {
      seqMax: wholeNumber("--seq-max", v["seq-max"], 1, {
        min: 1,
        max: 1_000_000,
        usage: u,
      }),
    }),
    from,
    to,
    states,
    lifetimeSec: wholeNumber("--lifetime", v.lifetime, 60, {
      min: 5,
      max: 3600,
      usage: u,
    }),
    retry: {
      initialTimeoutMs,
      maxTimeoutMs: wholeNumber("--max-timeout", v["max-timeout"], 4000, {
        min: initialTimeoutMs,
        max: 600_000,
        usage: u,
      }),
      retries: wholeNumber("--retries", v.retries, 10, {
        min: 0,
        max: 100,
        usage: u,
      }),
    },
    json: v.json ?? false,
    loss,
    ...(v.seed === undefined ? {} : {
      seed: wholeNumber("--seed", v.seed, 0, {
        min: 0,
        max: 0xffffffff,
        usage: u,
      }),
    }),
  };
}

async function readFileFor(
  flag: string,
  file: string,
): Promise<Uint8Array> {
  try {
    return await Deno.readFile(file);
  } catch (e) {
    const why = fileProblem(e, "file");
    throw new ConfigError(`Cannot read ${flag} "${file}": ${why}`, {
      exitCode: 1,
      cause: e,
    });
  }
}

function ms(value: number | undefined): string {
  return value === undefined ? "-" : `${value.toFixed(1)} ms`;
}

/**
 * One line per event: number, colour, the answer (`next_number N`, or
 * `CODE: reason`), round-trip time and retries.
 */
function stepLine(step: StepReport): string {
  const answer = step.ok
    ? `next_number ${step.nextNumber}`
    : `${step.error}: ${step.reason}`;
  const resigned = step.resigned ? ` (re-signed ${step.resigned})` : "";
  return `${String(step.sn).padStart(3)} ${step.colour.padEnd(6)}  ${
    answer.padEnd(13)
  }  rtt ${ms(step.rttMs).padStart(9)}  retries ${step.retries}${resigned}`;
}

/**
 * Runs `udpjwt send`.
 *
 * @param args The arguments after `send`.
 * @param io Where to print.
 * @returns 0 when the walk completed, 1 when it failed.
 * @throws {ConfigError} On a usage error (exit code 2) or an unreadable or
 * unusable key or secret file (exit code 1).
 */
export async function runSend(args: string[], io: Io): Promise<number> {
  const a = parseSendArgs(args);
  if (!a) {
    io.out(SEND_USAGE);
    return 0;
  }
  const keyText = new TextDecoder().decode(
    await readFileFor("--key", a.keyFile),
  );
  let loaded;
  try {
    loaded = await loadPrivateKey(keyText);
  } catch (e) {
    throw new ConfigError(
      `Cannot use the private key "${a.keyFile}": ${
        e instanceof Error ? e.message : e
      }`,
      { exitCode: 1, cause: e },
    );
  }
  let secret: Uint8Array | undefined;
  if (a.secretFile !== undefined) {
    secret = await readFileFor("--secret", a.secretFile);
    if (secret.length === 0) {
      throw new ConfigError(
        `The --secret file "${a.secretFile}" is empty: give the lab's HMAC secret`,
        { exitCode: 1 },
      );
    }
  }
  const seed = a.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!;
  const keyFingerprint = await fingerprint(loaded.publicKey);
  const socket = new UdpClientSocket(a.hostname, a.port);
  const now = () => performance.timeOrigin + performance.now();
  const lossy = a.loss > 0
    ? new LossySocket(socket, {
      probability: a.loss,
      random: seededRandom(seed),
      now,
    })
    : undefined;
  if (!a.json) {
    io.out(
      `udpjwt send: group ${a.group.toUpperCase()} to ${a.hostname} port ${a.port}, key ${a.keyFile} (${loaded.info.alg}, ${
        describeKey(loaded.publicKey)
      }, ${keyFingerprint})`,
    );
    io.out(
      secret
        ? `answers verified with ${a.secretFile}`
        : "answers NOT verified: pass --secret FILE to check their HS256 signature",
    );
    if (lossy) {
      io.out(
        `simulating loss: dropping each datagram with probability ${a.loss} (seed ${seed})`,
      );
    }
  }
  let result: WalkResult;
  try {
    result = await walk(
      lossy ?? socket,
      keySigner(loaded.key, loaded.info.alg),
      {
        group: a.group,
        registrations: a.registrations,
        ...(a.seqMax === undefined ? {} : { seqMax: a.seqMax }),
        from: a.from,
        to: a.to,
        states: a.states,
        lifetimeSec: a.lifetimeSec,
        ...(secret ? { secret } : {}),
        retry: a.retry,
        now,
        // Seeded too, so a --seed run repeats its waits as well as its losses.
        random: seededRandom(seed ^ 0x9e3779b9),
        onStep: (step) => {
          if (a.json) {
            io.out(JSON.stringify({
              type: "step",
              sn: step.sn,
              colour: step.colour,
              registration: step.registration,
              expected: step.expected,
              next_number: step.nextNumber ?? null,
              ok: step.ok,
              error: step.error ?? null,
              reason: step.reason ?? null,
              from_server: step.fromServer ?? false,
              rtt_ms: step.rttMs === undefined ? null : round(step.rttMs),
              elapsed_ms: round(step.elapsedMs),
              retries: step.retries,
              resigned: step.resigned,
              stale: step.stale,
              verified: step.verified,
            }));
          } else {
            io.out(stepLine(step));
          }
        },
      },
    );
  } finally {
    await socket.close();
  }
  const failed = result.steps.find((s) => !s.ok);
  const stale = result.steps.reduce((n, s) => n + s.stale, 0);
  if (a.json) {
    io.out(JSON.stringify({
      type: "summary",
      ok: result.ok,
      group: a.group.toUpperCase(),
      alg: loaded.info.alg,
      fingerprint: keyFingerprint,
      from: a.from,
      to: a.to,
      steps: result.steps.length,
      retries: result.retries,
      stale,
      elapsed_ms: round(result.elapsedMs),
      verified: secret !== undefined,
      failed_at: failed?.sn ?? null,
      error: failed?.error ?? null,
      reason: failed?.reason ?? null,
      simulated_loss: a.loss,
      dropped: lossy ? { ...lossy.dropped } : null,
      seed,
    }));
  } else {
    const dropped = lossy
      ? `; simulated loss dropped ${lossy.dropped.sent} sent and ${lossy.dropped.received} received datagrams (seed ${seed})`
      : "";
    const counts = `${plural(result.steps.length, "step")}, ${
      plural(result.retries, "retry", "retries")
    }, ${plural(stale, "stale answer")} ignored, ${
      (result.elapsedMs / 1000).toFixed(2)
    } s${dropped}`;
    io.out(
      result.ok
        ? `walk complete: events ${a.from}-${a.to} acknowledged (${counts})`
        : `walk FAILED at event ${failed?.sn} ${failed?.colour}: ${failed?.error} (${counts})`,
    );
  }
  return result.ok ? 0 : 1;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
