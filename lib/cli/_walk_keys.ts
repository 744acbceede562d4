/**
 * The files a walk of `udpjwt send` reads: the group's private key (with its
 * passphrase from --passphrase-file, UDPJWT_PASSPHRASE or a prompt without
 * echo) and the lab's HMAC secret, every problem as one line.
 *
 * @module
 */

import { ConfigError, fileProblem } from "./errors.ts";
import type { WalkArgs } from "./_send_common.ts";
import {
  type LoadedPrivateKey,
  loadPrivateKey,
  PassphraseError,
  type PassphraseSource,
} from "../keys/private_key.ts";
import { sshFingerprint } from "../keys/public_half.ts";

/**
 * Reads a file named by a flag, any problem as one line (exit code 1).
 *
 * @param flag The flag, for the message.
 * @param file The file.
 * @returns Its bytes.
 * @throws {ConfigError} When it cannot be read.
 */
export async function readFileFor(
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
  a: WalkArgs,
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
 * Reads and loads the --key file with the passphrase, --alg and --kid,
 * turning every problem into one line.
 */
async function loadKey(a: WalkArgs): Promise<LoadedPrivateKey> {
  const keyText = new TextDecoder().decode(
    await readFileFor("--key", a.keyFile),
  );
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

/** The group's key and the lab's secret, as a walk uses them. */
export interface WalkKeys {
  /** The group's key. */
  loaded: LoadedPrivateKey;
  /** The key's SSH fingerprint. */
  fingerprint: string;
  /** The --secret file's bytes, when given. */
  secret?: Uint8Array;
}

/**
 * Loads the --key file (asking for its passphrase when it has one) and reads
 * the --secret file.
 *
 * @param a The parsed flags.
 * @returns The key, its fingerprint and the secret.
 * @throws {ConfigError} (exit code 1) When a file cannot be read or used;
 * with exit code 2 when --alg does not fit the key.
 */
export async function loadKeys(a: WalkArgs): Promise<WalkKeys> {
  const loaded = await loadKey(a);
  const fingerprint = await sshFingerprint(loaded.publicKey);
  if (a.secretFile === undefined) return { loaded, fingerprint };
  const secret = await readFileFor("--secret", a.secretFile);
  if (secret.length === 0) {
    throw new ConfigError(
      `The --secret file "${a.secretFile}" is empty: give the lab's HMAC secret`,
      { exitCode: 1 },
    );
  }
  return { loaded, fingerprint, secret };
}
