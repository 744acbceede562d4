/**
 * Tests of `udpjwt send --key` with every private key format (lib/cli/send.ts
 * over lib/keys/private_key.ts): the datagram `send` puts on the wire is
 * caught and its signature checked with `openssl` against the public key the
 * tools wrote; OpenSSH and encrypted RS256/ES256 keys walk against a real
 * server; the passphrase comes from --passphrase-file, UDPJWT_PASSPHRASE or
 * a terminal prompt; a missing or wrong passphrase, a corrupt file or an
 * --alg that does not fit is one line on stderr and exit 1 (2 for --alg); an
 * RSA-1024 key walks a server that allows it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runSend } from "../../lib/cli/send.ts";
import type { KeyAlgorithm } from "../../lib/keys/public_key.ts";
import { capture, SECRET_FILE } from "../_helpers.ts";
import {
  REPO_ROOT,
  RUN_ARGS,
  runMain,
  withServer,
  withTimeout,
} from "../_server.ts";
import { opensslVerifies } from "../keys/_signatures.ts";
import { makeV1Lab, OPENSSL } from "../_v1_lab.ts";

const DIR = fileURLToPath(
  new URL("../testdata/private_keys/", import.meta.url),
);
const EXPECTED: Record<
  string,
  { alg: KeyAlgorithm; encrypted: boolean; public: string; fingerprint: string }
> = JSON.parse(await Deno.readTextFile(`${DIR}expected.json`));
const PASSPHRASE_FILE = `${DIR}passphrase.txt`;

/** A passphrase file for a fixture: encrypted.pem predates passphrase.txt. */
async function passphraseFileFor(file: string, tmp: string): Promise<string> {
  if (file !== "encrypted.pem") return PASSPHRASE_FILE;
  await Deno.writeTextFile(`${tmp}/secret.txt`, "secret\r\n");
  return `${tmp}/secret.txt`;
}

/**
 * Runs `send` in process against a UDP socket that never answers, and
 * returns the first datagram it sent and what it printed.
 */
async function catchDatagram(
  args: string[],
): Promise<{ token: string; code: number; lines: string[] }> {
  const listener = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const io = capture();
    const sent = runSend([
      "127.0.0.1",
      String(port),
      "--group",
      "alpha",
      "--to",
      "0",
      "--retries",
      "0",
      "--timeout",
      "50",
      ...args,
    ], io);
    const [bytes] = await withTimeout(
      listener.receive(),
      10_000,
      "send sent nothing",
    );
    const code = await sent;
    return {
      token: new TextDecoder().decode(bytes).trim(),
      code,
      lines: io.lines,
    };
  } finally {
    listener.close();
  }
}

function header(token: string): Record<string, unknown> {
  return JSON.parse(
    new TextDecoder().decode(
      Uint8Array.fromBase64(token.split(".")[0]!, { alphabet: "base64url" }),
    ),
  );
}

