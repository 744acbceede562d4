/**
 * The server command's HTTP side (\`--http\`, \`--http-token\`): the token
 * file, the binding, and the view of the running server it shows.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Config } from "./config.ts";
import { ConfigError, fileProblem } from "./errors.ts";
import { summarize } from "./status.ts";
import { type HttpSide, startHttp } from "../net/http.ts";
import type { LiveView, Monitor } from "../net/monitor.ts";
import type { UdpServer } from "../net/server.ts";
import type { JournalStore } from "../state/journal.ts";
import type { ReplayCache } from "../state/replay.ts";
import type { Roster } from "../state/roster.ts";
import type { LoadedAnswerKey } from "./_answer_key.ts";
import type { JwkSet } from "../keys/answer_key.ts";

async function readToken(file: string): Promise<string> {
  let token: string;
  try {
    token = (await Deno.readTextFile(file)).trim();
  } catch (e) {
    throw new ConfigError(
      `Cannot read the HTTP token "${file}": ${
        fileProblem(e)
      }: write a secret token into it (for example: openssl rand -hex 24 > ${file})`,
      { exitCode: 1 },
    );
  }
  if (token.length < 16 || /\s/.test(token)) {
    throw new ConfigError(
      `The HTTP token in "${file}" must be one word of at least 16 characters: write a secret token into it (for example: openssl rand -hex 24 > ${file})`,
      { exitCode: 1 },
    );
  }
  return token;
}

/**
 * Reads the token file, if any, and starts the HTTP side of \`--http\`.
 *
 * @param config The configuration (\`http\` must be set).
 * @param view The running server.
 * @param monitor The per-datagram figures.
 * @param jwks The answer key's JWK Set, served at \`/jwks.json\`, if any.
 * @returns The running HTTP side.
 * @throws {ConfigError} With exit code 1 when the token file is unusable or
 * the address cannot be bound.
 */
export async function listenHttp(
  config: Config,
  view: LiveView,
  monitor: Monitor,
  jwks?: JwkSet,
): Promise<HttpSide> {
  const { hostname, port } = config.http!;
  const token = config.httpToken === undefined
    ? undefined
    : await readToken(config.httpToken);
  const log = getLogger(["udpjwt", "http"]);
  try {
    return await startHttp({
      hostname,
      port,
      view,
      monitor,
      ...(token === undefined ? {} : { token }),
      ...(jwks === undefined ? {} : { jwks }),
      onError: (e) => log.error("HTTP handler failed: {error}", { error: e }),
    });
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse
      ? "the address is already in use"
      : e instanceof Deno.errors.AddrNotAvailable
      ? "the address is not available on this machine"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied (ports below 1024 need privileges)"
      : undefined;
    if (why === undefined) throw e;
    throw new ConfigError(
      `Cannot serve HTTP on ${hostname} port ${port}: ${why}: pick another --http ADDR:PORT`,
      { exitCode: 1, cause: e },
    );
  }
}

/**
 * The running server as the HTTP side sees it.
 *
 * @param server The UDP loop.
 * @param store The durable state.
 * @param replay The answer cache.
 * @param monitor The per-datagram figures.
 * @param config The configuration (state directory, roster file).
 * @param roster The roster, if any.
 * @param warnings What the state's recovery reported at start-up.
 * @param answerKey The answer key, shown in the status, if any.
 * @returns The view the HTTP side reads.
 */
export function liveView(
  server: UdpServer,
  store: JournalStore,
  replay: ReplayCache,
  monitor: Monitor,
  config: Config,
  roster: Roster | undefined,
  warnings: string[],
  answerKey?: LoadedAnswerKey,
): LiveView {
  const view: LiveView = {
    counts: () => server.counts,
    inFlight: () => server.inFlight,
    answerCacheEntries: () => replay.size,
    records: () => store.records(),
    keys: () =>
      [...server.context.keys.values()].flatMap((g) =>
        g.keys.map((k) => ({
          group: g.group,
          alg: k.info.alg,
          fingerprint: k.fingerprint,
          kid: k.kid,
        }))
      ),
    health: () => {
      if (!server.receiving) {
        return { ok: false, reason: "the UDP loop is not receiving" };
      }
      const h = store.health;
      return h.writable ? { ok: true } : {
        ok: false,
        reason:
          `the state journal is not writable since ${h.since?.toISOString()}: ${h.error}; ${h.refused} steps refused`,
      };
    },
    status: () => ({
      stateDir: config.stateDir,
      roster: roster ? config.roster : null,
      warnings,
      groups: summarize(Object.fromEntries(store.records()), roster),
      keys: view.keys(),
      errors: monitor.errorsByGroup(),
      health: view.health(),
      ...(answerKey
        ? {
          answerKey: {
            file: answerKey.file,
            alg: answerKey.alg,
            kid: answerKey.kid,
            jwks: answerKey.jwks,
          },
        }
        : {}),
    }),
  };
  return view;
}
