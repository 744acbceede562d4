/**
 * Tests of lib/client/socket.ts: the simulated loss of `LossySocket`, over
 * the fake network. (`UdpClientSocket` is exercised end to end by
 * tests/cli/send_test.ts.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { seededRandom } from "../../lib/client/retry.ts";
import { LossySocket } from "../../lib/client/socket.ts";
import { FakeNet, T0 } from "./_fake_net.ts";

Deno.test("LossySocket drops datagrams each way with its probability", async (t) => {
  await t.step(
    "probability 0 passes everything, 1 drops everything",
    async () => {
      for (const [p, expectSent] of [[0, 3], [1, 0]] as const) {
        const net = new FakeNet();
        const lossy = new LossySocket(net, {
          probability: p,
          random: seededRandom(1),
          now: net.now,
        });
        for (let i = 0; i < 3; i++) {
          await lossy.send(
            new TextEncoder().encode("x"),
          );
        }
        assert.equal(net.sent.length, expectSent);
        assert.equal(lossy.dropped.sent, 3 - expectSent);
      }
    },
  );
  await t.step("a dropped answer does not end the wait early", async () => {
    const net = new FakeNet();
    net.inject(new TextEncoder().encode("first"), 10);
    net.inject(new TextEncoder().encode("second"), 20);
    const draws = [0.1, 0.9]; // drop the first answer, keep the second
    const lossy = new LossySocket(net, {
      probability: 0.5,
      random: () => draws.shift()!,
      now: net.now,
    });
    const got = await lossy.receive(100);
    assert.equal(new TextDecoder().decode(got), "second");
    assert.equal(lossy.dropped.received, 1);
    assert.equal(net.t, T0 + 20);
  });
  await t.step("30% each way over many datagrams", async () => {
    const net = new FakeNet();
    const lossy = new LossySocket(net, {
      probability: 0.3,
      random: seededRandom(7),
      now: net.now,
    });
    for (let i = 0; i < 2000; i++) {
      await lossy.send(new TextEncoder().encode("junk"));
    }
    const rate = lossy.dropped.sent / 2000;
    assert.ok(Math.abs(rate - 0.3) < 0.04, `dropped ${rate}`);
  });
});
