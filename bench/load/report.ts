/**
 * Everything the load tool reports, and its text form (one line a figure;
 * `--json` prints the {@linkcode Report} itself).
 *
 * @module
 */

import type { AnyAlg as Alg } from "../_keys.ts";
import type { FsyncFigures } from "./fsync.ts";
import type { SpeedFigures } from "./openssl.ts";
import type { FloodKind, Mode } from "./options.ts";
import type { Machine } from "./proc.ts";
import type { ServerFacts } from "./server.ts";
import type { Summary } from "./summary.ts";

/** Everything the tool reports. */
export interface Report {
  /** `--mode`. */
  mode: Mode;
  /** Datagrams outstanding (1 in flood mode). */
  window: number;
  /** `--seconds`. */
  seconds: number;
  /** The groups, in sending order. */
  groups: { name: string; alg: Alg }[];
  /** The pre-signed pool. */
  tokens: {
    distinct: number;
    cycle: boolean;
    signSec: number;
    signedPerSec: number;
    expSec: number;
  };
  /** The server under test. */
  target: {
    hostname: string;
    port: number;
    spawned: boolean;
    /** The server's verify backend, as its start-up summary says. */
    verify?: string;
  };
  /** The spawned server's arguments after `main.ts`. */
  serverArgs?: string[];
  /** The figures of a windowed run. */
  result?: Summary;
  /** The flood and the walker's figures, in flood mode. */
  flood?: {
    kind: FloodKind;
    size: number | null;
    from: string;
    targetRate: number;
    sent: number;
    achievedRate: number;
    sendErrors: number;
    answers: number;
    walker: Summary;
  };
  /** What the spawned server's log and `/proc` said. */
  server?: ServerFacts;
  /** The change of Linux's UDP counters over the run. */
  udp?: Record<string, number>;
  /** `--openssl` reference figures. */
  openssl?: {
    rsa2048?: SpeedFigures;
    ecdsap256?: SpeedFigures;
    /** The one-core verify rate of the run's algorithm mix. */
    mixVerifyPerSec?: number;
    /** responses/s ÷ mixVerifyPerSec. */
    ratio?: number;
  };
  /** The machine. */
  machine: Machine;
  /** fdatasync of small appends where the spawned server's state is. */
  fdatasync?: FsyncFigures;
}

function mb(bytes: number | undefined): string {
  return bytes === undefined || Number.isNaN(bytes)
    ? "?"
    : `${(bytes / 1048576).toFixed(1)} MB`;
}

function describe(s: Summary, indent = ""): string[] {
  const l = s.latencyMs;
  const errors = Object.entries(s.errors);
  return [
    `${indent}sent          ${s.sent}`,
    `${indent}received      ${s.received}${
      s.late > 0 ? ` (+${s.late} after the timeout)` : ""
    }${s.unmatched > 0 ? ` (+${s.unmatched} unmatched)` : ""}`,
    `${indent}lost          ${s.lost}${
      s.sendErrors > 0 ? ` (${s.sendErrors} send errors)` : ""
    }${s.retransmissions > 0 ? ` (${s.retransmissions} retransmissions)` : ""}`,
    `${indent}responses/s   ${s.responsesPerSec} (over ${s.activeSec} s${
      s.exhausted ? "; tokens ran out: raise --tokens" : ""
    })`,
    `${indent}latency ms    p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}  mean ${l.mean}`,
    `${indent}correct       ${
      s.correctShare === null ? "-" : `${(s.correctShare * 100).toFixed(2)} %`
    } (${s.correct} of ${s.received})`,
    ...(errors.length > 0
      ? [
        `${indent}errors        ${
          errors.map(([c, n]) => `${c} ${n}`).join(", ")
        }`,
      ]
      : []),
  ];
}

/**
 * The report as text lines.
 *
 * @param r The report.
 * @returns The lines to print.
 */
export function render(r: Report): string[] {
  const lines = [
    `udpjwt load: mode ${r.mode}${
      r.mode === "flood" ? "" : `, window ${r.window}`
    }, ${r.seconds} s, groups ${r.groups.length} (${
      [...new Set(r.groups.map((g) => g.alg))].join("+")
    })`,
    `machine       ${r.machine.nproc} x ${r.machine.cpu}, load ${r.machine.loadAvg}, deno ${r.machine.deno}`,
    `target        ${r.target.hostname} port ${r.target.port}${
      r.target.spawned ? ` (spawned: ${r.serverArgs?.slice(3).join(" ")})` : ""
    }`,
    ...(r.target.verify ? [`verify        ${r.target.verify}`] : []),
    ...(r.fdatasync
      ? [
        `fdatasync     p50 ${r.fdatasync.p50Ms} ms  p99 ${r.fdatasync.p99Ms} ms (${r.fdatasync.samples} appends where the server's state is; with fsync, an answer waits at least this)`,
      ]
      : []),
    `tokens        ${r.tokens.distinct} distinct${
      r.tokens.cycle ? ", cycled" : ""
    }, signed in ${r.tokens.signSec} s (${r.tokens.signedPerSec}/s), exp +${r.tokens.expSec} s`,
  ];
  if (r.result) lines.push(...describe(r.result));
  if (r.flood) {
    const f = r.flood;
    lines.push(
      `flood         ${f.kind}${
        f.size === null ? "" : ` ${f.size} B`
      } from ${f.from}: ${f.sent} sent at ${f.achievedRate}/s (target ${f.targetRate}/s), ${f.answers} answered${
        f.sendErrors > 0 ? `, ${f.sendErrors} send errors` : ""
      }`,
      "walker:",
      ...describe(f.walker, "  "),
    );
  }
  if (r.server) {
    const s = r.server;
    lines.push(
      `server        rss ${mb(s.procRss?.before)} before the load -> ${
        mb(s.procRss?.after)
      } after (peak ${mb(s.procRss?.peak)}); log: ${
        mb(s.readyRss)
      } at Ready -> ${mb(s.stoppedRss)} at Stop`,
      `server        replay cache ${s.cached ?? "?"} cached, ${
        s.evicted ?? "?"
      } evicted; stopped in ${s.stopSec?.toFixed(1)} s (exit ${s.exitCode})`,
      `server counts ${JSON.stringify(s.counts ?? {})}`,
    );
    if (s.cpu) {
      const share = (sec: number) => Math.round(100 * sec / s.cpu!.wallSec);
      lines.push(
        `server cpu    main thread ${s.cpu.mainUsPerDatagram} µs per datagram (${
          share(s.cpu.mainSec)
        } % of a core), whole process ${s.cpu.processUsPerDatagram} µs (${
          share(s.cpu.processSec)
        } %)`,
      );
    }
  }
  if (r.udp) {
    lines.push(
      `kernel udp    RcvbufErrors +${r.udp.RcvbufErrors ?? 0}, InErrors +${
        r.udp.InErrors ?? 0
      } (system-wide)`,
    );
  }
  if (r.openssl) {
    const o = r.openssl;
    lines.push(
      `openssl       rsa2048 verify ${
        o.rsa2048?.verifyPerSec ?? "?"
      }/s, ecdsap256 verify ${o.ecdsap256?.verifyPerSec ?? "?"}/s (one core)${
        o.ratio === undefined
          ? ""
          : `; responses/s / verify/s = ${o.ratio.toFixed(4)}`
      }`,
    );
  }
  return lines;
}
