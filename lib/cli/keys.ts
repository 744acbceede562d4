/**
 * `udpjwt keys`: the instructor's pre-flight check of a lab directory. Loads
 * `keys_pub/` exactly as the server does and lists every file with its group,
 * format, key type, size or curve, algorithm, fingerprint, key id and status
 * (a JWK Set has a row per key): `ok`, or the exact
 * reason the server would skip it. Also checks the HMAC secret. Exits 1 when a
 * file would be skipped or the secret is missing or empty.
 *
 * @module
 */

import {
  formatTable,
  joinPath,
  labDirArgument,
  parseFlags,
  usageError,
  wholeNumber,
} from "./_flags.ts";
import { ConfigError, fileProblem, type Io } from "./errors.ts";
import { type LoadedAnswerKey, readAnswerKey } from "./_answer_key.ts";
import {
  groupOfFile,
  KEY_FILE_TYPES,
  loadKeys,
  parseKeyFile,
} from "../keys/key_ring.ts";
import { fingerprint, jwkThumbprint } from "../keys/public_key.ts";

/** One file of `keys_pub/`. */
export interface KeyRow {
  /** The group the file names (its upper-cased stem). */
  group: string;
  /** The file path. */
  file: string;
  /** The key format, when the file parses. */
  format?: string;
  /** `RSA` or `EC`, when the file parses. */
  type?: string;
  /** RSA bits or the curve, when the file parses. */
  size?: string;
  /** The algorithm the key verifies, when the file parses. */
  alg?: string;
  /** `SHA256:…`, when the file parses. */
  fingerprint?: string;
  /** The key id (`kid`, else the RFC 7638 thumbprint), when the file parses. */
  kid?: string;
  /**
   * `ok` (loaded), `skipped` (a key file the server skips) or `ignored`
   * (not a `.pem` or `.ssh` file: the server does not look at it).
   */
  status: "ok" | "skipped" | "ignored";
  /** Why the file is skipped or ignored. */
  reason?: string;
}

/** The HMAC secret as the server would read it. */
export interface SecretCheck {
  /** The file path. */
  file: string;
  /** Its size in bytes, when it exists. */
  bytes?: number;
  /** Whether it ends with a newline (which is part of the secret). */
  trailingNewline?: boolean;
  /** What is wrong, when the server would refuse to start. */
  problem?: string;
}

/** The result of {@linkcode checkLab}. */
export interface KeysReport {
  /** The public keys directory. */
  keysPub: string;
  /** One row per file, in file name order. */
  rows: KeyRow[];
  /** The secret. */
  secret: SecretCheck;
  /** Groups loaded. */
  loaded: number;
  /** Problems that make the check fail, one sentence each. */
  problems: string[];
}

/** Options of {@linkcode checkLab}. */
export interface CheckLabOptions {
  /** The `keys_pub/` directory. */
  keysPub: string;
  /** The directory holding `key_secret_for_hmac.txt`. */
  keysPriv: string;
  /**
   * The smallest RSA modulus accepted, in bits.
   * @default {2048}
   */
  minRsaBits?: number;
}

const KEY_FILE = /\.(pem|ssh|pub|jwk|jwks)$/i;

async function checkSecret(keysPriv: string): Promise<SecretCheck> {
  const file = `${keysPriv.replace(/[\\/]+$/, "")}/key_secret_for_hmac.txt`;
  try {
    const bytes = await Deno.readFile(file);
    if (bytes.length === 0) {
      return { file, bytes: 0, problem: `the HMAC secret "${file}" is empty` };
    }
    return {
      file,
      bytes: bytes.length,
      trailingNewline: bytes[bytes.length - 1] === 0x0a,
    };
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "is missing"
      : `cannot be read (${e instanceof Error ? e.message : e})`;
    return { file, problem: `the HMAC secret "${file}" ${why}` };
  }
}

/**
 * Checks a lab's keys and secret the way the server loads them.
 *
 * @param options The directories and the RSA minimum.
 * @returns A row per file, the secret's check and the problems found.
 * @throws {Deno.errors.NotFound} When `keysPub` does not exist.
 */
