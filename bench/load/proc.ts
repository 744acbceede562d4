/**
 * What Linux's `/proc` tells about the machine and the server under load:
 * the CPU model and load average, the system-wide UDP counters, and the
 * server's CPU time and RSS. Off Linux every reading is undefined.
 *
 * @module
 */

import { round } from "./summary.ts";

/** The machine the run took place on. */
export interface Machine {
  /** Logical CPUs. */
  nproc: number;
  /** The CPU model, from `/proc/cpuinfo`. */
  cpu: string;
  /** The 1, 5 and 15 minute load averages. */
  loadAvg: string;
  /** The Deno version. */
  deno: string;
}

/** Server CPU time over the load. */
export interface CpuUse {
  /** Datagrams the tool sent during the load. */
  datagrams: number;
  /** Wall-clock seconds between the two readings. */
  wallSec: number;
  /** Main-thread CPU seconds. */
  mainSec: number;
  /** Whole-process CPU seconds. */
  processSec: number;
  /** Main-thread CPU per datagram, in µs. */
  mainUsPerDatagram: number;
  /** Whole-process CPU per datagram, in µs. */
  processUsPerDatagram: number;
}

/**
 * Reads a Linux `/proc` file through `cat`: Deno asks for `--allow-all` to
 * read `/proc` directly, and the tool already may run programs.
 */
async function readProc(path: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("cat", {
      args: [path],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined; // not Linux
  }
}

/**
 * Describes the machine.
 *
 * @returns CPUs, model, load and Deno version.
 */
export async function machine(): Promise<Machine> {
  const info = await readProc("/proc/cpuinfo") ?? "";
  const cpu = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? "unknown";
  const load = await readProc("/proc/loadavg");
  const loadAvg = load?.split(" ").slice(0, 3).join(" ") ?? "unknown";
  return {
    nproc: navigator.hardwareConcurrency,
    cpu,
    loadAvg,
    deno: Deno.version.deno,
  };
}

/**
 * Linux's UDP counters (system-wide): receive-buffer drops show as loss.
 *
 * @returns The `Udp:` counters of `/proc/net/snmp` by name, or undefined.
 */
export async function udpCounters(): Promise<
  Record<string, number> | undefined
> {
  const text = await readProc("/proc/net/snmp");
  if (text === undefined) return undefined;
  const lines = text.split("\n").filter((l) => l.startsWith("Udp:"));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}

/**
 * Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`).
 *
 * @returns The ticks per second (100 when unknown).
 */
export async function clockTicks(): Promise<number> {
  try {
    const out = await new Deno.Command("getconf", {
      args: ["CLK_TCK"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/** User plus system seconds from a `/proc/.../stat` line. */
function statSeconds(
  stat: string | undefined,
  ticks: number,
): number | undefined {
  if (!stat) return undefined;
  // Fields after the ")" that ends the command name: utime and stime are
  // the 12th and 13th of them (fields 14 and 15 of proc(5)).
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const t = Number(f[11]) + Number(f[12]);
  return Number.isFinite(t) ? t / ticks : undefined;
}

/** A reading of {@linkcode processCpu}. */
export interface CpuReading {
  /** When, in `performance.now()` milliseconds. */
  at: number;
  /** Whole-process CPU seconds so far. */
  process: number;
  /** Main-thread CPU seconds so far. */
  main: number;
}

/**
 * CPU seconds of a process and of its main thread so far (Linux).
 *
 * @param pid The process.
 * @param ticks Clock ticks per second ({@linkcode clockTicks}).
 * @returns The reading, or undefined off Linux.
 */
export async function processCpu(
  pid: number,
  ticks: number,
): Promise<CpuReading | undefined> {
  const at = performance.now();
  const process = statSeconds(await readProc(`/proc/${pid}/stat`), ticks);
  const main = statSeconds(
    await readProc(`/proc/${pid}/task/${pid}/stat`),
    ticks,
  );
  return process === undefined || main === undefined
    ? undefined
    : { at, process, main };
}

/**
 * The CPU a process used between two readings, per datagram.
 *
 * @param before The reading before the load.
 * @param after The reading after it.
 * @param datagrams Datagrams sent in between.
 * @returns Seconds used and microseconds per datagram.
 */
export function cpuUse(
  before: CpuReading,
  after: CpuReading,
  datagrams: number,
): CpuUse {
  const mainSec = after.main - before.main;
  const processSec = after.process - before.process;
  return {
    datagrams,
    wallSec: round((after.at - before.at) / 1000, 3)!,
    mainSec: round(mainSec, 2)!,
    processSec: round(processSec, 2)!,
    mainUsPerDatagram: round(mainSec * 1e6 / datagrams, 1)!,
    processUsPerDatagram: round(processSec * 1e6 / datagrams, 1)!,
  };
}

/**
 * VmRSS and VmHWM of a process, in bytes (Linux).
 *
 * @param pid The process.
 * @returns Its RSS and peak RSS, each absent when unknown.
 */
export async function processRss(
  pid: number,
): Promise<{ rss?: number; peak?: number }> {
  const text = await readProc(`/proc/${pid}/status`) ?? "";
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const rss = kb("VmRSS");
  const peak = kb("VmHWM");
  return {
    ...(rss === undefined ? {} : { rss }),
    ...(peak === undefined ? {} : { peak }),
  };
}
