/**
 * `udpjwt keygen`: makes a group's key pair the way the server wants it. The
 * private key is written as PKCS#8 PEM (`<group>.key`, mode 0600); the public
 * key as PEM SPKI (`<group>.pem`) and as an OpenSSH line (`<group>.ssh`),
 * so the instructor can pick either, and with `--jwk` as a JWK carrying its
 * `alg` (`<group>.jwk`). RS384, RS512 and PS256/384/512 keys get only the
 * JWK: a bare RSA key means RS256 to the server (docs/protocol.md, "Keys and
 * algorithms"). Only one public file goes into `keys_pub/`: the server
 * refuses two files for one group.
 *
 * @example
 * ```ts
 * import { generateGroupKeys } from "./keygen.ts";
 * const keys = await generateGroupKeys("alpha", { alg: "EdDSA" });
 * keys.sshLine; // "ssh-ed25519 AAAA… alpha@udpjwt"
 * ```
 *
 * @module
 */

import {
  algorithmFlag,
  joinPath,
  parseFlags,
  usageError,
  wholeNumber,
} from "./_flags.ts";
import { ConfigError, type Io } from "./errors.ts";
import { toPem, webCryptoAlgorithm } from "../keys/private_key.ts";
import {
  describePublicKey,
  type PublicHalf,
  publicKeyOf,
  sshFingerprint,
} from "../keys/public_half.ts";
import {
  jwkThumbprint,
  KEY_ALGORITHMS,
  type KeyAlgorithm,
  RSA_ALGORITHMS,
} from "../keys/public_key.ts";
import { GROUP_NAME } from "../keys/key_ring.ts";

/** RSA sizes `keygen` makes. */
const RSA_BITS = [2048, 3072, 4096] as const;
/** The curve each EC algorithm signs on. */
const CURVES = { ES256: "P-256", ES384: "P-384", ES512: "P-521" } as const;

/** Options of {@linkcode generateGroupKeys}. */
export interface KeygenOptions {
  /**
   * The algorithm: RS* and PS* make an RSA key, ES256/ES384/ES512 an EC key
   * on P-256/P-384/P-521, EdDSA an Ed25519 key.
   */
  alg: KeyAlgorithm;
  /**
   * The RSA modulus size (RSA algorithms only).
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
  alg: KeyAlgorithm;
  /** The private key, PKCS#8 PEM. */
  privatePem: string;
  /**
   * The public key, PEM SPKI; absent when the key alone would name another
   * algorithm (RS384, RS512, PS*).
   */
  publicPem?: string;
  /** The public key, one OpenSSH line with a comment; absent as `publicPem`. */
  sshLine?: string;
  /** The public key as a JWK with `alg` and `use`, JSON with a newline. */
  jwk: string;
  /** The public half. */
  info: PublicHalf;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** The RFC 7638 thumbprint: the key id the server gives a key without kid. */
  thumbprint: string;
}

/**
 * Whether the server reads a bare public key (PEM or OpenSSH) of this
 * algorithm as meaning exactly it: RS256, ES*, EdDSA.
 *
 * @param alg The algorithm.
 * @returns False for RS384, RS512 and PS*, which need a JWK's `alg`.
 */
export function bareKeyNames(alg: KeyAlgorithm): boolean {
  return alg === "RS256" || !RSA_ALGORITHMS.includes(alg);
}

