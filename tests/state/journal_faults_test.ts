/**
 * The journal under faults: a write that fails part-way (a full disk), an
 * I/O error on the cut-back, and a file torn or flipped at any byte. Files are real; the
 * failing writes come from a wrapper that runs out of space on command.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type JournalFile,
  type JournalLog,
  JournalStore,
  JournalUnavailableError,
} from "../../lib/state/journal.ts";
import {
  encodeJournalLine,
  parseJournal,
} from "../../lib/state/journal_format.ts";
import { event, statesAfter, walks } from "./_journal_fixtures.ts";

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt-faults-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A journal file with a byte budget: a write past it writes what fits and
 * then fails as a full disk does (ENOSPC); truncations can fail too.
 */
class FullDisk implements JournalFile {
  #file: Deno.FsFile;
  /** Bytes that may still be written; Infinity for a roomy disk. */
  space = Infinity;
  /** Truncations that fail with an I/O error before one works. */
  truncateFailures = 0;
  writes = 0;

  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  writeSync(p: Uint8Array): number {
    this.writes++;
    if (this.space <= 0) {
      throw new Error("No space left on device (os error 28)");
    }
    const n = Math.min(p.length, this.space);
    const written = this.#file.writeSync(p.subarray(0, n));
    this.space -= written;
    return written;
  }

  truncate(len?: number): Promise<void> {
    if (this.truncateFailures > 0) {
      this.truncateFailures--;
      return Promise.reject(new Error("Input/output error (os error 5)"));
    }
    return this.#file.truncate(len);
  }

  syncData(): Promise<void> {
    return this.#file.syncData();
  }

  syncDataSync(): void {
    this.#file.syncDataSync();
  }

  close(): void {
    this.#file.close();
  }
}

/** A log that keeps its records. */
function memoryLog(): JournalLog & { records: [string, string][] } {
  const records: [string, string][] = [];
  return {
    records,
    error: (m) => void records.push(["error", m]),
    warn: (m) => void records.push(["warn", m]),
    info: (m) => void records.push(["info", m]),
  };
}

async function openWithDisk(
  dir: string,
  clock: { ms: number },
  log?: JournalLog,
): Promise<{ store: JournalStore; disk: FullDisk }> {
  let disk: FullDisk | undefined;
  const { store } = await JournalStore.open(dir, {
    monotonicMs: () => clock.ms,
    ...(log ? { log } : {}),
    openFile: async (path) =>
      disk = new FullDisk(
        await Deno.open(path, { append: true, create: true }),
      ),
  });
  return { store, disk: disk! };
}

Deno.test("JournalStore never acknowledges a step it could not write, and carries on when space returns", async () => {
  await withDir(async (dir) => {
    const clock = { ms: 0 };
    const log = memoryLog();
    const { store, disk } = await openWithDisk(dir, clock, log);
    for (let s = 1; s <= 3; s++) await store.record("ALPHA", event(s));
    await store.record("BRAVO", event(1));

    // The disk fills up in the middle of the next line.
    disk.space = 40;
    const lost = store.record("ALPHA", event(4));
    const behind = store.record("BRAVO", event(2)); // queued in the same batch
    await assert.rejects(lost, JournalUnavailableError);
    await assert.rejects(behind, JournalUnavailableError);
    assert.equal(store.state("ALPHA"), 3, "the state stays the durable one");
    assert.equal(store.durableState("ALPHA"), 3);
    assert.equal(store.state("BRAVO"), 1);
    assert.equal(store.health.writable, false);
    assert.match(store.health.error ?? "", /No space left on device/);
    assert.equal(
      log.records.filter(([level]) => level === "error").length,
      1,
      "the failure is logged once",
    );

    // While the backoff runs, steps are refused without touching the disk.
    const writes = disk.writes;
    for (let i = 0; i < 50; i++) {
      await assert.rejects(store.record("ALPHA", event(4)));
    }
    assert.equal(disk.writes, writes, "no write during the backoff");
    assert.equal(log.records.length, 1, "no log record per refused step");
    assert.equal(store.health.refused, 52);

    // Past the backoff, still full: refused again, the backoff grows.
    clock.ms += 150;
    await assert.rejects(store.record("ALPHA", event(4)));
    clock.ms += 150;
    // The second backoff (200 ms) is still running.
    await assert.rejects(
      store.record("ALPHA", event(4)),
      JournalUnavailableError,
    );

    // Space returns: the next try after the backoff succeeds.
    disk.space = Infinity;
    clock.ms += 1_000;
    await store.record("ALPHA", event(4));
    await store.record("BRAVO", event(2));
    assert.equal(store.health.writable, true);
    assert.equal(store.state("ALPHA"), 4);
    assert.match(log.records.at(-1)?.[1] ?? "", /writable again/);

    // On disk: whole lines only, no partial line in the middle.
    const bytes = await Deno.readFile(JournalStore.journalPath(dir));
    const parsed = parseJournal(bytes);
    assert.equal(parsed.damage, undefined, "the partial write was cut off");
    assert.deepEqual(
      parsed.entries.map((e) => `${e.group}${e.event.state}`),
      ["ALPHA1", "ALPHA2", "ALPHA3", "BRAVO1", "ALPHA4", "BRAVO2"],
    );
    const again = await JournalStore.open(dir);
    assert.equal(again.store.state("ALPHA"), 4);
    assert.equal(again.store.state("BRAVO"), 2);
    assert.deepEqual(again.warnings, []);
    await again.store.close();
    await store.close();
  });
});

