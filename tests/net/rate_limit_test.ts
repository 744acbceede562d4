import assert from "node:assert/strict";
import { ErrorBudget } from "../../lib/net/rate_limit.ts";

Deno.test("ErrorBudget allows a burst, then the configured rate", () => {
  const b = new ErrorBudget({ rate: 10, burst: 5 });
  let allowed = 0;
  for (let i = 0; i < 20; i++) {
    if (b.available("a", 0)) {
      b.take("a", 0);
      allowed++;
    }
  }
  assert.equal(allowed, 5);
  assert.equal(b.available("a", 50), false, "half a token after 50 ms");
  assert.equal(b.available("a", 100), true, "one token after 100 ms");
  b.take("a", 100);
  assert.equal(b.available("a", 100), false);
  assert.equal(b.available("a", 10_000), true);
});

Deno.test("ErrorBudget keeps sources apart", () => {
  const b = new ErrorBudget({ rate: 1, burst: 1 });
  b.take("a", 0);
  assert.equal(b.available("a", 0), false);
  assert.equal(b.available("b", 0), true);
});

Deno.test("ErrorBudget forgets the least recently used source past its bound", () => {
  const b = new ErrorBudget({ rate: 1, burst: 1, maxSources: 3 });
  for (const s of ["a", "b", "c"]) b.take(s, 0);
  b.take("a", 0); // a is now the most recently used
  b.take("d", 0); // evicts b
  assert.equal(b.size, 3);
  assert.equal(b.available("b", 0), true, "b was forgotten: full bucket");
  assert.equal(b.available("a", 0), false);
  assert.equal(b.available("c", 0), false);
});

Deno.test("ErrorBudget neither drains nor refills when the clock steps back or forward by an hour", () => {
  const hour = 3_600_000;
  const b = new ErrorBudget({ rate: 10, burst: 5 });
  for (let i = 0; i < 3; i++) assert.ok(b.take("a", 1_000_000));
  assert.ok(
    b.available("a", 1_000_000 - hour),
    "2 tokens left after a step back",
  );
  assert.ok(b.take("a", 1_000_000 - hour));
  assert.ok(b.take("a", 1_000_000 - hour));
  assert.equal(b.take("a", 1_000_000 - hour), false, "empty, not negative");
  assert.ok(b.take("a", 1_000_000 - hour + 100), "refills at the rate again");
  for (let i = 0; i < 5; i++) assert.ok(b.take("a", 1_000_000 + hour));
  assert.equal(
    b.take("a", 1_000_000 + hour),
    false,
    "a forward step refills only the burst",
  );
});
