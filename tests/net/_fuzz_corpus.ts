/**
 * The fixed material of the fuzz test's hostile datagrams: the groups it
 * signs for, the `sub`s it aims unsigned junk at, and lists of giant
 * numbers, odd `sub`s, odd headers and odd payloads, as raw JSON texts.
 *
 * @module
 */

/** The groups the fuzzer may sign for: every loaded group but HEARTBEAT. */
export const SIGNERS = [
  { group: "CHEDIMON", alg: "ES256" },
  { group: "THEOTHERS", alg: "RS256" },
  { group: "SEGSANH", alg: "ES256" },
  { group: "GUILHONGA", alg: "RS256" },
  { group: "PKCS1GRP", alg: "RS256" },
] as const;

/** `sub`s for unsigned junk: loaded groups, skipped ones, unknown ones. */
export const TARGETS: readonly {
  group: string;
  alg: string;
  sigBytes: number;
}[] = [
  { group: "HEARTBEAT", alg: "RS256", sigBytes: 256 },
  { group: "CHEDIMON", alg: "ES256", sigBytes: 64 },
  { group: "THEOTHERS", alg: "RS256", sigBytes: 384 },
  { group: "SEGSANH", alg: "ES256", sigBytes: 64 },
  { group: "GUILHONGA", alg: "RS256", sigBytes: 256 },
  { group: "PKCS1GRP", alg: "RS256", sigBytes: 256 },
  { group: "WEAKRSA", alg: "RS256", sigBytes: 128 },
  { group: "EDGROUP", alg: "EdDSA", sigBytes: 64 },
  { group: "EDGROUP", alg: "Ed25519", sigBytes: 64 },
  { group: "EDGROUP", alg: "ES256", sigBytes: 64 },
  { group: "CHEDIMON", alg: "ES384", sigBytes: 96 },
  { group: "SEGSANH", alg: "ES512", sigBytes: 132 },
  { group: "HEARTBEAT", alg: "PS256", sigBytes: 256 },
  { group: "THEOTHERS", alg: "RS512", sigBytes: 384 },
  { group: "NOSUCHGROUP", alg: "RS256", sigBytes: 256 },
  { group: "NOSUCHGROUP", alg: "EdDSA", sigBytes: 64 },
];

/**
 * The protocol 2.1 algorithms and the size of their signatures (RSA: the
 * vectors' 2048-bit keys), for headers the server should route to a key.
 */
export const ALGS_21: readonly { alg: string; sigBytes: number }[] = [
  { alg: "EdDSA", sigBytes: 64 },
  { alg: "Ed25519", sigBytes: 64 },
  { alg: "ES256", sigBytes: 64 },
  { alg: "ES384", sigBytes: 96 },
  { alg: "ES512", sigBytes: 132 },
  { alg: "RS256", sigBytes: 256 },
  { alg: "RS384", sigBytes: 256 },
  { alg: "RS512", sigBytes: 256 },
  { alg: "PS256", sigBytes: 256 },
  { alg: "PS384", sigBytes: 256 },
  { alg: "PS512", sigBytes: 256 },
];

/** Header `kid` values, as JSON texts: plausible, odd, and hostile. */
export const KIDS: readonly string[] = [
  '"2026-new"',
  '"2026-old"',
  '""',
  '" "',
  `"${"A".repeat(43)}"`,
  `"${"k".repeat(129)}"`,
  `"${"x".repeat(4000)}"`,
  '"kid:2026-new"',
  '"alg:EdDSA"',
  '"__proto__"',
  '"constructor"',
  '"toString"',
  '"../../keys_pub/edgroup.ssh"',
  '"\u0000"',
  '"\ud800"',
  '"\u00e9t\u00e9"',
  "0",
  "-1",
  "1e400",
  "null",
  "true",
  "[]",
  '["2026-new"]',
  '{"kid":"2026-new"}',
];

/** Header members by which a token tries to bring its own key, as JSON. */
export const KEY_MEMBERS: readonly string[] = [
  '"jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}',
  '"jwk":{"kty":"oct","k":"c2VjcmV0"}',
  '"jwk":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}',
  '"jwk":null',
  '"jwk":"{}"',
  '"jku":"http://127.0.0.1:1/jwks.json"',
  '"jku":"file:///etc/passwd"',
  '"x5u":"http://127.0.0.1:1/cert.pem"',
  '"x5c":["AAAA"]',
  '"x5c":"AAAA"',
  `"x5c":[${Array(40).fill('"MIIB"').join(",")}]`,
  '"x5t":"AAAA"',
  '"x5t#S256":"AAAA"',
];

/** Raw JSON number texts a parser may choke on. */
export const GIANT_NUMBERS = [
  "1e308",
  "1e400",
  "-1e400",
  "1.7976931348623157e308",
  "18446744073709551616",
  "-18446744073709551616",
  "9007199254740993",
  "-9223372036854775808",
  "123456789012345678901234567890123456789012345678901234567890",
  "-0",
  "-0.0",
  "0.0",
  "1.0",
  "6.000000000000001",
  "5e-324",
  "1e-400",
  "1E+2",
  "0e0",
  "-1",
  "7",
  "4294967296",
  "1" + "0".repeat(400),
  "0." + "0".repeat(300) + "1",
];

