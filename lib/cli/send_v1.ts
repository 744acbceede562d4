/**
 * `udpjwt send --profile v1`: the reference client for a profile v1 server
 * (the June 2023 lab). It walks a group through the events `0 … M` with
 * {@linkcode walkV1} (lib/client/walk_v1.ts) and prints one line (or one JSON
 * object) per event and a summary, as `udpjwt send` does for protocol 2.
 *
 * @example
 * ```ts
 * import { splitProfile } from "./send_v1.ts";
 * splitProfile(["h", "1", "--profile", "v1"]); // { profile: "v1", rest: ["h", "1"] }
 * ```
 *
 * @module
 */

import { parseFlags, usageError, wholeNumber } from "./_flags.ts";
import { ConfigError, fileProblem, type Io } from "./errors.ts";
import {
  describePublicKey,
  loadPrivateKey,
  sshFingerprint,
} from "../keys/private_key.ts";
import { GROUP_NAME } from "../keys/key_ring.ts";
import { type RetryOptions, seededRandom } from "../client/retry.ts";
import { LossySocket, UdpClientSocket } from "../client/socket.ts";
import { keySigner } from "../client/walk.ts";
import {
  type StepReportV1,
  walkV1,
  type WalkV1Result,
} from "../client/walk_v1.ts";
import { V1_MAX_MEMBERS } from "../protocol/profile_v1.ts";

/** The usage text of `udpjwt send --profile v1`. */
export const SEND_V1_USAGE =
  `Usage: udpjwt send HOST PORT --profile v1 --group G --key PRIVATE.pem
                   --seq-max M --registration R[,R...] [options]

Walks group G of a --profile v1 server (the June 2023 lab) through the
events 0..M: one signed request per event with the claims group,
seq_number, seq_max and matricula, waiting for each answer (matched by
id_request) and resending the identical datagram when it is lost. Prints
one line per event; exits 0 only when the walk completes.

Arguments:
  HOST                   the server's address (127.0.0.1, ::1, a name)
  PORT                   the server's UDP port

Options:
  --profile v1           this client (without it: protocol 2, see
                         udpjwt send --help)
  --group G              the group name, sent as "group" (required)
  --key FILE             the group's private key: PEM PRIVATE KEY (PKCS#8),
                         RSA PRIVATE KEY or EC PRIVATE KEY; RSA-1024 works
                         (required)
  --seq-max M            "seq_max", the group's member count and final
                         state, 1-1000 (default: the number of
                         registrations given)
  --registration R       the members' registration numbers, sent as
                         "matricula": one for every event, or M of them
                         (repeat the flag or separate with commas), the
                         k-th sent with event k and the first with event 0
                         (default 0). Digits with a leading zero, or more
                         than 15, are sent as a JSON string
  --string-matricula     send every matricula as a JSON string of digits
  --bare                 send only the four v1 claims, as 2023 clients did
                         (no aud, iat, exp, jti): the server then runs its
                         machine for every copy instead of answering it
                         from its cache
  --secret FILE          the lab's HMAC secret, to verify the answers (a v1
                         lab's file has no trailing newline)
  --from N               first event sent (default 0)
  --to N                 last event sent (default M)
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
  -h, --help             show this help

Exit codes: 0 walk complete, 1 walk failed (error answer, no answer, wrong
next_number, answer that does not verify) or a file cannot be read, 2 usage.

Example:
  udpjwt send 127.0.0.1 44555 --profile v1 --group old2023 --key old2023.key \\
    --seq-max 3 --registration 20230001,20230002,20230003 \\
    --secret keys_priv/key_secret_for_hmac.txt`;

/**
 * Takes `--profile P` (or `--profile=P`) out of `send`'s arguments.
 *
 * @param args The arguments after `send`.
 * @returns The profile ("2" when not given) and the other arguments.
 * @throws {ConfigError} (exit code 2) When P is not 2 or v1.
 */
export function splitProfile(
  args: readonly string[],
): { profile: "2" | "v1"; rest: string[] } {
  const rest: string[] = [];
  let profile: string = "2";
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (a === "--profile") {
      profile = args[++i] ?? "";
    } else if (a.startsWith("--profile=")) {
      profile = a.slice("--profile=".length);
    } else rest.push(a);
  }
  if (profile !== "2" && profile !== "v1") {
    throw usageError(
      `Invalid value for --profile: "${profile}": expected 2 or v1`,
      SEND_V1_USAGE,
    );
  }
  return { profile, rest };
}

interface SendV1Args {
  hostname: string;
  port: number;
  group: string;
  keyFile: string;
  secretFile?: string;
  matriculas: (number | string)[];
  seqMax: number;
  from: number;
  to: number;
  bare: boolean;
  lifetimeSec: number;
  retry: Required<Omit<RetryOptions, "jitter">>;
  json: boolean;
  loss: number;
  seed?: number;
}

/** A registration as sent: a number when it is a plain safe integer. */
function matricula(text: string, asString: boolean, u: string) {
  if (!/^-?\d{1,20}$/.test(text) || (text.startsWith("-") && asString)) {
    throw usageError(
      `Invalid value for --registration: "${text}": expected a whole number of 1-20 digits`,
      u,
    );
  }
  const n = Number(text);
  if (!asString && Number.isSafeInteger(n) && String(n) === text) return n;
  if (text.startsWith("-")) {
    throw usageError(
      `Invalid value for --registration: "${text}": a negative number must be a safe integer`,
      u,
    );
  }
  return text;
}

