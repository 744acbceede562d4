/**
 * Tests of `udpjwt keys` (lib/keys_report.ts): the pre-flight table for the
 * vectors' keys_pub/ (seven good files, two bad), a clean lab, duplicates,
 * files the server ignores, and the HMAC secret checks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { calculateJwkThumbprint, exportJWK, importSPKI } from "jose";
import type { Io } from "../../lib/cli/errors.ts";
import { checkLab, runKeys } from "../../lib/cli/keys.ts";
import { VECTORS } from "../_helpers.ts";
import { runMain } from "../_server.ts";

function capture(): Io & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(l) };
}

/** A lab with the vectors' good keys `files` and the given secret. */
async function makeLab(
  files: Record<string, string>,
  secret: string | undefined,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_keys_" });
  await Deno.mkdir(`${dir}/keys_pub`);
  await Deno.mkdir(`${dir}/keys_priv`);
  for (const [name, from] of Object.entries(files)) {
    await Deno.copyFile(
      `${VECTORS}keys_pub/${from}`,
      `${dir}/keys_pub/${name}`,
    );
  }
  if (secret !== undefined) {
    await Deno.writeTextFile(
      `${dir}/keys_priv/key_secret_for_hmac.txt`,
      secret,
    );
  }
  return dir;
}

/** The RFC 7638 thumbprint of a PEM key, computed by jose. */
async function joseThumbprint(file: string, alg: string): Promise<string> {
  const key = await importSPKI(await Deno.readTextFile(file), alg, {
    extractable: true,
  });
  return await calculateJwkThumbprint(await exportJWK(key));
}

