/**
 * End-to-end helpers: the server started as a subprocess through `main.ts`,
 * exactly as a user starts it, and a UDP client on loopback whose every
 * receive has a timeout.
 *
 * @module
 */

import assert from "node:assert/strict";

/** The repository root: `main.ts` lives there and it is the server's cwd. */
export const REPO_ROOT = new URL("../", import.meta.url).pathname;

/** `deno run` with the permissions a user grants the server, and main.ts. */
export const RUN_ARGS = [
  "run",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "main.ts",
];

/** How long a server may take to print its port, or to stop. */
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/** The default receive timeout of {@linkcode UdpClient.receive}. */
export const RECEIVE_TIMEOUT_MS = 3_000;

/** What a finished command printed and returned. */
export interface CommandResult {
  /** The exit code. */
  code: number;
  /** Everything printed on stdout. */
  stdout: string;
  /** Everything printed on stderr. */
  stderr: string;
}

/** Rejects after `ms` with `message`, unless `p` settles first. */
export async function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `main.ts` with `args` to completion (for flags and start-up errors).
 *
 * @param args The arguments after `main.ts`.
 * @returns The exit code and output.
 */
export function runMain(args: string[]): Promise<CommandResult> {
  return runDeno(
    [...RUN_ARGS, ...args],
    START_TIMEOUT_MS,
    `main.ts ${args.join(" ")} did not exit in time`,
  );
}

/**
 * Runs the Deno executable with `args` in the repository to completion,
 * killing it and failing after `timeoutMs`.
 *
 * @param args The arguments after the executable.
 * @param timeoutMs How long it may take.
 * @param message The failure message on a timeout.
 * @returns The exit code and output.
 */
export async function runDeno(
  args: string[],
  timeoutMs: number,
  message: string,
): Promise<CommandResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out: Deno.CommandOutput;
  try {
    out = await withTimeout(child.output(), timeoutMs, message);
  } catch (e) {
    child.kill("SIGKILL");
    await child.status;
    throw e;
  }
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

/**
 * Runs `bench/load.ts` to completion with the permissions it needs.
 *
 * @param args The load tool's arguments.
 * @param timeoutMs How long it may take.
 * @returns Its exit code and output.
 */
export function runLoadTool(
  args: string[],
  timeoutMs: number,
): Promise<CommandResult> {
  return runDeno(
    [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "bench/load.ts",
      ...args,
    ],
    timeoutMs,
    `the load tool did not finish in ${timeoutMs / 1000} s`,
  );
}

/** Collects a stream's text as it arrives, so the child never blocks on a full pipe. */
class Drain {
  text = "";
  readonly done: Promise<void>;
  #listeners = new Set<() => void>();

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.text += chunk;
        for (const l of this.#listeners) l();
      }
      for (const l of this.#listeners) l();
    })();
  }

  /** Resolves with the first match of `re` in the text so far or to come. */
  waitFor(re: RegExp, ended: Promise<unknown>): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.text.match(re);
        if (m) {
          this.#listeners.delete(check);
          resolve(m);
        }
      };
      this.#listeners.add(check);
      check();
      ended.then(() => {
        this.#listeners.delete(check);
        reject(new Error(`the server exited before printing ${re}`));
      });
    });
  }
}

/** A running server. */
export interface RunningServer {
  /** Its process id. */
  pid: number;
  /** The address it listens on, as printed. */
  hostname: string;
  /** The port it bound, as printed. */
  port: number;
  /** The address to send datagrams to. */
  addr: Deno.NetAddr;
  /** The log directory passed with `--log-dir`. */
  logDir: string;
  /** The state directory passed with `--state-dir`. */
  stateDir: string;
  /** Its stdout so far. */
  stdout(): string;
  /** Its stderr so far. */
  stderr(): string;
  /**
   * Waits (at most 5 s) until stdout matches `re`.
   * @returns All of stdout so far.
   */
  waitForStdout(re: RegExp): Promise<string>;
}

/** What a server left behind once stopped. */
export interface StoppedServer extends CommandResult {
  /** The JSON Lines log, one parsed object per line. */
  log: Record<string, unknown>[];
}

/** Options of {@linkcode withServer}. */
export interface ServerOptions {
  /** ADDRESS (default 127.0.0.1). */
  hostname?: string;
  /** DIR (default the interoperability vectors). */
  dir?: string;
  /** `--state-dir` (default a fresh temporary directory). */
  stateDir?: string;
  /** Extra flags. */
  args?: string[];
}

/**
 * Starts `main.ts ADDRESS 0 DIR --log-dir <temp> --state-dir <temp>` as a
 * subprocess (so nothing is written into DIR), reads the bound port from its
 * start-up summary, runs `fn`, then stops it with SIGTERM and asserts that it
 * exits 0. The temporary directories are removed afterwards; the log records
 * are returned.
 *
 * @param options Address, directory and flags.
 * @param fn The test body.
 * @returns The exit code, output and log records of the stopped server.
 */
