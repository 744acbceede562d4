/**
 * The server's own answer key (`--answer-key FILE`, docs/protocol.md,
 * "Answers signed by the server's key"): a PKCS#8 PEM private key, Ed25519,
 * EC P-256 or RSA 2048 (larger RSA signatures make answers of 1,000 bytes or
 * more), that signs every answer with
 * `EdDSA`, `ES256` or `RS256` instead of HS256 with the shared secret. Its
 * public half is published as a JWK Set whose one key carries `kid` = the
 * RFC 7638 thumbprint, the `kid` of every answer's header.
 *
 * Signing is synchronous (`node:crypto`), like the HS256 MAC it replaces, so
 * an answer is still made and journaled in one step. Pure: the text comes in,
 * nothing is read here.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  createPrivateKey,
  createPublicKey,
  type JsonWebKey as NodeJwk,
  type KeyObject,
  sign,
  type SignKeyObjectInput,
  verify,
} from "node:crypto";
import { calculateJwkThumbprint, type JWK } from "jose";
import {
  ANSWER_LIMIT,
  type AnswerSigner,
  base64urlLength,
  largestAnswer,
} from "../protocol/answer_signer.ts";

/** The algorithms an answer key signs with. */
export type AnswerAlg = "EdDSA" | "ES256" | "RS256";

/** A JWK Set of public keys. */
export interface JwkSet {
  /** The keys. */
  keys: JWK[];
}

/** A usable answer key. */
export interface AnswerKey {
  /** The algorithm of the answers. */
  alg: AnswerAlg;
  /** The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key. */
  kid: string;
  /** `Ed25519`, `EC P-256` or `RSA 2048`. */
  description: string;
  /** The public key as a JWK with `kid`, `alg` and `use`. */
  jwk: JWK;
  /** The JWK Set to publish: `{"keys": [jwk]}`. */
  jwks: JwkSet;
  /** Signs answers with the key. */
  signer: AnswerSigner;
  /** What computes the signatures: `node:crypto`, or OpenSSL's version. */
  engine: string;
}

/**
 * The smallest RSA modulus accepted, in bits, and the largest whose answers
 * stay under 1,000 bytes: a 3072-bit signature alone takes 512 of them, and
 * with the header's `kid` not even an error answer with an empty `response`
 * fits.
 */
export const ANSWER_RSA_BITS = { min: 2048, max: 2048 } as const;

const SUPPORTED = "use Ed25519, EC P-256 or RSA 2048";
const PEM_LABEL = /-----BEGIN ([A-Z0-9 ]+)-----/g;

function refuse(message: string): never {
  throw new TypeError(message);
}

/** Checks the PEM armour: exactly one unencrypted PKCS#8 private key. */
function checkArmour(text: string): void {
  const labels = [...text.matchAll(PEM_LABEL)].map((m) => m[1]);
  if (labels.length === 0) {
    throw new SyntaxError(
      'not a PEM file: expected "-----BEGIN PRIVATE KEY-----" (PKCS#8)',
    );
  }
  if (labels.length > 1) {
    refuse(`the file holds ${labels.length} PEM blocks: give one private key`);
  }
  const label = labels[0]!;
  if (label === "PRIVATE KEY") return;
  if (label === "ENCRYPTED PRIVATE KEY") {
    refuse(
      "the private key is encrypted: the server cannot ask for a passphrase; write a plain copy with openssl pkey -in FILE -out PLAIN.pem and keep it readable by the server only",
    );
  }
  if (label.endsWith("PUBLIC KEY") || label === "CERTIFICATE") {
    refuse(
      `this is a ${
        label === "CERTIFICATE" ? "certificate" : "public key"
      }: give the private key (PEM PRIVATE KEY, PKCS#8)`,
    );
  }
  if (label.endsWith("PRIVATE KEY")) {
    refuse(
      `"${label}" is not PKCS#8: convert it with openssl pkey -in FILE -out KEY.pem`,
    );
  }
  refuse(`a PEM "${label}" block is not a private key: give a PKCS#8 PEM key`);
}

/** The algorithm, description and signature length of a private key. */
function classify(
  key: KeyObject,
): { alg: AnswerAlg; description: string; signatureBytes: number } {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "ed25519") {
    return { alg: "EdDSA", description: "Ed25519", signatureBytes: 64 };
  }
  if (type === "ec") {
    const curve = details.namedCurve;
    if (curve !== "prime256v1" && curve !== "P-256") {
      refuse(`EC curve "${curve ?? "unknown"}" is not supported: ${SUPPORTED}`);
    }
    return { alg: "ES256", description: "EC P-256", signatureBytes: 64 };
  }
  if (type === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits < ANSWER_RSA_BITS.min) {
      refuse(`an RSA key of ${bits} bits is too weak: ${SUPPORTED}`);
    }
    return {
      alg: "RS256",
      description: `RSA ${bits}`,
      signatureBytes: Math.ceil(bits / 8),
    };
  }
  refuse(`key type "${type ?? "unknown"}" is not supported: ${SUPPORTED}`);
}

