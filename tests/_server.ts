/**
 * End-to-end helpers: the server started as a subprocess through `main.ts`,
 * exactly as a user starts it, and a UDP client on loopback whose every
 * receive has a timeout.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

/**
 * The repository root, ending with a path separator: `main.ts` lives there
 * and it is the server's cwd.
 */
export const REPO_ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** The permissions a user grants the server (`deno task start`, widened). */
export const SERVER_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
];

/** `deno run` with the permissions a user grants the server, and main.ts. */
export const RUN_ARGS: string[] = ["run", ...SERVER_PERMISSIONS, "main.ts"];

/** How long a server may take to start (port and `Ready`), or to stop. */
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

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
export function runDeno(
  args: string[],
  timeoutMs: number,
  message: string,
): Promise<CommandResult> {
  return runCommand(Deno.execPath(), args, { timeoutMs, message });
}

/**
 * Runs a program in the repository to completion, killing it and failing
 * after `timeoutMs`.
 *
 * @param command The program.
 * @param args Its arguments.
 * @param options How long it may take, and the failure message then.
 * @returns The exit code and output.
 */
export async function runCommand(
  command: string,
  args: string[],
  options: { timeoutMs: number; message?: string },
): Promise<CommandResult> {
  const { timeoutMs } = options;
  const message = options.message ??
    `${command} ${args.join(" ")} did not finish in ${timeoutMs / 1000} s`;
  const child = new Deno.Command(command, {
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

/** What a bounded {@linkcode Drain} keeps of a stream: its start and its end. */
const HEAD_CHARS = 16_384;
const TAIL_CHARS = 4_096;

/**
 * Collects a stream's text as it arrives, so the child never blocks on a full
 * pipe. A bounded drain keeps only the first and the last characters (a load
 * run at `--log-level debug` prints a line per datagram).
 */
class Drain {
  readonly done: Promise<void>;
  #head = "";
  #tail = "";
  #skipped = 0;
  #bounded: boolean;
  #listeners = new Set<() => void>();

  constructor(stream: ReadableStream<Uint8Array>, bounded: boolean) {
    this.#bounded = bounded;
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.#add(chunk);
        for (const l of this.#listeners) l();
      }
      for (const l of this.#listeners) l();
    })();
  }

  #add(chunk: string): void {
    const room = this.#bounded ? HEAD_CHARS - this.#head.length : Infinity;
    if (chunk.length <= room) {
      this.#head += chunk;
      return;
    }
    this.#head += chunk.slice(0, Math.max(room, 0));
    const tail = this.#tail + chunk.slice(Math.max(room, 0));
    this.#skipped += Math.max(tail.length - TAIL_CHARS, 0);
    this.#tail = tail.slice(-TAIL_CHARS);
  }

  /** The text so far (of a bounded drain: its start and end). */
  text(): string {
    if (this.#tail === "") return this.#head;
    const gap = this.#skipped > 0
      ? `\n[… ${this.#skipped} characters left out …]\n`
      : "";
    return `${this.#head}${gap}${this.#tail}`;
  }

  /**
   * Resolves with the first match of `re` in the text so far or to come (of
   * a bounded drain: in its start); rejects once the stream has ended.
   */
  waitFor(re: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.#head.match(re);
        if (m) {
          this.#listeners.delete(check);
          resolve(m);
        }
      };
      this.#listeners.add(check);
      check();
      const ended = () => {
        this.#listeners.delete(check);
        reject(new Error(`the server exited before printing ${re}`));
      };
      this.done.then(ended, ended);
    });
  }
}

/** The start-up summary's port line. */
const LISTENING_LINE = /^listening on (.+) port (\d+) \(udp\)$/m;
/** The summary's line naming the verify backend. */
const VERIFY_LINE = /^verify: (.*)$/m;
/** The summary's line naming the JSON Lines log; the port line precedes it. */
const LOG_LINE = /^log: (.*)$/m;
/** The console form of the `Ready` record, logged after the summary. */
/** The summary line of the HTTP side: `http: http://HOST:PORT/ (...)`. */
const HTTP_LINE = /^http: (http:\/\/\S+?)\/ /m;
const READY_LINE = /Ready: \d+ groups/;
/** The JSON form of the `Ready` record. */
const READY_RECORD = '"message":"Ready: ';

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
  /** The arguments after `main.ts`. */
  args: string[];
  /** The log directory passed with `--log-dir`. */
  logDir: string;
  /** The JSON Lines log file, as the start-up summary names it. */
  logFile: string;
  /** The state directory passed with `--state-dir`. */
  stateDir: string;
  /** The verify backend in use, from the summary's `verify:` line. */
  verify: string | undefined;
  /** The HTTP side's origin (`http://127.0.0.1:PORT`), with `--http`. */
  http: string | undefined;
  /** Its stdout so far. */
  stdout(): string;
  /** Its stderr so far (empty when not piped). */
  stderr(): string;
  /**
   * Waits (at most 5 s) until stdout matches `re`.
   * @returns All of stdout so far.
   */
  waitForStdout(re: RegExp): Promise<string>;
}

