/**
 * End-to-end tests of `main.ts` over real UDP on loopback, as in
 * server_test.ts: hostile datagrams answered as docs/protocol.md prescribes, the
 * error-answer rate limit, and the command line's flags, exit codes and
 * start-up errors.
 *
 * Run with
 * `deno test --allow-net=127.0.0.1,[::1] --allow-read --allow-write --allow-run tests/net/server_errors_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { SignJWT } from "jose";
import {
  b64url,
  nowSec,
  requestClaims,
  SECRET,
  signRequest,
  VECTORS,
} from "../_helpers.ts";
import { runMain, withServer } from "../_server.ts";
import { withClient } from "../_udp_client.ts";
import {
  checkError,
  checkOk,
  expectNoAnswer,
  keyOf,
  outcomes,
  step,
  tally,
  token,
} from "./_server_checks.ts";

Deno.test("main.ts answers hostile datagrams as docs/protocol.md prescribes and keeps serving", async (t) => {
  /** The outcome each hostile datagram must leave in the log. */
  const expected: string[] = [];
  const stopped = await withServer({}, async (server) => {
    const to = server.addr;
    await withClient(async (client) => {
      /** Sends an unverifiable datagram and checks the 3x bound on the answer. */
      async function sendUnverified(
        data: Uint8Array,
      ): Promise<Uint8Array> {
        await client.send(to, data);
        const answer = await client.receive();
        assert.ok(
          answer.length <= 3 * data.length,
          `${answer.length} bytes answered to ${data.length}`,
        );
        return answer;
      }
      const utf8 = (s: string) => new TextEncoder().encode(s);

      // HEARTBEAT is in state 1 while the hostile inputs arrive; none of them
      // may move it (most carry event 0, which would reset it to 0).
      await step(client, to, "HEARTBEAT", 0, 1);
      await step(client, to, "HEARTBEAT", 1, 2);
      expected.push("ok", "ok");

      await t.step("random garbage gets MALFORMED_TOKEN", async () => {
        const garbage = crypto.getRandomValues(new Uint8Array(300)).toBase64();
        await checkError(
          await sendUnverified(utf8(garbage)),
          "MALFORMED_TOKEN",
          "NO_SUB_CLAIM",
        );
        expected.push("MALFORMED_TOKEN");
      });

      await t.step("an empty datagram gets no answer", async () => {
        await client.send(to, new Uint8Array(0));
        expected.push("dropped:amplification");
        await expectNoAnswer(client, to);
        expected.push("ok");
      });

      await t.step(
        "10 bytes of junk get no answer (anti-amplification)",
        async () => {
          await client.send(to, utf8("0123456789"));
          expected.push("dropped:amplification");
          await expectNoAnswer(client, to);
          expected.push("ok");
        },
      );

      await t.step("non-UTF-8 bytes get MALFORMED_TOKEN", async () => {
        const bytes = new Uint8Array(300);
        for (let i = 0; i < bytes.length; i++) bytes[i] = 0x80 + (i % 0x80);
        bytes.set([0xc3, 0x28, 0xff, 0xfe], 0);
        await checkError(
          await sendUnverified(bytes),
          "MALFORMED_TOKEN",
          "NO_SUB_CLAIM",
        );
        expected.push("MALFORMED_TOKEN");
        // A valid token followed by a stray non-UTF-8 byte is not a token.
        const t0 = await token("HEARTBEAT", 0);
        const bytes2 = new Uint8Array([...utf8(t0), 0xff]);
        await checkError(
          await sendUnverified(bytes2),
          "MALFORMED_TOKEN",
          "NO_SUB_CLAIM",
        );
        expected.push("MALFORMED_TOKEN");
      });

      await t.step(
        "a datagram over 8192 bytes is dropped; 8192 bytes is served",
        async () => {
          // A valid token padded with whitespace (ignored around a token).
          const t0 = await token("THEOTHERS", 0);
          await client.send(to, t0 + "\n".repeat(8193 - t0.length));
          expected.push("dropped:oversize");
          await expectNoAnswer(client, to);
          expected.push("ok");
          const t1 = await token("THEOTHERS", 0);
          await client.send(to, t1 + "\n".repeat(8192 - t1.length));
          await checkOk(await client.receive(), t1, "THEOTHERS", 1);
          expected.push("ok");
        },
      );

      await t.step("alg none gets ALG_NOT_ALLOWED", async () => {
        const claims = requestClaims("HEARTBEAT", 0, nowSec());
        const none = `${b64url('{"alg":"none","typ":"JWT"}')}.${
          b64url(JSON.stringify(claims))
        }.`;
        await checkError(
          await sendUnverified(utf8(none)),
          "ALG_NOT_ALLOWED",
          "NO_SUB_CLAIM",
          none,
        );
        expected.push("ALG_NOT_ALLOWED");
      });

      await t.step(
        "HS256 keyed with the group's public PEM gets ALG_NOT_ALLOWED",
        async () => {
          const pem = await Deno.readFile(`${VECTORS}keys_pub/heartbeat.pem`);
          const forged = await new SignJWT(
            requestClaims("HEARTBEAT", 0, nowSec()),
          ).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(pem);
          await checkError(
            await sendUnverified(utf8(forged)),
            "ALG_NOT_ALLOWED",
            "NO_SUB_CLAIM",
            forged,
          );
          expected.push("ALG_NOT_ALLOWED");
        },
      );

      await t.step(
        "RS256 for a group with an EC key gets ALG_NOT_ALLOWED",
        async () => {
          const wrongAlg = await signRequest(
            requestClaims("CHEDIMON", 0, nowSec()),
            await keyOf("HEARTBEAT"),
            "RS256",
          );
          await checkError(
            await sendUnverified(utf8(wrongAlg)),
            "ALG_NOT_ALLOWED",
            "NO_SUB_CLAIM",
            wrongAlg,
          );
          expected.push("ALG_NOT_ALLOWED");
        },
      );

      await t.step(
        "an expired token gets TOKEN_EXPIRED with sub echoed",
        async () => {
          const now = nowSec();
          const expired = await signRequest(
            requestClaims("HEARTBEAT", 0, now - 300, {
              sub: "heartbeat",
              exp: now - 200,
            }),
            await keyOf("HEARTBEAT"),
            "RS256",
          );
          await client.send(to, expired);
          await checkError(
            await client.receive(),
            "TOKEN_EXPIRED",
            "heartbeat",
            expired,
          );
          expected.push("TOKEN_EXPIRED");
        },
      );

      await t.step("a wrong aud gets BAD_AUDIENCE", async () => {
        const t0 = await token("HEARTBEAT", 0, { aud: "some.other.server" });
        await client.send(to, t0);
        await checkError(
          await client.receive(),
          "BAD_AUDIENCE",
          "HEARTBEAT",
          t0,
        );
        expected.push("BAD_AUDIENCE");
      });

      await t.step(
        "a token signed with another group's key gets BAD_SIGNATURE and NO_SUB_CLAIM",
        async () => {
          const t0 = await token("HEARTBEAT", 0, undefined, "GUILHONGA");
          await client.send(to, t0);
          await checkError(
            await client.receive(),
            "BAD_SIGNATURE",
            "NO_SUB_CLAIM",
            t0,
          );
          expected.push("BAD_SIGNATURE");
        },
      );

      await t.step("an unknown group gets UNKNOWN_GROUP", async () => {
        const t0 = await token("HEARTBEAT", 0, { sub: "NOSUCHGROUP" });
        await client.send(to, t0);
        await checkError(
          await client.receive(),
          "UNKNOWN_GROUP",
          "NO_SUB_CLAIM",
          t0,
        );
        expected.push("UNKNOWN_GROUP");
      });

      await t.step("a missing claim gets MISSING_CLAIM", async () => {
        const claims = requestClaims("HEARTBEAT", 0, nowSec());
        delete claims.registration;
        const t0 = await signRequest(claims, await keyOf("HEARTBEAT"), "RS256");
        await client.send(to, t0);
        const p = await checkError(
          await client.receive(),
          "MISSING_CLAIM",
          "HEARTBEAT",
          t0,
        );
        assert.match(String(p.response), /registration/);
        expected.push("MISSING_CLAIM");
      });

      await t.step("seq_state_number 9 (and -1) gets no answer", async () => {
        await client.send(to, await token("HEARTBEAT", 9));
        await client.send(to, await token("HEARTBEAT", -1));
        expected.push("no_action", "no_action");
        await expectNoAnswer(client, to);
        expected.push("ok");
      });

      await t.step(
        "an out-of-order event answers the expected number",
        async () => {
          // HEARTBEAT is still in state 1: nothing above moved it.
          await step(client, to, "HEARTBEAT", 4, 2);
          expected.push("ok");
        },
      );
    });

    await t.step("a legitimate client still completes a step", async () => {
      await withClient(async (client) => {
        await step(client, to, "HEARTBEAT", 2, 3);
        await step(client, to, "CHEDIMON", 0, 1);
      });
      expected.push("ok", "ok");
    });
  });

  // Every hostile datagram reached the server and left its outcome.
  assert.deepEqual(
    tally(outcomes(stopped.log)),
    tally(expected),
  );
});

