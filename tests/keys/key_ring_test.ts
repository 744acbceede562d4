import assert from "node:assert/strict";
import {
  GROUP_NAME,
  keyFromText,
  loadKeys,
  mergeReload,
} from "../../lib/keys/key_ring.ts";

/** The fixtures written by tests/testdata/keys/generate.sh. */
const KEYS = new URL("../testdata/keys/", import.meta.url);

const expected = JSON.parse(
  await Deno.readTextFile(new URL("expected.json", KEYS)),
) as {
  message: string;
  keys: Record<
    string,
    {
      bits: number;
      signatureHex?: string;
      files: Record<string, { format: string; fingerprint: string }>;
    }
  >;
};

function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, KEYS));
}

function fingerprintOf(file: string): string {
  for (const key of Object.values(expected.keys)) {
    const entry = key.files[file];
    if (entry) return entry.fingerprint;
  }
  throw new Error(`no expected fingerprint for ${file}`);
}

const RSA_FP = fingerprintOf("rsa2048.spki.pem");
const P256_FP = fingerprintOf("p256.spki.pem");
const WEAK_FP = fingerprintOf("rsa1024.spki.pem");

const GROUP_MESSAGE =
  /^group name ".*" is not 1-64 characters of A-Z 0-9 _ -: rename the file$/;

Deno.test("keyFromText() takes the group name from the upper-cased file stem", async (t) => {
  const cases: [string, string][] = [
    ["alpha.pem", "ALPHA"],
    ["keys_pub/heart-beat_2.ssh", "HEART-BEAT_2"],
    ["/srv/udpjwt/keys_pub/Mixed.PEM", "MIXED"],
    ["C:\\udpjwt\\keys_pub\\win.Ssh", "WIN"],
    ["x.pem", "X"],
    ["0-9_.ssh", "0-9_"],
    [`${"g".repeat(64)}.pem`, "G".repeat(64)],
  ];
  for (const [file, group] of cases) {
    await t.step(`${file} -> ${group}`, async () => {
      const key = await keyFromText(file, fixture("p256.ssh"));
      assert.equal(key.group, group);
      assert.match(key.group, GROUP_NAME);
      assert.equal(key.file, file);
    });
  }
});

Deno.test("keyFromText() refuses file names that do not make a valid group name", async (t) => {
  const names = [
    "a.b.pem",
    "with space.pem",
    ".pem",
    "keys.pem.ssh",
    `${"g".repeat(65)}.pem`,
    "naïve.pem",
    "straße.pem", // "STRASSE" once upper-cased: still not a valid file stem
    "\u017f.pem", // LATIN SMALL LETTER LONG S, "S" once upper-cased
    "tab\t.ssh",
  ];
  for (const file of names) {
    await t.step(JSON.stringify(file), async () => {
      // The name is checked before the contents: the key itself is fine.
      await assert.rejects(keyFromText(file, fixture("p256.ssh")), (e) => {
        assert.ok(e instanceof SyntaxError);
        assert.match(e.message, GROUP_MESSAGE);
        // The message quotes the stem as written, not its upper case.
        const stem = file.replace(/\.(pem|ssh)$/, "");
        assert.ok(e.message.includes(`"${stem}"`), e.message);
        return true;
      });
    });
  }
});

Deno.test("keyFromText() builds a group key that verifies what openssl signed", async (t) => {
  const message = await Deno.readFile(new URL(expected.message, KEYS));
  const cases: [string, string, "RSA" | "EC", string][] = [
    ["rsa2048.spki.pem", "rsa2048", "RSA", "RSASSA-PKCS1-v1_5"],
    ["rsa2048.rfc4716.ssh", "rsa2048", "RSA", "RSASSA-PKCS1-v1_5"],
    ["p256.ssh", "p256", "EC", "ECDSA"],
    ["p256.crt.pem", "p256", "EC", "ECDSA"],
  ];
  for (const [file, name, type, algorithm] of cases) {
    await t.step(file, async () => {
      const key = await keyFromText(`keys_pub/${name}.pem`, fixture(file));
      assert.equal(key.group, name.toUpperCase());
      assert.equal(key.info.type, type);
      assert.equal(key.info.bits, expected.keys[name]!.bits);
      assert.equal(key.fingerprint, fingerprintOf(file));
      assert.equal(key.key.type, "public");
      assert.equal(key.key.algorithm.name, algorithm);
      const signature = Uint8Array.fromHex(expected.keys[name]!.signatureHex!);
      const params = type === "RSA"
        ? { name: algorithm }
        : { name: algorithm, hash: "SHA-256" };
      assert.equal(
        await crypto.subtle.verify(params, key.key, signature, message),
        true,
      );
    });
  }
});

