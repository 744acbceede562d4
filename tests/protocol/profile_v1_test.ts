import assert from "node:assert/strict";
import {
  advanceV1,
  answerClaimsV1,
  checkClaimsV1,
  expectedV1,
  otpNumber,
  readGroupV1,
} from "../../lib/protocol/profile_v1.ts";
import { AUDIENCE } from "../_helpers.ts";

const NOW = 1_800_000_000;
const now = new Date(NOW * 1000);

function claims(extra?: Record<string, unknown>): Record<string, unknown> {
  return {
    group: "alpha",
    seq_number: 1,
    seq_max: 3,
    matricula: 20230001,
    ...extra,
  };
}

function without(name: string): Record<string, unknown> {
  const c = claims();
  delete c[name];
  return c;
}

Deno.test("advanceV1() follows every row of the v1 event table", async (t) => {
  // [state, event, M, expected transition or null for NO ACTION]
  const rows: [number, number, number, [number, number] | null, string][] = [
    [0, 0, 3, [0, 1], "sn = 0 in state 0"],
    [2, 0, 3, [0, 1], "sn = 0 from the middle"],
    [3, 0, 3, [0, 1], "sn = 0 from the final state"],
    [1, 1, 3, [1, 2], "a repeat of 1"],
    [2, 2, 3, [2, 3], "a repeat of 2"],
    [3, 3, 3, [3, 0], "a repeat of the final state answers 0"],
    [0, 1, 3, [1, 2], "the first member"],
    [1, 2, 3, [2, 3], "the next member"],
    [2, 3, 3, [3, 0], "sn = M answers 0: all received"],
    [0, 1, 1, [1, 0], "M = 1: one step completes"],
    [0, 2, 3, null, "a jump forward"],
    [2, 1, 3, null, "a step back"],
    [3, 1, 3, null, "a step back from the final state"],
    [0, -1, 3, null, "sn < 0"],
    [2, 4, 3, null, "sn > M"],
    [3, 4, 3, null, "sn = M + 1 from the final state"],
    [0, 1001, 1000, null, "sn past the largest M"],
  ];
  for (const [state, sn, max, want, what] of rows) {
    await t.step(`${what}: state ${state}, event ${sn}, M ${max}`, () => {
      const got = advanceV1(state, sn, { max });
      assert.deepEqual(
        got,
        want && { state: want[0], nextNumber: want[1] },
      );
    });
  }
});

Deno.test("advanceV1() leaves a state above a smaller M only with event 0", () => {
  // The group reached 5 with seq_max 5; a request now says seq_max 3.
  assert.equal(advanceV1(5, 5, { max: 3 }), null, "no repeat past M");
  assert.equal(advanceV1(5, 6, { max: 3 }), null);
  assert.equal(advanceV1(5, 3, { max: 3 }), null);
  assert.deepEqual(advanceV1(5, 0, { max: 3 }), { state: 0, nextNumber: 1 });
  // A larger M lets a finished walk go on: 3 of 3 is then 3 of 5.
  assert.deepEqual(advanceV1(3, 4, { max: 5 }), { state: 4, nextNumber: 5 });
  assert.deepEqual(advanceV1(3, 3, { max: 5 }), { state: 3, nextNumber: 4 });
});

Deno.test("expectedV1() is 0 in the final state M, else the next member", () => {
  assert.equal(expectedV1(0, { max: 3 }), 1);
  assert.equal(expectedV1(2, { max: 3 }), 3);
  assert.equal(expectedV1(3, { max: 3 }), 0);
});

Deno.test("readGroupV1() reads the group claim in any case", () => {
  assert.equal(readGroupV1({ group: "HeartBeat" }), "HEARTBEAT");
  assert.throws(() => readGroupV1({ sub: "alpha" }), {
    code: "MISSING_CLAIM",
    message: /"group"/,
  });
  for (const bad of [42, "", "a b", "x".repeat(65), "ſ", null]) {
    assert.throws(() => readGroupV1({ group: bad }), { code: "BAD_CLAIM" });
  }
});

Deno.test("checkClaimsV1() accepts the four v1 claims alone", () => {
  assert.deepEqual(checkClaimsV1(claims(), { now }), {
    group: "alpha",
    seqNumber: 1,
    seqMax: 3,
    matricula: 20230001,
  });
});

Deno.test("checkClaimsV1() takes a matricula as a number or a string of 1-20 digits", async (t) => {
  const cases: [unknown, number | string | undefined][] = [
    [20230001, 20230001],
    [-5, -5],
    [7.0, 7],
    ["20230001", 20230001],
    ["0", 0],
    ["007", "007"],
    ["12345678901234567890", "12345678901234567890"],
    ["9007199254740993", "9007199254740993"],
    ["123456789012345678901", undefined],
    ["", undefined],
    ["12a", undefined],
    ["-5", undefined],
    [" 1", undefined],
    [1.5, undefined],
    [true, undefined],
    [null, undefined],
  ];
  for (const [value, want] of cases) {
    await t.step(JSON.stringify(value), () => {
      if (want === undefined) {
        assert.throws(
          () => checkClaimsV1(claims({ matricula: value }), { now }),
          { code: "BAD_CLAIM", message: /"matricula"/ },
        );
      } else {
        const got = checkClaimsV1(claims({ matricula: value }), { now });
        assert.equal(got.matricula, want);
      }
    });
  }
});

