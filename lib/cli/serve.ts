/**
 * `udpjwt [serve]`: the server's command. Loads the secret and the keys,
 * opens the socket, the journal and the log, prints the start-up summary,
 * reloads the keys on SIGHUP and stops cleanly on SIGINT/SIGTERM.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Config, isLoopback, parseConfig, USAGE } from "./config.ts";
import { ConfigError, fileProblem, type Io } from "./errors.ts";
import { closeLogging, setupLogging } from "./log.ts";
import { VERSION } from "./version.ts";
import { type KeyRing, loadKeys } from "../keys/key_ring.ts";
import { describeKey } from "../keys/public_key.ts";
import { selectBackend, type VerifyBackend } from "../keys/verify.ts";
import type { HttpSide } from "../net/http.ts";
import { Monitor } from "../net/monitor.ts";
import { UdpServer } from "../net/server.ts";
import { randomHex32 } from "../protocol/handler.ts";
import { JournalStore } from "../state/journal.ts";
import { ReplayCache } from "../state/replay.ts";
import { loadRoster, type Roster } from "../state/roster.ts";
import { listenHttp, liveView } from "./serve_http.ts";
import { type LoadedAnswerKey, readAnswerKey } from "./_answer_key.ts";

/** The demo material shipped in the repository, recognised to warn about it. */
const DEMO_SECRET_PREFIX = "udpjwt-demo-";
const DEMO_KEY_FINGERPRINT =
  "SHA256:ZPSysEdXSgj54yVQGuWjLk0G9chXaMHGTyhnwMXCQjc";

async function readSecret(dir: string): Promise<[string, Uint8Array]> {
  const file = `${dir.replace(/[\\/]+$/, "")}/key_secret_for_hmac.txt`;
  let secret: Uint8Array;
  try {
    secret = await Deno.readFile(file);
  } catch (e) {
    const why = fileProblem(e);
    throw new ConfigError(
      `Cannot read the HMAC secret "${file}": ${why}: create it with the lab's shared secret (its raw bytes are used, a trailing newline included)`,
      { exitCode: 1 },
    );
  }
  if (secret.length === 0) {
    throw new ConfigError(
      `The HMAC secret "${file}" is empty: write the lab's shared secret into it`,
      { exitCode: 1 },
    );
  }
  return [file, secret];
}

async function readKeys(
  config: Config,
  backend: VerifyBackend,
  io: Io,
): Promise<KeyRing> {
  let ring: KeyRing;
  try {
    ring = await loadKeys(config.keysPub, {
      minRsaBits: config.minRsaBits,
      backend,
    });
  } catch (e) {
    const why = fileProblem(e, "directory");
    throw new ConfigError(
      `Cannot read the public keys directory "${config.keysPub}": ${why}: create it or pass --keys-pub`,
      { exitCode: 1 },
    );
  }
  if (ring.groups.size === 0) {
    for (const s of ring.skipped) io.err(`skipped ${s.file}: ${s.reason}`);
    throw new ConfigError(
      `No usable public key in "${config.keysPub}": add one <group>.pem, .ssh, .pub, .jwk or .jwks file per group (Ed25519, EC P-256/P-384/P-521 or RSA ≥ ${config.minRsaBits} bits)`,
      { exitCode: 1 },
    );
  }
  return ring;
}

async function checkDir(dir: string): Promise<void> {
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) throw new Error("not a directory");
  } catch (e) {
    const why = fileProblem(e, "directory");
    throw new ConfigError(`Cannot use the lab directory "${dir}": ${why}`, {
      exitCode: 1,
    });
  }
}

function listen(config: Config): Deno.DatagramConn {
  if (typeof Deno.listenDatagram !== "function") {
    throw new ConfigError(
      "UDP sockets need Deno's unstable net feature: run through the deno.json tasks or pass --unstable-net",
      { exitCode: 1 },
    );
  }
  try {
    return Deno.listenDatagram({
      hostname: config.hostname,
      port: config.port,
      transport: "udp",
    });
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse
      ? "the address is already in use (is another server running?)"
      : e instanceof Deno.errors.AddrNotAvailable
      ? "the address is not available on this machine"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied (ports below 1024 need privileges)"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new ConfigError(
      `Cannot listen on ${config.hostname} port ${config.port}: ${why}`,
      { exitCode: 1, cause: e },
    );
  }
}

/** Facts for the start-up summary besides the config and the keys. */
interface Facts {
  verify: string;
  secretFile: string;
  secretBytes: number;
  logFile: string;
  http: HttpSide | undefined;
  answerKey: LoadedAnswerKey | undefined;
  roster: Roster | undefined;
  groupsInState: number;
  cachedAnswers: number;
}