/** The public members of a key's JWK, as RFC 7638 lists them per type. */
function publicMembers(jwk: NodeJwk): JWK {
  const pick = (names: string[]): JWK =>
    Object.fromEntries(names.map((n) => [n, jwk[n]])) as JWK;
  switch (jwk.kty) {
    case "OKP":
      return pick(["kty", "crv", "x"]);
    case "EC":
      return pick(["kty", "crv", "x", "y"]);
    default:
      return pick(["kty", "n", "e"]);
  }
}

/** Signs a JWS signing input, returning the signature as JWS wants it. */
export type RawSign = (input: Uint8Array) => Uint8Array;

/**
 * Makes a faster signature function for a key, or undefined to keep
 * `node:crypto` (lib/keys/_openssl_sign.ts makes one through libcrypto).
 */
export type SignatureFactory = (
  pkcs8: Uint8Array,
  alg: AnswerAlg,
) => RawSign | undefined;

/** Options of {@linkcode parseAnswerKey}. */
export interface AnswerKeyOptions {
  /**
   * Another signature implementation and its name; used only when its first
   * signature verifies with `node:crypto`.
   * @default {undefined: node:crypto signs}
   */
  signatures?: { factory: SignatureFactory; engine: string };
}

/** `node:crypto`'s signature, ECDSA as the raw `r || s` JWS wants. */
function nodeSign(key: KeyObject, alg: AnswerAlg): RawSign {
  const hash = alg === "EdDSA" ? null : "sha256";
  const input: KeyObject | SignKeyObjectInput = alg === "ES256"
    ? { key, dsaEncoding: "ieee-p1363" }
    : key;
  return (data) => sign(hash, data, input);
}

/** Whether `raw` makes signatures `node:crypto` verifies. */
function selfTest(key: KeyObject, alg: AnswerAlg, raw: RawSign): boolean {
  const data = Buffer.from("udpjwt answer key self-test");
  try {
    return verify(
      alg === "EdDSA" ? null : "sha256",
      data,
      alg === "ES256"
        ? { key: createPublicKey(key), dsaEncoding: "ieee-p1363" }
        : createPublicKey(key),
      raw(data),
    );
  } catch {
    return false;
  }
}

/**
 * A signer: header `{"alg":…,"typ":"JWT","kid":…}`, signatures by `raw`.
 */
function keySigner(
  raw: RawSign,
  alg: AnswerAlg,
  kid: string,
  signatureBytes: number,
): AnswerSigner {
  const header = Buffer.from(JSON.stringify({ alg, typ: "JWT", kid }))
    .toString("base64url");
  const tail = 1 + base64urlLength(signatureBytes);
  return {
    alg,
    kid,
    sign(claims) {
      const json = typeof claims === "string" ? claims : JSON.stringify(claims);
      const signing = `${header}.${Buffer.from(json).toString("base64url")}`;
      const signature = Buffer.from(raw(Buffer.from(signing)));
      return Buffer.from(`${signing}.${signature.toString("base64url")}`);
    },
    size(json) {
      return header.length + 1 +
        base64urlLength(Buffer.byteLength(json)) + tail;
    },
  };
}
/**
 * Reads an answer key from its PEM text.
 *
 * @param text The file's text: one unencrypted PKCS#8 `PRIVATE KEY` block.
 * @param options Another signature implementation to try.
 * @returns The key's algorithm, `kid`, JWK Set and signer.
 * @throws {SyntaxError} When the text is not PEM or the key does not parse.
 * @throws {TypeError} When the key is of a refused kind: encrypted, a public
 * key, not PKCS#8, another type or curve, or whose answers would not stay
 * under 1,000 bytes (RSA over 2048 bits).
 * @example
 * ```ts
 * import { parseAnswerKey } from "./answer_key.ts";
 * const pem = await Deno.readTextFile("tests/testdata/answer_keys/ed25519.pem");
 * const key = await parseAnswerKey(pem);
 * key.alg; // "EdDSA"
 * key.jwks.keys[0]!.kid === key.kid; // true
 * ```
 */
export async function parseAnswerKey(
  text: string,
  options?: AnswerKeyOptions,
): Promise<AnswerKey> {
  checkArmour(text);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: "pem" });
  } catch (e) {
    throw new SyntaxError(
      `the private key does not parse: ${e instanceof Error ? e.message : e}`,
      { cause: e },
    );
  }
  const { alg, description, signatureBytes } = classify(key);
  const members = publicMembers(
    createPublicKey(key).export({ format: "jwk" }),
  );
  const kid = await calculateJwkThumbprint(members, "sha256");
  const jwk: JWK = { ...members, kid, alg, use: "sig" };
  let raw = nodeSign(key, alg);
  let engine = "node:crypto";
  const other = options?.signatures;
  const fast = other?.factory(
    key.export({ type: "pkcs8", format: "der" }),
    alg,
  );
  if (other && fast && selfTest(key, alg, fast)) {
    raw = fast;
    engine = other.engine;
  }
  const signer = keySigner(raw, alg, kid, signatureBytes);
  const largest = largestAnswer(signer);
  if (largest >= ANSWER_LIMIT) {
    refuse(
      `answers signed by this ${description} key would take up to ${largest} bytes; they must stay under 1,000 (clients read them into 1 KiB buffers): ${SUPPORTED}`,
    );
  }
  return {
    alg,
    kid,
    description,
    jwk,
    jwks: { keys: [jwk] },
    signer,
    engine,
  };
}
