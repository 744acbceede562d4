/**
 * `udpjwt send --profile v1`: the reference client for a profile v1 server
 * (the June 2023 lab). It walks a group through the events `0 … M` with
 * {@linkcode walkV1} (lib/client/walk_v1.ts) and prints one line (or one JSON
 * object) per event and a summary, as `udpjwt send` does for protocol 2,
 * with the flags, key loading and printing they share (_send_common.ts).
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
import type { Io } from "./errors.ts";
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
import { loadKeys } from "./_walk_keys.ts";
import { type StepReportV1, walkV1 } from "../client/walk_v1.ts";
import { V1_MAX_MEMBERS } from "../protocol/profile_v1.ts";

/** The usage text of `udpjwt send --profile v1`. */
export const SEND_V1_USAGE =
  `Usage: udpjwt send HOST PORT --profile v1 --group G --key PRIVATE.pem
                   --seq-max M --registration R[,R...] [options]

Walks group G of a --profile v1 server (the June 2023 lab) through the
events 0..M: one signed request per event with the claims group,
seq_number, seq_max and matricula, waiting for each answer (matched by
id_request) and resending the identical datagram when it is lost. Any key
udpjwt send takes works, RSA-1024 included (as the 2023 groups had). Prints
one line per event; exits 0 only when the walk completes.

Arguments:
  HOST                   the server's address (127.0.0.1, ::1, a name)
  PORT                   the server's UDP port

Options:
  --profile v1           this client (without it: protocol 2, see
                         udpjwt send --help)
  --group G              the group name, sent as "group" (required)
${KEY_HELP}
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
${WALK_HELP}

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

interface SendV1Args extends WalkArgs {
  matriculas: (number | string)[];
  seqMax: number;
  from: number;
  to: number;
  bare: boolean;
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
    ...WALK_FLAGS,
    "string-matricula": { type: "boolean" },
    bare: { type: "boolean" },
  }, u);
  if (v.help) return undefined;
  const walkArgs = parseWalkArgs(v, positionals, u);
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
  return {
    ...walkArgs,
    matriculas,
    seqMax,
    ...parseEventRange(v, seqMax, u),
    bare: v.bare ?? false,
  };
}

/** One line per event: number, matricula, the answer, rtt and retries. */
function stepLine(step: StepReportV1): string {
  return `${String(step.sn).padStart(3)}  matricula ${
    String(step.matricula).padEnd(10)
  }  ${answerText(step, `  otp ${step.otpNumber ?? "-"}`).padEnd(25)}${
    timingText(step)
  }`;
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
  const keys = await loadKeys(a);
  const { secret } = keys;
  return await runWalk(io, {
    args: a,
    keys,
    intro: [
      `udpjwt send --profile v1: group ${a.group.toUpperCase()} (M ${a.seqMax}) ${
        targetText(a, keys)
      }${a.bare ? ", bare tokens (no exp)" : ""}`,
      secret
        ? `answers verified with ${a.secretFile}${
          secret.at(-1) === 0x0a
            ? " (it ends with a newline: 2023 clients used the secret without one)"
            : ""
        }`
        : "answers NOT verified: pass --secret FILE to check their HS256 signature",
    ],
    walk: (socket, signer, options) =>
      walkV1(socket, signer, {
        ...options,
        group: a.group,
        seqMax: a.seqMax,
        matriculas: a.matriculas,
        from: a.from,
        to: a.to,
        bare: a.bare,
      }),
    stepJson: (step) => ({
      sn: step.sn,
      matricula: step.matricula,
      ...stepFields(step, { otp_number: step.otpNumber ?? null }),
    }),
    stepLine,
    summaryHead: (ok) => ({
      profile: "v1",
      ok,
      group: a.group.toUpperCase(),
      seq_max: a.seqMax,
      alg: keys.loaded.alg,
      fingerprint: keys.fingerprint,
      from: a.from,
      to: a.to,
      bare: a.bare,
    }),
    verified: secret !== undefined,
    label: (step) => String(step.sn),
  });
}
