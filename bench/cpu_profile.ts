/**
 * Summarizes a V8 CPU profile (`deno run --cpu-prof …` writes a
 * `.cpuprofile`): the functions with the most self time, and self time by
 * source file, as shares of the busy (non-idle) time.
 *
 * ```sh
 * deno run --allow-read bench/cpu_profile.ts PROFILE.cpuprofile [TOP]
 * ```
 *
 * `(program)` is time in the runtime outside JavaScript (Deno's ops in Rust,
 * the event loop, system calls); `(garbage collector)` is V8's GC.
 *
 * @module
 */

/** The parts of a `.cpuprofile` read here. */
export interface CpuProfile {
  /** The call tree. */
  nodes: {
    id: number;
    callFrame: {
      functionName: string;
      url: string;
      lineNumber: number;
    };
  }[];
  /** The node of each sample. */
  samples: number[];
  /** Microseconds since the previous sample, one per sample. */
  timeDeltas: number[];
}

/** One line of the summary. */
export interface SelfTime {
  /** Function (or file) name. */
  name: string;
  /** Self time, µs. */
  us: number;
  /** Share of the busy time. */
  share: number;
}

function shortUrl(url: string): string {
  if (url === "") return "";
  const npm = /\/node_modules\/(?:\.deno\/)?([^/]+)\//.exec(url) ??
    /registry\.npmjs\.org\/([^/]+(?:\/[^/]+)?)\//.exec(url);
  if (npm) return `npm:${npm[1]}`;
  const m = /\/(lib|bench|tests)\/(.*)$/.exec(url);
  if (m) return `${m[1]}/${m[2]}`;
  if (url.startsWith("ext:")) return url;
  return url.split("/").slice(-2).join("/");
}

/**
 * Self time per function and per file.
 *
 * @param profile The parsed `.cpuprofile`.
 * @returns Both lists, largest first, and the busy time in µs.
 */
export function selfTimes(
  profile: CpuProfile,
): { functions: SelfTime[]; files: SelfTime[]; busyUs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's time is the gap to the next one.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") continue;
    busy += dt;
    const where = shortUrl(url);
    const name = where === ""
      ? functionName || "(anonymous)"
      : `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + dt);
    const f = where === "" ? functionName : where.replace(/:\d+$/, "");
    file.set(f, (file.get(f) ?? 0) + dt);
  }
  const list = (m: Map<string, number>) =>
    [...m].map(([name, us]) => ({ name, us, share: us / (busy || 1) }))
      .sort((a, b) => b.us - a.us);
  return { functions: list(fn), files: list(file), busyUs: busy };
}

if (import.meta.main) {
  const [path, topArg = "25"] = Deno.args;
  if (!path) {
    // deno-lint-ignore no-console
    console.error("Usage: bench/cpu_profile.ts PROFILE.cpuprofile [TOP]");
    Deno.exit(2);
  }
  const top = Number(topArg);
  const s = selfTimes(JSON.parse(await Deno.readTextFile(path)));
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)} %`;
  const out = [
    `busy ${(s.busyUs / 1e6).toFixed(2)} s (idle left out); self time:`,
    ...s.functions.slice(0, top).map((f) => `${pct(f.share)}  ${f.name}`),
    "by file:",
    ...s.files.slice(0, Math.ceil(top / 2)).map((f) =>
      `${pct(f.share)}  ${f.name}`
    ),
  ];
  // deno-lint-ignore no-console
  console.log(out.join("\n"));
}
