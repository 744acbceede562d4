/**
 * `deno task screenshot`: the dashboard as docs/dashboard.png (1600×900, a
 * projector's 16:9).
 *
 * Starts the server on the interoperability vectors' six groups with a
 * roster for three of them and `--http 127.0.0.1:0`, opens the dashboard in
 * headless Chromium and walks the groups with signed UDP requests for
 * `--seconds` (two complete walks, one keeps sending expired tokens, one
 * reuses a `jti`, one retransmits, one sends nothing, and some requests
 * carry bad signatures or a misspelt group name), then saves the page.
 * With `--fake`, or when the server has no `--http`, the page is served by
 * the test fake (tests/net/_fake_live.ts) with five minutes of made-up
 * history instead.
 *
 * Options: `--out FILE` (default docs/dashboard.png), `--dark` (the dark
 * palette), `--seconds N` (the traffic's length on the real server, 10 to
 * 600, default 30), `--fake`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Chromium, findChromium, type Tab } from "../tests/_chromium.ts";
import { nowSec } from "../tests/_helpers.ts";
import { type StartedServer, startServer } from "../tests/_server.ts";
import { UdpClient } from "../tests/_udp_client.ts";
import { type Group, step, token } from "../tests/net/_server_checks.ts";
import { startFakeLive } from "../tests/net/_fake_live.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The viewport: a 16:9 projector. */
const WIDTH = 1600;
const HEIGHT = 900;

