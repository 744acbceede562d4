/**
 * Protocol 2.1 interoperability vectors (tests/testdata/vectors21, made by
 * ssh-keygen, OpenSSL and PyJWT): every token gets the outcome the contract
 * prescribes through `handlePacket`, on the WebCrypto backend and on the
 * OpenSSL one (with Ed25519 left to WebCrypto, as by default, and with
 * Ed25519 through OpenSSL too); and `udpjwt keys` loads every file of the
 * directory and shows each key's id. Then every truncation and every
 * one-character change of one token per algorithm goes through
 * `handlePacket` on each backend: an error code or no answer, never an
 * exception.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { jwtVerify } from "jose";
import { ERROR_CODES } from "../../lib/protocol/errors.ts";
import { handlePacket } from "../../lib/protocol/handler.ts";
import { loadKeys } from "../../lib/keys/key_ring.ts";
import {
  selectBackend,
  type VerifyBackend,
  webCryptoBackend,
} from "../../lib/keys/verify.ts";
import { vectorContext } from "../_helpers.ts";
import { runMain } from "../_server.ts";

const DIR = fileURLToPath(
  new URL("../testdata/vectors21/", import.meta.url),
);

interface Vector {
  name: string;
  token: string;
  now: number;
  expect: string;
  group?: string;
  note?: string;
  "id_request"?: string;
}

interface KeyEntry {
  file: string;
  group: string;
  alg: string;
  kid: string;
  "kid_source": "kid" | "thumbprint";
  thumbprint: string;
}

const data = JSON.parse(
  await Deno.readTextFile(`${DIR}vectors.json`),
) as { now: number; keys: KeyEntry[]; vectors: Vector[] };
const SECRET = await Deno.readFile(`${DIR}keys_priv/key_secret_for_hmac.txt`);

/** Every backend this machine has: WebCrypto, and OpenSSL both ways. */
function backends(): [string, VerifyBackend][] {
  const out: [string, VerifyBackend][] = [["webcrypto", webCryptoBackend]];
  const { backend } = selectBackend();
  if (backend.name !== "openssl") return out;
  out.push(["openssl", backend]);
  out.push([
    "openssl with Ed25519",
    selectBackend({ ed25519: "openssl" }).backend,
  ]);
  return out;
}

Deno.test("the vectors21 set covers every outcome the issue asks for", () => {
  const count = (expect: string) =>
    data.vectors.filter((v) => v.expect === expect).length;
  assert.equal(data.vectors.length, 137);
  assert.deepEqual(
    Object.fromEntries(
      ["ok", "UNKNOWN_KEY", "ALG_NOT_ALLOWED", "BAD_SIGNATURE", "UNKNOWN_GROUP"]
        .map((e) => [e, count(e)]),
    ),
    {
      ok: 85,
      UNKNOWN_KEY: 8,
      ALG_NOT_ALLOWED: 23,
      BAD_SIGNATURE: 20,
      UNKNOWN_GROUP: 1,
    },
  );
  // One walk per algorithm, both spellings of EdDSA among them.
  const algs = new Set(
    data.vectors.filter((v) => /-seq\d$/.test(v.name)).map((v) =>
      JSON.parse(
        new TextDecoder().decode(
          Uint8Array.fromBase64(v.token.split(".")[0]!, {
            alphabet: "base64url",
          }),
        ),
      ).alg
    ),
  );
  assert.deepEqual([...algs].sort(), [
    "ES384",
    "ES512",
    "Ed25519",
    "EdDSA",
    "PS256",
    "PS384",
    "PS512",
    "RS384",
    "RS512",
  ]);
});

Deno.test("loadKeys() loads every vectors21 file with the tools' key ids", async () => {
  const ring = await loadKeys(`${DIR}keys_pub`);
  assert.deepEqual(ring.skipped, []);
  const loaded = [...ring.groups.values()].flatMap((g) =>
    g.keys.map((k) => ({
      file: g.file.split("/").pop(),
      group: g.group,
      alg: k.info.alg,
      kid: k.kid,
      "kid_source": k.kidSource,
    }))
  ).sort((a, b) => `${a.file}`.localeCompare(`${b.file}`));
  const expected = data.keys.map(({ thumbprint: _, ...k }) => k).sort((a, b) =>
    a.file.localeCompare(b.file)
  );
  assert.deepEqual(loaded, expected);
  assert.deepEqual(
    Object.fromEntries(
      [...ring.groups.values()].map((g) => [g.group, g.info.format]),
    ),
    {
      EDSPKI: "PEM SPKI",
      EDSSH: "OpenSSH",
      P384SSH: "OpenSSH",
      P521RFC: "RFC 4716",
      PSS256: "JWK",
      PSS384: "JWK",
      PSS512: "JWK",
      ROTATION: "JWK Set",
      RS384: "JWK",
      RS512: "JWK",
    },
  );
});

