// deno-lint-ignore-file no-console
/**
 * A student client for the udpjwt lab in TypeScript (Deno), with jose: it
 * walks one group through the seven states once and exits 0 when every event
 * was acknowledged, 1 otherwise, 2 on a usage error. See docs/students.md.
 *
 * ```sh
 * deno run --allow-net --allow-read examples/client.ts 127.0.0.1 44555 \
 *   heartbeat examples/heartbeat_demo.key --secret keys_priv/key_secret_for_hmac.txt
 * ```
 *
 * Outside this repository, add `--unstable-net` (UDP sockets are an unstable
 * Deno API; this repository's deno.json enables them).
 *
 * @module
 */

import { createPrivateKey } from "node:crypto";
import { parseArgs } from "node:util";
import { base64url, importPKCS8, jwtVerify, SignJWT } from "jose"; // npm:jose@6.2.18

const AUDIENCE = "udp.socket.server.for.jwt";
const COLOURS = [
  "RED",
  "ORANGE",
  "YELLOW",
  "GREEN",
  "BLUE",
  "INDIGO",
  "VIOLET",
];
const FINAL = COLOURS.length - 1; // the last state: its answer is next_number 0
const LIFETIME = 60; // seconds between iat and exp of each request
const FIRST_WAIT = 0.5; // seconds; doubled on each retry, up to MAX_WAIT
const MAX_WAIT = 4;
const RETRIES = 10; // retransmissions of one event before giving up

const USAGE = `usage: client.ts HOST PORT GROUP PRIVATE_KEY [--secret FILE]
                 [--registration N] [--seq-max N]`;

// --- Arguments --------------------------------------------------------------

interface Options {
  host: string;
  port: number;
  group: string;
  keyFile: string;
  secretFile: string | undefined;
  registration: number;
  seqMax: number;
}

/** The command line, or undefined when it is not usable. */
function options(): Options | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        secret: { type: "string" }, // the lab's HMAC secret: verifies answers
        registration: { type: "string", default: "0" }, // yours
        "seq-max": { type: "string", default: "1" }, // your group's size
      },
    });
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    return undefined;
  }
  const [host, portText, group, keyFile, ...extra] = parsed.positionals;
  const o = {
    port: Number(portText),
    registration: Number(parsed.values.registration),
    seqMax: Number(parsed.values["seq-max"]),
  };
  if (
    !host || !group || !keyFile || extra.length > 0 ||
    !Number.isInteger(o.port) || o.port < 1 || o.port > 65535 ||
    !Number.isInteger(o.registration) || !Number.isInteger(o.seqMax) ||
    o.seqMax < 1
  ) return undefined;
  return { host, group, keyFile, secretFile: parsed.values.secret, ...o };
}

function usage(): never {
  console.error(USAGE);
  Deno.exit(2);
}

const opts: Options = options() ?? usage();
const { host, port, group } = opts;

// --- Keys -------------------------------------------------------------------

/** The signing key and the algorithm its type fixes: RS256 or ES256. */
async function loadKey(
  file: string,
): Promise<{ key: CryptoKey; alg: "RS256" | "ES256" }> {
  // node:crypto reads any PEM private key (PKCS#8, PKCS#1, SEC1); jose wants
  // PKCS#8, so convert.
  const keyObject = createPrivateKey(await Deno.readTextFile(file));
  const curve = keyObject.asymmetricKeyDetails?.namedCurve;
  let alg: "RS256" | "ES256";
  if (keyObject.asymmetricKeyType === "rsa") alg = "RS256";
  else if (keyObject.asymmetricKeyType === "ec" && curve === "prime256v1") {
    alg = "ES256";
  } else {
    throw new Error(`${file}: not an RSA or EC P-256 key`);
  }
  const pkcs8 = keyObject.export({ type: "pkcs8", format: "pem" }) as string;
  return { key: await importPKCS8(pkcs8, alg), alg };
}

// --- One request ------------------------------------------------------------

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(bytes));
  return new Uint8Array(digest).toHex();
}

/** A signed request for event `n`, and the id_request its answer carries. */
async function request(
  n: number,
  key: CryptoKey,
  alg: string,
): Promise<{ datagram: Uint8Array; idRequest: string; exp: number }> {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: group,
    aud: AUDIENCE,
    iat: now,
    exp: now + LIFETIME,
    // 32 random hex digits, new for every token.
    jti: crypto.getRandomValues(new Uint8Array(16)).toHex(),
    "seq_state_number": n,
    "seq_state": COLOURS[n],
    "seq_max": opts.seqMax,
    registration: opts.registration,
  };
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg, typ: "JWT" })
    .sign(key);
  // id_request is the SHA-256 of the payload bytes exactly as signed.
  const signed = base64url.decode(token.split(".")[1]!);
  return {
    datagram: new TextEncoder().encode(token),
    idRequest: await sha256Hex(signed),
    exp: claims.exp,
  };
}

