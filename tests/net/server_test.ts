/**
 * End-to-end tests: `main.ts` started as a subprocess the way a user starts
 * it, spoken to over real UDP on loopback. Every receive has a timeout; every
 * server is stopped with SIGTERM in `finally` and must exit 0.
 *
 * Run with
 * `deno test --allow-net=127.0.0.1,[::1] --allow-read --allow-write --allow-run tests/server_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type JWTPayload, jwtVerify, SignJWT } from "jose";
import {
  AUDIENCE,
  payloadBytes,
  privateKey,
  requestClaims,
  sha256Hex,
  signRequest,
  VECTORS,
} from "../_helpers.ts";
import { runMain, type UdpClient, withClient, withServer } from "../_server.ts";
import { selectBackend } from "../../lib/keys/verify.ts";

const SECRET = await Deno.readFile(
  `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
);

/** The six good groups of the vectors, one per accepted key format. */
const GROUPS = [
  { group: "HEARTBEAT", alg: "RS256", format: "PEM SPKI" },
  { group: "CHEDIMON", alg: "ES256", format: "PEM SPKI" },
  { group: "THEOTHERS", alg: "RS256", format: "OpenSSH" },
  { group: "SEGSANH", alg: "ES256", format: "OpenSSH" },
  { group: "GUILHONGA", alg: "RS256", format: "RFC 4716" },
  { group: "PKCS1GRP", alg: "RS256", format: "PEM PKCS#1" },
] as const;
type Group = typeof GROUPS[number]["group"];

/** Whether `::1` can be bound here: checked once. */
const HAS_IPV6 = (() => {
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" })
      .close();
    return true;
  } catch {
    return false;
  }
})();

