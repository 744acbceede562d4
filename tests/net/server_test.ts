/**
 * End-to-end tests: `main.ts` started as a subprocess the way a user starts
 * it, spoken to over real UDP on loopback. Every receive has a timeout; every
 * server is stopped with SIGTERM in `finally` and must exit 0. This file has
 * the walks, the datagram log, the answer cache and the restart; hostile
 * input, rate limits and the command line are in server_errors_test.ts.
 *
 * Run with
 * `deno test --allow-net=127.0.0.1,[::1] --allow-read --allow-write --allow-run tests/net/server_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { hasIpv6, payloadBytes } from "../_helpers.ts";
import { withServer } from "../_server.ts";
import { withClient } from "../_udp_client.ts";
import { selectBackend } from "../../lib/keys/verify.ts";
import {
  checkError,
  checkOk,
  datagrams,
  GROUPS,
  step,
  token,
  walk,
} from "./_server_checks.ts";

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
          /^skipped files \(2\):\n( {2}.*\n){2}/m,
        );
        // EDGROUP's Ed25519 key loads too (protocol 2.1); its walk is in
        // more_keys_server_test.ts.
        assert.match(summary, /^groups \(7\) from /m);
        assert.match(summary, /^ {2}EDGROUP +EdDSA +Ed25519 +OpenSSH /m);
        for (const g of GROUPS) {
          assert.match(
            summary,
            new RegExp(
              `^  ${g.group} +${g.alg} .* ${g.format.replace(/[#]/g, "\\$&")} `,
              "m",
            ),
          );
        }
        assert.match(summary, /^skipped files \(2\):/m);
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
  ignore: !hasIpv6(),
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

Deno.test({
  name:
    "main.ts answers a retransmitted token with the byte-identical cached answer (docs/protocol.md, retransmissions)",
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

Deno.test("main.ts keeps group state and cached answers across a restart (docs/protocol.md, state machine and retransmissions)", async () => {
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
