/**
 * `udpjwt status`: each group's progress from the server's durable state,
 * read without changing it. `JournalStore.open` repairs and compacts the
 * state directory, so this module has its own read-only loader: it reads
 * `snapshot.json`, replays the valid lines of `journal.jsonl` on top (the
 * server may be running and appending), and never writes.
 *
 * @module
 */

import { formatTable, joinPath, labDirArgument, parseFlags } from "./_flags.ts";
import { ConfigError, type Io } from "./errors.ts";
import { colourOf } from "../protocol/fsm.ts";
import { JournalStore, type Snapshot } from "../state/journal.ts";
import { parseJournal } from "../state/journal_format.ts";
import { loadRoster, type Roster } from "../state/roster.ts";
import { applyEvent, emptyRecord, type GroupRecord } from "../state/store.ts";

/** The state directory as read. */
export interface LoadedState {
  /** Every group's record. */
  groups: Record<string, GroupRecord>;
  /** The last journal sequence number in the snapshot (0 without one). */
  snapshotSeq: number;
  /** Journal lines applied on top of the snapshot. */
  journalLines: number;
  /** Problems found (a damaged snapshot, a torn journal tail). */
  warnings: string[];
}

/** One registration number a group sent, or should have sent. */
export interface RegistrationStatus {
  /**
   * The registration number (a string only for a profile v1 `matricula`
   * that is not a plain safe integer, such as `"007"`).
   */
  registration: number | string;
  /** First time seen (ISO), or null when never seen. */
  first: string | null;
  /** Last time seen (ISO), or null when never seen. */
  last: string | null;
  /** True when a roster exists for the group and does not list it. */
  unlisted: boolean;
}

