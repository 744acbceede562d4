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

import { runSend } from "../lib/client/client.ts";
import type { Io } from "../lib/cli/errors.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function print(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

function printError(line: string): void {
  // deno-lint-ignore no-console
  console.error(line);
}

/**
 * Reads lines into `seen` until one matches `re` (undefined at the end). The
 * iterator is left open, to read the rest later.
 */
async function waitForLine(
  lines: AsyncIterator<string>,
  re: RegExp,
  seen: string[],
): Promise<RegExpMatchArray | undefined> {
  while (true) {
    const next = await lines.next();
    if (next.done) return undefined;
    seen.push(next.value);
    const m = next.value.match(re);
    if (m) return m;
  }
}

async function* splitLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    const parts = rest.split("\n");
    rest = parts.pop() ?? "";
    yield* parts;
  }
  if (rest !== "") yield rest;
}

async function demo(extra: string[]): Promise<number> {
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_demo_" });
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      `--allow-read=.,${tmp}`,
      `--allow-write=${tmp}`,
      "main.ts",
      "127.0.0.1",
      "0",
      ".",
      "--log-dir",
      `${tmp}/logs`,
      "--state-dir",
      `${tmp}/state`,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = splitLines(server.stdout)[Symbol.asyncIterator]();
  const seen: string[] = [];
  try {
    const m = await waitForLine(lines, /^listening on (\S+) port (\d+)/, seen);
    if (!m) {
      printError(`demo: the server did not start:\n${seen.join("\n")}`);
      return 1;
    }
    const port = m[2]!;
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
      `${ROOT}examples/heartbeat_demo.key`,
      "--secret",
      `${ROOT}keys_priv/key_secret_for_hmac.txt`,
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
    server.kill("SIGTERM");
    // The server's last line counts its outcomes: "replayed" answers are
    // retransmissions answered from its cache.
    await waitForLine(lines, /(?!)/, seen);
    await server.status;
    const stopped = seen.findLast((l) => l.includes("Stopped after"));
    if (stopped) {
      print(
        `demo: server ${stopped.replace(/^.*Stopped after/, "stopped after")}`,
      );
    }
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  Deno.exit(await demo(Deno.args));
}
