/**
 * Tests of lib/keys/_ssh_wire.ts: the readers and the writer of the SSH wire
 * format (RFC 4251 strings and mpints).
 *
 * @module
 */

import assert from "node:assert/strict";
import { cursor, expectEnd, stripLeadingZeros } from "../../lib/keys/_bytes.ts";
import {
  encodeWire,
  readMpint,
  readString,
  readText,
} from "../../lib/keys/_ssh_wire.ts";
import { hex, throwsSyntax } from "./_fixtures.ts";

Deno.test("readString(), readText() and readMpint() read the SSH wire format", async (t) => {
  await t.step("readString() reads a length-prefixed string", () => {
    const c = cursor(Uint8Array.fromHex("00000003616263000000"));
    assert.deepEqual(readString(c, "s"), new TextEncoder().encode("abc"));
    throwsSyntax(() => readString(c, "next"), /^truncated length of next$/);
  });
  await t.step("readString() refuses an absurd length before reading", () => {
    throwsSyntax(
      () => readString(cursor(Uint8Array.fromHex("00004001")), "blob"),
      /^blob claims 16385 bytes, more than any key has$/,
    );
    throwsSyntax(
      () => readString(cursor(Uint8Array.fromHex("00004000")), "blob"),
      /^truncated blob$/,
    );
  });
  await t.step("readText() accepts printable ASCII only", () => {
    assert.equal(readText(cursor(encodeWire(["ssh-rsa"])), "t"), "ssh-rsa");
    assert.equal(readText(cursor(encodeWire([""])), "t"), "");
    for (const bad of [[0x7f], [0x1f], [0x00], [0xc3, 0xa9]]) {
      throwsSyntax(
        () => readText(cursor(encodeWire([new Uint8Array(bad)])), "name"),
        /^name is not printable ASCII$/,
      );
    }
  });
  await t.step("readMpint() strips leading zeros and refuses negatives", () => {
    assert.deepEqual(
      readMpint(cursor(Uint8Array.fromHex("0000000300ff01")), "m"),
      new Uint8Array([0xff, 1]),
    );
    assert.deepEqual(
      readMpint(cursor(Uint8Array.fromHex("00000001" + "00")), "m"),
      new Uint8Array([0]),
    );
    throwsSyntax(
      () => readMpint(cursor(Uint8Array.fromHex("00000001ff")), "m"),
      /^m is not a positive integer$/,
    );
    throwsSyntax(
      () => readMpint(cursor(Uint8Array.fromHex("00000000")), "m"),
      /^m is not a positive integer$/,
    );
  });
  await t.step(
    "encodeWire() writes strings and mpints as RFC 4251 says",
    () => {
      assert.equal(
        hex(encodeWire([
          "ab",
          { mpint: new Uint8Array([0x80]) },
          { mpint: new Uint8Array([0, 0, 1]) },
          new Uint8Array([0xff]),
        ])),
        "000000026162" + "000000020080" + "0000000101" + "00000001ff",
      );
      assert.equal(hex(encodeWire([])), "");
    },
  );
  await t.step("readMpint() reads back what encodeWire() wrote", () => {
    for (
      const h of [
        "01",
        "7f",
        "80",
        "ff",
        "0100",
        "ffff",
        "00ab",
        "8000000000000000",
      ]
    ) {
      const value = Uint8Array.fromHex(h);
      const c = cursor(encodeWire([{ mpint: value }]));
      assert.deepEqual(readMpint(c, "m"), stripLeadingZeros(value), h);
      assert.doesNotThrow(() => expectEnd(c, "m"));
    }
  });
});
