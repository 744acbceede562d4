/**
 * `GET /metrics`: the Prometheus text exposition (format 0.0.4), written by
 * prom-client. The per-datagram figures are the monitor's histograms; every
 * other metric is read from the running server when scraped, so a datagram
 * costs one histogram observation and nothing more.
 *
 * @example
 * ```ts
 * import { Monitor } from "./monitor.ts";
 * import { metricsRegistry } from "./metrics.ts";
 * const registry = metricsRegistry({
 *   counts: () => new Map([["ok", 3]]),
 *   inFlight: () => 0,
 *   answerCacheEntries: () => 3,
 *   records: () => new Map(),
 *   keys: () => [],
 *   health: () => ({ ok: true }),
 *   status: () => ({}),
 * }, new Monitor(), { processMetrics: false });
 * (await registry.metrics()).includes('udpjwt_datagrams_total{outcome="ok"} 3'); // true
 * ```
 *
 * @module
 */

import process from "node:process";
import { Counter, Gauge, Registry } from "prom-client";
import { ERROR_CODES } from "../protocol/errors.ts";
import type { LiveView, Monitor } from "./monitor.ts";

/** Outcomes exported from the start, at 0, so that rates work from the first scrape. */
const KNOWN_OUTCOMES = ["ok", "replayed", "no_action", ...ERROR_CODES];

/** Options of {@linkcode metricsRegistry}. */
export interface MetricsOptions {
  /**
   * Add the usual process metrics (`process_resident_memory_bytes`,
   * `process_cpu_seconds_total`, `process_start_time_seconds`).
   * @default {true}
   */
  processMetrics?: boolean;
}

/**
 * Builds the registry `/metrics` renders.
 *
 * @param view The running server.
 * @param monitor The per-datagram and per-commit histograms.
 * @param options Whether to add the process metrics.
 * @returns The registry; `await registry.metrics()` is the page.
 */
export function metricsRegistry(
  view: LiveView,
  monitor: Monitor,
  options?: MetricsOptions,
): Registry {
  const registry = new Registry();
  const registers = [registry];
  new Counter({
    name: "udpjwt_datagrams_total",
    help:
      "Datagrams received, by outcome: ok, replayed, no_action, an error code, or dropped:<reason>",
    labelNames: ["outcome"],
    registers,
    collect() {
      this.reset();
      const counts = view.counts();
      for (const o of KNOWN_OUTCOMES) this.inc({ outcome: o }, 0);
      for (const [o, n] of counts) this.inc({ outcome: o }, n);
    },
  });
  new Gauge({
    name: "udpjwt_group_state",
    help: "Each group's durable state number (0 = RED)",
    labelNames: ["group"],
    registers,
    collect() {
      this.reset();
      for (const k of view.keys()) this.set({ group: k.group }, 0);
      for (const [g, r] of view.records()) this.set({ group: g }, r.state);
    },
  });
  new Counter({
    name: "udpjwt_group_walks_total",
    help: "Each group's completed walks",
    labelNames: ["group"],
    registers,
    collect() {
      this.reset();
      for (const k of view.keys()) this.inc({ group: k.group }, 0);
      for (const [g, r] of view.records()) {
        this.inc({ group: g }, r.walkCount ?? r.walks.length);
      }
    },
  });
  new Gauge({
    name: "udpjwt_in_flight",
    help: "Datagrams being handled (verifying or waiting for the journal)",
    registers,
    collect() {
      this.set(view.inFlight());
    },
  });
  new Gauge({
    name: "udpjwt_answer_cache_entries",
    help: "Answers cached for retransmissions",
    registers,
    collect() {
      this.set(view.answerCacheEntries());
    },
  });
  new Gauge({
    name: "udpjwt_healthy",
    help: "1 while the UDP loop receives and the journal is writable, else 0",
    registers,
    collect() {
      this.set(view.health().ok ? 1 : 0);
    },
  });
  registry.registerMetric(monitor.requestDuration);
  registry.registerMetric(monitor.commitDuration);
  if (options?.processMetrics ?? true) processMetrics(registry);
  return registry;
}

/**
 * The process metrics every exporter has, read when scraped. prom-client's
 * own set adds a dozen `nodejs_*` series (three of them misnamed by
 * Prometheus' own lint) and an event-loop monitor: these three are the ones
 * operators expect.
 */
function processMetrics(registry: Registry): void {
  const registers = [registry];
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes",
    registers,
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new Counter({
    name: "process_cpu_seconds_total",
    help: "User and system CPU time spent, in seconds",
    registers,
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
  const start = performance.timeOrigin / 1000;
  new Gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch, in seconds",
    registers,
    collect() {
      this.set(start);
    },
  });
}
