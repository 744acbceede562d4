/**
 * The command line: flags and positional arguments in, a validated frozen
 * `Config` out. Pure: it never reads files, the environment or the clock.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const parsed = parseConfig(["0.0.0.0", "44555", "/srv/lab"]);
 * if (parsed.command === "serve") parsed.config.port; // 44555
 * ```
 *
 * @module
 */

import { joinPath, parseFlags, usageError, wholeNumber } from "./_flags.ts";
import { ConfigError } from "./errors.ts";
import { KEY_ALGORITHMS, type KeyAlgorithm } from "../keys/public_key.ts";

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Everything the server needs to start. */
export interface Config {
  /** The address to listen on. */
  hostname: string;
  /** The UDP port; 0 picks a free one. */
  port: number;
  /** The lab directory. */
  dir: string;
  /** Directory of `<group>.pem` / `<group>.ssh` public keys. */
  keysPub: string;
  /** Directory holding `key_secret_for_hmac.txt`. */
  keysPriv: string;
  /** Directory for the JSON Lines log. */
  logDir: string;
  /** Directory for the durable group state. */
  stateDir: string;
  /** The optional roster file. */
  roster: string;
  /** Whether state writes are fsync'd before answers go out. */
  fsync: boolean;
  /** Most cached answers kept for retransmissions. */
  replayCache: number;
  /** Number of FSM states. */
  states: number;
  /**
   * The protocol served: "2", or profile v1 (the June 2023 lab: claims
   * `group`/`seq_number`/`seq_max`/`matricula`, states 0..M per group).
   */
  profile: "2" | "v1";
  /** Clock leeway in seconds. */
  leewaySec: number;
  /** Largest datagram handled, in bytes. */
  maxDatagram: number;
  /** Smallest RSA key accepted, in bits. */
  minRsaBits: number;
  /** Error answers per second per source address. */
  errorRate: number;
  /** Burst of error answers per source address. */
  errorBurst: number;
  /** Console log level. */
  logLevel: LogLevel;
  /** Signature verification backend. */
  verify: "auto" | "openssl" | "webcrypto";
  /** The HTTP side's address (dashboard, metrics, health), when on. */
  http?: { hostname: string; port: number };
  /** The file holding the HTTP side's bearer token, when one is required. */
  httpToken?: string;
  /** The private key that signs answers instead of HS256, when given. */
  answerKey?: string;
  /** The request algorithms allowed (`--algs`); every one when absent. */
  algs?: readonly KeyAlgorithm[];
}

/**
 * Parses `--algs LIST`: algorithms of the protocol's table, separated by
 * commas (`Ed25519` is read as `EdDSA`).
 *
 * @param text The flag's value.
 * @returns The algorithms, in the table's order, without repeats.
 * @throws {ConfigError} With exit code 2 on an empty list, `none`, `HS*` or
 * a name outside the table.
 */
export function parseAlgs(text: string): KeyAlgorithm[] {
  const names = text.split(/[\s,]+/).filter((a) => a !== "");
  if (names.length === 0) {
    throw usageError("Invalid value for --algs: empty list", USAGE);
  }
  const picked = new Set<string>();
  for (const name of names) {
    const alg = name === "Ed25519" ? "EdDSA" : name;
    if (!(KEY_ALGORITHMS as readonly string[]).includes(alg)) {
      const why = alg === "none" || /^HS/i.test(alg)
        ? "requests are never accepted with none or HMAC algorithms"
        : `expected some of ${KEY_ALGORITHMS.join(", ")}`;
      throw usageError(`Invalid value for --algs: "${name}": ${why}`, USAGE);
    }
    picked.add(alg);
  }
  return KEY_ALGORITHMS.filter((a) => picked.has(a));
}

/** Whether an address is loopback only (the HTTP side needs no token there). */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" ||
    hostname.startsWith("127.");
}

/**
 * Parses \`--http ADDR:PORT\` (\`[::1]:PORT\` for IPv6).
 *
 * @param text The flag's value.
 * @returns The address and port.
 * @throws {ConfigError} With exit code 2 when it is not ADDR:PORT.
 */
function parseHttpAddress(text: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]\s]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw usageError(
      `Invalid value for --http: "${text}": expected ADDR:PORT, such as 127.0.0.1:44580 or [::1]:44580`,
      USAGE,
    );
  }
  return { hostname: (m[1] ?? m[2])!, port };
}

/** What the command line asks for. */
export type Command =
  | { command: "help" }
  | { command: "version" }
  | { command: "serve"; config: Readonly<Config> };

