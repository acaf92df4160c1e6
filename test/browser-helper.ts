/**
 * One way for the browser tests to start Debian's Chromium (test/requirements.ts names it) and to
 * collect the page's errors, which each test then asserts empty.
 */
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
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