// --- The socket -------------------------------------------------------------

const socket = Deno.listenDatagram({
  hostname: host.includes(":") ? "::" : "0.0.0.0",
  port: 0,
  transport: "udp",
});
const server: Deno.NetAddr = { transport: "udp", hostname: host, port };
// One receive stays pending across waits, so a timeout never loses a datagram.
let pending = listen();

function listen(): Promise<[Uint8Array, Deno.Addr]> {
  const next = socket.receive();
  next.catch(() => {}); // a failure is handled where it is awaited
  return next;
}

/** The next datagram from the server, or undefined once `seconds` passed. */
async function receive(seconds: number): Promise<Uint8Array | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), seconds * 1000);
  });
  try {
    while (true) {
      const got = await Promise.race([pending, timeout]);
      if (!got) return undefined;
      pending = listen();
      const [data, from] = got;
      if ((from as Deno.NetAddr).port === port) return data; // else not ours
    }
  } catch {
    // Some systems report an ICMP "port unreachable" here: count it as loss.
    pending = listen();
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The verified (or, without a secret, decoded) claims of an answer. */
async function readAnswer(
  bytes: Uint8Array,
  secret: Uint8Array | undefined,
): Promise<Record<string, unknown>> {
  const token = new TextDecoder().decode(bytes);
  if (!secret) {
    return JSON.parse(new TextDecoder().decode(base64url.decode(
      token.split(".")[1] ?? "",
    )));
  }
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ["HS256"],
      issuer: AUDIENCE,
      clockTolerance: 30,
    });
    return payload;
  } catch (e) {
    throw new Error(
      `an answer does not verify with the secret (${e}): is it the lab's file, byte for byte?`,
    );
  }
}

/**
 * Sends event `n` until an answer to it arrives: the same datagram again after
 * each timeout, a new token only when the old one would expire in flight.
 */
async function exchange(
  n: number,
  key: CryptoKey,
  alg: string,
  secret: Uint8Array | undefined,
): Promise<{ answer: Record<string, unknown>; retries: number }> {
  let req = await request(n, key, alg);
  const mine = new Set([req.idRequest]); // every token signed for this event
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    const wait = Math.min(FIRST_WAIT * 2 ** attempt, MAX_WAIT) *
      (0.75 + Math.random() / 2);
    if (Date.now() / 1000 + wait > req.exp - 5) {
      req = await request(n, key, alg); // new jti, same event
      mine.add(req.idRequest);
    }
    await socket.send(req.datagram, server);
    const deadline = Date.now() + wait * 1000;
    while (Date.now() < deadline) {
      const bytes = await receive((deadline - Date.now()) / 1000);
      if (!bytes) break; // lost: send again
      const answer = await readAnswer(bytes, secret);
      // A late answer to an earlier event is not ours: keep waiting.
      if (mine.has(String(answer.id_request))) {
        return { answer, retries: attempt };
      }
    }
  }
  throw new Error(`event ${n}: no answer after ${RETRIES} retries`);
}

// --- The walk ---------------------------------------------------------------

async function walk(): Promise<void> {
  const { key, alg } = await loadKey(opts.keyFile);
  const secret = opts.secretFile
    ? await Deno.readFile(opts.secretFile) // raw bytes, newline included
    : undefined;
  if (!secret) console.log("no --secret: answers are decoded, not verified");
  for (let n = 0; n <= FINAL; n++) {
    const { answer, retries } = await exchange(n, key, alg, secret);
    if ("error" in answer) {
      throw new Error(`event ${n}: ${answer.error}: ${answer.response}`);
    }
    const expected = n === FINAL ? 0 : n + 1;
    console.log(
      `${n} ${
        COLOURS[n]
      } -> next_number ${answer.next_number} (retries ${retries})`,
    );
    if (answer.next_number !== expected) {
      throw new Error(
        `event ${n}: expected next_number ${expected}, the server waits for ${answer.next_number}`,
      );
    }
  }
  console.log(
    `walk complete: ${group} acknowledged events 0-${FINAL}, final state ${FINAL} ${
      COLOURS[FINAL]
    }`,
  );
}

let code = 0;
try {
  await walk();
} catch (e) {
  // Any failure (an error answer, no answer, a wrong next_number, an answer
  // that does not verify, an unreadable file) is one line and exit code 1.
  console.error(`walk failed: ${e instanceof Error ? e.message : e}`);
  code = 1;
} finally {
  socket.close();
  await pending.catch(() => {}); // the receive ends with the socket
}
Deno.exit(code);
