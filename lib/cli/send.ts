/**
 * `udpjwt send`: the command line of the reference client. It parses the
 * flags, loads the group's private key and the lab's secret, walks the group
 * through the states over UDP ({@linkcode walk} in lib/client/walk.ts,
 * optionally through a lossy socket), and prints one line (or one JSON
 * object) per event and a summary. What it shares with `send --profile v1`
 * (the common flags, key loading, socket, printing) is in _send_common.ts.
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
import { ConfigError, type Io } from "./errors.ts";
import {
  answerText,
  KEY_HELP,
  parseEventRange,
  parseWalkArgs,
  runWalk,
  stepFields,
  targetText,
  timingText,
  WALK_FLAGS,
  WALK_HELP,
  type WalkArgs,
} from "./_send_common.ts";
import { loadKeys, readFileFor } from "./_walk_keys.ts";
import {
  type AnswerVerifier,
  jwksVerifier,
  parseJwks,
} from "../client/answer_jwks.ts";
import { type StepReport, walk } from "../client/walk.ts";
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
${KEY_HELP}
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
${WALK_HELP}

Examples:
  udpjwt send 127.0.0.1 44555 --group heartbeat --key examples/heartbeat_demo.key \\
    --secret keys_priv/key_secret_for_hmac.txt
  udpjwt send lab.example.org 44555 --group alpha --key alpha.key \\
    --registration 20230001 --registration 20230002`;

/** The parsed command line of `send`. */
interface SendArgs extends WalkArgs {
  answerJwksFile?: string;
  registrations: number[];
  seqMax?: number;
  from: number;
  to: number;
  states: number;
}

function parseSendArgs(args: readonly string[]): SendArgs | undefined {
  const u = SEND_USAGE;
  const { values: v, positionals } = parseFlags(args, {
    ...WALK_FLAGS,
    "answer-jwks": { type: "string" },
    states: { type: "string" },
  }, u);
  if (v.help) return undefined;
  const walkArgs = parseWalkArgs(v, positionals, u);
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
  return {
    ...walkArgs,
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
    ...parseEventRange(v, states - 1, u),
    states,
  };
}

/** Reads the --answer-jwks file into a verifier, when it is given. */
async function answerVerifier(
  a: SendArgs,
): Promise<AnswerVerifier | undefined> {
  if (a.answerJwksFile === undefined) return undefined;
  const text = new TextDecoder().decode(
    await readFileFor("--answer-jwks", a.answerJwksFile),
  );
  try {
    return jwksVerifier(parseJwks(text));
  } catch (e) {
    throw new ConfigError(
      `Cannot use --answer-jwks "${a.answerJwksFile}": ${
        e instanceof Error ? e.message : e
      }`,
      { exitCode: 1, cause: e },
    );
  }
}

/**
 * One line per event: number, colour, the answer (`next_number N`, or
 * `CODE: reason`), round-trip time and retries.
 */
function stepLine(step: StepReport): string {
  return `${String(step.sn).padStart(3)} ${step.colour.padEnd(6)}  ${
    answerText(step).padEnd(13)
  }${timingText(step)}`;
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
  const keys = await loadKeys(a);
  const verifyAnswer = await answerVerifier(a);
  return await runWalk(io, {
    args: a,
    keys,
    intro: [
      `udpjwt send: group ${a.group.toUpperCase()} ${targetText(a, keys)}`,
      verifyAnswer
        ? `answers verified with the server's JWK Set ${a.answerJwksFile}`
        : keys.secret
        ? `answers verified with ${a.secretFile}`
        : "answers NOT verified: pass --secret FILE to check their HS256 signature",
    ],
    walk: (socket, signer, options) =>
      walk(socket, signer, {
        ...options,
        group: a.group,
        registrations: a.registrations,
        ...(a.seqMax === undefined ? {} : { seqMax: a.seqMax }),
        from: a.from,
        to: a.to,
        states: a.states,
        ...(verifyAnswer ? { verifyAnswer } : {}),
      }),
    stepJson: (step) => ({
      sn: step.sn,
      colour: step.colour,
      registration: step.registration,
      ...stepFields(step),
    }),
    stepLine,
    summaryHead: (ok) => ({
      ok,
      group: a.group.toUpperCase(),
      alg: keys.loaded.alg,
      kid: keys.loaded.kid ?? null,
      fingerprint: keys.fingerprint,
      from: a.from,
      to: a.to,
    }),
    verified: keys.secret !== undefined || verifyAnswer !== undefined,
    label: (step) => `${step.sn} ${step.colour}`,
  });
}
