/**
 * Journals for the state tests: events, three groups' interleaved walks, and
 * the states they lead to.
 *
 * @module
 */

import {
  encodeJournalLine,
  type JournalEntry,
} from "../../lib/state/journal_format.ts";
import type { GroupEvent } from "../../lib/state/store.ts";

/** An event that leads to `state`, at a second of its own. */
export function event(state: number, second = 0): GroupEvent {
  return {
    state,
    registration: 20230000 + state,
    completedWalk: state === 6,
    at: new Date(Date.UTC(2026, 11, 1, 12, 0, second)),
  };
}

/** A journal entry of group ALPHA. */
export function entry(
  seq: number,
  state: number,
  extra?: object,
): JournalEntry {
  return {
    seq,
    group: "ALPHA",
    event: {
      state,
      registration: 20230000 + state,
      completedWalk: state === 6,
      at: new Date(Date.UTC(2026, 10, 23, 12, 0, seq)),
      ...extra,
    },
  };
}

/** The bytes of a journal holding `entries`. */
export function journalBytes(entries: JournalEntry[]): Uint8Array {
  return new TextEncoder().encode(entries.map(encodeJournalLine).join(""));
}

/** Three groups' walks, interleaved, as the journal holds them. */
export function walks(): JournalEntry[] {
  const entries: JournalEntry[] = [];
  let seq = 0;
  for (let s = 1; s <= 6; s++) {
    for (const group of ["ALPHA", "BRAVO", "CHARLIE"]) {
      if (group === "CHARLIE" && s > 4) continue;
      seq++;
      entries.push({ seq, group, event: event(s, seq) });
    }
  }
  return entries;
}

/** Each group's state after the given entries. */
export function statesAfter(entries: JournalEntry[]): Record<string, number> {
  const states: Record<string, number> = {};
  for (const e of entries) states[e.group] = e.event.state;
  return states;
}
