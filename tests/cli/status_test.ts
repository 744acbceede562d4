/**
 * Tests of `udpjwt status` (lib/status.ts): the read-only loader on crafted
 * state directories (snapshot plus journal, torn tails, nothing written),
 * the per-group summary with and without a roster, and the command after
 * real walks, while the server runs, after it stops and after a restart.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runSend } from "../../lib/cli/send.ts";
import type { Io } from "../../lib/cli/errors.ts";
import type { Snapshot } from "../../lib/state/journal.ts";
import { encodeJournalLine } from "../../lib/state/journal_format.ts";
import { parseRoster } from "../../lib/state/roster.ts";
import { readState, runStatus, summarize } from "../../lib/cli/status.ts";
import type { GroupEvent } from "../../lib/state/store.ts";
import { VECTORS } from "../_helpers.ts";
import { runMain, withServer } from "../_server.ts";

function capture(): Io & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(l) };
}

function event(
  state: number,
  registration: number,
  at: string,
  extra?: Partial<GroupEvent>,
): GroupEvent {
  return {
    state,
    registration,
    completedWalk: false,
    at: new Date(at),
    ...extra,
  };
}

/** The bytes of every file in a directory, by name. */
async function contents(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    out[e.name] = (await Deno.readFile(`${dir}/${e.name}`)).toHex();
  }
  return out;
}

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_status_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readState() replays the journal after the snapshot without writing", async (t) => {
  await inTempDir(async (dir) => {
    const snapshot: Snapshot = {
      version: 1,
      seq: 2,
      groups: {
        ALPHA: {
          state: 2,
          registrations: {
            "7": {
              first: "2026-01-01T00:00:00.000Z",
              last: "2026-01-01T00:00:01.000Z",
            },
          },
          walks: [],
          lastActivity: "2026-01-01T00:00:01.000Z",
        },
      },
      replay: [],
    };
    await Deno.writeTextFile(`${dir}/snapshot.json`, JSON.stringify(snapshot));
    const lines = [
      // Lines 1-2 are already in the snapshot (a crash before truncation).
      encodeJournalLine({
        seq: 1,
        group: "ALPHA",
        event: event(1, 7, "2026-01-01T00:00:00.000Z"),
      }),
      encodeJournalLine({
        seq: 2,
        group: "ALPHA",
        event: event(2, 7, "2026-01-01T00:00:01.000Z"),
      }),
      encodeJournalLine({
        seq: 3,
        group: "ALPHA",
        event: event(3, 8, "2026-01-01T00:00:02.000Z"),
      }),
      encodeJournalLine({
        seq: 4,
        group: "BETA",
        event: event(1, 9, "2026-01-01T00:00:03.000Z", { unlisted: true }),
      }),
    ];
    await Deno.writeTextFile(`${dir}/journal.jsonl`, lines.join(""));
    await t.step("snapshot plus journal", async () => {
      const before = await contents(dir);
      const state = await readState(dir);
      assert.deepEqual(await contents(dir), before, "nothing written");
      assert.equal(state.snapshotSeq, 2);
      assert.equal(state.journalLines, 2);
      assert.deepEqual(state.warnings, []);
      assert.equal(state.groups.ALPHA?.state, 3);
      assert.deepEqual(Object.keys(state.groups.ALPHA!.registrations), [
        "7",
        "8",
      ]);
      assert.equal(
        state.groups.ALPHA?.registrations["7"]?.first,
        "2026-01-01T00:00:00.000Z",
      );
      assert.equal(
        state.groups.ALPHA?.lastActivity,
        "2026-01-01T00:00:02.000Z",
      );
      assert.equal(state.groups.BETA?.registrations["9"]?.unlisted, true);
    });
    await t.step("a torn tail is reported and left alone", async () => {
      await Deno.writeTextFile(`${dir}/journal.jsonl`, '0badc0de {"seq":5', {
        append: true,
      });
      const before = await contents(dir);
      const state = await readState(dir);
      assert.deepEqual(await contents(dir), before, "nothing written or moved");
      assert.equal(state.journalLines, 2);
      assert.equal(state.warnings.length, 1);
      assert.match(
        state.warnings[0]!,
        /journal\.jsonl" has a damaged or unfinished tail at byte \d+ \(line 5 is torn/,
      );
    });
    await t.step(
      "an unreadable snapshot: the journal alone, with a warning",
      async () => {
        await Deno.writeTextFile(`${dir}/snapshot.json`, "{not json");
        const state = await readState(dir);
        assert.equal(state.snapshotSeq, 0);
        assert.equal(state.groups.ALPHA?.state, 3);
        assert.match(state.warnings[0]!, /snapshot\.json" is unreadable/);
        assert.equal(
          await Deno.readTextFile(`${dir}/snapshot.json`),
          "{not json",
        );
      },
    );
  });
  await t.step("a missing directory", async () => {
    await assert.rejects(readState("/nonexistent/state"), Deno.errors.NotFound);
  });
});

