/**
 * The lab the load tool drives: a directory the server loads (`keys_pub/`
 * with one key file per load group, an HMAC secret in `keys_priv/`) plus the
 * tool's own private keys in `load_keys/`, one RSA 2048 and one P-256 pair
 * shared by all groups of an algorithm. A lab is reused when it exists.
 *
 * @module
 */

import { type AnyAlg as Alg, KEY_PARAMS, pem } from "../_keys.ts";
import { type Options, UsageError } from "./options.ts";

/** A lab directory prepared for load: keys_pub, the secret, private keys. */
export interface Lab {
  /** The directory (the server's DIR). */
  dir: string;
  /** Whether the tool made it and removes it at the end. */
  temporary: boolean;
  /** The signing key of each algorithm in use. */
  privateKeys: Map<Alg, CryptoKey>;
}

function unpem(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.fromBase64(b64);
}

/**
 * The group name of the i-th load group of an algorithm.
 *
 * @param alg The group's algorithm.
 * @param i Its index among the groups of that algorithm.
 * @returns e.g. `LOAD_RS256_000`.
 */
export function groupName(alg: Alg, i: number): string {
  return `LOAD_${alg}_${String(i).padStart(3, "0")}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Creates (or completes) a lab: one private key per algorithm in
 * `load_keys/`, a key file per group in `keys_pub/`, and an HMAC secret.
 *
 * @param dir The lab directory, or undefined for a new temporary one.
 * @param groups How many groups of each algorithm take part.
 * @param options `spawn`: whether the tool starts the server (else a missing
 * group key is an error: the running server would not know the group).
 * @returns The lab with its private keys.
 * @throws {UsageError} When `spawn` is false and a group has no key file.
 */
export async function prepareLab(
  dir: string | undefined,
  groups: Map<Alg, number>,
  options: Pick<Options, "spawn">,
): Promise<Lab> {
  const { spawn } = options;
  const temporary = dir === undefined;
  const root = dir ?? await Deno.makeTempDir({ prefix: "udpjwt_load_" });
  for (const sub of ["keys_pub", "keys_priv", "load_keys"]) {
    await Deno.mkdir(`${root}/${sub}`, { recursive: true });
  }
  const secretFile = `${root}/keys_priv/key_secret_for_hmac.txt`;
  if (!await exists(secretFile)) {
    const hex = crypto.getRandomValues(new Uint8Array(16)).toHex();
    await Deno.writeTextFile(secretFile, `udpjwt-load-${hex}\n`);
  }
  const privateKeys = new Map<Alg, CryptoKey>();
  for (const [alg, count] of groups) {
    if (count === 0) continue;
    // Only a JWK's alg makes an RSA key verify PS*: those groups get a .jwk.
    const ext = alg.startsWith("PS") ? "jwk" : "pem";
    const privFile = `${root}/load_keys/${alg.toLowerCase()}.key`;
    const pubFile = `${root}/load_keys/${alg.toLowerCase()}.pub.${ext}`;
    let priv: CryptoKey;
    let pubPem: string;
    if (await exists(privFile) && await exists(pubFile)) {
      priv = await crypto.subtle.importKey(
        "pkcs8",
        unpem(await Deno.readTextFile(privFile)),
        KEY_PARAMS[alg],
        false,
        ["sign"],
      );
      pubPem = await Deno.readTextFile(pubFile);
    } else {
      const pair = await crypto.subtle.generateKey(KEY_PARAMS[alg], true, [
        "sign",
        "verify",
      ]) as CryptoKeyPair;
      priv = pair.privateKey;
      if (ext === "jwk") {
        const { kty, n, e } = await crypto.subtle.exportKey(
          "jwk",
          pair.publicKey,
        );
        pubPem = JSON.stringify({ kty, n, e, alg });
      } else {
        pubPem = pem(
          "PUBLIC KEY",
          await crypto.subtle.exportKey("spki", pair.publicKey),
        );
      }
      await Deno.writeTextFile(
        privFile,
        pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", priv)),
        { mode: 0o600 },
      );
      await Deno.writeTextFile(pubFile, pubPem);
    }
    privateKeys.set(alg, priv);
    for (let i = 0; i < count; i++) {
      const file = `${root}/keys_pub/${groupName(alg, i).toLowerCase()}.${ext}`;
      if (await exists(file)) continue;
      if (!spawn) {
        throw new UsageError(
          `The lab "${root}" has no key for group ${
            groupName(alg, i)
          }: run with --lab ${root} --prepare and the same --mode/--groups, then restart the server`,
        );
      }
      await Deno.writeTextFile(file, pubPem);
    }
  }
  return { dir: root, temporary, privateKeys };
}
