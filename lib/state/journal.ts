/**
 * Durable group state: an append-only journal with group commit, compacted
 * into a snapshot. Each journal line is `<crc32> <json>\n` holding one
 * accepted event with a sequence number; the snapshot holds every group's
 * record, the last sequence number it includes, and the unexpired answers of
 * the retransmission cache. A line is acknowledged (its promise resolves)
 * only after the batch that holds it was written and fsync'd.
 *
 * At start-up a torn or damaged tail is cut off and moved aside to
 * `journal.jsonl.damaged-<time>`; the valid prefix is kept.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import type { ReplayEntry } from "./replay.ts";
import {
  applyEvent,
  emptyRecord,
  type GroupEvent,
  type GroupRecord,
  MemoryStore,
  type StateStore,
} from "./store.ts";

/** One journal line, decoded. */
export interface JournalEntry {
  /** Sequence number, increasing by one per line. */
  seq: number;
  /** The upper-case group. */
  group: string;
  /** The event. */
  event: GroupEvent;
}

/** The result of {@linkcode parseJournal}. */
export interface ParsedJournal {
  /** Valid entries, in order. */
  entries: JournalEntry[];
  /** Length in bytes of the valid prefix. */
  validLength: number;
  /** Why the rest of the file is not valid, when it is not empty. */
  damage?: string;
}

/** The snapshot file's contents. */
export interface Snapshot {
  /** Format version. */
  version: 1;
  /** The last journal sequence number included. */
  seq: number;
  /** Every group's record. */
  groups: Record<string, GroupRecord>;
  /** The newest unexpired cached answers (reply as text). */
  replay: {
    token: string;
    group: string;
    jti: string;
    reply: string | null;
    expiresAt: number;
  }[];
}

const encoder = new TextEncoder();

/**
 * Cached answers kept in a snapshot: the newest ones, enough for every
 * group's retransmissions after a restart while keeping a compaction to a
 * few megabytes of JSON (it runs on the event loop).
 */
const SNAPSHOT_REPLAY = 4096;

/** CRC-32 (IEEE, as zlib) of a line's UTF-8 bytes, as 8 hex digits. */
function crc32Hex(text: string): string {
  return crc32(text).toString(16).padStart(8, "0");
}
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes one journal line.
 *
 * @param entry The sequence number, group and event.
 * @returns The line, newline included.
 */
export function encodeJournalLine(entry: JournalEntry): string {
  const { seq, group, event: e } = entry;
  const json = JSON.stringify({
    seq,
    g: group,
    s: e.state,
    r: e.registration,
    w: e.completedWalk,
    t: e.at.toISOString(),
    ...(e.unlisted ? { u: true } : {}),
    ...(e.replay
      ? {
        tok: e.replay.token,
        jti: e.replay.jti,
        rep: e.replay.reply ? decoder.decode(e.replay.reply) : null,
        exp: e.replay.expiresAt,
      }
      : {}),
  });
  return `${crc32Hex(json)} ${json}\n`;
}

function decodeLine(line: Uint8Array): JournalEntry {
  const text = decoder.decode(line);
  const crc = text.slice(0, 8);
  const json = text.slice(9);
  if (text[8] !== " " || crc32Hex(json) !== crc) {
    throw new SyntaxError("checksum mismatch");
  }
  const o = JSON.parse(json);
  const ok = Number.isSafeInteger(o.seq) && typeof o.g === "string" &&
    Number.isInteger(o.s) && typeof o.r === "number" &&
    typeof o.w === "boolean" && typeof o.t === "string";
  if (!ok) throw new SyntaxError("unexpected fields");
  const event: GroupEvent = {
    state: o.s,
    registration: o.r,
    completedWalk: o.w,
    at: new Date(o.t),
    ...(o.u ? { unlisted: true } : {}),
    ...(typeof o.tok === "string"
      ? {
        replay: {
          token: o.tok,
          group: o.g,
          jti: String(o.jti),
          reply: typeof o.rep === "string" ? encoder.encode(o.rep) : null,
          expiresAt: Number(o.exp),
        },
      }
      : {}),
  };
  return { seq: o.seq, group: o.g, event };
}

/**
 * Decodes a journal, stopping at the first line that is torn (no final
 * newline), fails its checksum, or breaks the sequence.
 *
 * @param bytes The journal file's contents.
 * @returns The valid entries, the valid length and the damage found.
 */
