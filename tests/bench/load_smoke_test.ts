import assert from "node:assert/strict";
import { runLoadTool } from "../_server.ts";

/** The figures of `bench/load.ts --json` this test reads. */
interface LoadReport {
  result: {
    sent: number;
    received: number;
    lost: number;
    correct: number;
    correctShare: number | null;
    responsesPerSec: number;
    errors: Record<string, number>;
  };
  server: {
    exitCode: number;
    counts: Record<string, number>;
  };
}

Deno.test("bench/load.ts drives a spawned server: every answer arrives with the right next_number", async () => {
  const out = await runLoadTool(
    [
      "--mode",
      "rs256",
      "--seconds",
      "2",
      "--groups",
      "4",
      "--window",
      "32",
      // A small pool sent round and round (the server gets a tiny replay
      // cache), so signing takes about a second.
      "--cycle",
      "--json",
    ],
    60_000,
  );
  assert.equal(out.code, 0, `the load tool exits 0\nstderr:\n${out.stderr}`);
  const report = JSON.parse(out.stdout) as LoadReport;
  const r = report.result;
  assert.ok(r.received > 0, "answers were received");
  assert.equal(r.lost, 0, "nothing was lost");
  assert.equal(r.received, r.sent, "every datagram was answered");
  assert.deepEqual(r.errors, {}, "no error answers");
  assert.equal(r.correct, r.received, "every next_number is right");
  assert.equal(r.correctShare, 1);
  assert.equal(report.server.exitCode, 0, "the server stopped cleanly");
  // Every answer took the full path: none came from the replay cache.
  assert.deepEqual(report.server.counts, { ok: r.received });
});
