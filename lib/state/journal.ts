/**
 * Durable group state: an append-only journal with group commit, compacted
 * into a snapshot. Each journal line is `<crc32> <json>\n` holding one
 * accepted event with a sequence number; the snapshot holds every group's
 * record, the last sequence number it includes, and the unexpired answers of
 * the retransmission cache. A line is acknowledged (its promise resolves)
 * only after the batch that holds it was written and fsync'd.
 *
 * At start-up, damaged lines (a torn tail, a failed checksum) are set aside in
 * `journal.jsonl.damaged-<time>` and every whole, valid line is kept, also
 * those after a damaged one. A write that fails (a full disk) is cut back to
 * the last whole line before the next append, and the steps it held are
 * refused, never acknowledged.
 *
 * @module
 */

import { encodeJournalLine, parseJournal } from "./journal_format.ts";
import type { ReplayEntry } from "./replay.ts";
import {
  applyEvent,
  emptyRecord,
  type GroupEvent,
  type GroupRecord,
  MemoryStore,
  type StateStore,
  type StoreHealth,
} from "./store.ts";

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
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Cached answers kept in a snapshot: the newest ones, enough for every
 * group's retransmissions after a restart while keeping a compaction to a
 * few megabytes of JSON (it runs on the event loop).
 */
const SNAPSHOT_REPLAY = 4096;

/** The file operations the store uses; `Deno.FsFile` has them. */
export type JournalFile = Pick<
  Deno.FsFile,
  "writeSync" | "truncate" | "syncData" | "syncDataSync" | "close"
>;

/** Where the store reports a disk that cannot be written (a LogTape logger). */
export interface JournalLog {
  /** An error, with properties. */
  error(message: string, properties: Record<string, unknown>): void;
  /** A warning, with properties. */
  warn(message: string, properties: Record<string, unknown>): void;
  /** A notice, with properties. */
  info(message: string, properties: Record<string, unknown>): void;
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
  /**
   * A monotonic clock in milliseconds, for the retry backoff and the log
   * interval (never the wall clock: a clock step must not stall retries).
   * @default {performance.now}
   */
  monotonicMs?: () => number;
  /** The cached answers to keep in snapshots. */
  replayEntries?: () => ReplayEntry[];
  /** Where write failures and recoveries are logged. */
  log?: JournalLog;
  /** Told how long each batch took to write (and fdatasync), in seconds. */
  onCommit?: (seconds: number) => void;
  /**
   * Opens the journal for appending (tests inject failing files).
   * @default {Deno.open with append and create}
   */
  openFile?: (path: string) => Promise<JournalFile>;
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

/** The error a step is refused with when it cannot be made durable. */
export class JournalUnavailableError extends Error {
  /**
   * @param message What failed.
   * @param options The I/O error as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "JournalUnavailableError";
  }
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

function openForAppend(path: string): Promise<JournalFile> {
  return Deno.open(path, { append: true, create: true });
}

/** The first retry after a failed write, and the longest wait, in ms. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/**
 * A batch of one line is fdatasync'd on the main thread while the last
 * fdatasync took less than this (ms); larger batches, and every batch on a
 * slower disk, sync on Deno's thread pool.
 */
const SYNC_INLINE_MS = 1;
/** How often a persisting write failure is logged again, in ms. */
const LOG_INTERVAL_MS = 10_000;

/** A step waiting for its batch. */
interface Pending {
  group: string;
  event: GroupEvent;
  done: PromiseWithResolvers<void>;
}

/**
 * A state store that survives restarts, crashes and full disks. A step is
 * applied to the durable state only once its line is written and fsync'd;
 * until then it is pending, and the next step of the same group builds on it.
 * When a write fails (no space, an I/O error), every pending step is refused
 * (its answer never goes out), the file is cut back to its last whole line,
 * and new steps are refused at once until a retry after a growing backoff
 * succeeds: the server carries on by itself when the disk does.
 */
export class JournalStore implements StateStore {
  #dir: string;
  #file: JournalFile;
  #durable: MemoryStore;
  /** Pending steps by group: the state they lead to, and how many. */
  #pending = new Map<string, { state: number; count: number }>();
  #seq: number;
  /** The journal's length up to its last whole, written line. */
  #goodLength: number;
  /** Whether bytes past #goodLength may be in the file. */
  #dirty = false;
  #linesSinceSnapshot: number;
  #fsync: boolean;
  #onCommit: ((seconds: number) => void) | undefined;
  #compactEvery: number;
  #replayEntries: () => ReplayEntry[];
  #nowSec: () => number;
  #monotonicMs: () => number;
  #log: JournalLog | undefined;
  #batch: Pending[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  /** Set while writes fail. */
  #failure:
    | {
      error: JournalUnavailableError;
      since: Date;
      sinceMs: number;
      retryAtMs: number;
      backoffMs: number;
      loggedAtMs: number;
      refusedSinceLog: number;
    }
    | undefined;
  #refused = 0;
  #compactRetryAtMs = 0;
  /** How long the last batch's fdatasync took, in ms (unknown at first). */
  #lastSyncMs = Infinity;
  /** Batches written, lines written, compactions done. */
  readonly stats = { batches: 0, lines: 0, compactions: 0 };

