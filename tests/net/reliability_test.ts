/**
 * Operations over real UDP, with the server as a subprocess: crashes
 * (`kill -9`) lose no acknowledged step, SIGTERM is quick and clean, SIGHUP
 * reloads keys, and a roster is enforced.
 *
 * @module
 */

import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { expected } from "../../lib/protocol/fsm.ts";
import {
  privateKey,
  requestClaims,
  signRequest,
  VECTORS,
} from "../_helpers.ts";
import {
  runMain,
  type StartedServer,
  startServer,
  withTimeout,
} from "../_server.ts";
import { UdpClient } from "../_udp_client.ts";

const SECRET = await Deno.readFile(
  `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
);
const encoder = new TextEncoder();

/** Starts the server on a lab directory, its logs and state inside it. */
function spawn(dir: string): Promise<StartedServer> {
  return startServer({ dir, logDir: `${dir}/logs`, stateDir: `${dir}/state` });
}

/** Everything the server printed so far, stdout and stderr. */
function output(server: StartedServer): string {
  return server.stdout() + server.stderr();
}

async function labDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_ops_" });
  await Deno.mkdir(`${dir}/keys_pub`);
  await Deno.mkdir(`${dir}/keys_priv`);
  await Deno.copyFile(
    `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
    `${dir}/keys_priv/key_secret_for_hmac.txt`,
  );
  for (const [name, from] of Object.entries(files)) {
    await Deno.copyFile(from, `${dir}/${name}`);
  }
  return dir;
}

async function nextNumber(reply: Uint8Array): Promise<unknown> {
  const { payload } = await jwtVerify(new TextDecoder().decode(reply), SECRET, {
    algorithms: ["HS256"],
  });
  return payload.next_number ?? payload.error;
}

async function token(
  group: string,
  n: number,
  extra?: Record<string, unknown>,
): Promise<Uint8Array> {
  const key = await privateKey(group.toLowerCase());
  const alg = group === "CHEDIMON" || group === "SEGSANH" ? "ES256" : "RS256";
  const claims = requestClaims(group, n, Math.floor(Date.now() / 1000), extra);
  return encoder.encode(await signRequest(claims, key, alg));
}

