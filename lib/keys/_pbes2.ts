/**
 * Decryption of `ENCRYPTED PRIVATE KEY` PEM blocks (PKCS#8
 * EncryptedPrivateKeyInfo, RFC 5958) protected with PBES2 (RFC 8018):
 * PBKDF2 with an HMAC-SHA PRF and AES-CBC, which is what `openssl pkcs8
 * -topk8 -v2 aes-256-cbc`, `openssl genpkey -aes256` and `openssl pkey
 * -aes256` write. Key derivation and decryption go through WebCrypto.
 *
 * @module
 */

import { cursor, expectEnd } from "./_bytes.ts";
import { enter, peekTag, readElement, readOid, TAG } from "./_der.ts";

const TAG_OCTET_STRING = 0x04;
const OID_PBES2 = "1.2.840.113549.1.5.13";
const OID_PBKDF2 = "1.2.840.113549.1.5.12";
/** The PBKDF2 PRFs WebCrypto offers; RFC 8018 makes SHA-1 the default. */
const PRFS: Record<string, string> = {
  "1.2.840.113549.2.7": "SHA-1",
  "1.2.840.113549.2.9": "SHA-256",
  "1.2.840.113549.2.10": "SHA-384",
  "1.2.840.113549.2.11": "SHA-512",
};
/** AES-CBC by key length in bytes. */
const CIPHERS: Record<string, number> = {
  "2.16.840.1.101.3.4.1.2": 16,
  "2.16.840.1.101.3.4.1.22": 24,
  "2.16.840.1.101.3.4.1.42": 32,
};
/** Far above what any tool writes (OpenSSL: 2048), far below a hang. */
const MAX_ITERATIONS = 10_000_000;
const CONVERT =
  "re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc, or decrypt it with openssl pkey";

/** Why a passphrase did not open a key: none given, or a wrong one. */
export type PassphraseErrorCode = "PASSPHRASE_REQUIRED" | "BAD_PASSPHRASE";

/** An encrypted key that could not be opened for want of the right passphrase. */
export class PassphraseError extends Error {
  /** `PASSPHRASE_REQUIRED` or `BAD_PASSPHRASE`. */
  readonly code: PassphraseErrorCode;

  /**
   * @param code What went wrong.
   * @param message The explanation.
   */
  constructor(code: PassphraseErrorCode, message: string) {
    super(message);
    this.name = "PassphraseError";
    this.code = code;
  }
}

function smallInteger(bytes: Uint8Array, what: string): number {
  if (bytes.length === 0 || bytes.length > 4 || (bytes[0]! & 0x80) !== 0) {
    throw new SyntaxError(`${what} is not a small positive integer`);
  }
  return bytes.reduce((n, b) => n * 256 + b, 0);
}

/** The parameters read from an EncryptedPrivateKeyInfo. */
export interface Pbes2Params {
  salt: Uint8Array<ArrayBuffer>;
  iterations: number;
  hash: string;
  keyBytes: number;
  iv: Uint8Array<ArrayBuffer>;
  data: Uint8Array<ArrayBuffer>;
}

/**
 * Reads a PBES2 EncryptedPrivateKeyInfo, without decrypting it.
 *
 * @param der The DER of the `ENCRYPTED PRIVATE KEY` block.
 * @returns The KDF and cipher parameters and the encrypted data.
 * @throws {SyntaxError} On a malformed structure or an unsupported scheme.
 */
