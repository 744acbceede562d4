/**
 * Private keys for the reference client and `keygen` (docs/protocol.md,
 * "Client-side keys"): PEM `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY`
 * (PKCS#8 with PBES2), the older `RSA PRIVATE KEY` (PKCS#1) and
 * `EC PRIVATE KEY` (SEC1) forms, a private JWK, and the OpenSSH private key
 * format that `ssh-keygen` writes (plain or with a passphrase). Key types:
 * RSA, EC P-256/P-384/P-521 and Ed25519. The key decides the algorithm: RSA
 * signs RS256 unless told RS384, RS512, PS256, PS384 or PS512 (by the caller
 * or a JWK's `alg`), EC signs ES256/ES384/ES512 by curve, Ed25519 EdDSA.
 * Importing and signing go through WebCrypto, which in Deno handles every
 * one of these, P-521 and Ed25519 included.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePrivateKey } from "./private_key.ts";
 * const key = await parsePrivateKey(`-----BEGIN PRIVATE KEY-----
 * MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgA65k8TAkEavSnS6F
 * gzWaccCwBP+7Kh8oZxExTzm/A9yhRANCAASPCu/T/AAZjjvAGvQ5v4jtfVcLBh1b
 * 77U1br0KtOBQ5qIVp75GLlRRBjLpdzGy6Cwdj4OTyIryUDP3Z1CCBnvO
 * -----END PRIVATE KEY-----`);
 * assert.equal(key.alg, "ES256");
 * ```
 *
 * @module
 */

import { type KeyAlgorithm, RSA_ALGORITHMS } from "./public_key.ts";
import { type PublicHalf, publicKeyOf, unb64url } from "./public_half.ts";
import { cursor } from "./_bytes.ts";
import {
  enter,
  OID_EC,
  OID_NAMES,
  OID_RSA,
  peekTag,
  readElement,
  readOid,
  TAG,
} from "./_der.ts";
import {
  decryptPbes2,
  parseEncryptedKeyInfo,
  PassphraseError,
} from "./_pbes2.ts";
import {
  parseOpenSshPrivateKey,
  type PassphraseSource,
} from "./_openssh_private.ts";

export { PassphraseError, type PassphraseSource };

/** The file formats a private key can come in. */
export type PrivateKeyFormat = "PKCS#8" | "PKCS#1" | "SEC1" | "JWK" | "OpenSSH";

/** The curve of an EC or OKP key. */
export type KeyCurve = "P-256" | "P-384" | "P-521" | "Ed25519";

/** A parsed (and, when it was encrypted, decrypted) private key. */
export interface PrivateKeyInfo {
  /** The format it was read from. */
  format: PrivateKeyFormat;
  /** Whether it was protected by a passphrase. */
  encrypted: boolean;
  /** The key type, as JWK's `kty` names it. */
  type: "RSA" | "EC" | "OKP";
  /** The curve of an EC or Ed25519 key. */
  curve?: KeyCurve;
  /** The algorithm it signs with unless told otherwise. */
  alg: KeyAlgorithm;
  /** Every algorithm it may sign with. */
  algs: readonly KeyAlgorithm[];
  /** The key id a JWK carries. */
  kid?: string;
  /** The comment of an OpenSSH key. */
  comment?: string;
  /** What WebCrypto imports: PKCS#8 DER or a private JWK. */
  material: { pkcs8: Uint8Array<ArrayBuffer> } | { jwk: JsonWebKey };
}

/** Options of {@linkcode parsePrivateKey}. */
export interface ParseOptions {
  /**
   * Asked for the passphrase, only when the key is encrypted; resolves to
   * `undefined` when none is available.
   * @default {a source that has none}
   */
  passphrase?: PassphraseSource;
}

/** An imported private key and its public half. */
export interface LoadedPrivateKey {
  /** The parsed key. */
  info: PrivateKeyInfo;
  /** The algorithm it signs with. */
  alg: KeyAlgorithm;
  /** The key id for the token header, when there is one. */
  kid?: string;
  /** The WebCrypto signing key for `alg`. */
  key: CryptoKey;
  /** The public half. */
  publicKey: PublicHalf;
}