function parseSendV1Args(args: readonly string[]): SendV1Args | undefined {
  const u = SEND_V1_USAGE;
  const { values: v, positionals } = parseFlags(args, {
    group: { type: "string" },
    key: { type: "string" },
    registration: { type: "string", multiple: true },
    "string-matricula": { type: "boolean" },
    "seq-max": { type: "string" },
    bare: { type: "boolean" },
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
  const asString = v["string-matricula"] ?? false;
  const matriculas = (v.registration ?? ["0"])
    .flatMap((r) => r.split(","))
    .map((r) => matricula(r.trim(), asString, u));
  const seqMax = wholeNumber(
    "--seq-max",
    v["seq-max"],
    Math.min(matriculas.length, V1_MAX_MEMBERS),
    { min: 1, max: V1_MAX_MEMBERS, usage: u },
  );
  if (matriculas.length !== 1 && matriculas.length !== seqMax) {
    throw usageError(
      `--registration gives ${matriculas.length} numbers for --seq-max ${seqMax}: give one for every event, or exactly ${seqMax} (one per member)`,
      u,
    );
  }
  const from = wholeNumber("--from", v.from, 0, {
    min: 0,
    max: seqMax,
    usage: u,
  });
  const to = wholeNumber("--to", v.to, seqMax, {
    min: 0,
    max: seqMax,
    usage: u,
  });
  if (to < from) {
    throw usageError(`Invalid range: --from ${from} is after --to ${to}`, u);
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
    matriculas,
    seqMax,
    from,
    to,
    bare: v.bare ?? false,
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

async function readFileFor(flag: string, file: string): Promise<Uint8Array> {
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

/** One line per event: number, matricula, the answer, rtt and retries. */
function stepLine(step: StepReportV1): string {
  const answer = step.ok
    ? `next_number ${step.nextNumber}  otp ${step.otpNumber ?? "-"}`
    : `${step.error}: ${step.reason}`;
  const resigned = step.resigned ? ` (re-signed ${step.resigned})` : "";
  return `${String(step.sn).padStart(3)}  matricula ${
    String(step.matricula).padEnd(10)
  }  ${answer.padEnd(25)}  rtt ${
    ms(step.rttMs).padStart(9)
  }  retries ${step.retries}${resigned}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * Runs `udpjwt send --profile v1` (the `--profile` flag already taken out by
 * {@linkcode splitProfile}).
 *
 * @param args The arguments after `send`, without `--profile v1`.
 * @param io Where to print.
 * @returns 0 when the walk completed, 1 when it failed.
 * @throws {ConfigError} On a usage error (exit code 2) or an unreadable or
 * unusable key or secret file (exit code 1).
 */
export async function runSendV1(args: string[], io: Io): Promise<number> {
  const a = parseSendV1Args(args);
  if (!a) {
    io.out(SEND_V1_USAGE);
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
  const keyFingerprint = await sshFingerprint(loaded.publicKey);
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
      `udpjwt send --profile v1: group ${a.group.toUpperCase()} (M ${a.seqMax}) to ${a.hostname} port ${a.port}, key ${a.keyFile} (${loaded.info.alg}, ${
        describePublicKey(loaded.publicKey)
      }, ${keyFingerprint})${a.bare ? ", bare tokens (no exp)" : ""}`,
    );
    io.out(
      secret
        ? `answers verified with ${a.secretFile}${
          secret.at(-1) === 0x0a
            ? " (it ends with a newline: 2023 clients used the secret without one)"
            : ""
        }`
        : "answers NOT verified: pass --secret FILE to check their HS256 signature",
    );
    if (lossy) {
      io.out(
        `simulating loss: dropping each datagram with probability ${a.loss} (seed ${seed})`,
      );
    }
  }
  let result: WalkV1Result;
  try {
    result = await walkV1(
      lossy ?? socket,
      keySigner(loaded.key, loaded.info.alg),
      {
        group: a.group,
        seqMax: a.seqMax,
        matriculas: a.matriculas,
        from: a.from,
        to: a.to,
        bare: a.bare,
        lifetimeSec: a.lifetimeSec,
        ...(secret ? { secret } : {}),
        retry: a.retry,
        now,
        random: seededRandom(seed ^ 0x9e3779b9),
        onStep: (step) => {
          if (!a.json) {
            io.out(stepLine(step));
            return;
          }
          io.out(JSON.stringify({
            type: "step",
            sn: step.sn,
            matricula: step.matricula,
            expected: step.expected,
            next_number: step.nextNumber ?? null,
            otp_number: step.otpNumber ?? null,
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
      profile: "v1",
      ok: result.ok,
      group: a.group.toUpperCase(),
      seq_max: a.seqMax,
      alg: loaded.info.alg,
      fingerprint: keyFingerprint,
      from: a.from,
      to: a.to,
      bare: a.bare,
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
        : `walk FAILED at event ${failed?.sn}: ${failed?.error} (${counts})`,
    );
  }
  return result.ok ? 0 : 1;
}