Deno.test("keyFromText() applies the RSA minimum size and names the flag that lowers it", async (t) => {
  const weak = fixture("rsa1024.spki.pem");
  const strong = fixture("rsa2048.ssh");
  const refused = (bits: number, min: number) =>
    new RegExp(
      `^RSA key of ${bits} bits is shorter than the minimum of ${min}: use a longer key or lower the minimum with --min-rsa-bits$`,
    );
  await t.step("a 1024-bit key is refused by default", async () => {
    for (const options of [undefined, {}]) {
      await assert.rejects(keyFromText("weak.pem", weak, options), (e) => {
        assert.ok(e instanceof SyntaxError);
        assert.match(e.message, refused(1024, 2048));
        return true;
      });
    }
  });
  await t.step("a 1024-bit key is accepted with minRsaBits 1024", async () => {
    const key = await keyFromText("weak.pem", weak, { minRsaBits: 1024 });
    assert.equal(key.info.bits, 1024);
    assert.equal(key.fingerprint, WEAK_FP);
  });
  await t.step("a 1024-bit key is refused with minRsaBits 1025", async () => {
    await assert.rejects(
      keyFromText("weak.pem", weak, { minRsaBits: 1025 }),
      { name: "SyntaxError", message: refused(1024, 1025) },
    );
  });
  await t.step("a 2048-bit key is accepted by default", async () => {
    const key = await keyFromText("strong.ssh", strong);
    assert.equal(key.info.bits, 2048);
    assert.equal(key.fingerprint, RSA_FP);
  });
  await t.step("a 2048-bit key is refused with minRsaBits 3072", async () => {
    await assert.rejects(
      keyFromText("strong.ssh", strong, { minRsaBits: 3072 }),
      { name: "SyntaxError", message: refused(2048, 3072) },
    );
  });
  await t.step("an EC key is not subject to the RSA minimum", async () => {
    const key = await keyFromText("ec.ssh", fixture("p256.ssh"), {
      minRsaBits: 4096,
    });
    assert.equal(key.fingerprint, P256_FP);
  });
});

