/**
 * A UDP client on loopback for the end-to-end tests: one background loop
 * receives into a queue, so a receive that times out never swallows a later
 * datagram.
 *
 * @module
 */

import assert from "node:assert/strict";

/** The default receive timeout of {@linkcode UdpClient.receive}. */
export const RECEIVE_TIMEOUT_MS = 3_000;

/**
 * A UDP client on loopback. One background loop receives into a queue, so a
 * receive that times out never swallows a later datagram.
 */
export class UdpClient {
  readonly conn: Deno.DatagramConn;
  #queue: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #loop: Promise<void>;

  /** @param hostname The loopback address to bind (port 0). */
  constructor(hostname = "127.0.0.1") {
    const conn = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
    this.conn = conn;
    this.#loop = (async () => {
      while (true) {
        try {
          const [data] = await conn.receive(new Uint8Array(65536));
          this.#queue.push(data.slice());
        } catch {
          break; // closed
        }
        this.#wake?.();
      }
      this.#wake?.();
    })();
  }

  /** The client's own address. */
  get addr(): Deno.NetAddr {
    return this.conn.addr as Deno.NetAddr;
  }

  /** Sends a datagram (a string is sent as UTF-8). */
  async send(to: Deno.NetAddr, data: string | Uint8Array): Promise<number> {
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data;
    return await this.conn.send(bytes, to);
  }

  /**
   * The next datagram received, or undefined after `timeoutMs`.
   *
   * @param timeoutMs How long to wait.
   */
  async next(timeoutMs = RECEIVE_TIMEOUT_MS): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.#queue.shift();
  }

  /**
   * The next datagram; fails the test after `timeoutMs`.
   *
   * @param timeoutMs How long to wait.
   */
  async receive(timeoutMs = RECEIVE_TIMEOUT_MS): Promise<Uint8Array> {
    const data = await this.next(timeoutMs);
    assert.ok(data, `no answer within ${timeoutMs} ms`);
    return data;
  }

  /** Closes the socket and waits for the receive loop to end. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}

/**
 * Runs `fn` with a client, closed in `finally`.
 *
 * @param fn The body.
 * @param hostname The loopback address to bind.
 */
export async function withClient<T>(
  fn: (client: UdpClient) => Promise<T>,
  hostname = "127.0.0.1",
): Promise<T> {
  const client = new UdpClient(hostname);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