/** The usage text printed by `--help` and after usage errors. */
export const USAGE = `Usage: udpjwt [serve] [ADDRESS] [PORT] [DIR] [options]

Answers JWT requests over UDP for the networking lab (protocol "rainbow").

Commands (each has --help):
  udpjwt [serve] ...     run the server (arguments and options below)
  udpjwt send HOST PORT --group G --key FILE
                         reference client: walk a group through the states
  udpjwt keygen --group G --alg RS256|ES256
                         make a group's key pair (.key, .pem, .ssh)
  udpjwt keys [DIR]      check keys_pub/ and the HMAC secret before a lab
  udpjwt status [DIR]    each group's progress from the durable state

Arguments:
  ADDRESS                address to listen on (default 127.0.0.1; :: for IPv6)
  PORT                   UDP port (default 44555; 0 picks a free port)
  DIR                    lab directory with keys_pub/ and keys_priv/ (default .)

Options:
  --keys-pub DIR         public keys, one <group>.pem, .ssh, .pub, .jwk or
                         .jwks file each
                         (default DIR/keys_pub)
  --keys-priv DIR        holds key_secret_for_hmac.txt (default DIR/keys_priv)
  --log-dir DIR          JSON Lines log directory (default DIR/logs)
  --state-dir DIR        durable group state (default DIR/state)
  --roster FILE          optional roster of members (default DIR/groups.json)
  --no-fsync             do not fsync state before answering (faster; an
                         acknowledged step can be lost in a power failure)
  --replay-cache N       answers kept for retransmissions (default 20000)
  --states N             number of FSM states, 2-1000 (default 7)
  --profile P            2 (default) or v1: the June 2023 lab's claims and
                         machine (states 0..M, M from the roster or seq_max)
  --leeway SECONDS       allowed clock difference, 0-3600 (default 30)
  --max-datagram BYTES   larger datagrams are dropped, 64-65507 (default 8192)
  --min-rsa-bits BITS    shortest RSA key accepted, 1024-16384 (default 2048)
  --error-rate N         error answers per second per source IP (default 50)
  --error-burst N        burst of error answers per source IP (default 100)
  --log-level LEVEL      debug, info, warning or error (default info)
  --algs LIST            request algorithms allowed, comma-separated (default
                         all: RS256,RS384,RS512,PS256,PS384,PS512,ES256,
                         ES384,ES512,EdDSA); a key's algorithm outside the
                         list verifies nothing
  --verify BACKEND       auto, openssl or webcrypto (default auto: OpenSSL's
                         libcrypto through FFI when it opens, else WebCrypto)
  --http ADDR:PORT       serve the live dashboard, /metrics, /healthz and
                         /api/status over HTTP (off by default)
  --http-token FILE      require the token in FILE on every HTTP request
                         (needed when --http is not a loopback address)
  --answer-key FILE      sign answers with this private key (PKCS#8 PEM:
                         Ed25519, EC P-256 or RSA 2048) instead of HS256
                         with the shared secret; its JWK Set is published
  -h, --help             show this help
  -V, --version          show the version

Examples:
  udpjwt                               127.0.0.1:44555, keys in ./keys_pub
  udpjwt 0.0.0.0 44555 /srv/lab        the lab server
  udpjwt :: 44555 /srv/lab --leeway 60 dual-stack, lenient clocks`;

/**
 * Parses the command line.
 *
 * @param args The arguments after the program name.
 * @returns The command and, for `serve`, a frozen config.
 * @throws {ConfigError} With exit code 2 on an unknown flag or a bad value.
 */