export async function checkLab(options: CheckLabOptions): Promise<KeysReport> {
  const { keysPub, keysPriv, minRsaBits = 2048 } = options;
  const ring = await loadKeys(keysPub, { minRsaBits });
  const byFile = new Map([...ring.groups.values()].map((k) => [k.file, k]));
  const names: string[] = [];
  for await (const entry of Deno.readDir(keysPub)) {
    if (entry.isFile) names.push(entry.name);
  }
  names.sort();
  const rows: KeyRow[] = [];
  for (const name of names) {
    const file = `${keysPub.replace(/\/+$/, "")}/${name}`;
    const group = groupOfFile(file);
    if (!KEY_FILE.test(name)) {
      rows.push({
        group: "-",
        file,
        status: "ignored",
        reason: `not a ${KEY_FILE_TYPES} file`,
      });
      continue;
    }
    const loaded = byFile.get(file);
    if (loaded) {
      for (const { info, fingerprint, kid } of loaded.keys) {
        rows.push({
          group: loaded.group,
          file,
          format: info.format,
          type: info.type,
          size: info.curve ?? String(info.bits),
          alg: info.alg,
          fingerprint,
          kid,
          status: "ok",
        });
      }
      continue;
    }
    const skipped = ring.skipped.find((s) => s.file === file);
    const row: KeyRow = {
      group,
      file,
      status: "skipped",
      reason: skipped?.reason ?? "changed while being checked: run again",
    };
    // Describe what the file holds even though the server skips it (a short
    // RSA key, a second key of a group), when it parses at all.
    try {
      const [info] = parseKeyFile(file, await Deno.readTextFile(file));
      if (info) {
        Object.assign(row, {
          format: info.format,
          type: info.type,
          size: info.curve ?? String(info.bits),
          alg: info.alg,
          fingerprint: await fingerprint(info),
          kid: info.kid ?? await jwkThumbprint(info),
        });
      }
    } catch {
      // Unparsable: the reason says why.
    }
    rows.push(row);
  }
  const secret = await checkSecret(keysPriv);
  const problems: string[] = [];
  const skipped = rows.filter((r) => r.status === "skipped").length;
  if (skipped > 0) {
    problems.push(
      `the server would skip ${skipped} key file${skipped === 1 ? "" : "s"}`,
    );
  }
  if (ring.groups.size === 0) {
    problems.push(
      `no usable public key in "${keysPub}": the server refuses to start`,
    );
  }
  if (secret.problem) {
    problems.push(`${secret.problem}: the server refuses to start`);
  }
  return { keysPub, rows, secret, loaded: ring.groups.size, problems };
}

/** The usage text of `udpjwt keys`. */
export const KEYS_USAGE = `Usage: udpjwt keys [DIR] [options]

Checks a lab directory before the server starts: loads keys_pub/ as the
server does and prints a table of every file (group, file, format, type,
size or curve, algorithm, fingerprint, key id (kid, else the RFC 7638
thumbprint), status: ok or the reason the server would skip it; a JWK Set
has a row per key), then the HMAC secret's presence and length. Exits 1 when a key file
would be skipped, no key is usable, or the secret is missing or empty.

Arguments:
  DIR                    lab directory with keys_pub/ and keys_priv/
                         (default .)

Options:
  --keys-pub DIR         public keys (default DIR/keys_pub)
  --keys-priv DIR        holds key_secret_for_hmac.txt (default DIR/keys_priv)
  --min-rsa-bits BITS    shortest RSA key accepted, 1024-16384 (default 2048)
  --json                 one JSON object instead of the table
  --answer-key FILE      also check the server's answer key (PKCS#8 PEM:
                         Ed25519, EC P-256 or RSA 2048)
  --jwks                 with --answer-key: print only its public JWK Set
                         (JSON), to publish for the students
  -h, --help             show this help`;

/**
 * Runs `udpjwt keys`.
 *
 * @param args The arguments after `keys`.
 * @param io Where to print.
 * @returns 0 when every key file loads and the secret is usable, else 1.
 * @throws {ConfigError} On a usage error (exit code 2) or a missing
 * `keys_pub/` directory (exit code 1).
 */
