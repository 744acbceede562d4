/**
 * A full disk, for real: a small tmpfs mounted for the test holds the
 * server's state and log directories, is filled up in the middle of a walk,
 * then freed; `/healthz` says 503 and why while it is full, 200 after.
 * Needs the right to mount (root here); skips, saying so, elsewhere.
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
import { runMain, startServer } from "../_server.ts";
import { UdpClient } from "../_udp_client.ts";

const SECRET = await Deno.readFile(
  `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
);
const KEY = await privateKey("heartbeat");

/** Mounts a tmpfs of `size` at a new directory, or says why it cannot. */
async function mountTmpfs(size: string): Promise<string | { why: string }> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_tmpfs_" });
  try {
    const out = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return dir;
    await Deno.remove(dir);
    return { why: new TextDecoder().decode(out.stderr).trim() };
  } catch (e) {
    await Deno.remove(dir);
    return { why: String(e) };
  }
}

async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir] }).output();
  await Deno.remove(dir, { recursive: true });
}

/** Writes a file until the file system is full. */
async function fill(path: string): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  let size = 0;
  try {
    while (true) size += await file.write(chunk);
  } catch {
    // ENOSPC: full.
  } finally {
    file.close();
  }
  return size;
}

async function token(n: number): Promise<Uint8Array> {
  const claims = requestClaims("HEARTBEAT", n, Math.floor(Date.now() / 1000));
  return new TextEncoder().encode(await signRequest(claims, KEY, "RS256"));
}

async function nextNumber(reply: Uint8Array): Promise<unknown> {
  const { payload } = await jwtVerify(new TextDecoder().decode(reply), SECRET, {
    algorithms: ["HS256"],
  });
  return payload.next_number ?? payload.error;
}

/** Sends `datagram` until an answer comes (or `tries` run out). */
async function ask(
  client: UdpClient,
  to: Deno.NetAddr,
  datagram: Uint8Array,
  tries: number,
): Promise<Uint8Array | undefined> {
  for (let i = 0; i < tries; i++) {
    await client.send(to, datagram);
    const reply = await client.next(300);
    if (reply) return reply;
  }
  return undefined;
}

const mount = await mountTmpfs("2m");
const skip = typeof mount === "string" ? undefined : mount.why;
if (skip) {
  // deno-lint-ignore no-console
  console.log(`disk_full_test: skipped, cannot mount a tmpfs here: ${skip}`);
}

Deno.test({
  name:
    "main.ts on a full disk acknowledges no new step, resends acknowledged answers, and carries on when space returns",
  ignore: skip !== undefined,
  async fn() {
    const root = mount as string;
    const stateDir = `${root}/state`;
    const logDir = `${root}/logs`;
    try {
      let server = await startServer({
        stateDir,
        logDir,
        args: ["--http", "127.0.0.1:0"],
      });
      const health = async () => {
        const r = await fetch(`${server.http}/healthz`);
        return `${r.status} ${await r.text()}`;
      };
      const client = new UdpClient();
      try {
        let last: { request: Uint8Array; reply: Uint8Array } | undefined;
        let state = 0;
        for (let n = 0; n <= 3; n++) {
          const request = await token(n);
          const reply = await ask(client, server.addr, request, 5);
          assert.ok(reply, `step ${n} is answered`);
          assert.equal(await nextNumber(reply), expected(n));
          last = { request, reply };
          state = n;
        }

        // Full: the journal's last page may still take a line or two, so
        // walk on until a step is refused.
        assert.ok(await fill(`${root}/filler`) > 0);
        let refused: { n: number; request: Uint8Array } | undefined;
        for (let i = 0; i < 14 && !refused; i++) {
          const n = expected(state);
          const request = await token(n);
          const reply = await ask(client, server.addr, request, 6);
          if (!reply) {
            refused = { n, request };
            break;
          }
          assert.equal(await nextNumber(reply), expected(n));
          last = { request, reply };
          state = n;
        }
        assert.ok(refused, "a step that cannot be written is not answered");
        assert.match(
          await health(),
          /^503 the state journal is not writable since .*: .*steps refused/,
        );

        // An acknowledged step's retransmission gets its answer again, byte
        // for byte; a new request that changes nothing is answered.
        const again = await ask(client, server.addr, last!.request, 3);
        assert.deepEqual(again, last!.reply);
        const repeat = await ask(client, server.addr, await token(state), 3);
        assert.ok(repeat, "a step that changes nothing is answered");
        assert.equal(
          await nextNumber(repeat),
          expected(state),
          "the group is still where the last acknowledged step left it",
        );

        await Deno.remove(`${root}/filler`);
        const resumed = await ask(client, server.addr, refused.request, 30);
        assert.ok(resumed, "the step is answered once space returns");
        assert.equal(await nextNumber(resumed), expected(refused.n));
        state = refused.n;
        for (let i = 0; i < 3; i++) {
          const n = expected(state);
          const reply = await ask(client, server.addr, await token(n), 5);
          assert.ok(reply, `step ${n} is answered`);
          assert.equal(await nextNumber(reply), expected(n));
          state = n;
        }
        assert.equal(await health(), "200 ok\n");

        const output = server.stdout() + server.stderr();
        const problems = output.match(/cannot be written/g) ?? [];
        assert.ok(
          problems.length >= 1 && problems.length <= 3,
          `the problem is logged once per interval, not per datagram:\n${output}`,
        );
        assert.match(output, /writable again/);
        assert.doesNotMatch(output, /Handler failed|\n\s+at /);

        // A crash now loses nothing that was acknowledged.
        Deno.kill(server.pid, "SIGKILL");
        await server.stop();
        server = await startServer({ stateDir, logDir });
        const status = await runMain([
          "status",
          "tests/testdata/vectors",
          "--state-dir",
          stateDir,
          "--json",
        ]);
        assert.equal(status.code, 0, status.stderr);
        const groups = JSON.parse(status.stdout).groups as {
          group: string;
          state: number;
          walks: number;
        }[];
        const heartbeat = groups.find((g) => g.group === "HEARTBEAT");
        assert.equal(heartbeat?.state, state, status.stdout);
      } finally {
        await client.close();
        await server.stop();
      }
    } finally {
      await unmount(root);
    }
  },
});