/**
 * Generates a group's key pair.
 *
 * @param group The group name (any case).
 * @param options The algorithm, RSA size and OpenSSH comment.
 * @returns The keys as PEM, OpenSSH and JWK text, and the fingerprint.
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
  const rsa = RSA_ALGORITHMS.includes(alg);
  if (rsa && !(RSA_BITS as readonly number[]).includes(bits)) {
    throw new RangeError(
      `RSA size ${bits} is not one of ${RSA_BITS.join(", ")}`,
    );
  }
  const stem = name.toLowerCase();
  const { comment = `${stem}@udpjwt` } = options;
  const curve = alg in CURVES ? CURVES[alg as keyof typeof CURVES] : undefined;
  const pair = await crypto.subtle.generateKey(
    rsa
      ? {
        ...webCryptoAlgorithm(alg),
        modulusLength: bits,
        publicExponent: new Uint8Array([1, 0, 1]),
      } as RsaHashedKeyGenParams
      : webCryptoAlgorithm(alg, curve) as EcKeyGenParams,
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
  );
  // Derived from the private key, as `send` does, so the two always agree.
  const info = await publicKeyOf(pair.privateKey);
  const cleanComment = comment.replace(/[\r\n]+/g, " ").trim();
  const bare = bareKeyNames(alg);
  return {
    group: name,
    stem,
    alg,
    privatePem: toPem("PRIVATE KEY", pkcs8),
    ...(bare
      ? {
        publicPem: toPem("PUBLIC KEY", info.spki),
        sshLine: `${info.sshType} ${info.sshBlob.toBase64()}${
          cleanComment ? ` ${cleanComment}` : ""
        }\n`,
      }
      : {}),
    jwk: `${JSON.stringify({ ...info.jwk, alg, use: "sig" }, null, 2)}\n`,
    info,
    fingerprint: await sshFingerprint(info),
    thumbprint: await jwkThumbprint(info),
  };
}

/** The usage text of `udpjwt keygen`. */
export const KEYGEN_USAGE =
  `Usage: udpjwt keygen --group G --alg ALG [--out DIR] [options]

Makes a key pair for group G and writes into DIR:
  g.key   the private key (PKCS#8 PEM, mode 0600): for the group only
  g.pem   the public key as PEM SPKI
  g.ssh   the same public key as an OpenSSH line
  g.jwk   the same public key as a JWK with its "alg" (with --jwk)
For RS384, RS512, PS256, PS384 and PS512 the public key is written as g.jwk
only: a bare RSA key means RS256 to the server. Copy ONE public file into the
server's keys_pub/ directory: the server refuses two files for one group.
ES384, ES512, EdDSA and .jwk files need a server of protocol 2.1. Give g.key
to the group (udpjwt send --key).

Options:
  --group G              the group name: 1-64 characters of A-Z 0-9 _ -;
                         files are named after it in lower case (required)
  --alg ALG              RS256, RS384, RS512, PS256, PS384, PS512 (an RSA
                         key), ES256, ES384, ES512 (an EC P-256, P-384,
                         P-521 key) or EdDSA (an Ed25519 key) (required)
  --bits N               RSA size: 2048, 3072 or 4096 (default 2048)
  --jwk                  write g.jwk as well
  --out DIR              where to write (default .; created if missing)
  --comment TEXT         comment of the OpenSSH line (default g@udpjwt)
  --force                overwrite existing files
  -h, --help             show this help

Examples:
  udpjwt keygen --group alpha --alg ES256 --out keys/alpha
  cp keys/alpha/alpha.pem /srv/lab/keys_pub/
  udpjwt keygen --group beta --alg PS256 --out keys/beta   # beta.key, beta.jwk`;

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
    jwk: { type: "boolean" },
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
      `Missing --alg: one of ${KEY_ALGORITHMS.join(", ")}`,
      u,
    );
  }
  const alg = algorithmFlag(v.alg, u);
  if (v.bits !== undefined && !RSA_ALGORITHMS.includes(alg)) {
    throw usageError("--bits applies to RSA keys (RS* and PS*) only", u);
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
  const files: Record<"key" | "pem" | "ssh" | "jwk", string | undefined> = {
    key: joinPath(out, `${keys.stem}.key`),
    pem: keys.publicPem === undefined
      ? undefined
      : joinPath(out, `${keys.stem}.pem`),
    ssh: keys.sshLine === undefined
      ? undefined
      : joinPath(out, `${keys.stem}.ssh`),
    jwk: keys.publicPem === undefined || v.jwk
      ? joinPath(out, `${keys.stem}.jwk`)
      : undefined,
  };
  // Check them all first, so a refusal leaves no half-written set behind.
  if (!force) {
    for (const file of Object.values(files)) {
      if (file !== undefined && await exists(file)) {
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
  await write(files.key!, keys.privatePem, { force, mode: 0o600 });
  if (files.pem) {
    await write(files.pem, keys.publicPem!, { force, mode: 0o644 });
  }
  if (files.ssh) await write(files.ssh, keys.sshLine!, { force, mode: 0o644 });
  if (files.jwk) await write(files.jwk, keys.jwk, { force, mode: 0o644 });
  io.out(
    `group ${keys.group}: ${keys.alg}, ${
      describePublicKey(keys.info)
    }, ${keys.fingerprint}, thumbprint ${keys.thumbprint}`,
  );
  io.out(
    `  ${files.key}  private key, PKCS#8 PEM, mode 0600: give it to the group only`,
  );
  if (files.pem) io.out(`  ${files.pem}  public key, PEM SPKI`);
  if (files.ssh) io.out(`  ${files.ssh}  public key, OpenSSH line`);
  if (files.jwk) {
    io.out(`  ${files.jwk}  public key, JWK with "alg": "${keys.alg}"`);
  }
  const choices = [files.pem, files.ssh, files.jwk]
    .filter((f) => f !== undefined)
    .map((f) => f.slice(f.lastIndexOf("/") + 1));
  const copy = choices.length === 1
    ? `Copy ${
      choices[0]
    } into keys_pub/ (a bare RSA key would mean RS256 to the server)`
    : `Copy ONE of ${
      choices.join(" or ")
    } into keys_pub/ (the server refuses two files for one group)`;
  const algFlag = bareKeyNames(keys.alg) ? "" : ` --alg ${keys.alg}`;
  io.out(
    `${copy}; the group signs with: udpjwt send HOST PORT --group ${keys.stem} --key ${files.key}${algFlag}`,
  );
  return 0;
}
