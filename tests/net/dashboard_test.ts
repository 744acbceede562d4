/**
 * The dashboard page (lib/net/dashboard.ts) in headless Chromium: against
 * a fake HTTP side whose events the test pushes (tests/net/_fake_live.ts),
 * and against the real server started with `--http`, walked by signed UDP
 * tokens. Skipped, with the reason printed, when no Chromium is installed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Chromium, findChromium, type Tab } from "../_chromium.ts";
import { nowSec } from "../_helpers.ts";
import { type StartedServer, startServer } from "../_server.ts";
import { UdpClient } from "../_udp_client.ts";
import { checkError, GROUPS, step, token } from "./_server_checks.ts";
import { startFakeLive } from "./_fake_live.ts";

const CHROMIUM = findChromium();
if (!CHROMIUM) {
  // deno-lint-ignore no-console
  console.log(
    "dashboard_test: skipped: no Chromium found (/usr/bin/chromium or UDPJWT_CHROMIUM); install Debian's chromium package",
  );
}

/** A group name made of markup, as a student could spell a `sub`. */
const MARKUP = "<img src=x onerror=alert(1)>";
const TOKEN = "s3cret&x=1";

/** What a row shows, read from the page. */
interface RowView {
  lit: number;
  colour: string;
  walks: string;
  what: string;
  when: string;
  members: string;
  errors: string;
  stuck: boolean;
  done: boolean;
}

/** An expression reading the row of `group`, or null when there is none. */
function rowOf(group: string): string {
  return `(() => {
    const r = [...document.querySelectorAll("#rows .row")]
      .find((r) => r.dataset.group === ${JSON.stringify(group)});
    if (!r) return null;
    const text = (sel) => r.querySelector(sel).textContent;
    return {
      lit: [...r.querySelectorAll(".seg")].findIndex((s) => s.classList.contains("on")),
      colour: text(".colour"), walks: text(".walks"), what: text(".what"),
      when: r.querySelector(".what").nextSibling.textContent,
      members: text(".members"), errors: text(".errors"),
      stuck: r.classList.contains("stuck"), done: r.classList.contains("done"),
    };
  })()`;
}

