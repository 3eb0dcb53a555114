/**
 * Open `report.html` in headless Chromium (Debian's `chromium`, driven by playwright-core),
 * take a full-page screenshot (and, if asked, one of the first screen), and report what a reader's browser would see: console
 * errors, any request for something outside the file (the page must open offline), and the
 * data marks drawn in each chart.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { UsageError } from "../core/errors.ts";

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";
/** Environment variable naming another Chromium binary (default {@linkcode CHROMIUM_PATH}). */
export const CHROMIUM_ENV = "PARATRAIN_CHROMIUM";
/** How to install it (as root). */
export const CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium";
/** Flags that keep a headless run quiet, offline and reproducible. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** Viewport of the screenshot; the page is captured at full height. */
const VIEWPORT = { width: 1280, height: 900 };
/** Deadline for starting the browser and loading the page. */
const TIMEOUT_MS = 60_000;

/** One chart as the browser drew it. */
export interface RenderedChart {
  id: string;
  width: number;
  height: number;
  /** Data marks drawn (lines, points, bars, rules), axes and legends excluded. */
  marks: number;
}

/** What {@linkcode screenshotReport} saw. */
export interface ReportCheck {
  /** Console errors and uncaught exceptions. */
  consoleErrors: string[];
  /** URLs the page asked for that are not the file itself (blocked). */
  externalRequests: string[];
  charts: RenderedChart[];
}

/** Options for {@linkcode screenshotReport}. */
export interface ScreenshotOptions {
  /** The Chromium binary (default {@linkcode chromiumPath}). */
  executablePath?: string;
  /** Also save what the first screen shows (the viewport, 1280×900), here. */
  firstScreenPath?: string;
}

/**
 * The Chromium binary to drive: `$PARATRAIN_CHROMIUM` when set, else Debian's.
 *
 * @returns a path (which may not exist)
 * @example
 * ```ts
 * import { existsSync } from "node:fs";
 * const canScreenshot = existsSync(chromiumPath());
 * ```
 */
export function chromiumPath(): string {
  return Deno.env.get(CHROMIUM_ENV) || CHROMIUM_PATH;
}

/**
 * Screenshot `htmlPath` to `pngPath` (full page) in headless Chromium, with every request
 * outside the file blocked and recorded.
 *
 * @param htmlPath the report page
 * @param pngPath where the PNG goes
 * @param options see {@linkcode ScreenshotOptions}
 * @returns console errors, blocked requests and the charts drawn
 * @throws UsageError when Chromium is not installed, naming the install command
 * @example
 * ```ts
 * const check = await screenshotReport("results/latest/report.html", "results/latest/report.png");
 * if (check.consoleErrors.length) console.error(check.consoleErrors.join("\n"));
 * ```
 */
export async function screenshotReport(
  htmlPath: string,
  pngPath: string,
  options: ScreenshotOptions = {},
): Promise<ReportCheck> {
  const { executablePath = chromiumPath(), firstScreenPath } = options;
  if (!existsSync(executablePath)) {
    throw new UsageError(
      `Cannot screenshot the report: Chromium not found at ${executablePath}; install it with \`${CHROMIUM_INSTALL}\` or set ${CHROMIUM_ENV} to a Chromium binary`,
    );
  }
  const url = pathToFileURL(resolve(htmlPath)).href;
  // Loaded on first use: `report` without --screenshot should not pay for it.
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath,
    args: CHROMIUM_ARGS,
    timeout: TIMEOUT_MS,
  });
  try {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const consoleErrors: string[] = [];
    const externalRequests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    await page.route("**/*", (route) => {
      const requested = route.request().url();
      if (requested === url) return route.continue();
      externalRequests.push(requested);
      return route.abort();
    });
    await page.goto(url, { waitUntil: "load", timeout: TIMEOUT_MS });
    const charts = await page.$$eval("svg[id^='chart-']", (svgs) =>
      svgs.map((svg) => {
        const box = svg.getBoundingClientRect();
        return {
          id: svg.id,
          width: box.width,
          height: box.height,
          marks: svg.querySelectorAll("g.role-mark > *").length,
        };
      }));
    await page.screenshot({ path: pngPath, fullPage: true });
    if (firstScreenPath) await page.screenshot({ path: firstScreenPath, fullPage: false });
    return { consoleErrors, externalRequests, charts };
  } finally {
    await browser.close();
  }
}
