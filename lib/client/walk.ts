/**
 * The walk of the reference client: it takes a group through the states as
 * a student client does (one signed request per event, docs/protocol.md, "The request"), and
 * copes with loss the way UDP clients must, in the loop it shares with the
 * profile v1 walk (lib/client/_walk_loop.ts): each request waits for its
 * answer with a timeout that doubles (with jitter) on every retry up to a
 * cap, and a retry resends the identical datagram, so the server answers it
 * from its cache instead of running the state machine again (§6).
 *
 * {@linkcode walk} takes its socket, clock and randomness as arguments, so
 * the retry logic runs in tests against a fake network; `udpjwt send`
 * (lib/cli/send.ts) wires it to a real UDP socket and the console.
 *
 * @module
 */

import { CompactSign } from "jose";
import { COLOURS, expected } from "../protocol/fsm.ts";
import { randomHex32 } from "../protocol/handler.ts";
import { AUDIENCE } from "../protocol/token.ts";
import type { AnswerVerifier } from "./answer_jwks.ts";
import type { ClientSocket } from "./socket.ts";
import {
  judgeAnswer,
  type StepReportBase,
  verifiesHs256,
  walkEvents,
  type WalkLoopOptions,
  type WalkOutcome,
} from "./_walk_loop.ts";
import type { KeyAlgorithm } from "../keys/public_key.ts";

/** Signs request payloads with a group's private key. */
export interface Signer {
  /** The algorithm, from the key type. */
  alg: KeyAlgorithm;
  /**
   * Signs the payload bytes exactly as given.
   * @param payload The JSON payload bytes.
   * @returns The compact JWS.
   */
  sign(payload: Uint8Array): Promise<string>;
}

/**
 * A signer over a WebCrypto private key, header `{"alg":…,"typ":"JWT"}`,
 * with the key's `kid` when it has one. RS256 and ES256 are signed by
 * WebCrypto itself, so that RSA keys under 2048 bits work (the June 2023
 * groups' RSA-1024 keys; jose refuses them); the other algorithms go
 * through jose.
 *
 * @param key The private key, imported for `alg`.
 * @param alg Its algorithm.
 * @param kid The key id for the header, if any.
 * @returns The signer.
 */
export function keySigner(
  key: CryptoKey,
  alg: KeyAlgorithm,
  kid?: string,
): Signer {
  const header = kid === undefined
    ? { alg, typ: "JWT" }
    : { alg, typ: "JWT", kid };
  const params = alg === "RS256"
    ? { name: "RSASSA-PKCS1-v1_5" }
    : alg === "ES256"
    ? { name: "ECDSA", hash: "SHA-256" }
    : undefined;
  const encoded = base64url(encoder.encode(JSON.stringify(header)));
  return {
    alg,
    sign: async (payload) => {
      if (!params) {
        return await new CompactSign(payload).setProtectedHeader(header)
          .sign(key);
      }
      const input = `${encoded}.${base64url(payload)}`;
      const signature = await crypto.subtle.sign(
        params,
        key,
        encoder.encode(input),
      );
      return `${input}.${base64url(new Uint8Array(signature))}`;
    },
  };
}

function base64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

const encoder = new TextEncoder();

/** What happened to one event of the walk. */
export interface StepReport extends StepReportBase {
  /** The event sent: `seq_state_number`. */
  sn: number;
  /** The colour sent: `seq_state`. */
  colour: string;
  /** The registration number sent. */
  registration: number;
}

/** The outcome of a walk. */
export type WalkResult = WalkOutcome<StepReport>;

/** Options of {@linkcode walk}. */
export interface WalkOptions extends WalkLoopOptions<StepReport> {
  /** The group name, sent as `sub` (any case). */
  group: string;
  /**
   * Registration numbers, sent in turn, one per event.
   * @default {[0]}
   */
  registrations?: readonly number[];
  /**
   * `seq_max`: the group's member count.
   * @default {the number of distinct registrations}
   */
  seqMax?: number;
  /**
   * The first event sent.
   * @default {0}
   */
  from?: number;
  /**
   * The last event sent.
   * @default {states - 1}
   */
  to?: number;
  /**
   * The server's number of states.
   * @default {7}
   */
  states?: number;
  /**
   * `exp - iat` of each request, in seconds.
   * @default {60}
   */
  lifetimeSec?: number;
  /** The HMAC secret to verify answers with; unverified when absent. */
  secret?: Uint8Array;
  /**
   * Verifies answers signed by the server's own key (`--answer-jwks`)
   * instead of HS256 with `secret`.
   */
  verifyAnswer?: AnswerVerifier;
  /**
   * Fresh `jti`s.
   * @default {32 random hex digits}
   */
  randomId?: () => string;
}

/**
 * Walks a group through events `from` … `to`: for each, signs a request
 * (claims as docs/protocol.md, "The request"), sends it, and waits for the answer that carries
 * its `id_request`, resending the identical datagram after each timeout. Stops
 * at the first event that fails: a server error, no answer within the retry
 * cap, an answer that does not verify, or an unexpected `next_number`.
 *
 * @param socket The socket to the server.
 * @param signer Signs the requests with the group's key.
 * @param options The group, events, secret, retries, clock and randomness.
 * @returns A report per event and whether the walk completed.
 */
export async function walk(
  socket: ClientSocket,
  signer: Signer,
  options: WalkOptions,
): Promise<WalkResult> {
  const {
    group,
    registrations = [0],
    states = 7,
    from = 0,
    to = states - 1,
    lifetimeSec = 60,
    secret,
    verifyAnswer,
    now = Date.now,
    randomId = randomHex32,
  } = options;
  const seqMax = options.seqMax ?? Math.max(1, new Set(registrations).size);
  return await walkEvents(socket, {
    from,
    to,
    begin: (sn) => ({
      sn,
      colour: COLOURS[sn % COLOURS.length]!,
      registration: registrations[(sn - from) % registrations.length] ?? 0,
      expected: expected(sn, { states }),
    }),
    claims: ({ sn, registration }) => {
      const iat = Math.floor(now() / 1000);
      return {
        sub: group,
        aud: AUDIENCE,
        iat,
        exp: iat + lifetimeSec,
        jti: randomId(),
        // The claim names of docs/protocol.md, "The request", in its order.
        "seq_state_number": sn,
        "seq_state": COLOURS[sn % COLOURS.length]!,
        "seq_max": seqMax,
        registration,
      };
    },
    sign: (payload) => signer.sign(payload),
    check: async (text, header, payload) => {
      if (verifyAnswer) {
        const reason = await verifyAnswer(text);
        if (reason !== undefined) return reason;
      } else if (header.alg !== "HS256") {
        return `the answer is signed with ${
          JSON.stringify(header.alg)
        }, not HS256: the server signs answers with its own key; verify them with --answer-jwks (its JWK Set)`;
      } else if (secret && !(await verifiesHs256(text, secret))) {
        return "the answer's HS256 signature does not verify with the --secret file: is it the lab's secret byte for byte, trailing newline included?";
      }
      if (payload.iss !== AUDIENCE) {
        return `the answer's "iss" is ${
          JSON.stringify(payload.iss)
        }, not "${AUDIENCE}"`;
      }
    },
    verified: secret !== undefined || verifyAnswer !== undefined,
    judge: (payload, want) =>
      judgeAnswer(
        payload,
        want,
        " (another client of the group is walking, or --from skips states)",
      ),
    noAnswer:
      `is the server running at that address and port, and does it have --states ${states} or more?`,
  }, options);
}
