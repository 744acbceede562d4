/**
 * The load tool's command line: its flags and usage text, parsed and
 * validated once into {@linkcode Options}; the user's mistakes are a
 * {@linkcode UsageError}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Alg, AnyAlg } from "../_keys.ts";

/** Load modes. */
export const MODES = [
  "rs256",
  "es256",
  "mixed",
  "flood",
  "es384",
  "es512",
  "eddsa",
  "ps256",
] as const;

/**
 * The algorithm of each single-algorithm mode of protocol 2.1 (a PS256
 * group's key is a JWK whose alg says PS256).
 */
export const MODE_ALGS: Partial<Record<Mode, AnyAlg>> = {
  es384: "ES384",
  es512: "ES512",
  eddsa: "EdDSA",
  ps256: "PS256",
};
/** A load mode. */
export type Mode = typeof MODES[number];

/** Flood kinds. */
export const FLOOD_KINDS = ["random", "forged"] as const;
/** A flood kind. */
export type FloodKind = typeof FLOOD_KINDS[number];

/** The smallest `--replay-cache` the server accepts; used with `--cycle`. */
export const CYCLE_REPLAY_CACHE = 100;

/** The usage text of `--help` and of a usage error. */
export const USAGE = `Usage: deno task load -- [options]

Drives a udpjwt server with pre-signed valid tokens and reports sent,
received, lost, responses/s, latency (p50/p99/max) and the share of correct
next_numbers.

Target:
  --spawn                start main.ts on a throwaway lab (default)
  --host ADDR            server address (default 127.0.0.1)
  --port PORT            target an already-running server (needs --lab)
  --lab DIR              lab directory with the load keys; created if missing
                         (default: a temporary one, removed at the end)
  --prepare              write the lab (--lab) and exit
  --keep-lab             keep the temporary lab and the server's logs
  --no-fsync             spawn the server with --no-fsync
  --server-arg ARG       extra server flag, repeatable (--server-arg=--log-level=warning)

Load:
  --mode MODE            rs256, es256, mixed or flood (default rs256), or one
                         algorithm of protocol 2.1: es384 (P-384), es512
                         (P-521), eddsa (Ed25519), ps256 (RSA 2048, a JWK key)
  --window W             datagrams outstanding (default 64)
  --seconds S            sending time (default 10)
  --groups N             groups walking concurrently (default 8)
  --states N             FSM states of the server (default 7)
  --tokens N             distinct tokens to pre-sign (default: S x a rate guess)
  --cycle                send a small pool round and round (spawns the server
                         with --replay-cache 100; with --port, start the server
                         with --replay-cache 100 yourself; see the module docs)
  --exp SECONDS          token lifetime (default 3600)
  --timeout MS           an answer later than this counts as lost (default 2000)
  --retransmit MS        resend an unanswered datagram every MS, as clients do;
                         latency counts from the first send (default: off,
                         250 for the flood mode's walker)

Flood mode (garbage at a fixed rate, one legitimate walker alongside):
  --flood-rate R         garbage datagrams per second (default 50000)
  --flood-kind KIND      random (random bytes) or forged (well-formed tokens of
                         the walker's group with a signature that does not
                         verify) (default random)
  --flood-size BYTES     size of random garbage (default 100)
  --flood-from ADDR      source address of the flood (default 127.0.0.2 for a
                         127.x target, else the walker's)
  --walker-rate N        walker requests per second, one outstanding (default 50)
  --walker-alg ALG       rs256 or es256 (default rs256)

Ceiling comparison (issue 11):
  --compare-ceiling [PATH]
                         run the lean ceiling server (PATH, default
                         ../shared/ceiling/lean_server.ts from the repository
                         root) and main.ts in turn on one lab with the same
                         pre-signed tokens, --pairs times per algorithm, and
                         print process CPU per verified answer of each, their
                         ratio, answers/s and the medians; main.ts runs with
                         its defaults (fsync, logs) plus --replay-cache 100,
                         as --cycle needs (default here: --window 32,
                         --seconds 6, RS256 then ES256; --mode picks one)
  --pairs N              lean/main pairs per algorithm (default 3)

Output:
  --openssl              also run openssl speed (rsa2048, ecdsap256, one core)
                         and report responses/s / verify/s (rs256, es256 and
                         mixed modes)
  --json                 one JSON object on stdout (progress goes to stderr)
  -h, --help             this help`;

