/**
 * Flood mode: garbage at a fixed rate from a worker thread
 * (`_flood_worker.ts`) and its own socket, by default from 127.0.0.2 so it
 * has its own error budget, while one legitimate client walks its group at
 * `--walker-rate` with one request outstanding on the main thread; the
 * walker's figures are the result.
 *
 * @module
 */

import { b64url } from "../_keys.ts";
import type { FloodDone, FloodStart } from "./_flood_worker.ts";
import type { Lab } from "./lab.ts";
import type { Options } from "./options.ts";
import { type GroupPlan, requestClaims, signToken } from "./tokens.ts";
import { bindAddress, runWindow, type WindowResult } from "./window.ts";

const encoder = new TextEncoder();

/**
 * Garbage for the flood: random bytes, or tampered tokens of a group.
 *
 * @param walker The walker's group (its name and algorithm).
 * @param lab The lab holding the private keys.
 * @param options `--flood-kind`, `--flood-size` and `--exp`.
 * @returns 256 datagrams to send round robin.
 */
export async function floodPayloads(
  walker: GroupPlan,
  lab: Lab,
  options: Pick<Options, "floodKind" | "floodSize" | "expSec">,
): Promise<Uint8Array[]> {
  const { floodKind: kind, floodSize: size, expSec } = options;
  if (kind === "random") {
    return Array.from(
      { length: 256 },
      () => crypto.getRandomValues(new Uint8Array(size)),
    );
  }
  // A real signature over other claims: the server must do the whole
  // verification to find out it does not match.
  const nowSec = Math.floor(Date.now() / 1000);
  const donor = await signToken(
    requestClaims(walker.name, { index: 0, sn: 1, nowSec, expSec }),
    walker.alg,
    lab.privateKeys.get(walker.alg)!,
  );
  const [header, , signature] = new TextDecoder().decode(donor.bytes).split(
    ".",
  );
  return Array.from({ length: 256 }, (_, i) => {
    const claims = requestClaims(walker.name, {
      index: 0,
      sn: i % 7,
      nowSec,
      expSec,
    });
    const payload = b64url(encoder.encode(JSON.stringify(claims)));
    return encoder.encode(`${header}.${payload}.${signature}`);
  });
}

/**
 * The flood's source address.
 *
 * @param options `--flood-from` and the target address.
 * @returns `--flood-from`, else 127.0.0.2 for a 127.x target, else the
 * walker's bind address.
 */
export function floodSource(
  options: Pick<Options, "floodFrom" | "hostname">,
): string {
  if (options.floodFrom) return options.floodFrom;
  return options.hostname.startsWith("127.")
    ? "127.0.0.2"
    : bindAddress(options.hostname);
}

/** What {@linkcode runFlood} needs besides the payloads and the walker. */
export interface FloodOptions extends
  Pick<
    Options,
    | "floodFrom"
    | "hostname"
    | "floodRate"
    | "seconds"
    | "timeoutMs"
    | "cycle"
    | "walkerRate"
    | "retransmitMs"
  > {
  /** The server's address and port. */
  target: { hostname: string; port: number };
}

/**
 * Floods the server from a worker while the walker walks its group.
 *
 * @param payloads The garbage, sent round robin.
 * @param walker The walker's group with its tokens.
 * @param options Target, rates, timing and the flood's source.
 * @returns The flood's counters and the walker's raw outcome.
 * @throws {Error} When the worker fails.
 */
export async function runFlood(
  payloads: Uint8Array[],
  walker: GroupPlan,
  options: FloodOptions,
): Promise<{ flood: FloodDone; walker: WindowResult }> {
  const { target } = options;
  const worker = new Worker(
    new URL("./_flood_worker.ts", import.meta.url),
    { type: "module" },
  );
  try {
    const messages: { type: string }[] = [];
    let wake: (() => void) | undefined;
    worker.onmessage = (e: MessageEvent) => {
      messages.push(e.data);
      wake?.();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      messages.push({ type: "error", message: e.message } as {
        type: string;
      });
      wake?.();
    };
    const waitFor = async (type: string) => {
      while (true) {
        const m = messages.shift();
        if (m?.type === type) return m;
        if (m?.type === "error") {
          throw new Error(
            `The flood worker failed: ${(m as { message?: string }).message}`,
          );
        }
        if (!m) await new Promise<void>((r) => wake = r);
      }
    };
    const start: FloodStart = {
      type: "start",
      hostname: target.hostname,
      port: target.port,
      bind: floodSource(options),
      rate: options.floodRate,
      seconds: options.seconds,
      payloads,
    };
    worker.postMessage(start);
    await waitFor("ready");
    worker.postMessage({ type: "go" });
    const walked = await runWindow([walker], {
      ...target,
      window: 1,
      seconds: options.seconds,
      timeoutMs: options.timeoutMs,
      cycle: options.cycle,
      pace: options.walkerRate,
      retransmitMs: options.retransmitMs ?? 250,
    });
    worker.postMessage({ type: "stop" });
    const flood = await waitFor("done") as FloodDone;
    return { flood, walker: walked };
  } finally {
    worker.terminate();
  }
}