Deno.test("main.ts rate-limits error answers per source and still answers valid requests", async () => {
  const stopped = await withServer({
    args: ["--error-rate", "1", "--error-burst", "3"],
  }, async (server) => {
    await withClient(async (client) => {
      const garbage = crypto.getRandomValues(new Uint8Array(300)).toBase64();
      let answered = 0;
      for (let i = 0; i < 5; i++) {
        await client.send(server.addr, garbage);
        const a = await client.next(i < 3 ? 3000 : 400);
        if (a) {
          await checkError(a, "MALFORMED_TOKEN", "NO_SUB_CLAIM");
          answered++;
        }
      }
      assert.equal(answered, 3, "the burst of 3 error answers, then none");
      await step(client, server.addr, "HEARTBEAT", 0, 1);
    });
  });
  assert.deepEqual(tally(outcomes(stopped.log)), {
    MALFORMED_TOKEN: 3,
    "dropped:rate_limit": 2,
    ok: 1,
  });
});

Deno.test({
  name:
    "main.ts holds the error budget under a flood of datagrams sent back to back",
  fn: async () => {
    const stopped = await withServer({
      args: ["--error-rate", "1", "--error-burst", "3"],
    }, async (server) => {
      await withClient(async (client) => {
        const garbage = "z".repeat(300);
        for (let i = 0; i < 20; i++) await client.send(server.addr, garbage);
        let answered = 0;
        while (await client.next(500)) answered++;
        assert.equal(
          answered,
          3,
          `${answered} error answers to 20 datagrams; the burst is 3`,
        );
      });
    });
    assert.deepEqual(tally(outcomes(stopped.log)), {
      MALFORMED_TOKEN: 3,
      "dropped:rate_limit": 17,
    });
  },
});

