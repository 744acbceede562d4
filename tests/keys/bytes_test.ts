/**
 * Tests of lib/keys/_bytes.ts: the byte cursor's readers and the
 * measurements of big-endian integers.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  bitLength,
  cursor,
  expectEnd,
  readByte,
  readBytes,
  stripLeadingZeros,
} from "../../lib/keys/_bytes.ts";
import { throwsSyntax } from "./_fixtures.ts";

Deno.test("readByte(), readBytes() and expectEnd() throw a SyntaxError on short or long input", async (t) => {
  await t.step("readByte() reads then stops at the end", () => {
    const c = cursor(new Uint8Array([7, 9]));
    assert.equal(readByte(c, "x"), 7);
    assert.equal(readByte(c, "x"), 9);
    assert.equal(c.pos, 2);
    throwsSyntax(() => readByte(c, "tag byte"), /^truncated tag byte$/);
    assert.equal(c.pos, 2);
  });
  await t.step("readBytes() returns a view and checks the count", () => {
    const c = cursor(new Uint8Array([1, 2, 3]));
    assert.deepEqual(readBytes(c, 0, "x"), new Uint8Array());
    assert.deepEqual(readBytes(c, 2, "x"), new Uint8Array([1, 2]));
    throwsSyntax(() => readBytes(c, 2, "body"), /^truncated body$/);
    assert.equal(c.pos, 2);
    throwsSyntax(() => readBytes(c, -1, "body"), /^truncated body$/);
    assert.deepEqual(readBytes(c, 1, "x"), new Uint8Array([3]));
  });
  await t.step("expectEnd() counts the bytes left over", () => {
    const c = cursor(new Uint8Array(5));
    c.pos = 2;
    throwsSyntax(
      () => expectEnd(c, "thing"),
      /^3 unexpected trailing bytes after thing$/,
    );
    c.pos = 5;
    assert.doesNotThrow(() => expectEnd(c, "thing"));
  });
});

Deno.test("stripLeadingZeros() and bitLength() measure big-endian integers", async (t) => {
  const strip: [number[], number[]][] = [
    [[], []],
    [[0], [0]],
    [[0, 0, 0], [0]],
    [[0, 1], [1]],
    [[0, 0, 0x80, 0], [0x80, 0]],
    [[1, 0], [1, 0]],
  ];
  for (const [input, output] of strip) {
    await t.step(`stripLeadingZeros([${input}])`, () => {
      assert.deepEqual(
        stripLeadingZeros(new Uint8Array(input)),
        new Uint8Array(output),
      );
    });
  }
  const bits: [number[], number][] = [
    [[], 0],
    [[0], 0],
    [[1], 1],
    [[0x7f], 7],
    [[0x80], 8],
    [[1, 0], 9],
    [[0xff, 0xff], 16],
    [[0x01, 0, 0], 17],
  ];
  for (const [input, n] of bits) {
    await t.step(`bitLength([${input}]) is ${n}`, () => {
      assert.equal(bitLength(new Uint8Array(input)), n);
    });
  }
});
