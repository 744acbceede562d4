/**
 * Tests of `udpjwt keygen` (lib/keygen.ts): the files it writes, their
 * modes, the refusal to overwrite, and that the keys work: the server loads
 * the public key in either format and `send` walks with the private key.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runSend } from "../../lib/cli/send.ts";
import type { Io } from "../../lib/cli/errors.ts";
import { generateGroupKeys, runKeygen } from "../../lib/cli/keygen.ts";
import { loadKeys } from "../../lib/keys/key_ring.ts";
import { loadPrivateKey } from "../../lib/keys/private_key.ts";
import { sshFingerprint } from "../../lib/keys/public_half.ts";
import { keySigner } from "../../lib/client/walk.ts";
import { createPublicKey } from "node:crypto";
import { nodeVerifies, opensslVerifies } from "../keys/_signatures.ts";
import {
  fingerprint,
  type KeyAlgorithm,
  parsePublicKey,
} from "../../lib/keys/public_key.ts";
import { VECTORS } from "../_helpers.ts";
import { runMain, withServer } from "../_server.ts";

function capture(): Io & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(l) };
}

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_keygen_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("generateGroupKeys() makes RS256 and ES256 keys the server's parser reads", async (t) => {
  for (const alg of ["RS256", "ES256"] as const) {
    await t.step(alg, async () => {
      const keys = await generateGroupKeys("Alpha-1", { alg });
      assert.equal(keys.group, "ALPHA-1");
      assert.equal(keys.stem, "alpha-1");
      const pem = parsePublicKey(keys.publicPem!);
      const ssh = parsePublicKey(keys.sshLine!);
      assert.equal(pem.format, "PEM SPKI");
      assert.equal(ssh.format, "OpenSSH");
      assert.equal(pem.alg, alg);
      assert.equal(await fingerprint(pem), keys.fingerprint);
      assert.equal(await fingerprint(ssh), keys.fingerprint);
      const priv = await loadPrivateKey(keys.privatePem);
      assert.equal(priv.info.format, "PKCS#8");
      assert.equal(priv.alg, alg);
      assert.equal(await sshFingerprint(priv.publicKey), keys.fingerprint);
      const type = alg === "RS256" ? "ssh-rsa" : "ecdsa-sha2-nistp256";
      assert.match(
        keys.sshLine!,
        new RegExp(`^${type} [A-Za-z0-9+/=]+ alpha-1@udpjwt\\n$`),
      );
      if (alg === "RS256") assert.equal(pem.bits, 2048);
    });
  }
  await t.step("RSA sizes and comments", async () => {
    const keys = await generateGroupKeys("beta", {
      alg: "RS256",
      bits: 3072,
      comment: "team beta\nlab 3",
    });
    assert.equal(keys.info.bits, 3072);
    assert.match(keys.sshLine!, / team beta lab 3\n$/);
    await assert.rejects(
      generateGroupKeys("beta", { alg: "RS256", bits: 1024 }),
      RangeError,
    );
    await assert.rejects(
      generateGroupKeys("beta", { alg: "PS384", bits: 1024 }),
      RangeError,
    );
    await assert.rejects(
      generateGroupKeys("straße", { alg: "ES256" }),
      RangeError,
    );
  });
});

/** Runs a tool to completion; its exit code and output. */
async function tool(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

Deno.test("keygen --alg: every algorithm's files pass ssh-keygen and openssl, and send's signatures verify", async (t) => {
  const cases: [KeyAlgorithm, string, RegExp, RegExp | undefined][] = [
    // alg, description, openssl -text, ssh-keygen -l
    [
      "RS256",
      "RSA 2048",
      /Public-Key: \(2048 bit\)/,
      /^2048 SHA256:\S+ g@udpjwt \(RSA\)$/,
    ],
    ["RS384", "RSA 2048", /Public-Key: \(2048 bit\)/, undefined],
    ["RS512", "RSA 2048", /Public-Key: \(2048 bit\)/, undefined],
    ["PS256", "RSA 2048", /Public-Key: \(2048 bit\)/, undefined],
    ["PS384", "RSA 2048", /Public-Key: \(2048 bit\)/, undefined],
    ["PS512", "RSA 2048", /Public-Key: \(2048 bit\)/, undefined],
    [
      "ES256",
      "EC P-256",
      /NIST CURVE: P-256/,
      /^256 SHA256:\S+ g@udpjwt \(ECDSA\)$/,
    ],
    [
      "ES384",
      "EC P-384",
      /NIST CURVE: P-384/,
      /^384 SHA256:\S+ g@udpjwt \(ECDSA\)$/,
    ],
    [
      "ES512",
      "EC P-521",
      /NIST CURVE: P-521/,
      /^521 SHA256:\S+ g@udpjwt \(ECDSA\)$/,
    ],
    [
      "EdDSA",
      "Ed25519",
      /ED25519 Public-Key/,
      /^256 SHA256:\S+ g@udpjwt \(ED25519\)$/,
    ],
  ];
  await inTempDir(async (dir) => {
    for (const [alg, description, text, sshList] of cases) {
      await t.step(alg, async () => {
        const out = `${dir}/${alg}`;
        const io = capture();
        assert.equal(
          await runKeygen(
            ["--group", "g", "--alg", alg, "--out", out, "--jwk"],
            io,
          ),
          0,
        );
        const bare = sshList !== undefined;
        const listing = [...Deno.readDirSync(out)].map((e) => e.name).sort();
        assert.deepEqual(
          listing,
          bare ? ["g.jwk", "g.key", "g.pem", "g.ssh"] : ["g.jwk", "g.key"],
        );
        assert.match(
          io.lines[0]!,
          new RegExp(`^group G: ${alg}, ${description}, SHA256:`),
        );
        const fp = io.lines[0]!.match(/SHA256:[A-Za-z0-9+/]+/)![0];
        // The private key: OpenSSL reads it, and send signs with it.
        const pkey = await tool("openssl", [
          "pkey",
          "-in",
          `${out}/g.key`,
          "-noout",
        ]);
        assert.equal(pkey.code, 0, pkey.stderr);
        // The public PEM: the one written, else the one OpenSSL derives.
        let pem = `${out}/g.pem`;
        if (bare) {
          const check = await tool("openssl", [
            "pkey",
            "-pubin",
            "-in",
            pem,
            "-noout",
          ]);
          assert.equal(check.code, 0, check.stderr);
          const ssh = await tool("ssh-keygen", ["-l", "-f", `${out}/g.ssh`]);
          assert.equal(ssh.code, 0, ssh.stderr);
          assert.match(ssh.stdout.trim(), sshList);
          assert.equal(ssh.stdout.split(" ")[1], fp);
        } else {
          pem = `${out}/derived.pem`;
          const derived = await tool("openssl", [
            "pkey",
            "-in",
            `${out}/g.key`,
            "-pubout",
            "-out",
            pem,
          ]);
          assert.equal(derived.code, 0, derived.stderr);
          assert.ok(
            io.lines.some((l) => l.endsWith(` --alg ${alg}`)),
            io.lines.join("\n"),
          );
        }
        const shown = await tool("openssl", [
          "pkey",
          "-pubin",
          "-in",
          pem,
          "-noout",
          "-text",
        ]);
        assert.match(shown.stdout, text);
        // The JWK: its alg, public members only, and the key node:crypto
        // builds from it is the one in the PEM.
        const jwk = JSON.parse(await Deno.readTextFile(`${out}/g.jwk`));
        assert.equal(jwk.alg, alg);
        assert.equal(jwk.use, "sig");
        assert.equal(jwk.d, undefined);
        assert.equal(
          createPublicKey({ key: jwk, format: "jwk" }).export({
            type: "spki",
            format: "pem",
          }),
          await Deno.readTextFile(pem),
        );
        const loaded = await loadPrivateKey(
          await Deno.readTextFile(`${out}/g.key`),
          { alg },
        );
        assert.equal(await sshFingerprint(loaded.publicKey), fp);
        const jws = await keySigner(loaded.key, loaded.alg).sign(
          new TextEncoder().encode("{}"),
        );
        assert.ok(await opensslVerifies(jws, alg, pem));
        assert.ok(nodeVerifies(jws, alg, pem));
      });
    }
  });
});

Deno.test("keygen writes .key (0600), .pem and .ssh and refuses to overwrite", async () => {
  await inTempDir(async (dir) => {
    const out = `${dir}/new/sub`;
    const io = capture();
    const code = await runKeygen(
      ["--group", "Gamma", "--alg", "es256", "--out", out],
      io,
    );
    assert.equal(code, 0);
    const key = await Deno.readTextFile(`${out}/gamma.key`);
    const pem = await Deno.readTextFile(`${out}/gamma.pem`);
    const ssh = await Deno.readTextFile(`${out}/gamma.ssh`);
    assert.match(key, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
    assert.match(ssh, /^ecdsa-sha2-nistp256 \S+ gamma@udpjwt\n$/);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(`${out}/gamma.key`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${out}/gamma.pem`)).mode! & 0o777, 0o644);
    }
    const fp = await fingerprint(parsePublicKey(pem));
    assert.match(
      io.lines[0]!,
      new RegExp(
        `^group GAMMA: ES256, EC P-256, ${
          fp.replace(/[+/]/g, "\\$&")
        }, thumbprint [A-Za-z0-9_-]{43}$`,
      ),
    );
    assert.ok(
      io.lines.some((l) =>
        /Copy ONE of gamma\.pem or gamma\.ssh into keys_pub\//.test(l)
      ),
    );

    // Again: refused, nothing changed; with --force: replaced, still 0600.
    const again = await runMain([
      "keygen",
      "--group",
      "gamma",
      "--alg",
      "ES256",
      "--out",
      out,
    ]);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^udpjwt: Refusing to overwrite ".*gamma\.key": pass --force to replace it, or choose another --out\n$/,
    );
    assert.equal(await Deno.readTextFile(`${out}/gamma.key`), key);
    await Deno.remove(`${out}/gamma.key`);
    const partial = await runKeygen([
      "--group",
      "gamma",
      "--alg",
      "ES256",
      "--out",
      out,
    ], capture())
      .catch((e) => e);
    assert.match(
      String(partial.message),
      /Refusing to overwrite ".*gamma\.pem"/,
    );
    await assert.rejects(Deno.stat(`${out}/gamma.key`), Deno.errors.NotFound);
    await Deno.writeTextFile(`${out}/gamma.key`, "old");
    await Deno.chmod(`${out}/gamma.key`, 0o644);
    assert.equal(
      await runKeygen([
        "--group",
        "gamma",
        "--alg",
        "ES256",
        "--out",
        out,
        "--force",
      ], capture()),
      0,
    );
    assert.notEqual(await Deno.readTextFile(`${out}/gamma.pem`), pem);
    assert.match(
      await Deno.readTextFile(`${out}/gamma.key`),
      /^-----BEGIN PRIVATE KEY-----/,
    );
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(`${out}/gamma.key`)).mode! & 0o777, 0o600);
    }
  });
});

Deno.test("keygen: --help and usage errors", async (t) => {
  await t.step("--help", async () => {
    const r = await runMain(["keygen", "--help"]);
    assert.equal(r.code, 0);
    assert.match(
      r.stdout,
      /^Usage: udpjwt keygen --group G --alg ALG/,
    );
    assert.match(r.stdout, /refuses two files for one group/);
  });
  const cases: [string[], RegExp][] = [
    [["--alg", "ES256"], /Missing --group/],
    [["--group", "g"], /Missing --alg/],
    [
      ["--group", "g", "--alg", "HS256"],
      /Invalid value for --alg: "HS256": expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA/,
    ],
    [
      ["--group", "g", "--alg", "ES256", "--bits", "3072"],
      /--bits applies to RSA keys \(RS\* and PS\*\) only/,
    ],
    [
      ["--group", "g", "--alg", "RS256", "--bits", "1000"],
      /Invalid value for --bits: "1000"/,
    ],
    [
      ["--group", "g", "--alg", "RS256", "--bits", "2500"],
      /expected 2048, 3072 or 4096/,
    ],
    [
      ["--group", "a.b", "--alg", "ES256"],
      /Invalid value for --group: group name "a\.b"/,
    ],
    [
      ["--group", "g", "--alg", "ES256", "extra"],
      /Unexpected argument "extra"/,
    ],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const r = await runMain(["keygen", ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr.split("\n")[0]!, message);
      assert.match(r.stderr, /Usage: udpjwt keygen/);
    });
  }
});

Deno.test("keys from keygen load in the server and walk with send", async () => {
  await inTempDir(async (dir) => {
    const keys = `${dir}/keys`;
    for (const [group, alg] of [["rsagrp", "RS256"], ["ecgrp", "ES256"]]) {
      assert.equal(
        await runKeygen(
          ["--group", group!, "--alg", alg!, "--out", keys],
          capture(),
        ),
        0,
      );
    }
    // One file per group, one of each format.
    await Deno.mkdir(`${dir}/lab/keys_pub`, { recursive: true });
    await Deno.mkdir(`${dir}/lab/keys_priv`);
    await Deno.copyFile(`${keys}/rsagrp.pem`, `${dir}/lab/keys_pub/rsagrp.pem`);
    await Deno.copyFile(`${keys}/ecgrp.ssh`, `${dir}/lab/keys_pub/ecgrp.ssh`);
    await Deno.copyFile(
      `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
      `${dir}/lab/keys_priv/key_secret_for_hmac.txt`,
    );
    const ring = await loadKeys(`${dir}/lab/keys_pub`);
    assert.deepEqual([...ring.groups.keys()].sort(), ["ECGRP", "RSAGRP"]);
    assert.deepEqual(ring.skipped, []);
    await withServer({ dir: `${dir}/lab` }, async (server) => {
      await server.waitForStdout(/ECGRP +ES256 +EC P-256 +OpenSSH/);
      await server.waitForStdout(/RSAGRP +RS256 +RSA 2048 +PEM SPKI/);
      for (const group of ["rsagrp", "ecgrp"]) {
        const io = capture();
        const code = await runSend([
          "127.0.0.1",
          String(server.port),
          "--group",
          group,
          "--key",
          `${keys}/${group}.key`,
          "--secret",
          `${dir}/lab/keys_priv/key_secret_for_hmac.txt`,
        ], io);
        assert.equal(code, 0, io.lines.join("\n"));
        assert.match(io.lines.at(-1)!, /^walk complete/);
      }
    });
  });
});