/** What {@linkcode StartedServer.stop} reports. */
export interface StopResult extends CommandResult {
  /** Seconds from SIGTERM to the exit. */
  stopSec: number;
  /** Whether it ignored SIGTERM until the timeout and was killed. */
  killed: boolean;
}

/** A server started by {@linkcode startServer}, to be stopped by the caller. */
export interface StartedServer extends RunningServer {
  /**
   * Sends SIGTERM and waits for the exit, sending SIGKILL after `timeoutMs`
   * (default 10 s). Later calls return the first call's result.
   *
   * @param timeoutMs How long it may take to stop.
   * @returns The exit code, the output and how long the stop took.
   */
  stop(timeoutMs?: number): Promise<StopResult>;
}

/** Options of {@linkcode startServer}. */
export interface StartOptions {
  /** ADDRESS. @default {"127.0.0.1"} */
  hostname?: string;
  /** DIR. @default {"tests/testdata/vectors"} */
  dir?: string;
  /** `--log-dir`. */
  logDir: string;
  /** `--state-dir`. */
  stateDir: string;
  /** Extra server flags, after the others. @default {[]} */
  args?: string[];
  /** The `deno run` permission flags. @default {SERVER_PERMISSIONS} */
  permissions?: readonly string[];
  /** The server's stderr: collected, or the caller's own. @default {"piped"} */
  stderr?: "piped" | "inherit";
  /** Keep only the start and the end of the output. @default {false} */
  boundedOutput?: boolean;
  /** How long the start-up may take. @default {20000} */
  timeoutMs?: number;
}

/** The server exited or hung before it was ready. */
export class ServerStartError extends Error {
  override name = "ServerStartError";
  /** Its stdout. */
  readonly stdout: string;
  /** Its stderr (empty when not piped). */
  readonly stderr: string;

  /**
   * @param reason What went wrong.
   * @param output What the server printed.
   */
  constructor(reason: string, output: { stdout: string; stderr: string }) {
    super(`${reason}\nstdout:\n${output.stdout}\nstderr:\n${output.stderr}`);
    this.stdout = output.stdout;
    this.stderr = output.stderr;
  }
}

