/**
 * Loads the groups' public keys from a `keys_pub/` directory: one key per
 * `<group>.pem` or `<group>.ssh` file, the group being the upper-cased stem.
 * Files that cannot be used are skipped with a reason; the caller decides
 * whether the remaining keys are enough.
 *
 * @module
 */

import {
  fingerprint,
  importPublicKey,
  parsePublicKey,
  type PublicKeyInfo,
} from "./public_key.ts";

/** A group's verification key. */
export interface GroupKey {
  /** The group name, upper case. */
  group: string;
  /** The file it was loaded from. */
  file: string;
  /** The parsed key: format, type, size, algorithm. */
  info: PublicKeyInfo;
  /** The imported WebCrypto key. */
  key: CryptoKey;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

/** A key file that was not loaded, and why. */
export interface SkippedFile {
  /** The file path. */
  file: string;
  /** Why it was skipped. */
  reason: string;
}

/** The result of {@linkcode loadKeys}. */
export interface KeyRing {
  /** Loaded keys by upper-case group name. */
  groups: Map<string, GroupKey>;
  /** Files that were skipped, in file name order. */
  skipped: SkippedFile[];
}

/** Options of {@linkcode loadKeys}. */
export interface LoadKeysOptions {
  /**
   * The smallest RSA modulus accepted, in bits.
   * @default {2048}
   */
  minRsaBits?: number;
}

/** Group names: 1–64 characters of A-Z, 0-9, `_` and `-`. */
export const GROUP_NAME = /^[A-Z0-9_-]{1,64}$/;

const KEY_FILE = /^(.*)\.(pem|ssh)$/i;

/**
 * Builds a group key from a file's text, without touching the file system.
 *
 * @param file The file path, for the group name and messages.
 * @param text The file contents.
 * @param options The RSA minimum.
 * @returns The key.
 * @throws {SyntaxError} With the reason the file cannot be used.
 */
export async function keyFromText(
  file: string,
  text: string,
  options?: LoadKeysOptions,
): Promise<GroupKey> {
  const { minRsaBits = 2048 } = options ?? {};
  const base = file.split(/[\\/]/).pop() ?? file;
  const stem = KEY_FILE.exec(base)?.[1] ?? base;
  const group = stem.toUpperCase();
  // The stem must be ASCII too: toUpperCase() turns "straße" into "STRASSE".
  if (!GROUP_NAME.test(group) || /[^\x20-\x7e]/.test(stem)) {
    throw new SyntaxError(
      `group name "${stem}" is not 1-64 characters of A-Z 0-9 _ -: rename the file`,
    );
  }
  const info = parsePublicKey(text);
  if (info.type === "RSA" && info.bits < minRsaBits) {
    throw new SyntaxError(
      `RSA key of ${info.bits} bits is shorter than the minimum of ${minRsaBits}: use a longer key or lower the minimum with --min-rsa-bits`,
    );
  }
  let key: CryptoKey;
  try {
    key = await importPublicKey(info);
  } catch (e) {
    throw new SyntaxError(
      `WebCrypto rejects the key: ${e instanceof Error ? e.message : e}`,
    );
  }
  return { group, file, info, key, fingerprint: await fingerprint(info) };
}

/**
 * Loads every `*.pem` and `*.ssh` file of a directory. Other files are
 * ignored; unusable key files are listed in `skipped` with the reason.
 *
 * @param dir The `keys_pub/` directory.
 * @param options The RSA minimum.
 * @returns The loaded keys and the skipped files.
 * @throws {Deno.errors.NotFound} When the directory does not exist.
 */
export async function loadKeys(
  dir: string,
  options?: LoadKeysOptions,
): Promise<KeyRing> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && KEY_FILE.test(entry.name)) names.push(entry.name);
  }
  names.sort();
  const groups = new Map<string, GroupKey>();
  const skipped: SkippedFile[] = [];
  for (const name of names) {
    const file = `${dir.replace(/\/+$/, "")}/${name}`;
    try {
      const key = await keyFromText(
        file,
        await Deno.readTextFile(file),
        options,
      );
      const previous = groups.get(key.group);
      if (previous) {
        throw new SyntaxError(
          `group ${key.group} already has a key in "${previous.file}": keep one file per group`,
        );
      }
      groups.set(key.group, key);
    } catch (e) {
      skipped.push({
        file,
        reason: e instanceof Error ? e.message : String(e),
      });
    }
  }
  return { groups, skipped };
}
