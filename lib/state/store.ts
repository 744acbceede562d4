/**
 * Per-group state behind a small interface: the FSM state, the registration
 * numbers received, completed walks and the last activity. The caller applies
 * an event at once (so the next datagram sees the new state) and answers only
 * when the returned promise says the event is durable.
 *
 * @module
 */

import type { ReplayEntry } from "./replay.ts";

/** What the server knows of one group. */
export interface GroupRecord {
  /** The FSM state. */
  state: number;
  /**
   * Registration numbers received, with first and last time seen (ISO);
   * `unlisted` marks numbers missing from the group's roster.
   */
  registrations: Record<
    string,
    { first: string; last: string; unlisted?: boolean }
  >;
  /** Times (ISO) of the latest walks to the final state (at most 100). */
  walks: string[];
  /** Walks completed in all (absent in records older than the count). */
  walkCount?: number;
  /**
   * Profile v1 only: M, the final state of the group's machine at its last
   * accepted event (absent for protocol 2 groups).
   */
  seqMax?: number;
  /** The time (ISO) of the last accepted request, or null. */
  lastActivity: string | null;
}

/** One accepted request's effect on its group. */
export interface GroupEvent {
  /** The state after the event. */
  state: number;
  /**
   * The request's registration number (a string only for a profile v1
   * `matricula` that cannot be a safe integer, such as `"007"`).
   */
  registration: number | string;
  /** Whether this event completed a walk. */
  completedWalk: boolean;
  /** When it happened. */
  at: Date;
  /** True when a roster exists and does not list the registration. */
  unlisted?: boolean;
  /** Profile v1 only: M, the final state of the machine for this event. */
  seqMax?: number;
  /** The answer, kept so a retransmission after a restart gets it again. */
  replay?: ReplayEntry;
}

/** Whether new steps can be made durable now, for the operator. */
export interface StoreHealth {
  /** False while writes fail (a full disk). */
  writable: boolean;
  /** The last write error, while not writable. */
  error?: string;
  /** When writes started failing (wall clock), while not writable. */
  since?: Date;
  /** Steps refused because they could not be made durable, in all. */
  refused: number;
}

/** Where group state lives. */
export interface StateStore {
  /**
   * The current state of a group (0 when never seen).
   * @param group The upper-case group name.
   */
  state(group: string): number;
  /**
   * The state of a group as it is on disk: without the steps still being
   * written (the same as {@linkcode StateStore.state} for a memory store).
   * @param group The upper-case group name.
   */
  durableState(group: string): number;
  /**
   * Applies an event now and resolves once it is durable.
   * @param group The upper-case group name.
   * @param event The event.
   */
  record(group: string, event: GroupEvent): Promise<void>;
  /** A snapshot of every group's record. */
  snapshot(): Record<string, GroupRecord>;
  /** Every group's durable record, live and read-only (no copy). */
  records(): ReadonlyMap<string, Readonly<GroupRecord>>;
  /** Whether new steps can be made durable now. */
  readonly health: StoreHealth;
  /** Writes what is pending and releases files. */
  close(): Promise<void>;
}

/**
 * Applies an event to a record, in place.
 *
 * @param rec The group's record.
 * @param event The event.
 */
export function applyEvent(rec: GroupRecord, event: GroupEvent): void {
  const at = event.at.toISOString();
  rec.state = event.state;
  const key = String(event.registration);
  const seen = rec.registrations[key];
  // A group's state must stay small whatever a (signed) client sends: past
  // MAX_REGISTRATIONS distinct numbers, new ones are no longer recorded.
  if (seen || Object.keys(rec.registrations).length < MAX_REGISTRATIONS) {
    rec.registrations[key] = {
      first: seen?.first ?? at,
      last: at,
      ...(event.unlisted ? { unlisted: true } : {}),
    };
  }
  if (event.completedWalk) {
    rec.walkCount = (rec.walkCount ?? rec.walks.length) + 1;
    rec.walks.push(at);
    if (rec.walks.length > MAX_WALK_TIMES) rec.walks.shift();
  }
  rec.lastActivity = at;
  if (event.seqMax !== undefined) rec.seqMax = event.seqMax;
}

/** Distinct registration numbers recorded per group. */
export const MAX_REGISTRATIONS = 1000;

/** Times of completed walks kept per group (the count is kept in full). */
export const MAX_WALK_TIMES = 100;

/** A new group's record. */
export function emptyRecord(): GroupRecord {
  return {
    state: 0,
    registrations: {},
    walks: [],
    walkCount: 0,
    lastActivity: null,
  };
}

/** A store that keeps everything in memory: lost on restart. */
export class MemoryStore implements StateStore {
  #groups: Map<string, GroupRecord>;

  /** @param initial Records to start from (taken over, not copied). */
  constructor(initial?: Record<string, GroupRecord>) {
    this.#groups = new Map(Object.entries(initial ?? {}));
  }

  state(group: string): number {
    return this.#groups.get(group)?.state ?? 0;
  }

  durableState(group: string): number {
    return this.state(group);
  }

  /** Memory is always writable. */
  readonly health: StoreHealth = { writable: true, refused: 0 };

  record(group: string, event: GroupEvent): Promise<void> {
    let rec = this.#groups.get(group);
    if (!rec) this.#groups.set(group, rec = emptyRecord());
    applyEvent(rec, event);
    return Promise.resolve();
  }

  snapshot(): Record<string, GroupRecord> {
    return structuredClone(Object.fromEntries(this.#groups));
  }

  records(): ReadonlyMap<string, Readonly<GroupRecord>> {
    return this.#groups;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
