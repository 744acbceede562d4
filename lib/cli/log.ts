/**
 * Logging: human-readable console lines and a JSON Lines file with one record
 * per datagram. Events and warnings go through LogTape; the per-datagram
 * records skip its per-record machinery (template parsing, record objects,
 * property snapshots) and are formatted straight into the file's buffer by
 * {@linkcode DatagramLog}, with the same fields. The formatters are pure;
 * `setupLogging` wires the sinks, and {@linkcode JsonLinesFile} owns the file
 * (buffered, rotated, written off the datagram path).
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
  getLogger,
  type Logger,
  type LogRecord,
  type Sink,
  withFilter,
} from "@logtape/logtape";
import type { LogLevel } from "./config.ts";
import type { DatagramLog, DatagramRecord } from "../net/server.ts";

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

/** The message of a datagram record, as its LogTape template rendered it. */
function datagramMessage(r: DatagramRecord): string {
  return r.count === undefined
    ? `${r.outcome} from ${r.peer}:${r.port}`
    : `${r.outcome} x${r.count} from ${r.peer}`;
}

/** `toISOString()` of millisecond times, with a `Date` once per second only. */
export class IsoClock {
  #second = NaN;
  #prefix = "";

  /**
   * Formats a time as `Date.prototype.toISOString` does.
   *
   * @param ms Unix milliseconds, a whole number.
   * @returns e.g. `2026-11-23T12:00:00.005Z`.
   */
  format(ms: number): string {
    const second = Math.floor(ms / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#prefix = new Date(second * 1000).toISOString().slice(0, 20);
    }
    const frac = ms - second * 1000;
    return `${this.#prefix}${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}Z`;
  }
}

/**
 * Formats a datagram record as the JSON line {@linkcode formatJsonLine}
 * writes for the same LogTape record (same fields, same order), without a
 * LogTape record.
 *
 * @param timeMs The record's time, in Unix milliseconds (whole).
 * @param r The record's fields.
 * @returns One line of JSON, with a trailing newline.
 */
export function formatDatagramLine(timeMs: number, r: DatagramRecord): string {
  return formatDatagram(new Date(timeMs).toISOString(), r);
}

/** A nullable number as JSON. */
function num(n: number | null): string {
  return n === null || !Number.isFinite(n) ? "null" : `${n}`;
}

function formatDatagram(time: string, r: DatagramRecord): string {
  return `{"time":"${time}","level":"info","category":"datagram","message":${
    JSON.stringify(datagramMessage(r))
  },"peer":${JSON.stringify(r.peer)},"port":${num(r.port)},"bytes":${
    num(r.bytes)
  },"group":${r.group === null ? "null" : JSON.stringify(r.group)},"outcome":${
    JSON.stringify(r.outcome)
  }${r.error === undefined ? "" : `,"error":${JSON.stringify(r.error)}`}${
    r.detail === undefined ? "" : `,"detail":${JSON.stringify(r.detail)}`
  }${
    r.count === undefined ? "" : `,"count":${num(r.count)}`
  },"seq_state_number":${num(r.seq_state_number)},"next_number":${
    num(r.next_number)
  },"registration":${num(r.registration)},"us":${num(r.us)}}\n`;
}

/** Options of {@linkcode JsonLinesFile}. */
export interface JsonLinesFileOptions {
  /**
   * Rotate when the file would grow past this many bytes.
   * @default {67108864}
   */
  maxSize?: number;
  /**
   * Files kept: the live one and `.1` … `.N-1`.
   * @default {8}
   */
  maxFiles?: number;
  /**
   * Write once this many characters are buffered.
   * @default {65536}
   */
  bufferSize?: number;
  /**
   * Write what is buffered at least this often, in milliseconds.
   * @default {1000}
   */
  flushMs?: number;
  /**
   * Drop records (and count them) beyond this many buffered characters,
   * while writes are slow or failing: memory stays bounded.
   * @default {16777216}
   */
  maxBuffered?: number;
  /** Told when writes start failing and how many records were dropped. */
  onError?: (error: unknown, dropped: number) => void;
  /**
   * Opens the file for appending, with its size (tests inject failures).
   * @default {openForAppend}
   */
  openFile?: (path: string) => Promise<{ file: LogFile; size: number }>;
}