Deno.test("main.ts loses no acknowledged step when killed with SIGKILL at random moments", async () => {
  const dir = await labDir({
    "keys_pub/chedimon.pem": `${VECTORS}keys_pub/chedimon.pem`,
  });
  const client = new UdpClient();
  let seed = 20261123;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  // The last acknowledged event, its datagram and its answer.
  let acked:
    | { sn: number; datagram: Uint8Array; reply: Uint8Array }
    | undefined;
  let steps = 0;
  let replays = 0;
  const iterations = 20;
  try {
    for (let i = 0; i < iterations; i++) {
      const server = await spawn(dir);
      const killAfter = Math.floor(random() * 250);
      const killed = (async () => {
        await new Promise((r) => setTimeout(r, killAfter));
        Deno.kill(server.pid, "SIGKILL");
      })();
      let sn = acked ? expected(acked.sn) : 0;
      if (acked) {
        // The last acknowledged datagram again: its answer was durable, so
        // the restarted server must replay it byte for byte.
        await client.send(server.addr, acked.datagram);
        const again = await client.next(2_000);
        if (again) {
          assert.deepEqual(again, acked.reply, `iteration ${i}: cached answer`);
          replays++;
        }
      }
      while (true) {
        const datagram = await token("CHEDIMON", sn);
        try {
          await client.send(server.addr, datagram);
        } catch {
          break;
        }
        const reply = await client.next(300);
        if (!reply) break; // killed (or lost): restart
        const next = await nextNumber(reply);
        // Either the machine is where this client left it, or a step it
        // never saw acknowledged was durable before the crash.
        assert.equal(next, expected(sn), `iteration ${i}, event ${sn}`);
        acked = { sn, datagram, reply };
        steps++;
        sn = next as number;
      }
      await killed;
      await server.stop();
      while (await client.next(50)); // answers that arrived late
    }
    assert.ok(steps >= iterations, `${steps} steps acknowledged`);
    assert.ok(replays >= iterations / 2, `${replays} cached answers replayed`);
    // deno-lint-ignore no-console -- figures for the closing note
    console.log(
      `crash test: ${iterations} kills, ${steps} acknowledged steps, ${replays} byte-identical replays after restart`,
    );
  } finally {
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts finishes in-flight datagrams and exits 0 within 2 s of SIGTERM", async () => {
  const dir = await labDir({
    "keys_pub/heartbeat.pem": `${VECTORS}keys_pub/heartbeat.pem`,
  });
  const client = new UdpClient();
  try {
    const server = await spawn(dir);
    // Events 0 then 1..6 for one group, all sent at once, then SIGTERM.
    const datagrams = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6].map((n) => token("HEARTBEAT", n)),
    );
    for (const d of datagrams) await client.send(server.addr, d);
    const stopped = await server.stop(5_000);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.ok(stopped.stopSec < 2, `exited after ${stopped.stopSec} s`);
    const answered: unknown[] = [];
    for (let r = await client.next(200); r; r = await client.next(200)) {
      answered.push(await nextNumber(r));
    }
    // deno-lint-ignore no-console -- figures for the closing note
    console.log(
      `${answered.length} of 7 in-flight events answered before exit`,
    );
    // Whatever was answered is in the state the next server starts from.
    const restarted = await spawn(dir);
    try {
      assert.match(output(restarted), /state: .* \(1 groups/);
      const last = answered.length; // events 0..last-1 were acknowledged
      assert.deepEqual(answered, [1, 2, 3, 4, 5, 6, 0].slice(0, last));
      if (last > 0) {
        await client.send(restarted.addr, await token("HEARTBEAT", last - 1));
        assert.equal(
          await nextNumber(await client.receive()),
          expected(last - 1),
        );
      }
    } finally {
      assert.equal((await restarted.stop()).code, 0);
    }
  } finally {
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts reloads keys_pub on SIGHUP, keeping the old key of a broken file", async () => {
  const dir = await labDir({
    "keys_pub/heartbeat.pem": `${VECTORS}keys_pub/heartbeat.pem`,
    "keys_pub/chedimon.pem": `${VECTORS}keys_pub/chedimon.pem`,
  });
  const client = new UdpClient();
  const server = await spawn(dir);
  try {
    await client.send(server.addr, await token("CHEDIMON", 0));
    assert.equal(await nextNumber(await client.receive()), 1);
    await client.send(server.addr, await token("SEGSANH", 0));
    assert.equal(await nextNumber(await client.receive()), "UNKNOWN_GROUP");

    await Deno.copyFile(
      `${VECTORS}keys_pub/segsanh.ssh`,
      `${dir}/keys_pub/segsanh.ssh`,
    );
    await Deno.writeTextFile(`${dir}/keys_pub/heartbeat.pem`, "broken\n");
    await Deno.remove(`${dir}/keys_pub/chedimon.pem`);
    Deno.kill(server.pid, "SIGHUP");
    await withTimeout(
      (async () => {
        // Two pipes: the warning on stderr may come after the info line.
        while (
          !/Reloaded[^]*unusable|unusable[^]*Reloaded/.test(output(server))
        ) {
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      5_000,
      "no reload message",
    );
    assert.match(
      output(server),
      /heartbeat\.pem is unusable .*keeping the previous key/,
    );
    assert.match(
      output(server),
      /added \["SEGSANH"\].*removed \["CHEDIMON"\]/,
    );

    await client.send(server.addr, await token("SEGSANH", 0));
    assert.equal(await nextNumber(await client.receive()), 1, "new group");
    await client.send(server.addr, await token("HEARTBEAT", 0));
    assert.equal(await nextNumber(await client.receive()), 1, "old key kept");
    await client.send(server.addr, await token("CHEDIMON", 1));
    assert.equal(await nextNumber(await client.receive()), "UNKNOWN_GROUP");
  } finally {
    assert.equal((await server.stop()).code, 0);
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts enforces a roster's member count and flags unlisted registrations", async () => {
  const dir = await labDir({
    "keys_pub/heartbeat.pem": `${VECTORS}keys_pub/heartbeat.pem`,
  });
  await Deno.writeTextFile(
    `${dir}/groups.json`,
    JSON.stringify({ groups: { heartbeat: [20230000, 20230001, 20230002] } }),
  );
  const client = new UdpClient();
  const server = await spawn(dir);
  try {
    assert.match(output(server), /roster: .*groups\.json \(1 groups\)/);
    await client.send(server.addr, await token("HEARTBEAT", 0));
    assert.equal(await nextNumber(await client.receive()), "SEQ_MAX_MISMATCH");
    await client.send(server.addr, await token("HEARTBEAT", 0, { seq_max: 3 }));
    assert.equal(await nextNumber(await client.receive()), 1);
    await client.send(
      server.addr,
      await token("HEARTBEAT", 1, { seq_max: 3, registration: 1234 }),
    );
    assert.equal(await nextNumber(await client.receive()), 2, "still accepted");
  } finally {
    assert.equal((await server.stop()).code, 0);
    await client.close();
  }
  try {
    const snap = JSON.parse(
      await Deno.readTextFile(`${dir}/state/snapshot.json`),
    );
    const regs = snap.groups.HEARTBEAT.registrations;
    assert.deepEqual(regs["1234"].unlisted, true);
    assert.equal(regs["20230000"].unlisted, undefined);
    const log = await Deno.readTextFile(`${dir}/logs/udpjwt.jsonl`);
    assert.match(log, /registration 1234 is not on the roster/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts refuses to start with a malformed roster, naming the file", async () => {
  const dir = await labDir({
    "keys_pub/heartbeat.pem": `${VECTORS}keys_pub/heartbeat.pem`,
  });
  try {
    await Deno.writeTextFile(`${dir}/groups.json`, '{"groups": {"A": ["x"]}}');
    const out = await runMain(["127.0.0.1", "0", dir]);
    assert.equal(out.code, 1);
    const err = out.stderr;
    assert.match(err, /groups\.json.*"A".*registration numbers/);
    assert.doesNotMatch(err, /at .*\.ts:\d+/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