const keyCache = new Map<string, Promise<CryptoKey>>();
function keyOf(group: Group): Promise<CryptoKey> {
  let k = keyCache.get(group);
  if (!k) keyCache.set(group, k = privateKey(group.toLowerCase()));
  return k;
}
function algOf(group: Group): "RS256" | "ES256" {
  return GROUPS.find((g) => g.group === group)!.alg;
}

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * A request token for `group` and event `n`, signed with `signer`'s key
 * (default: the group's own).
 */
async function token(
  group: Group,
  n: number,
  extra?: Record<string, unknown>,
  signer: Group = group,
): Promise<string> {
  return await signRequest(
    requestClaims(group, n, nowSec(), extra),
    await keyOf(signer),
    algOf(signer),
  );
}

function b64url(text: string): string {
  return new TextEncoder().encode(text).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

/** The payload bytes of a compact JWS, exactly as signed. */
/**
 * Verifies an answer and the claims every answer carries (PROTOCOL.md §5).
 *
 * @param answer The datagram received.
 * @param request The token it answers, for `id_request` (omit when the
 * request had no JSON payload).
 */
async function checkAnswer(
  answer: Uint8Array,
  request?: string,
): Promise<JWTPayload> {
  assert.ok(answer.length < 1000, `answer of ${answer.length} bytes`);
  const text = new TextDecoder().decode(answer);
  const { payload, protectedHeader } = await jwtVerify(text, SECRET, {
    algorithms: ["HS256"],
  });
  assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
  assert.equal(payload.iss, AUDIENCE);
  assert.match(String(payload.jti), /^[0-9a-f]{32}$/);
  assert.equal(typeof payload.iat, "number");
  assert.ok(Math.abs(payload.iat! - Date.now() / 1000) < 10, "iat is now");
  assert.equal(payload.exp, payload.iat! + 30);
  const otp = String(payload.otp_timestamp);
  assert.match(otp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);
  assert.ok(
    Math.abs(Date.parse(otp) - payload.iat! * 1000) < 2000,
    `otp_timestamp ${otp} matches iat ${payload.iat}`,
  );
  if (request !== undefined) {
    assert.equal(payload.id_request, await sha256Hex(payloadBytes(request)));
  }
  return payload;
}

/** Checks a success answer. */
async function checkOk(
  answer: Uint8Array,
  request: string,
  sub: string,
  nextNumber: number,
): Promise<void> {
  const p = await checkAnswer(answer, request);
  assert.equal(p.sub, sub);
  assert.equal(p.next_number, nextNumber);
  assert.equal(p.error, undefined);
  assert.equal(p.response, undefined);
}

/** Checks an error answer. */
async function checkError(
  answer: Uint8Array,
  code: string,
  sub: string,
  request?: string,
): Promise<JWTPayload> {
  const p = await checkAnswer(answer, request);
  assert.equal(p.error, code, String(p.response));
  assert.match(String(p.response), /^ERROR: \S/);
  assert.equal(p.sub, sub);
  assert.equal(p.next_number, undefined);
  return p;
}

/** Sends a token for event `n` and checks the `next_number` answered. */
async function step(
  client: UdpClient,
  to: Deno.NetAddr,
  group: Group,
  n: number,
  next: number,
  extra?: Record<string, unknown>,
): Promise<void> {
  const t = await token(group, n, extra);
  await client.send(to, t);
  await checkOk(await client.receive(), t, String(extra?.sub ?? group), next);
}

/** Walks `group` through 0..6 and checks every answer. */
async function walk(
  client: UdpClient,
  to: Deno.NetAddr,
  group: Group,
  extra?: Record<string, unknown>,
): Promise<void> {
  for (let n = 0; n <= 6; n++) {
    await step(client, to, group, n, (n + 1) % 7, extra);
  }
}

/**
 * Asserts that nothing comes back for a while, then that the next answer to
 * a fresh legitimate request is that request's own (no late answer queued).
 */
async function expectNoAnswer(
  client: UdpClient,
  to: Deno.NetAddr,
): Promise<void> {
  const late = await client.next(400);
  assert.equal(late, undefined, "no answer expected");
  await step(client, to, "PKCS1GRP", 0, 1);
}

/** Datagram log records (category `datagram`). */
function datagrams(log: Record<string, unknown>[]): Record<string, unknown>[] {
  return log.filter((r) => r.category === "datagram");
}

/** The outcome of every datagram; summed records (`count`) stand for many. */
function outcomes(log: Record<string, unknown>[]): unknown[] {
  return datagrams(log).flatMap((r) =>
    Array(typeof r.count === "number" ? r.count : 1).fill(r.outcome)
  );
}

function tally(values: unknown[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
}

/** Whether OpenSSL's libcrypto can be opened here (FFI backend). */
const HAS_OPENSSL = selectBackend().backend.name === "openssl";

for (const verify of ["openssl", "webcrypto"] as const) {
  Deno.test({
    name:
      `main.ts walks every loaded group through 0..6 over UDP and signs each answer with HS256 (--verify ${verify})`,
    ignore: verify === "openssl" && !HAS_OPENSSL,
    fn: async (t) => {
      const args = ["--verify", verify];
      const stopped = await withServer({ args }, async (server) => {
        assert.equal(server.hostname, "127.0.0.1");
        await server.waitForStdout(
          verify === "openssl"
            ? /^verify: OpenSSL .* via FFI/m
            : /^verify: WebCrypto/m,
        );
        // The summary is printed line by line: wait for its end.
        const summary = await server.waitForStdout(
          /^skipped files \(3\):\n( {2}.*\n){3}/m,
        );
        assert.match(summary, /^groups \(6\) from /m);
        for (const g of GROUPS) {
          assert.match(
            summary,
            new RegExp(
              `^  ${g.group} +${g.alg} .* ${g.format.replace(/[#]/g, "\\$&")} `,
              "m",
            ),
          );
        }
        assert.match(summary, /^skipped files \(3\):/m);
        for (const g of GROUPS) {
          await t.step(`${g.group} (${g.alg}, ${g.format})`, async () => {
            await withClient(async (client) => {
              // One group sends its name in mixed case: matched case-insensitively,
              // echoed as sent.
              const extra = g.group === "SEGSANH"
                ? { sub: "SegSanh" }
                : undefined;
              await walk(client, server.addr, g.group, extra);
            });
          });
        }
      });
      const ok = datagrams(stopped.log).filter((r) => r.outcome === "ok");
      assert.equal(ok.length, 6 * 7);
    },
  });
}

Deno.test({
  name: "main.ts serves a walk on ::1 (IPv6)",
  ignore: !HAS_IPV6,
  fn: async () => {
    const stopped = await withServer({ hostname: "::1" }, async (server) => {
      assert.equal(server.hostname, "::1");
      await withClient(async (client) => {
        await walk(client, server.addr, "HEARTBEAT");
        await walk(client, server.addr, "CHEDIMON");
      }, "::1");
    });
    const records = datagrams(stopped.log);
    assert.equal(records.length, 14);
    for (const r of records) {
      assert.equal(r.peer, "::1");
      assert.equal(r.outcome, "ok");
    }
  },
});

Deno.test("main.ts answers hostile datagrams as PROTOCOL.md prescribes and keeps serving", async (t) => {
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

Deno.test("main.ts writes one JSON Lines record per datagram, flushed on shutdown", async () => {
  let clientPort = 0;
  const sizes: number[] = [];
  const stopped = await withServer({}, async (server) => {
    await withClient(async (client) => {
      clientPort = client.addr.port;
      const send = async (data: string) => {
        sizes.push(await client.send(server.addr, data));
      };
      for (let n = 0; n <= 6; n++) {
        const t0 = await token("CHEDIMON", n);
        await send(t0);
        await checkOk(await client.receive(), t0, "CHEDIMON", (n + 1) % 7);
      }
      await send(await token("CHEDIMON", 9)); // no_action
      await send("x".repeat(9000)); // dropped:oversize
      await send("0123456789"); // dropped:amplification
      await send("y".repeat(300)); // MALFORMED_TOKEN
      await checkError(
        await client.receive(),
        "MALFORMED_TOKEN",
        "NO_SUB_CLAIM",
      );
      assert.equal(await client.next(400), undefined);
    });
  });
  const records = datagrams(stopped.log);
  assert.equal(records.length, 11, JSON.stringify(records, null, 1));
  const fields = [
    "time",
    "peer",
    "port",
    "bytes",
    "group",
    "outcome",
    "seq_state_number",
    "next_number",
    "us",
  ];
  for (const r of records) {
    for (const f of fields) {
      assert.ok(Object.hasOwn(r, f), `${f} in ${JSON.stringify(r)}`);
    }
    assert.ok(!Number.isNaN(Date.parse(String(r.time))));
    assert.equal(r.peer, "127.0.0.1");
    assert.equal(r.port, clientPort);
    assert.equal(typeof r.us, "number");
    assert.ok((r.us as number) >= 0);
  }
  // Records are written when handling ends: match them to the sends by size.
  assert.deepEqual(
    records.map((r) => r.bytes).sort((a, b) => Number(a) - Number(b)),
    [...sizes].sort((a, b) => a - b),
  );
  const ok = records.filter((r) => r.outcome === "ok");
  assert.deepEqual(ok.map((r) => r.seq_state_number), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(ok.map((r) => r.next_number), [1, 2, 3, 4, 5, 6, 0]);
  for (const r of ok) assert.equal(r.group, "CHEDIMON");
  const byOutcome = (o: string) => records.filter((r) => r.outcome === o);
  const [noAction] = byOutcome("no_action");
  assert.equal(noAction?.group, "CHEDIMON");
  assert.equal(noAction?.seq_state_number, 9);
  assert.equal(noAction?.next_number, null);
  assert.equal(byOutcome("dropped:oversize")[0]?.bytes, 9000);
  assert.equal(byOutcome("dropped:amplification")[0]?.bytes, 10);
  const [malformed] = byOutcome("MALFORMED_TOKEN");
  assert.equal(malformed?.bytes, 300);
  assert.equal(malformed?.group, null);
  assert.equal(malformed?.seq_state_number, null);
});

Deno.test("main.ts exits 0 on SIGTERM after serving", async () => {
  const stopped = await withServer({}, async (server) => {
    await withClient(async (client) => {
      await step(client, server.addr, "GUILHONGA", 0, 1);
    });
  });
  assert.equal(stopped.code, 0);
  assert.match(stopped.stdout, /SIGTERM received/);
  assert.match(stopped.stdout, /Stopped after 1 datagrams: \{"ok":1\}/);
  assert.doesNotMatch(stopped.stderr, /error/i);
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

Deno.test({
  name:
    "main.ts answers a retransmitted token with the byte-identical cached answer (PROTOCOL.md §6)",
  fn: async () => {
    await withServer({}, async (server) => {
      await withClient(async (client) => {
        await step(client, server.addr, "HEARTBEAT", 0, 1);
        const t1 = await token("HEARTBEAT", 1);
        await client.send(server.addr, t1);
        const first = await client.receive();
        await checkOk(first, t1, "HEARTBEAT", 2);
        await step(client, server.addr, "HEARTBEAT", 2, 3);
        // The retransmission of event 1 arrives after event 2: it must get
        // the answer it got (next_number 2), not be handled again.
        await client.send(server.addr, t1);
        const again = await client.receive();
        await checkOk(again, t1, "HEARTBEAT", 2);
        assert.deepEqual(again, first, "the cached answer, byte for byte");
      });
    });
  },
});

Deno.test({
  name: "main.ts rejects a new token that reuses a seen jti with JTI_REUSED",
  fn: async () => {
    await withServer({}, async (server) => {
      await withClient(async (client) => {
        const t0 = await token("HEARTBEAT", 0);
        await client.send(server.addr, t0);
        await checkOk(await client.receive(), t0, "HEARTBEAT", 1);
        const { jti } = JSON.parse(new TextDecoder().decode(payloadBytes(t0)));
        const t1 = await token("HEARTBEAT", 1, { jti });
        await client.send(server.addr, t1);
        await checkError(await client.receive(), "JTI_REUSED", "HEARTBEAT", t1);
        // The rejected event did not move the machine.
        await step(client, server.addr, "HEARTBEAT", 1, 2);
      });
    });
  },
});

Deno.test("main.ts keeps group state and cached answers across a restart (PROTOCOL.md §4, §6)", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "udpjwt_e2e_state_" });
  try {
    let t3 = "";
    let answer3: Uint8Array = new Uint8Array();
    await withServer({ stateDir }, async (server) => {
      await withClient(async (client) => {
        for (let n = 0; n <= 2; n++) {
          await step(client, server.addr, "HEARTBEAT", n, n + 1);
        }
        t3 = await token("HEARTBEAT", 3);
        await client.send(server.addr, t3);
        answer3 = await client.receive();
        await checkOk(answer3, t3, "HEARTBEAT", 4);
      });
    });
    await withServer({ stateDir }, async (server) => {
      await withClient(async (client) => {
        // A retransmission after the restart still gets the cached answer.
        await client.send(server.addr, t3);
        assert.deepEqual(await client.receive(), answer3);
        // State 3 survived: event 4 is the expected one.
        await step(client, server.addr, "HEARTBEAT", 4, 5);
      });
    });
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
