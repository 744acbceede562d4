import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import {
  formatConsoleLine,
  formatDatagramLine,
  formatJsonLine,
  IsoClock,
  JsonLinesFile,
} from "../../lib/cli/log.ts";
import type { DatagramRecord } from "../../lib/net/server.ts";

const record: LogRecord = {
  category: ["udpjwt", "datagram"],
  level: "info",
  message: ["", "ok", " from ", "127.0.0.1", ":", 5000, ""],
  rawMessage: "{outcome} from {peer}:{port}",
  timestamp: Date.UTC(2026, 10, 23, 12, 0, 0, 5),
  properties: { outcome: "ok", peer: "127.0.0.1", port: 5000, us: 812 },
};

Deno.test("formatJsonLine() writes one JSON object per line with the record's fields", () => {
  const line = formatJsonLine(record);
  assert.ok(line.endsWith("\n"));
  assert.equal(line.indexOf("\n"), line.length - 1);
  assert.deepEqual(JSON.parse(line), {
    time: "2026-11-23T12:00:00.005Z",
    level: "info",
    category: "datagram",
    message: "ok from 127.0.0.1:5000",
    outcome: "ok",
    peer: "127.0.0.1",
    port: 5000,
    us: 812,
  });
});

Deno.test("formatConsoleLine() prints plain text without colour and ANSI with it", () => {
  assert.equal(
    formatConsoleLine(record),
    "2026-11-23T12:00:00.005Z INFO    ok from 127.0.0.1:5000",
  );
  assert.equal(
    formatConsoleLine(record, { colour: false }).includes("\x1b"),
    false,
  );
  assert.ok(formatConsoleLine(record, { colour: true }).includes("\x1b[32m"));
});

Deno.test("formatDatagramLine() writes what formatJsonLine() wrote for the same LogTape record", () => {
  const at = Date.UTC(2026, 10, 23, 12, 0, 0, 5);
  const cases: DatagramRecord[] = [
    {
      peer: "127.0.0.1",
      port: 5000,
      bytes: 612,
      group: "HEARTBEAT",
      outcome: "ok",
      seq_state_number: 3,
      next_number: 4,
      registration: 20230001,
      us: 812,
    },
    {
      peer: "::1",
      port: 6000,
      bytes: 40,
      group: null,
      outcome: "dropped:amplification",
      error: "MALFORMED_TOKEN",
      detail: 'the token has "1" part\n',
      seq_state_number: null,
      next_number: null,
      registration: null,
      us: 3,
    },
    {
      peer: "10.0.0.9",
      port: null,
      bytes: 4000,
      group: null,
      outcome: "dropped:rate_limit",
      count: 40,
      seq_state_number: null,
      next_number: null,
      registration: null,
      us: null,
    },
  ];
  for (const r of cases) {
    const template = r.count === undefined
      ? ["", r.outcome, " from ", r.peer, ":", r.port, ""]
      : ["", r.outcome, " x", r.count, " from ", r.peer, ""];
    const viaLogTape = formatJsonLine({
      category: ["udpjwt", "datagram"],
      level: "info",
      message: template,
      rawMessage: "",
      timestamp: at,
      properties: { ...r },
    });
    assert.equal(formatDatagramLine(at, r), viaLogTape);
  }
});

Deno.test("IsoClock.format() matches Date.toISOString() across seconds and days", () => {
  const clock = new IsoClock();
  const start = Date.UTC(2026, 11, 31, 23, 59, 58, 990);
  for (let ms = start; ms < start + 2200; ms += 7) {
    assert.equal(clock.format(ms), new Date(ms).toISOString());
  }
  assert.equal(clock.format(0), "1970-01-01T00:00:00.000Z");
});

Deno.test("JsonLinesFile appends lines, rotates, and drops what it cannot write without throwing", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_log_test_" });
  try {
    await t.step("lines reach the file by close() in order", async () => {
      const f = await JsonLinesFile.open(`${dir}/a.jsonl`, { bufferSize: 64 });
      for (let i = 0; i < 100; i++) f.append(`{"i":${i}}\n`);
      await f.close();
      const lines = (await Deno.readTextFile(`${dir}/a.jsonl`)).split("\n");
      assert.equal(lines.length, 101);
      assert.deepEqual(
        lines.slice(0, 100),
        [...Array(100).keys()].map((i) => `{"i":${i}}`),
      );
    });
    await t.step("a file past maxSize is rotated to .1, .2, …", async () => {
      const f = await JsonLinesFile.open(`${dir}/b.jsonl`, {
        bufferSize: 1,
        maxSize: 100,
        maxFiles: 3,
      });
      for (let i = 0; i < 30; i++) {
        f.append(`${"x".repeat(38)}\n`);
        await new Promise((r) => setTimeout(r, 2));
      }
      await f.close();
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.startsWith("b.jsonl")
      ).sort();
      assert.deepEqual(names, ["b.jsonl", "b.jsonl.1", "b.jsonl.2"]);
      for (const n of names) {
        assert.ok(Deno.statSync(`${dir}/${n}`).size <= 100);
      }
    });
    await t.step(
      "a full disk: records dropped, counted, reported once; writing resumes",
      async () => {
        const errors: number[] = [];
        let full = true;
        const written: string[] = [];
        const file = {
          write: (b: Uint8Array) => {
            if (full) {
              // Half of the first line fits, then the disk is full.
              if (written.length === 0) {
                written.push(new TextDecoder().decode(b.subarray(0, 2)));
                return Promise.resolve(2);
              }
              return Promise.reject(new Error("No space left on device"));
            }
            written.push(new TextDecoder().decode(b));
            return Promise.resolve(b.length);
          },
          syncData: () => Promise.resolve(),
          close: () => {},
        };
        const f = await JsonLinesFile.open("full.jsonl", {
          bufferSize: 1,
          onError: (_e, dropped) => errors.push(dropped),
          openFile: () => Promise.resolve({ file, size: 0 }),
        });
        for (let i = 0; i < 5; i++) {
          f.append(`{"i":${i}}\n`);
          await new Promise((r) => setTimeout(r, 5));
        }
        full = false;
        f.append('{"i":5}\n');
        await f.close();
        assert.equal(f.dropped, 5);
        assert.deepEqual(errors, [1]);
        assert.equal(written.join(""), '{"\n{"i":5}\n');
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
