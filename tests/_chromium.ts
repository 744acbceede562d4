/**
 * Headless Chromium for the dashboard's test and screenshot, driven by
 * puppeteer-core (`npm:puppeteer-core`, pinned in deno.json; it downloads no
 * browser: Debian's `chromium` package is used).
 *
 * Why the browser is started here rather than by `puppeteer.launch()`:
 * launch() works under Deno with `--allow-env`, but the test task grants no
 * env access, and puppeteer-core's Node entry point reads the environment
 * as soon as it is imported (`ws` reads `WS_NO_BUFFER_UTIL`: "NotCapable:
 * Requires env access to "WS_NO_BUFFER_UTIL""), then `TMPDIR`,
 * `PUPPETEER_*` and, to spawn the browser, the whole environment. So the
 * browser is spawned with `Deno.Command` and puppeteer's browser build
 * (`puppeteer-core-browser.js`, no Node built-ins) connects to it over
 * Deno's own `WebSocket`: only `--allow-run` and `--allow-net=127.0.0.1`
 * are needed.
 *
 * One browser per test, a fresh temporary profile, every protocol command
 * bounded by a timeout, and {@linkcode Chromium.close} (called in `finally`)
 * ends the browser, killing it if it does not exit, and removes the profile.
 *
 * @module
 */

import puppeteer, {
  type Browser,
  type ConnectionTransport,
  type Page,
} from "puppeteer-core/internal/puppeteer-core-browser.js";

/** Where Debian, Ubuntu and Chrome's own packages put the browser. */
const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/**
 * Flags for a headless browser on a closed network: no sandbox (CI runs as
 * root), and none of Chromium's own background connections (update checks,
 * sync, field trials), which this network refuses.
 */
const FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--hide-scrollbars",
  "--mute-audio",
];

/** How long the browser may take to start, and each protocol command. */
const START_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 10_000;
/** How long the browser may take to exit after `Browser.close`. */
const EXIT_TIMEOUT_MS = 5_000;

/**
 * The Chromium executable: `UDPJWT_CHROMIUM` when set and readable (with
 * `--allow-env`), else the first of the usual paths that exists.
 *
 * @returns Its path, or undefined when there is none.
 */
export function findChromium(): string | undefined {
  const variable = "UDPJWT_CHROMIUM";
  const { state } = Deno.permissions.querySync({ name: "env", variable });
  const chosen = state === "granted" ? Deno.env.get(variable) : undefined;
  for (const path of chosen ? [chosen] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there: try the next one.
    }
  }
  return undefined;
}

/** Rejects after `ms` with `message`, unless `p` settles first. */
async function timeout<T>(
  p: Promise<T>,
  ms: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** puppeteer's transport over Deno's `WebSocket`, once it is open. */
async function openTransport(url: string): Promise<ConnectionTransport> {
  const ws = new WebSocket(url);
  await timeout(
    new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`Cannot connect to ${url}`));
    }),
    COMMAND_TIMEOUT_MS,
    `${url} did not accept the connection`,
  );
  const transport: ConnectionTransport = {
    send: (message) => ws.send(message),
    close: () => ws.close(),
  };
  ws.onmessage = (e) => transport.onmessage?.(String(e.data));
  ws.onclose = () => transport.onclose?.();
  return transport;
}

/** One page, with what it did recorded from puppeteer's events. */
export class Tab {
  /** The puppeteer page. */
  readonly page: Page;
  /** The URL of every request the page made, in order. */
  readonly requests: string[] = [];
  /** The message of every `alert`, `confirm` or `prompt` (dismissed). */
  readonly dialogs: string[] = [];
  /** Uncaught exceptions in the page. */
  readonly exceptions: string[] = [];
  /**
   * Console errors: the page's own, a failed load, a blocked request or a
   * Content-Security-Policy violation.
   */
  readonly consoleErrors: string[] = [];
  /** Navigations of the main frame (loads and reloads). */
  navigations = 0;

  /** Use {@linkcode Chromium.newTab}. */
  constructor(page: Page) {
    this.page = page;
    page.on("request", (r) => this.requests.push(r.url()));
    page.on("dialog", (d) => {
      this.dialogs.push(d.message());
      d.dismiss().catch(() => {});
    });
    page.on("pageerror", (e) => this.exceptions.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") this.consoleErrors.push(m.text());
    });
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) this.navigations++;
    });
  }

  /** Loads `url` and waits for its `load` event. */
  async goto(url: string): Promise<void> {
    const r = await this.page.goto(url, { timeout: COMMAND_TIMEOUT_MS });
    if (r && !r.ok()) throw new Error(`Cannot load ${url}: ${r.status()}`);
  }

  /**
   * Evaluates a JavaScript expression in the page (awaiting a promise).
   *
   * @returns Its value, as JSON.
   */
  async evaluate<T>(expression: string): Promise<T> {
    return await this.page.evaluate(expression) as T;
  }

  /**
   * Waits until `expression` is truthy in the page.
   *
   * @param what What is awaited, for the failure message.
   * @returns Its first truthy value.
   * @throws {Error} After `timeoutMs`, with the expression's last value.
   */
  async waitFor<T>(
    expression: string,
    what: string,
    timeoutMs = 5_000,
  ): Promise<T> {
    try {
      const handle = await this.page.waitForFunction(expression, {
        timeout: timeoutMs,
        polling: 50,
      });
      return await handle.jsonValue() as T;
    } catch (e) {
      const last = await this.evaluate(expression).catch(String);
      throw new Error(
        `Timed out waiting for ${what} (${expression} = ${
          JSON.stringify(last)
        })`,
        { cause: e },
      );
    }
  }

  /** The viewport as a PNG. */
  async screenshot(): Promise<Uint8Array> {
    return await this.page.screenshot({ type: "png" });
  }
}

