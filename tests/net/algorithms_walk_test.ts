/**
 * Protocol 2.1 from end to end, with the project's own tools and OpenSSH's:
 * `udpjwt keygen` makes a key pair for each algorithm, `ssh-keygen` makes the
 * key a student brings by default (Ed25519, passphrase-protected), the public
 * halves go into one lab's `keys_pub/`, one server loads them all, and
 * `udpjwt send` walks every group with its private key, verifying each
 * answer with the HMAC secret.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runMain, withServer } from "../_server.ts";
import { SECRET_FILE } from "../_helpers.ts";

/** keygen's algorithm, and which public file goes to keys_pub/. */
const GROUPS = [
  { group: "ED", alg: "EdDSA", file: "ed.ssh" },
  { group: "P384", alg: "ES384", file: "p384.pem" },
  { group: "P521", alg: "ES512", file: "p521.ssh" },
  { group: "PSS", alg: "PS256", file: "pss.jwk" },
  { group: "RS512", alg: "RS512", file: "rs512.jwk" },
] as const;

const HAS_SSH_KEYGEN = (() => {
  try {
    return Deno.statSync("/usr/bin/ssh-keygen").isFile;
  } catch {
    return false;
  }
})();

Deno.test("keygen's ten algorithms' keys and ssh-keygen's default key walk a protocol 2.1 server with udpjwt send", async () => {
  const lab = await Deno.makeTempDir({ prefix: "udpjwt_algs_" });
  try {
    await Deno.mkdir(`${lab}/keys_pub`);
    await Deno.mkdir(`${lab}/keys_priv`);
    await Deno.copyFile(
      SECRET_FILE,
      `${lab}/keys_priv/key_secret_for_hmac.txt`,
    );
    for (const g of GROUPS) {
      const r = await runMain([
        "keygen",
        "--group",
        g.group,
        "--alg",
        g.alg,
        "--out",
        `${lab}/made`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      await Deno.copyFile(`${lab}/made/${g.file}`, `${lab}/keys_pub/${g.file}`);
    }
    if (HAS_SSH_KEYGEN) {
      // What `ssh-keygen` with no options makes, with a passphrase.
      const made = await new Deno.Command("/usr/bin/ssh-keygen", {
        args: [
          "-q",
          "-t",
          "ed25519",
          "-N",
          "open sesame",
          "-C",
          "student",
          "-f",
          `${lab}/id_ed25519`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
      await Deno.copyFile(
        `${lab}/id_ed25519.pub`,
        `${lab}/keys_pub/student.pub`,
      );
      await Deno.writeTextFile(`${lab}/passphrase`, "open sesame\n");
    }
    await withServer({ dir: lab }, async (server) => {
      const summary = await server.waitForStdout(/^groups \(\d+\) from /m);
      for (const g of GROUPS) {
        assert.match(summary, new RegExp(`^  ${g.group} +${g.alg} `, "m"));
      }
      const walks: [string, string[]][] = GROUPS.map((g) => [
        g.group,
        [
          "--key",
          `${lab}/made/${g.group.toLowerCase()}.key`,
          // As keygen's last line says: an RSA key alone means RS256.
          ...(g.file.endsWith(".jwk") ? ["--alg", g.alg] : []),
        ],
      ]);
      if (HAS_SSH_KEYGEN) {
        walks.push(["STUDENT", [
          "--key",
          `${lab}/id_ed25519`,
          "--passphrase-file",
          `${lab}/passphrase`,
        ]]);
      }
      for (const [group, key] of walks) {
        const r = await runMain([
          "send",
          "127.0.0.1",
          String(server.port),
          "--group",
          group,
          ...key,
          "--secret",
          SECRET_FILE,
        ]);
        assert.equal(r.code, 0, `${group}: ${r.stdout}\n${r.stderr}`);
        assert.match(r.stdout, /walk complete: events 0-6 acknowledged/, group);
      }
    });
  } finally {
    await Deno.remove(lab, { recursive: true });
  }
});
