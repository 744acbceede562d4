/**
 * The answer key of `--answer-key FILE` as the command line uses it (`serve`
 * and `keys`): the file read and parsed, refusals turned into one line that
 * names the file.
 *
 * @module
 */

import { ConfigError, fileProblem } from "./errors.ts";
import { type AnswerKey, parseAnswerKey } from "../keys/answer_key.ts";
import { openSslSignatures } from "../keys/_openssl_sign.ts";

/** The answer key with the file it came from. */
export interface LoadedAnswerKey extends AnswerKey {
  /** The file, as given. */
  file: string;
}

/**
 * Reads and checks `--answer-key FILE`.
 *
 * @param file The PEM file.
 * @param options `openssl`: sign ES256 and RS256 answers through libcrypto
 * when it opens (the server; default false: `node:crypto`).
 * @returns The key, its JWK Set and its signer.
 * @throws {ConfigError} With exit code 1 when the file cannot be read or
 * holds anything but an unencrypted PKCS#8 Ed25519, P-256 or RSA 2048
 * private key.
 */
export async function readAnswerKey(
  file: string,
  options?: { openssl?: boolean },
): Promise<LoadedAnswerKey> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(
      `Cannot read the answer key "${file}": ${fileProblem(e)}`,
      { exitCode: 1, cause: e },
    );
  }
  try {
    const openssl = options?.openssl ? openSslSignatures() : undefined;
    const signatures = openssl && "factory" in openssl
      ? { factory: openssl.factory, engine: `${openssl.version} via FFI` }
      : undefined;
    return {
      ...await parseAnswerKey(text, signatures ? { signatures } : {}),
      file,
    };
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof SyntaxError)) throw e;
    throw new ConfigError(
      `Cannot use the answer key "${file}": ${e.message}`,
      { exitCode: 1, cause: e },
    );
  }
}
