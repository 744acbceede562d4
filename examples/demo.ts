/**
 * `deno task demo`: the whole lab on one machine. Starts the server on an
 * ephemeral loopback port with the repository's demo material
 * (`keys_pub/heartbeat.pem`, `keys_priv/key_secret_for_hmac.txt`) and
 * temporary state and log directories, walks group HEARTBEAT through every
 * state with `udpjwt send` and the demo private key while 30% of the
 * datagrams are dropped each way, prints the result, and stops the server.
 *
 * Extra arguments go to `send`: `deno task demo --seed 42` repeats a run.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runSend } from "../lib/cli/send.ts";
import type { Io } from "../lib/cli/errors.ts";
import {
  ServerStartError,
  type StartedServer,
  startServer,
} from "../tests/_server.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

function print(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

function printError(line: string): void {
  // deno-lint-ignore no-console
  console.error(line);
}

async function demo(extra: string[]): Promise<number> {
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_demo_" });
  let server: StartedServer | undefined;
  try {
    try {
      server = await startServer({
        dir: ".",
        logDir: `${tmp}/logs`,
        stateDir: `${tmp}/state`,
        // As narrow as `deno task start`, with the temporary directories.
        permissions: [
          "--allow-net=127.0.0.1",
          `--allow-read=.,${tmp}`,
          `--allow-write=${tmp}`,
        ],
        stderr: "inherit",
      });
    } catch (e) {
      if (!(e instanceof ServerStartError)) throw e;
      printError(`demo: the server did not start:\n${e.stdout.trimEnd()}`);
      return 1;
    }
    const port = String(server.port);
    print(
      `demo: server on 127.0.0.1 port ${port}, state and logs in ${tmp}`,
    );
    const io: Io = { out: print, err: printError };
    const code = await runSend([
      "127.0.0.1",
      port,
      "--group",
      "heartbeat",
      "--key",
      join(ROOT, "examples", "heartbeat_demo.key"),
      "--secret",
      join(ROOT, "keys_priv", "key_secret_for_hmac.txt"),
      "--registration",
      "20230001",
      "--registration",
      "20230002",
      "--simulate-loss",
      "0.3",
      "--timeout",
      "100",
      "--max-timeout",
      "800",
      "--retries",
      "12",
      ...extra,
    ], io);
    print(
      code === 0
        ? "demo: the walk completed despite the loss"
        : "demo: the walk did NOT complete",
    );
    return code;
  } finally {
    if (server) {
      // The server's last line counts its outcomes: "replayed" answers are
      // retransmissions answered from its cache.
      const { stdout } = await server.stop();
      const stopped = stdout.split("\n").findLast((l) =>
        l.includes("Stopped after")
      );
      if (stopped) {
        print(
          `demo: server ${
            stopped.replace(/^.*Stopped after/, "stopped after")
          }`,
        );
      }
    }
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  Deno.exit(await demo(Deno.args));
}