function httpOrigin(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":")
    ? `[${addr.hostname}]`
    : addr.hostname;
  return `http://${host}:${addr.port}`;
}

function summary(
  server: UdpServer,
  config: Config,
  ring: KeyRing,
  facts: Facts,
): string[] {
  const { hostname, port } = server.addr;
  const lines = [
    `${VERSION}`,
    `listening on ${hostname} port ${port} (udp)`,
    `${
      config.profile === "v1"
        ? "profile v1 (states 0..M per group, M from the roster or seq_max)"
        : `states ${config.states}`
    }, leeway ${config.leewaySec} s, max datagram ${config.maxDatagram} bytes, min RSA ${config.minRsaBits} bits`,
    `verify: ${facts.verify}`,
    ...(config.algs
      ? [`algorithms allowed (--algs): ${config.algs.join(", ")}`]
      : []),
    `HMAC secret: ${facts.secretFile} (${facts.secretBytes} bytes)`,
    ...(facts.answerKey
      ? [
        `answer key: ${facts.answerKey.file} (${facts.answerKey.alg}, ${facts.answerKey.description}, kid ${facts.answerKey.kid}; signing: ${facts.answerKey.engine}): answers are not HS256`,
      ]
      : []),
    `log: ${facts.logFile}`,
    ...(facts.http
      ? [
        `http: ${
          httpOrigin(facts.http.addr)
        }/ (dashboard; /metrics, /healthz, /api/status, /events${
          facts.answerKey ? ", /jwks.json" : ""
        }${config.httpToken ? "; token required" : ""})`,
      ]
      : []),
    `state: ${config.stateDir} (${facts.groupsInState} groups, ${facts.cachedAnswers} cached answers restored; ${
      config.fsync ? "fsync before answering" : "NO fsync"
    })`,
    `roster: ${
      facts.roster
        ? `${config.roster} (${facts.roster.size} groups)`
        : `none (${config.roster} not found)`
    }`,
    `groups (${ring.groups.size}) from ${config.keysPub}:`,
  ];
  const width = Math.max(...[...ring.groups.keys()].map((g) => g.length));
  for (const g of ring.groups.values()) {
    const file = g.file.split(/[\\/]/).pop();
    for (const [i, k] of g.keys.entries()) {
      const off = config.algs && !config.algs.includes(k.info.alg)
        ? " (not in --algs)"
        : "";
      lines.push(
        `  ${(i === 0 ? g.group : "").padEnd(width)}  ${
          k.info.alg.padEnd(5)
        }  ${describeKey(k.info).padEnd(8)}  ${
          k.info.format.padEnd(15)
        }  ${k.fingerprint}  ${file}  kid ${k.kid}${off}`,
      );
    }
  }
  if (ring.skipped.length > 0) {
    lines.push(`skipped files (${ring.skipped.length}):`);
    for (const s of ring.skipped) lines.push(`  ${s.file}: ${s.reason}`);
  }
  return lines;
}