export function parseEncryptedKeyInfo(der: Uint8Array): Pbes2Params {
  const outer = cursor(der);
  const info = enter(outer, TAG.SEQUENCE, "EncryptedPrivateKeyInfo");
  const algId = enter(info, TAG.SEQUENCE, "encryptionAlgorithm");
  const scheme = readOid(algId, "encryption scheme OID");
  if (scheme !== OID_PBES2) {
    throw new SyntaxError(
      `the key is encrypted with an old scheme (OID ${scheme}), not PBES2: ${CONVERT}`,
    );
  }
  const params = enter(algId, TAG.SEQUENCE, "PBES2-params");
  const kdf = enter(params, TAG.SEQUENCE, "keyDerivationFunc");
  const kdfOid = readOid(kdf, "key derivation OID");
  if (kdfOid !== OID_PBKDF2) {
    throw new SyntaxError(
      `the key's passphrase is stretched with OID ${kdfOid}, not PBKDF2: ${CONVERT}`,
    );
  }
  const pbkdf2 = enter(kdf, TAG.SEQUENCE, "PBKDF2-params");
  const salt = readElement(pbkdf2, TAG_OCTET_STRING, "PBKDF2 salt");
  const iterations = smallInteger(
    readElement(pbkdf2, TAG.INTEGER, "PBKDF2 iteration count"),
    "PBKDF2 iteration count",
  );
  if (iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new SyntaxError(`PBKDF2 iteration count ${iterations} is absurd`);
  }
  let keyLength: number | undefined;
  if (peekTag(pbkdf2) === TAG.INTEGER) {
    keyLength = smallInteger(
      readElement(pbkdf2, TAG.INTEGER, "PBKDF2 key length"),
      "PBKDF2 key length",
    );
  }
  let hash = "SHA-1";
  if (peekTag(pbkdf2) === TAG.SEQUENCE) {
    const prf = enter(pbkdf2, TAG.SEQUENCE, "PBKDF2 PRF");
    const prfOid = readOid(prf, "PRF OID");
    const name = PRFS[prfOid];
    if (!name) {
      throw new SyntaxError(`PBKDF2 PRF OID ${prfOid} is not supported`);
    }
    hash = name;
  }
  const enc = enter(params, TAG.SEQUENCE, "encryptionScheme");
  const encOid = readOid(enc, "cipher OID");
  const keyBytes = CIPHERS[encOid];
  if (keyBytes === undefined) {
    throw new SyntaxError(
      `the key is encrypted with cipher OID ${encOid}, not AES-CBC: ${CONVERT}`,
    );
  }
  if (keyLength !== undefined && keyLength !== keyBytes) {
    throw new SyntaxError(
      `PBKDF2 key length ${keyLength} does not fit the cipher`,
    );
  }
  const iv = readElement(enc, TAG_OCTET_STRING, "AES-CBC IV");
  if (iv.length !== 16) throw new SyntaxError("the AES-CBC IV is not 16 bytes");
  const data = readElement(info, TAG_OCTET_STRING, "encryptedData");
  expectEnd(info, "EncryptedPrivateKeyInfo");
  if (data.length === 0 || data.length % 16 !== 0) {
    throw new SyntaxError("the encrypted data is not whole AES blocks");
  }
  // Copies: WebCrypto wants buffers of their own.
  return {
    salt: salt.slice(),
    iterations,
    hash,
    keyBytes,
    iv: iv.slice(),
    data: data.slice(),
  };
}

/**
 * Decrypts a PBES2 EncryptedPrivateKeyInfo.
 *
 * @param p The parameters from {@linkcode parseEncryptedKeyInfo}.
 * @param passphrase The passphrase (its UTF-8 bytes are the password).
 * @returns The DER of the plain PKCS#8 PrivateKeyInfo; the caller parses it,
 * and a parse failure there also means a wrong passphrase.
 * @throws {PassphraseError} `BAD_PASSPHRASE` when the padding does not check.
 */
export async function decryptPbes2(
  p: Pbes2Params,
  passphrase: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const password = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(passphrase),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  const key = await crypto.subtle.deriveKey(
    { name: "PBKDF2", salt: p.salt, iterations: p.iterations, hash: p.hash },
    password,
    { name: "AES-CBC", length: p.keyBytes * 8 },
    false,
    ["decrypt"],
  );
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-CBC", iv: p.iv }, key, p.data),
    );
  } catch {
    // Bad PKCS#7 padding: almost surely the wrong key.
    throw new PassphraseError(
      "BAD_PASSPHRASE",
      "wrong passphrase: the key does not decrypt with it",
    );
  }
}
