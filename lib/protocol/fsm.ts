/**
 * The per-group state machine of docs/protocol.md, "The state machine", as pure functions.
 *
 * @example
 * ```ts
 * import { advance } from "./fsm.ts";
 * advance(2, 3, { states: 7 }); // { state: 3, nextNumber: 4 }
 * ```
 *
 * @module
 */

/** The colours of the seven default states, indexed by state number. */
export const COLOURS: readonly string[] = [
  "RED",
  "ORANGE",
  "YELLOW",
  "GREEN",
  "BLUE",
  "INDIGO",
  "VIOLET",
];

/** The outcome of one event: the new state and the number to acknowledge. */
export interface Transition {
  /** The state after the event. */
  state: number;
  /** The `next_number` of the answer: the event the server now waits for. */
  nextNumber: number;
}

/** Options of {@linkcode advance}. */
export interface FsmOptions {
  /**
   * The number of states N; the final state is N-1.
   * @default {7}
   */
  states?: number;
}

/**
 * The event the machine waits for in `state`: 0 after the final state, else
 * the next one.
 *
 * @param state The current state.
 * @param options The number of states.
 * @returns The expected event number.
 */
export function expected(state: number, options?: FsmOptions): number {
  const { states = 7 } = options ?? {};
  return state >= states - 1 ? 0 : state + 1;
}

/**
 * Applies the event `sn` to a machine in `state`.
 *
 * @param state The current state, 0 … N-1.
 * @param sn The event: the request's `seq_state_number`.
 * @param options The number of states.
 * @returns The transition, or `null` when the event is out of range (no
 * answer at all).
 */
export function advance(
  state: number,
  sn: number,
  options?: FsmOptions,
): Transition | null {
  const { states = 7 } = options ?? {};
  if (!Number.isInteger(sn) || sn < 0 || sn >= states) return null;
  if (sn === 0) return { state: 0, nextNumber: 1 };
  if (sn === state + 1) {
    return { state: sn, nextNumber: expected(sn, { states }) };
  }
  // A repeat or an out-of-order event leaves the state as it is and answers
  // the number the machine waits for, so a client can resume.
  return { state, nextNumber: expected(state, { states }) };
}

/**
 * The colour name of a state number, or `STATE-<n>` past the seventh.
 *
 * @param state A state number.
 * @returns Its colour name.
 */
export function colourOf(state: number): string {
  return COLOURS[state] ?? `STATE-${state}`;
}