export function parseConfig(args: readonly string[]): Command {
  const { values: v, positionals } = parseFlags(
    args,
    {
      "keys-pub": { type: "string" },
      "keys-priv": { type: "string" },
      "log-dir": { type: "string" },
      "state-dir": { type: "string" },
      "roster": { type: "string" },
      "no-fsync": { type: "boolean" },
      "replay-cache": { type: "string" },
      "states": { type: "string" },
      "profile": { type: "string" },
      "leeway": { type: "string" },
      "max-datagram": { type: "string" },
      "min-rsa-bits": { type: "string" },
      "error-rate": { type: "string" },
      "error-burst": { type: "string" },
      "log-level": { type: "string" },
      "verify": { type: "string" },
      "algs": { type: "string" },
      "http": { type: "string" },
      "http-token": { type: "string" },
      "answer-key": { type: "string" },
      "help": { type: "boolean", short: "h" },
      "version": { type: "boolean", short: "V" },
    },
    USAGE,
  );
  if (v.help) return { command: "help" };
  if (v.version) return { command: "version" };
  const rest = positionals[0] === "serve" ? positionals.slice(1) : positionals;
  if (rest.length > 3) {
    throw usageError(
      `Too many arguments: "${
        rest.slice(3).join(" ")
      }": expected ADDRESS PORT DIR`,
      USAGE,
    );
  }
  const [hostname = "127.0.0.1", portText, dir = "."] = rest;
  if (hostname === "" || /\s/.test(hostname)) {
    throw usageError(`Invalid ADDRESS "${hostname}"`, USAGE);
  }
  const port = wholeNumber("PORT", portText, 44555, {
    min: 0,
    max: 65535,
    usage: USAGE,
  });
  const logLevel = v["log-level"] ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw usageError(
      `Invalid value for --log-level: "${logLevel}": expected one of ${
        LOG_LEVELS.join(", ")
      }`,
      USAGE,
    );
  }
  if (dir === "") throw usageError("Invalid DIR: empty path", USAGE);
  const verify = v.verify ?? "auto";
  if (verify !== "auto" && verify !== "openssl" && verify !== "webcrypto") {
    throw usageError(
      `Invalid value for --verify: "${verify}": expected auto, openssl or webcrypto`,
      USAGE,
    );
  }
  const profile = v.profile ?? "2";
  if (profile !== "2" && profile !== "v1") {
    throw usageError(
      `Invalid value for --profile: "${profile}": expected 2 or v1`,
      USAGE,
    );
  }
  if (profile === "v1" && v.states !== undefined) {
    throw usageError(
      "--states does not apply to --profile v1: each group's machine has the states 0..M, M from the roster or the request's seq_max",
      USAGE,
    );
  }
  const http = v.http === undefined ? undefined : parseHttpAddress(v.http);
  const httpToken = v["http-token"];
  if (httpToken !== undefined && !http) {
    throw usageError("--http-token needs --http ADDR:PORT", USAGE);
  }
  if (httpToken === "") {
    throw usageError("Invalid --http-token: empty path", USAGE);
  }
  if (v["answer-key"] === "") {
    throw usageError("Invalid --answer-key: empty path", USAGE);
  }
  if (http && !isLoopback(http.hostname) && httpToken === undefined) {
    // One line, no usage text: the fix is in the message.
    throw new ConfigError(
      `--http ${v.http} is not a loopback address: pass --http-token FILE (a file holding a secret token) so that only its holders can see the lab`,
    );
  }
  const config: Config = {
    hostname: hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    dir,
    keysPub: v["keys-pub"] ?? joinPath(dir, "keys_pub"),
    keysPriv: v["keys-priv"] ?? joinPath(dir, "keys_priv"),
    logDir: v["log-dir"] ?? joinPath(dir, "logs"),
    stateDir: v["state-dir"] ?? joinPath(dir, "state"),
    roster: v.roster ?? joinPath(dir, "groups.json"),
    fsync: !v["no-fsync"],
    replayCache: wholeNumber("--replay-cache", v["replay-cache"], 20_000, {
      min: 100,
      max: 10_000_000,
      usage: USAGE,
    }),
    states: wholeNumber("--states", v.states, 7, {
      min: 2,
      max: 1000,
      usage: USAGE,
    }),
    profile,
    leewaySec: wholeNumber("--leeway", v.leeway, 30, {
      min: 0,
      max: 3600,
      usage: USAGE,
    }),
    maxDatagram: wholeNumber("--max-datagram", v["max-datagram"], 8192, {
      min: 64,
      max: 65507,
      usage: USAGE,
    }),
    minRsaBits: wholeNumber("--min-rsa-bits", v["min-rsa-bits"], 2048, {
      min: 1024,
      max: 16384,
      usage: USAGE,
    }),
    errorRate: wholeNumber("--error-rate", v["error-rate"], 50, {
      min: 1,
      max: 1_000_000,
      usage: USAGE,
    }),
    errorBurst: wholeNumber("--error-burst", v["error-burst"], 100, {
      min: 1,
      max: 1_000_000,
      usage: USAGE,
    }),
    logLevel: logLevel as LogLevel,
    verify,
    ...(http ? { http } : {}),
    ...(httpToken !== undefined ? { httpToken } : {}),
    ...(v["answer-key"] !== undefined ? { answerKey: v["answer-key"] } : {}),
    ...(v.algs !== undefined ? { algs: parseAlgs(v.algs) } : {}),
  };
  return { command: "serve", config: Object.freeze(config) };
}