/** Options of {@linkcode loadPrivateKey}. */
export interface LoadOptions extends ParseOptions {
  /**
   * The algorithm to sign with; must fit the key.
   * @default {the key's: RS256, ES256/384/512 by curve, EdDSA, or a JWK's `alg`}
   */
  alg?: string;
  /**
   * The key id for the token header.
   * @default {a JWK's `kid`, else none}
   */
  kid?: string;
}

const TAG_OCTET_STRING = 0x04;
const OID_ED25519 = "1.3.101.112";
const OID_RSA_PSS = "1.2.840.113549.1.1.10";
const CURVE_OIDS: Record<string, "P-256" | "P-384" | "P-521"> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
};
const EC_ALG = {
  "P-256": "ES256",
  "P-384": "ES384",
  "P-521": "ES512",
} as const;
/** The private scalar's length, by curve, to tell a SEC1 key without one. */
const EC_SIZES: Record<number, "P-256" | "P-384" | "P-521"> = {
  32: "P-256",
  48: "P-384",
  66: "P-521",
};
/** `AlgorithmIdentifier` of rsaEncryption with NULL parameters. */
const RSA_ALGORITHM = Uint8Array.fromHex("300d06092a864886f70d0101010500");
/** `AlgorithmIdentifier` of id-ecPublicKey on each curve. */
const EC_ALGORITHMS = {
  "P-256": Uint8Array.fromHex(
    "301306072a8648ce3d020106082a8648ce3d030107",
  ),
  "P-384": Uint8Array.fromHex("301006072a8648ce3d020106052b81040022"),
  "P-521": Uint8Array.fromHex("301006072a8648ce3d020106052b81040023"),
} as const;
/** DER of INTEGER 0, the PKCS#8 version. */
const VERSION_0 = Uint8Array.fromHex("020100");

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return [0x80 | bytes.length, ...bytes];
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const body = parts.reduce((n, p) => n + p.length, 0);
  const head = [tag, ...derLength(body)];
  const out = new Uint8Array(head.length + body);
  out.set(head);
  let pos = head.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function pkcs8Of(algorithm: Uint8Array, inner: Uint8Array) {
  return tlv(TAG.SEQUENCE, VERSION_0, algorithm, tlv(TAG_OCTET_STRING, inner));
}

function unsupported(oid: string): SyntaxError {
  return new SyntaxError(
    `key type ${
      OID_NAMES[oid] ?? `OID ${oid}`
    } is not supported (use RSA, EC P-256/P-384/P-521 or Ed25519)`,
  );
}

function rsaInfo(
  format: PrivateKeyFormat,
  material: PrivateKeyInfo["material"],
  algs: readonly KeyAlgorithm[] = RSA_ALGORITHMS,
): PrivateKeyInfo {
  return {
    format,
    encrypted: false,
    type: "RSA",
    alg: algs[0]!,
    algs,
    material,
  };
}

function ecInfo(
  format: PrivateKeyFormat,
  curve: "P-256" | "P-384" | "P-521",
  material: PrivateKeyInfo["material"],
): PrivateKeyInfo {
  const alg = EC_ALG[curve];
  return {
    format,
    encrypted: false,
    type: "EC",
    curve,
    alg,
    algs: [alg],
    material,
  };
}

function ed25519Info(
  format: PrivateKeyFormat,
  material: PrivateKeyInfo["material"],
): PrivateKeyInfo {
  return {
    format,
    encrypted: false,
    type: "OKP",
    curve: "Ed25519",
    alg: "EdDSA",
    algs: ["EdDSA"],
    material,
  };
}

function curveOf(oid: string): "P-256" | "P-384" | "P-521" {
  const curve = CURVE_OIDS[oid];
  if (!curve) {
    throw new SyntaxError(
      `EC curve ${
        OID_NAMES[oid] ?? oid
      } is not supported (P-256, P-384 or P-521)`,
    );
  }
  return curve;
}

