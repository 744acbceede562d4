/**
 * Tests of lib/keys/_der.ts: the DER readers (elements with short and long
 * form lengths, unsigned integers, object identifiers).
 *
 * @module
 */

import assert from "node:assert/strict";
import { cursor } from "../../lib/keys/_bytes.ts";
import {
  enter,
  peekTag,
  readElement,
  readOid,
  readUnsigned,
  TAG,
} from "../../lib/keys/_der.ts";
import { concat, der, throwsSyntax } from "./_fixtures.ts";

Deno.test("readElement(), readUnsigned() and readOid() read DER", async (t) => {
  await t.step("readElement() reads short and long form lengths", () => {
    const long = new Uint8Array(300).fill(7);
    const c = cursor(
      concat(
        der(TAG.OID, new Uint8Array([1])),
        der(TAG.SEQUENCE, new Uint8Array(200)),
        der(TAG.SEQUENCE, long),
      ),
    );
    assert.deepEqual(readElement(c, TAG.OID, "a"), new Uint8Array([1]));
    assert.equal(peekTag(c), TAG.SEQUENCE);
    assert.equal(readElement(c, TAG.SEQUENCE, "b").length, 200);
    assert.deepEqual(enter(c, TAG.SEQUENCE, "c").bytes, long);
    assert.equal(peekTag(c), undefined);
  });
  await t.step("readElement() names the expected and found tags", () => {
    throwsSyntax(
      () =>
        readElement(cursor(Uint8Array.fromHex("0500")), TAG.SEQUENCE, "thing"),
      /^expected thing \(DER tag 0x30\), found tag 0x5$/,
    );
  });
  await t.step(
    "readUnsigned() drops the sign byte and refuses negatives",
    () => {
      assert.deepEqual(
        readUnsigned(cursor(Uint8Array.fromHex("020200ff")), "i"),
        new Uint8Array([0xff]),
      );
      assert.deepEqual(
        readUnsigned(cursor(Uint8Array.fromHex("020100")), "i"),
        new Uint8Array([0]),
      );
      throwsSyntax(
        () => readUnsigned(cursor(Uint8Array.fromHex("0201ff")), "i"),
        /^i is not a positive integer$/,
      );
      throwsSyntax(
        () => readUnsigned(cursor(Uint8Array.fromHex("0200")), "i"),
        /^i is not a positive integer$/,
      );
    },
  );
  const oids: [string, string][] = [
    ["06092a864886f70d010101", "1.2.840.113549.1.1.1"],
    ["06072a8648ce3d0201", "1.2.840.10045.2.1"],
    ["06082a8648ce3d030107", "1.2.840.10045.3.1.7"],
    ["06032b6570", "1.3.101.112"],
    ["06052b81040022", "1.3.132.0.34"],
    ["06028837", "2.999"],
    ["060100", "0.0"],
  ];
  for (const [bytes, dotted] of oids) {
    await t.step(`readOid() reads ${dotted}`, () => {
      assert.equal(readOid(cursor(Uint8Array.fromHex(bytes)), "oid"), dotted);
    });
  }
  await t.step("readOid() refuses an empty OID and a cut-off last arc", () => {
    throwsSyntax(
      () => readOid(cursor(Uint8Array.fromHex("0600")), "oid"),
      /empty oid/,
    );
    throwsSyntax(
      () => readOid(cursor(Uint8Array.fromHex("06022a86")), "oid"),
      /truncated oid/,
    );
    throwsSyntax(
      () => readOid(cursor(Uint8Array.fromHex("06042a864886")), "oid"),
      /truncated oid/,
    );
    assert.equal(
      readOid(cursor(Uint8Array.fromHex("06032a8648")), "oid"),
      "1.2.840",
    );
  });
});
