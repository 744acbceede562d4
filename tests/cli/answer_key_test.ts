import assert from "node:assert/strict";
import { readAnswerKey } from "../../lib/cli/_answer_key.ts";
import { parseConfig } from "../../lib/cli/config.ts";
import { ConfigError } from "../../lib/cli/errors.ts";
import { runKeys } from "../../lib/cli/keys.ts";
import { runSend } from "../../lib/cli/send.ts";
import { capture } from "../_helpers.ts";

const KEYS = "tests/testdata/answer_keys";

Deno.test("parseConfig() takes --answer-key FILE", () => {
  const parsed = parseConfig(["--answer-key", `${KEYS}/ed25519.pem`]);
  assert.equal(parsed.command, "serve");
  if (parsed.command === "serve") {
    assert.equal(parsed.config.answerKey, `${KEYS}/ed25519.pem`);
  }
  const none = parseConfig([]);
  assert.ok(none.command === "serve" && !("answerKey" in none.config));
  assert.throws(() => parseConfig(["--answer-key", ""]), { exitCode: 2 });
});

Deno.test("readAnswerKey() names the file in one line with exit code 1", async () => {
  const key = await readAnswerKey(`${KEYS}/p256.pem`);
  assert.equal(key.file, `${KEYS}/p256.pem`);
  assert.equal(key.alg, "ES256");
  for (const file of ["rsa3072.pem", "p384.pem", "nope.pem"]) {
    await assert.rejects(readAnswerKey(`${KEYS}/${file}`), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.exitCode, 1);
      assert.match(e.message, new RegExp(`answer key "${KEYS}/${file}"`));
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
});

Deno.test("runKeys() --answer-key FILE --jwks prints the public JWK Set", async () => {
  const io = capture();
  assert.equal(
    await runKeys(["--answer-key", `${KEYS}/ed25519.pem`, "--jwks"], io),
    0,
  );
  const jwks = JSON.parse(io.lines.join("\n"));
  const key = await readAnswerKey(`${KEYS}/ed25519.pem`);
  assert.deepEqual(jwks, key.jwks);
  assert.equal(jwks.keys[0]!.kid, key.kid);
  assert.ok(!("d" in jwks.keys[0]!), "no private member");
  await assert.rejects(runKeys(["--jwks"], capture()), {
    exitCode: 2,
    message: "--jwks needs --answer-key FILE",
  });
  await assert.rejects(
    runKeys(["--answer-key", `${KEYS}/rsa4096.pem`, "--jwks"], capture()),
    { exitCode: 1 },
  );
});

Deno.test("runKeys() --answer-key FILE adds the key to the lab check", async () => {
  const dir = "tests/testdata/vectors";
  const io = capture();
  await runKeys([dir, "--answer-key", `${KEYS}/p256.pem`], io);
  const key = await readAnswerKey(`${KEYS}/p256.pem`);
  assert.ok(
    io.lines.includes(
      `answer key: ${KEYS}/p256.pem: ES256, EC P-256, kid ${key.kid} (publish: udpjwt keys --answer-key ${KEYS}/p256.pem --jwks)`,
    ),
    io.lines.join("\n"),
  );
  const json = capture();
  await runKeys([dir, "--answer-key", `${KEYS}/p256.pem`, "--json"], json);
  assert.deepEqual(JSON.parse(json.lines[0]!).answerKey, {
    file: `${KEYS}/p256.pem`,
    alg: "ES256",
    kid: key.kid,
    jwks: key.jwks,
  });
});

Deno.test("runSend() --answer-jwks: exclusive with --secret, refuses a bad set", async () => {
  const base = [
    "127.0.0.1",
    "9",
    "--group",
    "heartbeat",
    "--key",
    "tests/testdata/vectors/private/heartbeat.key",
  ];
  await assert.rejects(
    runSend([...base, "--secret", "x", "--answer-jwks", "y"], capture()),
    { exitCode: 2, message: /exclude each other/ },
  );
  await assert.rejects(
    runSend([...base, "--answer-jwks", `${KEYS}/ed25519.pem`], capture()),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.exitCode, 1);
      assert.match(
        e.message,
        /^Cannot use --answer-jwks ".*ed25519.pem": not JSON/,
      );
      return true;
    },
  );
  const io = capture();
  assert.equal(await runSend(["--help"], io), 0);
  assert.match(io.lines.join("\n"), /--answer-jwks FILE/);
});
