/**
 * A stand-in for the server's HTTP side, for testing the dashboard page on
 * its own: `GET /` serves {@linkcode DASHBOARD_HTML}, `GET /api/status` a
 * canned status the test sets, and `GET /events` a Server-Sent Events
 * stream whose events the test pushes. It speaks the contract of
 * `lib/net/http.ts` (the `?token=` check, the `hello` event on connect,
 * the page's Content-Security-Policy) and records every request.
 *
 * @module
 */

import { DASHBOARD_HTML } from "../../lib/net/dashboard.ts";

/** A running fake, on 127.0.0.1 and a port of its own. */
export interface FakeLive {
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** What `/api/status` and each `hello` send; the test may replace it. */
  status: Record<string, unknown>;
  /** The path and query of every request, in order. */
  requests: string[];
  /** Sends an event to every open `/events` stream. */
  push(event: string, data: unknown): void;
  /** Ends every open stream, as a server restart would. */
  dropStreams(): void;
  /** How many `/events` streams are open. */
  streams(): number;
  /** Ends the streams and stops the server. */
  close(): Promise<void>;
}

/** Options of {@linkcode startFakeLive}. */
export interface FakeLiveOptions {
  /** The initial status. */
  status: Record<string, unknown>;
  /** When set, requests without `?token=` equal to it get a 401. */
  token?: string;
  /**
   * The `retry:` the streams announce (ms): how soon the page reconnects.
   * @default {300}
   */
  retryMs?: number;
}

const encoder = new TextEncoder();

/**
 * The policy the page must live with (the one `lib/net/http.ts` sends):
 * its one inline script by hash, inline style, requests to its own origin.
 */
async function pagePolicy(): Promise<string> {
  const script = /<script>([\s\S]*)<\/script>/.exec(DASHBOARD_HTML)![1]!;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    encoder.encode(script),
  );
  return [
    "default-src 'none'",
    `script-src 'sha256-${new Uint8Array(digest).toBase64()}'`,
    "style-src 'unsafe-inline'",
    "connect-src 'self'",
    "img-src data:",
  ].join("; ");
}

/** One Server-Sent Events message. */
function sse(event: string, data: unknown): Uint8Array {
  return encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * Starts the fake on 127.0.0.1 port 0.
 *
 * @param options The status, the token and the retry delay.
 * @returns The running fake, to close in `finally`.
 */
export async function startFakeLive(
  options: FakeLiveOptions,
): Promise<FakeLive> {
  const { token, retryMs = 300 } = options;
  const policy = await pagePolicy();
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const fake: FakeLive = {
    origin: "",
    status: options.status,
    requests: [],
    push(event, data) {
      for (const c of streams) c.enqueue(sse(event, data));
    },
    dropStreams() {
      for (const c of streams) c.close();
      streams.clear();
    },
    streams: () => streams.size,
    close: async () => {
      fake.dropStreams();
      await server.shutdown();
    },
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, (req) => {
    const url = new URL(req.url);
    fake.requests.push(url.pathname + url.search);
    if (token !== undefined && url.searchParams.get("token") !== token) {
      return new Response("bad token\n", { status: 401 });
    }
    if (url.pathname === "/") {
      return new Response(DASHBOARD_HTML, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy": policy,
        },
      });
    }
    if (url.pathname === "/api/status") return Response.json(fake.status);
    if (url.pathname === "/events") {
      let self: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          self = c;
          streams.add(c);
          c.enqueue(encoder.encode(`retry: ${retryMs}\n: ping\n\n`));
          c.enqueue(sse("hello", fake.status));
        },
        cancel() {
          streams.delete(self);
        },
      });
      return new Response(body, {
        headers: {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
        },
      });
    }
    return new Response("not found\n", { status: 404 });
  });
  fake.origin = `http://127.0.0.1:${server.addr.port}`;
  return fake;
}