function parsePkcs8(der: Uint8Array<ArrayBuffer>): PrivateKeyInfo {
  const outer = cursor(der);
  const info = enter(outer, TAG.SEQUENCE, "PrivateKeyInfo");
  readElement(info, TAG.INTEGER, "version");
  const algId = enter(info, TAG.SEQUENCE, "AlgorithmIdentifier");
  const oid = readOid(algId, "algorithm OID");
  const inner = readElement(info, TAG_OCTET_STRING, "privateKey");
  if (oid === OID_RSA) return rsaInfo("PKCS#8", { pkcs8: der });
  if (oid === OID_RSA_PSS) {
    // An RSASSA-PSS key (openssl genpkey -algorithm RSA-PSS) holds a plain
    // RSAPrivateKey; WebCrypto imports it under rsaEncryption.
    return rsaInfo(
      "PKCS#8",
      { pkcs8: pkcs8Of(RSA_ALGORITHM, inner) },
      RSA_ALGORITHMS.slice(3),
    );
  }
  if (oid === OID_EC) {
    const curve = peekTag(algId) === TAG.OID
      ? curveOf(readOid(algId, "curve OID"))
      : sec1Curve(inner);
    return ecInfo("PKCS#8", curve, { pkcs8: der });
  }
  if (oid === OID_ED25519) return ed25519Info("PKCS#8", { pkcs8: der });
  throw unsupported(oid);
}

/** The curve of a SEC1 ECPrivateKey: its parameters, else its size. */
function sec1Curve(der: Uint8Array): "P-256" | "P-384" | "P-521" {
  const outer = cursor(der);
  const key = enter(outer, TAG.SEQUENCE, "ECPrivateKey");
  readElement(key, TAG.INTEGER, "version");
  const d = readElement(key, TAG_OCTET_STRING, "privateKey");
  if (peekTag(key) === TAG.CONTEXT_0) {
    return curveOf(
      readOid(enter(key, TAG.CONTEXT_0, "parameters"), "curve OID"),
    );
  }
  const curve = EC_SIZES[d.length];
  if (!curve) throw new SyntaxError("the EC key names no curve");
  return curve;
}

function parseSec1(der: Uint8Array): PrivateKeyInfo {
  const curve = sec1Curve(der);
  return ecInfo("SEC1", curve, {
    pkcs8: pkcs8Of(EC_ALGORITHMS[curve], der),
  });
}

function parsePkcs1(der: Uint8Array): PrivateKeyInfo {
  const outer = cursor(der);
  const key = enter(outer, TAG.SEQUENCE, "RSAPrivateKey");
  readElement(key, TAG.INTEGER, "version");
  readElement(key, TAG.INTEGER, "modulus");
  return rsaInfo("PKCS#1", { pkcs8: pkcs8Of(RSA_ALGORITHM, der) });
}

/** Members a JWK may carry that WebCrypto's JWK import need not see. */
const JWK_META = ["alg", "kid", "use", "key_ops", "ext", "x5c", "x5t", "x5u"];

/**
 * Reads a private JWK (or a JWK Set of one key) given as JSON text.
 *
 * @param text The JSON.
 * @returns The key, its `alg` and `kid` honoured.
 */
function parseJwk(text: string): PrivateKeyInfo {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SyntaxError("the file starts with { but is not valid JSON");
  }
  if (
    typeof value === "object" && value !== null && "keys" in value &&
    Array.isArray(value.keys)
  ) {
    if (value.keys.length !== 1) {
      throw new SyntaxError(
        `the JWK Set holds ${value.keys.length} keys: give a file with one`,
      );
    }
    value = value.keys[0];
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SyntaxError("the JSON is not a JWK object");
  }
  const jwk = value as Record<string, unknown>;
  if (!("d" in jwk)) {
    throw new SyntaxError(
      'this JWK has no "d": it is a public key, pass the private key',
    );
  }
  if (jwk.use !== undefined && jwk.use !== "sig") {
    throw new SyntaxError(
      `the JWK's "use" is ${JSON.stringify(jwk.use)}, not "sig"`,
    );
  }
  if (
    jwk.key_ops !== undefined &&
    !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes("sign"))
  ) {
    throw new SyntaxError(`the JWK's "key_ops" lack "sign"`);
  }
  const bare = Object.fromEntries(
    Object.entries(jwk).filter(([name]) => !JWK_META.includes(name)),
  ) as JsonWebKey;
  let info: PrivateKeyInfo;
  if (jwk.kty === "RSA") {
    info = rsaInfo("JWK", { jwk: bare });
  } else if (jwk.kty === "EC") {
    const curve = jwk.crv;
    if (curve !== "P-256" && curve !== "P-384" && curve !== "P-521") {
      throw new SyntaxError(
        `EC curve ${
          JSON.stringify(curve)
        } is not supported (P-256, P-384 or P-521)`,
      );
    }
    info = ecInfo("JWK", curve, { jwk: bare });
  } else if (jwk.kty === "OKP") {
    if (jwk.crv !== "Ed25519") {
      throw new SyntaxError(
        `OKP curve ${JSON.stringify(jwk.crv)} is not supported (only Ed25519)`,
      );
    }
    unb64url(jwk.d, "d");
    info = ed25519Info("JWK", { jwk: bare });
  } else {
    throw new SyntaxError(
      `JWK key type ${
        JSON.stringify(jwk.kty)
      } is not supported (RSA, EC or OKP)`,
    );
  }
  if (jwk.alg !== undefined) {
    // RFC 9864's "Ed25519" names the same algorithm as "EdDSA".
    const alg = jwk.alg === "Ed25519" ? "EdDSA" : jwk.alg;
    if (!info.algs.includes(alg as KeyAlgorithm)) {
      throw new SyntaxError(
        `the JWK's "alg" ${JSON.stringify(jwk.alg)} does not fit its ${
          keyName(info)
        } key`,
      );
    }
    info.alg = alg as KeyAlgorithm;
    info.algs = [alg as KeyAlgorithm];
  }
  if (jwk.kid !== undefined) {
    if (typeof jwk.kid !== "string" || jwk.kid === "") {
      throw new SyntaxError(`the JWK's "kid" is not a non-empty string`);
    }
    info.kid = jwk.kid;
  }
  return info;
}

