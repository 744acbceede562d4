/**
 * The real server started on a journal torn at a sample of byte offsets (as
 * a power loss in the middle of a write leaves it): it always starts, keeps
 * every whole line, names the file it set the tail aside in, and reports no
 * state that was not written whole. Every offset is covered at unit level
 * in tests/state/journal_faults_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  encodeJournalLine,
  type JournalEntry,
} from "../../lib/state/journal_format.ts";
import { runMain, startServer } from "../_server.ts";

const GROUPS = ["HEARTBEAT", "CHEDIMON", "SEGSANH"];

/** The groups' walks, interleaved, as a journal holds them. */
function walks(): JournalEntry[] {
  const entries: JournalEntry[] = [];
  for (let s = 1; s <= 6; s++) {
    for (const group of GROUPS) {
      const seq = entries.length + 1;
      entries.push({
        seq,
        group,
        event: {
          state: s,
          registration: 20230000 + s,
          completedWalk: s === 6,
          at: new Date(Date.UTC(2026, 11, 1, 12, 0, seq)),
        },
      });
    }
  }
  return entries;
}

async function states(stateDir: string): Promise<Record<string, number>> {
  const r = await runMain([
    "status",
    "tests/testdata/vectors",
    "--state-dir",
    stateDir,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const groups = JSON.parse(r.stdout).groups as {
    group: string;
    state: number;
  }[];
  return Object.fromEntries(groups.map((g) => [g.group, g.state]));
}

Deno.test("main.ts starts on a journal torn at a sample of bytes and keeps every whole line", async (t) => {
  const lines = walks().map(encodeJournalLine);
  const bytes = new TextEncoder().encode(lines.join(""));
  const ends: number[] = [];
  let end = 0;
  for (const line of lines) ends.push(end += line.length);
  // A cut inside a line, on a line's end, and one byte past it.
  const cuts = [37, ends[2]!, ends[2]! + 1, ends[7]! - 1, ends[11]! + 60];
  for (const cut of cuts) {
    await t.step(`cut at byte ${cut} of ${bytes.length}`, async () => {
      const tmp = await Deno.makeTempDir({ prefix: "udpjwt_torn_" });
      try {
        const stateDir = `${tmp}/state`;
        await Deno.mkdir(stateDir);
        await Deno.writeFile(
          `${stateDir}/journal.jsonl`,
          bytes.subarray(0, cut),
        );
        const server = await startServer({ stateDir, logDir: `${tmp}/logs` });
        const stopped = await server.stop();
        assert.equal(stopped.code, 0, stopped.stderr);
        const whole = ends.filter((e) => e <= cut).length;
        const torn = cut !== ends[whole - 1];
        const output = stopped.stdout + stopped.stderr;
        if (torn) {
          assert.match(output, /journal\.jsonl" is damaged from byte/);
          assert.match(output, /journal\.jsonl\.damaged-/);
        } else {
          assert.doesNotMatch(output, /damaged/);
        }
        const want: Record<string, number> = {};
        for (const line of lines.slice(0, whole)) {
          const o = JSON.parse(line.slice(9));
          want[o.g] = o.s;
        }
        assert.deepEqual(await states(stateDir), want);
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    });
  }
});
