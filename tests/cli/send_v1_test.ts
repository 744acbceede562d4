/**
 * Tests of `udpjwt send --profile v1` (lib/cli/send_v1.ts) against a real
 * `--profile v1 --min-rsa-bits 1024` server on loopback, with the RSA-1024
 * key of a throwaway lab: walks with and without `exp`, under loss, and the
 * command line's usage errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runSend } from "../../lib/cli/send.ts";
import { splitProfile } from "../../lib/cli/send_v1.ts";
import { ConfigError } from "../../lib/cli/errors.ts";
import { matriculaFor } from "../../lib/client/walk_v1.ts";
import { capture } from "../_helpers.ts";
import { withServer } from "../_server.ts";
import { makeV1Lab, OPENSSL, SECRET, type V1Lab } from "../_v1_lab.ts";

const V1_ARGS = ["--profile", "v1", "--min-rsa-bits", "1024"];

function sendArgs(lab: V1Lab, port: number, extra: string[]): string[] {
  return [
    "127.0.0.1",
    String(port),
    "--profile",
    "v1",
    "--group",
    "old2023",
    "--key",
    lab.keyFile,
    "--secret",
    lab.secretFile,
    ...extra,
  ];
}

function outcomes(log: Record<string, unknown>[]): unknown[] {
  return log.filter((r) => r.peer !== undefined && r.outcome !== undefined)
    .map((r) => r.outcome);
}

Deno.test({
  name:
    "send --profile v1 walks 0..M with one registration per member, verifying the answers",
  ignore: !OPENSSL,
  fn: async () => {
    const lab = await makeV1Lab();
    try {
      const stopped = await withServer(
        { dir: lab.dir, args: V1_ARGS },
        async (server) => {
          const io = capture();
          const code = await runSend(
            sendArgs(lab, server.port, [
              "--registration",
              "20230001,20230002",
              "--registration",
              "007",
            ]),
            io,
          );
          assert.equal(code, 0, io.lines.join("\n"));
          assert.match(
            io.lines[0]!,
            /^udpjwt send --profile v1: group OLD2023 \(M 3\) .*RS256, RSA 1024/,
          );
          assert.match(io.lines[1]!, /^answers verified with /);
          const steps = io.lines.filter((l) => /^\s+\d+ {2}matricula /.test(l));
          assert.equal(steps.length, 4, io.lines.join("\n"));
          assert.match(
            steps[0]!,
            /^ {2}0 {2}matricula 20230001 +next_number 1 +otp \d+ +rtt/,
          );
          assert.match(steps[3]!, /^ {2}3 {2}matricula 007 +next_number 0 /);
          assert.match(
            io.lines.at(-1)!,
            /^walk complete: events 0-3 acknowledged/,
          );
          // JSON, one registration for every event, M given.
          const json = capture();
          assert.equal(
            await runSend(
              sendArgs(lab, server.port, [
                "--seq-max",
                "2",
                "--registration",
                "20230009",
                "--json",
              ]),
              json,
            ),
            0,
            json.lines.join("\n"),
          );
          const objects = json.lines.map((l) => JSON.parse(l));
          assert.deepEqual(objects.map((o) => o.next_number), [
            1,
            2,
            0,
            undefined,
          ]);
          assert.ok(objects.slice(0, 3).every((o) => o.verified));
          assert.ok(
            objects.slice(0, 3).every((o) => /^\d+$/.test(o.otp_number)),
          );
          assert.deepEqual(
            { ...objects[3], elapsed_ms: 0, seed: 0 },
            {
              ...objects[3],
              elapsed_ms: 0,
              seed: 0,
              type: "summary",
              profile: "v1",
              ok: true,
              seq_max: 2,
              steps: 3,
              bare: false,
            },
          );
        },
      );
      assert.deepEqual(outcomes(stopped.log), Array(7).fill("ok"));
    } finally {
      await Deno.remove(lab.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "send --profile v1 --bare walks twice with identical tokens, and completes under loss",
  ignore: !OPENSSL,
  fn: async () => {
    const lab = await makeV1Lab();
    try {
      const stopped = await withServer(
        { dir: lab.dir, args: V1_ARGS },
        async (server) => {
          const args = sendArgs(lab, server.port, [
            "--seq-max",
            "2",
            "--registration",
            "20230001,20230002",
            "--bare",
            "--json",
          ]);
          for (const walk of [1, 2]) {
            const io = capture();
            assert.equal(await runSend(args, io), 0, `walk ${walk}`);
          }
          // Lost datagrams: every copy runs the machine, repeats answer alike.
          for (const seed of [3, 11]) {
            const io = capture();
            const code = await runSend([
              ...args,
              "--simulate-loss",
              "0.3",
              "--seed",
              String(seed),
              "--timeout",
              "100",
            ], io);
            assert.equal(code, 0, io.lines.join("\n"));
          }
        },
      );
      const all = outcomes(stopped.log);
      assert.equal(all.filter((o) => o === "replayed").length, 0);
      assert.equal(all.slice(0, 6).join(), Array(6).fill("ok").join());
    } finally {
      await Deno.remove(lab.dir, { recursive: true });
    }
  },
});

Deno.test("send --profile v1 loads keys as send does: OpenSSH and passphrase-protected keys walk, --kid goes into the header", async () => {
  const keys = fileURLToPath(
    new URL("../testdata/private_keys/", import.meta.url),
  );
  const lab = await Deno.makeTempDir({ prefix: "udpjwt_v1_keys_" });
  // group, private key, its public key as the lab has it
  const groups = [
    ["sshrsapass", "id_rsa_pass", "id_rsa_pass.pub", "ssh"],
    ["sshed25519pass", "id_ed25519_pass", "id_ed25519_pass.pub", "ssh"],
    ["rsap8enc", "rsa.pkcs8.encrypted.pem", "public/rsa.spki.pem", "pem"],
  ] as const;
  try {
    await Deno.mkdir(`${lab}/keys_pub`);
    await Deno.mkdir(`${lab}/keys_priv`);
    await Deno.writeFile(`${lab}/keys_priv/key_secret_for_hmac.txt`, SECRET);
    for (const [group, , pub, ext] of groups) {
      await Deno.copyFile(`${keys}${pub}`, `${lab}/keys_pub/${group}.${ext}`);
    }
    await withServer(
      { dir: lab, args: ["--profile", "v1"] },
      async (server) => {
        const send = async (group: string, file: string, extra: string[]) => {
          const io = capture();
          const code = await runSend([
            "127.0.0.1",
            String(server.port),
            "--profile",
            "v1",
            "--group",
            group,
            "--key",
            `${keys}${file}`,
            "--passphrase-file",
            `${keys}passphrase.txt`,
            "--secret",
            `${lab}/keys_priv/key_secret_for_hmac.txt`,
            "--seq-max",
            "2",
            ...extra,
          ], io);
          return { code, lines: io.lines };
        };
        for (const [group, file] of groups) {
          const { code, lines } = await send(group, file, []);
          assert.equal(code, 0, `${file}: ${lines.join("\n")}`);
          assert.match(lines.at(-1)!, /^walk complete: events 0-2/);
        }
        const { code, lines } = await send("sshrsapass", "id_rsa_pass", [
          "--kid",
          "nope",
        ]);
        assert.equal(code, 1);
        assert.match(lines[0]!, /, kid "nope"\)$/);
        assert.match(lines.at(-1)!, /^walk FAILED at event 0: UNKNOWN_KEY/);
      },
    );
  } finally {
    await Deno.remove(lab, { recursive: true });
  }
});

Deno.test("send --profile v1 refuses bad flags with exit code 2", async (t) => {
  const base = ["127.0.0.1", "44555", "--group", "g", "--key", "k.pem"];
  const cases: [string[], RegExp][] = [
    [["--profile", "v3"], /--profile.*"v3".*2 or v1/],
    [
      ["--profile", "v1", "--seq-max", "3", "--registration", "1,2"],
      /2 numbers for --seq-max 3/,
    ],
    [["--profile", "v1", "--seq-max", "1001"], /--seq-max/],
    [["--profile", "v1", "--registration", "12a"], /--registration.*"12a"/],
    [
      ["--profile", "v1", "--registration", "1".repeat(21)],
      /--registration/,
    ],
    [["--profile", "v1", "--to", "5", "--seq-max", "3"], /--to/],
    [["--profile=v1", "--states", "7"], /--states/],
  ];
  for (const [extra, message] of cases) {
    await t.step(extra.join(" "), async () => {
      await assert.rejects(runSend([...base, ...extra], capture()), (e) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.exitCode, 2);
        assert.match(e.message, message);
        return true;
      });
    });
  }
  await t.step("--help", async () => {
    const io = capture();
    assert.equal(await runSend(["--profile", "v1", "--help"], io), 0);
    assert.match(io.lines[0]!, /^Usage: udpjwt send HOST PORT --profile v1/);
    assert.match(io.lines[0]!, /--passphrase-file F/);
  });
});

Deno.test("splitProfile() takes --profile out of the arguments", () => {
  assert.deepEqual(splitProfile(["a", "--profile", "v1", "b"]), {
    profile: "v1",
    rest: ["a", "b"],
  });
  assert.deepEqual(splitProfile(["--profile=2", "x"]), {
    profile: "2",
    rest: ["x"],
  });
  assert.deepEqual(splitProfile(["x"]), { profile: "2", rest: ["x"] });
});

Deno.test("matriculaFor() sends the k-th matricula with event k, the first with event 0", () => {
  assert.equal(matriculaFor([5], 3), 5);
  assert.equal(matriculaFor([], 3), 0);
  assert.equal(matriculaFor([1, 2, 3], 0), 1);
  assert.equal(matriculaFor([1, 2, 3], 1), 1);
  assert.equal(matriculaFor([1, 2, "3"], 3), "3");
});