/** Whether the JSON log holds the `Ready` record yet. */
async function logIsReady(logFile: string): Promise<boolean> {
  try {
    return (await Deno.readTextFile(logFile)).includes(READY_RECORD);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Waits for the `Ready` record: on stdout, or (when `--log-level` keeps info
 * records off the console) in the JSON log, which gets them whatever the
 * level, within its flush interval.
 */
async function ready(out: Drain, logFile: string): Promise<void> {
  let polling = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const inLog = (async () => {
    while (polling && !await logIsReady(logFile)) {
      await new Promise((resolve) => timer = setTimeout(resolve, 50));
    }
  })();
  try {
    await Promise.race([out.waitFor(READY_LINE), inLog]);
  } finally {
    polling = false;
    clearTimeout(timer);
  }
}

/**
 * Starts `main.ts ADDRESS 0 DIR --log-dir … --state-dir … [args]` as a
 * subprocess in the repository and waits until it is ready: it printed its
 * start-up summary (the bound port, the verify backend, the log file) and
 * logged `Ready`. The caller stops it with
 * {@linkcode StartedServer.stop}.
 *
 * @param options Address, directories, flags and how to run it.
 * @returns The running server.
 * @throws {ServerStartError} When it exits or hangs before it is ready (it
 * is killed then).
 */
export async function startServer(
  options: StartOptions,
): Promise<StartedServer> {
  const {
    hostname = "127.0.0.1",
    dir = "tests/testdata/vectors",
    logDir,
    stateDir,
    permissions = SERVER_PERMISSIONS,
    stderr = "piped",
    boundedOutput = false,
    timeoutMs = START_TIMEOUT_MS,
  } = options;
  const args = [
    hostname,
    "0",
    dir,
    "--log-dir",
    logDir,
    "--state-dir",
    stateDir,
    ...(options.args ?? []),
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, "main.ts", ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr,
  }).spawn();
  const out = new Drain(child.stdout, boundedOutput);
  const err = stderr === "piped"
    ? new Drain(child.stderr, boundedOutput)
    : undefined;
  const deadline = Date.now() + timeoutMs;
  const step = <T>(p: Promise<T>, what: string) =>
    withTimeout(
      p,
      Math.max(deadline - Date.now(), 0),
      `the server did not ${what} in ${timeoutMs / 1000} s`,
    );
  let listening: RegExpMatchArray;
  let logFile: string;
  try {
    listening = await step(out.waitFor(LISTENING_LINE), "print its port");
    logFile = (await step(out.waitFor(LOG_LINE), "print its log file"))[1]!;
    await step(ready(out, logFile), 'log "Ready"');
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await Promise.all([out.done, err?.done]);
    throw new ServerStartError(e instanceof Error ? e.message : String(e), {
      stdout: out.text(),
      stderr: err?.text() ?? "",
    });
  }
  const port = Number(listening[2]);
  let stopping: Promise<StopResult> | undefined;
  return {
    pid: child.pid,
    hostname: listening[1]!,
    port,
    addr: { transport: "udp", hostname, port },
    args,
    logDir,
    logFile,
    stateDir,
    verify: VERIFY_LINE.exec(out.text())?.[1],
    http: HTTP_LINE.exec(out.text())?.[1],
    stdout: () => out.text(),
    stderr: () => err?.text() ?? "",
    waitForStdout: async (re) => {
      await withTimeout(
        out.waitFor(re),
        5_000,
        `the server did not print ${re}\nstdout:\n${out.text()}`,
      );
      return out.text();
    },
    stop: (stopTimeoutMs = STOP_TIMEOUT_MS) =>
      stopping ??= stop(child, [out, err], stopTimeoutMs),
  };
}

/** Sends SIGTERM and waits for the exit, with SIGKILL past `timeoutMs`. */
async function stop(
  child: Deno.ChildProcess,
  [out, err]: [Drain, Drain | undefined],
  timeoutMs: number,
): Promise<StopResult> {
  const started = performance.now();
  try {
    child.kill("SIGTERM");
  } catch {
    // Already exited: the status below tells how.
  }
  let killed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    child.status,
    new Promise<Deno.CommandStatus>((resolve) => {
      timer = setTimeout(() => {
        killed = true;
        try {
          child.kill("SIGKILL");
        } catch {
          // Exited meanwhile.
        }
        resolve(child.status);
      }, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  const stopSec = (performance.now() - started) / 1000;
  await Promise.all([out.done, err?.done]);
  return {
    code: status.code,
    stdout: out.text(),
    stderr: err?.text() ?? "",
    stopSec,
    killed,
  };
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
 * subprocess with {@linkcode startServer} (so nothing is written into DIR),
 * runs `fn` once it is ready, then stops it with SIGTERM and asserts that it
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
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_e2e_" });
  const logDir = `${tmp}/logs`;
  try {
    const server = await startServer({
      ...options,
      logDir,
      stateDir: options.stateDir ?? `${tmp}/state`,
    });
    let failure: { error: unknown } | undefined;
    try {
      await fn(server);
    } catch (error) {
      failure = { error };
    }
    // Stop it whatever happened; a failure of the test body wins.
    const { code, stdout, stderr, killed } = await server.stop();
    if (failure) throw failure.error;
    if (killed) throw new Error("the server did not stop on SIGTERM");
    assert.equal(code, 0, `the server exits 0 on SIGTERM\nstderr:\n${stderr}`);
    return { code, stdout, stderr, log: await readLog(logDir) };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/**
 * Reads a server's JSON Lines log (`udpjwt.jsonl` in its `--log-dir`).
 *
 * @param logDir The log directory.
 * @returns One parsed object per line; none when there is no log file.
 */
export async function readLog(
  logDir: string,
): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${logDir}/udpjwt.jsonl`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}
