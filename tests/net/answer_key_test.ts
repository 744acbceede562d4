/**
 * `--answer-key` end to end: main.ts as a subprocess on 127.0.0.1 port 0,
 * answers over real UDP that verify with the published JWK Set and not
 * with the shared secret, `/jwks.json` and `/api/status` over HTTP, `udpjwt
 * send --answer-jwks` walking, and the keys refused at start-up.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  jwtVerify,
} from "jose";
import { AUDIENCE, payloadBytes, SECRET, sha256Hex } from "../_helpers.ts";
import { runMain, withServer } from "../_server.ts";
import { withClient } from "../_udp_client.ts";
import { token } from "./_server_checks.ts";

const KEYS = "tests/testdata/answer_keys";
const VECTORS = "tests/testdata/vectors";

/** `udpjwt keys --answer-key FILE --jwks`, parsed. */
async function publishedJwks(file: string): Promise<JSONWebKeySet> {
  const r = await runMain(["keys", "--answer-key", file, "--jwks"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Verifies an answer with the JWK Set, and checks HS256 cannot. */
async function verifyAnswer(
  answer: Uint8Array,
  jwks: JSONWebKeySet,
  alg: string,
) {
  assert.ok(answer.length < 1000, `answer of ${answer.length} bytes`);
  const text = new TextDecoder().decode(answer);
  const header = decodeProtectedHeader(text);
  assert.deepEqual(header, { alg, typ: "JWT", kid: jwks.keys[0]!.kid });
  const { payload } = await jwtVerify(text, createLocalJWKSet(jwks), {
    algorithms: [alg],
    issuer: AUDIENCE,
  });
  await assert.rejects(
    jwtVerify(text, SECRET, { algorithms: ["HS256"] }),
    { code: "ERR_JOSE_ALG_NOT_ALLOWED" },
  );
  await assert.rejects(jwtVerify(text, SECRET), "not with the HMAC secret");
  return payload;
}

Deno.test("main.ts --answer-key: a walk over UDP whose answers verify with the JWK Set, not the secret", async (t) => {
  const cases = [["ed25519.pem", "EdDSA"], ["rsa2048.pem", "RS256"]] as const;
  for (const [file, alg] of cases) {
    await t.step(file, async () => {
      const key = `${KEYS}/${file}`;
      const jwks = await publishedJwks(key);
      const stopped = await withServer({
        args: ["--answer-key", key, "--http", "127.0.0.1:0"],
      }, async (server) => {
        assert.match(
          server.stdout(),
          new RegExp(
            `^answer key: ${key} \\(${alg}, .*, kid ${
              jwks.keys[0]!.kid
            }; signing: .+\\): answers are not HS256$`,
            "m",
          ),
        );
        await withClient(async (client) => {
          for (let n = 0; n <= 6; n++) {
            const t = await token("CHEDIMON", n);
            await client.send(server.addr, t);
            const p = await verifyAnswer(await client.receive(), jwks, alg);
            assert.equal(p.next_number, (n + 1) % 7);
            assert.equal(p.id_request, await sha256Hex(payloadBytes(t)));
          }
          // An error answer, to a token signed with another group's key.
          await client.send(
            server.addr,
            await token("HEARTBEAT", 0, undefined, "GUILHONGA"),
          );
          const e = await verifyAnswer(await client.receive(), jwks, alg);
          assert.equal(e.error, "BAD_SIGNATURE");
        });
        const served = await fetch(`${server.http}/jwks.json`);
        assert.equal(served.status, 200);
        assert.deepEqual(await served.json(), jwks);
        const status = await (await fetch(`${server.http}/api/status`)).json();
        assert.deepEqual(status.answerKey, {
          file: key,
          alg,
          kid: jwks.keys[0]!.kid,
          jwks,
        });
      });
      assert.equal(stopped.code, 0);
    });
  }
});

Deno.test("udpjwt send --answer-jwks walks against a server with --answer-key", async () => {
  const key = `${KEYS}/p256.pem`;
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_jwks_" });
  try {
    const jwksFile = `${dir}/jwks.json`;
    await Deno.writeTextFile(
      jwksFile,
      JSON.stringify(await publishedJwks(key)),
    );
    await withServer({ args: ["--answer-key", key] }, async (server) => {
      const send = (verify: string[]) =>
        runMain([
          "send",
          "127.0.0.1",
          String(server.port),
          "--group",
          "segsanh",
          "--key",
          `${VECTORS}/private/segsanh.key`,
          "--timeout",
          "200",
          "--retries",
          "3",
          ...verify,
        ]);
      const ok = await send(["--answer-jwks", jwksFile]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /answers verified with the server's JWK Set/);
      assert.match(ok.stdout, /^walk complete: events 0-6/m);
      // The shared secret does not verify them: the walk stops at once.
      const hs = await send([
        "--secret",
        `${VECTORS}/keys_priv/key_secret_for_hmac.txt`,
      ]);
      assert.equal(hs.code, 1);
      assert.match(
        hs.stdout,
        /BAD_ANSWER: the answer is signed with "ES256", not HS256/,
      );
      // Another server's JWK Set does not verify them either.
      await Deno.writeTextFile(
        jwksFile,
        JSON.stringify(await publishedJwks(`${KEYS}/ed25519.pem`)),
      );
      const other = await send(["--answer-jwks", jwksFile]);
      assert.equal(other.code, 1);
      assert.match(other.stdout, /BAD_ANSWER: no key of --answer-jwks has kid/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts --answer-key refuses other keys at start with one line naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_answer_" });
  try {
    const cases: [string, RegExp][] = [
      [
        "rsa3072.pem",
        /would take up to 1158 bytes; they must stay under 1,000/,
      ],
      ["rsa4096.pem", /would take up to \d+ bytes/],
      ["p384.pem", /EC curve "secp384r1" is not supported/],
      ["encrypted.pem", /the private key is encrypted/],
      ["public.pem", /this is a public key/],
      [
        "missing.pem",
        /Cannot read the answer key ".*missing.pem": file not found/,
      ],
    ];
    const results = await Promise.all(cases.map(([file]) =>
      runMain([
        "127.0.0.1",
        "0",
        VECTORS,
        "--log-dir",
        `${dir}/logs`,
        "--state-dir",
        `${dir}/state-${file}`,
        "--answer-key",
        `${KEYS}/${file}`,
      ])
    ));
    results.forEach((r, i) => {
      const [file, why] = cases[i]!;
      assert.equal(r.code, 1, file);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.includes(`"${KEYS}/${file}"`), lines[0]);
      assert.match(lines[0]!, why);
      assert.doesNotMatch(r.stdout, /listening on/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
