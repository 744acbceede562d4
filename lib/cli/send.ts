/**
 * `udpjwt send`: the command line of the reference client. It parses the
 * flags, loads the group's private key and the lab's secret, walks the group
 * through the states over UDP ({@linkcode walk} in lib/client/walk.ts,
 * optionally through a {@linkcode LossySocket}), and prints one line (or one
 * JSON object) per event and a summary.
 *
 * @example
 * ```ts
 * import { runSend } from "./send.ts";
 * const lines: string[] = [];
 * const io = { out: (l: string) => lines.push(l), err: () => {} };
 * await runSend(["--help"], io); // 0
 * lines[0]!.startsWith("Usage: udpjwt send"); // true
 * ```
 *
 * @module
 */

import { parseFlags, usageError, wholeNumber } from "./_flags.ts";
import { ConfigError, fileProblem, type Io } from "./errors.ts";
import {
  describePublicKey,
  type LoadedPrivateKey,
  loadPrivateKey,
  PassphraseError,
  type PassphraseSource,
  sshFingerprint,
} from "../keys/private_key.ts";
import { KEY_ALGORITHMS } from "../keys/public_key.ts";
import { GROUP_NAME } from "../keys/key_ring.ts";
import {
  type AnswerVerifier,
  jwksVerifier,
  parseJwks,
} from "../client/answer_jwks.ts";
import { type RetryOptions, seededRandom } from "../client/retry.ts";
import { LossySocket, UdpClientSocket } from "../client/socket.ts";
import {
  keySigner,
  type StepReport,
  walk,
  type WalkResult,
} from "../client/walk.ts";
import { runSendV1, splitProfile } from "./send_v1.ts";

