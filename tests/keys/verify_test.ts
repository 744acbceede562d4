import assert from "node:assert/strict";
import { loadKeys } from "../../lib/keys/key_ring.ts";
import { parseToken } from "../../lib/protocol/token.ts";
import {
  rawEcdsaToDer,
  selectBackend,
  syncVerifier,
  webCryptoBackend,
} from "../../lib/keys/verify.ts";
import { VECTORS } from "../_helpers.ts";
import { REPO_ROOT } from "../_server.ts";

const { backend: native, note } = selectBackend();
const HAS_OPENSSL = native.name === "openssl";
const vectors = JSON.parse(await Deno.readTextFile(`${VECTORS}vectors.json`))
  .vectors as { name: string; token: string; group?: string }[];

/** DER `SEQUENCE { INTEGER r, INTEGER s }` back to 64 bytes of r||s. */
function derToRaw(der: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  let pos = 2;
  for (const half of [0, 32]) {
    const len = der[pos + 1]!;
    let v = der.subarray(pos + 2, pos + 2 + len);
    while (v.length > 32) v = v.subarray(1);
    out.set(v, half + 32 - v.length);
    pos += 2 + len;
  }
  return out;
}

Deno.test("rawEcdsaToDer() writes the DER that OpenSSL itself produced", () => {
  const v = vectors.find((x) => x.name === "ecdsa-der-signature")!;
  const der = Uint8Array.fromBase64(v.token.split(".")[2]!, {
    alphabet: "base64url",
  });
  assert.deepEqual(rawEcdsaToDer(derToRaw(der)), der);
  assert.equal(rawEcdsaToDer(new Uint8Array(63)), null);
  // High bits get a zero byte; leading zeros are dropped.
  const raw = new Uint8Array(64);
  raw[0] = 0x80;
  raw[63] = 1;
  assert.deepEqual(
    rawEcdsaToDer(raw)!.subarray(0, 5),
    new Uint8Array([0x30, 38, 0x02, 33, 0x00]),
  );
  assert.deepEqual(
    rawEcdsaToDer(raw)!.subarray(-3),
    new Uint8Array([0x02, 1, 1]),
  );
});

Deno.test({
  name: "the OpenSSL and WebCrypto backends agree on every vector signature",
  ignore: !HAS_OPENSSL,
  fn: async () => {
    const fast = await loadKeys(`${VECTORS}keys_pub`, { backend: native });
    const slow = await loadKeys(`${VECTORS}keys_pub`, {
      backend: webCryptoBackend,
    });
    let checked = 0;
    let valid = 0;
    for (const v of vectors) {
      let parsed;
      try {
        parsed = parseToken(v.token);
      } catch {
        continue;
      }
      for (const group of fast.groups.keys()) {
        const a = await fast.groups.get(group)!.verify(
          parsed.signingInput,
          parsed.signature,
        );
        const b: boolean = await slow.groups.get(group)!.verify(
          parsed.signingInput,
          parsed.signature,
        ).catch(() => false);
        assert.equal(a, b, `${v.name} with the key of ${group}`);
        checked++;
        if (a) valid++;
      }
    }
    assert.ok(
      checked > 400 && valid >= 47,
      `${checked} checks, ${valid} valid`,
    );
  },
});

Deno.test({
  name:
    "syncVerifier() decides RS256 and ES256 on the calling thread as the asynchronous verifier does",
  ignore: !HAS_OPENSSL,
  fn: async () => {
    const fast = await loadKeys(`${VECTORS}keys_pub`, { backend: native });
    const slow = await loadKeys(`${VECTORS}keys_pub`, {
      backend: webCryptoBackend,
    });
    let decided = 0;
    for (const v of vectors) {
      let parsed;
      try {
        parsed = parseToken(v.token);
      } catch {
        continue;
      }
      for (const [group, key] of fast.groups) {
        assert.equal(syncVerifier(slow.groups.get(group)!.verify), undefined);
        // RSA and P-256 are never left to another thread, busy or not; the
        // backend hands Ed25519 to WebCrypto.
        const sync = syncVerifier(key.verify, { busy: true });
        if (key.info.type === "OKP") {
          assert.equal(sync, undefined, group);
          continue;
        }
        assert.ok(sync, `${group} has a synchronous form`);
        const now = sync(parsed.signingInput, parsed.signature);
        const later = await key.verify(parsed.signingInput, parsed.signature);
        // undefined: OpenSSL calls it malformed and WebCrypto decides.
        if (now !== undefined) {
          assert.equal(now, later, `${v.name} with the key of ${group}`);
          decided++;
        } else assert.equal(later, false, v.name);
      }
    }
    assert.ok(decided > 400, `${decided} decided synchronously`);
  },
});

Deno.test("main.ts --version names the verify backend, and why OpenSSL is not used", async () => {
  const run = async (flags: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, "main.ts", "--version"],
      cwd: REPO_ROOT,
      stdout: "piped",
    }).output();
    assert.equal(out.code, 0);
    return new TextDecoder().decode(out.stdout);
  };
  assert.match(
    await run(["--allow-read"]),
    /^verify: WebCrypto .*--allow-ffi/m,
  );
  const withFfi = await run(["--allow-read", "--allow-ffi"]);
  if (HAS_OPENSSL) assert.match(withFfi, /^verify: OpenSSL 3\..* via FFI/m);
  else assert.match(withFfi, /^verify: WebCrypto/m, note);
});
