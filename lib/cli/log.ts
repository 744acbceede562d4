/**
 * Logging through LogTape: human-readable console lines and a JSON Lines file
 * with one record per datagram. The formatters are pure; `setupLogging` wires
 * the sinks.
 *
 * Categories: `["udpjwt", …]` for events (console and file) and
 * `["udpjwt", "datagram"]` for the per-datagram records (file only, and the
 * console too at `debug`).
 *
 * @module
 */

import {
  configure,
  dispose,
  getConsoleSink,
  type LogRecord,
  type Sink,
  withFilter,
} from "@logtape/logtape";
import { getRotatingFileSink } from "@logtape/file";
import type { LogLevel } from "./config.ts";

/** The category of per-datagram records. */
export const DATAGRAM_CATEGORY = ["udpjwt", "datagram"] as const;

function render(record: LogRecord): string {
  return record.message.map((part, i) =>
    i % 2 === 0
      ? String(part)
      : typeof part === "string"
      ? part
      : JSON.stringify(part)
  ).join("");
}

const LEVEL_COLOURS: Record<string, string> = {
  trace: "\x1b[90m",
  debug: "\x1b[90m",
  info: "\x1b[32m",
  warning: "\x1b[33m",
  error: "\x1b[31m",
  fatal: "\x1b[31m",
};

/**
 * Formats a record for the console: time, level, message.
 *
 * @param record A LogTape record.
 * @param options Whether to use ANSI colours.
 * @returns One line, without a newline.
 */
export function formatConsoleLine(
  record: LogRecord,
  options?: { colour?: boolean },
): string {
  const time = new Date(record.timestamp).toISOString();
  const level = record.level.toUpperCase().padEnd(7);
  if (!options?.colour) return `${time} ${level} ${render(record)}`;
  const c = LEVEL_COLOURS[record.level] ?? "";
  return `\x1b[90m${time}\x1b[0m ${c}${level}\x1b[0m ${render(record)}`;
}

/**
 * Formats a record as one JSON object: time, level, category, message, and
 * the record's properties.
 *
 * @param record A LogTape record.
 * @returns One line of JSON, with a trailing newline.
 */
export function formatJsonLine(record: LogRecord): string {
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.slice(1).join(".") || "server",
    message: render(record),
    ...record.properties,
  }) + "\n";
}

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** Console level; `debug` also prints every datagram. */
  level: LogLevel;
  /** The JSON Lines file, or undefined for none. */
  file?: string;
  /** Whether the console uses ANSI colours. */
  colour: boolean;
}

/**
 * Configures LogTape's sinks for the server. Call {@linkcode closeLogging}
 * before exit to flush the file.
 *
 * @param options Level, file and colour.
 */
export async function setupLogging(options: LoggingOptions): Promise<void> {
  const { level, file, colour } = options;
  // The console level filters the console only: the file always gets the
  // info records (start, stop, figures), whatever --log-level says.
  const sinks: Record<string, Sink> = {
    console: withFilter(
      getConsoleSink({ formatter: (r) => formatConsoleLine(r, { colour }) }),
      level,
    ),
  };
  if (file) {
    sinks.file = withFilter(
      getRotatingFileSink(file, {
        formatter: formatJsonLine,
        maxSize: 64 * 1024 * 1024,
        maxFiles: 8,
        bufferSize: 64 * 1024,
        flushInterval: 1000,
        // Blocking mode would fsync the log on the event loop at each flush;
        // non-blocking mode writes the buffer and fsyncs off the main thread.
        nonBlocking: true,
      }),
      "info",
    );
  }
  const fileSinks = file ? ["file"] : [];
  await configure({
    reset: true,
    sinks,
    loggers: [
      {
        category: ["udpjwt"],
        sinks: ["console", ...fileSinks],
        lowestLevel: level === "debug" ? "debug" : "info",
      },
      {
        category: [...DATAGRAM_CATEGORY],
        sinks: level === "debug" ? ["console", ...fileSinks] : fileSinks,
        parentSinks: "override",
        lowestLevel: "info",
      },
      {
        category: ["logtape", "meta"],
        sinks: ["console"],
        lowestLevel: "warning",
      },
    ],
  });
}

/** Flushes and closes the log sinks. */
export async function closeLogging(): Promise<void> {
  await dispose();
}