/** The usage text of `udpjwt send`. */
export const SEND_USAGE =
  `Usage: udpjwt send HOST PORT --group G --key PRIVATE.pem [options]

Walks group G through the states like a student client: one signed request
per event, waiting for each answer and resending the identical datagram when
it is lost. The key decides the algorithm: RS256 for an RSA key (--alg may
pick RS384, RS512, PS256, PS384 or PS512), ES256, ES384 or ES512 for an EC
P-256, P-384 or P-521 key, EdDSA for an Ed25519 key. Prints one line per
event; exits 0 only when the walk completes.

Arguments:
  HOST                   the server's address (127.0.0.1, ::1, a name)
  PORT                   the server's UDP port

Options:
  --profile v1           walk a --profile v1 server (the June 2023 lab's
                         claims): see udpjwt send --profile v1 --help
  --group G              the group name, sent as "sub" (required)
  --key FILE             the group's private key (required): an OpenSSH
                         private key as ssh-keygen writes it (~/.ssh/id_ed25519),
                         PEM PRIVATE KEY or ENCRYPTED PRIVATE KEY (PKCS#8),
                         RSA PRIVATE KEY, EC PRIVATE KEY, or a private JWK
  --passphrase-file F    the key's passphrase: the first line of F (else the
                         environment variable UDPJWT_PASSPHRASE, else a
                         prompt when standard input is a terminal)
  --alg ALG              the algorithm, when the key allows several: RS256
                         (default), RS384, RS512, PS256, PS384 or PS512 for
                         an RSA key (a JWK's "alg" chooses it too)
  --kid KID              the "kid" header (default: a JWK's "kid", else none)
  --registration R       registration number sent as "registration"; repeat
                         the flag to send several in turn (default 0)
  --seq-max N            "seq_max", the group's member count (default: the
                         number of distinct registrations)
  --secret FILE          the lab's HMAC secret, to verify the answers
                         (without it they are decoded but not verified)
  --answer-jwks FILE     the server's JWK Set (udpjwt keys --answer-key K
                         --jwks, or its /jwks.json), to verify answers
                         signed by the server's own key (--answer-key)
                         instead of HS256; excludes --secret
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
  passphraseFile?: string;
  alg?: string;
  kid?: string;
  secretFile?: string;
  answerJwksFile?: string;
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
    "passphrase-file": { type: "string" },
    alg: { type: "string" },
    kid: { type: "string" },
    registration: { type: "string", multiple: true },
    "seq-max": { type: "string" },
    secret: { type: "string" },
    "answer-jwks": { type: "string" },
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
  let alg: string | undefined;
  if (v.alg !== undefined) {
    const upper = v.alg.toUpperCase();
    alg = upper === "ED25519" || upper === "EDDSA"
      ? "EdDSA"
      : KEY_ALGORITHMS.find((name) => name === upper);
    if (alg === undefined) {
      throw usageError(
        `Invalid value for --alg: "${v.alg}": expected one of ${
          KEY_ALGORITHMS.join(", ")
        }`,
        u,
      );
    }
  }
  if (v.kid !== undefined && !/^[\x20-\x7e]{1,256}$/.test(v.kid)) {
    throw usageError(
      `Invalid value for --kid: "${v.kid}": expected 1-256 printable ASCII characters`,
      u,
    );
  }
  if (v.secret !== undefined && v["answer-jwks"] !== undefined) {
    throw usageError(
      "--secret and --answer-jwks exclude each other: give --answer-jwks when the server signs answers with its own key, else --secret",
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
    ...(v["passphrase-file"] === undefined
      ? {}
      : { passphraseFile: v["passphrase-file"] }),
    ...(alg === undefined ? {} : { alg }),
    ...(v.kid === undefined ? {} : { kid: v.kid }),
    ...(v.secret === undefined ? {} : { secretFile: v.secret }),
    ...(v["answer-jwks"] === undefined
      ? {}
      : { answerJwksFile: v["answer-jwks"] }),
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

/** The environment variable `send` reads a passphrase from. */
const PASSPHRASE_ENV = "UDPJWT_PASSPHRASE";

/** Where the passphrase came from, for the error messages. */
interface PassphraseOrigin {
  /** e.g. `--passphrase-file "pass.txt"`; unset until one was used. */
  from?: string;
}

/**
 * The passphrase source of `send`: the first line of --passphrase-file, else
 * UDPJWT_PASSPHRASE (when the process may read it), else a prompt without
 * echo when standard input is a terminal. Asked only for an encrypted key.
 */
function passphraseSource(
  a: SendArgs,
  origin: PassphraseOrigin,
): PassphraseSource {
  return async () => {
    if (a.passphraseFile !== undefined) {
      const text = new TextDecoder().decode(
        await readFileFor("--passphrase-file", a.passphraseFile),
      );
      const line = text.split(/\r?\n/)[0]!;
      if (line === "") {
        throw new ConfigError(
          `The --passphrase-file "${a.passphraseFile}" is empty: put the key's passphrase on its first line`,
          { exitCode: 1 },
        );
      }
      origin.from = `--passphrase-file "${a.passphraseFile}"`;
      return line;
    }
    if (envReadable()) {
      const value = Deno.env.get(PASSPHRASE_ENV);
      if (value !== undefined && value !== "") {
        origin.from = PASSPHRASE_ENV;
        return value;
      }
    }
    if (Deno.stdin.isTerminal()) {
      origin.from = "the prompt";
      return await promptHidden(`Passphrase for ${a.keyFile}: `);
    }
    return undefined;
  };
}

function envReadable(): boolean {
  return Deno.permissions.querySync({
    name: "env",
    variable: PASSPHRASE_ENV,
  }).state === "granted";
}

/**
 * Reads a line from the terminal without echoing it (raw mode): Enter ends
 * it, Backspace deletes, Ctrl-C aborts, Ctrl-D on an empty line gives none.
 */
