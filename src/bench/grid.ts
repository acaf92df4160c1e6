/**
 * `node dist/bench/grid.js [--rounds N] [--grid G] [--dpr R] [--compare APP_DIR] [--json]` (part of
 * `npm run bench`): how long the explorer's box grid (G x G decodes, default 10 x 10) takes in headless
 * Chromium, its model worker on the wasm backend with threads. A run of the study's model (weights
 * after one step on random bytes: the time does not depend on what the weights learnt) is served by
 * the explorer's own server; the page is driven like a person (a box dragged on the plane), then the
 * grid is decoded again `rounds` times after three warm-ups. Two figures per decode: the worker's
 * (the decode call, as the grid's caption shows it) and the page's (from the request to the grid
 * drawn), on a screen of `--dpr` device pixels per CSS pixel (default 1). `--compare DIR` serves another build of the app (e.g. an older dist/web/app) beside this one,
 * alternating decodes between the two so that a busy machine hurts both alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import '../node-backends.js';
import { CHROMIUM, intArg, launchChromium, median } from './util.js';
import { MNIST } from '../lab/data/datasets.js';
import { IMAGE_PIXELS } from '../lab/data/image.js';
import { Rng } from '../engine/rng.js';
import { train } from '../lab/train/train.js';
import { startServer, type WebServer } from '../web/server.js';

const here = path.dirname(fileURLToPath(import.meta.url));


/** A split of random bytes (the bench needs weights of the right shape, not good ones). */
function randomSplit(n: number, seed: number): { images: Uint8Array; labels: Uint8Array; n: number; rows: number; cols: number } {
  const r = new Rng(seed);
  const images = new Uint8Array(n * IMAGE_PIXELS);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(r.random() * 256);
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10), n, rows: MNIST.rows, cols: MNIST.cols };
}

/** A run folder `bench` in a new temporary runs folder: the study's model after one step. */
async function makeRun(): Promise<string> {
  const runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-grid-bench-'));
  const data = { descriptor: MNIST, dir: runsDir, source: 'data-dir' as const, train: randomSplit(256, 1), test: randomSplit(256, 2) };
  await train({ maxSteps: 1, batchSize: 32, backend: 'wasm', threads: 1, snapshotEvery: 0 }, { data, out: path.join(runsDir, 'bench'), testLimit: 256, trainLatents: 64 });
  return runsDir;
}

export interface GridDecode { workerMs: number; pageMs: number }

/** Opens the run and drags a box over the middle of the plane (Box mode): the first grid. */
async function openAndBox(page: Page, url: string, g: number): Promise<{ backend: string; isolated: boolean; status: string }> {
  await page.goto(`${url}?run=bench`);
  await page.waitForSelector('body[data-model="ready"][data-run="bench"]', { timeout: 60_000 });
  await page.fill('#grid-size', String(g));
  await page.check('input[name="mode"][value="box"]');
  const b = (await page.locator('#overlay').boundingBox())!;
  await page.mouse.move(b.x + b.width * 0.3, b.y + b.height * 0.3);
  await page.mouse.down();
  await page.mouse.move(b.x + b.width * 0.6, b.y + b.height * 0.6, { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction((n) => document.getElementById('grid')!.dataset.cells === String(n), g * g, { timeout: 60_000 });
  return page.evaluate(() => ({ backend: document.body.dataset.backend ?? '', isolated: crossOriginIsolated, status: document.getElementById('engine-status')!.textContent ?? '' }));
}

/** One more decode of the grid: the size field's change event, timed to the caption written after drawing. */
function decodeOnce(page: Page): Promise<GridDecode> {
  return page.evaluate(() => new Promise<GridDecode>((resolve) => {
    const cap = document.getElementById('grid-caption')!;
    const t0 = performance.now();
    const obs = new MutationObserver(() => {
      obs.disconnect();
      const pageMs = performance.now() - t0;
      const m = /\(([\d.]+) ms/.exec(cap.textContent ?? '');
      resolve({ workerMs: m ? Number(m[1]) : NaN, pageMs });
    });
    obs.observe(cap, { childList: true, characterData: true, subtree: true });
    document.getElementById('grid-size')!.dispatchEvent(new Event('change'));
  }));
}

export interface GridBench { app: string; backend: string; isolated: boolean; status: string; decodes: GridDecode[]; workerMs: number; pageMs: number }

export async function benchGrid(opts: { rounds: number; grid: number; dpr: number; compare?: string }): Promise<GridBench[] | { skipped: string }> {
  const { existsSync } = await import('node:fs');
  if (!existsSync(CHROMIUM)) return { skipped: `no Chromium at ${CHROMIUM}` };
  const own = path.join(here, '..', 'web', 'app');
  if (!existsSync(path.join(own, 'main.js'))) return { skipped: 'dist/web/app/ not built (npm run build:web)' };
  const runsDir = await makeRun();
  const apps = [own, ...(opts.compare ? [path.resolve(opts.compare)] : [])];
  const servers: WebServer[] = [];
  const browser = await launchChromium();
  try {
    const pages: Page[] = [];
    const out: GridBench[] = [];
    for (const app of apps) {
      const srv = await startServer({ runsDir, port: 0, appDir: app });
      servers.push(srv);
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: opts.dpr });
      const info = await openAndBox(page, srv.url, opts.grid);
      pages.push(page);
      out.push({ app, ...info, decodes: [], workerMs: NaN, pageMs: NaN });
    }
    for (let w = 0; w < 3; w++) for (const p of pages) await decodeOnce(p);
    for (let r = 0; r < opts.rounds; r++) for (let i = 0; i < pages.length; i++) out[i].decodes.push(await decodeOnce(pages[i]));
    for (const o of out) { o.workerMs = median(o.decodes.map((d) => d.workerMs)); o.pageMs = median(o.decodes.map((d) => d.pageMs)); }
    return out;
  } finally {
    await browser.close();
    for (const s of servers) await s.close();
    rmSync(runsDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ci = process.argv.indexOf('--compare');
  const opts = { rounds: intArg('--rounds', 7), grid: intArg('--grid', 10), dpr: intArg('--dpr', 1), compare: ci >= 0 ? process.argv[ci + 1] : undefined };
  const r = await benchGrid(opts);
  const log = (l: string): void => { process.stderr.write(`${l}\n`); };
  if ('skipped' in r) log(`explorer grid: skipped (${r.skipped})`);
  else {
    log(`explorer grid: ${opts.grid}x${opts.grid} decodes in headless Chromium at ${opts.dpr}x pixel ratio (median of ${opts.rounds} after 3 warm-ups${r.length > 1 ? ', alternating between the builds' : ''}):`);
    for (const b of r) {
      log(`  ${b.app}: ${b.status || b.backend}${b.isolated ? '' : ' (NOT cross-origin isolated)'}`);
      log(`    worker ${b.workerMs.toFixed(1)} ms, page (request to grid drawn) ${b.pageMs.toFixed(1)} ms   (page: ${b.decodes.map((d) => d.pageMs.toFixed(0)).join(', ')})`);
    }
  }
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(r)}\n`);
}
