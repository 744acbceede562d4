/**
 * The optional roster `DIR/groups.json`: each group's members by
 * registration number. With a roster, `seq_max` must equal the group's member
 * count, and registrations it does not list are flagged (still accepted).
 *
 * Format:
 * ```json
 * { "groups": { "HEARTBEAT": [20230001, 20230002], "CHEDIMON": [20230003] } }
 * ```
 *
 * @example
 * ```ts
 * import { parseRoster } from "./roster.ts";
 * const roster = parseRoster('{"groups":{"heartbeat":[1,2]}}', "groups.json");
 * roster.get("HEARTBEAT")?.size; // 2
 * ```
 *
 * @module
 */

import { ConfigError, fileProblem } from "../cli/errors.ts";
import { GROUP_NAME } from "../keys/key_ring.ts";

/** Members' registration numbers by upper-case group name. */
export type Roster = ReadonlyMap<string, ReadonlySet<number>>;

/**
 * Parses and validates a roster file's text.
 *
 * @param text The file contents.
 * @param file The file name, for messages.
 * @returns The roster.
 * @throws {SyntaxError} Naming the file and the entry at fault.
 */
export function parseRoster(text: string, file: string): Roster {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Cannot parse roster "${file}": ${e}`);
  }
  const groups = (o as { groups?: unknown } | null)?.groups;
  if (typeof groups !== "object" || groups === null || Array.isArray(groups)) {
    throw new SyntaxError(
      `Roster "${file}" must be {"groups": {"<GROUP>": [<registration>, ...]}}`,
    );
  }
  const roster = new Map<string, Set<number>>();
  for (const [name, members] of Object.entries(groups)) {
    const group = name.toUpperCase();
    if (!GROUP_NAME.test(group)) {
      throw new SyntaxError(`Roster "${file}": "${name}" is not a group name`);
    }
    if (
      !Array.isArray(members) || members.length === 0 ||
      !members.every((m) => Number.isInteger(m))
    ) {
      throw new SyntaxError(
        `Roster "${file}": group "${name}" must list its members' registration numbers as integers`,
      );
    }
    roster.set(group, new Set(members));
  }
  return roster;
}

/**
 * Reads the roster file, if there is one.
 *
 * @param file The roster's path.
 * @returns The roster, or undefined when the file does not exist.
 * @throws {ConfigError} (exit code 1) When it cannot be read or parsed.
 */
export async function loadRoster(file: string): Promise<Roster | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new ConfigError(
      `Cannot read the roster "${file}": ${fileProblem(e)}`,
      { exitCode: 1, cause: e },
    );
  }
  try {
    return parseRoster(text, file);
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e), {
      exitCode: 1,
      cause: e,
    });
  }
}