function keyName(info: { type: string; curve?: KeyCurve }): string {
  if (info.type === "RSA") return "RSA";
  return info.curve === "Ed25519" ? "Ed25519" : `EC ${info.curve}`;
}

function decodeBody(body: string, label: string): Uint8Array<ArrayBuffer> {
  try {
    return Uint8Array.fromBase64(body.replace(/\s+/g, ""));
  } catch {
    throw new SyntaxError(`the PEM ${label} body is not valid base64`);
  }
}

const noPassphrase: PassphraseSource = () => Promise.resolve(undefined);

async function decryptPkcs8(
  der: Uint8Array,
  passphrase: PassphraseSource,
): Promise<PrivateKeyInfo> {
  // Parse the structure before asking, so a broken file is not blamed on the
  // passphrase.
  const params = parseEncryptedKeyInfo(der);
  const pass = await passphrase();
  if (pass === undefined) {
    throw new PassphraseError(
      "PASSPHRASE_REQUIRED",
      "the key is encrypted and no passphrase was given",
    );
  }
  const plain = await decryptPbes2(params, pass);
  try {
    return { ...parsePkcs8(plain), encrypted: true };
  } catch (e) {
    if (!(e instanceof SyntaxError) || /not supported/.test(e.message)) {
      throw e;
    }
    // The padding happened to check, but the plaintext is no key.
    throw new PassphraseError(
      "BAD_PASSPHRASE",
      "wrong passphrase: the key does not decrypt with it",
    );
  }
}

/**
 * Parses a private key in any accepted format, decrypting it when it is
 * protected by a passphrase.
 *
 * @param text The file contents.
 * @param options Where the passphrase comes from.
 * @returns The key type, its algorithms and what WebCrypto imports.
 * @throws {SyntaxError} When the text holds no usable private key; the message
 * says why and how to convert it.
 * @throws {PassphraseError} `PASSPHRASE_REQUIRED` for an encrypted key
 * without a passphrase, `BAD_PASSPHRASE` for a wrong one.
 */
