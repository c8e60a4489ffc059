// Headless Chromium for dashboard tests (Debian's chromium + playwright-core):
// launch, log in, screenshot, and watch every response for secret strings.
// Works against the fake management API and the real gateway alike.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.GRANTPOOL_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = resolve('test-output/screenshots');

/** Why browser tests must be skipped, or null when Chromium is available. */
export function browserSkipReason(): string | null {
  return existsSync(CHROMIUM_PATH) ? null : `Chromium is not installed at ${CHROMIUM_PATH} (apt-get install -y chromium)`;
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** `timeoutMs`: the default timeout of every action and wait; `pageErrors`: where uncaught page errors are collected (`page error: …`). */
export async function launchBrowser(
  opts: { viewport?: { width: number; height: number }; colorScheme?: 'light' | 'dark'; timeoutMs?: number; pageErrors?: string[] } = {},
): Promise<BrowserSession> {
  const { chromium } = await import('playwright-core');
  const userDataDir = mkdtempSync(join(tmpdir(), 'grantpool-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: opts.viewport ?? { width: 1366, height: 900 },
    colorScheme: opts.colorScheme ?? 'light',
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  if (opts.timeoutMs !== undefined) context.setDefaultTimeout(opts.timeoutMs);
  const pageErrors = opts.pageErrors;
  if (pageErrors) page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Opens the dashboard, logs in with the admin token and waits for the app to load. */
export async function loginDashboard(page: Page, baseUrl: string, adminToken: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('Admin token').fill(adminToken);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForSelector('#nav');
  await page.waitForFunction(() => !document.querySelector('main .loading'));
}

/** Saves a full-page screenshot as test-output/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Records the body of every response the page (and its popups) receives,
 * and every server-sent event message; `leaks(secrets)` lists where a secret appeared.
 */
export async function watchResponses(context: BrowserContext, page: Page) {
  const bodies: { url: string; text: string }[] = [];
  const pending: Promise<void>[] = [];
  const record = (p: Page) => {
    p.on('response', (response) => {
      const type = response.headers()['content-type'] ?? '';
      if (type.includes('text/event-stream')) return;
      pending.push(response.text().then((text) => { bodies.push({ url: response.url(), text }); }, () => {}));
    });
  };
  record(page);
  context.on('page', record);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.eventSourceMessageReceived', (ev: { eventName: string; data: string }) => {
    bodies.push({ url: `event-stream:${ev.eventName}`, text: ev.data });
  });
  return {
    bodies,
    /** Where each secret appeared (responses, events and the pages' current DOM). */
    async leaks(secrets: string[]): Promise<string[]> {
      await Promise.all(pending);
      const found: string[] = [];
      const pages = context.pages();
      const doms = await Promise.all(pages.map(async (p) => ({ url: `dom:${p.url()}`, text: await p.content().catch(() => '') })));
      for (const { url, text } of [...bodies, ...doms]) {
        for (const s of secrets) if (s && text.includes(s)) found.push(`${url} contains a secret (${s.slice(0, 4)}…)`);
      }
      return found;
    },
  };
}
