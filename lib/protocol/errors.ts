/**
 * Error types shared by the server: the protocol's error codes, the error a
 * request fails with, and the error a start-up problem is reported with.
 *
 * @module
 */

/** The stable codes of PROTOCOL.md §5, sent as the `error` claim. */
export type ErrorCode =
  | "MALFORMED_TOKEN"
  | "ALG_NOT_ALLOWED"
  | "MISSING_CLAIM"
  | "BAD_CLAIM"
  | "UNKNOWN_GROUP"
  | "BAD_SIGNATURE"
  | "BAD_AUDIENCE"
  | "TOKEN_EXPIRED"
  | "TOKEN_NOT_YET_VALID"
  | "SEQ_MAX_MISMATCH"
  | "JTI_REUSED";

/**
 * A request that the protocol rejects. `code` becomes the `error` claim of the
 * answer and `message` the text after `ERROR:` in its `response` claim.
 */
export class ProtocolError extends Error {
  /** The protocol's error code. */
  readonly code: ErrorCode;

  /**
   * @param code The protocol error code.
   * @param message A human-readable reason, without the `ERROR:` prefix.
   * @param options Standard error options (`cause`).
   */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

ProtocolError.prototype.name = "ProtocolError";

/**
 * Makes a {@linkcode ProtocolError} without running the `Error` constructor:
 * these are a client's mistakes, answered and logged by code, and a flood of
 * them should not pay for stack traces nobody reads (constructing an `Error`
 * costs about 3 µs in Deno even with `Error.stackTraceLimit = 0`, a fifth of
 * the server's time under a garbage flood). The result is an `instanceof`
 * both `ProtocolError` and `Error`, with `code`, `message`, `name` and
 * `cause`, and no `stack`.
 *
 * @param code The protocol error code.
 * @param message A human-readable reason, without the `ERROR:` prefix.
 * @param options Standard error options (`cause`).
 * @returns The error, to throw.
 */
export function protocolError(
  code: ErrorCode,
  message: string,
  options?: ErrorOptions,
): ProtocolError {
  const error = Object.create(ProtocolError.prototype);
  error.code = code;
  error.message = message;
  if (options && "cause" in options) error.cause = options.cause;
  return error;
}

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
