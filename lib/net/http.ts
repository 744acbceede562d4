/**
 * The server's read-only HTTP side (`--http ADDR:PORT`), in the same process
 * as the UDP loop:
 *
 * | path | answer |
 * | --- | --- |
 * | `/` | the dashboard page (lib/net/dashboard.ts) |
 * | `/events` | Server-Sent Events (lib/net/events.ts) |
 * | `/api/status` | the JSON of `udpjwt status --json`, plus `keys` and `errors` |
 * | `/metrics` | Prometheus text format 0.0.4 (lib/net/metrics.ts) |
 * | `/healthz` | `200 ok`, or `503` and the reason |
 * | `/jwks.json` | the answer key's JWK Set (`--answer-key`), else `404` |
 *
 * With a token every path but `/jwks.json` needs `Authorization: Bearer
 * TOKEN` or `?token=TOKEN`: the JWK Set holds only a public key, which the
 * students need to verify their answers. Only GET and HEAD, no request body, bounded URL and
 * header sizes, a bounded number of requests at once: an HTTP client can
 * cost the UDP path little, and never without limit.
 *
 * @module
 */

import type { Registry } from "prom-client";
import { DASHBOARD_HTML } from "./dashboard.ts";
import { EventHub, type EventHubOptions } from "./events.ts";
import type { LiveView, Monitor } from "./monitor.ts";
import { metricsRegistry } from "./metrics.ts";

/** Options of {@linkcode startHttp}. */
export interface HttpOptions extends EventHubOptions {
  /** The address to listen on. */
  hostname: string;
  /** The TCP port; 0 picks a free one. */
  port: number;
  /** When set, every request must carry it. */
  token?: string;
  /** The running server. */
  view: LiveView;
  /** The per-datagram figures. */
  monitor: Monitor;
  /**
   * Requests handled at once, event streams not counted; more get a 503.
   * @default {64}
   */
  maxRequests?: number;
  /** Add the process metrics to `/metrics`. @default {true} */
  processMetrics?: boolean;
  /** Where unexpected handler errors are reported. */
  onError?: (error: unknown) => void;
  /** The answer key's public JWK Set, served at `/jwks.json`. */
  jwks?: { keys: unknown[] };
}

/** A running HTTP side. */
export interface HttpSide {
  /** The bound address. */
  addr: Deno.NetAddr;
  /** The live-update hub. */
  hub: EventHub;
  /** Ends the event streams and stops listening. */
  close(): Promise<void>;
}

/** Longest request target (path and query), in characters. */
export const MAX_URL = 2048;
/** Most header bytes (names and values) in a request. */
export const MAX_HEADER_BYTES = 8192;

const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

function text(status: number, body: string, extra?: HeadersInit): Response {
  return new Response(body + "\n", {
    status,
    headers: {
      ...COMMON_HEADERS,
      "content-type": "text/plain; charset=utf-8",
      ...extra,
    },
  });
}

/** Compares without an early exit, so timing does not reveal the token. */
function sameToken(given: string | null, token: string): boolean {
  if (given === null) return false;
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(token);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]!;
  return diff === 0;
}

function headerBytes(headers: Headers): number {
  let n = 0;
  for (const [k, v] of headers) n += k.length + v.length + 4;
  return n;
}

/**
 * The page's Content-Security-Policy: its one inline script (by hash) and
 * inline style, requests to its own origin only, nothing else.
 */