/** The file operations {@linkcode JsonLinesFile} uses; `Deno.FsFile` has them. */
export type LogFile = Pick<Deno.FsFile, "write" | "syncData" | "close">;

async function openForAppend(
  path: string,
): Promise<{ file: LogFile; size: number }> {
  const file = await Deno.open(path, { create: true, append: true });
  try {
    return { file, size: (await file.stat()).size };
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * An append-only JSON Lines file written from a buffer, never on the caller's
 * path: `append` only adds to the buffer; the writes (one per `bufferSize`
 * characters or per `flushMs`) run asynchronously, one at a time. A write
 * that fails drops its lines, counted, and later writes try again, so a full
 * disk neither stops nor slows the caller. Each write is followed by an
 * fdatasync (on Deno's thread pool): a crash loses at most the records of
 * the last second.
 */
export class JsonLinesFile {
  #path: string;
  #file: LogFile;
  #open: (path: string) => Promise<{ file: LogFile; size: number }>;
  /** Whether a failed write may have left part of a line. */
  #torn = false;
  #size: number;
  #maxSize: number;
  #maxFiles: number;
  #bufferSize: number;
  #maxBuffered: number;
  #onError: ((error: unknown, dropped: number) => void) | undefined;
  #parts: string[] = [];
  #buffered = 0;
  #writing: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval>;
  #dropped = 0;
  #failing = false;
  #closed = false;
  #encoder = new TextEncoder();

  private constructor(
    path: string,
    opened: { file: LogFile; size: number },
    options: JsonLinesFileOptions,
  ) {
    this.#path = path;
    this.#file = opened.file;
    this.#open = options.openFile ?? openForAppend;
    this.#size = opened.size;
    this.#maxSize = options.maxSize ?? 64 * 1024 * 1024;
    this.#maxFiles = options.maxFiles ?? 8;
    this.#bufferSize = options.bufferSize ?? 64 * 1024;
    this.#maxBuffered = options.maxBuffered ?? 16 * 1024 * 1024;
    this.#onError = options.onError;
    this.#timer = setInterval(() => this.#flush(), options.flushMs ?? 1000);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /**
   * Opens (or creates) the file for appending.
   *
   * @param path The file.
   * @param options Rotation, buffering and error reporting.
   * @returns The open file.
   */
  static async open(
    path: string,
    options?: JsonLinesFileOptions,
  ): Promise<JsonLinesFile> {
    const opts = options ?? {};
    const opened = await (opts.openFile ?? openForAppend)(path);
    return new JsonLinesFile(path, opened, opts);
  }

  /** Records dropped because they could not be written (or buffered). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Adds whole lines to the buffer.
   *
   * @param lines One or more lines, each ending with a newline.
   */
  append(lines: string): void {
    if (this.#closed) return;
    if (this.#buffered >= this.#maxBuffered) {
      this.#dropped++;
      return;
    }
    this.#parts.push(lines);
    this.#buffered += lines.length;
    if (this.#buffered >= this.#bufferSize && !this.#writing) this.#flush();
  }

  /** Starts writing the buffer unless a write is under way. */
  #flush(): void {
    if (this.#writing || this.#parts.length === 0) return;
    const text = this.#parts.join("");
    const lines = this.#parts.length;
    this.#parts = [];
    this.#buffered = 0;
    this.#writing = this.#write(text, lines).finally(() => {
      this.#writing = undefined;
      if (this.#buffered >= this.#bufferSize) this.#flush();
    });
  }

  async #write(text: string, lines: number): Promise<void> {
    // After a torn write, the next line starts on a line of its own.
    const bytes = this.#encoder.encode(this.#torn ? `\n${text}` : text);
    let off = 0;
    try {
      if (this.#size > 0 && this.#size + bytes.length > this.#maxSize) {
        await this.#rotate();
      }
      while (off < bytes.length) {
        off += await this.#file.write(bytes.subarray(off));
      }
      // Off the main thread, like the write: a slow disk delays the next
      // write, never the caller.
      await this.#file.syncData();
      this.#torn = false;
      this.#failing = false;
    } catch (e) {
      this.#dropped += lines;
      if (!this.#failing) {
        this.#failing = true;
        try {
          this.#onError?.(e, this.#dropped);
        } catch {
          // Reporting must not fail the writer.
        }
      }
      if (off > 0) this.#torn = true;
    } finally {
      this.#size += off;
    }
  }

  async #rotate(): Promise<void> {
    try {
      this.#file.close();
    } catch {
      // Closed by a rotation that failed half-way: open afresh below.
    }
    for (let i = this.#maxFiles - 2; i >= 1; i--) {
      await Deno.rename(`${this.#path}.${i}`, `${this.#path}.${i + 1}`)
        .catch(() => {});
    }
    if (this.#maxFiles > 1) {
      await Deno.rename(this.#path, `${this.#path}.1`).catch(() => {});
    } else await Deno.remove(this.#path).catch(() => {});
    const opened = await this.#open(this.#path);
    this.#file = opened.file;
    this.#size = opened.size;
  }

  /** Writes what is buffered and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.#writing;
    this.#flush();
    await this.#writing;
    this.#closed = true;
    this.#file.close();
  }
}

/**
 * The per-datagram log: lines formatted straight into the JSON Lines file's
 * buffer; at `debug`, also a console line through LogTape.
 */
class FileDatagramLog implements DatagramLog {
  #file: JsonLinesFile | undefined;
  #console: Logger | undefined;
  #clock = new IsoClock();

  constructor(file: JsonLinesFile | undefined, console: Logger | undefined) {
    this.#file = file;
    this.#console = console;
  }

  write(r: DatagramRecord): void {
    if (this.#file) {
      this.#file.append(formatDatagram(this.#clock.format(Date.now()), r));
    }
    if (this.#console) {
      this.#console.info(
        r.count === undefined
          ? "{outcome} from {peer}:{port}"
          : "{outcome} x{count} from {peer}",
        { ...r },
      );
    }
  }
}

let openFile: JsonLinesFile | undefined;

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
 * Configures LogTape's sinks for the server and opens the JSON Lines file.
 * Call {@linkcode closeLogging} before exit to flush the file.
 *
 * @param options Level, file and colour.
 * @returns Where the server writes its per-datagram records.
 */
export async function setupLogging(
  options: LoggingOptions,
): Promise<DatagramLog> {
  const { level, file, colour } = options;
  // The console level filters the console only: the file always gets the
  // info records (start, stop, figures), whatever --log-level says.
  const sinks: Record<string, Sink> = {
    console: withFilter(
      getConsoleSink({ formatter: (r) => formatConsoleLine(r, { colour }) }),
      level,
    ),
  };
  await closeFile();
  if (file) {
    const lines = await JsonLinesFile.open(file, {
      // The console only: the file is what fails.
      onError: (error, dropped) =>
        getLogger(["logtape", "meta"]).warn(
          "Cannot write the log file {file}: {error}; its records are dropped ({dropped} so far) until writes succeed again",
          { file, error: String(error), dropped },
        ),
    });
    openFile = lines;
    sinks.file = withFilter((r) => lines.append(formatJsonLine(r)), "info");
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
        // The file gets these from the DatagramLog directly.
        category: [...DATAGRAM_CATEGORY],
        sinks: level === "debug" ? ["console"] : [],
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
  return new FileDatagramLog(
    openFile,
    level === "debug" ? getLogger([...DATAGRAM_CATEGORY]) : undefined,
  );
}

async function closeFile(): Promise<void> {
  const f = openFile;
  openFile = undefined;
  await f?.close();
}

/** Flushes and closes the log sinks and the file. */
export async function closeLogging(): Promise<void> {
  await dispose();
  await closeFile();
}