export async function runKeys(args: string[], io: Io): Promise<number> {
  const u = KEYS_USAGE;
  const { values: v, positionals } = parseFlags(args, {
    "keys-pub": { type: "string" },
    "keys-priv": { type: "string" },
    "min-rsa-bits": { type: "string" },
    json: { type: "boolean" },
    "answer-key": { type: "string" },
    jwks: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, u);
  if (v.help) {
    io.out(u);
    return 0;
  }
  if (v.jwks && v["answer-key"] === undefined) {
    throw usageError("--jwks needs --answer-key FILE", u);
  }
  const answerKey = v["answer-key"] === undefined
    ? undefined
    : await readAnswerKey(v["answer-key"]);
  if (v.jwks && answerKey) {
    io.out(JSON.stringify(answerKey.jwks, null, 2));
    return 0;
  }
  const dir = labDirArgument(positionals, u);
  const keysPub = v["keys-pub"] ?? joinPath(dir, "keys_pub");
  const keysPriv = v["keys-priv"] ?? joinPath(dir, "keys_priv");
  const minRsaBits = wholeNumber("--min-rsa-bits", v["min-rsa-bits"], 2048, {
    min: 1024,
    max: 16384,
    usage: u,
  });
  let report: KeysReport;
  try {
    report = await checkLab({ keysPub, keysPriv, minRsaBits });
  } catch (e) {
    const why = fileProblem(e, "directory");
    throw new ConfigError(
      `Cannot read the public keys directory "${keysPub}": ${why}: pass the lab directory or --keys-pub`,
      { exitCode: 1, cause: e },
    );
  }
  if (v.json) {
    io.out(JSON.stringify({
      ...report,
      ...(answerKey ? { answerKey: answerKeyJson(answerKey) } : {}),
      ok: report.problems.length === 0,
    }));
    return report.problems.length === 0 ? 0 : 1;
  }
  const keyFiles = new Set(
    report.rows.filter((r) => r.status !== "ignored").map((r) => r.file),
  ).size;
  io.out(
    `${report.keysPub}: ${keyFiles} key file${
      keyFiles === 1 ? "" : "s"
    }, ${report.loaded} group${report.loaded === 1 ? "" : "s"} loaded`,
  );
  if (report.rows.length > 0) {
    const table = formatTable([
      [
        "GROUP",
        "FILE",
        "FORMAT",
        "TYPE",
        "SIZE",
        "ALG",
        "FINGERPRINT",
        "KID",
        "STATUS",
      ],
      ...report.rows.map((r) => [
        r.group,
        r.file.split(/[\\/]/).pop() ?? r.file,
        r.format ?? "-",
        r.type ?? "-",
        r.size ?? "-",
        r.alg ?? "-",
        r.fingerprint ?? "-",
        r.kid ?? "-",
        r.status === "ok" ? "ok" : `${r.status}: ${r.reason}`,
      ]),
    ]);
    for (const line of table) io.out(line);
  }
  const s = report.secret;
  io.out(
    s.problem
      ? `HMAC secret: ${s.problem}`
      : `HMAC secret: ${s.file}: ${s.bytes} bytes${
        s.trailingNewline
          ? ", ending with a newline (part of the secret, as clients read it)"
          : ", no trailing newline"
      }`,
  );
  if (answerKey) {
    io.out(
      `answer key: ${answerKey.file}: ${answerKey.alg}, ${answerKey.description}, kid ${answerKey.kid} (publish: udpjwt keys --answer-key ${answerKey.file} --jwks)`,
    );
  }
  if (report.problems.length === 0) {
    io.out("ok: the server would load every key file");
    return 0;
  }
  io.out(`NOT ok: ${report.problems.join("; ")}`);
  return 1;
}

function answerKeyJson(key: LoadedAnswerKey): Record<string, unknown> {
  return { file: key.file, alg: key.alg, kid: key.kid, jwks: key.jwks };
}
