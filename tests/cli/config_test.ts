import assert from "node:assert/strict";
import { parseConfig } from "../../lib/cli/config.ts";
import { ConfigError } from "../../lib/cli/errors.ts";

function serve(args: string[]) {
  const parsed = parseConfig(args);
  assert.equal(parsed.command, "serve");
  if (parsed.command !== "serve") throw new Error("unreachable");
  return parsed.config;
}

Deno.test("parseConfig() defaults to 127.0.0.1 port 44555 in the current directory", () => {
  const c = serve([]);
  assert.equal(c.hostname, "127.0.0.1");
  assert.equal(c.port, 44555);
  assert.equal(c.keysPub, "keys_pub");
  assert.equal(c.keysPriv, "keys_priv");
  assert.equal(c.logDir, "logs");
  assert.equal(c.states, 7);
  assert.equal(c.leewaySec, 30);
  assert.equal(c.maxDatagram, 8192);
  assert.equal(c.minRsaBits, 2048);
  assert.equal(c.errorRate, 50);
  assert.equal(c.errorBurst, 100);
  assert.equal(c.logLevel, "info");
  assert.equal(c.profile, "2");
  assert.ok(Object.isFrozen(c));
});

Deno.test("parseConfig() reads --profile v1, which takes no --states", () => {
  const c = serve(["--profile", "v1", "--min-rsa-bits", "1024"]);
  assert.equal(c.profile, "v1");
  assert.equal(c.minRsaBits, 1024);
  assert.equal(serve(["--profile=2"]).profile, "2");
});

Deno.test("parseConfig() reads ADDRESS PORT DIR, with or without serve", () => {
  for (
    const args of [["0.0.0.0", "4000", "/srv/lab"], [
      "serve",
      "0.0.0.0",
      "4000",
      "/srv/lab/",
    ]]
  ) {
    const c = serve(args);
    assert.equal(c.hostname, "0.0.0.0");
    assert.equal(c.port, 4000);
    assert.equal(c.keysPub, "/srv/lab/keys_pub");
    assert.equal(c.keysPriv, "/srv/lab/keys_priv");
    assert.equal(c.logDir, "/srv/lab/logs");
  }
  assert.equal(serve(["[::1]", "0"]).hostname, "::1");
});

Deno.test("parseConfig() lets flags override directories and limits", () => {
  const c = serve([
    "::",
    "5",
    "lab",
    "--keys-pub=k",
    "--keys-priv",
    "p",
    "--log-dir=l",
    "--states=9",
    "--leeway=0",
    "--max-datagram=65507",
    "--min-rsa-bits=1024",
    "--error-rate=5",
    "--error-burst=7",
    "--log-level=debug",
  ]);
  assert.deepEqual(
    [c.keysPub, c.keysPriv, c.logDir, c.states, c.leewaySec, c.maxDatagram],
    ["k", "p", "l", 9, 0, 65507],
  );
  assert.deepEqual([c.minRsaBits, c.errorRate, c.errorBurst, c.logLevel], [
    1024,
    5,
    7,
    "debug",
  ]);
});

Deno.test("parseConfig() answers --help and --version", () => {
  assert.deepEqual(parseConfig(["--help"]), { command: "help" });
  assert.deepEqual(parseConfig(["serve", "-h"]), { command: "help" });
  assert.deepEqual(parseConfig(["-V"]), { command: "version" });
});

Deno.test("parseConfig() rejects bad flags and values with exit code 2, naming them", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /--bogus/],
    [["--states"], /--states/],
    [["--states", "1"], /--states.*"1".*2 to 1000/],
    [["--states", "7.5"], /--states/],
    [["--leeway", "-1"], /--leeway/],
    [["--max-datagram", "10"], /--max-datagram.*64 to 65507/],
    [["--min-rsa-bits", "512"], /--min-rsa-bits/],
    [["--log-level", "loud"], /--log-level.*debug, info, warning, error/],
    [["127.0.0.1", "http"], /PORT.*"http"/],
    [["127.0.0.1", "70000"], /PORT/],
    [["a", "1", "d", "extra"], /Too many arguments.*extra/],
    [["--profile", "v2"], /--profile.*"v2".*2 or v1/],
    [["--profile", "v1", "--states", "5"], /--states does not apply/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => {
      assert.throws(() => parseConfig(args), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.exitCode, 2);
        assert.equal(e.showUsage, true);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

Deno.test("parseConfig() reads --http ADDR:PORT (IPv6 in brackets) and requires --http-token off loopback", () => {
  const serve = (args: string[]) => {
    const parsed = parseConfig(args);
    assert.equal(parsed.command, "serve");
    return parsed.command === "serve" ? parsed.config : undefined;
  };
  assert.equal(serve([])?.http, undefined, "off by default");
  assert.deepEqual(serve(["--http", "127.0.0.1:44580"])?.http, {
    hostname: "127.0.0.1",
    port: 44580,
  });
  assert.deepEqual(serve(["--http", "[::1]:0"])?.http, {
    hostname: "::1",
    port: 0,
  });
  assert.equal(serve(["--http", "localhost:8080"])?.httpToken, undefined);
  const lan = serve(["--http", "0.0.0.0:80", "--http-token", "t.txt"]);
  assert.deepEqual(lan?.http, { hostname: "0.0.0.0", port: 80 });
  assert.equal(lan?.httpToken, "t.txt");
  assert.throws(
    () => parseConfig(["--http", "10.0.0.5:8080"]),
    (e: unknown) =>
      e instanceof ConfigError && e.exitCode === 2 && !e.showUsage &&
      /not a loopback address: pass --http-token FILE/.test(e.message),
  );
  for (const bad of ["8080", "host:", ":8080", "[::1]", "a:70000", "a b:1"]) {
    assert.throws(
      () => parseConfig(["--http", bad]),
      (e: unknown) =>
        e instanceof ConfigError && e.exitCode === 2 &&
        e.message.includes(`"${bad}"`),
      bad,
    );
  }
});

Deno.test("parseConfig() reads --algs: a narrowed allow-list of the protocol's algorithms, never none or HS*", async (t) => {
  await t.step("absent: every algorithm", () => {
    assert.equal(serve([]).algs, undefined);
  });
  await t.step("commas and spaces, Ed25519 read as EdDSA, table order", () => {
    assert.deepEqual(serve(["--algs", "Ed25519, ES384,RS256,ES384"]).algs, [
      "RS256",
      "ES384",
      "EdDSA",
    ]);
  });
  for (
    const [value, message] of [
      ["", /--algs: empty list/],
      ["none", /"none": requests are never accepted with none or HMAC/],
      ["RS256,HS256", /"HS256": requests are never accepted/],
      ["ES256K", /"ES256K": expected some of RS256, RS384/],
      ["rs256", /"rs256": expected some of/],
    ] as const
  ) {
    await t.step(`refuses "${value}"`, () => {
      assert.throws(() => serve(["--algs", value]), (e) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.exitCode, 2);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});
