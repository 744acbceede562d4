/**
 * The garbage flood of `bench/load.ts --mode flood`, run in a worker so the
 * legitimate walker's timing on the main thread is not disturbed by the
 * flood's send loop. It sends the given payloads round robin at a fixed
 * rate from its own socket and counts the answers it gets back.
 *
 * Messages: `start` (in) → `ready` (out) → `go` (in) → `done` (out); `stop`
 * (in) ends the flood early.
 *
 * @module
 */

/// <reference lib="deno.worker" />

/** The worker's instructions. */
export interface FloodStart {
  /** Message type. */
  type: "start";
  /** Target address. */
  hostname: string;
  /** Target port. */
  port: number;
  /** Address to bind (its own source address, hence its own error budget). */
  bind: string;
  /** Datagrams per second. */
  rate: number;
  /** How long to flood, in seconds. */
  seconds: number;
  /** The datagrams to send, round robin. */
  payloads: Uint8Array[];
}

/** What the worker reports at the end. */
export interface FloodDone {
  /** Message type. */
  type: "done";
  /** Datagrams handed to the socket. */
  sent: number;
  /** Sends that failed. */
  sendErrors: number;
  /** Answers the server sent back to the flood's socket. */
  answers: number;
  /** Seconds from the first send to the last. */
  elapsedSec: number;
}

/** The largest number of sends issued in one tick (caps catch-up bursts). */
const MAX_BATCH = 2000;

let stopped = false;
let config: FloodStart | undefined;
let conn: Deno.DatagramConn | undefined;

async function receiveLoop(c: Deno.DatagramConn, counter: { n: number }) {
  const buffer = new Uint8Array(2048);
  while (true) {
    try {
      await c.receive(buffer);
      counter.n++;
    } catch {
      return; // closed
    }
  }
}

async function flood(cfg: FloodStart, c: Deno.DatagramConn): Promise<void> {
  const addr: Deno.NetAddr = {
    transport: "udp",
    hostname: cfg.hostname,
    port: cfg.port,
  };
  const answers = { n: 0 };
  const receiving = receiveLoop(c, answers);
  let sent = 0;
  let sendErrors = 0;
  const start = performance.now();
  const count = cfg.payloads.length;
  while (!stopped) {
    const elapsed = (performance.now() - start) / 1000;
    if (elapsed >= cfg.seconds) break;
    const due = Math.min(Math.floor(cfg.rate * elapsed) - sent, MAX_BATCH);
    if (due <= 0) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < due; i++) {
      const p = cfg.payloads[(sent + i) % count]!;
      sends.push(c.send(p, addr).catch(() => sendErrors++));
    }
    sent += due;
    await Promise.all(sends);
  }
  const elapsedSec = (performance.now() - start) / 1000;
  // Let the last answers arrive before counting them.
  await new Promise((r) => setTimeout(r, 200));
  c.close();
  await receiving;
  const done: FloodDone = {
    type: "done",
    sent,
    sendErrors,
    answers: answers.n,
    elapsedSec,
  };
  self.postMessage(done);
}

self.onmessage = (e: MessageEvent) => {
  const msg = e.data as { type: string };
  if (msg.type === "start") {
    config = e.data as FloodStart;
    conn = Deno.listenDatagram({
      hostname: config.bind,
      port: 0,
      transport: "udp",
    });
    self.postMessage({ type: "ready" });
  } else if (msg.type === "go" && config && conn) {
    flood(config, conn).catch((err) => {
      self.postMessage({ type: "error", message: String(err) });
    });
  } else if (msg.type === "stop") {
    stopped = true;
  }
};
