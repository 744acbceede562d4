/**
 * What `udpjwt send` (lib/cli/send.ts) and `udpjwt send --profile v1`
 * (lib/cli/send_v1.ts) share: the flags of a walk (HOST PORT, --group, the
 * key and its passphrase, --secret, timeouts, retries, simulated loss, --seed,
 * --json), the key and secret loading, the socket, and the lines printed
 * before, during and after the walk.
 *
 * @module
 */

import { algorithmFlag, usageError, wholeNumber } from "./_flags.ts";
import type { Io } from "./errors.ts";
import type { WalkKeys } from "./_walk_keys.ts";
import { describePublicKey } from "../keys/public_half.ts";
import { GROUP_NAME } from "../keys/key_ring.ts";
import { type RetryOptions, seededRandom } from "../client/retry.ts";
import {
  type ClientSocket,
  LossySocket,
  UdpClientSocket,
} from "../client/socket.ts";
import type {
  StepReportBase,
  WalkLoopOptions,
  WalkOutcome,
} from "../client/_walk_loop.ts";
import { keySigner, type Signer } from "../client/walk.ts";

/** The help of --key, --passphrase-file, --alg and --kid, in both usages. */
export const KEY_HELP =
  `  --key FILE             the group's private key (required): an OpenSSH
                         private key as ssh-keygen writes it (~/.ssh/id_ed25519),
                         PEM PRIVATE KEY or ENCRYPTED PRIVATE KEY (PKCS#8),
                         RSA PRIVATE KEY, EC PRIVATE KEY, or a private JWK
  --passphrase-file F    the key's passphrase: the first line of F (else the
                         environment variable UDPJWT_PASSPHRASE, else a
                         prompt when standard input is a terminal)
  --alg ALG              the algorithm, when the key allows several: RS256
                         (default), RS384, RS512, PS256, PS384 or PS512 for
                         an RSA key (a JWK's "alg" chooses it too)
  --kid KID              the "kid" header (default: a JWK's "kid", else none)`;

/** The help of the flags from --timeout on, and the exit codes. */
export const WALK_HELP =
  `  --timeout MS           first wait for an answer (default 500); doubled on
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
next_number, answer that does not verify) or a file cannot be read, 2 usage.`;

