/**
 * Sockets of the reference client: the {@linkcode ClientSocket} interface the
 * walk talks through, the real {@linkcode UdpClientSocket}, and
 * {@linkcode LossySocket}, which drops datagrams to simulate a lossy network
 * (`udpjwt send --simulate-loss`).
 *
 * @example
 * ```ts
 * import { type ClientSocket, LossySocket } from "./socket.ts";
 * const silent: ClientSocket = {
 *   send: () => Promise.resolve(),
 *   receive: () => Promise.resolve(undefined),
 *   close: () => Promise.resolve(),
 * };
 * const lossy = new LossySocket(silent, {
 *   probability: 1,
 *   random: Math.random,
 *   now: Date.now,
 * });
 * await lossy.send(new Uint8Array([1]));
 * lossy.dropped.sent; // 1
 * ```
 *
 * @module
 */

import { ConfigError } from "../cli/errors.ts";

/** A datagram socket talking to one server. */
export interface ClientSocket {
  /**
   * Sends one datagram to the server.
   * @param data The datagram.
   */
  send(data: Uint8Array): Promise<void>;
  /**
   * The next datagram from the server, or `undefined` once `timeoutMs` passed.
   * @param timeoutMs How long to wait.
   */
  receive(timeoutMs: number): Promise<Uint8Array | undefined>;
  /** Releases the socket. */
  close(): Promise<void>;
}

/** Options of {@linkcode LossySocket}. */
export interface LossOptions {
  /** The probability of dropping each datagram, each way, 0 to 1. */
  probability: number;
  /** Uniform random numbers in [0, 1) deciding each drop. */
  random: () => number;
  /** The clock in milliseconds, to keep waiting after a dropped answer. */
  now: () => number;
}

/**
 * A socket that drops each outgoing and each incoming datagram with a given
 * probability: a lossy network for testing clients (`--simulate-loss`).
 */
export class LossySocket implements ClientSocket {
  #inner: ClientSocket;
  #probability: number;
  #random: () => number;
  #now: () => number;
  /** Datagrams dropped: sent ones that never left, and answers discarded. */
  readonly dropped = { sent: 0, received: 0 };

  /**
   * @param inner The real socket.
   * @param options The drop probability, its randomness and the clock.
   */
  constructor(inner: ClientSocket, options: LossOptions) {
    this.#inner = inner;
    this.#probability = options.probability;
    this.#random = options.random;
    this.#now = options.now;
  }

  async send(data: Uint8Array): Promise<void> {
    if (this.#random() < this.#probability) {
      this.dropped.sent++;
      return;
    }
    await this.#inner.send(data);
  }

  async receive(timeoutMs: number): Promise<Uint8Array | undefined> {
    const deadline = this.#now() + timeoutMs;
    while (true) {
      const data = await this.#inner.receive(
        Math.max(0, deadline - this.#now()),
      );
      if (data === undefined) return undefined;
      if (this.#random() >= this.#probability) return data;
      this.dropped.received++;
    }
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/**
 * A UDP socket bound to an ephemeral port, sending to one server and keeping
 * only datagrams from it. One background loop receives into a queue, so a
 * receive that times out never swallows a later datagram.
 */
export class UdpClientSocket implements ClientSocket {
  #conn: Deno.DatagramConn;
  #to: Deno.NetAddr;
  #queue: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #loop: Promise<void>;

  /**
   * @param hostname The server's address or name.
   * @param port The server's port.
   * @throws {ConfigError} When the socket cannot be opened.
   */
  constructor(hostname: string, port: number) {
    const host = hostname === "localhost"
      ? "127.0.0.1"
      : hostname.replace(/^\[(.*)\]$/, "$1");
    const bind = host === "::1"
      ? "::1"
      : host.includes(":")
      ? "::"
      : host.startsWith("127.")
      ? "127.0.0.1"
      : "0.0.0.0";
    if (typeof Deno.listenDatagram !== "function") {
      throw new ConfigError(
        "UDP sockets need Deno's unstable net feature: run through the deno.json tasks or pass --unstable-net",
        { exitCode: 1 },
      );
    }
    let conn: Deno.DatagramConn;
    try {
      conn = Deno.listenDatagram({
        hostname: bind,
        port: 0,
        transport: "udp",
      });
    } catch (e) {
      throw new ConfigError(
        `Cannot open a UDP socket on ${bind}: ${
          e instanceof Error ? e.message : e
        }`,
        { exitCode: 1, cause: e },
      );
    }
    this.#conn = conn;
    this.#to = { transport: "udp", hostname: host, port };
    const literal = /^[\d.]+$/.test(host) || host.includes(":");
    this.#loop = (async () => {
      while (true) {
        let data: Uint8Array;
        let from: Deno.Addr;
        try {
          [data, from] = await conn.receive(new Uint8Array(65536));
        } catch {
          break; // closed
        }
        const source = from as Deno.NetAddr;
        const sourceHost = source.hostname.replace(/^::ffff:/, "");
        if (source.port === port && (!literal || sourceHost === host)) {
          this.#queue.push(data.slice());
          this.#wake?.();
        }
      }
      this.#wake?.();
    })();
  }

  async send(data: Uint8Array): Promise<void> {
    try {
      await this.#conn.send(data, this.#to);
    } catch (e) {
      // A send can fail for a moment (an ICMP error from an earlier one);
      // the retry logic treats it as a lost datagram.
      if (e instanceof Deno.errors.PermissionDenied) throw e;
    }
  }

  async receive(timeoutMs: number): Promise<Uint8Array | undefined> {
    if (this.#queue.length === 0 && timeoutMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.#queue.shift();
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}
