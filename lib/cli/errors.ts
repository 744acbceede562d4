/**
 * Errors of the command line: a start-up problem reported as one line and an
 * exit code, where the subcommands print, and file errors in words.
 *
 * @module
 */

/**
 * A start-up problem caused by the user (a bad flag, a missing file): printed
 * as one line without a stack, then the process exits with `exitCode`.
 */
export class ConfigError extends Error {
  /** The process exit code: 2 for usage errors, 1 for environment problems. */
  readonly exitCode: number;
  /** Whether the usage text should follow the message. */
  readonly showUsage: boolean;
  /** The usage text of a subcommand, instead of the server's. */
  readonly usage: string | undefined;

  /**
   * @param message What failed and how to fix it.
   * @param options `exitCode` (default 2), `showUsage` (default false) and
   * the subcommand's `usage`.
   */
  constructor(
    message: string,
    options?: {
      exitCode?: number;
      showUsage?: boolean;
      usage?: string;
      cause?: unknown;
    },
  ) {
    super(message, { cause: options?.cause });
    this.name = "ConfigError";
    this.exitCode = options?.exitCode ?? 2;
    this.showUsage = options?.showUsage ?? false;
    this.usage = options?.usage;
  }
}

/** Where the subcommands print: injected so they stay testable. */
export interface Io {
  /** Prints a line on stdout. */
  out(line: string): void;
  /** Prints a line on stderr. */
  err(line: string): void;
}

/**
 * Why a file operation failed, in words for an error message.
 *
 * @param e The error thrown by a `Deno` file function.
 * @param what What was missing, for `NotFound` (e.g. "directory").
 * @returns e.g. `file not found`, `permission denied`, or the error's message.
 */
export function fileProblem(e: unknown, what = "file"): string {
  if (e instanceof Deno.errors.NotFound) return `${what} not found`;
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return e instanceof Error ? e.message : String(e);
}
