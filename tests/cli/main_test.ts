/**
 * Tests of main.ts's dispatch: every subcommand is reached by its name, and a
 * word that is neither a subcommand nor an address is a usage error.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runMain } from "../_server.ts";

Deno.test("main.ts treats unknown subcommands as usage errors (exit 2)", async (t) => {
  for (const word of ["constructor", "toString", "__proto__", "sned"]) {
    await t.step(word, async () => {
      const r = await runMain([word]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`Unknown command "${word}"`));
      assert.match(r.stderr, /expected serve, send, keygen, keys, status/);
    });
  }
});

Deno.test("main.ts reaches each subcommand's help by its name", async (t) => {
  for (const name of ["serve", "send", "keygen", "keys", "status"]) {
    await t.step(name, async () => {
      const r = await runMain([name, "--help"]);
      assert.equal(r.code, 0, r.stderr);
      const usage = name === "serve"
        ? "Usage: udpjwt [serve]"
        : `Usage: udpjwt ${name}`;
      assert.ok(r.stdout.startsWith(usage), r.stdout.slice(0, 80));
    });
  }
});