  private constructor(
    dir: string,
    file: JournalFile,
    durable: MemoryStore,
    position: { seq: number; length: number },
    options: JournalOptions,
  ) {
    this.#dir = dir;
    this.#file = file;
    this.#durable = durable;
    this.#seq = position.seq;
    this.#goodLength = position.length;
    this.#linesSinceSnapshot = 0;
    this.#fsync = options.fsync ?? true;
    this.#onCommit = options.onCommit;
    this.#compactEvery = options.compactEvery ?? 10_000;
    this.#replayEntries = options.replayEntries ?? (() => []);
    this.#nowSec = options.nowSec ?? (() => Date.now() / 1000);
    this.#monotonicMs = options.monotonicMs ?? (() => performance.now());
    this.#log = options.log;
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
   * the journal, sets damaged lines aside, and compacts. A compaction that
   * fails (a full disk) is reported and left for later.
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
    let length = bytes.length;
    if (parsed.damage) {
      const aside = `${journalFile}.damaged-${stamp()}`;
      const setAside = parsed.damaged.reduce((n, [a, b]) => n + b - a, 0);
      const kept =
        `kept the ${parsed.entries.length} valid lines, set ${setAside} bytes aside`;
      try {
        await Deno.writeFile(
          aside,
          concat(parsed.damaged.map(([a, b]) => bytes.subarray(a, b))),
        );
        warnings.push(
          `State journal "${journalFile}" is damaged from byte ${parsed.validLength} (${parsed.damage}): ${kept} in "${aside}"`,
        );
      } catch (e) {
        warnings.push(
          `State journal "${journalFile}" is damaged from byte ${parsed.validLength} (${parsed.damage}): ${kept}, but could not write them to "${aside}" (${e})`,
        );
      }
      // Appends must start on a line of their own: cut a torn last line.
      const last = parsed.damaged.at(-1)!;
      if (last[1] === bytes.length && bytes.at(-1) !== 0x0a) {
        await Deno.truncate(journalFile, last[0]);
        length = last[0];
      }
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
    const file = await (opts.openFile ?? openForAppend)(journalFile);
    const store = new JournalStore(
      dir,
      file,
      new MemoryStore(groups),
      { seq, length },
      opts,
    );
    if (parsed.entries.length > 0 || parsed.damage) {
      try {
        await store.#compact(live);
      } catch (e) {
        warnings.push(
          `Cannot compact the state into "${snapFile}" (${e}): the journal is kept as it is and compacted once the disk allows`,
        );
      }
    }
    return { store, replay: live, warnings };
  }

  state(group: string): number {
    return this.#pending.get(group)?.state ?? this.#durable.state(group);
  }

  durableState(group: string): number {
    return this.#durable.state(group);
  }

  /** Every group's durable record. */
  snapshot(): Record<string, GroupRecord> {
    return this.#durable.snapshot();
  }

  /** Every group's durable record, live and read-only. */
  records(): ReadonlyMap<string, Readonly<GroupRecord>> {
    return this.#durable.records();
  }

  /** Whether new steps can be made durable now. */
  get health(): StoreHealth {
    const f = this.#failure;
    return f
      ? {
        writable: false,
        error: f.error.message,
        since: f.since,
        refused: this.#refused,
      }
      : { writable: true, refused: this.#refused };
  }

  record(group: string, event: GroupEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the store is closed"));
    const f = this.#failure;
    if (f && this.#monotonicMs() < f.retryAtMs) {
      // Waiting for the disk: refuse at once, change nothing.
      this.#refused++;
      f.refusedSinceLog++;
      return Promise.reject(f.error);
    }
    const p = this.#pending.get(group);
    if (p) {
      p.state = event.state;
      p.count++;
    } else this.#pending.set(group, { state: event.state, count: 1 });
    const done = Promise.withResolvers<void>();
    this.#batch.push({ group, event, done });
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
    const seq = this.#seq;
    const text = batch.map((b, i) =>
      encodeJournalLine({ seq: seq + 1 + i, group: b.group, event: b.event })
    ).join("");
    const bytes = encoder.encode(text);
    try {
      if (this.#dirty) await this.#cutBack();
      this.#dirty = true;
      const started = performance.now();
      // A batch is a few KiB appended to the page cache: written on this
      // thread, it saves a thread-pool round trip per batch (measured at W=1
      // --no-fsync: p50 0.22-0.26 ms against 0.28-0.29 ms, and 20-45 µs of
      // CPU per answer); the fdatasync below stays off the main thread.
      let off = 0;
      while (off < bytes.length) {
        off += this.#file.writeSync(bytes.subarray(off));
      }
      if (this.#fsync) {
        // One line means the server is not busy: syncing on this thread
        // saves the thread-pool round trip before the answer (measured at
        // W=1, RS256: p50 0.44-0.48 ms against 0.52-0.53 ms). A disk slower
        // than SYNC_INLINE_MS would stall the receive loop: it syncs on the
        // pool, and so does any larger batch.
        const syncStarted = performance.now();
        if (batch.length === 1 && this.#lastSyncMs < SYNC_INLINE_MS) {
          this.#file.syncDataSync();
        } else await this.#file.syncData();
        this.#lastSyncMs = performance.now() - syncStarted;
      }
      this.#dirty = false;
      this.#onCommit?.((performance.now() - started) / 1000);
    } catch (e) {
      this.#writeFailed(e, batch);
      // Cut the partial write off now if the disk lets us, else before the
      // next append (inside the chain: never concurrently with a write).
      await this.#cutBack().catch(() => {});
      return;
    }
    this.#goodLength += bytes.length;
    this.#seq += batch.length;
    this.stats.batches++;
    this.stats.lines += batch.length;
    this.#linesSinceSnapshot += batch.length;
    for (const b of batch) {
      this.#durable.record(b.group, b.event);
      const p = this.#pending.get(b.group);
      if (p && --p.count === 0) this.#pending.delete(b.group);
    }
    if (this.#failure) this.#recovered();
    for (const b of batch) b.done.resolve();
    if (
      this.#linesSinceSnapshot >= this.#compactEvery &&
      this.#monotonicMs() >= this.#compactRetryAtMs
    ) {
      try {
        await this.#compact(this.#replayEntries());
      } catch (e) {
        // The journal still holds every line: nothing is lost, it grows.
        this.#compactRetryAtMs = this.#monotonicMs() + LOG_INTERVAL_MS;
        this.#log?.warn(
          "Cannot compact the state into {file}: {error}; retrying in {seconds} s",
          {
            file: JournalStore.snapshotPath(this.#dir),
            error: String(e),
            seconds: LOG_INTERVAL_MS / 1000,
          },
        );
      }
    }
  }

  /** Cuts the journal back to its last whole line. */
  async #cutBack(): Promise<void> {
    await this.#file.truncate(this.#goodLength);
    this.#dirty = false;
  }

  /**
   * A batch could not be made durable: refuse it and every step queued
   * behind it (they may build on it), forget them, cut the file back, and
   * wait before the next try.
   */
  #writeFailed(e: unknown, batch: Pending[]): void {
    const queued = this.#batch;
    this.#batch = [];
    this.#pending.clear();
    const now = this.#monotonicMs();
    const file = JournalStore.journalPath(this.#dir);
    const error = new JournalUnavailableError(
      `cannot write the state journal "${file}": ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
    const refused = batch.length + queued.length;
    this.#refused += refused;
    const f = this.#failure;
    if (f) {
      f.error = error;
      f.backoffMs = Math.min(f.backoffMs * 2, BACKOFF_MAX_MS);
      f.retryAtMs = now + f.backoffMs;
      f.refusedSinceLog += refused;
      if (now - f.loggedAtMs >= LOG_INTERVAL_MS) {
        this.#log?.warn(
          "The state journal still cannot be written ({error}): {refused} steps refused in the last {seconds} s",
          {
            error: error.message,
            refused: f.refusedSinceLog,
            seconds: Math.round((now - f.loggedAtMs) / 1000),
          },
        );
        f.loggedAtMs = now;
        f.refusedSinceLog = 0;
      }
    } else {
      this.#failure = {
        error,
        since: new Date(),
        sinceMs: now,
        retryAtMs: now + BACKOFF_MIN_MS,
        backoffMs: BACKOFF_MIN_MS,
        loggedAtMs: now,
        refusedSinceLog: 0,
      };
      this.#log?.error(
        "The state journal cannot be written: {error}; new steps are not acknowledged until it can (retransmissions of acknowledged steps are still answered), retrying with backoff",
        { error: error.message, file },
      );
    }
    for (const b of [...batch, ...queued]) b.done.reject(error);
  }

  #recovered(): void {
    const f = this.#failure!;
    this.#failure = undefined;
    this.#log?.info(
      "The state journal is writable again after {seconds} s; {refused} steps were refused meanwhile (their clients retransmit them)",
      {
        seconds: Math.round((this.#monotonicMs() - f.sinceMs) / 100) / 10,
        refused: this.#refused,
        file: JournalStore.journalPath(this.#dir),
      },
    );
  }

  /** Writes the snapshot atomically, then empties the journal. */
  async #compact(replay: ReplayEntry[]): Promise<void> {
    const snap: Snapshot = {
      version: 1,
      seq: this.#seq,
      groups: this.#durable.snapshot(),
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
    try {
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
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
    // Lines up to snap.seq are now in the snapshot; recovery skips them even
    // if the process dies before the truncation below.
    this.#dirty = true;
    await this.#file.truncate(0);
    if (this.#fsync) await this.#file.syncData();
    this.#dirty = false;
    this.#goodLength = 0;
    this.#linesSinceSnapshot = 0;
    this.stats.compactions++;
  }

  /** Commits what is pending, compacts if the disk allows, and closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#chain = this.#chain.then(() => this.#commit());
    await this.#chain;
    try {
      await this.#compact(this.#replayEntries());
    } catch (e) {
      this.#log?.warn(
        "Cannot compact the state into {file} before stopping: {error}; the journal holds every acknowledged step",
        { file: JournalStore.snapshotPath(this.#dir), error: String(e) },
      );
    }
    this.#file.close();
  }
}

/** Joins byte arrays. */
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