export async function withServer(
  options: ServerOptions,
  fn: (server: RunningServer) => Promise<void>,
): Promise<StoppedServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const dir = options.dir ?? "tests/testdata/vectors";
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_e2e_" });
  const logDir = `${tmp}/logs`;
  const stateDir = options.stateDir ?? `${tmp}/state`;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...RUN_ARGS,
        hostname,
        "0",
        dir,
        "--log-dir",
        logDir,
        "--state-dir",
        stateDir,
        ...(options.args ?? []),
      ],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = new Drain(child.stdout);
    const err = new Drain(child.stderr);
    let failure: { error: unknown } | undefined;
    try {
      const m = await withTimeout(
        out.waitFor(/^listening on (.+) port (\d+) \(udp\)$/m, child.status),
        START_TIMEOUT_MS,
        "the server did not print its port in time",
      ).catch((e) => {
        throw new Error(
          `${
            e instanceof Error ? e.message : e
          }\nstdout:\n${out.text}\nstderr:\n${err.text}`,
        );
      });
      const port = Number(m[2]);
      // The start-up summary is complete once "Ready" is logged.
      await withTimeout(
        out.waitFor(/Ready: \d+ groups/, child.status),
        START_TIMEOUT_MS,
        `the server did not log "Ready"\nstdout:\n${out.text}`,
      );
      const server: RunningServer = {
        pid: child.pid,
        hostname: m[1]!,
        port,
        addr: { transport: "udp", hostname, port },
        logDir,
        stateDir,
        stdout: () => out.text,
        stderr: () => err.text,
        waitForStdout: async (re) => {
          await withTimeout(
            out.waitFor(re, child.status),
            5_000,
            `the server did not print ${re}\nstdout:\n${out.text}`,
          );
          return out.text;
        },
      };
      await fn(server);
    } catch (error) {
      failure = { error };
    }
    // Stop it whatever happened; a failure of the test body wins.
    const result = await stop(child, out, err);
    if (failure) throw failure.error;
    assert.equal(
      result.code,
      0,
      `the server exits 0 on SIGTERM\nstderr:\n${result.stderr}`,
    );
    return { ...result, log: await readLog(logDir) };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Sends SIGTERM and waits for the exit (SIGKILL and fail past a timeout). */
async function stop(
  child: Deno.ChildProcess,
  out: Drain,
  err: Drain,
): Promise<CommandResult> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already exited: the status below tells how.
  }
  let status: Deno.CommandStatus;
  try {
    status = await withTimeout(
      child.status,
      STOP_TIMEOUT_MS,
      "the server did not stop on SIGTERM",
    );
  } catch (e) {
    child.kill("SIGKILL");
    await child.status;
    throw e;
  }
  await Promise.all([out.done, err.done]);
  return { code: status.code, stdout: out.text, stderr: err.text };
}

async function readLog(logDir: string): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${logDir}/udpjwt.jsonl`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/**
 * A UDP client on loopback. One background loop receives into a queue, so a
 * receive that times out never swallows a later datagram.
 */
export class UdpClient {
  readonly conn: Deno.DatagramConn;
  #queue: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #loop: Promise<void>;

  /** @param hostname The loopback address to bind (port 0). */
  constructor(hostname = "127.0.0.1") {
    const conn = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
    this.conn = conn;
    this.#loop = (async () => {
      while (true) {
        try {
          const [data] = await conn.receive(new Uint8Array(65536));
          this.#queue.push(data.slice());
        } catch {
          break; // closed
        }
        this.#wake?.();
      }
      this.#wake?.();
    })();
  }

  /** The client's own address. */
  get addr(): Deno.NetAddr {
    return this.conn.addr as Deno.NetAddr;
  }

  /** Sends a datagram (a string is sent as UTF-8). */
  async send(to: Deno.NetAddr, data: string | Uint8Array): Promise<number> {
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data;
    return await this.conn.send(bytes, to);
  }

  /**
   * The next datagram received, or undefined after `timeoutMs`.
   *
   * @param timeoutMs How long to wait.
   */
  async next(timeoutMs = RECEIVE_TIMEOUT_MS): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.#queue.shift();
  }

  /**
   * The next datagram; fails the test after `timeoutMs`.
   *
   * @param timeoutMs How long to wait.
   */
  async receive(timeoutMs = RECEIVE_TIMEOUT_MS): Promise<Uint8Array> {
    const data = await this.next(timeoutMs);
    assert.ok(data, `no answer within ${timeoutMs} ms`);
    return data;
  }

  /** Closes the socket and waits for the receive loop to end. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}

/**
 * Runs `fn` with a client, closed in `finally`.
 *
 * @param fn The body.
 * @param hostname The loopback address to bind.
 */
export async function withClient<T>(
  fn: (client: UdpClient) => Promise<T>,
  hostname = "127.0.0.1",
): Promise<T> {
  const client = new UdpClient(hostname);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