Deno.test("checkClaimsV1() reports missing and malformed claims", async (t) => {
  await t.step("each required claim missing", () => {
    for (const name of ["group", "seq_number", "seq_max", "matricula"]) {
      assert.throws(() => checkClaimsV1(without(name), { now }), {
        code: "MISSING_CLAIM",
        message: new RegExp(`"${name}"`),
      });
    }
  });
  const bad: [string, unknown][] = [
    ["seq_number", 1.5],
    ["seq_number", "1"],
    ["seq_max", 0],
    ["seq_max", 1001],
    ["seq_max", 2.5],
    ["seq_max", "3"],
    ["aud", 5],
    ["aud", []],
    ["iat", "now"],
    ["exp", null],
    ["jti", ""],
    ["jti", "has space"],
  ];
  for (const [name, value] of bad) {
    await t.step(`${name} ${JSON.stringify(value)}`, () => {
      assert.throws(
        () => checkClaimsV1(claims({ [name]: value }), { now }),
        { code: "BAD_CLAIM", message: new RegExp(`"${name}"`) },
      );
    });
  }
  await t.step("seq_max 1000 is the largest", () => {
    assert.equal(
      checkClaimsV1(claims({ seq_max: 1000 }), { now }).seqMax,
      1000,
    );
  });
  await t.step("MISSING_CLAIM before BAD_CLAIM, BAD_CLAIM in order", () => {
    const c = without("matricula");
    c.aud = 5;
    assert.throws(() => checkClaimsV1(c, { now }), { code: "MISSING_CLAIM" });
    assert.throws(
      () => checkClaimsV1(claims({ aud: 5, seq_max: 0 }), { now }),
      { message: /"aud"/ },
    );
  });
});

Deno.test("checkClaimsV1() checks aud, iat, exp and jti only when present", async (t) => {
  const full = {
    aud: AUDIENCE,
    iat: NOW,
    exp: NOW + 60,
    jti: "0123456789abcdef0123456789abcdef",
  };
  await t.step("all four, valid", () => {
    const got = checkClaimsV1(claims(full), { now });
    assert.equal(got.iat, NOW);
    assert.equal(got.exp, NOW + 60);
    assert.equal(got.jti, full.jti);
  });
  await t.step("aud as an array that names the server", () => {
    checkClaimsV1(claims({ aud: ["x", AUDIENCE] }), { now });
  });
  await t.step("a wrong aud", () => {
    assert.throws(
      () => checkClaimsV1(claims({ aud: "someone.else" }), { now }),
      { code: "BAD_AUDIENCE" },
    );
  });
  await t.step("an expired exp, past the leeway", () => {
    assert.throws(
      () => checkClaimsV1(claims({ exp: NOW - 31 }), { now }),
      { code: "TOKEN_EXPIRED" },
    );
    checkClaimsV1(claims({ exp: NOW - 30 }), { now });
    assert.throws(
      () => checkClaimsV1(claims({ exp: NOW - 2 }), { now, leewaySec: 1 }),
      { code: "TOKEN_EXPIRED" },
    );
  });
  await t.step("an iat in the future, past the leeway", () => {
    assert.throws(
      () => checkClaimsV1(claims({ iat: NOW + 31 }), { now }),
      { code: "TOKEN_NOT_YET_VALID" },
    );
  });
  await t.step("the order: audience, expiry, then not yet valid", () => {
    const all = { aud: "x", exp: NOW - 100, iat: NOW + 100 };
    assert.throws(() => checkClaimsV1(claims(all), { now }), {
      code: "BAD_AUDIENCE",
    });
    assert.throws(
      () => checkClaimsV1(claims({ ...all, aud: AUDIENCE }), { now }),
      { code: "TOKEN_EXPIRED" },
    );
  });
});

Deno.test("checkClaimsV1() wants seq_max to be the roster's count when it lists the group", () => {
  checkClaimsV1(claims({ seq_max: 4 }), { now, members: 4 });
  assert.throws(
    () => checkClaimsV1(claims({ seq_max: 3 }), { now, members: 4 }),
    { code: "SEQ_MAX_MISMATCH", message: /must be 4/ },
  );
  // After the time checks, as in protocol 2.
  assert.throws(
    () =>
      checkClaimsV1(claims({ seq_max: 3, exp: NOW - 100 }), {
        now,
        members: 4,
      }),
    { code: "TOKEN_EXPIRED" },
  );
});

Deno.test("answerClaimsV1() makes exactly the four v1 claims", () => {
  const a = answerClaimsV1({
    idRequest: "ab".repeat(32),
    nextNumber: 2,
    now: new Date(NOW * 1000 + 999),
    randomHex: "0000ffff" + "0".repeat(24),
  });
  assert.deepEqual(a, {
    id_request: "ab".repeat(32),
    next_number: 2,
    otp_number: String(0xffff % 20001),
    otp_timestamp: NOW,
  });
});

Deno.test("otpNumber() is a string of a number from 0 to 20000", () => {
  assert.equal(otpNumber("00000000"), "0");
  assert.equal(otpNumber("00004e20"), "20000");
  assert.equal(otpNumber("00004e21"), "0");
  for (let i = 0; i < 200; i++) {
    const hex = crypto.getRandomValues(new Uint8Array(16)).toHex();
    const otp = otpNumber(hex);
    assert.match(otp, /^(0|[1-9]\d{0,4})$/);
    assert.ok(Number(otp) <= 20000);
  }
});