/** Options of {@linkcode Chromium.launch}. */
export interface LaunchOptions {
  /** The viewport's width in CSS pixels. @default {1280} */
  width?: number;
  /** The viewport's height in CSS pixels. @default {800} */
  height?: number;
  /** `prefers-color-scheme` to emulate. @default {"light"} */
  colorScheme?: "light" | "dark";
}

/** A headless Chromium with a temporary profile. */
export class Chromium {
  readonly #child: Deno.ChildProcess;
  readonly #browser: Browser;
  readonly #profile: string;
  readonly #reading: Promise<void>;
  readonly #colorScheme: "light" | "dark";
  #closing: Promise<void> | undefined;

  /** Use {@linkcode Chromium.launch}. */
  constructor(
    child: Deno.ChildProcess,
    browser: Browser,
    profile: string,
    reading: Promise<void>,
    colorScheme: "light" | "dark",
  ) {
    this.#child = child;
    this.#browser = browser;
    this.#profile = profile;
    this.#reading = reading;
    this.#colorScheme = colorScheme;
  }

  /**
   * Starts `executable` headless on a fresh profile, with its DevTools port
   * on 127.0.0.1 (chosen by the browser), and connects puppeteer to it.
   *
   * @param executable The browser, from {@linkcode findChromium}.
   * @param options The viewport and colour scheme.
   * @returns The browser, to close in `finally`.
   * @throws {Error} When it exits or does not listen within 20 s (it is
   * killed and its profile removed then).
   */
  static async launch(
    executable: string,
    options?: LaunchOptions,
  ): Promise<Chromium> {
    const { width = 1280, height = 800, colorScheme = "light" } = options ??
      {};
    const profile = await Deno.makeTempDir({ prefix: "udpjwt_chromium_" });
    const child = new Deno.Command(executable, {
      args: [
        ...FLAGS,
        `--user-data-dir=${profile}`,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        `--window-size=${width},${height}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // The browser prints its DevTools address on stderr; keep reading it
    // all along so a chatty browser never blocks on a full pipe.
    let text = "";
    let found: (url: string) => void = () => {};
    const address = new Promise<string>((resolve) => found = resolve);
    const reading = (async () => {
      for await (
        const chunk of child.stderr.pipeThrough(new TextDecoderStream())
      ) {
        text = (text + chunk).slice(-20_000);
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
        if (m) found(m[1]!);
      }
    })();
    try {
      const url = await timeout(
        Promise.race([
          address,
          child.status.then((s) => {
            throw new Error(`${executable} exited with code ${s.code}`);
          }),
        ]),
        START_TIMEOUT_MS,
        `${executable} did not open its DevTools port in time`,
      );
      const browser = await puppeteer.connect({
        transport: await openTransport(url),
        defaultViewport: { width, height },
        protocolTimeout: COMMAND_TIMEOUT_MS,
      });
      return new Chromium(child, browser, profile, reading, colorScheme);
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
      await reading.catch(() => {});
      await removeProfile(profile);
      throw new Error(
        `${e instanceof Error ? e.message : e}\nstderr:\n${text}`,
      );
    }
  }

  /**
   * Opens a blank page with the viewport and colour scheme of the launch,
   * recording its requests, dialogs and exceptions.
   */
  async newTab(): Promise<Tab> {
    const page = await this.#browser.newPage();
    const tab = new Tab(page);
    await page.emulateMediaFeatures([
      { name: "prefers-color-scheme", value: this.#colorScheme },
    ]);
    return tab;
  }

  /**
   * Closes the browser (asking first, killing after 5 s) and removes its
   * profile. Later calls wait for the first one.
   */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      await timeout(this.#browser.close(), EXIT_TIMEOUT_MS, "").catch(
        () => {},
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#child.status,
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            try {
              this.#child.kill("SIGKILL");
            } catch {
              // Exited meanwhile.
            }
            resolve();
          }, EXIT_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      await this.#child.status;
      await this.#reading.catch(() => {});
      await removeProfile(this.#profile);
    })();
  }
}

/** Removes a profile; the browser's helpers may still be letting go of it. */
async function removeProfile(dir: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      if (attempt >= 10) throw e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
