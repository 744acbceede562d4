/**
 * Loads the groups' public keys from a `keys_pub/` directory: one file per
 * group, the group being the upper-cased stem. `<group>.pem`, `.ssh` and
 * `.pub` hold one PEM or OpenSSH key, `<group>.jwk` one JWK, `<group>.jwks` a
 * JWK Set of up to 8 keys (docs/protocol.md, "Keys and algorithms"). Every key
 * has a key id (its `kid`, else its RFC 7638 thumbprint) and one algorithm.
 * Files that cannot be used are skipped with a reason; the caller decides
 * whether the remaining keys are enough.
 *
 * @module
 */

import {
  fingerprint,
  importPublicKey,
  jwkThumbprint,
  parsePublicKey,
  type PublicKeyInfo,
} from "./public_key.ts";
import { parseJwk, parseJwkSet } from "./jwk.ts";
import {
  type Verifier,
  type VerifyBackend,
  webCryptoBackend,
} from "./verify.ts";

/** One key of a group's file. */
export interface VerifyKey {
  /** The key id: the JWK's `kid`, else its RFC 7638 thumbprint. */
  kid: string;
  /** Whether {@linkcode kid} is the key's own `kid` or its thumbprint. */
  kidSource: "kid" | "thumbprint";
  /** The parsed key: format, type, size, algorithm. */
  info: PublicKeyInfo;
  /** The imported WebCrypto key. */
  key: CryptoKey;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** Checks a signature with this key, through the chosen backend. */
  verify: Verifier;
}

/**
 * A group's verification keys. `info`, `key`, `fingerprint`, `kid` and
 * `verify` are those of the file's first key (the only one unless the file is
 * a JWK Set); `keys` lists them all in file order.
 */
export interface GroupKey extends VerifyKey {
  /** The group name, upper case. */
  group: string;
  /** The file it was loaded from. */
  file: string;
  /** Every key of the file, in file order (1 to 8). */
  keys: readonly VerifyKey[];
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
  /**
   * How signatures are verified.
   * @default {webCryptoBackend}
   */
  backend?: VerifyBackend;
}

/** Group names: 1–64 characters of A-Z, 0-9, `_` and `-`. */
export const GROUP_NAME = /^[A-Z0-9_-]{1,64}$/;

const KEY_FILE = /^(.*)\.(pem|ssh|pub|jwk|jwks)$/i;

/** The key file extensions, for messages. */
export const KEY_FILE_TYPES = ".pem, .ssh, .pub, .jwk or .jwks";

/**
 * Reads a key file's text by its extension: `.jwk` and `.jwks` as JSON, the
 * others as PEM or OpenSSH.
 *
 * @param file The file path.
 * @param text The file contents.
 * @returns The file's keys, in file order.
 * @throws {SyntaxError} When the text holds no usable key.
 */
export function parseKeyFile(file: string, text: string): PublicKeyInfo[] {
  const ext = KEY_FILE.exec(file)?.[2]?.toLowerCase();
  if (ext === "jwks") return parseJwkSet(text);
  if (ext === "jwk") return [parseJwk(text)];
  return [parsePublicKey(text)];
}

async function verifyKey(
  info: PublicKeyInfo,
  options: { minRsaBits: number; backend: VerifyBackend },
): Promise<VerifyKey> {
  const { minRsaBits, backend } = options;
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
  let verify: Verifier;
  try {
    verify = await backend.prepare(info, key);
  } catch (e) {
    throw new SyntaxError(
      `${backend.name} rejects the key: ${e instanceof Error ? e.message : e}`,
    );
  }
  return {
    kid: info.kid ?? await jwkThumbprint(info),
    kidSource: info.kid === undefined ? "thumbprint" : "kid",
    info,
    key,
    fingerprint: await fingerprint(info),
    verify,
  };
}

/**
 * Builds a group's keys from a file's text, without touching the file system.
 *
 * @param file The file path, for the group name, the format and messages.
 * @param text The file contents.
 * @param options The RSA minimum and the verify backend.
 * @returns The group's keys.
 * @throws {SyntaxError} With the reason the file cannot be used (for a JWK
 * Set, naming the key at fault).
 */
