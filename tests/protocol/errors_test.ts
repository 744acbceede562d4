import assert from "node:assert/strict";
import { ProtocolError, protocolError } from "../../lib/protocol/errors.ts";

Deno.test("protocolError makes a ProtocolError that behaves like one built with new", () => {
  const cause = new SyntaxError("bad JSON");
  const made = protocolError("MALFORMED_TOKEN", "the payload is not JSON", {
    cause,
  });
  const built = new ProtocolError(
    "MALFORMED_TOKEN",
    "the payload is not JSON",
    {
      cause,
    },
  );
  for (const e of [made, built]) {
    assert.ok(e instanceof ProtocolError);
    assert.ok(e instanceof Error);
    assert.equal(e.name, "ProtocolError");
    assert.equal(e.code, "MALFORMED_TOKEN");
    assert.equal(e.message, "the payload is not JSON");
    assert.equal(e.cause, cause);
    assert.equal(String(e), "ProtocolError: the payload is not JSON");
  }
  assert.equal(made.stack, undefined, "no stack trace is captured");
  assert.ok(!("cause" in protocolError("BAD_CLAIM", "x")), "no cause given");
  assert.throws(
    () => {
      throw protocolError("BAD_CLAIM", "exp is not a number");
    },
    {
      name: "ProtocolError",
      code: "BAD_CLAIM",
      message: "exp is not a number",
    },
  );
});

Deno.test("ERROR_CODES lists UNKNOWN_KEY (protocol 2.1) between UNKNOWN_GROUP and BAD_SIGNATURE", async () => {
  const { ERROR_CODES } = await import("../../lib/protocol/errors.ts");
  const i = ERROR_CODES.indexOf("UNKNOWN_KEY");
  assert.ok(i > 0);
  assert.equal(ERROR_CODES[i - 1], "UNKNOWN_GROUP");
  assert.equal(ERROR_CODES[i + 1], "BAD_SIGNATURE");
});