Deno.test("checkLab() reports the vectors' seven good and two bad files as the server loads them", async () => {
  const report = await checkLab({
    keysPub: `${VECTORS}keys_pub`,
    keysPriv: `${VECTORS}keys_priv`,
  });
  const byName = Object.fromEntries(
    report.rows.map((r) => [r.file.split("/").pop(), r]),
  );
  assert.equal(report.rows.length, 9);
  assert.equal(report.loaded, 7);
  const ok = report.rows.filter((r) => r.status === "ok").map((r) => r.group);
  assert.deepEqual(ok, [
    "CHEDIMON",
    "EDGROUP",
    "GUILHONGA",
    "HEARTBEAT",
    "PKCS1GRP",
    "SEGSANH",
    "THEOTHERS",
  ]);
  assert.deepEqual(byName["heartbeat.pem"], {
    group: "HEARTBEAT",
    file: `${VECTORS}keys_pub/heartbeat.pem`,
    format: "PEM SPKI",
    type: "RSA",
    size: "2048",
    alg: "RS256",
    fingerprint: "SHA256:cmDCtA/3uMpz2HAG/bK+VlSjWMBRlHgaptPfMsM5XF0",
    kid: await joseThumbprint(`${VECTORS}keys_pub/heartbeat.pem`, "RS256"),
    status: "ok",
  });
  assert.equal(byName["segsanh.ssh"]?.size, "P-256");
  assert.equal(byName["guilhonga.ssh"]?.format, "RFC 4716");
  // The skipped ones carry the server's exact reason, and what they hold
  // when it parses.
  const weak = byName["weakrsa.pem"]!;
  assert.equal(weak.status, "skipped");
  assert.match(
    weak.reason!,
    /^RSA key of 1024 bits is shorter than the minimum of 2048/,
  );
  assert.equal(weak.size, "1024");
  assert.equal(byName["edgroup.ssh"]?.status, "ok");
  assert.equal(byName["edgroup.ssh"]?.alg, "EdDSA");
  assert.equal(byName["edgroup.ssh"]?.size, "Ed25519");
  assert.equal(byName["broken.pem"]?.status, "skipped");
  assert.equal(byName["broken.pem"]?.fingerprint, undefined);
  assert.deepEqual(report.secret, {
    file: `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
    bytes: 23,
    trailingNewline: true,
  });
  assert.deepEqual(report.problems, ["the server would skip 2 key files"]);
});

Deno.test("checkLab() follows --min-rsa-bits", async () => {
  const report = await checkLab({
    keysPub: `${VECTORS}keys_pub`,
    keysPriv: `${VECTORS}keys_priv`,
    minRsaBits: 1024,
  });
  assert.equal(report.loaded, 8);
  const weak = report.rows.find((r) => r.group === "WEAKRSA");
  assert.equal(weak?.status, "ok");
});

Deno.test("keys prints a table and exits 1 for the vectors", async () => {
  const r = await runMain(["keys", "tests/testdata/vectors"]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(
    lines[0],
    "tests/testdata/vectors/keys_pub: 9 key files, 7 groups loaded",
  );
  assert.match(
    lines[1]!,
    /^GROUP +FILE +FORMAT +TYPE +SIZE +ALG +FINGERPRINT +KID +STATUS$/,
  );
  const kid = await joseThumbprint(
    `${VECTORS}keys_pub/heartbeat.pem`,
    "RS256",
  );
  assert.ok(
    r.stdout.includes(
      ` RS256  SHA256:cmDCtA/3uMpz2HAG/bK+VlSjWMBRlHgaptPfMsM5XF0  ${kid}  `,
    ),
    r.stdout,
  );
  assert.match(
    r.stdout,
    /\nHEARTBEAT +heartbeat\.pem +PEM SPKI +RSA +2048 +RS256 +SHA256:cmDCtA\/3uMpz2HAG\/bK\+VlSjWMBRlHgaptPfMsM5XF0 +\S{43} +ok\n/,
  );
  assert.match(
    r.stdout,
    /\nSEGSANH +segsanh\.ssh +OpenSSH +EC +P-256 +ES256 +SHA256:\S+ +\S{43} +ok\n/,
  );
  assert.match(
    r.stdout,
    /\nEDGROUP +edgroup\.ssh +OpenSSH +OKP +Ed25519 +EdDSA +SHA256:\S+ +\S{43} +ok\n/,
  );
  assert.match(
    r.stdout,
    /\nWEAKRSA +weakrsa\.pem +PEM SPKI +RSA +1024 +RS256 +SHA256:\S+ +\S{43} +skipped: RSA key of 1024 bits/,
  );
  assert.match(
    r.stdout,
    /\nBROKEN +broken\.pem +- +- +- +- +- +- +skipped: /,
  );
  assert.match(
    r.stdout,
    /\nHMAC secret: tests\/testdata\/vectors\/keys_priv\/key_secret_for_hmac\.txt: 23 bytes, ending with a newline/,
  );
  assert.match(lines.at(-1)!, /^NOT ok: the server would skip 2 key files$/);
  const relaxed = await runMain([
    "keys",
    "tests/testdata/vectors",
    "--min-rsa-bits",
    "1024",
  ]);
  assert.equal(relaxed.code, 1);
  assert.match(relaxed.stdout, /skip 1 key file\b/);
});

Deno.test("keys exits 0 for a clean lab and lists files the server ignores", async () => {
  const dir = await makeLab({
    "heartbeat.pem": "heartbeat.pem",
    "segsanh.ssh": "segsanh.ssh",
    "notes.txt": "chedimon.pem",
  }, "s3cret");
  try {
    const io = capture();
    assert.equal(await runKeys([dir], io), 0, io.lines.join("\n"));
    assert.match(io.lines[0]!, /: 2 key files, 2 groups loaded$/);
    assert.ok(
      io.lines.some((l) =>
        /^- +notes\.txt .* ignored: not a \.pem, \.ssh, \.pub, \.jwk or \.jwks file$/
          .test(l)
      ),
    );
    assert.ok(
      io.lines.some((l) =>
        /^HMAC secret: .*: 6 bytes, no trailing newline$/.test(l)
      ),
    );
    assert.equal(io.lines.at(-1), "ok: the server would load every key file");
    const json = capture();
    assert.equal(await runKeys([dir, "--json"], json), 0);
    const report = JSON.parse(json.lines[0]!);
    assert.equal(report.ok, true);
    assert.equal(report.rows.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keys flags a second file for one group and a missing or empty secret", async (t) => {
  await t.step("two files for one group", async () => {
    const dir = await makeLab({
      "heartbeat.pem": "heartbeat.pem",
      "heartbeat.ssh": "theothers.ssh",
    }, "x");
    try {
      const io = capture();
      assert.equal(await runKeys([dir], io), 1);
      assert.ok(
        io.lines.some((l) =>
          /^HEARTBEAT +heartbeat\.ssh +OpenSSH +RSA +3072 .* skipped: group HEARTBEAT already has a key in ".*heartbeat\.pem": keep one file per group$/
            .test(l)
        ),
        io.lines.join("\n"),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  for (
    const [what, secret, message] of [
      [
        "missing",
        undefined,
        /the HMAC secret ".*key_secret_for_hmac\.txt" is missing/,
      ],
      ["empty", "", /the HMAC secret ".*key_secret_for_hmac\.txt" is empty/],
    ] as const
  ) {
    await t.step(`${what} secret`, async () => {
      const dir = await makeLab({ "chedimon.pem": "chedimon.pem" }, secret);
      try {
        const io = capture();
        assert.equal(await runKeys([dir], io), 1);
        assert.match(io.lines.at(-2)!, message);
        assert.match(
          io.lines.at(-1)!,
          /^NOT ok: .*: the server refuses to start$/,
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
  await t.step("no key at all", async () => {
    const dir = await makeLab({}, "x");
    try {
      const io = capture();
      assert.equal(await runKeys([dir], io), 1);
      assert.match(
        io.lines.at(-1)!,
        /no usable public key in ".*keys_pub": the server refuses to start/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("keys: --help, a missing directory and usage errors", async () => {
  const help = await runMain(["keys", "-h"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: udpjwt keys \[DIR\]/);
  const missing = await runMain(["keys", "/nonexistent/lab"]);
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr,
    'udpjwt: Cannot read the public keys directory "/nonexistent/lab/keys_pub": directory not found: pass the lab directory or --keys-pub\n',
  );
  const bad = await runMain(["keys", ".", "--min-rsa-bits", "512"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid value for --min-rsa-bits: "512"/);
  const extra = await runMain(["keys", "a", "b"]);
  assert.equal(extra.code, 2);
  assert.match(extra.stderr, /Too many arguments: "b"/);
});