export async function keyFromText(
  file: string,
  text: string,
  options?: LoadKeysOptions,
): Promise<GroupKey> {
  const { minRsaBits = 2048, backend = webCryptoBackend } = options ?? {};
  const base = file.split(/[\\/]/).pop() ?? file;
  const stem = KEY_FILE.exec(base)?.[1] ?? base;
  const group = groupOfFile(file);
  // The stem must be ASCII too: toUpperCase() turns "straße" into "STRASSE".
  if (!GROUP_NAME.test(group) || /[^\x20-\x7e]/.test(stem)) {
    throw new SyntaxError(
      `group name "${stem}" is not 1-64 characters of A-Z 0-9 _ -: rename the file`,
    );
  }
  const infos = parseKeyFile(file, text);
  const keys: VerifyKey[] = [];
  for (const [i, info] of infos.entries()) {
    try {
      keys.push(await verifyKey(info, { minRsaBits, backend }));
    } catch (e) {
      if (infos.length === 1) throw e;
      throw new SyntaxError(
        `key ${i + 1} of ${infos.length}: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
  }
  return { ...keys[0]!, group, file, keys };
}

/**
 * Key files read and imported at once. File reads and WebCrypto calls run on
 * Deno's thread pool, so overlapping them hides their latency: measured on 2
 * cores with 10,000 keys (bench/scale.ts), the server was ready in 4.0-4.8 s
 * loading one file at a time and in 2.4-2.9 s with 32 at once (8 to 64 differ
 * by less than the noise).
 */
const LOAD_CONCURRENCY = 32;

/**
 * Loads every `*.pem`, `*.ssh`, `*.pub`, `*.jwk` and `*.jwks` file of a
 * directory. Other files are ignored; unusable key files are listed in `skipped` with the reason.
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
  const files = names.map((name) => `${dir.replace(/\/+$/, "")}/${name}`);
  const results = new Array<{ key: GroupKey } | { error: unknown }>(
    files.length,
  );
  let next = 0;
  async function worker(): Promise<void> {
    while (next < files.length) {
      const i = next++;
      const file = files[i]!;
      try {
        const text = await Deno.readTextFile(file);
        results[i] = { key: await keyFromText(file, text, options) };
      } catch (error) {
        results[i] = { error };
      }
    }
  }
  const workers = Math.min(LOAD_CONCURRENCY, files.length);
  await Promise.all(Array.from({ length: workers }, worker));
  // In file name order, as if loaded one by one: a group's first file wins.
  const groups = new Map<string, GroupKey>();
  const skipped: SkippedFile[] = [];
  for (const [i, file] of files.entries()) {
    const result = results[i]!;
    if ("error" in result) {
      const { error } = result;
      const reason = error instanceof Error ? error.message : String(error);
      skipped.push({ file, reason });
      continue;
    }
    const { key } = result;
    const previous = groups.get(key.group);
    if (previous) {
      skipped.push({
        file,
        reason:
          `group ${key.group} already has a key in "${previous.file}": keep one file per group`,
      });
      continue;
    }
    groups.set(key.group, key);
  }
  return { groups, skipped };
}

/**
 * The group a key file would define: its upper-cased stem.
 *
 * @param file A key file path.
 * @returns The group name (not validated).
 */
export function groupOfFile(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  return (KEY_FILE.exec(base)?.[1] ?? base).toUpperCase();
}

/** What tells two key sets apart: each key's id, algorithm and key. */
function keySetId(g: GroupKey): string {
  return g.keys.map((k) => `${k.kid} ${k.info.alg} ${k.fingerprint}`).join(
    "\n",
  );
}

/** What a reload of `keys_pub/` changed. */
export interface ReloadResult {
  /** The keys to use from now on. */
  groups: Map<string, GroupKey>;
  /** Groups that are new. */
  added: string[];
  /** Groups whose key changed. */
  changed: string[];
  /** Groups whose file is gone: no longer accepted. */
  removed: string[];
  /** Broken files of known groups: the previous key stays in use. */
  kept: SkippedFile[];
}

/**
 * Merges a fresh load of the key directory into the keys in use: new and
 * changed keys take effect, groups whose file was removed go, and a group
 * whose file became unusable keeps its previous key.
 *
 * @param previous The keys in use.
 * @param fresh The new load.
 * @returns The keys to use and what changed.
 */
export function mergeReload(
  previous: ReadonlyMap<string, GroupKey>,
  fresh: KeyRing,
): ReloadResult {
  const groups = new Map(fresh.groups);
  const kept: SkippedFile[] = [];
  for (const s of fresh.skipped) {
    const group = groupOfFile(s.file);
    const old = previous.get(group);
    if (old && !groups.has(group)) {
      groups.set(group, old);
      kept.push(s);
    }
  }
  const added = [...groups.keys()].filter((g) => !previous.has(g));
  const changed = [...groups.values()].filter((k) => {
    const old = previous.get(k.group);
    return old !== undefined && keySetId(old) !== keySetId(k);
  }).map((k) => k.group);
  const removed = [...previous.keys()].filter((g) => !groups.has(g));
  return { groups, added, changed, removed, kept };
}