/** Waits until the row of `group` satisfies `test`; returns it. */
async function waitRow(
  tab: Tab,
  group: string,
  test: (r: RowView) => boolean,
  what: string,
): Promise<RowView> {
  const deadline = Date.now() + 5_000;
  let row: RowView | null = null;
  while (Date.now() < deadline) {
    row = await tab.evaluate<RowView | null>(rowOf(group));
    if (row && test(row)) return row;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${group}: ${what}; the row shows ${JSON.stringify(row)}`);
}

/** Asserts that every request the page made went to `origin`. */
function assertOnlyOrigin(tab: Tab, origin: string): void {
  assert.ok(tab.requests.length > 0, "the page made requests");
  for (const url of tab.requests) {
    assert.equal(new URL(url).origin, origin, `request to ${url}`);
  }
}

/** The canned status of the fake: what `udpjwt status --json` prints, plus keys and errors. */
function cannedStatus(lastActivity: string): Record<string, unknown> {
  return {
    stateDir: "state",
    roster: "groups.json",
    snapshotSeq: 0,
    journalLines: 4,
    warnings: [],
    groups: [
      {
        group: "ALPHA",
        state: 2,
        colour: "YELLOW",
        walks: 1,
        walkTimes: [lastActivity],
        registrations: [{
          registration: 20230001,
          first: lastActivity,
          last: lastActivity,
          unlisted: false,
        }],
        missing: [20230002],
        members: 2,
        lastActivity,
      },
      {
        group: MARKUP,
        state: 1,
        colour: `<b>${MARKUP}</b>`,
        walks: 0,
        walkTimes: [],
        registrations: [],
        missing: [],
        members: null,
        lastActivity,
      },
    ],
    keys: [
      { group: "ALPHA", alg: "ES256", fingerprint: "SHA256:alpha0000000000" },
      { group: "BETA", alg: "RS256", fingerprint: `SHA256:${MARKUP}` },
    ],
    errors: {
      ALPHA: { BAD_SIGNATURE: 2 },
      [`<script>alert(2)</script>`]: { UNKNOWN_GROUP: 4 },
    },
    health: { ok: false, reason: "state directory <not writable>" },
  };
}

Deno.test({
  name:
    "DASHBOARD_HTML shows the fake server's groups live, as text, from its own origin only",
  ignore: !CHROMIUM,
}, async (t) => {
  const started = new Date(Date.now() - 45_000).toISOString();
  const fake = await startFakeLive({
    status: cannedStatus(started),
    token: TOKEN,
  });
  let browser: Chromium | undefined;
  try {
    browser = await Chromium.launch(CHROMIUM!);
    const tab = await browser.newTab();
    await tab.goto(`${fake.origin}/?token=${encodeURIComponent(TOKEN)}`);

    await t.step(
      "it shows one row per group of keys and groups, in name order",
      async () => {
        await tab.waitFor(
          "document.querySelectorAll('#rows .row').length === 3",
          "three rows",
        );
        assert.equal(await tab.evaluate("document.title"), "udpjwt — lab");
        assert.equal(
          await tab.evaluate(
            "document.querySelector('meta[name=viewport]') !== null",
          ),
          true,
        );
        assert.deepEqual(
          await tab.evaluate(
            "[...document.querySelectorAll('#rows .row')].map((r) => r.dataset.group)",
          ),
          [MARKUP, "ALPHA", "BETA"].sort(),
        );
        const alpha = await waitRow(
          tab,
          "ALPHA",
          (r) => r.lit === 2,
          "lit at YELLOW",
        );
        assert.equal(alpha.colour, "2 YELLOW");
        assert.equal(alpha.walks, "1");
        assert.match(alpha.members, /^1\/2missing 20230002$/);
        assert.match(alpha.errors, /2 BAD_SIGNATURE/);
        // Set 45 s before the page loaded; a busy machine adds seconds.
        assert.match(alpha.when, /^(4[4-9]|5[0-9]) s ago$/);
        const beta = await waitRow(tab, "BETA", () => true, "a row");
        assert.equal(beta.lit, -1);
        assert.equal(beta.colour, "no request yet");
        assert.equal(
          await tab.evaluate("document.getElementById('health').textContent"),
          "unhealthy: state directory <not writable>",
        );
        // The connection badge is hidden once the stream is open.
        await tab.waitFor(
          "document.getElementById('conn').hidden",
          "the stream open",
        );
      },
    );

    await t.step("its requests carry the page's ?token=", () => {
      const expected = `?token=${encodeURIComponent(TOKEN)}`;
      assert.ok(
        fake.requests.includes(`/api/status${expected}`),
        fake.requests.join(" "),
      );
      assert.ok(
        fake.requests.includes(`/events${expected}`),
        fake.requests.join(" "),
      );
    });

    await t.step("a group event moves its row without a reload", async () => {
      await tab.evaluate("window.kept = 'this page'");
      const navigations = tab.navigations;
      fake.push("group", {
        group: "ALPHA",
        state: 3,
        colour: "GREEN",
        walks: 1,
        lastActivity: new Date().toISOString(),
        registration: 20230002,
      });
      const alpha = await waitRow(
        tab,
        "ALPHA",
        (r) => r.lit === 3,
        "lit at GREEN",
      );
      assert.equal(alpha.colour, "3 GREEN");
      assert.equal(alpha.what, "→ GREEN");
      assert.match(alpha.when, /^[0-5] s ago$/);
      assert.match(alpha.members, /^2\/2all seen$/);
      fake.push("group", {
        group: "ALPHA",
        state: 6,
        colour: "VIOLET",
        walks: 2,
        lastActivity: new Date().toISOString(),
        registration: 20230001,
      });
      const done = await waitRow(
        tab,
        "ALPHA",
        (r) => r.lit === 6,
        "lit at VIOLET",
      );
      assert.equal(done.walks, "2");
      assert.equal(done.what, "walk 2 completed");
      assert.equal(done.done, true);
      // A group the page had not seen gets a row of its own, in order.
      fake.push("group", {
        group: "AARDVARK",
        state: 0,
        colour: "RED",
        walks: 0,
        lastActivity: new Date().toISOString(),
        registration: null,
      });
      await waitRow(tab, "AARDVARK", (r) => r.lit === 0, "lit at RED");
      // A profile v1 group walks 0..M: its bar shows how far, not a colour.
      fake.push("group", {
        group: "AARDVARK",
        state: 3,
        colour: "-",
        seqMax: 6,
        walks: 0,
        lastActivity: new Date().toISOString(),
        registration: 20230003,
      });
      const v1 = await waitRow(tab, "AARDVARK", (r) => r.lit === 3, "v1 half");
      assert.equal(v1.colour, "state 3 of 6");
      assert.equal(v1.what, "→ state 3");
      assert.equal(await tab.evaluate("window.kept"), "this page");
      assert.equal(tab.navigations, navigations);
    });

    await t.step(
      "markup in names is shown as text and creates no element",
      async () => {
        const name = await tab.evaluate<string>(
          `[...document.querySelectorAll("#rows .row")].find((r) => r.dataset.group === ${
            JSON.stringify(MARKUP)
          }).querySelector(".name").firstChild.textContent`,
        );
        assert.equal(name, MARKUP);
        const row = await waitRow(tab, MARKUP, () => true, "a row");
        assert.equal(row.colour, `1 <b>${MARKUP}</b>`);
        assert.match(
          await tab.evaluate<string>(
            "document.getElementById('strangers').textContent",
          ),
          /^Errors of no known group: “<script>alert\(2\)<\/script>”: 4 UNKNOWN_GROUP$/,
        );
        assert.equal(
          await tab.evaluate("document.querySelectorAll('img').length"),
          0,
        );
        assert.equal(
          await tab.evaluate("document.querySelectorAll('script').length"),
          1,
        );
        assert.equal(
          await tab.evaluate(
            "document.querySelectorAll('main b b, #strangers *').length",
          ),
          0,
        );
        assert.deepEqual(tab.dialogs, []);
        assert.deepEqual(tab.exceptions, []);
      },
    );

    await t.step(
      "summaries draw the chart, the totals and the health",
      async () => {
        const at = Date.now();
        for (let i = 0; i < 3; i++) {
          fake.push("summary", {
            at: new Date(at - (2 - i) * 1000).toISOString(),
            totals: { ok: 40 + i, BAD_SIGNATURE: 9, "dropped:rate": 3 },
            perSecond: {
              ok: 5,
              replayed: 1,
              BAD_SIGNATURE: 3,
              "dropped:rate": 1,
            },
            errors: { ALPHA: { BAD_SIGNATURE: 2 } },
            health: { ok: true },
          });
        }
        await tab.waitFor(
          "document.getElementById('t-ok').textContent === '42'",
          "the ok total",
        );
        assert.equal(
          await tab.evaluate("document.getElementById('health').textContent"),
          "healthy",
        );
        for (const kind of ["ok", "other", "error", "dropped"]) {
          const d = await tab.evaluate<string>(
            `document.getElementById('p-${kind}').getAttribute('d')`,
          );
          assert.match(d, /^M[\d.,L]+Z$/, `the ${kind} layer is drawn`);
        }
        assert.equal(
          await tab.evaluate("document.getElementById('y-top').textContent"),
          "10/s",
        );
        // Three seconds of summaries span the chart's shortest width.
        assert.equal(
          await tab.evaluate("document.getElementById('x-left').textContent"),
          "30 s ago",
        );
        fake.push("summary", {
          at: new Date(at + 1000).toISOString(),
          totals: {},
          perSecond: {},
          errors: {},
          health: { ok: false, reason: "journal write failed: <disk full>" },
        });
        await tab.waitFor(
          "document.getElementById('health').textContent === 'unhealthy: journal write failed: <disk full>'",
          "the unhealthy badge",
        );
      },
    );

    await t.step(
      "a group whose recent answers are errors is highlighted",
      async () => {
        fake.push("summary", {
          at: new Date(Date.now() + 2000).toISOString(),
          totals: {},
          perSecond: { BAD_SIGNATURE: 5 },
          errors: { ALPHA: { BAD_SIGNATURE: 7, TOKEN_EXPIRED: 1 } },
          health: { ok: true },
        });
        const alpha = await waitRow(
          tab,
          "ALPHA",
          (r) => r.stuck,
          "highlighted",
        );
        assert.equal(alpha.what, "✗ BAD_SIGNATURE");
        assert.match(alpha.errors, /7 BAD_SIGNATURE1 TOKEN_EXPIRED/);
        const beta = await waitRow(tab, "BETA", () => true, "a row");
        assert.equal(beta.stuck, false);
        // Progress clears it.
        fake.push("group", {
          group: "ALPHA",
          state: 0,
          colour: "RED",
          walks: 2,
          lastActivity: new Date(Date.now() + 3000).toISOString(),
          registration: 20230001,
        });
        await waitRow(
          tab,
          "ALPHA",
          (r) => !r.stuck && r.lit === 0,
          "no longer highlighted",
        );
      },
    );

    await t.step(
      "a dropped stream shows the badge until the page reconnects",
      async () => {
        const before = fake.requests.length;
        fake.dropStreams();
        await tab.waitFor(
          "!document.getElementById('conn').hidden",
          "the disconnected badge",
        );
        await tab.waitFor(
          "document.getElementById('conn').hidden",
          "the reconnection",
        );
        const again = fake.requests.slice(before);
        assert.ok(
          again.includes(`/events?token=${encodeURIComponent(TOKEN)}`),
          again.join(" "),
        );
        // The new stream's hello is the whole picture again.
        await waitRow(tab, "ALPHA", (r) => r.lit === 2, "the hello's state");
      },
    );

    await t.step("every request went to the page's own origin", () => {
      assertOnlyOrigin(tab, fake.origin);
      assert.deepEqual(tab.exceptions, []);
      assert.deepEqual(tab.consoleErrors, []);
    });
  } finally {
    await browser?.close();
    await fake.close();
  }
});

Deno.test({
  name:
    "DASHBOARD_HTML follows the real server started with --http: a UDP walk moves its row",
  ignore: !CHROMIUM,
}, async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "udpjwt_dashboard_" });
  let server: StartedServer | undefined;
  let browser: Chromium | undefined;
  const client = new UdpClient();
  try {
    server = await startServer({
      logDir: `${tmp}/logs`,
      stateDir: `${tmp}/state`,
      args: ["--http", "127.0.0.1:0"],
    });
    const origin = server.http;
    if (origin === undefined) {
      // deno-lint-ignore no-console
      console.log(
        "dashboard_test: real server steps skipped: its start-up summary has no `http:` line",
      );
      await t.step({ name: "the real server's page", ignore: true, fn() {} });
      return;
    }
    const addr = server.addr;
    browser = await Chromium.launch(CHROMIUM!);
    const tab = await browser.newTab();
    await tab.goto(`${origin}/`);

    await t.step(
      "its hello shows a row per loaded key, none started",
      async () => {
        // Every key the server loaded, as /api/status lists them.
        const status = await (await fetch(`${origin}/api/status`)).json();
        const loaded = (status.keys as { group: string; alg: string }[])
          .map(({ group, alg }) => ({ group, alg }));
        assert.ok(GROUPS.every((g) => loaded.some((k) => k.group === g.group)));
        await tab.waitFor(
          `document.querySelectorAll('#rows .row').length === ${loaded.length}`,
          `${loaded.length} rows`,
        );
        assert.deepEqual(
          await tab.evaluate(
            "[...document.querySelectorAll('#rows .row')].map((r) => r.dataset.group)",
          ),
          loaded.map((k) => k.group).sort(),
        );
        for (const { group, alg } of loaded) {
          const row = await waitRow(tab, group, () => true, "a row");
          assert.equal(row.lit, -1, group);
          assert.equal(row.colour, "no request yet", group);
          const key = await tab.evaluate<string>(
            `document.querySelector('[data-group="${group}"] .name .small').textContent`,
          );
          assert.match(key, new RegExp(`^${alg} \\S{10}…$`), group);
        }
        await tab.waitFor(
          "document.getElementById('conn').hidden",
          "the stream open",
        );
        await tab.waitFor(
          "document.getElementById('health').textContent === 'healthy'",
          "a summary saying healthy",
        );
      },
    );

    await tab.evaluate("window.kept = 'this page'");
    const navigations = tab.navigations;
    assert.equal(navigations, 1, "the load is counted");

    await t.step("a group's first request shows it at RED", async () => {
      await step(client, addr, "CHEDIMON", 0, 1);
      const row = await waitRow(tab, "CHEDIMON", (r) => r.lit === 0, "at RED");
      assert.equal(row.colour, "0 RED");
      assert.equal(row.what, "started at RED");
      assert.equal(row.walks, "0");
    });

    await t.step("a walk over UDP moves the row without a reload", async () => {
      let row: RowView;
      for (let n = 1; n <= 3; n++) {
        await step(client, addr, "CHEDIMON", n, n + 1);
      }
      row = await waitRow(tab, "CHEDIMON", (r) => r.lit === 3, "at GREEN");
      assert.equal(row.colour, "3 GREEN");
      assert.match(row.when, /^[0-5] s ago$/);
      for (let n = 4; n <= 6; n++) {
        await step(client, addr, "CHEDIMON", n, (n + 1) % 7);
      }
      row = await waitRow(tab, "CHEDIMON", (r) => r.walks === "1", "a walk");
      assert.equal(row.lit, 6);
      assert.equal(row.what, "walk 1 completed");
      const others = await waitRow(tab, "HEARTBEAT", () => true, "a row");
      assert.equal(others.lit, -1);
      await tab.waitFor(
        "document.getElementById('t-ok').textContent === '7'",
        "7 ok answers in the totals",
      );
      assert.equal(await tab.evaluate("window.kept"), "this page");
      assert.equal(tab.navigations, navigations);
    });

    await t.step("a group sending expired tokens is highlighted", async () => {
      const now = nowSec();
      const expired = await token("SEGSANH", 0, {
        iat: now - 3600,
        exp: now - 3000,
      });
      await client.send(addr, expired);
      await checkError(await client.receive(), "TOKEN_EXPIRED", "SEGSANH");
      const row = await waitRow(
        tab,
        "SEGSANH",
        (r) => r.stuck,
        "highlighted",
      );
      assert.match(row.errors, /^1 TOKEN_EXPIRED$/);
      assert.equal(row.what, "✗ TOKEN_EXPIRED");
      assert.equal(
        (await waitRow(tab, "CHEDIMON", () => true, "a row")).stuck,
        false,
      );
    });

    await t.step("every request went to the server's own origin", () => {
      assertOnlyOrigin(tab, origin);
      assert.deepEqual(tab.exceptions, []);
      assert.deepEqual(tab.consoleErrors, []);
      assert.deepEqual(tab.dialogs, []);
    });
  } finally {
    await browser?.close();
    await client.close();
    await server?.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});