Deno.test("send --key signs with every fixture; openssl verifies the datagram on the wire", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_send_keys_" });
  try {
    for (const [file, want] of Object.entries(EXPECTED)) {
      await t.step(file, async () => {
        const { token, code, lines } = await catchDatagram([
          "--key",
          `${DIR}${file}`,
          ...(want.encrypted
            ? ["--passphrase-file", await passphraseFileFor(file, tmp)]
            : []),
        ]);
        assert.equal(code, 1); // nobody answers
        assert.ok(
          lines[0]!.includes(`(${want.alg}, `) &&
            lines[0]!.includes(want.fingerprint),
          lines[0],
        );
        const h = header(token);
        assert.equal(h.alg, want.alg);
        assert.equal(h.typ, "JWT");
        assert.ok(
          await opensslVerifies(token, want.alg, `${DIR}${want.public}`),
          `openssl does not verify ${file}'s token`,
        );
      });
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("send --alg and --kid: RSA signs PS384 when asked, the kid goes into the header", async () => {
  const rsa = await catchDatagram([
    "--key",
    `${DIR}id_rsa`,
    "--alg",
    "ps384",
    "--kid",
    "team-alpha-2026",
    "--json",
  ]);
  assert.deepEqual(header(rsa.token), {
    alg: "PS384",
    typ: "JWT",
    kid: "team-alpha-2026",
  });
  assert.ok(
    await opensslVerifies(rsa.token, "PS384", `${DIR}public/id_rsa.spki.pem`),
  );
  const summary = JSON.parse(rsa.lines.at(-1)!);
  assert.equal(summary.alg, "PS384");
  assert.equal(summary.kid, "team-alpha-2026");
  // A JWK's own alg and kid.
  const jwk = await catchDatagram(["--key", `${DIR}rsa.ps256.jwk`]);
  assert.deepEqual(header(jwk.token), {
    alg: "PS256",
    typ: "JWT",
    kid: "rsa-pss",
  });
  assert.match(
    jwk.lines[0]!,
    /\(PS256, RSA 2048, SHA256:\S+, kid "rsa-pss"\)$/,
  );
});

Deno.test("send walks with OpenSSH and encrypted RS256/ES256 keys against a real server", async () => {
  const lab = await Deno.makeTempDir({ prefix: "udpjwt_send_lab_" });
  const groups: [string, string, string[]][] = [
    ["sshrsa", "id_rsa", []],
    ["sshrsapass", "id_rsa_pass", ["--passphrase-file", PASSPHRASE_FILE]],
    ["sshec", "id_ecdsa256", []],
    ["p256p8enc", "encrypted.pem", []],
    ["rsap8enc", "rsa.pkcs8.encrypted.pem", [
      "--passphrase-file",
      PASSPHRASE_FILE,
    ]],
  ];
  try {
    await Deno.mkdir(`${lab}/keys_pub`, { recursive: true });
    await Deno.mkdir(`${lab}/keys_priv`);
    await Deno.copyFile(
      SECRET_FILE,
      `${lab}/keys_priv/key_secret_for_hmac.txt`,
    );
    await Deno.writeTextFile(`${lab}/secret.txt`, "secret\n");
    groups[3]![2] = ["--passphrase-file", `${lab}/secret.txt`];
    for (const [group, file] of groups) {
      // The public key as ssh-keygen wrote it where there is one.
      const pub = `${DIR}${file}.pub`;
      const hasPub = await Deno.stat(pub).then(() => true, () => false);
      await Deno.copyFile(
        hasPub ? pub : `${DIR}${EXPECTED[file]!.public}`,
        `${lab}/keys_pub/${group}.${hasPub ? "ssh" : "pem"}`,
      );
    }
    await withServer({ dir: lab }, async (server) => {
      for (const [group, file, extra] of groups) {
        const io = capture();
        const code = await runSend([
          "127.0.0.1",
          String(server.port),
          "--group",
          group,
          "--key",
          `${DIR}${file}`,
          "--secret",
          `${lab}/keys_priv/key_secret_for_hmac.txt`,
          ...extra,
        ], io);
        assert.equal(code, 0, `${file}: ${io.lines.join("\n")}`);
        assert.match(io.lines.at(-1)!, /^walk complete: events 0-6/);
      }
    });
  } finally {
    await Deno.remove(lab, { recursive: true });
  }
});

/** Runs `main.ts send` as a user would, with an environment and env access. */
async function sendWithEnv(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-env=UDPJWT_PASSPHRASE",
      "main.ts",
      "send",
      ...args,
    ],
    cwd: REPO_ROOT,
    env,
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

/** A port where nothing answers, for walks that need only the key. */
function silentPort(): string {
  const probe = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return String(port);
}

Deno.test("send: passphrase sources and key problems end as one line", async (t) => {
  const base = (key: string) => [
    "127.0.0.1",
    silentPort(),
    "--group",
    "g",
    "--key",
    `${DIR}${key}`,
    "--to",
    "0",
    "--retries",
    "0",
    "--timeout",
    "20",
  ];
  const oneLine = (stderr: string) =>
    assert.match(stderr, /^udpjwt: [^\n]+\n$/, stderr);
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_send_pass_" });
  try {
    await t.step("no passphrase available: exit 1", async () => {
      for (const key of ["id_ed25519_pass", "p521.pkcs8.encrypted.pem"]) {
        const r = await runMain(["send", ...base(key)]);
        assert.equal(r.code, 1, r.stderr);
        oneLine(r.stderr);
        assert.match(
          r.stderr,
          /Cannot use the private key ".*": it is protected by a passphrase and none was given: pass --passphrase-file FILE, set UDPJWT_PASSPHRASE \(with --allow-env=UDPJWT_PASSPHRASE\), or run on a terminal to be asked/,
        );
      }
    });
    await t.step("a wrong passphrase from each source: exit 1", async () => {
      await Deno.writeTextFile(`${tmp}/wrong.txt`, "wrong\n");
      for (const key of ["id_ed25519_pass", "rsa.pkcs8.encrypted.pem"]) {
        const r = await runMain([
          "send",
          ...base(key),
          "--passphrase-file",
          `${tmp}/wrong.txt`,
        ]);
        assert.equal(r.code, 1, r.stderr);
        oneLine(r.stderr);
        assert.match(
          r.stderr,
          /: wrong passphrase \(from --passphrase-file ".*wrong\.txt"\): the key does not decrypt with it\n$/,
        );
      }
      const env = await sendWithEnv(base("id_ecdsa521_pass"), {
        UDPJWT_PASSPHRASE: "Correct horse battery staple",
      });
      assert.equal(env.code, 1, env.stderr);
      oneLine(env.stderr);
      assert.match(env.stderr, /wrong passphrase \(from UDPJWT_PASSPHRASE\)/);
    });
    await t.step("the right passphrase from UDPJWT_PASSPHRASE", async () => {
      const r = await sendWithEnv(base("id_ed25519_pass"), {
        UDPJWT_PASSPHRASE: "correct horse battery staple",
      });
      assert.equal(r.code, 1); // nothing answers
      assert.equal(r.stderr, "");
      assert.match(
        r.stdout,
        new RegExp(
          `^udpjwt send: .*\\(EdDSA, Ed25519, ${
            EXPECTED.id_ed25519_pass!.fingerprint.replace(/[+/]/g, "\\$&")
          }\\)\\n`,
        ),
      );
      assert.match(r.stdout, /NO_ANSWER/);
    });
    await t.step(
      "--passphrase-file wins over UDPJWT_PASSPHRASE; an empty one is refused",
      async () => {
        const r = await sendWithEnv(
          [...base("id_ed25519_pass"), "--passphrase-file", PASSPHRASE_FILE],
          { UDPJWT_PASSPHRASE: "wrong" },
        );
        assert.equal(r.stderr, "");
        assert.match(r.stdout, /^udpjwt send: .*\(EdDSA, Ed25519, /);
        await Deno.writeTextFile(`${tmp}/empty.txt`, "\n");
        const empty = await runMain([
          "send",
          ...base("id_ed25519_pass"),
          "--passphrase-file",
          `${tmp}/empty.txt`,
        ]);
        assert.equal(empty.code, 1);
        oneLine(empty.stderr);
        assert.match(
          empty.stderr,
          /The --passphrase-file ".*empty\.txt" is empty/,
        );
        const missing = await runMain([
          "send",
          ...base("id_ed25519_pass"),
          "--passphrase-file",
          `${tmp}/nope.txt`,
        ]);
        assert.equal(missing.code, 1);
        oneLine(missing.stderr);
        assert.match(
          missing.stderr,
          /Cannot read --passphrase-file ".*nope\.txt": file not found/,
        );
      },
    );
    await t.step("corrupt files: exit 1", async () => {
      const good = await Deno.readTextFile(`${DIR}id_ed25519`);
      const lines = good.split("\n");
      const corrupt: [string, string, RegExp][] = [
        [
          "cut.key",
          lines.slice(0, 3).concat(lines.at(-2)!).join("\n"),
          /truncated/,
        ],
        [
          "garbage.key",
          [lines[0], "QUFB".repeat(20), lines.at(-2)].join("\n"),
          /not an OpenSSH private key: no "openssh-key-v1"/,
        ],
        [
          "empty.key",
          "",
          /not a private key \(expected PEM, OpenSSH or a JWK\)/,
        ],
        [
          "bad.jwk",
          '{"kty":"EC","crv":"P-384","x":"AA","y":"AA","d":"AA"}',
          /WebCrypto rejects the JWK key/,
        ],
        ["binary.key", "\u0000\u0001\u0002", /not a private key/],
      ];
      for (const [name, text, message] of corrupt) {
        await Deno.writeTextFile(`${tmp}/${name}`, text);
        const r = await runMain([
          "send",
          ...base("id_ed25519"),
          "--key",
          `${tmp}/${name}`,
        ]);
        assert.equal(r.code, 1, `${name}: ${r.stderr}`);
        oneLine(r.stderr);
        assert.match(r.stderr, /^udpjwt: Cannot use the private key "/);
        assert.match(r.stderr, message, name);
      }
      const pub = await runMain([
        "send",
        ...base("id_ed25519"),
        "--key",
        `${DIR}id_ed25519.pub`,
      ]);
      assert.equal(pub.code, 1);
      assert.match(
        pub.stderr,
        /this is an OpenSSH public key: pass the private key \(the file without \.pub\)\n$/,
      );
    });
    await t.step(
      "--alg that does not fit the key: exit 2; unknown --alg, bad --kid: usage",
      async () => {
        const r = await runMain([
          "send",
          ...base("id_ecdsa384"),
          "--alg",
          "ES256",
        ]);
        assert.equal(r.code, 2, r.stderr);
        oneLine(r.stderr);
        assert.match(
          r.stderr,
          /^udpjwt: Invalid value for --alg: algorithm "ES256" does not fit this EC P-384 key \(it signs ES384\)\n$/,
        );
        const hs = await runMain(["send", ...base("id_rsa"), "--alg", "HS256"]);
        assert.equal(hs.code, 2);
        assert.match(
          hs.stderr,
          /Invalid value for --alg: "HS256": expected one of RS256, /,
        );
        assert.match(hs.stderr, /Usage: udpjwt send/);
        const kid = await runMain([
          "send",
          ...base("id_rsa"),
          "--kid",
          "a\u0001b",
        ]);
        assert.equal(kid.code, 2);
        assert.match(kid.stderr, /Invalid value for --kid/);
      },
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name:
    "send signs with an RSA-1024 key (jose refuses it) and walks a --min-rsa-bits 1024 server",
  ignore: !OPENSSL,
  fn: async () => {
    const lab = await makeV1Lab();
    try {
      await withServer(
        { dir: lab.dir, args: ["--min-rsa-bits", "1024"] },
        async (server) => {
          const io = capture();
          const code = await runSend([
            "127.0.0.1",
            String(server.port),
            "--group",
            "old2023",
            "--key",
            lab.keyFile,
            "--secret",
            lab.secretFile,
          ], io);
          assert.equal(code, 0, io.lines.join("\n"));
          assert.match(io.lines[0]!, /\(RS256, RSA 1024, /);
          assert.match(io.lines.at(-1)!, /^walk complete: events 0-6/);
        },
      );
    } finally {
      await Deno.remove(lab.dir, { recursive: true });
    }
  },
});

/** Whether util-linux `script` can give a child a terminal here. */
const hasScript = new Deno.Command("script", { args: ["--version"] })
  .output().then((o) => o.success, () => false);

Deno.test({
  name: "send asks for the passphrase on a terminal without echoing it",
  ignore: !(await hasScript),
  fn: async () => {
    const command = [
      Deno.execPath(),
      ...RUN_ARGS,
      "send",
      "127.0.0.1",
      silentPort(),
      "--group",
      "g",
      "--key",
      `${DIR}id_ed25519_pass`,
      "--to",
      "0",
      "--retries",
      "0",
      "--timeout",
      "20",
    ]
      .map((a) => `'${a}'`).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      cwd: REPO_ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    let seen = "";
    const text = new TextDecoder();
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(seen)) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += text.decode(value);
      }
    };
    const writer = child.stdin.getWriter();
    try {
      await withTimeout(
        readUntil(/Passphrase for .*id_ed25519_pass: /),
        20_000,
        `no prompt: ${seen}`,
      );
      await writer.write(
        new TextEncoder().encode("correct horse battery staple\r"),
      );
      await withTimeout(readUntil(/walk FAILED/), 20_000, `no walk: ${seen}`);
    } finally {
      await writer.close().catch(() => {});
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
    }
    assert.match(seen, /udpjwt send: group G .*\(EdDSA, Ed25519, SHA256:/);
    assert.doesNotMatch(seen, /correct horse/);
  },
});
