import assert from "node:assert/strict";
import { type CpuProfile, selfTimes } from "../../bench/cpu_profile.ts";

Deno.test("selfTimes() sums each function's sample time, idle left out, largest first", () => {
  const frame = (functionName: string, url = "", lineNumber = 0) => ({
    functionName,
    url,
    lineNumber,
  });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)") },
      { id: 2, callFrame: frame("(idle)") },
      { id: 3, callFrame: frame("#serve", "file:///x/lib/net/server.ts", 9) },
      { id: 4, callFrame: frame("op_net_send_udp") },
    ],
    // A sample's time is the gap to the next sample.
    samples: [3, 4, 2, 3, 4],
    timeDeltas: [0, 100, 300, 1000, 200, 50],
  };
  const s = selfTimes(profile);
  assert.equal(s.busyUs, 100 + 300 + 200 + 50);
  assert.deepEqual(s.functions.map((f) => [f.name, f.us]), [
    ["op_net_send_udp", 350],
    ["#serve lib/net/server.ts:10", 300],
  ]);
  assert.deepEqual(s.files.map((f) => [f.name, f.us]), [
    ["op_net_send_udp", 350],
    ["lib/net/server.ts", 300],
  ]);
});
