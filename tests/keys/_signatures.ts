/**
 * Independent checks of JWS signatures made by the client: the `openssl`
 * command line and node:crypto, each given a public key file that a tool
 * wrote (PEM SPKI).
 *
 * @module
 */

import { createPublicKey, verify as nodeVerify } from "node:crypto";
import type { KeyAlgorithm } from "../../lib/keys/public_key.ts";

/** An ECDSA signature as JWS has it (r || s) in DER, for openssl. */
function ecdsaDer(sig: Uint8Array): Uint8Array<ArrayBuffer> {
  const half = sig.length / 2;
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return v[0]! & 0x80
      ? [0x02, v.length + 1, 0, ...v]
      : [0x02, v.length, ...v];
  };
  const body = [...int(sig.subarray(0, half)), ...int(sig.subarray(half))];
  const len = body.length < 0x80 ? [body.length] : [0x81, body.length];
  return new Uint8Array([0x30, ...len, ...body]);
}

/**
 * Verifies a compact JWS with the openssl command line.
 *
 * @returns Whether openssl says "Verified OK" / "Signature Verified Successfully".
 */
export async function opensslVerifies(
  jws: string,
  alg: KeyAlgorithm,
  publicPem: string,
): Promise<boolean> {
  const [h, p, s] = jws.split(".");
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_sig_" });
  try {
    await Deno.writeTextFile(`${dir}/input`, `${h}.${p}`);
    let sig: Uint8Array = Uint8Array.fromBase64(s!, { alphabet: "base64url" });
    if (alg.startsWith("ES")) sig = ecdsaDer(sig);
    await Deno.writeFile(`${dir}/sig`, sig);
    const hash = `-sha${alg.slice(2)}`;
    const args = alg === "EdDSA"
      ? [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        publicPem,
        "-rawin",
        "-in",
        `${dir}/input`,
        "-sigfile",
        `${dir}/sig`,
      ]
      : [
        "dgst",
        hash,
        ...(alg.startsWith("PS")
          ? [
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            `rsa_pss_saltlen:${Number(alg.slice(2)) / 8}`,
          ]
          : []),
        "-verify",
        publicPem,
        "-signature",
        `${dir}/sig`,
        `${dir}/input`,
      ];
    const out = await new Deno.Command("openssl", {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return out.code === 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Verifies a compact JWS with node:crypto and the public PEM.
 *
 * @returns Whether the signature verifies.
 */
export function nodeVerifies(
  jws: string,
  alg: KeyAlgorithm,
  publicPem: string,
): boolean {
  const [h, p, s] = jws.split(".");
  const key = createPublicKey(Deno.readTextFileSync(publicPem));
  const data = new TextEncoder().encode(`${h}.${p}`);
  const sig = Uint8Array.fromBase64(s!, { alphabet: "base64url" });
  const hash = alg === "EdDSA" ? null : `sha${alg.slice(2)}`;
  if (alg.startsWith("PS")) {
    return nodeVerify(hash, data, {
      key,
      padding: 6, // RSA_PKCS1_PSS_PADDING
      saltLength: Number(alg.slice(2)) / 8,
    }, sig);
  }
  if (alg.startsWith("ES")) {
    return nodeVerify(hash, data, { key, dsaEncoding: "ieee-p1363" }, sig);
  }
  return nodeVerify(hash, data, key, sig);
}
