/**
 * One verified request of profile v1 (docs/protocol.md, "Profile v1"): its
 * claims checked, its group's machine of states `0 … M` run, the answer made
 * and released once the transition is durable, as protocol 2's step does in
 * handler.ts. What differs: M comes from the roster or the request's
 * `seq_max` and is recorded with the state; an out-of-order event gets no
 * answer (NO ACTION); answers carry v1's four claims; and only tokens with an
 * `exp` are cached, because a token without one has no end to its cache
 * entry and 2023 clients send byte-identical tokens on each walk, which
 * must run the machine again.
 *
 * @module
 */

import { ProtocolError, protocolError } from "./errors.ts";
import { signAnswer } from "./answer_signer.ts";
import {
  type HandlerContext,
  type LaneOutcome,
  type PacketResult,
  recordStep,
} from "./handler.ts";
import {
  advanceV1,
  answerClaimsV1,
  asRequestClaims,
  checkClaimsV1,
  type V1Claims,
} from "./profile_v1.ts";
import { type ParsedToken, sha256Hex } from "./token.ts";
import type { ReplayEntry } from "../state/replay.ts";

/**
 * Checks a v1 request whose signature verified and runs its group's machine.
 * Synchronous up to the store's promise, so no other event of the group
 * interleaves.
 *
 * @param ctx The handler context (`profile` "v1").
 * @param parsed The verified token.
 * @param group The upper-case group.
 * @returns What the handler answers (an error, no answer, or an answer
 * released once durable).
 */
export function stepV1(
  ctx: HandlerContext,
  parsed: ParsedToken,
  group: string,
): LaneOutcome {
  const now = ctx.now();
  const nowSec = now.getTime() / 1000;
  const verified = { sub: String(parsed.payload.group), group };
  const members = ctx.roster?.get(group);
  let claims: V1Claims;
  try {
    claims = checkClaimsV1(parsed.payload, {
      now,
      leewaySec: ctx.leewaySec,
      ...(members ? { members: members.size } : {}),
    });
    // jtis are remembered with the cached answers, so only while an exp runs.
    if (
      claims.jti !== undefined && claims.exp !== undefined &&
      ctx.replay.hasJti(group, claims.jti, nowSec)
    ) {
      throw protocolError(
        "JTI_REUSED",
        `jti "${claims.jti}" was already used by group ${group}: use a fresh jti for each new request`,
      );
    }
  } catch (e) {
    if (e instanceof ProtocolError) return { error: e, verified };
    throw e;
  }
  const entry: ReplayEntry | undefined = claims.exp === undefined
    ? undefined
    : {
      token: parsed.text,
      group,
      jti: claims.jti ?? "",
      reply: null,
      expiresAt: claims.exp + ctx.leewaySec,
    };
  const max = members ? members.size : claims.seqMax;
  const previousState = ctx.store.state(group);
  const sn = claims.seqNumber;
  const t = advanceV1(previousState, sn, { max });
  const base = { group, claims: asRequestClaims(claims), previousState };
  if (!t) {
    if (entry) ctx.replay.add(entry, nowSec);
    const detail = sn < 0 || sn > max
      ? `seq_number ${sn} is outside 0..${max}`
      : `seq_number ${sn} is out of order in state ${previousState} of 0..${max}`;
    return { result: { ...base, reply: null, outcome: "no_action", detail } };
  }
  const answer = answerClaimsV1({
    idRequest: sha256Hex(parsed.payloadBytes),
    nextNumber: t.nextNumber,
    now,
    randomHex: ctx.randomId(),
  });
  const reply = signAnswer(ctx, answer);
  if (entry) entry.reply = reply;
  const completedWalk = sn === max && previousState === max - 1;
  const m = claims.matricula;
  const unlisted = members ? typeof m !== "number" || !members.has(m) : false;
  const ready = recordStep(
    ctx,
    group,
    {
      state: t.state,
      registration: m,
      completedWalk,
      at: now,
      seqMax: max,
      ...(unlisted ? { unlisted } : {}),
      ...(entry ? { replay: entry } : {}),
    },
    entry,
    nowSec,
  );
  const result: PacketResult = {
    ...base,
    reply,
    outcome: "ok",
    state: t.state,
    nextNumber: t.nextNumber,
    completedWalk,
    unlisted,
  };
  return { result, ready };
}
