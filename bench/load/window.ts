/**
 * The windowed sender: keeps `window` datagrams outstanding, round robin
 * over the groups, and matches each answer to its datagram by `id_request`.
 * Sends go out one at a time: Deno does not keep the call order of
 * concurrent `send`s on one socket, and a group's events must reach the
 * server in walk order. No answer within the timeout counts as lost; with
 * `retransmitMs` the same datagram is resent meanwhile, as clients do.
 *
 * @module
 */

import type { GroupPlan, Signed } from "./tokens.ts";

/** One datagram sent. */
export interface SendRecord {
  /** The group's index in the run. */
  group: number;
  /** Its `id_request`. */
  id: string;
  /** Its `seq_state_number`. */
  sn: number;
  /** When it was first handed to the socket. */
  sentAt: number;
  /** When it was last (re)sent. */
  lastSentAt: number;
  /** Milliseconds from the first send to the answer. */
  latencyMs?: number;
  /** The answer's `next_number`. */
  next?: number;
  /** The answer's error code. */
  error?: string;
  /** Whether no answer came within the timeout. */
  lost: boolean;
}

/** The raw outcome of a windowed run. */
export interface WindowResult {
  /** Every datagram, in send order. */
  records: SendRecord[];
  /** Datagrams sent (retransmissions not counted). */
  sent: number;
  /** Answers matched in time. */
  received: number;
  /** Answers after the timeout. */
  late: number;
  /** Answers matching nothing sent. */
  unmatched: number;
  /** Sends the socket refused. */
  sendErrors: number;
  /** Datagrams sent again. */
  retransmissions: number;
  /** Whether the tokens ran out before the time did. */
  exhausted: boolean;
  /** Milliseconds from the first send to the last answer. */
  activeMs: number;
}

/** Options of {@linkcode runWindow}. */
export interface WindowOptions {
  /** The server's address. */
  hostname: string;
  /** The server's port. */
  port: number;
  /** Datagrams outstanding. */
  window: number;
  /** Sending time. */
  seconds: number;
  /** An answer later than this counts as lost. */
  timeoutMs: number;
  /** Send the tokens round and round instead of stopping at the end. */
  cycle: boolean;
  /** Most sends per second (the paced walker); unlimited when undefined. */
  pace?: number;
  /** Resend an unanswered datagram after this many ms, as clients do. */
  retransmitMs?: number;
}

/**
 * The local address to bind for sending to `hostname`.
 *
 * @param hostname The target address.
 * @returns A loopback address for a loopback target, else the wildcard.
 */
export function bindAddress(hostname: string): string {
  if (hostname.includes(":")) return hostname === "::1" ? "::1" : "::";
  return hostname.startsWith("127.") || hostname === "localhost"
    ? "127.0.0.1"
    : "0.0.0.0";
}

