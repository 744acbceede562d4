/**
 * The cost of signing one answer, per signer: HS256 with the shared secret
 * (the default) and each kind of `--answer-key` (Ed25519, P-256, RSA 2048),
 * synchronous as the handler calls them: through `node:crypto`, and for
 * ES256 and RS256 through libcrypto by FFI (what the server uses when it
 * opens; needs `--allow-ffi`, else those rows are skipped). Part of
 * `deno task bench`; the keys are the test fixtures of
 * tests/testdata/answer_keys.
 *
 * @module
 */

import {
  type AnswerKeyOptions,
  parseAnswerKey,
} from "../lib/keys/answer_key.ts";
import { openSslSignatures } from "../lib/keys/_openssl_sign.ts";
import { signResponse } from "../lib/protocol/token.ts";

const dir = new URL("../tests/testdata/answer_keys/", import.meta.url);
const secret = new TextEncoder().encode("udpjwt-bench-secret\n");

/** A success answer as the handler writes it. */
const answer = JSON.stringify({
  iss: "udp.socket.server.for.jwt",
  sub: "HEARTBEAT",
  jti: "0123456789abcdef0123456789abcdef",
  iat: 1_800_000_000,
  exp: 1_800_000_030,
  "otp_timestamp": "2027-01-15T08:00:00.123+00:00",
  "id_request": "f".repeat(64),
  "next_number": 1,
});

Deno.bench({
  name: "HS256 (shared secret)",
  group: "answer signing",
  baseline: true,
  fn() {
    signResponse(answer, secret);
  },
});

const openssl = openSslSignatures();
const engines: [string, AnswerKeyOptions][] = [["node:crypto", {}]];
if ("factory" in openssl) {
  engines.push(["OpenSSL FFI", {
    signatures: { factory: openssl.factory, engine: "OpenSSL FFI" },
  }]);
} else {
  // deno-lint-ignore no-console
  console.error(`skipping the OpenSSL rows: ${openssl.problem}`);
}

for (const [label, options] of engines) {
  for (const file of ["ed25519", "p256", "rsa2048"]) {
    const key = await parseAnswerKey(
      await Deno.readTextFile(new URL(`${file}.pem`, dir)),
      options,
    );
    // Ed25519 stays on node:crypto: no OpenSSL row for it.
    if (key.engine !== label) continue;
    const size = key.signer.sign(answer).length;
    Deno.bench({
      name: `${key.alg} ${key.description}, ${label} (${size} bytes)`,
      group: "answer signing",
      fn() {
        key.signer.sign(answer);
      },
    });
  }
}
