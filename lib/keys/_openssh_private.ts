/**
 * The OpenSSH private key format (`-----BEGIN OPENSSH PRIVATE KEY-----`,
 * OpenSSH's PROTOCOL.key), as `ssh-keygen` writes it by default: plain, or
 * protected by a passphrase through the `bcrypt` KDF (bcrypt_pbkdf) and the
 * `aes256-ctr` cipher. Keys: `ssh-ed25519`, `ecdsa-sha2-nistp256/384/521`
 * and `ssh-rsa`; each comes out as a private JWK that WebCrypto imports.
 *
 * bcrypt_pbkdf is npm's `bcrypt-pbkdf` (the pure-JS port of OpenBSD's
 * function that `sshpk` and `ssh2` use, pinned in deno.json); AES-CTR is
 * WebCrypto's.
 *
 * @module
 */

import bcrypt from "bcrypt-pbkdf";
import { bitLength, type Cursor, cursor, readBytes } from "./_bytes.ts";
import { readMpint, readString, readText } from "./_ssh_wire.ts";
import { PassphraseError } from "./_pbes2.ts";

const MAGIC = "openssh-key-v1\0";
/** ssh-keygen's default is 16 (`-a`); more than this would hang the client. */
const MAX_ROUNDS = 10_000;
/** The curves of `ecdsa-sha2-*` keys: JWK name and field size in bytes. */
const CURVES: Record<
  string,
  { crv: "P-256" | "P-384" | "P-521"; size: number }
> = {
  nistp256: { crv: "P-256", size: 32 },
  nistp384: { crv: "P-384", size: 48 },
  nistp521: { crv: "P-521", size: 66 },
};

/** A key read from an OpenSSH private key file. */
export interface OpenSshPrivateKey {
  /** The private key as a JWK (with `d`), for WebCrypto. */
  jwk: JsonWebKey;
  /** The key's comment (often `user@host`). */
  comment: string;
  /** Whether the file was protected by a passphrase. */
  encrypted: boolean;
}

/** Asks for the passphrase; `undefined` when none is available. */
export type PassphraseSource = () => Promise<string | undefined>;

function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function readUint32(c: Cursor, what: string): number {
  const b = readBytes(c, 4, what);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
}