async function promptHidden(prompt: string): Promise<string | undefined> {
  const encoder = new TextEncoder();
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  let interrupted = false;
  let ended = false;
  // Raw before the prompt shows, so nothing typed after it is echoed.
  Deno.stdin.setRaw(true);
  try {
    await Deno.stderr.write(encoder.encode(prompt));
    for (;;) {
      const n = await Deno.stdin.read(buf);
      const b = buf[0]!;
      if (n === null || (b === 0x04 && bytes.length === 0)) {
        ended = true;
        break;
      }
      if (b === 0x0d || b === 0x0a || b === 0x04) break;
      if (b === 0x03) {
        interrupted = true;
        break;
      }
      if (b === 0x7f || b === 0x08) {
        // Drop a whole UTF-8 character: continuation bytes, then its lead.
        while ((bytes.at(-1)! & 0xc0) === 0x80) bytes.pop();
        bytes.pop();
        continue;
      }
      bytes.push(b);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  if (interrupted) {
    throw new ConfigError("Interrupted at the passphrase prompt", {
      exitCode: 130,
    });
  }
  return ended ? undefined : new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Loads the --key file with the passphrase, --alg and --kid, turning every
 * problem into one line.
 */
async function loadKey(
  a: SendArgs,
  keyText: string,
): Promise<LoadedPrivateKey> {
  const origin: PassphraseOrigin = {};
  const file = `"${a.keyFile}"`;
  try {
    return await loadPrivateKey(keyText, {
      passphrase: passphraseSource(a, origin),
      ...(a.alg === undefined ? {} : { alg: a.alg }),
      ...(a.kid === undefined ? {} : { kid: a.kid }),
    });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if (e instanceof RangeError) {
      throw new ConfigError(`Invalid value for --alg: ${e.message}`, {
        exitCode: 2,
        cause: e,
      });
    }
    if (e instanceof PassphraseError && e.code === "PASSPHRASE_REQUIRED") {
      const env = envReadable()
        ? `set ${PASSPHRASE_ENV}`
        : `set ${PASSPHRASE_ENV} (with --allow-env=${PASSPHRASE_ENV})`;
      throw new ConfigError(
        `Cannot use the private key ${file}: it is protected by a passphrase and none was given: pass --passphrase-file FILE, ${env}, or run on a terminal to be asked`,
        { exitCode: 1, cause: e },
      );
    }
    if (e instanceof PassphraseError) {
      throw new ConfigError(
        `Cannot use the private key ${file}: wrong passphrase${
          origin.from ? ` (from ${origin.from})` : ""
        }: the key does not decrypt with it`,
        { exitCode: 1, cause: e },
      );
    }
    throw new ConfigError(
      `Cannot use the private key ${file}: ${
        e instanceof Error ? e.message : e
      }`,
      { exitCode: 1, cause: e },
    );
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
  const { profile, rest } = splitProfile(args);
  if (profile === "v1") return await runSendV1(rest, io);
  const a = parseSendArgs(rest);
  if (!a) {
    io.out(SEND_USAGE);
    return 0;
  }
  const keyText = new TextDecoder().decode(
    await readFileFor("--key", a.keyFile),
  );
  const loaded = await loadKey(a, keyText);
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
  let verifyAnswer: AnswerVerifier | undefined;
  if (a.answerJwksFile !== undefined) {
    const text = new TextDecoder().decode(
      await readFileFor("--answer-jwks", a.answerJwksFile),
    );
    try {
      verifyAnswer = jwksVerifier(parseJwks(text));
    } catch (e) {
      throw new ConfigError(
        `Cannot use --answer-jwks "${a.answerJwksFile}": ${
          e instanceof Error ? e.message : e
        }`,
        { exitCode: 1, cause: e },
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
      `udpjwt send: group ${a.group.toUpperCase()} to ${a.hostname} port ${a.port}, key ${a.keyFile} (${loaded.alg}, ${
        describePublicKey(loaded.publicKey)
      }, ${keyFingerprint}${
        loaded.kid === undefined ? "" : `, kid ${JSON.stringify(loaded.kid)}`
      })`,
    );
    io.out(
      verifyAnswer
        ? `answers verified with the server's JWK Set ${a.answerJwksFile}`
        : secret
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
      keySigner(loaded.key, loaded.alg, loaded.kid),
      {
        group: a.group,
        registrations: a.registrations,
        ...(a.seqMax === undefined ? {} : { seqMax: a.seqMax }),
        from: a.from,
        to: a.to,
        states: a.states,
        lifetimeSec: a.lifetimeSec,
        ...(secret ? { secret } : {}),
        ...(verifyAnswer ? { verifyAnswer } : {}),
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
      alg: loaded.alg,
      kid: loaded.kid ?? null,
      fingerprint: keyFingerprint,
      from: a.from,
      to: a.to,
      steps: result.steps.length,
      retries: result.retries,
      stale,
      elapsed_ms: round(result.elapsedMs),
      verified: secret !== undefined || verifyAnswer !== undefined,
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
