import assert from "node:assert/strict";
import { JournalStore } from "../../lib/state/journal.ts";
import { entry, journalBytes } from "./_journal_fixtures.ts";
import {
  applyEvent,
  emptyRecord,
  MAX_REGISTRATIONS,
  MAX_WALK_TIMES,
} from "../../lib/state/store.ts";

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt-journal-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("JournalStore keeps acknowledged state across a reopen", async () => {
  await withDir(async (dir) => {
    const { store } = await JournalStore.open(dir);
    for (const e of [entry(0, 0), entry(0, 1), entry(0, 2)]) {
      await store.record("ALPHA", e.event);
    }
    await store.record("BRAVO", entry(0, 1).event);
    assert.equal(store.state("ALPHA"), 2);
    // No close(): as after a crash, only the journal is on disk.
    const again = await JournalStore.open(dir);
    assert.deepEqual(again.warnings, []);
    assert.equal(again.store.state("ALPHA"), 2);
    assert.equal(again.store.state("BRAVO"), 1);
    const regs = Object.keys(again.store.snapshot().ALPHA!.registrations);
    assert.deepEqual(regs.sort(), ["20230000", "20230001", "20230002"]);
    await again.store.close();
    await store.close().catch(() => {});
    const third = await JournalStore.open(dir);
    assert.equal(third.store.state("ALPHA"), 2, "state survives compaction");
    await third.store.close();
  });
});

Deno.test("JournalStore commits a burst of events in few fsync'd batches", async () => {
  await withDir(async (dir) => {
    const { store } = await JournalStore.open(dir);
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) => store.record(`G${i % 10}`, entry(0, i % 7).event),
      ),
    );
    assert.equal(store.stats.lines, 200);
    assert.ok(store.stats.batches <= 3, `${store.stats.batches} batches`);
    await store.close();
  });
});

Deno.test("JournalStore moves a damaged tail aside and still opens", async () => {
  await withDir(async (dir) => {
    const path = JournalStore.journalPath(dir);
    const bytes = journalBytes([entry(1, 0), entry(2, 1)]);
    await Deno.writeFile(
      path,
      new Uint8Array([...bytes, ...new TextEncoder().encode("0000 {tor")]),
    );
    const opened = await JournalStore.open(dir);
    assert.equal(opened.store.state("ALPHA"), 1);
    assert.equal(opened.warnings.length, 1);
    assert.match(
      opened.warnings[0]!,
      /journal\.jsonl.*damaged from byte \d+.*kept the 2 valid lines/,
    );
    const aside = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.includes("damaged")
    );
    assert.equal(aside.length, 1);
    assert.equal(await Deno.readTextFile(`${dir}/${aside[0]}`), "0000 {tor");
    await opened.store.close();
  });
});

Deno.test("JournalStore moves an unreadable snapshot aside and replays the journal", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(JournalStore.snapshotPath(dir), "{not json");
    await Deno.writeFile(
      JournalStore.journalPath(dir),
      journalBytes([entry(1, 0), entry(2, 1)]),
    );
    const opened = await JournalStore.open(dir);
    assert.equal(opened.store.state("ALPHA"), 1);
    assert.match(opened.warnings[0] ?? "", /snapshot\.json.*unreadable/);
    await opened.store.close();
  });
});

Deno.test("JournalStore returns unexpired cached answers after a restart", async () => {
  await withDir(async (dir) => {
    const reply = new TextEncoder().encode("x.y.z");
    const { store } = await JournalStore.open(dir, { nowSec: () => 100 });
    const replay = (token: string, expiresAt: number) => ({
      token,
      group: "ALPHA",
      jti: token,
      reply,
      expiresAt,
    });
    await store.record("ALPHA", {
      ...entry(0, 0).event,
      replay: replay("old", 150),
    });
    await store.record("ALPHA", {
      ...entry(0, 1).event,
      replay: replay("new", 500),
    });
    const again = await JournalStore.open(dir, { nowSec: () => 200 });
    assert.deepEqual(again.replay.map((r) => r.token), ["new"]);
    assert.deepEqual(again.replay[0]?.reply, reply);
    await again.store.close();
  });
});

Deno.test("applyEvent() keeps a group's record bounded: walk times and registrations", () => {
  const rec = emptyRecord();
  for (let i = 0; i < 5000; i++) {
    applyEvent(rec, {
      state: 6,
      registration: i,
      completedWalk: true,
      at: new Date(Date.UTC(2026, 10, 23, 12, 0, 0, i)),
    });
  }
  assert.equal(rec.walkCount, 5000);
  assert.equal(rec.walks.length, MAX_WALK_TIMES);
  assert.equal(rec.walks.at(-1), "2026-11-23T12:00:04.999Z");
  assert.equal(Object.keys(rec.registrations).length, MAX_REGISTRATIONS);
  assert.ok(rec.registrations["0"], "the first numbers seen are kept");
});