function fixed(bytes: Uint8Array, size: number, what: string): Uint8Array {
  if (bytes.length > size) throw new SyntaxError(`${what} is too long`);
  const out = new Uint8Array(size);
  out.set(bytes, size - bytes.length);
  return out;
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${bytes.toHex()}`);
}

function fromBigInt(n: bigint): Uint8Array {
  const hex = n.toString(16);
  return Uint8Array.fromHex(hex.length % 2 ? `0${hex}` : hex);
}

/** bcrypt_pbkdf through npm's bcrypt-pbkdf, typed here. */
function bcryptPbkdf(
  passphrase: string,
  salt: Uint8Array,
  rounds: number,
  length: number,
): Uint8Array<ArrayBuffer> {
  const pass = new TextEncoder().encode(passphrase);
  const out = new Uint8Array(length);
  const status: number = bcrypt.pbkdf(
    pass,
    pass.length,
    salt,
    salt.length,
    out,
    length,
    rounds,
  );
  if (status !== 0) throw new SyntaxError("bcrypt_pbkdf refused its input");
  return out;
}

function readPrivateFields(c: Cursor, keyType: string): JsonWebKey {
  if (keyType === "ssh-ed25519") {
    const pub = readString(c, "Ed25519 public key");
    const both = readString(c, "Ed25519 private key");
    if (pub.length !== 32 || both.length !== 64) {
      throw new SyntaxError("the Ed25519 key has the wrong length");
    }
    return {
      kty: "OKP",
      crv: "Ed25519",
      x: b64url(pub),
      d: b64url(both.subarray(0, 32)),
    };
  }
  if (keyType.startsWith("ecdsa-sha2-")) {
    const name = readText(c, "curve name");
    const curve = CURVES[name];
    if (!curve || keyType !== `ecdsa-sha2-${name}`) {
      throw new SyntaxError(`curve "${name}" does not fit key type ${keyType}`);
    }
    const point = readString(c, "EC point");
    if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04) {
      throw new SyntaxError(`the ${curve.crv} point is not uncompressed`);
    }
    const d = fixed(
      readMpint(c, "EC private key"),
      curve.size,
      "EC private key",
    );
    return {
      kty: "EC",
      crv: curve.crv,
      x: b64url(point.subarray(1, 1 + curve.size)),
      y: b64url(point.subarray(1 + curve.size)),
      d: b64url(d),
    };
  }
  if (keyType === "ssh-rsa") {
    const n = readMpint(c, "RSA modulus");
    const e = readMpint(c, "RSA exponent");
    const d = readMpint(c, "RSA private exponent");
    const iqmp = readMpint(c, "RSA iqmp");
    const p = readMpint(c, "RSA prime p");
    const q = readMpint(c, "RSA prime q");
    if (bitLength(n) < 512) {
      throw new SyntaxError("the RSA modulus is too short");
    }
    // A prime of 0 or 1 would make the CRT exponents below divide by zero.
    if (bitLength(p) < 2 || bitLength(q) < 2) {
      throw new SyntaxError("the RSA primes are not primes");
    }
    // OpenSSH keeps no CRT exponents; JWK (RFC 7518 §6.3.2) wants them.
    const dn = toBigInt(d);
    return {
      kty: "RSA",
      n: b64url(n),
      e: b64url(e),
      d: b64url(d),
      p: b64url(p),
      q: b64url(q),
      dp: b64url(fromBigInt(dn % (toBigInt(p) - 1n))),
      dq: b64url(fromBigInt(dn % (toBigInt(q) - 1n))),
      qi: b64url(iqmp),
    };
  }
  if (keyType.startsWith("sk-")) {
    throw new SyntaxError(
      `key type "${keyType}" lives on a security key and cannot sign here: make an ed25519 key (ssh-keygen -t ed25519)`,
    );
  }
  throw new SyntaxError(
    `key type "${keyType}" is not supported (use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa)`,
  );
}

/**
 * Reads an OpenSSH private key, asking for the passphrase only when the key
 * has one.
 *
 * @param der The decoded body of the PEM block.
 * @param passphrase Asked for the passphrase when the key is protected.
 * @returns The private key as a JWK, and its comment.
 * @throws {SyntaxError} On a malformed or unsupported key.
 * @throws {PassphraseError} When the key is protected and no passphrase or a
 * wrong one was given.
 */
export async function parseOpenSshPrivateKey(
  der: Uint8Array,
  passphrase: PassphraseSource,
): Promise<OpenSshPrivateKey> {
  const c = cursor(der);
  const magic = new TextDecoder().decode(readBytes(c, MAGIC.length, "magic"));
  if (magic !== MAGIC) {
    throw new SyntaxError('not an OpenSSH private key: no "openssh-key-v1"');
  }
  const cipher = readText(c, "cipher name");
  const kdf = readText(c, "KDF name");
  const kdfOptions = cursor(readString(c, "KDF options"));
  const count = readUint32(c, "number of keys");
  if (count !== 1) {
    throw new SyntaxError(`the file holds ${count} keys, expected one`);
  }
  readString(c, "public key");
  let section = readString(c, "private section");
  const encrypted = cipher !== "none";
  if (encrypted) {
    if (cipher !== "aes256-ctr") {
      throw new SyntaxError(
        `cipher "${cipher}" is not supported (ssh-keygen's default aes256-ctr is): change the passphrase with ssh-keygen -p -Z aes256-ctr -f KEY`,
      );
    }
    if (kdf !== "bcrypt") {
      throw new SyntaxError(`KDF "${kdf}" is not supported (only bcrypt)`);
    }
    const salt = readString(kdfOptions, "bcrypt salt");
    const rounds = readUint32(kdfOptions, "bcrypt rounds");
    if (salt.length === 0 || rounds < 1 || rounds > MAX_ROUNDS) {
      throw new SyntaxError(`bcrypt salt or rounds (${rounds}) are absurd`);
    }
    if (section.length % 16 !== 0) {
      throw new SyntaxError("the private section is not whole AES blocks");
    }
    const pass = await passphrase();
    if (pass === undefined) {
      throw new PassphraseError(
        "PASSPHRASE_REQUIRED",
        "the key is protected by a passphrase and none was given",
      );
    }
    if (pass === "") {
      // bcrypt_pbkdf refuses an empty password, and no key is encrypted
      // with one.
      throw new PassphraseError(
        "BAD_PASSPHRASE",
        "wrong passphrase: the key does not decrypt with it",
      );
    }
    const keyIv = bcryptPbkdf(pass, salt, rounds, 48);
    const aes = await crypto.subtle.importKey(
      "raw",
      keyIv.slice(0, 32),
      "AES-CTR",
      false,
      ["decrypt"],
    );
    section = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-CTR", counter: keyIv.slice(32), length: 128 },
        aes,
        section.slice(),
      ),
    );
  } else if (kdf !== "none") {
    throw new SyntaxError(`an unencrypted key with KDF "${kdf}"`);
  }
  const p = cursor(section);
  const check1 = readUint32(p, "check number");
  const check2 = readUint32(p, "check number");
  if (check1 !== check2) {
    if (encrypted) {
      throw new PassphraseError(
        "BAD_PASSPHRASE",
        "wrong passphrase: the key does not decrypt with it",
      );
    }
    throw new SyntaxError("the private section's check numbers differ");
  }
  const keyType = readText(p, "key type");
  const jwk = readPrivateFields(p, keyType);
  const comment = new TextDecoder().decode(readString(p, "comment"));
  return { jwk, comment, encrypted };
}