function decodeAnswer(
  data: Uint8Array,
): { id?: string; next?: number; error?: string } | undefined {
  const text = new TextDecoder().decode(data);
  const parts = text.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(
      new TextDecoder().decode(
        Uint8Array.fromBase64(parts[1]!, { alphabet: "base64url" }),
      ),
    );
    return {
      ...(typeof claims.id_request === "string"
        ? { id: claims.id_request }
        : {}),
      ...(typeof claims.next_number === "number"
        ? { next: claims.next_number }
        : {}),
      ...(typeof claims.error === "string" ? { error: claims.error } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Keeps `window` datagrams outstanding for `seconds`, round robin over the
 * groups, each group's tokens in walk order; then waits for the last answers
 * (at most the timeout).
 *
 * @param groups The groups with their tokens in walk order.
 * @param options Target, window, timing and retransmission.
 * @returns Every datagram's fate and the counters.
 */
export async function runWindow(
  groups: GroupPlan[],
  options: WindowOptions,
): Promise<WindowResult> {
  const { window, timeoutMs, cycle, pace, retransmitMs } = options;
  const conn = Deno.listenDatagram({
    hostname: bindAddress(options.hostname),
    port: 0,
    transport: "udp",
  });
  const addr: Deno.NetAddr = {
    transport: "udp",
    hostname: options.hostname,
    port: options.port,
  };
  const records: SendRecord[] = [];
  const pending = new Map<string, SendRecord>();
  const timedOut = new Set<string>();
  let head = 0;
  let outstanding = 0;
  let sendIndex = 0;
  let received = 0;
  let late = 0;
  let unmatched = 0;
  let sendErrors = 0;
  let retransmissions = 0;
  let exhausted = false;
  let stopSending = false;
  let paceTimer: ReturnType<typeof setTimeout> | undefined;
  const start = performance.now();
  const endAt = start + options.seconds * 1000;
  let lastAnswerAt = start;
  const finished = Promise.withResolvers<void>();
  const count = groups.length;

  const nextToken = (): [number, Signed] | undefined => {
    const g = sendIndex % count;
    const k = Math.floor(sendIndex / count);
    const tokens = groups[g]!.tokens;
    if (k >= tokens.length && !cycle) return undefined;
    sendIndex++;
    return [g, tokens[k % tokens.length]!];
  };

  // Deno does not keep the call order of concurrent sends on one socket
  // (a burst goes out roughly reversed), so sends are made one at a time: a
  // group's events must reach the server in walk order.
  const queue: [SendRecord, Uint8Array, boolean][] = [];
  const bytesOf = new Map<SendRecord, Uint8Array>();
  let pumping = false;
  const pump = async () => {
    pumping = true;
    for (let i = 0; i < queue.length; i++) {
      const [rec, bytes, again] = queue[i]!;
      if (again && (rec.latencyMs !== undefined || rec.lost)) continue;
      rec.lastSentAt = performance.now();
      if (!again) rec.sentAt = rec.lastSentAt;
      try {
        await conn.send(bytes, addr);
      } catch {
        sendErrors++;
      }
    }
    queue.length = 0;
    pumping = false;
  };

  const fill = () => {
    const now = performance.now();
    if (now >= endAt) stopSending = true;
    while (!stopSending && outstanding < window) {
      if (pace !== undefined && records.length > 0) {
        const last = records.at(-1)!.sentAt;
        const dueAt = Number.isFinite(last) ? last + 1000 / pace : now + 1;
        if (dueAt > now) {
          paceTimer ??= setTimeout(() => {
            paceTimer = undefined;
            fill();
          }, dueAt - now);
          break;
        }
      }
      const item = nextToken();
      if (!item) {
        exhausted = true;
        stopSending = true;
        break;
      }
      const [g, token] = item;
      const rec: SendRecord = {
        group: g,
        id: token.id,
        sn: token.sn,
        sentAt: Infinity,
        lastSentAt: Infinity,
        lost: false,
      };
      records.push(rec);
      pending.set(token.id, rec);
      outstanding++;
      queue.push([rec, token.bytes, false]);
      if (retransmitMs !== undefined) bytesOf.set(rec, token.bytes);
    }
    if (!pumping && queue.length > 0) pump();
    if (stopSending && outstanding === 0) finished.resolve();
  };

  const receiving = (async () => {
    const buffer = new Uint8Array(4096);
    while (true) {
      let data: Uint8Array;
      try {
        [data] = await conn.receive(buffer);
      } catch {
        return; // closed
      }
      const now = performance.now();
      const answer = decodeAnswer(data);
      const rec = answer?.id === undefined ? undefined : pending.get(answer.id);
      if (!answer || !rec) {
        if (answer?.id !== undefined && timedOut.has(answer.id)) late++;
        else unmatched++;
        continue;
      }
      pending.delete(rec.id);
      bytesOf.delete(rec);
      rec.latencyMs = now - rec.sentAt;
      if (answer.next !== undefined) rec.next = answer.next;
      if (answer.error !== undefined) rec.error = answer.error;
      outstanding--;
      received++;
      lastAnswerAt = now;
      fill();
    }
  })();

  const sweeper = setInterval(() => {
    const now = performance.now();
    while (head < records.length) {
      const r = records[head]!;
      if (r.latencyMs !== undefined || r.lost) {
        head++;
        continue;
      }
      if (now - r.sentAt < timeoutMs) break;
      r.lost = true;
      bytesOf.delete(r);
      if (pending.get(r.id) === r) pending.delete(r.id);
      timedOut.add(r.id);
      outstanding--;
      head++;
    }
    if (retransmitMs !== undefined) {
      for (const [r, bytes] of bytesOf) {
        if (now - r.lastSentAt < retransmitMs) continue;
        r.lastSentAt = now;
        retransmissions++;
        queue.push([r, bytes, true]);
      }
    }
    fill();
  }, 20);

  fill();
  await finished.promise;
  clearInterval(sweeper);
  clearTimeout(paceTimer);
  conn.close();
  await receiving;
  return {
    records,
    sent: records.length,
    received,
    late,
    unmatched,
    sendErrors,
    retransmissions,
    exhausted,
    activeMs: lastAnswerAt - start,
  };
}