/** Asserts a start-up failure: one line on stderr, no stack trace. */
function assertOneLineError(stderr: string, re: RegExp): void {
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  assert.match(lines[0] ?? "", /^udpjwt: /);
  assert.match(lines[0] ?? "", re);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(stderr, /Uncaught/);
}

Deno.test("main.ts command line: flags, exit codes and start-up errors", async (t) => {
  await t.step("--help exits 0 and prints the usage", async () => {
    const r = await runMain(["--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: udpjwt /);
    assert.match(r.stdout, /--log-dir DIR/);
    assert.equal(r.stderr, "");
  });

  await t.step("--version exits 0 and prints the version", async () => {
    const r = await runMain(["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^udpjwt \d+\.\d+\.\d+ /);
    assert.match(r.stdout, /^verify: (OpenSSL|WebCrypto)/m);
    assert.equal(r.stdout.trim().split("\n").length, 2);
  });

  await t.step(
    "an unknown flag exits 2 with one error line and the usage",
    async () => {
      const r = await runMain(["--bogus"]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      const [message, ...rest] = r.stderr.split("\n\n");
      assert.equal(message!.trim().split("\n").length, 1, r.stderr);
      assertOneLineError(r.stderr, /--bogus/);
      assert.match(rest.join("\n\n"), /^Usage: udpjwt /);
    },
  );

  await t.step("a port already in use exits 1 with a clear line", async () => {
    const tmp = await Deno.makeTempDir({ prefix: "udpjwt_e2e_" });
    const taken = Deno.listenDatagram({
      hostname: "127.0.0.1",
      port: 0,
      transport: "udp",
    });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      const r = await runMain([
        "127.0.0.1",
        String(port),
        "tests/testdata/vectors",
        "--log-dir",
        `${tmp}/logs`,
        "--state-dir",
        `${tmp}/state`,
      ]);
      assert.equal(r.code, 1, r.stderr);
      assertOneLineError(r.stderr, new RegExp(`port ${port}.*already in use`));
    } finally {
      taken.close();
      await Deno.remove(tmp, { recursive: true });
    }
  });

  const dir = await Deno.makeTempDir({ prefix: "udpjwt_e2e_dir_" });
  try {
    const secretDir = `${dir}/keys_priv`;
    await Deno.mkdir(secretDir);
    await Deno.writeFile(`${secretDir}/key_secret_for_hmac.txt`, SECRET);
    const args = ["127.0.0.1", "0", dir];

    await t.step("a DIR without keys_pub exits 1", async () => {
      const r = await runMain(args);
      assert.equal(r.code, 1, r.stderr);
      assertOneLineError(r.stderr, /keys_pub.*not found/);
    });

    await t.step("an empty keys_pub exits 1 saying no usable key", async () => {
      await Deno.mkdir(`${dir}/keys_pub`);
      const r = await runMain(args);
      assert.equal(r.code, 1, r.stderr);
      assertOneLineError(r.stderr, /no usable public key/i);
    });

    await t.step("a missing HMAC secret exits 1 naming the file", async () => {
      await Deno.copyFile(
        `${VECTORS}keys_pub/heartbeat.pem`,
        `${dir}/keys_pub/heartbeat.pem`,
      );
      await Deno.remove(`${secretDir}/key_secret_for_hmac.txt`);
      const r = await runMain(args);
      assert.equal(r.code, 1, r.stderr);
      assertOneLineError(
        r.stderr,
        /keys_priv\/key_secret_for_hmac\.txt.*not found/,
      );
    });

    await t.step("a DIR that does not exist exits 1", async () => {
      const r = await runMain(["127.0.0.1", "0", `${dir}/nowhere`]);
      assert.equal(r.code, 1, r.stderr);
      assertOneLineError(r.stderr, /nowhere.*not found/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
