import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { formatConsoleLine, formatJsonLine } from "../../lib/cli/log.ts";

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
