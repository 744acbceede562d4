/**
 * One run of the load tool: prepare the lab, sign the tokens, start the
 * server (unless `--port`), drive it in windowed or flood mode while
 * sampling `/proc`, stop it and gather the {@linkcode Report}.
 *
 * @module
 */

import { measureFdatasync } from "./fsync.ts";
import { floodPayloads, floodSource, runFlood } from "./flood.ts";
import { prepareLab } from "./lab.ts";
import { opensslSpeed } from "./openssl.ts";
import type { Options } from "./options.ts";
import {
  clockTicks,
  cpuUse,
  machine,
  processCpu,
  processRss,
  udpCounters,
} from "./proc.ts";
import type { Report } from "./report.ts";
import { type SpawnedServer, spawnServer } from "./server.ts";
import { round, summarize } from "./summary.ts";
import { groupOrder, groupsFor, presign, tokensPerGroup } from "./tokens.ts";
import { runWindow } from "./window.ts";

/**
 * Runs the load tool with parsed options.
 *
 * @param options The options.
 * @param progress Receives the progress lines (stderr).
 * @returns The report, or undefined after `--prepare`.
 * @throws {UsageError} When the lab does not fit the options.
 */
export async function run(
  options: Options,
  progress: (line: string) => void,
): Promise<Report | undefined> {
  const counts = groupsFor(options);
  const order = groupOrder(counts);
  const lab = await prepareLab(options.lab, counts, options);
  if (options.prepare) {
    progress(`lab ready: ${lab.dir}`);
    progress(
      `start a server on it, e.g.: deno run --allow-net --allow-read --allow-write --allow-ffi main.ts 127.0.0.1 44555 ${lab.dir}`,
    );
    return undefined;
  }
  const runDir = await Deno.makeTempDir({ prefix: "udpjwt_load_run_" });
  let server: SpawnedServer | undefined;
  try {
    const m = await machine();
    // Where the spawned server's journal goes: its fsync floor, measured
    // before the server starts.
    const fdatasync = options.spawn
      ? await measureFdatasync(runDir)
      : undefined;
    let speeds: Report["openssl"];
    if (options.openssl) {
      progress("openssl speed -seconds 3 rsa2048 / ecdsap256 …");
      const rsa2048 = await opensslSpeed("rsa2048");
      const ecdsap256 = await opensslSpeed("ecdsap256");
      speeds = {
        ...(rsa2048 ? { rsa2048 } : {}),
        ...(ecdsap256 ? { ecdsap256 } : {}),
      };
    }
    const perGroup = tokensPerGroup(options, order);
    progress(
      `signing ${
        perGroup * order.length
      } tokens (${order.length} groups x ${perGroup}) …`,
    );
    const signed = await presign(
      order.map((o) => ({ ...o, count: perGroup })),
      lab,
      { states: options.states, expSec: options.expSec, progress },
    );
    const distinct = perGroup * order.length;
    let target = { hostname: options.hostname, port: options.port ?? 0 };
    if (options.spawn) {
      server = await spawnServer(lab.dir, { ...options, runDir, progress });
      target = { hostname: server.hostname, port: server.port };
      progress(`server listening on ${target.hostname} port ${target.port}`);
    }
    const udpBefore = await udpCounters();
    const rssBefore = server ? await processRss(server.pid) : undefined;
    const ticks = await clockTicks();
    const cpuBefore = server ? await processCpu(server.pid, ticks) : undefined;
    const report: Report = {
      mode: options.mode,
      window: options.mode === "flood" ? 1 : options.window,
      seconds: options.seconds,
      groups: order,
      tokens: {
        distinct,
        cycle: options.cycle,
        signSec: round(signed.seconds, 2)!,
        signedPerSec: Math.round(distinct / signed.seconds),
        expSec: options.expSec,
      },
      target: {
        ...target,
        spawned: options.spawn,
        ...(server?.verify ? { verify: server.verify } : {}),
      },
      ...(server ? { serverArgs: server.args } : {}),
      machine: m,
      ...(fdatasync ? { fdatasync } : {}),
    };
    progress(`running ${options.mode} for ${options.seconds} s …`);
    if (options.mode === "flood") {
      const walker = signed.groups[0]!;
      const payloads = await floodPayloads(walker, lab, options);
      const { flood, walker: walked } = await runFlood(payloads, walker, {
        ...options,
        target,
      });
      report.flood = {
        kind: options.floodKind,
        size: options.floodKind === "random" ? options.floodSize : null,
        from: floodSource(options),
        targetRate: options.floodRate,
        sent: flood.sent,
        achievedRate: Math.round(flood.sent / Math.max(flood.elapsedSec, 1e-3)),
        sendErrors: flood.sendErrors,
        answers: flood.answers,
        walker: summarize(walked, 1, options.states),
      };
    } else {
      const result = await runWindow(signed.groups, {
        ...target,
        window: options.window,
        seconds: options.seconds,
        timeoutMs: options.timeoutMs,
        cycle: options.cycle,
        ...(options.retransmitMs === undefined
          ? {}
          : { retransmitMs: options.retransmitMs }),
      });
      report.result = summarize(result, order.length, options.states);
    }
    const udpAfter = await udpCounters();
    if (udpBefore && udpAfter) {
      report.udp = Object.fromEntries(
        Object.entries(udpAfter).map(([k, v]) => [k, v - (udpBefore[k] ?? 0)]),
      );
    }
    if (server) {
      const cpuAfter = await processCpu(server.pid, ticks);
      const rssAfter = await processRss(server.pid);
      const datagrams = report.flood
        ? report.flood.sent + report.flood.walker.sent
        : report.result?.sent ?? 0;
      progress("stopping the server …");
      report.server = {
        ...await server.stop(),
        ...(cpuBefore && cpuAfter && datagrams > 0
          ? { cpu: cpuUse(cpuBefore, cpuAfter, datagrams) }
          : {}),
        procRss: {
          ...(rssBefore?.rss === undefined ? {} : { before: rssBefore.rss }),
          ...(rssAfter.rss === undefined ? {} : { after: rssAfter.rss }),
          ...(rssAfter.peak === undefined ? {} : { peak: rssAfter.peak }),
        },
      };
      server = undefined;
    }
    if (speeds) {
      const rps = report.result?.responsesPerSec;
      const rs = speeds.rsa2048?.verifyPerSec;
      const es = speeds.ecdsap256?.verifyPerSec;
      const shareRs = (counts.get("RS256") ?? 0) / order.length;
      // openssl speed's rsa2048 and ecdsap256 describe RS256 and ES256 only.
      const comparable = ["rs256", "es256", "mixed"].includes(options.mode);
      const mix = rs !== undefined && es !== undefined && comparable
        ? 1 / (shareRs / rs + (1 - shareRs) / es)
        : undefined;
      report.openssl = {
        ...speeds,
        ...(mix !== undefined ? { mixVerifyPerSec: Math.round(mix) } : {}),
        ...(rps !== undefined && mix !== undefined
          ? { ratio: round(rps / mix, 5)! }
          : {}),
      };
    }
    return report;
  } finally {
    if (server) await server.stop().catch(() => {});
    if (options.keepLab) {
      progress(`kept: lab ${lab.dir}, server logs and state ${runDir}`);
    } else {
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
      if (lab.temporary) {
        await Deno.remove(lab.dir, { recursive: true }).catch(() => {});
      }
    }
  }
}