export async function parsePrivateKey(
  text: string,
  options?: ParseOptions,
): Promise<PrivateKeyInfo> {
  const { passphrase = noPassphrase } = options ?? {};
  // Editors on Windows may save a byte order mark, which JSON.parse refuses.
  text = text.replace(/^\uFEFF/, "");
  if (text.trimStart().startsWith("{")) return parseJwk(text);
  const blocks = [
    ...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g),
  ];
  // `openssl ecparam -genkey` writes an EC PARAMETERS block first.
  const block = blocks.find((m) => m[1]?.includes("PRIVATE KEY"));
  if (!block) {
    if (/(^|\s)(ssh-(rsa|ed25519)|ecdsa-sha2-\S+) AAAA/.test(text)) {
      throw new SyntaxError(
        "this is an OpenSSH public key: pass the private key (the file without .pub)",
      );
    }
    const label = blocks[0]?.[1];
    throw new SyntaxError(
      label
        ? `PEM type "${label}" is not a private key`
        : "not a private key (expected PEM, OpenSSH or a JWK)",
    );
  }
  const [, label = "", body = ""] = block;
  if (/Proc-Type:.*ENCRYPTED/.test(body)) {
    throw new SyntaxError(
      "the key is encrypted in the legacy OpenSSL format: convert it with openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out NEW.key",
    );
  }
  const der = decodeBody(body, label);
  if (label === "PRIVATE KEY") return parsePkcs8(der);
  if (label === "ENCRYPTED PRIVATE KEY") return decryptPkcs8(der, passphrase);
  if (label === "RSA PRIVATE KEY") return parsePkcs1(der);
  if (label === "EC PRIVATE KEY") return parseSec1(der);
  if (label === "OPENSSH PRIVATE KEY") {
    const key = await parseOpenSshPrivateKey(der, passphrase);
    const info = parseJwk(JSON.stringify(key.jwk));
    return {
      ...info,
      format: "OpenSSH",
      encrypted: key.encrypted,
      ...(key.comment ? { comment: key.comment } : {}),
    };
  }
  throw new SyntaxError(`PEM type "${label}" is not supported`);
}

/**
 * Formats DER bytes as PEM with 64-character lines.
 *
 * @param label The PEM label, e.g. `PRIVATE KEY`.
 * @param der The DER bytes.
 * @returns The PEM text, newline-terminated.
 */
export function toPem(label: string, der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----\n`;
}

/**
 * The WebCrypto algorithm that signs with a JWS algorithm.
 *
 * @param alg The JWS algorithm.
 * @param curve The curve, for ES*.
 * @returns The import parameters.
 */
export function webCryptoAlgorithm(
  alg: KeyAlgorithm,
  curve?: KeyCurve,
): RsaHashedImportParams | EcKeyImportParams | Algorithm {
  const hash = `SHA-${alg.slice(2)}`;
  if (alg.startsWith("RS")) return { name: "RSASSA-PKCS1-v1_5", hash };
  if (alg.startsWith("PS")) return { name: "RSA-PSS", hash };
  if (alg === "EdDSA") return { name: "Ed25519" };
  return { name: "ECDSA", namedCurve: curve ?? "P-256" };
}

/**
 * Parses and imports a private key for signing.
 *
 * @param text The file contents.
 * @param options The passphrase source, and the algorithm and key id to use.
 * @returns The signing key, its algorithm and its public half.
 * @throws {SyntaxError} When the text is not a usable private key or
 * WebCrypto rejects it.
 * @throws {RangeError} When `alg` does not fit the key.
 * @throws {PassphraseError} When an encrypted key cannot be opened.
 */
export async function loadPrivateKey(
  text: string,
  options?: LoadOptions,
): Promise<LoadedPrivateKey> {
  const info = await parsePrivateKey(text, options);
  const alg = (options?.alg === "Ed25519" ? "EdDSA" : options?.alg) ??
    info.alg;
  if (!info.algs.includes(alg as KeyAlgorithm)) {
    throw new RangeError(
      `algorithm "${options?.alg}" does not fit this ${keyName(info)} key${
        info.format === "JWK" && info.algs.length === 1 && info.type === "RSA"
          ? ` (its JWK says "alg": "${info.alg}")`
          : ` (it signs ${info.algs.join(", ")})`
      }`,
    );
  }
  let key: CryptoKey;
  const algorithm = webCryptoAlgorithm(alg as KeyAlgorithm, info.curve);
  try {
    key = "pkcs8" in info.material
      ? await crypto.subtle.importKey(
        "pkcs8",
        info.material.pkcs8,
        algorithm,
        true,
        ["sign"],
      )
      : await crypto.subtle.importKey(
        "jwk",
        info.material.jwk,
        algorithm,
        true,
        ["sign"],
      );
  } catch (e) {
    throw new SyntaxError(
      `WebCrypto rejects the ${info.format} key: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  const kid = options?.kid ?? info.kid;
  return {
    info,
    alg: alg as KeyAlgorithm,
    ...(kid === undefined ? {} : { kid }),
    key,
    publicKey: await publicKeyOf(key),
  };
}
