/**
 * The machine's fdatasync time where the spawned server keeps its state: the
 * floor under an answer's latency with fsync on (issue 11 asks p50 at W=1 ≤
 * this median + 0.3 ms).
 *
 * @module
 */

/** The fdatasync times of small appends, in milliseconds. */
export interface FsyncFigures {
  /** Appends measured. */
  samples: number;
  /** The median. */
  p50Ms: number;
  /** The 99th percentile. */
  p99Ms: number;
}

/**
 * Appends a journal-sized line to a scratch file in `dir` and fdatasyncs it,
 * `samples` times, then removes the file.
 *
 * @param dir A directory on the file system to measure.
 * @param samples How many appends.
 * @returns The median and 99th percentile, rounded to µs.
 */
export async function measureFdatasync(
  dir: string,
  samples = 200,
): Promise<FsyncFigures> {
  const path = `${dir}/fdatasync_probe`;
  const line = new TextEncoder().encode(`${"x".repeat(299)}\n`);
  const file = await Deno.open(path, { append: true, create: true });
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      await file.write(line);
      const t = performance.now();
      await file.syncData();
      times.push(performance.now() - t);
    }
  } finally {
    file.close();
    await Deno.remove(path).catch(() => {});
  }
  times.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(
      times[Math.min(times.length - 1, Math.floor(q * times.length))]! *
        1000,
    ) / 1000;
  return { samples, p50Ms: at(0.5), p99Ms: at(0.99) };
}
