/**
 * udpjwt: the command line. Dispatches to a subcommand (`serve` when none is
 * named) and maps errors to exit codes: a user's mistake ends as one line on
 * stderr and exit code 2 (usage) or 1 (environment); anything else is a bug
 * and keeps its stack trace.
 *
 * @module
 */

import { ConfigError, type Io } from "./lib/cli/errors.ts";
import { USAGE } from "./lib/cli/config.ts";
import { runKeygen } from "./lib/cli/keygen.ts";
import { runKeys } from "./lib/cli/keys.ts";
import { runSend } from "./lib/cli/send.ts";
import { runServe } from "./lib/cli/serve.ts";
import { runStatus } from "./lib/cli/status.ts";

/** The subcommands, each taking the arguments after its name. */
const COMMANDS: ReadonlyMap<
  string,
  (args: string[], io: Io) => Promise<number>
> = new Map([
  ["serve", runServe],
  ["send", runSend],
  ["keygen", runKeygen],
  ["keys", runKeys],
  ["status", runStatus],
]);

/**
 * Whether a first argument can be the server's ADDRESS rather than a
 * mistyped subcommand: an IP address, `localhost`, or a host name with a dot.
 */
function looksLikeAddress(arg: string): boolean {
  return arg === "localhost" || arg.includes(".") || arg.includes(":");
}

/** Console output for the subcommands. */
const io: Io = {
  // deno-lint-ignore no-console
  out: (line) => console.log(line),
  // deno-lint-ignore no-console
  err: (line) => console.error(line),
};

/**
 * Runs the command line.
 *
 * @param args The arguments after the program name.
 * @returns The process exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  const [first, ...rest] = args;
  try {
    if (first !== undefined && COMMANDS.has(first) && first !== "serve") {
      return await COMMANDS.get(first)!(rest, io);
    }
    if (
      first !== undefined && first !== "serve" && !first.startsWith("-") &&
      !looksLikeAddress(first)
    ) {
      throw new ConfigError(
        `Unknown command "${first}": expected ${
          [...COMMANDS.keys()].join(", ")
        }, or an ADDRESS to serve on (an IP address, localhost, or a host name with a dot)`,
        { showUsage: true },
      );
    }
    return await runServe([...args], io);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.err(`udpjwt: ${e.message}`);
    if (e.showUsage) io.err(`\n${e.usage ?? USAGE}`);
    return e.exitCode;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
