import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
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

Deno.test("parseJournal() still loads a line written before profile v1 (no M)", () => {
  // Written by the server before profile v1 existed, byte for byte.
  const line =
    'd71247e4 {"seq":1,"g":"ALPHA","s":1,"r":20230001,"w":false,"t":"2026-11-23T12:00:01.000Z","tok":"a.b.c","jti":"j1","rep":"h.p.s","exp":99}\n';
  const parsed = parseJournal(new TextEncoder().encode(line));
  assert.equal(parsed.damage, undefined);
  const [e] = parsed.entries;
  assert.ok(e);
  assert.equal(e.event.seqMax, undefined);
  assert.equal(e.event.registration, 20230001);
  assert.equal(e.event.replay?.expiresAt, 99);
  // And the current encoder writes that line unchanged for such an event.
  assert.equal(encodeJournalLine(e), line);
});

Deno.test("parseJournal() decodes a profile v1 event: M and a matricula kept as a string", () => {
  const entries = [
    entry(1, 1, { seqMax: 3 }),
    entry(2, 2, { seqMax: 4, registration: "007" }),
    entry(3, 3, { seqMax: 4, registration: "12345678901234567890" }),
  ];
  const bytes = journalBytes(entries);
  assert.match(new TextDecoder().decode(bytes), /"r":"007","w":false,.*"m":4/);
  const parsed = parseJournal(bytes);
  assert.equal(parsed.damage, undefined);
  assert.deepEqual(parsed.entries, entries);
});

Deno.test("parseJournal() sets aside a line whose M is not an integer", () => {
  const text = new TextDecoder().decode(journalBytes([entry(1, 1)]));
  const json = text.slice(9, -1).replace(/}$/, ',"m":"3"}');
  const crc = crc32(json).toString(16).padStart(8, "0");
  const parsed = parseJournal(new TextEncoder().encode(`${crc} ${json}\n`));
  assert.equal(parsed.entries.length, 0);
  assert.match(parsed.damage ?? "", /unexpected fields/);
});