export function parseJournal(bytes: Uint8Array): ParsedJournal {
  const entries: JournalEntry[] = [];
  let pos = 0;
  let line = 1;
  while (pos < bytes.length) {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) {
      return {
        entries,
        validLength: pos,
        damage: `line ${line} is torn (no newline)`,
      };
    }
    let entry: JournalEntry;
    try {
      entry = decodeLine(bytes.subarray(pos, end));
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return { entries, validLength: pos, damage: `line ${line}: ${why}` };
    }
    const previous = entries.at(-1);
    if (previous && entry.seq !== previous.seq + 1) {
      return {
        entries,
        validLength: pos,
        damage: `line ${line}: sequence ${entry.seq} after ${previous.seq}`,
      };
    }
    entries.push(entry);
    pos = end + 1;
    line++;
  }
  return { entries, validLength: pos };
}

/** Options of {@linkcode JournalStore.open}. */
export interface JournalOptions {
  /**
   * Whether to fsync each batch; off trades durability for speed.
   * @default {true}
   */
  fsync?: boolean;
  /**
   * Journal lines after which the state is compacted into the snapshot.
   * @default {10000}
   */
  compactEvery?: number;
  /** The clock, in seconds, to drop expired cached answers. */
  nowSec?: () => number;
  /** The cached answers to keep in snapshots. */
  replayEntries?: () => ReplayEntry[];
}

/** The result of {@linkcode JournalStore.open}. */
export interface OpenedJournal {
  /** The store. */
  store: JournalStore;
  /** Unexpired cached answers found on disk, oldest first. */
  replay: ReplayEntry[];
  /** Problems found and repaired, each naming the file. */
  warnings: string[];
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/** A state store that survives restarts and crashes. */
export class JournalStore implements StateStore {
  #dir: string;
  #file: Deno.FsFile;
  #memory: MemoryStore;
  #seq: number;
  #linesSinceSnapshot: number;
  #fsync: boolean;
  #compactEvery: number;
  #replayEntries: () => ReplayEntry[];
  #nowSec: () => number;
  #batch: { line: string; done: PromiseWithResolvers<void> }[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  /** Batches written, and fsyncs done. */
  readonly stats = { batches: 0, lines: 0, compactions: 0 };

  private constructor(
    dir: string,
    file: Deno.FsFile,
    memory: MemoryStore,
    seq: number,
    options: JournalOptions,
  ) {
    this.#dir = dir;
    this.#file = file;
    this.#memory = memory;
    this.#seq = seq;
    this.#linesSinceSnapshot = 0;
    this.#fsync = options.fsync ?? true;
    this.#compactEvery = options.compactEvery ?? 10_000;
    this.#replayEntries = options.replayEntries ?? (() => []);
    this.#nowSec = options.nowSec ?? (() => Date.now() / 1000);
  }

  /** The journal file path. */
  static journalPath(dir: string): string {
    return `${dir}/journal.jsonl`;
  }

  /** The snapshot file path. */
  static snapshotPath(dir: string): string {
    return `${dir}/snapshot.json`;
  }

