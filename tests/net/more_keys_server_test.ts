/**
 * End-to-end, protocol 2.1: `main.ts` over real UDP on 127.0.0.1 (port 0)
 * with a lab of an Ed25519 group (the ssh-keygen key), an ES384 group (SPKI)
 * and a JWK Set group walked with both kids, an UNKNOWN_KEY answer, a
 * SIGHUP that adds a key to the set, and `--algs`. Keys come from
 * tests/testdata/more_keys (generate.sh).
 *
 * @module
 */

import assert from "node:assert/strict";
import { importPKCS8, SignJWT } from "jose";
import { withServer } from "../_server.ts";
import { type UdpClient, withClient } from "../_udp_client.ts";
import { nowSec, requestClaims, SECRET_FILE } from "../_helpers.ts";
import { selectBackend } from "../../lib/keys/verify.ts";
import { checkError, checkOk, datagrams } from "./_server_checks.ts";

const HAS_OPENSSL = selectBackend().backend.name === "openssl";
const DIR = new URL("../testdata/more_keys/", import.meta.url);
const text = (name: string) => Deno.readTextFileSync(new URL(name, DIR));
const priv = (name: string, alg: string) =>
  importPKCS8(text(`${name}.key.pem`), alg);

const ED = await priv("ed25519", "EdDSA");
const P384 = await priv("p384", "ES384");
const OLD = await priv("rotation-old", "ES256");
const NEW = await priv("rotation-new", "EdDSA");
const rotation = JSON.parse(text("rotation.jwks"));

/** A lab directory: keys_pub/ with the three groups, the vectors' secret. */
async function makeLab(): Promise<string> {
  const lab = await Deno.makeTempDir({ prefix: "udpjwt_keys21_" });
  await Deno.mkdir(`${lab}/keys_pub`);
  await Deno.mkdir(`${lab}/keys_priv`);
  await Deno.copyFile(SECRET_FILE, `${lab}/keys_priv/key_secret_for_hmac.txt`);
  await Deno.writeTextFile(`${lab}/keys_pub/edwards.ssh`, text("ed25519.ssh"));
  await Deno.writeTextFile(
    `${lab}/keys_pub/p384grp.pem`,
    text("p384.spki.pem"),
  );
  // The set starts with the old key only; a SIGHUP adds the new one.
  await Deno.writeTextFile(
    `${lab}/keys_pub/team.jwks`,
    JSON.stringify({ keys: [rotation.keys[0]] }),
  );
  return lab;
}

async function sign(
  key: CryptoKey,
  header: { alg: string; kid?: string },
  group: string,
  n: number,
): Promise<string> {
  return await new SignJWT(requestClaims(group, n, nowSec()))
    .setProtectedHeader({ typ: "JWT", ...header })
    .sign(key);
}

async function step(
  client: UdpClient,
  to: Deno.NetAddr,
  token: string,
  group: string,
  next: number,
): Promise<void> {
  await client.send(to, token);
  await checkOk(await client.receive(), token, group, next);
}

for (const verify of ["openssl", "webcrypto"] as const) {
  Deno.test({
    name:
      `main.ts walks an Ed25519, an ES384 and a JWK Set group over UDP, picks keys by kid and reloads the set (--verify ${verify})`,
    ignore: verify === "openssl" && !HAS_OPENSSL,
    fn: async (t) => {
      const lab = await makeLab();
      try {
        const stopped = await withServer(
          { dir: lab, args: ["--verify", verify] },
          async (server) => {
            const summary = await server.waitForStdout(
              /^ {2}TEAM .*\n/m,
            );
            assert.match(summary, /^groups \(3\) from /m);
            assert.match(
              summary,
              /^ {2}EDWARDS +EdDSA +Ed25519 +OpenSSH +SHA256:\S+ +edwards\.ssh +kid \S{43}$/m,
            );
            assert.match(summary, /^ {2}P384GRP +ES384 +EC P-384 +PEM SPKI /m);
            assert.match(
              summary,
              /^ {2}TEAM +ES256 +EC P-256 +JWK Set .* team\.jwks +kid 2026-old$/m,
            );
            const to = server.addr;
            await withClient(async (client) => {
              await t.step(
                "EDWARDS walks 0..6 with EdDSA and Ed25519 headers",
                async () => {
                  for (let n = 0; n <= 6; n++) {
                    const alg = n % 2 ? "Ed25519" : "EdDSA";
                    const token = await sign(ED, { alg }, "EDWARDS", n);
                    await step(client, to, token, "EDWARDS", (n + 1) % 7);
                  }
                },
              );
              await t.step("P384GRP walks 0..6 with ES384", async () => {
                for (let n = 0; n <= 6; n++) {
                  const token = await sign(
                    P384,
                    { alg: "ES384" },
                    "P384GRP",
                    n,
                  );
                  await step(client, to, token, "P384GRP", (n + 1) % 7);
                }
              });
              await t.step(
                "TEAM: the old kid, then UNKNOWN_KEY for a kid not yet loaded",
                async () => {
                  for (let n = 0; n <= 2; n++) {
                    const token = await sign(
                      OLD,
                      { alg: "ES256", kid: "2026-old" },
                      "TEAM",
                      n,
                    );
                    await step(client, to, token, "TEAM", n + 1);
                  }
                  const early = await sign(
                    NEW,
                    { alg: "EdDSA", kid: "2026-new" },
                    "TEAM",
                    3,
                  );
                  await client.send(to, early);
                  await checkError(
                    await client.receive(),
                    "UNKNOWN_KEY",
                    "NO_SUB_CLAIM",
                    early,
                  );
                },
              );
              await t.step(
                "SIGHUP adds the new key: the walk goes on with both kids",
                async () => {
                  await Deno.writeTextFile(
                    `${lab}/keys_pub/team.jwks`,
                    text("rotation.jwks"),
                  );
                  Deno.kill(server.pid, "SIGHUP");
                  await server.waitForStdout(/changed \["TEAM"\]/);
                  for (let n = 3; n <= 6; n++) {
                    const [key, kid, alg] = n % 2
                      ? [NEW, "2026-new", "EdDSA"]
                      : [OLD, "2026-old", "ES256"];
                    const token = await sign(key, { alg, kid }, "TEAM", n);
                    await step(client, to, token, "TEAM", (n + 1) % 7);
                  }
                },
              );
            });
          },
        );
        const ok = datagrams(stopped.log).filter((r) => r.outcome === "ok");
        assert.equal(ok.length, 3 * 7);
      } finally {
        await Deno.remove(lab, { recursive: true });
      }
    },
  });
}

Deno.test("main.ts --algs ES384 refuses EdDSA requests and lists the allow-list", async () => {
  const lab = await makeLab();
  try {
    await withServer(
      { dir: lab, args: ["--algs", "ES384"] },
      async (server) => {
        const summary = await server.waitForStdout(/^ {2}TEAM .*\n/m);
        assert.match(summary, /^algorithms allowed \(--algs\): ES384$/m);
        assert.match(summary, /^ {2}EDWARDS +EdDSA .* \(not in --algs\)$/m);
        await withClient(async (client) => {
          const refused = await sign(ED, { alg: "EdDSA" }, "EDWARDS", 0);
          await client.send(server.addr, refused);
          await checkError(
            await client.receive(),
            "ALG_NOT_ALLOWED",
            "NO_SUB_CLAIM",
            refused,
          );
          const ok = await sign(P384, { alg: "ES384" }, "P384GRP", 0);
          await step(client, server.addr, ok, "P384GRP", 1);
        });
      },
    );
  } finally {
    await Deno.remove(lab, { recursive: true });
  }
});
