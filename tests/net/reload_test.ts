/**
 * Key reloads while groups walk: SIGHUP every 50 ms for 10 s (one reload in
 * three with a group's key file broken, the next with it restored), one
 * group's key replaced half-way, and a walker per group all along.
 *
 * @module
 */

import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { expected } from "../../lib/protocol/fsm.ts";
import {
  envInteger,
  privateKey,
  requestClaims,
  signRequest,
  VECTORS,
} from "../_helpers.ts";
import { startServer } from "../_server.ts";
import { UdpClient } from "../_udp_client.ts";

const SECRET = await Deno.readFile(
  `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
);
/** How long the reloads go on, in ms (UDPJWT_RELOAD_MS). */
const DURATION_MS = envInteger("UDPJWT_RELOAD_MS", 10_000, 600_000);

/** The groups whose key never changes, and the algorithm of each. */
const STEADY: [string, "RS256" | "ES256"][] = [
  ["CHEDIMON", "ES256"],
  ["GUILHONGA", "RS256"],
  ["HEARTBEAT", "RS256"],
  ["PKCS1GRP", "RS256"],
  ["SEGSANH", "ES256"], // its file is broken and restored again and again
  ["THEOTHERS", "RS256"],
];

interface Signer {
  key: CryptoKey;
  alg: "RS256" | "ES256";
}

/** What a walker saw. */
interface Tally {
  answers: number;
  errors: string[];
  retransmissions: number;
}

/** Sends one step until answered; returns the verified answer's claims. */
async function step(
  client: UdpClient,
  to: Deno.NetAddr,
  group: string,
  n: number,
  signer: Signer,
  tally: Tally,
): Promise<Record<string, unknown>> {
  const claims = requestClaims(group, n, Math.floor(Date.now() / 1000));
  const token = await signRequest(claims, signer.key, signer.alg);
  for (let i = 0; i < 10; i++) {
    if (i > 0) tally.retransmissions++;
    await client.send(to, token);
    const reply = await client.next(1000);
    if (!reply) continue;
    const { payload } = await jwtVerify(
      new TextDecoder().decode(reply),
      SECRET,
      { algorithms: ["HS256"] },
    );
    tally.answers++;
    if (payload.error) tally.errors.push(`${group} ${n}: ${payload.response}`);
    return payload;
  }
  throw new Error(`${group} step ${n}: no answer after 10 tries`);
}

/** Walks `group` over and over until `stop()`. */
async function walker(
  to: Deno.NetAddr,
  group: string,
  signer: () => Signer | undefined,
  stop: () => boolean,
  tally: Tally,
): Promise<void> {
  const client = new UdpClient();
  try {
    let n = 0;
    while (!stop()) {
      const s = signer();
      if (!s) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const answer = await step(client, to, group, n, s, tally);
      if (answer.error) {
        n = 0;
        continue;
      }
      assert.equal(answer.next_number, expected(n), `${group} after ${n}`);
      n = expected(n);
    }
  } finally {
    await client.close();
  }
}

Deno.test("main.ts reloads keys every 50 ms under load without refusing a group whose key did not change", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_reload_" });
  const lab = `${tmp}/lab`;
  await Deno.mkdir(`${lab}/keys_pub`, { recursive: true });
  await Deno.mkdir(`${lab}/keys_priv`);
  await Deno.copyFile(
    `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
    `${lab}/keys_priv/key_secret_for_hmac.txt`,
  );
  for (
    const name of await Array.fromAsync(Deno.readDir(`${VECTORS}keys_pub`))
  ) {
    await Deno.copyFile(
      `${VECTORS}keys_pub/${name.name}`,
      `${lab}/keys_pub/${name.name}`,
    );
  }
  const segsanh = await Deno.readTextFile(`${lab}/keys_pub/segsanh.ssh`);
  // ROTATE starts with HEARTBEAT's key and gets CHEDIMON's half-way.
  await Deno.copyFile(
    `${lab}/keys_pub/heartbeat.pem`,
    `${lab}/keys_pub/rotate.pem`,
  );
  const oldKey: Signer = { key: await privateKey("heartbeat"), alg: "RS256" };
  const newKey: Signer = { key: await privateKey("chedimon"), alg: "ES256" };

  const server = await startServer({
    dir: lab,
    logDir: `${tmp}/logs`,
    stateDir: `${tmp}/state`,
  });
  try {
    let stopped = false;
    const stop = () => stopped;
    const tallies = new Map<string, Tally>();
    const tally = (g: string) => {
      const t = { answers: 0, errors: [], retransmissions: 0 };
      tallies.set(g, t);
      return t;
    };
    const walkers = [];
    for (const [group, alg] of STEADY) {
      const signer = { key: await privateKey(group.toLowerCase()), alg };
      walkers.push(
        walker(server.addr, group, () => signer, stop, tally(group)),
      );
    }
    let rotateSigner: Signer | undefined = oldKey;
    const rotate = tally("ROTATE");
    walkers.push(
      walker(server.addr, "ROTATE", () => rotateSigner, stop, rotate),
    );

    const started = Date.now();
    let reloads = 0;
    let rotatedAt: number | undefined;
    try {
      while (Date.now() - started < DURATION_MS) {
        reloads++;
        if (reloads % 3 === 1) {
          await Deno.writeTextFile(
            `${lab}/keys_pub/segsanh.ssh`,
            "not a key\n",
          );
        } else if (reloads % 3 === 2) {
          await Deno.writeTextFile(`${lab}/keys_pub/segsanh.ssh`, segsanh);
        }
        if (rotatedAt === undefined && Date.now() - started > DURATION_MS / 2) {
          // Pause ROTATE, swap its key, and resume once the reload is logged.
          rotateSigner = undefined;
          const swaps = () =>
            (server.stdout().match(/changed \["ROTATE"\]/g) ?? []).length;
          const before = swaps();
          await Deno.copyFile(
            `${lab}/keys_pub/chedimon.pem`,
            `${lab}/keys_pub/rotate.pem`,
          );
          Deno.kill(server.pid, "SIGHUP");
          const deadline = Date.now() + 5_000;
          while (swaps() === before) {
            assert.ok(Date.now() < deadline, "the key swap is logged");
            await new Promise((r) => setTimeout(r, 5));
          }
          rotatedAt = rotate.answers;
          rotateSigner = newKey;
        } else {
          Deno.kill(server.pid, "SIGHUP");
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      stopped = true; // the walkers end whatever happened
      await Promise.allSettled(walkers);
    }
    await Promise.all(walkers);

    assert.ok(reloads >= DURATION_MS / 100, `${reloads} reloads`);
    for (const [group, t] of tallies) {
      assert.ok(t.answers > 0, `${group} was answered`);
      assert.deepEqual(t.errors, [], `${group} was never refused`);
    }
    assert.ok(rotatedAt !== undefined && rotate.answers > rotatedAt);
    const output = server.stdout() + server.stderr();
    assert.match(output, /segsanh\.ssh is unusable .*keeping the previous key/);
    assert.doesNotMatch(output, /Handler failed|Reload of .* failed/);
  } finally {
    const stoppedServer = await server.stop();
    await Deno.remove(tmp, { recursive: true });
    assert.equal(stoppedServer.code, 0, stoppedServer.stderr);
  }
});