async function serve(config: Config, io: Io): Promise<number> {
  await checkDir(config.dir);
  const [secretFile, secret] = await readSecret(config.keysPriv);
  let selected;
  try {
    selected = selectBackend({ prefer: config.verify });
  } catch (e) {
    throw new ConfigError(
      `Cannot use --verify openssl: ${
        e instanceof Error ? e.message : e
      }: install OpenSSL 3 (libcrypto) and grant --allow-ffi, or use --verify auto`,
      { exitCode: 1 },
    );
  }
  const { backend } = selected;
  const answerKey = config.answerKey === undefined
    ? undefined
    : await readAnswerKey(config.answerKey, { openssl: true });
  const ring = await readKeys(config, backend, io);
  try {
    await Deno.mkdir(config.logDir, { recursive: true });
  } catch (e) {
    throw new ConfigError(
      `Cannot create the log directory "${config.logDir}": ${e}: pass --log-dir`,
      { exitCode: 1 },
    );
  }
  const logFile = `${config.logDir.replace(/[\\/]+$/, "")}/udpjwt.jsonl`;
  const colour = !Deno.noColor && Deno.stdout.isTerminal();
  const datagrams = await setupLogging({
    level: config.logLevel,
    file: logFile,
    colour,
  });
  const log = getLogger(["udpjwt"]);
  const roster = await loadRoster(config.roster);
  const replay = new ReplayCache({ maxEntries: config.replayCache });
  const monitor = config.http ? new Monitor() : undefined;
  const nowSec = () => Date.now() / 1000;
  let journal;
  try {
    journal = await JournalStore.open(config.stateDir, {
      fsync: config.fsync,
      nowSec,
      replayEntries: () => replay.entries(nowSec()),
      log: getLogger(["udpjwt", "journal"]),
      ...(monitor ? { onCommit: (s: number) => monitor.commit(s) } : {}),
    });
  } catch (e) {
    throw new ConfigError(
      `Cannot open the state directory "${config.stateDir}": ${e}: pass --state-dir`,
      { exitCode: 1 },
    );
  }
  const { store } = journal;
  for (const entry of journal.replay) replay.add(entry);
  for (const warning of journal.warnings) log.warn(warning);
  const conn = listen(config);
  const server = new UdpServer(
    conn,
    {
      keys: ring.groups,
      secret,
      ...(answerKey ? { answerSigner: answerKey.signer } : {}),
      store,
      replay,
      now: () => new Date(),
      randomId: randomHex32,
      leewaySec: config.leewaySec,
      states: config.states,
      ...(config.profile === "v1" ? { profile: "v1" as const } : {}),
      ...(roster ? { roster } : {}),
      lanes: new Map(),
      ...(config.algs ? { algs: new Set<string>(config.algs) } : {}),
    },
    { events: log, datagrams },
    config,
  );
  let http: HttpSide | undefined;
  if (monitor) {
    server.observer = (r, seconds) => monitor.datagram(r, seconds);
    const view = liveView(
      server,
      store,
      replay,
      monitor,
      config,
      roster,
      journal.warnings,
      answerKey,
    );
    try {
      http = await listenHttp(config, view, monitor, answerKey?.jwks);
    } catch (e) {
      await server.close(0);
      await store.close();
      throw e;
    }
  }
  const facts: Facts = {
    verify: selected.note
      ? `${backend.description} (${selected.note})`
      : backend.description,
    secretFile,
    secretBytes: secret.length,
    logFile,
    http,
    answerKey,
    roster,
    groupsInState: Object.keys(store.snapshot()).length,
    cachedAnswers: replay.size,
  };
  // One write, so a reader of the pipe never sees half a summary.
  io.out(summary(server, config, ring, facts).join("\n"));
  for (const s of ring.skipped) {
    log.warn("Skipped key file {file}: {reason}", { ...s });
  }
  if (!isLoopback(server.addr.hostname)) {
    if (new TextDecoder().decode(secret).startsWith(DEMO_SECRET_PREFIX)) {
      log.warn(
        "DEMO HMAC SECRET IN USE on a non-loopback address: anyone can forge answers; write a real secret into {file}",
        { file: secretFile },
      );
    }
    for (const k of ring.groups.values()) {
      if (k.fingerprint === DEMO_KEY_FINGERPRINT) {
        log.warn(
          "DEMO KEY IN USE for group {group} on a non-loopback address: its private key is public; replace {file}",
          { group: k.group, file: k.file },
        );
      }
    }
  }
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      log.info("{signal} received: finishing datagrams in flight", { signal });
      await server.close();
    })();
  };
  let reloading = Promise.resolve();
  const reload = () => {
    reloading = reloading.then(() =>
      server.reloadKeys(
        config.keysPub,
        () =>
          loadKeys(config.keysPub, { minRsaBits: config.minRsaBits, backend }),
      )
    );
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM", "SIGHUP"];
  const handlers = signals.map((s) => {
    const h = s === "SIGHUP" ? reload : () => stop(s);
    Deno.addSignalListener(s, h);
    return [s, h] as const;
  });
  // Ready only once the signals are handled: a SIGTERM right after it is a
  // clean stop, never the default action.
  log.info("Ready: {groups} groups on {host} port {port}", {
    groups: ring.groups.size,
    host: server.addr.hostname,
    port: server.addr.port,
    rss: Deno.memoryUsage().rss,
  });
  await server.run();
  await stopping;
  await http?.close();
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  await store.close();
  const total = [...server.counts.values()].reduce((a, b) => a + b, 0);
  log.info("Stopped after {total} datagrams: {counts}", {
    total,
    counts: Object.fromEntries(server.counts),
    rss: Deno.memoryUsage().rss,
    cached: replay.size,
    evicted: replay.evicted,
  });
  await closeLogging();
  return 0;
}

/**
 * Runs `udpjwt [serve] [ADDRESS] [PORT] [DIR] [options]` (also `--help` and
 * `--version`).
 *
 * @param args The arguments after the program name (`serve` included or not).
 * @param io Where to print.
 * @returns The exit code once the server has stopped.
 * @throws {ConfigError} On a usage error or an unusable environment.
 */
export async function runServe(args: string[], io: Io): Promise<number> {
  const parsed = parseConfig(args);
  if (parsed.command === "help") {
    io.out(USAGE);
    return 0;
  }
  if (parsed.command === "version") {
    io.out(VERSION);
    const { backend, note } = selectBackend();
    io.out(`verify: ${backend.description}${note ? ` (${note})` : ""}`);
    return 0;
  }
  return await serve(parsed.config, io);
}