for (const [label, backend] of backends()) {
  Deno.test(`handlePacket() gives every vectors21 token its prescribed outcome (${label})`, async (t) => {
    const ring = await loadKeys(`${DIR}keys_pub`, { backend });
    for (const v of data.vectors) {
      await t.step(v.name, async () => {
        // A fresh context per vector: each one is judged on its own.
        const ctx = await vectorContext(
          v.now,
          { keys: ring.groups, secret: SECRET },
          backend,
        );
        const result = await handlePacket(
          new TextEncoder().encode(v.token),
          ctx,
        );
        assert.equal(result.error ?? "ok", v.expect, result.detail);
        assert.ok(result.reply, `an answer to ${v.name}`);
        const { payload } = await jwtVerify(
          new TextDecoder().decode(result.reply),
          SECRET,
          { algorithms: ["HS256"], currentDate: new Date(v.now * 1000) },
        );
        if (v.expect === "ok") {
          assert.equal(payload.id_request, v.id_request);
          assert.equal(payload.sub, v.group);
          assert.equal(typeof payload.next_number, "number");
        } else {
          assert.equal(payload.error, v.expect);
          assert.match(String(payload.response), /^ERROR: /);
          // Nothing is trusted before the signature verified.
          assert.equal(payload.sub, "NO_SUB_CLAIM");
        }
      });
    }
  });
}

Deno.test("udpjwt keys loads every vectors21 file and shows each key id", async () => {
  const r = await runMain(["keys", "tests/testdata/vectors21", "--json"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  assert.equal(report.loaded, 10);
  const rows = (report.rows as Record<string, string>[]).map((row) => ({
    file: row.file!.split("/").pop(),
    group: row.group,
    alg: row.alg,
    kid: row.kid,
    status: row.status,
  }));
  assert.deepEqual(
    rows.filter((row) => row.file !== "key_secret_for_hmac.txt"),
    data.keys.map((k) => ({
      file: k.file,
      group: k.group,
      alg: k.alg,
      kid: k.kid,
      status: "ok",
    })).sort((a, b) => a.file.localeCompare(b.file)),
  );
  const table = await runMain(["keys", "tests/testdata/vectors21"]);
  assert.equal(table.code, 0, table.stdout + table.stderr);
  assert.match(
    table.stdout,
    /^tests\/testdata\/vectors21\/keys_pub: 10 key files, 10 groups loaded\n/,
  );
  for (const k of data.keys) {
    assert.ok(
      table.stdout.includes(` ${k.alg} `) && table.stdout.includes(k.kid),
      `the table shows ${k.file}'s kid ${k.kid}`,
    );
  }
  assert.match(
    table.stdout,
    /\nROTATION +rotation\.jwks +JWK Set +OKP +Ed25519 +EdDSA +SHA256:\S+ +2026-old +ok\n/,
  );
  assert.match(
    table.stdout,
    /\nROTATION +rotation\.jwks +JWK Set +OKP +Ed25519 +EdDSA +SHA256:\S+ +2026-new +ok\n/,
  );
});

/** The tokens of one walk step per algorithm, and of the kid vectors. */
const MUTATED = data.vectors.filter((v) =>
  v.name.endsWith("-seq0") || v.name === "rotation-no-kid-new-key" ||
  v.name === "header-x5c-ignored"
);

/** Base64url characters, a dot, and some that do not belong in a token. */
const TOKEN_CHARS = [..."AZaz09-_.+/= \u0000"];

for (const [label, backend] of backends()) {
  Deno.test(`handlePacket() answers every truncation and one-character change of a vectors21 token of each algorithm (${label})`, async () => {
    assert.equal(MUTATED.length, 12);
    const ring = await loadKeys(`${DIR}keys_pub`, { backend });
    const ctx = await vectorContext(
      data.now,
      { keys: ring.groups, secret: SECRET },
      backend,
    );
    const codes = new Set<string>(ERROR_CODES);
    const seen: Record<string, number> = {};
    let pick = 0;
    const started = performance.now();
    for (const v of MUTATED) {
      const variants: string[] = [];
      for (let n = 0; n < v.token.length; n++) {
        variants.push(v.token.slice(0, n));
        const c = TOKEN_CHARS[pick++ % TOKEN_CHARS.length]!;
        if (c !== v.token[n]) {
          variants.push(v.token.slice(0, n) + c + v.token.slice(n + 1));
        }
      }
      for (const token of variants) {
        const result = await handlePacket(new TextEncoder().encode(token), ctx);
        seen[result.outcome] = (seen[result.outcome] ?? 0) + 1;
        const what = `${v.name} as ${JSON.stringify(token.slice(-30))}`;
        if (result.reply === null) {
          assert.equal(result.outcome, "dropped:amplification", what);
          continue;
        }
        assert.ok(result.reply.length < 1000, what);
        // A change in the base64url padding bits may leave the token valid:
        // then it is accepted once, and its copies are replays or reuse.
        if (["ok", "replayed"].includes(result.outcome)) continue;
        assert.ok(codes.has(result.outcome), `${what}: ${result.outcome}`);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 20, `${seconds.toFixed(1)} s`);
    assert.ok((seen.MALFORMED_TOKEN ?? 0) > 1000, JSON.stringify(seen));
    assert.ok((seen.BAD_SIGNATURE ?? 0) > 1000, JSON.stringify(seen));
  });
}
