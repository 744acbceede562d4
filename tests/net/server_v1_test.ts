/**
 * End-to-end tests of profile v1: `main.ts --profile v1 --min-rsa-bits 1024`
 * started as a subprocess on a throwaway lab (an RSA-1024 group key made with
 * openssl at test time, an HMAC secret without a trailing newline), spoken to
 * over real UDP on loopback as the June 2023 clients did.
 *
 * @module
 */

import assert from "node:assert/strict";
import { compactVerify } from "jose";
import { runCommand, withServer } from "../_server.ts";
import { UdpClient, withClient } from "../_udp_client.ts";
import { AUDIENCE, capture, nowSec, sha256Hex } from "../_helpers.ts";
import { runStatus } from "../../lib/cli/status.ts";
import { makeV1Lab, OPENSSL, SECRET, sign } from "../_v1_lab.ts";
const decoder = new TextDecoder();

/** Sends a token and returns its verified answer's claims and bytes. */
async function exchange(
  client: UdpClient,
  addr: Deno.NetAddr,
  token: string,
): Promise<{ claims: Record<string, unknown>; bytes: Uint8Array }> {
  await client.send(addr, token);
  const bytes = await client.receive();
  assert.ok(bytes.length < 1000);
  const { payload, protectedHeader } = await compactVerify(
    decoder.decode(bytes),
    SECRET,
    { algorithms: ["HS256"] },
  );
  assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
  return { claims: JSON.parse(decoder.decode(payload)), bytes };
}

function datagrams(log: Record<string, unknown>[]): Record<string, unknown>[] {
  return log.filter((r) => r.outcome !== undefined && r.peer !== undefined);
}

const V1_ARGS = ["--profile", "v1", "--min-rsa-bits", "1024"];

