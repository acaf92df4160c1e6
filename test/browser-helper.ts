/**
 * One way for the browser tests to start Debian's Chromium (test/requirements.ts names it) and to
 * collect the page's errors, which each test then asserts empty.
 */
import path from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { CHROMIUM } from './requirements.js';

/** Headless, no sandbox, no GPU, no background traffic (the machine has no internet). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * A page with its uncaught exceptions and console errors pushed into `errors`; `ignore` drops
 * console errors the test expects (a favicon's 404, say).
 */
export async function newPage(browser: Browser, opts: BrowserContextOptions, errors: string[], ignore: (text: string) => boolean = () => false): Promise<Page> {
  const page = await browser.newPage(opts);
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !ignore(m.text())) errors.push(m.text()); });
  return page;
}

/** The two sizes every browser test looks at: a desktop window and a 390 px phone. */
export const DESKTOP = { width: 1366, height: 900 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/**
 * One Chromium and one page (desktop-sized unless `opts` says otherwise) for the tests of a describe
 * block: launched before them, closed after. `ready` hands both over (and may prepare the page); the
 * returned array collects the page's errors.
 */
export function usePage(ready: (browser: Browser, page: Page) => void | Promise<void>, opts: BrowserContextOptions = {}): string[] {
  const errors: string[] = [];
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
    await ready(browser, await newPage(browser, { viewport: DESKTOP, ...opts }, errors));
  }, 120_000);
  afterAll(async () => { await browser?.close(); });
  return errors;
}

/**
 * Screenshots of the page as it is at DESKTOP (`<name>-1366.png`) and at PHONE (`<name>-390.png`) in
 * `dir`; returns by how many pixels the phone layout overflows sideways (0 or less: it fits). The page
 * is left at DESKTOP.
 */
export async function shootBothSizes(page: Page, dir: string, name: string, settleMs = 300): Promise<number> {
  await page.screenshot({ path: path.join(dir, `${name}-1366.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(settleMs);
  await page.screenshot({ path: path.join(dir, `${name}-390.png`), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize(DESKTOP);
  return overflow;
}
