/**
 * A throwaway profile v1 lab for the tests: one group, OLD2023, with an
 * RSA-1024 key pair that openssl makes at test time (as the June 2023
 * groups had), and an HMAC secret without a trailing newline.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCommand } from "./_server.ts";
import { b64url } from "./_helpers.ts";

/** The lab's secret, written without a trailing newline as the 2023 lab did. */
export const SECRET: Uint8Array<ArrayBuffer> = new TextEncoder().encode(
  "lab-2023-secret",
);

/** Whether openssl can be run here. */
async function hasOpenssl(): Promise<boolean> {
  try {
    const r = await runCommand("openssl", ["version"], { timeoutMs: 10_000 });
    return r.code === 0;
  } catch {
    return false;
  }
}
/** Whether openssl can be run here (the v1 tests skip themselves without). */
export const OPENSSL: boolean = await hasOpenssl();

/** A v1 lab: directory, the group's RSA-1024 private key and its PEM file. */
export interface V1Lab {
  /** The lab directory (keys_pub/, keys_priv/). */
  dir: string;
  /** The group's private key for RS256 with WebCrypto. */
  key: CryptoKey;
  /** The private key's PEM file (for `udpjwt send --key`). */
  keyFile: string;
  /** The secret file. */
  secretFile: string;
}

/**
 * Makes a lab with one group, OLD2023, whose RSA-1024 key pair openssl
 * generates now.
 *
 * @returns The lab; the caller removes `dir`.
 */
export async function makeV1Lab(): Promise<V1Lab> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_v1_" });
  await Deno.mkdir(`${dir}/keys_pub`);
  await Deno.mkdir(`${dir}/keys_priv`);
  const keyFile = `${dir}/old2023.key`;
  const gen = await runCommand("openssl", [
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:1024",
    "-out",
    keyFile,
  ], { timeoutMs: 30_000 });
  assert.equal(gen.code, 0, gen.stderr);
  const pub = await runCommand("openssl", [
    "pkey",
    "-in",
    keyFile,
    "-pubout",
    "-out",
    `${dir}/keys_pub/old2023.pem`,
  ], { timeoutMs: 30_000 });
  assert.equal(pub.code, 0, pub.stderr);
  const secretFile = `${dir}/keys_priv/key_secret_for_hmac.txt`;
  await Deno.writeFile(secretFile, SECRET);
  const pem = await Deno.readTextFile(keyFile);
  const der = Uint8Array.fromBase64(
    pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""),
  );
  const key = await crypto.subtle.importKey(
    "pkcs8",
    der,
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return { dir, key, keyFile, secretFile };
}

/**
 * Signs claims with RS256 through WebCrypto (jose refuses RSA keys under
 * 2048 bits). RSASSA-PKCS1-v1_5 is deterministic: the same claims give the
 * same token, as with the 2023 clients.
 */
export async function sign(
  claims: Record<string, unknown>,
  key: CryptoKey,
): Promise<string> {
  const input = `${b64url('{"alg":"RS256","typ":"JWT"}')}.${
    b64url(JSON.stringify(claims))
  }`;
  const signature = await crypto.subtle.sign(
    "RSASSA-PKCS1-v1_5",
    key,
    new TextEncoder().encode(input),
  );
  return `${input}.${b64url(new Uint8Array(signature))}`;
}