/** Odd `sub` values, as JSON texts. */
export const ODD_SUBS: readonly string[] = [
  ...[
    "HEARTBEAT\u200f",
    "\u202eHEARTBEAT",
    "\u202bTABTRAEH\u202c",
    "HEART\u200bBEAT",
    "\ufeffHEARTBEAT",
    "\uff28\uff25\uff21\uff32\uff34\uff22\uff25\uff21\uff34",
    "HEARTBEAT\u0000",
    "HEARTBEAT\n",
    "\t HEARTBEAT",
    "\u0000",
    "",
    "H\u0301EARTBEAT",
    "\ud83d\ude00",
    "\u0001\u0002\u001f\u007f",
    "che\u0064\u0131mon", // dotless i: upper-cases to CHEDIMON
    "\u017fegsanh", // long s: upper-cases to SEGSANH
    "gu\u0131lhonga",
    "pkc\u017f1grp",
    "theother\u017f",
    "CHED\u0130MON", // dotted capital I
    "\u00df",
    "\ufb05",
    "A".repeat(64),
    "A".repeat(65),
    "\u0130".repeat(64),
    "heartbeat",
    "HeArTbEaT",
    "NO_SUB_CLAIM",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "\u0645\u0631\u062d\u0628\u0627",
    "\u{10ffff}",
    "\u0085HEARTBEAT\u2028\u2029",
  ].map((s) => JSON.stringify(s)),
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"HEART\\ud800BEAT"',
  '"\\u0000HEARTBEAT"',
  "null",
  "123",
  "true",
  "[]",
  "{}",
  '["HEARTBEAT"]',
  '{"HEARTBEAT":1}',
];

/** Header texts with odd `alg`s and parameters. */
export const HEADERS: readonly string[] = [
  '{"alg":"none"}',
  '{"alg":"none","typ":"JWT"}',
  '{"alg":"HS256","typ":"JWT"}',
  '{"alg":"hs256"}',
  '{"alg":"HS512"}',
  '{"alg":"rs256"}',
  '{"alg":"RS256 "}',
  '{"alg":"RS512"}',
  '{"alg":"PS256"}',
  '{"alg":"ES384"}',
  '{"alg":"EdDSA"}',
  '{"alg":"Ed25519"}',
  '{"alg":"ed25519"}',
  '{"alg":"Ed448"}',
  '{"alg":"EdDSA","crv":"Ed448"}',
  '{"alg":"ES256K"}',
  '{"alg":"ES512","kid":"2026-new"}',
  '{"alg":"PS384","kid":null}',
  '{"alg":"RS384","kid":7}',
  '{"alg":"EdDSA","kid":"2026-new","kid":"2026-old"}',
  '{"alg":"HS256","kid":"2026-new"}',
  '{"alg":"none","kid":"2026-new"}',
  '{"alg":""}',
  '{"alg":null}',
  '{"alg":256}',
  '{"alg":["RS256"]}',
  '{"alg":{"RS256":true}}',
  "{}",
  '{"typ":"JWT"}',
  '{"alg":"RS256","alg":"none"}',
  '{"alg":"none","alg":"RS256"}',
  '{"alg":"R\\u0053256"}',
  '{"alg":"RS256\\u0000"}',
  '{"alg":"ES256","crit":["exp"],"exp":1}',
  '{"alg":"RS256","crit":"b64"}',
  '{"alg":"RS256","crit":[]}',
  '{"alg":"RS256","b64":false,"crit":["b64"]}',
  '{"alg":"ES256","b64":false}',
  '{"alg":"RS256","zip":"DEF"}',
  '{"alg":"RS256","kid":"../../../etc/passwd"}',
  '{"alg":"RS256","jku":"http://127.0.0.1:1/jwks"}',
  '{"alg":"RS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}',
  '{"alg":"ES256","x5c":["AAAA"]}',
  '{"alg":"RS256","__proto__":{"alg":"none"}}',
  "[]",
  "null",
  '"RS256"',
  "1e400",
  '{"alg":"RS256"',
];

/** Payloads that are JSON but not objects, or objects of an odd shape. */
export const ODD_PAYLOADS: readonly string[] = [
  "[]",
  "null",
  '"HEARTBEAT"',
  "123",
  "true",
  "{}",
  '{"__proto__":{"sub":"HEARTBEAT"}}',
  '{"constructor":{"prototype":{"sub":"HEARTBEAT"}}}',
  '{"sub":"HEARTBEAT","sub":1}',
  '{"sub":1,"sub":"HEARTBEAT"}',
  '{"sub":"HEARTBEAT"}',
  '{"":""}',
  '{"sub":"HEARTBEAT"} ',
  ' {"sub":"HEARTBEAT"}',
  '{"sub":"HEARTBEAT"}{"sub":"CHEDIMON"}',
  '{"sub":"HEARTBEAT",}',
  "{'sub':'HEARTBEAT'}",
  '{"sub":"HEARTBEAT"',
  "\u0000",
  "",
  "NaN",
  "Infinity",
];