async function pagePolicy(): Promise<string> {
  const script = /<script>([\s\S]*)<\/script>/.exec(DASHBOARD_HTML)?.[1] ?? "";
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(script),
  );
  const hash = btoa(String.fromCharCode(...new Uint8Array(digest)));
  return [
    "default-src 'none'",
    `script-src 'sha256-${hash}'`,
    "style-src 'unsafe-inline'",
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * Starts the HTTP side.
 *
 * @param options Address, token, the server to show, limits.
 * @returns The running side, to close on shutdown.
 * @throws {Deno.errors.AddrInUse} And the other errors of `Deno.serve` when
 * the address cannot be bound.
 */
export async function startHttp(options: HttpOptions): Promise<HttpSide> {
  const { view, monitor, token, maxRequests = 64 } = options;
  const hub = new EventHub(view, monitor, options);
  const registry: Registry = metricsRegistry(view, monitor, {
    processMetrics: options.processMetrics ?? true,
  });
  const policy = await pagePolicy();
  const jwks = options.jwks === undefined
    ? undefined
    : JSON.stringify(options.jwks);
  let active = 0;

  const route = async (req: Request, url: URL): Promise<Response> => {
    switch (url.pathname) {
      case "/":
        return new Response(DASHBOARD_HTML, {
          headers: {
            ...COMMON_HEADERS,
            "content-type": "text/html; charset=utf-8",
            "content-security-policy": policy,
          },
        });
      case "/api/status":
        return new Response(JSON.stringify(view.status()), {
          headers: { ...COMMON_HEADERS, "content-type": "application/json" },
        });
      case "/metrics":
        return new Response(await registry.metrics(), {
          headers: { ...COMMON_HEADERS, "content-type": registry.contentType },
        });
      case "/healthz": {
        const h = view.health();
        return h.ok ? text(200, "ok") : text(503, h.reason ?? "unhealthy");
      }
      case "/events": {
        const body = req.method === "GET" ? hub.connect() : undefined;
        if (req.method === "HEAD") {
          return new Response(null, {
            headers: { ...COMMON_HEADERS, "content-type": "text/event-stream" },
          });
        }
        if (!body) {
          return text(503, "too many event clients: try again later", {
            "retry-after": "5",
          });
        }
        return new Response(body, {
          headers: { ...COMMON_HEADERS, "content-type": "text/event-stream" },
        });
      }
      case "/jwks.json":
        if (jwks === undefined) {
          return text(404, "no answer key is configured (--answer-key)");
        }
        return new Response(jwks, {
          headers: {
            ...COMMON_HEADERS,
            "content-type": "application/jwk-set+json",
          },
        });
      default:
        return text(404, `not found: ${url.pathname.slice(0, 100)}`);
    }
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname.length + url.search.length > MAX_URL) {
      return text(414, `request target longer than ${MAX_URL} characters`);
    }
    if (headerBytes(req.headers) > MAX_HEADER_BYTES) {
      return text(431, `request headers larger than ${MAX_HEADER_BYTES} bytes`);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return text(405, "read-only: GET or HEAD", { allow: "GET, HEAD" });
    }
    if (
      req.body !== null || req.headers.has("transfer-encoding") ||
      Number(req.headers.get("content-length") ?? 0) > 0
    ) {
      return text(413, "a request body is not accepted");
    }
    if (token !== undefined && url.pathname !== "/jwks.json") {
      const bearer = /^Bearer (.+)$/.exec(
        req.headers.get("authorization") ?? "",
      )?.[1] ?? null;
      if (
        !sameToken(bearer, token) &&
        !sameToken(url.searchParams.get("token"), token)
      ) {
        return text(
          401,
          "a token is required: Authorization: Bearer TOKEN, or ?token=TOKEN",
          { "www-authenticate": 'Bearer realm="udpjwt"' },
        );
      }
    }
    if (active >= maxRequests) {
      return text(503, "too many requests at once: try again later", {
        "retry-after": "1",
      });
    }
    active++;
    try {
      return await route(req, url);
    } finally {
      active--;
    }
  };

  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen() {},
    onError(e) {
      options.onError?.(e);
      return text(500, "internal error");
    },
  }, handler);
  return {
    addr: server.addr,
    hub,
    async close() {
      // Open streams would hold the shutdown until they end: end them first.
      hub.close();
      await server.shutdown();
    },
  };
}
