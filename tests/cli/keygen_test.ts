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
import { fingerprint, parsePublicKey } from "../../lib/keys/public_key.ts";
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

Deno.test("generateGroupKeys() makes matching keys in every format", async (t) => {
  for (const alg of ["RS256", "ES256"] as const) {
    await t.step(alg, async () => {
      const keys = await generateGroupKeys("Alpha-1", { alg });
      assert.equal(keys.group, "ALPHA-1");
      assert.equal(keys.stem, "alpha-1");
      const pem = parsePublicKey(keys.publicPem);
      const ssh = parsePublicKey(keys.sshLine);
      assert.equal(pem.format, "PEM SPKI");
      assert.equal(ssh.format, "OpenSSH");
      assert.equal(pem.alg, alg);
      assert.equal(await fingerprint(pem), keys.fingerprint);
      assert.equal(await fingerprint(ssh), keys.fingerprint);
      const priv = await loadPrivateKey(keys.privatePem);
      assert.equal(priv.info.format, "PKCS#8");
      assert.equal(priv.info.alg, alg);
      assert.equal(await fingerprint(priv.publicKey), keys.fingerprint);
      const type = alg === "RS256" ? "ssh-rsa" : "ecdsa-sha2-nistp256";
      assert.match(
        keys.sshLine,
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
    assert.match(keys.sshLine, / team beta lab 3\n$/);
    await assert.rejects(
      generateGroupKeys("beta", { alg: "RS256", bits: 1024 }),
      RangeError,
    );
    await assert.rejects(
      generateGroupKeys("straße", { alg: "ES256" }),
      RangeError,
    );
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
        `^group GAMMA: ES256, EC P-256, ${fp.replace(/[+/]/g, "\\$&")}$`,
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
      /^Usage: udpjwt keygen --group G --alg RS256\|ES256/,
    );
    assert.match(r.stdout, /refuses two files for one group/);
  });
  const cases: [string[], RegExp][] = [
    [["--alg", "ES256"], /Missing --group/],
    [["--group", "g"], /Missing --alg/],
    [
      ["--group", "g", "--alg", "HS256"],
      /Invalid value for --alg: "HS256": expected RS256 or ES256/,
    ],
    [
      ["--group", "g", "--alg", "ES256", "--bits", "3072"],
      /--bits applies to RS256 keys only/,
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
