/**
 * `udpjwt keygen`: makes a group's key pair the way the server wants it. The
 * private key is written as PKCS#8 PEM (`<group>.key`, mode 0600); the public
 * key twice, as PEM SPKI (`<group>.pem`) and as an OpenSSH line
 * (`<group>.ssh`), so the instructor can pick either. Only one of the two goes
 * into `keys_pub/`: the server refuses two files for one group.
 *
 * @example
 * ```ts
 * import { generateGroupKeys } from "./keygen.ts";
 * const keys = await generateGroupKeys("alpha", { alg: "ES256" });
 * keys.sshLine; // "ecdsa-sha2-nistp256 AAAA… alpha@udpjwt"
 * ```
 *
 * @module
 */

import { joinPath, parseFlags, usageError, wholeNumber } from "./_flags.ts";
import { ConfigError, type Io } from "./errors.ts";
import {
  describeKey,
  fingerprint,
  type PublicKeyInfo,
} from "../keys/public_key.ts";
import { publicKeyOf, toPem } from "../keys/private_key.ts";
import { GROUP_NAME } from "../keys/key_ring.ts";

/** RSA sizes `keygen` makes. */
const RSA_BITS = [2048, 3072, 4096] as const;

/** Options of {@linkcode generateGroupKeys}. */
export interface KeygenOptions {
  /** The algorithm: RS256 makes an RSA key, ES256 a P-256 key. */
  alg: "RS256" | "ES256";
  /**
   * The RSA modulus size (RS256 only).
   * @default {2048}
   */
  bits?: number;
  /**
   * The comment of the OpenSSH line.
   * @default {"<group>@udpjwt"}
   */
  comment?: string;
}

/** A generated key pair in the formats `keygen` writes. */
export interface GeneratedKeys {
  /** The upper-case group name. */
  group: string;
  /** The file stem: the group name in lower case. */
  stem: string;
  /** The algorithm. */
  alg: "RS256" | "ES256";
  /** The private key, PKCS#8 PEM. */
  privatePem: string;
  /** The public key, PEM SPKI. */
  publicPem: string;
  /** The public key, one OpenSSH line with a comment and a newline. */
  sshLine: string;
  /** The public key as the server parses it. */
  info: PublicKeyInfo;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

/**
 * Generates a group's key pair.
 *
 * @param group The group name (any case).
 * @param options The algorithm, RSA size and OpenSSH comment.
 * @returns The keys as PEM and OpenSSH text, and the fingerprint.
 * @throws {RangeError} On a group name the server would not accept or an RSA
 * size other than 2048, 3072 or 4096.
 */
export async function generateGroupKeys(
  group: string,
  options: KeygenOptions,
): Promise<GeneratedKeys> {
  const { alg, bits = 2048 } = options;
  const name = group.toUpperCase();
  if (!GROUP_NAME.test(name) || /[^\x20-\x7e]/.test(group)) {
    throw new RangeError(
      `group name "${group}" is not 1-64 characters of A-Z 0-9 _ -`,
    );
  }
  if (alg === "RS256" && !(RSA_BITS as readonly number[]).includes(bits)) {
    throw new RangeError(
      `RSA size ${bits} is not one of ${RSA_BITS.join(", ")}`,
    );
  }
  const stem = name.toLowerCase();
  const { comment = `${stem}@udpjwt` } = options;
  const pair = await crypto.subtle.generateKey(
    alg === "RS256"
      ? {
        name: "RSASSA-PKCS1-v1_5",
        hash: "SHA-256",
        modulusLength: bits,
        publicExponent: new Uint8Array([1, 0, 1]),
      }
      : { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  );
  const pkcs8 = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
  );
  const spki = new Uint8Array(
    await crypto.subtle.exportKey("spki", pair.publicKey),
  );
  // Derived from the private key, as `send` does, so the two always agree.
  const info = await publicKeyOf(pair.privateKey);
  const type = info.type === "RSA" ? "ssh-rsa" : "ecdsa-sha2-nistp256";
  const cleanComment = comment.replace(/[\r\n]+/g, " ").trim();
  return {
    group: name,
    stem,
    alg,
    privatePem: toPem("PRIVATE KEY", pkcs8),
    publicPem: toPem("PUBLIC KEY", spki),
    sshLine: `${type} ${info.sshBlob.toBase64()}${
      cleanComment ? ` ${cleanComment}` : ""
    }\n`,
    info,
    fingerprint: await fingerprint(info),
  };
}

/** The usage text of `udpjwt keygen`. */
export const KEYGEN_USAGE =
  `Usage: udpjwt keygen --group G --alg RS256|ES256 [--out DIR] [options]

Makes a key pair for group G and writes three files into DIR:
  g.key   the private key (PKCS#8 PEM, mode 0600): for the group only
  g.pem   the public key as PEM SPKI
  g.ssh   the same public key as an OpenSSH line
Copy ONE of g.pem or g.ssh into the server's keys_pub/ directory: the server
refuses two files for one group. Give g.key to the group (udpjwt send --key).

Options:
  --group G              the group name: 1-64 characters of A-Z 0-9 _ -;
                         files are named after it in lower case (required)
  --alg ALG              RS256 (an RSA key) or ES256 (an EC P-256 key)
                         (required)
  --bits N               RSA size: 2048, 3072 or 4096 (default 2048)
  --out DIR              where to write (default .; created if missing)
  --comment TEXT         comment of the OpenSSH line (default g@udpjwt)
  --force                overwrite existing files
  -h, --help             show this help

Examples:
  udpjwt keygen --group alpha --alg ES256 --out keys/alpha
  cp keys/alpha/alpha.pem /srv/lab/keys_pub/`;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function write(
  path: string,
  text: string,
  options: { force: boolean; mode: number },
): Promise<void> {
  try {
    await Deno.writeTextFile(path, text, {
      createNew: !options.force,
      mode: options.mode,
    });
    // `mode` applies only when the file is created; an overwritten file keeps
    // its old permissions otherwise.
    if (Deno.build.os !== "windows") await Deno.chmod(path, options.mode);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new ConfigError(
        `Refusing to overwrite "${path}": pass --force to replace it, or choose another --out`,
        { exitCode: 1, cause: e },
      );
    }
    throw new ConfigError(
      `Cannot write "${path}": ${e instanceof Error ? e.message : e}`,
      { exitCode: 1, cause: e },
    );
  }
}