/** Parsed options. */
export interface Options {
  /** `--host`, brackets removed from an IPv6 address. */
  hostname: string;
  /** `--port`: an already-running server; undefined to spawn one. */
  port: number | undefined;
  /** Whether the tool starts the server itself. */
  spawn: boolean;
  /** `--lab`; undefined for a temporary lab. */
  lab: string | undefined;
  /** `--prepare`: write the lab and exit. */
  prepare: boolean;
  /** `--keep-lab`. */
  keepLab: boolean;
  /** False with `--no-fsync`. */
  fsync: boolean;
  /** `--server-arg` values, in order. */
  serverArgs: string[];
  /** `--mode`. */
  mode: Mode;
  /** `--window`: datagrams outstanding. */
  window: number;
  /** `--seconds`: sending time. */
  seconds: number;
  /** `--groups`. */
  groups: number;
  /** `--states`: FSM states of the server. */
  states: number;
  /** `--tokens`; undefined to size the pool from a rate guess. */
  tokens: number | undefined;
  /** `--cycle`. */
  cycle: boolean;
  /** `--exp`: token lifetime in seconds. */
  expSec: number;
  /** `--timeout`: an answer later than this counts as lost. */
  timeoutMs: number;
  /** `--retransmit`; undefined for none (250 ms for the walker). */
  retransmitMs: number | undefined;
  /** `--flood-rate`: garbage datagrams per second. */
  floodRate: number;
  /** `--flood-kind`. */
  floodKind: FloodKind;
  /** `--flood-size`: bytes of random garbage. */
  floodSize: number;
  /** `--flood-from`; undefined for the default source. */
  floodFrom: string | undefined;
  /** `--walker-rate`: walker requests per second. */
  walkerRate: number;
  /** `--walker-alg`. */
  walkerAlg: Alg;
  /** `--openssl`. */
  openssl: boolean;
  /** `--json`. */
  json: boolean;
  /** `--compare-ceiling`; undefined without the flag. */
  compareCeiling: CompareOptions | undefined;
}

/** What `--compare-ceiling` runs. */
export interface CompareOptions {
  /**
   * The lean server's path as given (relative to the working directory),
   * or undefined for `../shared/ceiling/lean_server.ts` beside the
   * repository.
   */
  path: string | undefined;
  /** `--pairs`: lean/main pairs per algorithm. */
  pairs: number;
  /** The algorithms, in order: both unless `--mode` names one. */
  algs: Alg[];
}

/** A bad flag or value, or a lab that does not fit: the user's mistake. */
export class UsageError extends Error {
  override name = "UsageError";
}

function positiveInt(
  flag: string,
  value: string | undefined,
  fallback: number,
  min = 1,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `Invalid value for ${flag}: "${value}": expected a whole number of at least ${min}`,
    );
  }
  return n;
}

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UsageError(
      `Invalid value for ${flag}: "${value}": expected one of ${
        allowed.join(", ")
      }`,
    );
  }
  return v as T;
}

/**
 * Parses the load tool's command line.
 *
 * @param args The arguments after the script name.
 * @returns The options, or `help`.
 * @throws {UsageError} On an unknown flag or a bad value.
 */