Deno.test({
  name:
    "main.ts --profile v1 runs the machine again for a 2023 client's byte-identical second walk (RSA-1024, no exp, no jti)",
  ignore: !OPENSSL,
  fn: async () => {
    const lab = await makeV1Lab();
    try {
      const M = 3;
      // Signed once, sent on both walks: the same bytes each time.
      const tokens = await Promise.all(
        Array.from({ length: M + 1 }, (_, sn) =>
          sign({
            group: "old2023",
            seq_number: sn,
            seq_max: M,
            matricula: sn % 2 ? 20230000 + sn : String(20230000 + sn),
          }, lab.key)),
      );
      const stopped = await withServer(
        { dir: lab.dir, args: V1_ARGS, stateDir: `${lab.dir}/state` },
        async (server) => {
          const summary = await server.waitForStdout(/^groups \(1\)/m);
          assert.match(summary, /profile v1/);
          assert.match(summary, /HMAC secret: .* \(15 bytes\)/);
          assert.match(summary, /OLD2023 +RS256 +RSA 1024/);
          await withClient(async (client) => {
            for (const walk of [1, 2]) {
              for (const [sn, token] of tokens.entries()) {
                const { claims } = await exchange(client, server.addr, token);
                assert.deepEqual(Object.keys(claims), [
                  "id_request",
                  "next_number",
                  "otp_number",
                  "otp_timestamp",
                ], `walk ${walk}, event ${sn}`);
                assert.equal(claims.next_number, sn === M ? 0 : sn + 1);
                assert.equal(
                  claims.id_request,
                  await sha256Hex(
                    Uint8Array.fromBase64(token.split(".")[1]!, {
                      alphabet: "base64url",
                    }),
                  ),
                );
                assert.match(String(claims.otp_number), /^\d{1,5}$/);
                assert.ok(Number.isInteger(claims.otp_timestamp));
              }
            }
            // Out of order: nothing comes back (NO ACTION), then event 0
            // still restarts.
            await client.send(server.addr, tokens[2]!);
            assert.equal(await client.next(500), undefined);
            const restart = await exchange(client, server.addr, tokens[0]!);
            assert.equal(restart.claims.next_number, 1);
          });
        },
      );
      const records = datagrams(stopped.log);
      const outcomes = records.map((r) => r.outcome);
      assert.deepEqual(
        outcomes,
        [...Array(2 * (M + 1)).fill("ok"), "no_action", "ok"],
        "the second walk ran the machine again: no replayed outcome",
      );
      assert.equal(
        stopped.log.filter((r) =>
          String(r.message).includes("completed a walk")
        ).length,
        2,
      );
      // The state directory records the group's M: udpjwt status shows it.
      const json = capture();
      assert.equal(await runStatus([lab.dir, "--json"], json), 0);
      const [old] = JSON.parse(json.lines[0]!).groups;
      assert.equal(old.group, "OLD2023");
      assert.equal(old.state, 0);
      assert.equal(old.seqMax, M);
      assert.equal(old.walks, 2);
      assert.deepEqual(
        old.registrations.map((r: { registration: number }) => r.registration),
        [20230000, 20230001, 20230002, 20230003],
      );
      const table = capture();
      assert.equal(await runStatus([lab.dir], table), 0);
      assert.match(
        table.lines.join("\n"),
        /\nGROUP +STATE +M +COLOUR +WALKS +REGISTRATIONS +LAST ACTIVITY\nOLD2023 +0 +3 +- +2 +4 +\S+Z\n/,
      );
    } finally {
      await Deno.remove(lab.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "main.ts --profile v1 answers a retransmitted token with exp byte for byte, and errors with the group as sub",
  ignore: !OPENSSL,
  fn: async () => {
    const lab = await makeV1Lab();
    try {
      const iat = nowSec();
      const claims = {
        group: "Old2023",
        "seq_number": 0,
        "seq_max": 2,
        matricula: 20230001,
        aud: AUDIENCE,
        iat,
        exp: iat + 60,
        jti: crypto.getRandomValues(new Uint8Array(16)).toHex(),
      };
      const stopped = await withServer(
        { dir: lab.dir, args: V1_ARGS },
        async (server) => {
          await withClient(async (client) => {
            const token = await sign(claims, lab.key);
            const first = await exchange(client, server.addr, token);
            assert.equal(first.claims.next_number, 1);
            const copy = await exchange(client, server.addr, `${token}\n`);
            assert.deepEqual(copy.bytes, first.bytes);
            // A verified request with a bad claim: the group as sent.
            const bad = await exchange(
              client,
              server.addr,
              await sign({ ...claims, seq_max: 0, jti: "x1" }, lab.key),
            );
            assert.equal(bad.claims.error, "BAD_CLAIM");
            assert.equal(bad.claims.sub, "Old2023");
            assert.equal(bad.claims.iss, AUDIENCE);
            // A protocol 2 request is refused: no group claim.
            const p2 = await exchange(
              client,
              server.addr,
              await sign({
                sub: "old2023",
                aud: AUDIENCE,
                iat,
                exp: iat + 60,
                jti: "x2",
                seq_state_number: 0,
                seq_state: "RED",
                seq_max: 2,
                registration: 1,
              }, lab.key),
            );
            assert.equal(p2.claims.error, "MISSING_CLAIM");
            assert.equal(p2.claims.sub, "NO_SUB_CLAIM");
          });
        },
      );
      const outcomes = datagrams(stopped.log).map((r) => r.outcome);
      assert.deepEqual(outcomes, [
        "ok",
        "replayed",
        "BAD_CLAIM",
        "MISSING_CLAIM",
      ]);
    } finally {
      await Deno.remove(lab.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts refuses the lab's RSA-1024 key without --min-rsa-bits 1024",
  ignore: !OPENSSL,
  fn: async () => {
    const lab = await makeV1Lab();
    try {
      const r = await runCommand(Deno.execPath(), [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-ffi",
        "main.ts",
        "127.0.0.1",
        "0",
        lab.dir,
        "--profile",
        "v1",
        "--log-dir",
        `${lab.dir}/logs`,
        "--state-dir",
        `${lab.dir}/state`,
      ], { timeoutMs: 20_000 });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /No usable public key/);
      assert.match(r.stderr, /--min-rsa-bits|1024/);
    } finally {
      await Deno.remove(lab.dir, { recursive: true });
    }
  },
});