Deno.test("JournalStore cuts a partial write back before the next append, even when the cut first fails", async () => {
  await withDir(async (dir) => {
    const clock = { ms: 0 };
    const { store, disk } = await openWithDisk(dir, clock);
    await store.record("ALPHA", event(1));
    // A partial write, then the truncation fails too (an I/O error).
    disk.space = 10;
    disk.truncateFailures = 1;
    await assert.rejects(store.record("ALPHA", event(2)));
    assert.equal(disk.truncateFailures, 0, "the cut was tried");
    disk.space = Infinity;
    clock.ms += 10_000;
    await store.record("ALPHA", event(2));
    await store.record("ALPHA", event(3));
    const parsed = parseJournal(
      await Deno.readFile(JournalStore.journalPath(dir)),
    );
    assert.equal(parsed.damage, undefined);
    assert.deepEqual(parsed.entries.map((e) => e.event.state), [1, 2, 3]);
    await store.close();
  });
});

Deno.test("JournalStore.open() recovers a journal cut at a sample of bytes, setting the tail aside", async () => {
  const entries = walks();
  const lines = entries.map(encodeJournalLine);
  const bytes = new TextEncoder().encode(lines.join(""));
  const ends: number[] = [];
  let end = 0;
  for (const line of lines) ends.push(end += line.length);
  for (let cut = 1; cut < bytes.length; cut += 97) {
    await withDir(async (dir) => {
      const path = JournalStore.journalPath(dir);
      await Deno.writeFile(path, bytes.subarray(0, cut));
      const opened = await JournalStore.open(dir);
      const whole = ends.filter((e) => e <= cut).length;
      const want = statesAfter(entries.slice(0, whole));
      for (const group of ["ALPHA", "BRAVO", "CHARLIE"]) {
        assert.equal(opened.store.state(group), want[group] ?? 0, `cut ${cut}`);
      }
      const torn = cut !== ends[whole - 1];
      assert.equal(opened.warnings.length, torn ? 1 : 0, `cut ${cut}`);
      if (torn) {
        assert.match(opened.warnings[0]!, /journal\.jsonl.*damaged-/);
        const aside = [...Deno.readDirSync(dir)].find((e) =>
          e.name.startsWith("journal.jsonl.damaged-")
        );
        assert.ok(aside, `cut ${cut}: the torn tail is kept aside`);
      }
      await opened.store.close();
      // A second start finds nothing left to repair.
      const again = await JournalStore.open(dir);
      assert.deepEqual(again.warnings, []);
      assert.equal(again.store.state("ALPHA"), want.ALPHA ?? 0);
      await again.store.close();
    });
  }
});
