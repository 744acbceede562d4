import assert from "node:assert/strict";
import {
  encodeJournalLine,
  parseJournal,
} from "../../lib/state/journal_format.ts";
import {
  entry,
  journalBytes,
  statesAfter,
  walks,
} from "./_journal_fixtures.ts";

Deno.test("parseJournal() decodes what encodeJournalLine() wrote", () => {
  const reply = new TextEncoder().encode("h.p.s");
  const entries = [
    entry(1, 0),
    entry(2, 1, {
      unlisted: true,
      replay: {
        token: "a.b.c",
        group: "ALPHA",
        jti: "j1",
        reply,
        expiresAt: 99,
      },
    }),
  ];
  const parsed = parseJournal(journalBytes(entries));
  assert.equal(parsed.damage, undefined);
  assert.equal(parsed.entries.length, 2);
  assert.deepEqual(parsed.entries[0], entries[0]);
  assert.deepEqual(parsed.entries[1], entries[1]);
});

Deno.test("parseJournal() keeps the valid prefix of a damaged journal", async (t) => {
  const good = journalBytes([entry(1, 0), entry(2, 1)]);
  const third = journalBytes([entry(3, 2)]);
  const all = new Uint8Array([...good, ...third]);
  await t.step("a torn last line", () => {
    for (let cut = 1; cut < third.length; cut++) {
      const p = parseJournal(all.subarray(0, good.length + cut));
      assert.equal(p.entries.length, 2, `cut at ${cut}`);
      assert.equal(p.validLength, good.length);
      assert.ok(p.damage);
    }
  });
  await t.step("a flipped bit in any byte of the last line", () => {
    for (let i = good.length; i < all.length - 1; i++) {
      const copy = all.slice();
      copy[i]! ^= 0x04;
      const p = parseJournal(copy);
      assert.equal(p.entries.length, 2, `byte ${i}`);
      assert.match(p.damage ?? "", /line 3/);
    }
  });
  await t.step("a sequence gap is kept (a writer gave up on a line)", () => {
    const p = parseJournal(journalBytes([entry(1, 0), entry(3, 2)]));
    assert.equal(p.entries.length, 2);
    assert.equal(p.damage, undefined);
  });
  await t.step("a sequence that goes back is damage", () => {
    const p = parseJournal(journalBytes([entry(2, 0), entry(1, 2)]));
    assert.equal(p.entries.length, 1);
    assert.match(p.damage ?? "", /sequence 1 after 2/);
  });
  await t.step("whole lines after a damaged one are kept", () => {
    const copy = all.slice();
    copy[10]! ^= 0x04; // in line 1
    const p = parseJournal(copy);
    assert.deepEqual(p.entries.map((e) => e.seq), [2, 3]);
    assert.equal(p.validLength, 0);
    assert.deepEqual(p.damaged, [[0, good.indexOf(0x0a) + 1]]);
    assert.match(p.damage ?? "", /line 1: checksum mismatch/);
  });
  await t.step("garbage after valid lines", () => {
    const junk = new TextEncoder().encode("\0\0\0\0garbage\n");
    const p = parseJournal(new Uint8Array([...good, ...junk]));
    assert.equal(p.entries.length, 2);
    assert.equal(p.validLength, good.length);
  });
});

Deno.test("parseJournal() keeps every whole line of a journal cut at any byte", () => {
  const entries = walks();
  const lines = entries.map(encodeJournalLine);
  const bytes = new TextEncoder().encode(lines.join(""));
  const ends: number[] = [];
  let end = 0;
  for (const line of lines) ends.push(end += line.length);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const p = parseJournal(bytes.subarray(0, cut));
    const whole = ends.filter((e) => e <= cut).length;
    assert.equal(p.entries.length, whole, `cut at ${cut}`);
    assert.deepEqual(
      statesAfter(p.entries),
      statesAfter(entries.slice(0, whole)),
      `cut at ${cut}`,
    );
    const torn = cut - (ends[whole - 1] ?? 0);
    assert.equal(p.damage !== undefined, torn > 0, `cut at ${cut}`);
    if (torn > 0) assert.deepEqual(p.damaged, [[cut - torn, cut]]);
  }
});

Deno.test("parseJournal() loses only the line with a flipped byte", () => {
  const entries = walks();
  const lines = entries.map(encodeJournalLine);
  const bytes = new TextEncoder().encode(lines.join(""));
  const lineOf = (offset: number) => {
    let end = 0;
    return lines.findIndex((l) => offset < (end += l.length));
  };
  for (let i = 0; i < bytes.length; i += 7) {
    const copy = bytes.slice();
    copy[i]! ^= 0x20;
    const p = parseJournal(copy);
    const hit = lineOf(i);
    if (copy[i] === 0x0a || bytes[i] === 0x0a) {
      // A newline made or unmade: at most the two lines it touches are lost.
      assert.ok(p.entries.length >= entries.length - 2, `byte ${i}`);
    } else {
      assert.deepEqual(
        p.entries.map((e) => e.seq),
        entries.filter((_, k) => k !== hit).map((e) => e.seq),
        `byte ${i}`,
      );
    }
    // Whatever is kept was written whole: never a state nobody recorded.
    for (const e of p.entries) {
      assert.deepEqual(e, entries[e.seq - 1], `byte ${i}`);
    }
  }
});
