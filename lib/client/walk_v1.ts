/**
 * The reference client's walk for profile v1 (docs/protocol.md, "Profile
 * v1"): events `from … to` of a machine with states `0 … M`, one signed
 * request per event with the claims `group`, `seq_number`, `seq_max` and
 * `matricula`, each answer matched by `id_request` and checked with the lab's
 * HMAC secret. Loss is handled by the loop walk.ts uses too
 * (lib/client/_walk_loop.ts): the identical datagram is resent after a
 * timeout that doubles with jitter.
 *
 * By default the requests also carry `aud`, `iat`, `exp` and `jti`, so the
 * server caches each answer and a resent datagram gets the same bytes back.
 * With `bare`, they carry only the four v1 claims, as the 2023 clients did:
 * RS256 signatures are deterministic, so the same event always makes the
 * same token, and the server runs its machine for every copy (a repeat
 * answers the same `next_number`, so resending is still safe).
 *
 * @module
 */

import type { Signer } from "./walk.ts";
import type { ClientSocket } from "./socket.ts";
import {
  judgeAnswer,
  type StepReportBase,
  verifiesHs256,
  walkEvents,
  type WalkLoopOptions,
  type WalkOutcome,
} from "./_walk_loop.ts";
import { randomHex32 } from "../protocol/handler.ts";
import { expectedV1 } from "../protocol/profile_v1.ts";
import { AUDIENCE } from "../protocol/token.ts";

/** What happened to one event of a v1 walk. */
export interface StepReportV1 extends StepReportBase {
  /** The event sent: `seq_number`. */
  sn: number;
  /** The `matricula` sent. */
  matricula: number | string;
  /** The answer's `otp_number`, when it had one. */
  otpNumber?: string;
}

/** The outcome of a v1 walk. */
export type WalkV1Result = WalkOutcome<StepReportV1>;

/** Options of {@linkcode walkV1}. */
export interface WalkV1Options extends WalkLoopOptions<StepReportV1> {
  /** The group name, sent as `group` (any case). */
  group: string;
  /** M, sent as `seq_max`: the group's member count and final state. */
  seqMax: number;
  /**
   * The members' matriculas: one for every event, or M of them, the k-th
   * sent with event k (event 0 sends the first).
   * @default {[0]}
   */
  matriculas?: readonly (number | string)[];
  /**
   * The first event sent.
   * @default {0}
   */
  from?: number;
  /**
   * The last event sent.
   * @default {seqMax}
   */
  to?: number;
  /**
   * Send only the four v1 claims (no `aud`, `iat`, `exp`, `jti`), as the
   * 2023 clients did.
   * @default {false}
   */
  bare?: boolean;
  /**
   * `exp - iat` of each request, in seconds (not with `bare`).
   * @default {60}
   */
  lifetimeSec?: number;
  /** The HMAC secret to verify answers with; unverified when absent. */
  secret?: Uint8Array;
  /**
   * Fresh `jti`s.
   * @default {32 random hex digits}
   */
  randomId?: () => string;
}

/**
 * The matricula a member sends with event `sn`: the k-th of the list for
 * event k, the first for event 0, or the only one.
 *
 * @param matriculas The list, 1 or M long.
 * @param sn The event.
 * @returns The matricula.
 */
export function matriculaFor(
  matriculas: readonly (number | string)[],
  sn: number,
): number | string {
  if (matriculas.length <= 1) return matriculas[0] ?? 0;
  return matriculas[Math.max(sn, 1) - 1] ?? matriculas[0]!;
}

/**
 * Walks a v1 group through events `from` … `to`: for each, signs a request,
 * sends it, and waits for the answer carrying its `id_request`, resending the
 * identical datagram after each timeout. Stops at the first event that
 * fails: a server error, no answer within the retry cap (the server sends
 * nothing for an out-of-order event), an answer that does not verify, or an
 * unexpected `next_number`.
 *
 * @param socket The socket to the server.
 * @param signer Signs the requests with the group's key.
 * @param options The group, M, matriculas, events, secret, retries, clock.
 * @returns A report per event and whether the walk completed.
 */
export async function walkV1(
  socket: ClientSocket,
  signer: Signer,
  options: WalkV1Options,
): Promise<WalkV1Result> {
  const {
    group,
    seqMax,
    matriculas = [0],
    from = 0,
    to = seqMax,
    bare = false,
    lifetimeSec = 60,
    secret,
    now = Date.now,
    randomId = randomHex32,
  } = options;
  return await walkEvents(socket, {
    from,
    to,
    begin: (sn) => ({
      sn,
      matricula: matriculaFor(matriculas, sn),
      expected: expectedV1(sn, { max: seqMax }),
    }),
    claims: ({ sn, matricula }) => {
      const iat = Math.floor(now() / 1000);
      const times = bare
        ? {}
        : { aud: AUDIENCE, iat, exp: iat + lifetimeSec, jti: randomId() };
      return {
        group,
        "seq_number": sn,
        "seq_max": seqMax,
        matricula,
        ...times,
      };
    },
    sign: (payload) => signer.sign(payload),
    check: async (text, header) => {
      if (header.alg !== "HS256") {
        return `the answer is signed with ${
          JSON.stringify(header.alg)
        }, not HS256`;
      }
      if (secret && !(await verifiesHs256(text, secret))) {
        return "the answer's HS256 signature does not verify with the --secret file: is it the lab's secret byte for byte (a v1 lab's file has no trailing newline)?";
      }
    },
    verified: secret !== undefined,
    judge: (payload, want) => {
      const judgement = judgeAnswer(payload, want, "");
      return judgement.nextNumber !== undefined &&
          typeof payload.otp_number === "string"
        ? { ...judgement, otpNumber: payload.otp_number }
        : judgement;
    },
    noAnswer:
      "is a --profile v1 server running at that address and port? It sends nothing for an event out of order (rerun from event 0) or past seq_max",
  }, options);
}