Deno.test("summarize() adds the roster: missing members, unlisted numbers, groups never seen", () => {
  const roster = parseRoster(
    '{"groups": {"alpha": [1, 2, 3], "gamma": [5]}}',
    "groups.json",
  );
  const groups = {
    ALPHA: {
      state: 6,
      registrations: {
        "3": { first: "a", last: "b" },
        "1": { first: "c", last: "d" },
        "99": { first: "e", last: "f", unlisted: true },
      },
      walks: ["w1", "w2"],
      lastActivity: "f",
    },
    BETA: {
      state: 2,
      registrations: { "4": { first: "g", last: "h", unlisted: true } },
      walks: [],
      lastActivity: "h",
    },
  };
  const [alpha, beta, gamma] = summarize(groups, roster);
  assert.equal(alpha?.colour, "VIOLET");
  assert.equal(alpha?.walks, 2);
  assert.deepEqual(
    alpha?.registrations.map((r) => [r.registration, r.unlisted]),
    [
      [1, false],
      [3, false],
      [99, true],
    ],
  );
  assert.deepEqual(alpha?.missing, [2]);
  assert.equal(alpha?.members, 3);
  // Not in the roster: the flag recorded by the server stands.
  assert.equal(beta?.members, null);
  assert.equal(beta?.registrations[0]?.unlisted, true);
  assert.deepEqual(gamma, {
    group: "GAMMA",
    state: 0,
    colour: "RED",
    walks: 0,
    walkTimes: [],
    registrations: [],
    missing: [5],
    members: 1,
    lastActivity: null,
  });
  assert.deepEqual(summarize(groups).map((g) => g.group), ["ALPHA", "BETA"]);
});

Deno.test("status shows walks and registrations, read-only while the server runs and after a restart", async () => {
  await inTempDir(async (lab) => {
    const stateDir = `${lab}/state`;
    const roster = `${lab}/groups.json`;
    await Deno.writeTextFile(
      roster,
      JSON.stringify({
        groups: { heartbeat: [20230001, 20230002, 20230003], guilhonga: [1] },
      }),
    );
    const send = async (port: number, group: string, extra: string[]) => {
      const io = capture();
      const code = await runSend([
        "127.0.0.1",
        String(port),
        "--group",
        group,
        "--key",
        `${VECTORS}private/${group}.key`,
        ...extra,
      ], io);
      assert.equal(code, 0, io.lines.join("\n"));
    };
    const status = async () => {
      const io = capture();
      assert.equal(await runStatus([lab, "--json"], io), 0);
      return JSON.parse(io.lines[0]!);
    };
    const serverArgs = { stateDir, args: ["--roster", roster] };
    await withServer(serverArgs, async (server) => {
      await send(server.port, "heartbeat", [
        "--registration",
        "20230001",
        "--registration",
        "99",
        "--seq-max",
        "3",
      ]);
      await send(server.port, "chedimon", ["--to", "3", "--registration", "5"]);
      const before = await contents(stateDir);
      const s = await status();
      assert.deepEqual(
        await contents(stateDir),
        before,
        "status wrote nothing",
      );
      assert.deepEqual(s.warnings, []);
      assert.deepEqual(s.groups.map((g: { group: string }) => g.group), [
        "CHEDIMON",
        "GUILHONGA",
        "HEARTBEAT",
      ]);
      const [chedimon, guilhonga, heartbeat] = s.groups;
      assert.equal(heartbeat.state, 6);
      assert.equal(heartbeat.colour, "VIOLET");
      assert.equal(heartbeat.walks, 1);
      assert.deepEqual(
        heartbeat.registrations.map((
          r: { registration: number; unlisted: boolean },
        ) => [r.registration, r.unlisted]),
        [[99, true], [20230001, false]],
      );
      assert.deepEqual(heartbeat.missing, [20230002, 20230003]);
      assert.equal(chedimon.state, 3);
      assert.equal(chedimon.colour, "GREEN");
      assert.equal(chedimon.walks, 0);
      assert.equal(chedimon.members, null);
      assert.equal(guilhonga.lastActivity, null);
      assert.deepEqual(guilhonga.missing, [1]);

      // The table form.
      const io = capture();
      assert.equal(await runStatus([lab], io), 0);
      const text = io.lines.join("\n");
      assert.match(
        text,
        /^state: .*state \(snapshot at journal sequence \d+, \d+ journal lines after it\)\nroster: .*groups\.json \(2 groups\)\n/,
      );
      assert.match(
        text,
        /\nGROUP +STATE +COLOUR +WALKS +REGISTRATIONS +LAST ACTIVITY\n/,
      );
      assert.match(
        text,
        /\nHEARTBEAT +6 +VIOLET +1 +2\/3 +\d{4}-\d\d-\d\dT[\d:.]+Z\n {2}received: 99 \(unlisted\), 20230001\n {2}missing: 20230002, 20230003/,
      );
      assert.match(text, /\nCHEDIMON +3 +GREEN +0 +1 +\S+Z\n {2}received: 5\n/);
      assert.match(
        text,
        /\nGUILHONGA +0 +RED +0 +0\/1 +never\n {2}missing: 1\n/,
      );
    });
    // Stopped: the journal is compacted into the snapshot; same picture.
    const stopped = await status();
    assert.equal(stopped.journalLines, 0);
    assert.ok(stopped.snapshotSeq >= 11);
    assert.equal(stopped.groups[2].walks, 1);
    // Restarted: the state survived; CHEDIMON finishes its walk.
    await withServer(serverArgs, async (server) => {
      await send(server.port, "chedimon", [
        "--from",
        "4",
        "--registration",
        "6",
      ]);
    });
    const after = await status();
    const chedimon = after.groups[0];
    assert.equal(chedimon.state, 6);
    assert.equal(chedimon.walks, 1);
    assert.deepEqual(
      chedimon.registrations.map((r: { registration: number }) =>
        r.registration
      ),
      [5, 6],
    );
    assert.equal(after.groups[2].walks, 1);
  });
});

