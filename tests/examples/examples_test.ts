/**
 * The student clients of docs/students.md, `examples/client.ts` (jose) and
 * `examples/client.py` (PyJWT), run as a student runs them against a real
 * server (`main.ts` on 127.0.0.1, port 0). Each must walk an RS256 group and
 * an ES256 group through every state and exit 0; exit 1 on an error answer;
 * and, through a relay that loses one request and one answer, resend the
 * identical datagram and still complete. The server's own log must show the
 * seven accepted events of each walk, each once.
 *
 * The Python client needs a Python 3 that imports `jwt` (PyJWT) and
 * `cryptography`; the first of `python3`, `/usr/bin/python3` and `python`
 * that does is used (or `UDPJWT_PYTHON`, read only when `--allow-env` grants
 * it). Without one, its test is ignored and the reason printed. On Debian:
 * `apt-get install -y python3-jwt python3-cryptography`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type CommandResult,
  runCommand,
  type StoppedServer,
  withServer,
} from "../_server.ts";

/**
 * How long one client run may take: a walk takes well under a second here;
 * a client that gets no answer gives up after its retries, about 45 s.
 */
const CLIENT_TIMEOUT_MS = 60_000;
/** How long the import check of one Python candidate may take. */
const PROBE_TIMEOUT_MS = 15_000;

const VECTORS = "tests/testdata/vectors";