  /**
   * Opens (or creates) the state directory, recovers from the snapshot and
   * the journal, repairs a damaged tail, and compacts.
   *
   * @param dir The state directory.
   * @param options Durability and compaction settings.
   * @returns The store, the cached answers on disk, and warnings.
   */
  static async open(
    dir: string,
    options?: JournalOptions,
  ): Promise<OpenedJournal> {
    const opts = options ?? {};
    const nowSec = opts.nowSec ?? (() => Date.now() / 1000);
    await Deno.mkdir(dir, { recursive: true });
    const warnings: string[] = [];
    const snapFile = JournalStore.snapshotPath(dir);
    let snap: Snapshot = { version: 1, seq: 0, groups: {}, replay: [] };
    try {
      const o = JSON.parse(await Deno.readTextFile(snapFile)) as Snapshot;
      if (o.version !== 1 || !Number.isSafeInteger(o.seq) || !o.groups) {
        throw new SyntaxError("unexpected format");
      }
      snap = { ...o, replay: o.replay ?? [] };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        const aside = `${snapFile}.damaged-${stamp()}`;
        await Deno.rename(snapFile, aside);
        warnings.push(
          `State snapshot "${snapFile}" is unreadable (${e}): moved to "${aside}"; starting from the journal`,
        );
      }
    }
    const journalFile = JournalStore.journalPath(dir);
    let bytes = new Uint8Array();
    try {
      bytes = await Deno.readFile(journalFile);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const parsed = parseJournal(bytes);
    if (parsed.damage) {
      const aside = `${journalFile}.damaged-${stamp()}`;
      await Deno.writeFile(aside, bytes.subarray(parsed.validLength));
      await Deno.truncate(journalFile, parsed.validLength);
      warnings.push(
        `State journal "${journalFile}" has a damaged tail at byte ${parsed.validLength} (${parsed.damage}): kept the ${parsed.entries.length} valid lines, moved ${
          bytes.length - parsed.validLength
        } bytes to "${aside}"`,
      );
    }
    const groups = snap.groups;
    const replay: ReplayEntry[] = snap.replay.map((r) => ({
      ...r,
      reply: r.reply === null ? null : encoder.encode(r.reply),
    }));
    let seq = snap.seq;
    for (const { seq: s, group, event } of parsed.entries) {
      if (s <= seq) continue; // already in the snapshot
      seq = s;
      applyEvent(groups[group] ??= emptyRecord(), event);
      if (event.replay) replay.push(event.replay);
    }
    const now = nowSec();
    const live = replay.filter((r) => r.expiresAt >= now);
    const file = await Deno.open(journalFile, {
      append: true,
      create: true,
    });
    const store = new JournalStore(
      dir,
      file,
      new MemoryStore(groups),
      seq,
      opts,
    );
    if (parsed.entries.length > 0) await store.#compact(live);
    return { store, replay: live, warnings };
  }

  state(group: string): number {
    return this.#memory.state(group);
  }

  snapshot(): Record<string, GroupRecord> {
    return this.#memory.snapshot();
  }

  record(group: string, event: GroupEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the store is closed"));
    this.#memory.record(group, event);
    this.#seq++;
    const done = Promise.withResolvers<void>();
    this.#batch.push({
      line: encodeJournalLine({ seq: this.#seq, group, event }),
      done,
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      // Group commit: the batch starts at once; events arriving while it is
      // written and fsync'd form the next batch.
      queueMicrotask(() => {
        this.#chain = this.#chain.then(() => this.#commit());
      });
    }
    return done.promise;
  }

  async #commit(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0) return;
    try {
      await writeAll(
        this.#file,
        encoder.encode(batch.map((b) => b.line).join("")),
      );
      if (this.#fsync) await this.#file.syncData();
      this.stats.batches++;
      this.stats.lines += batch.length;
      this.#linesSinceSnapshot += batch.length;
      for (const b of batch) b.done.resolve();
    } catch (e) {
      for (const b of batch) b.done.reject(e);
      return;
    }
    if (this.#linesSinceSnapshot >= this.#compactEvery) {
      await this.#compact(this.#replayEntries());
    }
  }

  /** Writes the snapshot atomically, then empties the journal. */
  async #compact(replay: ReplayEntry[]): Promise<void> {
    const snap: Snapshot = {
      version: 1,
      seq: this.#seq,
      groups: this.#memory.snapshot(),
      replay: replay.slice(-SNAPSHOT_REPLAY).map((r) => ({
        token: r.token,
        group: r.group,
        jti: r.jti,
        reply: r.reply === null ? null : decoder.decode(r.reply),
        expiresAt: r.expiresAt,
      })),
    };
    const path = JournalStore.snapshotPath(this.#dir);
    const tmp = `${path}.tmp`;
    const f = await Deno.open(tmp, {
      write: true,
      create: true,
      truncate: true,
    });
    try {
      await writeAll(f, encoder.encode(JSON.stringify(snap)));
      if (this.#fsync) await f.syncData();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
    // Lines up to snap.seq are now in the snapshot; recovery skips them even
    // if the process dies before the truncation below.
    await this.#file.truncate(0);
    if (this.#fsync) await this.#file.syncData();
    this.#linesSinceSnapshot = 0;
    this.stats.compactions++;
  }

  /** Commits what is pending, compacts, and closes the journal. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#chain = this.#chain.then(() => this.#commit());
    await this.#chain;
    await this.#compact(this.#replayEntries());
    this.#file.close();
  }
}