/**
 * Runs `udpjwt keygen`.
 *
 * @param args The arguments after `keygen`.
 * @param io Where to print.
 * @returns 0 once the three files are written.
 * @throws {ConfigError} On a usage error (exit code 2), an existing file
 * without `--force`, or a file that cannot be written (exit code 1).
 */
export async function runKeygen(args: string[], io: Io): Promise<number> {
  const u = KEYGEN_USAGE;
  const { values: v, positionals } = parseFlags(args, {
    group: { type: "string" },
    alg: { type: "string" },
    bits: { type: "string" },
    out: { type: "string" },
    comment: { type: "string" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, u);
  if (v.help) {
    io.out(u);
    return 0;
  }
  if (positionals.length > 0) {
    throw usageError(
      `Unexpected argument "${positionals[0]}": keygen takes only options`,
      u,
    );
  }
  if (v.group === undefined) {
    throw usageError("Missing --group: give the group's name", u);
  }
  if (v.alg === undefined) {
    throw usageError(
      "Missing --alg: RS256 for an RSA key or ES256 for an EC P-256 key",
      u,
    );
  }
  const alg = v.alg.toUpperCase();
  if (alg !== "RS256" && alg !== "ES256") {
    throw usageError(
      `Invalid value for --alg: "${v.alg}": expected RS256 or ES256`,
      u,
    );
  }
  if (v.bits !== undefined && alg !== "RS256") {
    throw usageError("--bits applies to RS256 keys only", u);
  }
  const bits = wholeNumber("--bits", v.bits, 2048, {
    min: 2048,
    max: 4096,
    usage: u,
  });
  if (!(RSA_BITS as readonly number[]).includes(bits)) {
    throw usageError(
      `Invalid value for --bits: "${v.bits}": expected 2048, 3072 or 4096`,
      u,
    );
  }
  let keys: GeneratedKeys;
  try {
    keys = await generateGroupKeys(v.group, {
      alg,
      bits,
      ...(v.comment === undefined ? {} : { comment: v.comment }),
    });
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw usageError(`Invalid value for --group: ${e.message}`, u);
  }
  const out = v.out ?? ".";
  const force = v.force ?? false;
  const files = {
    key: joinPath(out, `${keys.stem}.key`),
    pem: joinPath(out, `${keys.stem}.pem`),
    ssh: joinPath(out, `${keys.stem}.ssh`),
  };
  // Check all three first, so a refusal leaves no half-written set behind.
  if (!force) {
    for (const file of Object.values(files)) {
      if (await exists(file)) {
        throw new ConfigError(
          `Refusing to overwrite "${file}": pass --force to replace it, or choose another --out`,
          { exitCode: 1 },
        );
      }
    }
  }
  try {
    await Deno.mkdir(out, { recursive: true });
  } catch (e) {
    throw new ConfigError(
      `Cannot create the --out directory "${out}": ${
        e instanceof Error ? e.message : e
      }`,
      { exitCode: 1, cause: e },
    );
  }
  await write(files.key, keys.privatePem, { force, mode: 0o600 });
  await write(files.pem, keys.publicPem, { force, mode: 0o644 });
  await write(files.ssh, keys.sshLine, { force, mode: 0o644 });
  io.out(
    `group ${keys.group}: ${keys.alg}, ${
      describeKey(keys.info)
    }, ${keys.fingerprint}`,
  );
  io.out(
    `  ${files.key}  private key, PKCS#8 PEM, mode 0600: give it to the group only`,
  );
  io.out(`  ${files.pem}  public key, PEM SPKI`);
  io.out(`  ${files.ssh}  public key, OpenSSH line`);
  io.out(
    `Copy ONE of ${keys.stem}.pem or ${keys.stem}.ssh into keys_pub/ (the server refuses two files for one group); the group signs with: udpjwt send HOST PORT --group ${keys.stem} --key ${files.key}`,
  );
  return 0;
}
