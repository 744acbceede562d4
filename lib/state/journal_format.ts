/**
 * The journal's line format, pure: each line is `<crc32> <json>\n` holding
 * one accepted event and its sequence number. {@linkcode parseJournal} keeps
 * every whole, valid line and reports the damaged byte ranges.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import type { GroupEvent } from "./store.ts";

const encoder = new TextEncoder();

/** One journal line, decoded. */
export interface JournalEntry {
  /** Sequence number, increasing by one per line. */
  seq: number;
  /** The upper-case group. */
  group: string;
  /** The event. */
  event: GroupEvent;
}

/** The result of {@linkcode parseJournal}. */
export interface ParsedJournal {
  /** Valid entries, in order. */
  entries: JournalEntry[];
  /** Length in bytes of the clean prefix, before the first damaged byte. */
  validLength: number;
  /** The first problem found, when there is one (e.g. `line 3 is torn`). */
  damage?: string;
  /** The byte ranges set aside (`[start, end)`), in order. */
  damaged: [number, number][];
}

/** CRC-32 (IEEE, as zlib) of a line's UTF-8 bytes, as 8 hex digits. */
function crc32Hex(text: string): string {
  return crc32(text).toString(16).padStart(8, "0");
}
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes one journal line.
 *
 * @param entry The sequence number, group and event.
 * @returns The line, newline included.
 */
export function encodeJournalLine(entry: JournalEntry): string {
  const { seq, group, event: e } = entry;
  const json = JSON.stringify({
    seq,
    g: group,
    s: e.state,
    r: e.registration,
    w: e.completedWalk,
    t: e.at.toISOString(),
    ...(e.unlisted ? { u: true } : {}),
    // Profile v1's M; lines without it (protocol 2, older journals) load too.
    ...(e.seqMax !== undefined ? { m: e.seqMax } : {}),
    ...(e.replay
      ? {
        tok: e.replay.token,
        jti: e.replay.jti,
        rep: e.replay.reply ? decoder.decode(e.replay.reply) : null,
        exp: e.replay.expiresAt,
      }
      : {}),
  });
  return `${crc32Hex(json)} ${json}\n`;
}

function decodeLine(line: Uint8Array): JournalEntry {
  const text = decoder.decode(line);
  const crc = text.slice(0, 8);
  const json = text.slice(9);
  if (text[8] !== " " || crc32Hex(json) !== crc) {
    throw new SyntaxError("checksum mismatch");
  }
  const o = JSON.parse(json);
  const ok = Number.isSafeInteger(o.seq) && typeof o.g === "string" &&
    Number.isInteger(o.s) &&
    (typeof o.r === "number" || typeof o.r === "string") &&
    (o.m === undefined || Number.isSafeInteger(o.m)) &&
    typeof o.w === "boolean" && typeof o.t === "string";
  if (!ok) throw new SyntaxError("unexpected fields");
  const event: GroupEvent = {
    state: o.s,
    registration: o.r,
    completedWalk: o.w,
    at: new Date(o.t),
    ...(o.u ? { unlisted: true } : {}),
    ...(o.m !== undefined ? { seqMax: o.m } : {}),
    ...(typeof o.tok === "string"
      ? {
        replay: {
          token: o.tok,
          group: o.g,
          jti: String(o.jti),
          reply: typeof o.rep === "string" ? encoder.encode(o.rep) : null,
          expiresAt: Number(o.exp),
        },
      }
      : {}),
  };
  return { seq: o.seq, group: o.g, event };
}

/**
 * Decodes a journal. A line that is torn (no final newline), fails its
 * checksum, or does not advance the sequence is set aside, and decoding goes
 * on with the next line: a damaged line never hides whole lines written after
 * it. (A gap in the sequence is not damage: a writer may have given up on
 * lines it could not write.)
 *
 * @param bytes The journal file's contents.
 * @returns The valid entries, the clean prefix, and the damaged ranges.
 */
export function parseJournal(bytes: Uint8Array): ParsedJournal {
  const entries: JournalEntry[] = [];
  const damaged: [number, number][] = [];
  let damage: string | undefined;
  const setAside = (start: number, end: number, why: string) => {
    damage ??= why;
    const last = damaged.at(-1);
    if (last && last[1] === start) last[1] = end;
    else damaged.push([start, end]);
  };
  let pos = 0;
  let line = 1;
  while (pos < bytes.length) {
    const newline = bytes.indexOf(0x0a, pos);
    if (newline < 0) {
      setAside(pos, bytes.length, `line ${line} is torn (no newline)`);
      break;
    }
    try {
      const entry = decodeLine(bytes.subarray(pos, newline));
      const previous = entries.at(-1);
      if (previous && entry.seq <= previous.seq) {
        throw new SyntaxError(`sequence ${entry.seq} after ${previous.seq}`);
      }
      entries.push(entry);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      setAside(pos, newline + 1, `line ${line}: ${why}`);
    }
    pos = newline + 1;
    line++;
  }
  const validLength = damaged[0]?.[0] ?? bytes.length;
  return { entries, validLength, damaged, ...(damage ? { damage } : {}) };
}
