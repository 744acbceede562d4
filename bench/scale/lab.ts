/**
 * The scale benchmark's lab: a directory the server loads, with one key file
 * per group in `keys_pub/`, an HMAC secret in `keys_priv/` and a
 * `groups.json` roster, plus every group's private key for signing.
 *
 * One group in `rsaEvery` has an RSA 2048 key (PEM SPKI); the others have a
 * P-256 key of their own, alternately PEM SPKI and an OpenSSH
 * `ecdsa-sha2-nistp256` line. RSA key generation is slow, so a few RSA pairs
 * are made once per process and each is shared by several groups (the server
 * still reads, parses and imports every file on its own).
 *
 * @module
 */

import { encodeWire } from "../../lib/keys/_ssh_wire.ts";
import { type Alg, KEY_PARAMS, pem } from "../_keys.ts";

/** Roster members per group (the server wants `seq_max` to equal it). */
export const MEMBERS = 4;

/** The two key file formats of the lab. */
export type KeyFormat = "PEM SPKI" | "OpenSSH";

/** One group of the lab. */
export interface LabGroup {
  /** Upper-case group name. */
  name: string;
  /** Its algorithm. */
  alg: Alg;
  /** The format of its file in `keys_pub/`. */
  format: KeyFormat;
  /** Its signing key. */
  priv: CryptoKey;
  /** Registration numbers of its roster members. */
  members: number[];
}

/** A lab built by {@linkcode buildLab}. */
export interface Lab {
  /** The directory (the server's DIR). */
  dir: string;
  /** Every group, in file name order. */
  groups: LabGroup[];
  /** The HMAC secret, as written (trailing newline included). */
  secret: Uint8Array<ArrayBuffer>;
  /** Groups with an RSA key. */
  rsaGroups: number;
  /** Distinct RSA keys among them. */
  rsaKeys: number;
  /** Seconds the build took. */
  buildSec: number;
}

/** Options of {@linkcode buildLab}. */
export interface LabOptions {
  /**
   * One group in this many has an RSA key.
   * @default {5}
   */
  rsaEvery?: number;
  /**
   * Distinct RSA key pairs, reused.
   * @default {16}
   */
  rsaPool?: number;
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight.
 *
 * @param items The inputs.
 * @param limit Calls in flight at most.
 * @param fn The call, given an item and its index.
 * @returns The results, in the order of `items`.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  return out;
}

function generatePair(alg: Alg): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(KEY_PARAMS[alg], true, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;
}

/** RSA pairs made so far, shared by every lab of the process. */
const rsaMade: CryptoKeyPair[] = [];

async function rsaPairs(count: number): Promise<CryptoKeyPair[]> {
  const missing = Math.max(count - rsaMade.length, 0);
  rsaMade.push(
    ...await Promise.all(
      Array.from({ length: missing }, () => generatePair("RS256")),
    ),
  );
  return rsaMade.slice(0, count);
}

async function spkiPem(key: CryptoKey): Promise<string> {
  return pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", key));
}

async function opensshLine(key: CryptoKey, comment: string): Promise<string> {
  const point = new Uint8Array(await crypto.subtle.exportKey("raw", key));
  const blob = encodeWire(["ecdsa-sha2-nistp256", "nistp256", point]);
  return `ecdsa-sha2-nistp256 ${blob.toBase64()} ${comment}\n`;
}

/**
 * Builds a lab of `size` groups under `root`.
 *
 * @param root A fresh directory.
 * @param size The number of groups.
 * @param options The RSA share and pool size.
 * @returns The lab with every group's private key.
 */
export async function buildLab(
  root: string,
  size: number,
  options?: LabOptions,
): Promise<Lab> {
  const { rsaEvery = 5, rsaPool = 16 } = options ?? {};
  const t0 = performance.now();
  await Deno.mkdir(`${root}/keys_pub`, { recursive: true });
  await Deno.mkdir(`${root}/keys_priv`, { recursive: true });
  const hex = crypto.getRandomValues(new Uint8Array(16)).toHex();
  const secret = new TextEncoder().encode(`udpjwt-scale-${hex}\n`);
  await Deno.writeFile(`${root}/keys_priv/key_secret_for_hmac.txt`, secret);
  const rsaGroups = Math.ceil(size / rsaEvery);
  const pool = await rsaPairs(Math.min(rsaPool, rsaGroups));
  const rsaPems = await Promise.all(pool.map((p) => spkiPem(p.publicKey)));

  async function makeGroup(i: number): Promise<LabGroup> {
    const stem = `scale_${String(i).padStart(5, "0")}`;
    const members = Array.from(
      { length: MEMBERS },
      (_, m) => 30_000_000 + i * MEMBERS + m,
    );
    const group = { name: stem.toUpperCase(), members };
    if (i % rsaEvery === 0) {
      const k = Math.floor(i / rsaEvery) % pool.length;
      await Deno.writeTextFile(`${root}/keys_pub/${stem}.pem`, rsaPems[k]!);
      const priv = pool[k]!.privateKey;
      return { ...group, alg: "RS256", format: "PEM SPKI", priv };
    }
    const { publicKey, privateKey: priv } = await generatePair("ES256");
    // The P-256 groups alternate between the two formats.
    const ecIndex = i - Math.floor(i / rsaEvery) - 1;
    if (ecIndex % 2 === 0) {
      await Deno.writeTextFile(
        `${root}/keys_pub/${stem}.pem`,
        await spkiPem(publicKey),
      );
      return { ...group, alg: "ES256", format: "PEM SPKI", priv };
    }
    await Deno.writeTextFile(
      `${root}/keys_pub/${stem}.ssh`,
      await opensshLine(publicKey, `${stem}@scale`),
    );
    return { ...group, alg: "ES256", format: "OpenSSH", priv };
  }

  const indexes = Array.from({ length: size }, (_, i) => i);
  const groups = await mapLimit(indexes, 64, makeGroup);
  const roster = Object.fromEntries(groups.map((g) => [g.name, g.members]));
  await Deno.writeTextFile(
    `${root}/groups.json`,
    JSON.stringify({ groups: roster }),
  );
  return {
    dir: root,
    groups,
    secret,
    rsaGroups,
    rsaKeys: pool.length,
    buildSec: (performance.now() - t0) / 1000,
  };
}