function print(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

/** Seconds ago, as the ISO time the server would print. */
function ago(seconds: number, now = Date.now()): string {
  return new Date(now - seconds * 1000).toISOString();
}

/** A group's entry of `udpjwt status --json`. */
function groupStatus(
  group: string,
  state: number,
  walks: number,
  secondsAgo: number,
  registrations: number[],
  roster?: number[],
): Record<string, unknown> {
  const colours = [
    "RED",
    "ORANGE",
    "YELLOW",
    "GREEN",
    "BLUE",
    "INDIGO",
    "VIOLET",
  ];
  const at = ago(secondsAgo);
  return {
    group,
    state,
    colour: colours[state],
    walks,
    walkTimes: [],
    registrations: registrations.map((registration) => ({
      registration,
      first: at,
      last: at,
      unlisted: roster ? !roster.includes(registration) : false,
    })),
    missing: roster?.filter((m) => !registrations.includes(m)) ?? [],
    members: roster ? roster.length : null,
    lastActivity: at,
  };
}

/**
 * The fake's picture: six groups at various points, and five minutes of
 * summaries (a class warming up, a burst of bad signatures, some drops).
 */
async function fakeLab(tab: Tab): Promise<Uint8Array> {
  const fingerprint = (s: string) => `SHA256:${s}`;
  const fake = await startFakeLive({
    status: {
      groups: [
        groupStatus("CHEDIMON", 4, 1, 8, [20230011, 20230012], [
          20230011,
          20230012,
        ]),
        groupStatus("GUILHONGA", 1, 0, 140, [20230021], [20230021, 20230022]),
        groupStatus("HEARTBEAT", 6, 2, 3, [20230001, 20230002], [
          20230001,
          20230002,
          20230003,
        ]),
        groupStatus("PKCS1GRP", 3, 3, 41, [20230031]),
        groupStatus("SEGSANH", 2, 0, 12, [20230041, 20230042]),
      ],
      keys: [
        ["CHEDIMON", "ES256", "Giha464UxEVUqohpK8/axmkmlQTFShN9zClbTQZxD2k"],
        ["GUILHONGA", "RS256", "gZQ4O8Sst9uz7gTQb8fOknlolTXI2qmPJlkC8ZZn+uE"],
        ["HEARTBEAT", "RS256", "ZPSysEdXSgj54yVQGuWjLk0G9chXaMHGTyhnwMXCQjc"],
        ["PKCS1GRP", "RS256", "2F82HyFiapEP94O4Z0qfMD/Sl91TfMhydrjO6VtI07Q"],
        ["SEGSANH", "ES256", "tzb62h/f+xCY5oN5+NnpfEfgDLGeoFxAFwikzuIYS+0"],
        ["THEOTHERS", "RS256", "LUIXvx278QA8onsO0YsOrqUaKZFlMqEc/nynIavV6/E"],
      ].map(([group, alg, fp]) => ({
        group,
        alg,
        fingerprint: fingerprint(fp!),
      })),
      errors: {
        GUILHONGA: { TOKEN_EXPIRED: 20 },
        SEGSANH: { JTI_REUSED: 1 },
        "": { BAD_SIGNATURE: 140, UNKNOWN_GROUP: 6 },
      },
    },
  });
  try {
    await tab.goto(fake.origin + "/");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const now = Date.now();
    const totals: Record<string, number> = {};
    let expired = 20;
    for (let s = 299; s >= 0; s--) {
      // A class warming up, busier in the last two minutes.
      const t = 300 - s;
      const ok = Math.round(
        (t < 120 ? t / 40 : 3 + (t % 37 < 20 ? 4 : 2)) + Math.sin(t / 5),
      );
      const perSecond: Record<string, number> = { ok };
      if (t % 11 === 0) perSecond.replayed = 2;
      if (t > 180) perSecond.BAD_SIGNATURE = t % 3 === 0 ? 2 : 1;
      if (t > 250 && t < 262) perSecond["dropped:rate_limited"] = 6;
      if (t % 29 === 0) perSecond.TOKEN_EXPIRED = 1;
      for (const [k, n] of Object.entries(perSecond)) {
        totals[k] = (totals[k] ?? 0) + n;
      }
      if (s < 5) expired += 2;
      fake.push("summary", {
        at: ago(s, now),
        totals,
        perSecond,
        errors: {
          GUILHONGA: { TOKEN_EXPIRED: expired },
          SEGSANH: { JTI_REUSED: 1 },
          "": { BAD_SIGNATURE: 140, UNKNOWN_GROUP: 6 },
        },
        health: { ok: true },
      });
    }
    fake.push("group", {
      group: "CHEDIMON",
      state: 4,
      colour: "BLUE",
      walks: 1,
      lastActivity: ago(8, now),
      registration: 20230012,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    return await tab.screenshot();
  } finally {
    await fake.close();
  }
}

/** The screenshot's roster: who is in CHEDIMON, GUILHONGA and HEARTBEAT. */
const ROSTER: Record<string, number[]> = {
  CHEDIMON: [20231101, 20231102],
  GUILHONGA: [20231201, 20231202],
  HEARTBEAT: [20231301, 20231302, 20231303],
};

/** Claims making a request of `group` fit the roster (or none). */
function member(group: Group, i: number): Record<string, unknown> {
  const members = ROSTER[group];
  if (!members) {
    return { registration: 20231400 + 10 * group.length + (i % 2), seq_max: 2 };
  }
  // The first members only: the last one of a roster never shows up.
  const present = members.length > 2 ? members.slice(0, -1) : members;
  return { registration: present[i % present.length], seq_max: members.length };
}

/** Resolves `ms` after `start`. */
function until(start: number, ms: number): Promise<void> {
  return new Promise((r) =>
    setTimeout(r, Math.max(0, start + ms - Date.now()))
  );
}

/**
 * Drives `steps` requests of `group` (events `from`, `from + 1`, ...)
 * spread evenly from `t0` to `t1` (ms after `start`), each answered before
 * the next; `retransmit` sends every second request twice.
 */
async function walker(
  server: StartedServer,
  start: number,
  group: Group,
  plan: { from: number; steps: number; t0: number; t1: number; jti?: string },
  retransmit = false,
): Promise<void> {
  const client = new UdpClient();
  try {
    for (let i = 0; i < plan.steps; i++) {
      await until(start, plan.t0 + (plan.t1 - plan.t0) * i / plan.steps);
      const n = (plan.from + i) % 7;
      if (retransmit && i % 2 === 1) {
        const t = await token(group, n, member(group, i));
        await client.send(server.addr, t);
        await client.receive();
        await client.send(server.addr, t);
        await client.receive();
      } else {
        const jti = i === 0 && plan.jti ? { jti: plan.jti } : {};
        await step(client, server.addr, group, n, (n + 1) % 7, {
          ...member(group, i),
          ...jti,
        });
      }
    }
  } finally {
    await client.close();
  }
}

/**
 * Sends `count` requests that are refused, spread from `t0` to `t1` (ms
 * after `start`), each made by `make`.
 */
async function pest(
  server: StartedServer,
  start: number,
  plan: { count: number; t0: number; t1: number },
  make: (i: number) => Promise<string>,
): Promise<void> {
  const client = new UdpClient();
  try {
    for (let i = 0; i < plan.count; i++) {
      await until(start, plan.t0 + (plan.t1 - plan.t0) * i / plan.count);
      await client.send(server.addr, await make(i));
      await client.next(1000);
    }
  } finally {
    await client.close();
  }
}

/**
 * The real server with `--http`, walked for `seconds`: CHEDIMON completes
 * two walks and is halfway through a third, HEARTBEAT completes its second
 * walk at the end (one of its three members never shows up), PKCS1GRP
 * retransmits, GUILHONGA goes on sending expired tokens (highlighted),
 * SEGSANH reuses a `jti` once, THEOTHERS sends nothing; meanwhile bad
 * signatures and a misspelt group name.
 *
 * @returns The PNG, or why the real server cannot be used.
 */
async function realLab(
  tab: Tab,
  seconds: number,
): Promise<Uint8Array | { skip: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_screenshot_" });
  let server: StartedServer | undefined;
  try {
    await Deno.writeTextFile(
      `${tmp}/groups.json`,
      JSON.stringify({ groups: ROSTER }),
    );
    server = await startServer({
      logDir: `${tmp}/logs`,
      stateDir: `${tmp}/state`,
      args: ["--http", "127.0.0.1:0", "--roster", `${tmp}/groups.json`],
    });
    const origin = server.http;
    if (origin === undefined) {
      return { skip: "the server printed no http: address" };
    }
    await tab.goto(`${origin}/`);
    const T = seconds * 1000;
    const start = Date.now();
    const s = server;
    const now = nowSec();
    await Promise.all([
      walker(s, start, "CHEDIMON", { from: 0, steps: 19, t0: 0, t1: 0.9 * T }),
      walker(s, start, "HEARTBEAT", {
        from: 0,
        steps: 13,
        t0: 0.1 * T,
        t1: 0.8 * T,
      })
        .then(() =>
          walker(s, start, "HEARTBEAT", {
            from: 6,
            steps: 1,
            t0: T - 3000,
            t1: T,
          })
        ),
      walker(
        s,
        start,
        "PKCS1GRP",
        { from: 0, steps: 4, t0: 0.2 * T, t1: T },
        true,
      ),
      walker(s, start, "GUILHONGA", {
        from: 0,
        steps: 2,
        t0: 0.05 * T,
        t1: 0.3 * T,
      }),
      pest(
        s,
        start,
        { count: Math.round(seconds / 3), t0: 0.5 * T, t1: T },
        (i) =>
          token("GUILHONGA", 2, {
            ...member("GUILHONGA", i),
            iat: now - 3600,
            exp: now - 3000,
          }),
      ),
      // SEGSANH reuses the jti of its first request once, then goes on.
      walker(s, start, "SEGSANH", {
        from: 0,
        steps: 2,
        t0: 0.15 * T,
        t1: 0.4 * T,
        jti: "5e65a9" + "0".repeat(26),
      })
        .then(() =>
          pest(
            s,
            start,
            { count: 1, t0: 0.45 * T, t1: T },
            () =>
              token("SEGSANH", 2, {
                ...member("SEGSANH", 0),
                jti: "5e65a9" + "0".repeat(26),
              }),
          )
        )
        .then(() =>
          walker(s, start, "SEGSANH", {
            from: 2,
            steps: 1,
            t0: 0.8 * T,
            t1: T,
          })
        ),
      pest(s, start, {
        count: Math.round(seconds / 2),
        t0: 0.35 * T,
        t1: 0.75 * T,
      }, (i) =>
        // THEOTHERS' name, HEARTBEAT's key: a bad signature.
        token("THEOTHERS", i % 7, undefined, "HEARTBEAT")),
      pest(
        s,
        start,
        { count: 4, t0: 0.6 * T, t1: 0.9 * T },
        (i) => token("HEARTBEAT", i, { sub: "HEARTBEET" }),
      ),
    ]);
    // The next summary, and the walk-completed flash faded.
    await new Promise((r) => setTimeout(r, 2600));
    return await tab.screenshot();
  } finally {
    await server?.stop();
    await Deno.remove(tmp, { recursive: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: `${ROOT}docs/dashboard.png` },
      dark: { type: "boolean", default: false },
      fake: { type: "boolean", default: false },
      seconds: { type: "string", default: "30" },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds >= 10 && seconds <= 600)) {
    print(`screenshot: --seconds ${values.seconds}: expected 10 to 600`);
    return 2;
  }
  const chromium = findChromium();
  if (!chromium) {
    print("screenshot: no Chromium found: install Debian's chromium package");
    return 1;
  }
  const browser = await Chromium.launch(chromium, {
    width: WIDTH,
    height: HEIGHT,
    colorScheme: values.dark ? "dark" : "light",
  });
  try {
    const tab = await browser.newTab();
    let png = values.fake ? { skip: "--fake" } : await realLab(tab, seconds);
    let source = "the real server's";
    if (!(png instanceof Uint8Array)) {
      print(`screenshot: using the fake backend: ${png.skip}`);
      png = await fakeLab(tab);
      source = "the fake backend's";
    }
    await Deno.writeFile(values.out, png);
    print(
      `screenshot: ${source} page saved as ${values.out} (${WIDTH}×${HEIGHT})`,
    );
    return 0;
  } finally {
    await browser.close();
  }
}

Deno.exit(await main());
