// Headless Chromium on the page (playwright-core, Debian's /usr/bin/chromium; WebGPU on
// SwiftShader): train, evaluate, adapt to dropped images, download the snapshot, load one back,
// screenshot. Used by web.test.ts and by `npm run web -- --screenshot`.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Flags that give headless Chromium WebGPU (SwiftShader) on a machine without a GPU or a display. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--enable-unsafe-webgpu",
  // No limit flags: Chromium's tiered adapter limits are what a visitor's browser reports, and the
  // generated kernels fit WebGPU's defaults (8 storage buffers per kernel).
] as const;

/** The page's window.webState (web/page/main.ts), as the driver reads it. */
export interface PageState {
  readonly phase: string;
  readonly adapter?: { description: string; adapterClass: string; subgroupMinSize?: number; variants: Record<string, { subgroup: number; portable: number }> };
  readonly models: Record<string, { records: { iteration: number; losses: Record<string, number>; itsPerS: number }[]; itsPerS: number; miou?: number }>;
  readonly own?: { images: number; done: boolean };
  readonly loaded?: { program: string; iteration: number; miou: number };
  readonly errors: readonly string[];
}

export interface Session {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console messages of type error, and uncaught page errors. */
  readonly consoleErrors: string[];
  readonly close: () => Promise<void>;
}

/** A fresh Chromium (own --user-data-dir) with one page; `initScript` runs before the page's scripts. */
export async function openSession(initScript?: string): Promise<Session> {
  const profile = mkdtempSync(join(tmpdir(), "adaptsegnet-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    acceptDownloads: true,
    viewport: { width: 1150, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  if (initScript !== undefined) await context.addInitScript(initScript);
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
  return {
    browser: context.browser()!,
    context,
    page,
    consoleErrors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const pageState = (page: Page): Promise<PageState> => page.evaluate(() => (window as unknown as { webState: PageState }).webState);

/** Waits until the page's phase is one of `phases` (or failed), polling its state. */
export async function waitForPhase(page: Page, phases: readonly string[], timeoutMs: number): Promise<PageState> {
  await page.waitForFunction((ps) => {
    const s = (window as unknown as { webState?: PageState }).webState;
    return s !== undefined && (ps.includes(s.phase) || s.phase === "failed");
  }, phases, { timeout: timeoutMs, polling: 250 });
  return pageState(page);
}

export interface RunOptions {
  readonly url: string;
  readonly iterations: number;
  /** Files dropped as the user's own target images. */
  readonly ownImages: readonly string[];
  /** A Node snapshot to load back into the page. */
  readonly nodeSnapshot?: string;
  /** Where the downloaded snapshot is saved. */
  readonly downloadTo: string;
  readonly screenshot?: string;
  readonly timeoutMs: number;
}

export interface RunResult {
  readonly trained: PageState;
  readonly afterOwn: PageState;
  readonly final: PageState;
  readonly snapshot: string;
  readonly consoleErrors: readonly string[];
  /** Text of the page's error box (empty when none). */
  readonly errorText: string;
}

/** The whole page flow, as a visitor would click it. */
export async function runPage(o: RunOptions): Promise<RunResult> {
  const s = await openSession();
  try {
    const { page } = s;
    await page.goto(`${o.url}?iterations=${o.iterations}`);
    const ready = await waitForPhase(page, ["ready"], 120_000);
    if (ready.phase !== "ready") throw new Error(`the page did not get ready: ${ready.errors.join("; ")}`);
    await page.click("#train");
    const trained = await waitForPhase(page, ["trained"], o.timeoutMs);
    if (trained.phase !== "trained") throw new Error(`training failed on the page: ${trained.errors.join("; ")}`);
    await page.setInputFiles("#own-images", [...o.ownImages]);
    await page.waitForFunction(() => (window as unknown as { webState: PageState }).webState.own !== undefined, undefined, { timeout: 30_000 });
    await page.click("#adapt-own");
    await page.waitForFunction(() => (window as unknown as { webState: PageState }).webState.own?.done === true || (window as unknown as { webState: PageState }).webState.phase === "failed", undefined, { timeout: o.timeoutMs, polling: 250 });
    const afterOwn = await pageState(page);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const snapshot = join(o.downloadTo, download.suggestedFilename());
    await download.saveAs(snapshot);
    if (o.nodeSnapshot !== undefined && existsSync(o.nodeSnapshot)) {
      await page.setInputFiles("#load-snapshot", o.nodeSnapshot);
      await page.waitForFunction(() => (window as unknown as { webState: PageState }).webState.loaded !== undefined || (window as unknown as { webState: PageState }).webState.errors.length > 0, undefined, { timeout: 60_000 });
    }
    if (o.screenshot !== undefined) await page.screenshot({ path: o.screenshot, fullPage: true });
    const final = await pageState(page);
    const errorText = (await page.textContent("#error")) ?? "";
    return { trained, afterOwn, final, snapshot, consoleErrors: [...s.consoleErrors], errorText };
  } finally {
    await s.close();
  }
}