/** One group's progress. */
export interface GroupStatus {
  /** The upper-case group name. */
  group: string;
  /** The FSM state. */
  state: number;
  /** The state's colour (`-` for a profile v1 group: v1 has none). */
  colour: string;
  /**
   * Profile v1 groups only: M, the final state of the group's machine (the
   * roster's member count or the `seq_max` of its last accepted request).
   */
  seqMax?: number;
  /** Completed walks. */
  walks: number;
  /** Times (ISO) of the latest completed walks (at most 100). */
  walkTimes: string[];
  /** Registrations received, in number order. */
  registrations: RegistrationStatus[];
  /** Roster members not seen yet (empty without a roster). */
  missing: number[];
  /** The roster's member count, when the group has a roster entry. */
  members: number | null;
  /** The time (ISO) of the last accepted request, or null. */
  lastActivity: string | null;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

async function readOptional(file: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

function parseSnapshot(
  bytes: Uint8Array | undefined,
  file: string,
  warnings: string[],
): Snapshot {
  const empty: Snapshot = { version: 1, seq: 0, groups: {}, replay: [] };
  if (bytes === undefined) return empty;
  try {
    const o = JSON.parse(decoder.decode(bytes)) as Snapshot;
    if (o.version !== 1 || !Number.isSafeInteger(o.seq) || !o.groups) {
      throw new SyntaxError("unexpected format");
    }
    return o;
  } catch (e) {
    warnings.push(
      `State snapshot "${file}" is unreadable (${e}): showing the journal only; the server moves it aside at its next start`,
    );
    return empty;
  }
}

/**
 * Reads a state directory without modifying it: the snapshot, then the
 * journal lines after it. A torn or damaged journal tail is reported and
 * ignored, as the server would at its next start.
 *
 * @param dir The state directory.
 * @returns The groups' records and what was read.
 * @throws {Deno.errors.NotFound} When the directory does not exist.
 */
export async function readState(dir: string): Promise<LoadedState> {
  const info = await Deno.stat(dir);
  if (!info.isDirectory) {
    throw new Deno.errors.NotFound(`"${dir}" is not a directory`);
  }
  const snapFile = JournalStore.snapshotPath(dir);
  const journalFile = JournalStore.journalPath(dir);
  // A running server may compact between the two reads: the snapshot then
  // jumps ahead of the journal we read (a gap in sequence numbers). Read
  // again in that case.
  for (let attempt = 0;; attempt++) {
    const warnings: string[] = [];
    const snap = parseSnapshot(
      await readOptional(snapFile),
      snapFile,
      warnings,
    );
    const bytes = await readOptional(journalFile) ?? new Uint8Array();
    const parsed = parseJournal(bytes);
    const first = parsed.entries[0];
    if (first && first.seq > snap.seq + 1 && attempt < 3) continue;
    if (parsed.damage) {
      warnings.push(
        `State journal "${journalFile}" has a damaged or unfinished tail at byte ${parsed.validLength} (${parsed.damage}): ignored (if the server is running, it may be writing it right now)`,
      );
    }
    const groups = snap.groups;
    let applied = 0;
    for (const { seq, group, event } of parsed.entries) {
      if (seq <= snap.seq) continue; // already in the snapshot
      applyEvent(groups[group] ??= emptyRecord(), event);
      applied++;
    }
    return { groups, snapshotSeq: snap.seq, journalLines: applied, warnings };
  }
}

/**
 * Turns the records (and the roster, when there is one) into per-group
 * progress: groups in the state, plus roster groups never seen.
 *
 * @param groups The records by group.
 * @param roster The roster, if configured.
 * @returns One entry per group, in name order.
 */
export function summarize(
  groups: Readonly<Record<string, GroupRecord>>,
  roster?: Roster,
): GroupStatus[] {
  const names = new Set([...Object.keys(groups), ...(roster?.keys() ?? [])]);
  return [...names].sort().map((group) => {
    const rec = groups[group] ?? emptyRecord();
    const members = roster?.get(group);
    const registrations = Object.entries(rec.registrations)
      .map(([key, r]) => {
        const registration = registrationOf(key);
        return {
          registration,
          first: r.first,
          last: r.last,
          // The roster may have changed since: judge by the current one.
          unlisted: members
            ? typeof registration !== "number" || !members.has(registration)
            : r.unlisted === true,
        };
      })
      .sort(byRegistration);
    const seen = new Set(registrations.map((r) => r.registration));
    return {
      group,
      state: rec.state,
      colour: rec.seqMax === undefined ? colourOf(rec.state) : "-",
      ...(rec.seqMax === undefined ? {} : { seqMax: rec.seqMax }),
      walks: rec.walkCount ?? rec.walks.length,
      walkTimes: [...rec.walks],
      registrations,
      missing: members
        ? [...members].filter((m) => !seen.has(m)).sort((a, b) => a - b)
        : [],
      members: members ? members.size : null,
      lastActivity: rec.lastActivity,
    };
  });
}

/** A recorded registration key as a number, unless it is not a plain one. */
function registrationOf(key: string): number | string {
  const n = Number(key);
  return Number.isSafeInteger(n) && String(n) === key ? n : key;
}

/** Numbers in order, then the digit strings (profile v1) by value. */
function byRegistration(
  a: { registration: number | string },
  b: { registration: number | string },
): number {
  const x = a.registration;
  const y = b.registration;
  if (typeof x === "number" && typeof y === "number") return x - y;
  if (typeof x === "number") return -1;
  if (typeof y === "number") return 1;
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

/** The usage text of `udpjwt status`. */
export const STATUS_USAGE = `Usage: udpjwt status [DIR] [options]

Shows each group's progress from the server's durable state: state number
and colour (for a --profile v1 group, its state out of M instead), walks
completed, registrations received (with the roster, also
the missing ones, and registrations it does not list flagged "unlisted"),
and the last activity. Reads the state without changing it, so it is safe
while the server runs.

Arguments:
  DIR                    lab directory (default .)

Options:
  --state-dir DIR        the server's state (default DIR/state)
  --roster FILE          the roster, if any (default DIR/groups.json)
  --json                 one JSON object instead of the table
  -h, --help             show this help`;

function registrationsText(g: GroupStatus): string {
  const received = g.registrations.length;
  return g.members === null ? String(received) : `${received}/${g.members}`;
}

/**
 * Runs `udpjwt status`.
 *
 * @param args The arguments after `status`.
 * @param io Where to print.
 * @returns 0.
 * @throws {ConfigError} On a usage error (exit code 2), or a missing state
 * directory or unreadable roster (exit code 1).
 */
export async function runStatus(args: string[], io: Io): Promise<number> {
  const u = STATUS_USAGE;
  const { values: v, positionals } = parseFlags(args, {
    "state-dir": { type: "string" },
    roster: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, u);
  if (v.help) {
    io.out(u);
    return 0;
  }
  const dir = labDirArgument(positionals, u);
  const stateDir = v["state-dir"] ?? joinPath(dir, "state");
  const rosterFile = v.roster ?? joinPath(dir, "groups.json");
  let state: LoadedState;
  try {
    state = await readState(stateDir);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "directory not found (has the server run with this --state-dir?)"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new ConfigError(
      `Cannot read the state directory "${stateDir}": ${why}: pass the lab directory or --state-dir`,
      { exitCode: 1, cause: e },
    );
  }
  const roster = await loadRoster(rosterFile);
  const groups = summarize(state.groups, roster);
  if (v.json) {
    io.out(JSON.stringify({
      stateDir,
      roster: roster ? rosterFile : null,
      snapshotSeq: state.snapshotSeq,
      journalLines: state.journalLines,
      warnings: state.warnings,
      groups,
    }));
    return 0;
  }
  io.out(
    `state: ${stateDir} (snapshot at journal sequence ${state.snapshotSeq}, ${state.journalLines} journal lines after it)`,
  );
  io.out(
    roster
      ? `roster: ${rosterFile} (${roster.size} groups)`
      : `roster: none (${rosterFile} not found)`,
  );
  for (const w of state.warnings) io.out(`warning: ${w}`);
  if (groups.length === 0) {
    io.out("no group has had a request accepted yet");
    return 0;
  }
  // Profile v1 groups add a column M; a protocol 2 lab's table is unchanged.
  const v1 = groups.some((g) => g.seqMax !== undefined);
  const table = formatTable([
    [
      "GROUP",
      "STATE",
      ...(v1 ? ["M"] : []),
      "COLOUR",
      "WALKS",
      "REGISTRATIONS",
      "LAST ACTIVITY",
    ],
    ...groups.map((g) => [
      g.group,
      String(g.state),
      ...(v1 ? [g.seqMax === undefined ? "-" : String(g.seqMax)] : []),
      g.colour,
      String(g.walks),
      registrationsText(g),
      g.lastActivity ?? "never",
    ]),
  ]);
  io.out(table[0]!);
  groups.forEach((g, i) => {
    io.out(table[i + 1]!);
    const received = g.registrations.map((r) =>
      r.unlisted ? `${r.registration} (unlisted)` : String(r.registration)
    );
    if (received.length > 0) io.out(`  received: ${received.join(", ")}`);
    if (g.missing.length > 0) io.out(`  missing: ${g.missing.join(", ")}`);
  });
  return 0;
}