/** Runs a command in the repository to completion, killed after a timeout. */
function run(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<CommandResult> {
  return runCommand(command, args, { timeoutMs });
}

/** The Python candidates, `UDPJWT_PYTHON` first when it may be read. */
function pythonCandidates(): string[] {
  const { state } = Deno.permissions.querySync({
    name: "env",
    variable: "UDPJWT_PYTHON",
  });
  const chosen = state === "granted" ? Deno.env.get("UDPJWT_PYTHON") : "";
  return [
    ...(chosen ? [chosen] : []),
    "python3",
    "/usr/bin/python3",
    "python",
  ];
}

/** The first Python that imports PyJWT and cryptography, or why none does. */
async function findPython(): Promise<{ python?: string; why: string }> {
  const tried: string[] = [];
  for (const candidate of pythonCandidates()) {
    try {
      const r = await run(candidate, [
        "-c",
        "import jwt, cryptography.hazmat.primitives.serialization",
      ], PROBE_TIMEOUT_MS);
      if (r.code === 0) return { python: candidate, why: "" };
      const last = r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`;
      tried.push(`${candidate}: ${last}`);
    } catch (e) {
      tried.push(`${candidate}: ${e instanceof Error ? e.name : e}`);
    }
  }
  return {
    why: `no Python with PyJWT and cryptography (${
      tried.join("; ")
    }); on Debian: apt-get install -y python3-jwt python3-cryptography`,
  };
}

const { python, why } = await findPython();
if (!python) {
  // deno-lint-ignore no-console
  console.warn(`examples_test: examples/client.py is not tested: ${why}`);
}

/** One example client and how to start it. */
interface Client {
  file: string;
  /** Why its test is ignored, if it is. */
  skip?: string;
  command: string;
  args: (clientArgs: string[]) => string[];
}

const CLIENTS: Client[] = [
  {
    file: "examples/client.ts",
    command: Deno.execPath(),
    args: (a) => [
      "run",
      "--allow-net",
      "--allow-read",
      "examples/client.ts",
      ...a,
    ],
  },
  {
    file: "examples/client.py",
    ...(python ? {} : { skip: why }),
    command: python ?? "python3",
    args: (a) => ["examples/client.py", ...a],
  },
];

/** The events the server accepted (`ok`) for a group, from its JSON log. */
function accepted(
  stopped: StoppedServer,
  group: string,
): { sn: unknown; next: unknown }[] {
  return stopped.log
    .filter((r) =>
      r.category === "datagram" && r.group === group && r.outcome === "ok"
    )
    .map((r) => ({ sn: r.seq_state_number, next: r.next_number }));
}

const WALK = [0, 1, 2, 3, 4, 5, 6].map((sn) => ({
  sn,
  next: sn === 6 ? 0 : sn + 1,
}));

/** A payload claim of a compact JWS, or undefined when it is not one. */
function claim(datagram: Uint8Array, name: string): unknown {
  try {
    const middle = new TextDecoder().decode(datagram).split(".")[1] ?? "";
    const bytes = Uint8Array.fromBase64(middle, { alphabet: "base64url" });
    return JSON.parse(new TextDecoder().decode(bytes))[name];
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` with a UDP relay on 127.0.0.1 in front of `server` that drops the
 * first request for event 2 and the first answer with next_number 5 (the
 * answer to event 4), and forwards everything else.
 */
async function withLossyRelay(
  server: Deno.NetAddr,
  fn: (relay: Deno.NetAddr) => Promise<void>,
): Promise<{ droppedRequests: number; droppedAnswers: number }> {
  const relay = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  const dropped = { droppedRequests: 0, droppedAnswers: 0 };
  let client: Deno.NetAddr | undefined;
  const loop = (async () => {
    while (true) {
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [d, a] = await relay.receive();
        [data, from] = [d, a as Deno.NetAddr];
      } catch {
        return; // closed
      }
      if (from.port === server.port) {
        if (claim(data, "next_number") === 5 && dropped.droppedAnswers === 0) {
          dropped.droppedAnswers++;
        } else if (client) await relay.send(data, client);
      } else {
        client = from;
        if (
          claim(data, "seq_state_number") === 2 &&
          dropped.droppedRequests === 0
        ) {
          dropped.droppedRequests++;
        } else await relay.send(data, server);
      }
    }
  })();
  try {
    await fn(relay.addr as Deno.NetAddr);
  } finally {
    relay.close();
    await loop;
  }
  return dropped;
}

function assertWalked(r: CommandResult, group: string): void {
  const output = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.code, 0, `the walk exits 0\n${output}`);
  assert.match(r.stdout, /^0 RED -> next_number 1 /m, output);
  assert.match(r.stdout, /^6 VIOLET -> next_number 0 /m, output);
  assert.match(
    r.stdout,
    new RegExp(
      `walk complete: ${group} acknowledged events 0-6, final state 6 VIOLET`,
    ),
    output,
  );
}

for (const client of CLIENTS) {
  Deno.test({
    name:
      `${client.file} walks RS256 and ES256 groups against main.ts, resends lost datagrams, exits 1 on an error answer`,
    ignore: client.skip !== undefined,
    fn: async (t) => {
      const start = (a: string[]) =>
        run(client.command, client.args(a), CLIENT_TIMEOUT_MS);

      await t.step(
        "RS256: HEARTBEAT of the demo lab, with the demo key",
        async () => {
          const stopped = await withServer({ dir: "." }, async (server) => {
            const r = await start([
              "127.0.0.1",
              String(server.port),
              "heartbeat",
              "examples/heartbeat_demo.key",
              "--secret",
              "keys_priv/key_secret_for_hmac.txt",
              "--registration",
              "20230001",
            ]);
            assertWalked(r, "heartbeat");
          });
          assert.deepEqual(accepted(stopped, "HEARTBEAT"), WALK);
        },
      );

      await t.step(
        "ES256: CHEDIMON of the vectors (a secret ending in a newline); an error answer exits 1",
        async () => {
          const stopped = await withServer({ dir: VECTORS }, async (server) => {
            const walked = await start([
              "127.0.0.1",
              String(server.port),
              "chedimon",
              `${VECTORS}/private/chedimon.key`,
              "--secret",
              `${VECTORS}/keys_priv/key_secret_for_hmac.txt`,
              "--seq-max",
              "2",
            ]);
            assertWalked(walked, "chedimon");
            // SEGSANH's public key does not verify CHEDIMON's signature.
            const refused = await start([
              "127.0.0.1",
              String(server.port),
              "segsanh",
              `${VECTORS}/private/chedimon.key`,
              "--secret",
              `${VECTORS}/keys_priv/key_secret_for_hmac.txt`,
            ]);
            assert.equal(refused.code, 1, refused.stderr);
            assert.match(refused.stderr, /event 0: BAD_SIGNATURE: ERROR: /);
          });
          assert.deepEqual(accepted(stopped, "CHEDIMON"), WALK);
          assert.deepEqual(accepted(stopped, "SEGSANH"), []);
        },
      );

      await t.step(
        "a lost request and a lost answer are resent, byte for byte",
        async () => {
          let dropped;
          const stopped = await withServer({ dir: "." }, async (server) => {
            dropped = await withLossyRelay(server.addr, async (relay) => {
              const r = await start([
                "127.0.0.1",
                String(relay.port),
                "heartbeat",
                "examples/heartbeat_demo.key",
                "--secret",
                "keys_priv/key_secret_for_hmac.txt",
              ]);
              assertWalked(r, "heartbeat");
              assert.match(
                r.stdout,
                /^2 YELLOW -> next_number 3 \(retries [1-9]\d*\)/m,
              );
              assert.match(
                r.stdout,
                /^4 BLUE -> next_number 5 \(retries [1-9]\d*\)/m,
              );
            });
          });
          assert.deepEqual(dropped, { droppedRequests: 1, droppedAnswers: 1 });
          // The state machine ran once per event: the resent event 4 was
          // answered from the server's cache.
          assert.deepEqual(accepted(stopped, "HEARTBEAT"), WALK);
          const replayed = stopped.log.filter((r) => r.outcome === "replayed");
          assert.ok(replayed.length >= 1, "the lost answer is replayed");
        },
      );
    },
  });
}
