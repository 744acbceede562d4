import assert from "node:assert/strict";
import {
  advance,
  colourOf,
  COLOURS,
  expected,
} from "../../lib/protocol/fsm.ts";

Deno.test("expected() waits for the next state, and for 0 after the final one", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((s) => expected(s)), [
    1,
    2,
    3,
    4,
    5,
    6,
    0,
  ]);
  assert.equal(expected(2, { states: 3 }), 0);
});

Deno.test("advance() follows every row of the protocol's table", async (t) => {
  await t.step("out of range events get no response at all", () => {
    for (let s = 0; s < 7; s++) {
      for (const sn of [-1, -100, 7, 8, 1e9, 0.5, Number.NaN]) {
        assert.equal(advance(s, sn), null, `state ${s}, event ${sn}`);
      }
    }
  });
  await t.step("event 0 restarts from any state and answers 1", () => {
    for (let s = 0; s < 7; s++) {
      assert.deepEqual(advance(s, 0), { state: 0, nextNumber: 1 });
    }
  });
  await t.step(
    "a repeat keeps the state and answers the expected number",
    () => {
      for (let s = 1; s < 7; s++) {
        assert.deepEqual(advance(s, s), { state: s, nextNumber: expected(s) });
      }
    },
  );
  await t.step("the next event advances; the final state answers 0", () => {
    for (let s = 0; s < 6; s++) {
      const next = s + 1;
      assert.deepEqual(advance(s, next), {
        state: next,
        nextNumber: next === 6 ? 0 : next + 1,
      });
    }
  });
  await t.step(
    "an out-of-order event answers the number the machine waits for",
    () => {
      for (let s = 0; s < 7; s++) {
        for (let sn = 1; sn < 7; sn++) {
          if (sn === s || sn === s + 1) continue;
          assert.deepEqual(advance(s, sn), {
            state: s,
            nextNumber: expected(s),
          });
        }
      }
    },
  );
});

Deno.test("advance() walks 0..6 answering 1,2,3,4,5,6,0", () => {
  let state = 0;
  const answers: number[] = [];
  for (let sn = 0; sn < 7; sn++) {
    const t = advance(state, sn);
    assert.ok(t);
    state = t.state;
    answers.push(t.nextNumber);
  }
  assert.deepEqual(answers, [1, 2, 3, 4, 5, 6, 0]);
  assert.equal(state, 6);
});

Deno.test("advance() honours a configured number of states", () => {
  assert.deepEqual(advance(1, 2, { states: 3 }), { state: 2, nextNumber: 0 });
  assert.equal(advance(2, 3, { states: 3 }), null);
  assert.deepEqual(advance(8, 9, { states: 10 }), { state: 9, nextNumber: 0 });
});

Deno.test("colourOf() names the seven colours and numbers the rest", () => {
  assert.deepEqual(COLOURS.map((_, i) => colourOf(i)), [
    "RED",
    "ORANGE",
    "YELLOW",
    "GREEN",
    "BLUE",
    "INDIGO",
    "VIOLET",
  ]);
  assert.equal(colourOf(7), "STATE-7");
});
