/**
 * Flag parsing shared by the subcommands (`send`, `keygen`, `keys`,
 * `status`): `node:util`'s `parseArgs` with its errors turned into usage
 * errors that carry the subcommand's usage text, and range-checked numbers.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { ConfigError } from "./errors.ts";
import { KEY_ALGORITHMS, type KeyAlgorithm } from "../keys/public_key.ts";

/**
 * A usage error (exit code 2) followed by a subcommand's usage text.
 *
 * @param message What is wrong and how to fix it.
 * @param usage The subcommand's usage text.
 * @returns The error, to throw.
 */
export function usageError(message: string, usage: string): ConfigError {
  return new ConfigError(message, { exitCode: 2, showUsage: true, usage });
}

/**
 * Parses a subcommand's arguments strictly, positionals allowed.
 *
 * @param args The arguments after the subcommand's name.
 * @param options The flags, as `parseArgs` takes them.
 * @param usage The usage text shown after an error.
 * @returns The flag values and the positionals.
 * @throws {ConfigError} With exit code 2 on an unknown flag or a missing value.
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(
  args: readonly string[],
  options: T,
  usage: string,
): ReturnType<
  typeof parseArgs<
    { args: string[]; options: T; allowPositionals: true; strict: true }
  >
> {
  try {
    return parseArgs({
      args: [...args],
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    // node:util explains the problem; keep its first sentence only.
    const message = e instanceof Error ? e.message.split(". ")[0] : String(e);
    throw usageError(message || "Invalid arguments", usage);
  }
}

/**
 * Reads a whole number in a range; `undefined` gives the fallback.
 *
 * @param flag The flag or argument name, for the message.
 * @param value The text given.
 * @param fallback The default.
 * @param range The smallest and largest value accepted, and the usage text.
 * @returns The number.
 * @throws {ConfigError} With exit code 2 when it is not a whole number in range.
 */
export function wholeNumber(
  flag: string,
  value: string | undefined,
  fallback: number,
  range: { min: number; max: number; usage: string },
): number {
  if (value === undefined) return fallback;
  const { min, max, usage } = range;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(
      `Invalid value for ${flag}: "${value}": expected a whole number from ${min} to ${max}`,
      usage,
    );
  }
  return n;
}

/**
 * Reads an --alg value in any case; `Ed25519` names EdDSA.
 *
 * @param value The text given.
 * @param usage The subcommand's usage text, for the error.
 * @returns The algorithm.
 * @throws {ConfigError} With exit code 2 when it is none of KEY_ALGORITHMS.
 */
export function algorithmFlag(value: string, usage: string): KeyAlgorithm {
  const upper = value.toUpperCase();
  const alg = upper === "ED25519" || upper === "EDDSA"
    ? "EdDSA"
    : KEY_ALGORITHMS.find((name) => name === upper);
  if (alg === undefined) {
    throw usageError(
      `Invalid value for --alg: "${value}": expected one of ${
        KEY_ALGORITHMS.join(", ")
      }`,
      usage,
    );
  }
  return alg;
}

/**
 * The optional lab directory argument of `keys` and `status`.
 *
 * @param positionals The positional arguments.
 * @param usage The subcommand's usage text, for the error.
 * @returns The directory, `.` when absent.
 * @throws {ConfigError} (exit code 2) When more than one is given.
 */
export function labDirArgument(
  positionals: readonly string[],
  usage: string,
): string {
  if (positionals.length > 1) {
    throw usageError(
      `Too many arguments: "${positionals.slice(1).join(" ")}": expected DIR`,
      usage,
    );
  }
  return positionals[0] ?? ".";
}

/**
 * Joins a lab directory and a name, keeping `.` out of the result.
 *
 * @param dir The directory.
 * @param name The name inside it.
 * @returns The path.
 */
export function joinPath(dir: string, name: string): string {
  return dir === "." ? name : `${dir.replace(/[\\/]+$/, "")}/${name}`;
}

/**
 * Pads the columns of a table to their widest cell; the last column is not
 * padded.
 *
 * @param rows The rows, the header first.
 * @returns One line per row.
 */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!))
      .join("  ").trimEnd()
  );
}
