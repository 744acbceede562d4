/**
 * The profile v1 example client, `examples/client_v1.py` (PyJWT), run with
 * `/usr/bin/python3` as a student runs it against a real
 * `--profile v1 --min-rsa-bits 1024` server with an RSA-1024 key. Without
 * PyJWT and cryptography there, the test is ignored and the reason printed
 * (on Debian: `apt-get install -y python3-jwt python3-cryptography`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCommand, withServer } from "../_server.ts";
import { makeV1Lab, OPENSSL } from "../_v1_lab.ts";

const PYTHON = "/usr/bin/python3";

/** Why the client cannot run here, or undefined when it can. */
async function whyNoPython(): Promise<string | undefined> {
  try {
    const r = await runCommand(PYTHON, [
      "-c",
      "import jwt, cryptography.hazmat.primitives.serialization",
    ], { timeoutMs: 20_000 });
    if (r.code === 0) return undefined;
    return `${PYTHON}: ${r.stderr.trim().split("\n").pop()}`;
  } catch (e) {
    return `${PYTHON}: ${e instanceof Error ? e.name : e}`;
  }
}

const why = await whyNoPython();
if (why) {
  // deno-lint-ignore no-console
  console.warn(
    `client_v1_test: examples/client_v1.py is not tested: ${why}; on Debian: apt-get install -y python3-jwt python3-cryptography`,
  );
}

Deno.test({
  name:
    "examples/client_v1.py walks a --profile v1 server with an RSA-1024 key, twice with identical tokens, then with exp",
  ignore: why !== undefined || !OPENSSL,
  fn: async () => {
    const lab = await makeV1Lab();
    try {
      const stopped = await withServer(
        { dir: lab.dir, args: ["--profile", "v1", "--min-rsa-bits", "1024"] },
        async (server) => {
          const base = [
            "examples/client_v1.py",
            "127.0.0.1",
            String(server.port),
            "old2023",
            lab.keyFile,
            "--secret",
            lab.secretFile,
            "--registration",
            "20230001",
            "--registration",
            "20230002",
          ];
          for (const extra of [[], [], ["--exp"]]) {
            const r = await runCommand(PYTHON, [...base, ...extra], {
              timeoutMs: 60_000,
            });
            assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
            const lines = r.stdout.trim().split("\n");
            assert.match(
              lines[0]!,
              /^0 matricula 20230001 -> next_number 1 otp \d+ \(retries 0\)$/,
            );
            assert.match(lines[2]!, /^2 matricula 20230002 -> next_number 0 /);
            assert.equal(
              lines.at(-1),
              "walk complete: old2023 acknowledged events 0-2",
            );
          }
          // A wrong secret: the answer does not verify, exit 1.
          const wrong = `${lab.dir}/wrong_secret.txt`;
          await Deno.writeTextFile(wrong, "lab-2023-secret\n");
          const bad = await runCommand(PYTHON, [
            ...base.slice(0, 5),
            "--secret",
            wrong,
          ], { timeoutMs: 60_000 });
          assert.equal(bad.code, 1);
          assert.match(bad.stderr, /does not verify.*trailing newline/);
        },
      );
      const outcomes = stopped.log
        .filter((r) => r.peer !== undefined && r.outcome !== undefined)
        .map((r) => r.outcome);
      // Three walks of three events; the bare second walk ran the machine.
      assert.deepEqual(outcomes.slice(0, 9), Array(9).fill("ok"));
    } finally {
      await Deno.remove(lab.dir, { recursive: true });
    }
  },
});