/** The flags of both walks, as `parseFlags` takes them. */
export const WALK_FLAGS = {
  group: { type: "string" },
  key: { type: "string" },
  "passphrase-file": { type: "string" },
  alg: { type: "string" },
  kid: { type: "string" },
  registration: { type: "string", multiple: true },
  "seq-max": { type: "string" },
  secret: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  timeout: { type: "string" },
  "max-timeout": { type: "string" },
  retries: { type: "string" },
  lifetime: { type: "string" },
  json: { type: "boolean" },
  "simulate-loss": { type: "string" },
  seed: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** The values of {@linkcode WALK_FLAGS} that {@linkcode parseWalkArgs} reads. */
export interface WalkFlagValues {
  group?: string | undefined;
  key?: string | undefined;
  "passphrase-file"?: string | undefined;
  alg?: string | undefined;
  kid?: string | undefined;
  secret?: string | undefined;
  timeout?: string | undefined;
  "max-timeout"?: string | undefined;
  retries?: string | undefined;
  lifetime?: string | undefined;
  json?: boolean | undefined;
  "simulate-loss"?: string | undefined;
  seed?: string | undefined;
}

/** The parsed flags both walks share. */
export interface WalkArgs {
  hostname: string;
  port: number;
  group: string;
  keyFile: string;
  passphraseFile?: string;
  alg?: string;
  kid?: string;
  secretFile?: string;
  lifetimeSec: number;
  retry: Required<Omit<RetryOptions, "jitter">>;
  json: boolean;
  loss: number;
  seed?: number;
}

/**
 * Reads HOST PORT and the flags both walks share.
 *
 * @param v The flag values.
 * @param positionals HOST and PORT.
 * @param u The usage text, for the errors.
 * @returns The parsed flags.
 * @throws {ConfigError} (exit code 2) On a missing or invalid value.
 */
export function parseWalkArgs(
  v: WalkFlagValues,
  positionals: readonly string[],
  u: string,
): WalkArgs {
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
  const alg = v.alg === undefined ? undefined : algorithmFlag(v.alg, u);
  if (v.kid !== undefined && !/^[\x20-\x7e]{1,256}$/.test(v.kid)) {
    throw usageError(
      `Invalid value for --kid: "${v.kid}": expected 1-256 printable ASCII characters`,
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
    ...(v["passphrase-file"] === undefined
      ? {}
      : { passphraseFile: v["passphrase-file"] }),
    ...(alg === undefined ? {} : { alg }),
    ...(v.kid === undefined ? {} : { kid: v.kid }),
    ...(v.secret === undefined ? {} : { secretFile: v.secret }),
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

/**
 * Reads --from and --to, events from 0 to `last`.
 *
 * @param v The flag values.
 * @param last The last event, also the default of --to.
 * @param u The usage text, for the errors.
 * @returns The first and last event to send.
 * @throws {ConfigError} (exit code 2) On a value out of range, or --to
 * before --from.
 */
export function parseEventRange(
  v: { from?: string | undefined; to?: string | undefined },
  last: number,
  u: string,
): { from: number; to: number } {
  const from = wholeNumber("--from", v.from, 0, {
    min: 0,
    max: last,
    usage: u,
  });
  const to = wholeNumber("--to", v.to, last, { min: 0, max: last, usage: u });
  if (to < from) {
    throw usageError(`Invalid range: --from ${from} is after --to ${to}`, u);
  }
  return { from, to };
}

/**
 * The start of the first line: `to HOST port PORT, key FILE (ALG, KEY,
 * FINGERPRINT[, kid "KID"])`.
 *
 * @param a The parsed flags.
 * @param w The key.
 * @returns The text.
 */
export function targetText(a: WalkArgs, w: WalkKeys): string {
  const { loaded } = w;
  return `to ${a.hostname} port ${a.port}, key ${a.keyFile} (${loaded.alg}, ${
    describePublicKey(loaded.publicKey)
  }, ${w.fingerprint}${
    loaded.kid === undefined ? "" : `, kid ${JSON.stringify(loaded.kid)}`
  })`;
}

function ms(value: number | undefined): string {
  return value === undefined ? "-" : `${value.toFixed(1)} ms`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The answer of a step, for its line: `next_number N` and `more`, or
 * `CODE: reason`.
 *
 * @param step The step.
 * @param more Said after the `next_number` of an acknowledgement.
 * @returns The text.
 */
export function answerText(step: StepReportBase, more = ""): string {
  return step.ok
    ? `next_number ${step.nextNumber}${more}`
    : `${step.error}: ${step.reason}`;
}

/**
 * The end of a step's line: round-trip time, retries and re-signed tokens.
 *
 * @param step The step.
 * @returns The text, starting with two spaces.
 */
export function timingText(step: StepReportBase): string {
  const resigned = step.resigned ? ` (re-signed ${step.resigned})` : "";
  return `  rtt ${
    ms(step.rttMs).padStart(9)
  }  retries ${step.retries}${resigned}`;
}

/**
 * The JSON fields of a step from `expected` on, with `more` after
 * `next_number`.
 *
 * @param step The step.
 * @param more Fields of the profile that go after `next_number`.
 * @returns The fields.
 */
export function stepFields(
  step: StepReportBase,
  more: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    expected: step.expected,
    next_number: step.nextNumber ?? null,
    ...more,
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
  };
}

/** A walk of one of the commands, for {@linkcode runWalk}. */
export interface WalkRun<S extends StepReportBase> {
  /** The parsed flags, with the events to walk. */
  args: WalkArgs & { from: number; to: number };
  /** The key and the secret. */
  keys: WalkKeys;
  /** The lines printed before the walk, without --json. */
  intro: string[];
  /**
   * Walks with the command's walk function.
   * @param socket The socket to walk on.
   * @param signer The group key's signer.
   * @param options The options from the shared flags.
   */
  walk(
    socket: ClientSocket,
    signer: Signer,
    options: WalkLoopOptions<S> & { lifetimeSec: number; secret?: Uint8Array },
  ): Promise<WalkOutcome<S>>;
  /** A step's JSON object with --json, but for `type`. */
  stepJson(step: S): Record<string, unknown>;
  /** A step's line without --json. */
  stepLine(step: S): string;
  /** The JSON summary's own fields, between `type` and `steps`. */
  summaryHead(ok: boolean): Record<string, unknown>;
  /** Whether the answers are verified. */
  verified: boolean;
  /** The failed event, as the summary line names it. */
  label(step: S): string;
}

/**
 * Opens the socket (dropping datagrams with --simulate-loss), runs a walk and
 * prints it: the intro lines, one line (or JSON object) per event, and the
 * summary.
 *
 * @param io Where to print.
 * @param run The command's walk.
 * @returns The exit code: 0 when the walk completed, else 1.
 * @throws {ConfigError} (exit code 1) When the socket cannot be opened.
 */
export async function runWalk<S extends StepReportBase>(
  io: Io,
  run: WalkRun<S>,
): Promise<number> {
  const { args: a, keys: w } = run;
  const seed = a.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!;
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
    run.intro.forEach((line) => io.out(line));
    if (lossy) {
      io.out(
        `simulating loss: dropping each datagram with probability ${a.loss} (seed ${seed})`,
      );
    }
  }
  let result: WalkOutcome<S>;
  try {
    result = await run.walk(
      lossy ?? socket,
      keySigner(w.loaded.key, w.loaded.alg, w.loaded.kid),
      {
        lifetimeSec: a.lifetimeSec,
        ...(w.secret ? { secret: w.secret } : {}),
        retry: a.retry,
        now,
        // Seeded too, so a --seed run repeats its waits as well as its losses.
        random: seededRandom(seed ^ 0x9e3779b9),
        onStep: (step) =>
          io.out(
            a.json
              ? JSON.stringify({ type: "step", ...run.stepJson(step) })
              : run.stepLine(step),
          ),
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
      ...run.summaryHead(result.ok),
      steps: result.steps.length,
      retries: result.retries,
      stale,
      elapsed_ms: round(result.elapsedMs),
      verified: run.verified,
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
        : `walk FAILED at event ${
          failed && run.label(failed)
        }: ${failed?.error} (${counts})`,
    );
  }
  return result.ok ? 0 : 1;
}
