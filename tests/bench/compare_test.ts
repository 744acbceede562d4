/**
 * `--compare-ceiling` without the lean server itself (it lives outside the
 * repository): its flags, the arithmetic of CPU per answer and the medians,
 * and the error when the lean server's file is missing.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  compareCeiling,
  type CompareRun,
  cpuPerAnswer,
  median,
  pairRatios,
} from "../../bench/load/compare.ts";
import {
  type Options,
  parseOptions,
  UsageError,
} from "../../bench/load/options.ts";

function parse(args: string[]): Options {
  const o = parseOptions(args);
  assert.notEqual(o, "help");
  return o as Options;
}

Deno.test("parseOptions() reads --compare-ceiling with and without a PATH", async (t) => {
  await t.step("no flag: no comparison, the usual defaults", () => {
    const o = parse([]);
    assert.equal(o.compareCeiling, undefined);
    assert.equal(o.window, 64);
    assert.equal(o.seconds, 10);
    assert.equal(o.cycle, false);
  });
  await t.step(
    "bare flag: the default path, 3 pairs, both algorithms, W=32, 6 s, cycled",
    () => {
      const o = parse(["--compare-ceiling"]);
      assert.deepEqual(o.compareCeiling, {
        path: undefined,
        pairs: 3,
        algs: ["RS256", "ES256"],
      });
      assert.equal(o.window, 32);
      assert.equal(o.seconds, 6);
      assert.equal(o.cycle, true);
    },
  );
  await t.step("a following flag is not taken for the PATH", () => {
    const o = parse(["--compare-ceiling", "--pairs", "5", "--mode", "es256"]);
    assert.deepEqual(o.compareCeiling, {
      path: undefined,
      pairs: 5,
      algs: ["ES256"],
    });
  });
  await t.step("PATH as the next word or after =", () => {
    assert.equal(
      parse(["--compare-ceiling", "/x/lean.ts"]).compareCeiling?.path,
      "/x/lean.ts",
    );
    assert.equal(
      parse(["--compare-ceiling=y.ts", "--window", "8"]).compareCeiling?.path,
      "y.ts",
    );
    assert.equal(parse(["--compare-ceiling=y.ts", "--window", "8"]).window, 8);
  });
  await t.step("flags that do not fit are usage errors", () => {
    for (
      const args of [
        ["--pairs", "3"],
        ["--compare-ceiling", "--mode", "flood"],
        ["--compare-ceiling", "--port", "4000", "--lab", "x"],
        ["--compare-ceiling", "--no-fsync"],
        ["--compare-ceiling", "--pairs", "0"],
      ]
    ) {
      assert.throws(() => parseOptions(args), UsageError, args.join(" "));
    }
  });
});

Deno.test("cpuPerAnswer() divides the CPU seconds between two readings by the answers", () => {
  const before = { at: 0, process: 10, main: 8 };
  const after = { at: 6000, process: 11.5, main: 9.2 };
  assert.deepEqual(cpuPerAnswer(before, after, 10_000), {
    processUs: 150,
    mainUs: 120,
  });
  assert.deepEqual(cpuPerAnswer(before, after, 0), {
    processUs: null,
    mainUs: null,
  });
});

Deno.test("median() and pairRatios() give the figures of the comparison", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, null, 2, 3]), 2.5);
  assert.equal(median([null]), null);
  const run = (
    server: "lean" | "main",
    pair: number,
    processUs: number | null,
  ): CompareRun => ({
    server,
    pair,
    answers: 1,
    errors: 0,
    lost: 0,
    wrong: 0,
    answersPerSec: 1,
    p50Ms: 1,
    processUs,
    mainUs: null,
  });
  const runs = [
    run("lean", 1, 100),
    run("main", 1, 150),
    run("main", 2, 200),
    run("lean", 2, 160),
    run("lean", 3, null),
    run("main", 3, 120),
  ];
  assert.deepEqual(pairRatios(runs, 3), [1.5, 1.25, null]);
  assert.equal(median(pairRatios(runs, 3)), 1.375);
});

Deno.test("compareCeiling() names the missing lean server file", async () => {
  const o = parse(["--compare-ceiling", "/nonexistent/lean_server.ts"]);
  await assert.rejects(
    () => compareCeiling(o, () => {}),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message.includes('"/nonexistent/lean_server.ts"'),
  );
});