Deno.test("status: an empty state, a missing one, a bad roster, usage errors", async () => {
  await inTempDir(async (lab) => {
    await Deno.mkdir(`${lab}/state`);
    const io = capture();
    assert.equal(await runStatus([lab], io), 0);
    assert.equal(io.lines.at(-1), "no group has had a request accepted yet");
    assert.match(io.lines[1]!, /^roster: none \(.*groups\.json not found\)$/);
    await Deno.writeTextFile(`${lab}/groups.json`, '{"groups": []}');
    const bad = await runMain(["status", lab]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /^udpjwt: Roster ".*groups\.json" must be \{"groups"/,
    );
  });
  const missing = await runMain(["status", "/nonexistent/lab"]);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /^udpjwt: Cannot read the state directory "\/nonexistent\/lab\/state": directory not found \(has the server run with this --state-dir\?\): pass the lab directory or --state-dir\n$/,
  );
  const help = await runMain(["status", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: udpjwt status \[DIR\]/);
  const unknown = await runMain(["status", "--nope"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Usage: udpjwt status/);
});

Deno.test("summarize() shows a profile v1 group with its M, no colour, and matriculas kept as strings", () => {
  const roster = parseRoster('{"groups": {"old": [7, 8]}}', "groups.json");
  const groups = {
    OLD: {
      state: 2,
      seqMax: 2,
      registrations: {
        "8": { first: "a", last: "b" },
        "007": { first: "c", last: "d", unlisted: true },
        "7": { first: "e", last: "f" },
      },
      walks: ["w"],
      walkCount: 1,
      lastActivity: "f",
    },
  };
  const [old] = summarize(groups, roster);
  assert.equal(old?.seqMax, 2);
  assert.equal(old?.colour, "-");
  assert.deepEqual(
    old?.registrations.map((r) => [r.registration, r.unlisted]),
    [[7, false], [8, false], ["007", true]],
  );
  assert.deepEqual(old?.missing, []);
  // A protocol 2 group has no seqMax at all, and its colour.
  const { seqMax: _, ...p2 } = groups.OLD;
  const [plain] = summarize({ P2: { ...p2, state: 3 } });
  assert.equal(plain && "seqMax" in plain, false);
  assert.equal(plain?.colour, "GREEN");
});