Deno.test("keyFromText() passes on the parser's SyntaxError with its reason", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["dsa.ssh", fixture("dsa.ssh"), /key type "ssh-dss" is not supported/],
    [
      "ed448.pem",
      Deno.readTextFileSync(
        new URL("../testdata/more_keys/ed448.spki.pem", import.meta.url),
      ),
      /key type Ed448 is not supported/,
    ],
    ["priv.pem", fixture("private.pem"), /PRIVATE KEY, not a public key/],
    ["empty.ssh", "", /not a public key/],
  ];
  for (const [file, text, message] of cases) {
    await t.step(file, async () => {
      await assert.rejects(keyFromText(file, text), (e) => {
        assert.ok(e instanceof SyntaxError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

Deno.test("keyFromText() refuses a key that WebCrypto cannot use", async () => {
  // A P-256 point that parses (65 bytes, 0x04 prefix) but is not on the curve.
  const point = new Uint8Array(65).fill(1);
  point[0] = 4;
  const blob = new Uint8Array([
    ...[0, 0, 0, 19],
    ...new TextEncoder().encode("ecdsa-sha2-nistp256"),
    ...[0, 0, 0, 8],
    ...new TextEncoder().encode("nistp256"),
    ...[0, 0, 0, 65],
    ...point,
  ]);
  await assert.rejects(
    keyFromText("offcurve.ssh", `ecdsa-sha2-nistp256 ${blob.toBase64()}`),
    (e) => {
      assert.ok(e instanceof SyntaxError);
      assert.match(e.message, /^WebCrypto rejects the key: /);
      return true;
    },
  );
});

/** Fills a fresh temporary directory, runs `fn` on it, then removes it. */
async function withKeyDir(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "udpjwt_keys_test_" });
  try {
    for (const [name, text] of Object.entries(files)) {
      if (name.endsWith("/")) await Deno.mkdir(`${dir}/${name}`);
      else await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const DIRECTORY: Record<string, string> = {
  // loaded
  "alpha.pem": fixture("rsa2048.spki.pem"),
  "beta.pem": fixture("p256.spki.pem"),
  "Gamma.PEM": fixture("rsa2048.crt.pem"),
  "delta.ssh": fixture("p256.rfc4716.ssh"),
  "epsilon.pem": fixture("rsa2048.pkcs1.pem"),
  "OMEGA.pem": fixture("p256.ssh"),
  // skipped, with a reason
  "beta.ssh": fixture("p256.ssh"), // same group as beta.pem, which sorts first
  "omega.ssh": fixture("rsa2048.ssh"), // same group as OMEGA.pem
  "weak.pem": fixture("rsa1024.spki.pem"),
  "dsa.ssh": fixture("dsa.ssh"),
  "private.pem": fixture("private.pem"),
  "bad name.pem": fixture("p256.ssh"),
  "empty.ssh": "",
  // .pub is read like .ssh
  "zeta.pub": fixture("p256.ssh"),
  // ignored: not *.pem / *.ssh / *.pub / *.jwk / *.jwks files
  "readme.txt": "keys live here\n",
  "eta.pem.bak": fixture("rsa2048.spki.pem"),
  "theta": fixture("rsa2048.spki.pem"),
  "iota.pem/": "",
};

Deno.test("loadKeys() loads every usable key file of a directory and reports the rest", async () => {
  await withKeyDir(DIRECTORY, async (dir) => {
    const ring = await loadKeys(dir);
    assert.deepEqual([...ring.groups.keys()].sort(), [
      "ALPHA",
      "BETA",
      "DELTA",
      "EPSILON",
      "GAMMA",
      "OMEGA",
      "ZETA",
    ]);
    const loaded: [string, string, string, string][] = [
      ["ZETA", "zeta.pub", "OpenSSH", P256_FP],
      ["ALPHA", "alpha.pem", "PEM SPKI", RSA_FP],
      ["BETA", "beta.pem", "PEM SPKI", P256_FP],
      ["GAMMA", "Gamma.PEM", "PEM certificate", RSA_FP],
      ["DELTA", "delta.ssh", "RFC 4716", P256_FP],
      ["EPSILON", "epsilon.pem", "PEM PKCS#1", RSA_FP],
      ["OMEGA", "OMEGA.pem", "OpenSSH", P256_FP],
    ];
    for (const [group, file, format, fp] of loaded) {
      const key = ring.groups.get(group);
      assert.ok(key, group);
      assert.equal(key.group, group);
      assert.equal(key.file, `${dir}/${file}`);
      assert.equal(key.info.format, format);
      assert.equal(key.fingerprint, fp);
    }
    // In file name order (code units: upper case first).
    const skipped: [string, RegExp][] = [
      ["bad name.pem", GROUP_MESSAGE],
      [
        "beta.ssh",
        new RegExp(
          `^group BETA already has a key in "${dir}/beta\\.pem": keep one file per group$`,
        ),
      ],
      ["dsa.ssh", /key type "ssh-dss" is not supported/],
      ["empty.ssh", /not a public key/],
      ["omega.ssh", /^group OMEGA already has a key in ".*\/OMEGA\.pem"/],
      ["private.pem", /PRIVATE KEY, not a public key/],
      ["weak.pem", /1024 bits .*2048.*--min-rsa-bits/],
    ];
    assert.deepEqual(
      ring.skipped.map((s) => s.file),
      skipped.map(([file]) => `${dir}/${file}`),
    );
    for (const [i, [file, reason]] of skipped.entries()) {
      assert.match(ring.skipped[i]!.reason, reason, file);
    }
  });
});

Deno.test("loadKeys() passes minRsaBits on to every file", async () => {
  await withKeyDir(DIRECTORY, async (dir) => {
    const ring = await loadKeys(dir, { minRsaBits: 1024 });
    assert.equal(ring.groups.get("WEAK")?.fingerprint, WEAK_FP);
    assert.ok(!ring.skipped.some((s) => s.file.endsWith("/weak.pem")));
    assert.equal(ring.groups.size, 8);
    assert.equal(ring.skipped.length, 6);

    const strict = await loadKeys(dir, { minRsaBits: 3072 });
    assert.deepEqual([...strict.groups.keys()].sort(), [
      "BETA",
      "DELTA",
      "OMEGA",
      "ZETA",
    ]);
    for (const file of ["alpha.pem", "Gamma.PEM", "epsilon.pem"]) {
      const entry = strict.skipped.find((s) => s.file === `${dir}/${file}`);
      assert.ok(entry, file);
      assert.match(entry.reason, /2048 bits .*minimum of 3072/);
    }
    // omega.ssh (RSA 2048) now fails on its size before the duplicate check.
    const omega = strict.skipped.find((s) => s.file === `${dir}/omega.ssh`);
    assert.match(omega?.reason ?? "", /2048 bits .*minimum of 3072/);
  });
});

Deno.test("loadKeys() handles trailing slashes, empty and missing directories", async (t) => {
  await t.step("a trailing slash does not double the separator", async () => {
    await withKeyDir({ "alpha.ssh": fixture("p256.ssh") }, async (dir) => {
      const ring = await loadKeys(`${dir}//`);
      assert.equal(ring.groups.get("ALPHA")?.file, `${dir}/alpha.ssh`);
      assert.deepEqual(ring.skipped, []);
    });
  });
  await t.step(
    "an empty directory gives no keys and no skipped files",
    async () => {
      await withKeyDir({}, async (dir) => {
        const ring = await loadKeys(dir);
        assert.equal(ring.groups.size, 0);
        assert.deepEqual(ring.skipped, []);
      });
    },
  );
  await t.step(
    "a directory of ignored files gives nothing either",
    async () => {
      await withKeyDir({
        "notes.txt": "x",
        "key.asc": fixture("p256.ssh"),
        "sub.ssh/": "",
      }, async (dir) => {
        const ring = await loadKeys(dir);
        assert.equal(ring.groups.size, 0);
        assert.deepEqual(ring.skipped, []);
      });
    },
  );
  await t.step("a missing directory rejects with NotFound", async () => {
    const dir = await Deno.makeTempDir({ prefix: "udpjwt_keys_test_" });
    await Deno.remove(dir);
    await assert.rejects(loadKeys(dir), Deno.errors.NotFound);
  });
});

Deno.test("mergeReload() handles JWK Set groups: a new kid is a change, the same set is not, a broken set keeps the old keys", async () => {
  const more = (name: string) =>
    Deno.readTextFileSync(
      new URL(`../testdata/more_keys/${name}`, import.meta.url),
    );
  const rotation = JSON.parse(more("rotation.jwks"));
  const ed = JSON.parse(more("ed25519.jwk"));
  const dir = await Deno.makeTempDir();
  try {
    const write = (name: string, text: string) =>
      Deno.writeTextFile(`${dir}/${name}`, text);
    await write("team.jwks", JSON.stringify({ keys: [rotation.keys[0]] }));
    await write("solo.jwk", JSON.stringify(ed));
    const first = await loadKeys(dir);
    assert.deepEqual(first.groups.get("TEAM")!.keys.map((k) => k.kid), [
      "2026-old",
    ]);

    // The same files again: nothing changed.
    const same = mergeReload(first.groups, await loadKeys(dir));
    assert.deepEqual([same.added, same.changed, same.removed], [[], [], []]);

    // Rotation: the new key joins the set.
    await write("team.jwks", more("rotation.jwks"));
    const rotated = mergeReload(first.groups, await loadKeys(dir));
    assert.deepEqual(rotated.changed, ["TEAM"]);
    assert.deepEqual(rotated.groups.get("TEAM")!.keys.map((k) => k.kid), [
      "2026-old",
      "2026-new",
    ]);

    // Only a kid renamed is a change too.
    const renamed = structuredClone(rotation);
    renamed.keys[1].kid = "2026-b";
    await write("team.jwks", JSON.stringify(renamed));
    const again = mergeReload(rotated.groups, await loadKeys(dir));
    assert.deepEqual(again.changed, ["TEAM"]);

    // A broken set keeps the keys in use.
    await write("team.jwks", JSON.stringify({ keys: [ed, ed] }));
    const broken = mergeReload(again.groups, await loadKeys(dir));
    assert.equal(broken.groups.get("TEAM"), again.groups.get("TEAM"));
    assert.match(broken.kept[0]!.reason, /key 1 of 2 has no "kid"/);
    assert.deepEqual(broken.changed, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