export function parseOptions(args: string[]): Options | "help" {
  // `--compare-ceiling` takes an optional PATH, which parseArgs cannot
  // express: a following word that is not a flag is its value.
  let compareCeiling: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--compare-ceiling") {
      const next = args[i + 1];
      compareCeiling = next !== undefined && !next.startsWith("-") ? next : "";
      if (compareCeiling !== "") i++;
    } else if (a.startsWith("--compare-ceiling=")) {
      compareCeiling = a.slice("--compare-ceiling=".length);
    } else rest.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        "spawn": { type: "boolean" },
        "host": { type: "string" },
        "port": { type: "string" },
        "lab": { type: "string" },
        "prepare": { type: "boolean" },
        "keep-lab": { type: "boolean" },
        "no-fsync": { type: "boolean" },
        "server-arg": { type: "string", multiple: true },
        "mode": { type: "string" },
        "window": { type: "string" },
        "seconds": { type: "string" },
        "groups": { type: "string" },
        "states": { type: "string" },
        "tokens": { type: "string" },
        "cycle": { type: "boolean" },
        "exp": { type: "string" },
        "timeout": { type: "string" },
        "retransmit": { type: "string" },
        "flood-rate": { type: "string" },
        "flood-kind": { type: "string" },
        "flood-size": { type: "string" },
        "flood-from": { type: "string" },
        "walker-rate": { type: "string" },
        "walker-alg": { type: "string" },
        "openssl": { type: "boolean" },
        "json": { type: "boolean" },
        "pairs": { type: "string" },
        "help": { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError(
      e instanceof Error ? e.message.split(". ")[0] ?? e.message : String(e),
    );
  }
  const v = parsed.values;
  if (v.help) return "help";
  const port = v.port === undefined
    ? undefined
    : positiveInt("--port", v.port, 0);
  const spawn = v.spawn === true || port === undefined;
  if (port !== undefined && v.spawn) {
    throw new UsageError("Pass either --port or --spawn, not both");
  }
  if (!spawn && v.lab === undefined) {
    throw new UsageError(
      "--port needs --lab DIR: the lab whose keys_pub the server loaded (make one with --lab DIR --prepare)",
    );
  }
  if (v.prepare && v.lab === undefined) {
    throw new UsageError("--prepare needs --lab DIR");
  }
  if (!spawn && (v["no-fsync"] || v["server-arg"])) {
    throw new UsageError(
      "--no-fsync and --server-arg need a server the tool starts: drop --port",
    );
  }
  const states = positiveInt("--states", v.states, 7, 2);
  const compare = compareCeiling !== undefined;
  if (compare) {
    if (!spawn) {
      throw new UsageError(
        "--compare-ceiling starts both servers itself: drop --port",
      );
    }
    if (
      v.mode !== undefined && !["rs256", "es256"].includes(v.mode.toLowerCase())
    ) {
      throw new UsageError(
        `--compare-ceiling runs rs256 or es256, not "${v.mode}"`,
      );
    }
    if (v.prepare || v["no-fsync"] || v.openssl || v.tokens !== undefined) {
      throw new UsageError(
        "--compare-ceiling takes none of --prepare, --no-fsync, --openssl, --tokens: it compares against main.ts with its defaults on a cycled pool",
      );
    }
  } else if (v.pairs !== undefined) {
    throw new UsageError("--pairs goes with --compare-ceiling");
  }
  return {
    hostname: (v.host ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1"),
    port,
    spawn,
    lab: v.lab,
    prepare: v.prepare === true,
    keepLab: v["keep-lab"] === true,
    fsync: v["no-fsync"] !== true,
    serverArgs: v["server-arg"] ?? [],
    mode: oneOf("--mode", v.mode, MODES, "rs256"),
    window: positiveInt("--window", v.window, compare ? 32 : 64),
    seconds: positiveInt("--seconds", v.seconds, compare ? 6 : 10),
    groups: positiveInt("--groups", v.groups, 8),
    states,
    tokens: v.tokens === undefined
      ? undefined
      : positiveInt("--tokens", v.tokens, 1),
    cycle: v.cycle === true || compare,
    expSec: positiveInt("--exp", v.exp, 3600),
    timeoutMs: positiveInt("--timeout", v.timeout, 2000),
    retransmitMs: v.retransmit === undefined
      ? undefined
      : positiveInt("--retransmit", v.retransmit, 1),
    floodRate: positiveInt("--flood-rate", v["flood-rate"], 50_000),
    floodKind: oneOf("--flood-kind", v["flood-kind"], FLOOD_KINDS, "random"),
    floodSize: positiveInt("--flood-size", v["flood-size"], 100),
    floodFrom: v["flood-from"],
    walkerRate: positiveInt("--walker-rate", v["walker-rate"], 50),
    walkerAlg: oneOf(
      "--walker-alg",
      v["walker-alg"],
      ["rs256", "es256"],
      "rs256",
    )
      .toUpperCase() as Alg,
    openssl: v.openssl === true,
    json: v.json === true,
    compareCeiling: compare
      ? {
        path: compareCeiling === "" ? undefined : compareCeiling,
        pairs: positiveInt("--pairs", v.pairs, 3),
        algs: v.mode === undefined
          ? ["RS256", "ES256"]
          : [v.mode.toUpperCase() as Alg],
      }
      : undefined,
  };
}

/**
 * The `--replay-cache` value among extra server flags (the last one wins).
 *
 * @param serverArgs The `--server-arg` values.
 * @returns The number, or undefined when none is given.
 */
export function replayCacheArg(serverArgs: string[]): number | undefined {
  for (let i = serverArgs.length - 1; i >= 0; i--) {
    const a = serverArgs[i]!;
    const m = /^--replay-cache(?:=(\d+))?$/.exec(a);
    if (m) return Number(m[1] ?? serverArgs[i + 1]);
  }
  return undefined;
}
