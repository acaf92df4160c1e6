/**
 * The explorer, second edition (issue 16 items 6-9 and 11-13), end to end in Debian's Chromium
 * (playwright-core): progress in words, charts that plot like with like, broken run files named in
 * one line, a "what is this" line for every view, a phone layout driven by touch (screenshots in
 * test-output/web/), and live training: the page decodes with the weights the trainer publishes,
 * Stop keeps a resumable run.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import '../src/node-backends.js';
import { STUDY_LATENT_MAP } from '../src/lab/run/config.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/datasets.js';
import { train } from '../src/lab/train/train.js';
import { progressText } from '../src/web/app/progress.js';
import { startServer, type WebServer } from '../src/web/server.js';
import { MNIST_DIR, ROOT } from './helpers.js';
import { need } from './requirements.js';
import { PHONE, usePage } from './browser-helper.js';

const HAVE_CHROMIUM = need('chromium', 'web-live.test');
const SHOTS = path.join(ROOT, 'test-output', 'web');

let runsDir = '';
let srv: WebServer;
let data: LoadedDataset;
/** 640 training images: 20 steps of 32 make an epoch, so a 40-step run has two test losses. */
let small: LoadedDataset;
const quick = { batchSize: 32, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 5, snapshotEvery: 10, epochs: 2 } as const;

beforeAll(async () => {
  const b = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'build-web.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`build-web failed: ${b.stderr}`);
  data = await loadDataset('mnist', { dataDir: MNIST_DIR });
  const n = 640, px = data.train.rows * data.train.cols;
  small = { ...data, train: { ...data.train, n, images: data.train.images.subarray(0, n * px), labels: data.train.labels.subarray(0, n) } };
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-web-live-'));
  const common = { data: small, testLimit: 300, trainLatents: 300 };
  await train({ ...quick }, { ...common, out: path.join(runsDir, 'plain') });
  await train({ ...quick, supervised: STUDY_LATENT_MAP }, { ...common, out: path.join(runsDir, 'sup') });
  // broken runs: a config.json that is not JSON, a metrics line that is not JSON, a cut checkpoint
  for (const bad of ['bad-config', 'bad-metrics', 'bad-checkpoint']) cpSync(path.join(runsDir, 'plain'), path.join(runsDir, bad), { recursive: true });
  writeFileSync(path.join(runsDir, 'bad-config', 'config.json'), '{"model": "bn", "latent": 2,');
  const lines = readFileSync(path.join(runsDir, 'plain', 'metrics.jsonl'), 'utf8').split('\n');
  lines.splice(2, 0, '{"step": 12, "loss": 0.5');
  writeFileSync(path.join(runsDir, 'bad-metrics', 'metrics.jsonl'), lines.join('\n'));
  truncateSync(path.join(runsDir, 'bad-checkpoint', 'checkpoint.safetensors'), 100);
  srv = await startServer({ runsDir, port: 0, dataDir: MNIST_DIR });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => { await srv?.close(); });

describe('progress in words (item 8)', () => {
  it('says step N of M and the epoch, never a step past the total', () => {
    expect(progressText({ status: 'training', step: 140, totalSteps: 938, perEpoch: 938 })).toBe('training: step 140 of 938 (epoch 1 of 1)');
    expect(progressText({ status: 'training', step: 1500, totalSteps: 2814, perEpoch: 938 })).toBe('training: step 1500 of 2814 (epoch 2 of 3)');
    expect(progressText({ status: 'training', step: 938, totalSteps: 2814, perEpoch: 938 })).toMatch(/\(epoch 1 of 3\)$/);
    expect(progressText({ status: 'stopped', step: 140, totalSteps: 938, perEpoch: 938 })).toMatch(/^stopped at step 140 of 938 \(epoch 1 of 1\)/);
    // a total smaller than the step (a stale plan) is never shown as "140 of 100"
    const odd = progressText({ status: 'training', step: 140, totalSteps: 100, perEpoch: 50 });
    expect(odd).not.toMatch(/140 of 100/);
    expect(odd).toBe('training: step 140 of 140 (epoch 3 of 3)');
    expect(progressText({ status: 'done', step: 40, totalSteps: 40, perEpoch: 20 })).toBe('finished: 40 steps');
    expect(progressText({ status: 'training', step: null, totalSteps: 40, perEpoch: 20 })).toMatch(/waiting for the first logged step/);
  });
});

describe('server: broken run files (item 11)', () => {
  const get = async (p: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(new URL(p, srv.url));
    return { status: r.status, body: await r.json() as Record<string, unknown> };
  };
  it('names the file and what is wrong, one line each, in the list and in the run', async () => {
    const { body } = await get('/api/runs');
    const runs = body.runs as { name: string; problems?: string[] }[];
    const by = (n: string) => runs.find((r) => r.name === n);
    expect(by('plain')?.problems ?? []).toEqual([]);
    expect(by('bad-config')?.problems).toEqual([expect.stringMatching(/^config\.json: .*JSON/)]);
    const m = await get('/api/runs/bad-metrics');
    expect(m.status).toBe(200);
    expect(m.body.problems).toEqual([expect.stringMatching(/^metrics\.jsonl: line 3\b.*not JSON/)]);
    const c = await get('/api/runs/bad-checkpoint');
    expect(c.body.problems).toEqual([expect.stringMatching(/^checkpoint\.safetensors: /)]);
    for (const r of [m.body, c.body, (await get('/api/runs/bad-config')).body])
      for (const line of r.problems as string[]) { expect(line).not.toContain('\n'); expect(line).not.toContain(runsDir); }
  });
});

describe.skipIf(!HAVE_CHROMIUM)('browser (headless Chromium)', () => {
  let browser: Browser;
  let page: Page;
  const errors = usePage((b, p) => { browser = b; page = p; }, { viewport: { width: 1280, height: 800 } });

  async function open(p: Page, run: string): Promise<void> {
    await p.goto(`${srv.url}?run=${run}`);
    await p.waitForSelector(`body[data-model="ready"][data-run="${run}"]`, { timeout: 60_000 });
    await p.waitForFunction(() => !!document.getElementById('overlay')!.dataset.plot);
  }
  /** The plot area of the plane in page coordinates (from the page's own data-plot). */
  async function plot(p: Page): Promise<{ x: number; y: number; w: number; h: number }> {
    const b = (await p.locator('#overlay').boundingBox())!;
    const [x, y, w, h] = (await p.getAttribute('#overlay', 'data-plot'))!.split(',').map(Number);
    return { x: b.x + x, y: b.y + y, w, h };
  }
  const count = (p: Page, sel: string): Promise<number> => p.$eval(sel, (c) => Number((c as HTMLElement).dataset.count ?? 0));
  const pixels = (p: Page, sel: string): Promise<number[]> => p.$eval(sel, (c) => {
    const cv = c as HTMLCanvasElement;
    return Array.from(cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data);
  });

  it('every view has a "what is this" line: the axes, the colours, what hovering does (item 12)', async () => {
    await open(page, 'sup');
    const lines = await page.evaluate(() => {
      const out: Record<string, string> = {};
      for (const h of document.querySelectorAll('h3')) {
        if (h.closest('#compare-view')) continue;   // the comparison's own lines: web-compare.test.ts
        const sec = h.closest('section')!;
        const ex = sec.querySelector('.explain');
        out[h.id] = ex && !(ex as HTMLElement).closest('[hidden]') ? ex.textContent!.trim() : '';
      }
      return out;
    });
    expect(Object.keys(lines).sort()).toEqual(['decoded-heading', 'draw-heading', 'gen-heading', 'grid-heading', 'interp-heading', 'pins-heading', 'plane-heading', 'train-heading']);
    for (const [h, t] of Object.entries(lines)) expect(t.length, h).toBeGreaterThan(40);
    expect(lines['plane-heading']).toMatch(/axes/);
    expect(lines['plane-heading']).toMatch(/colour is the digit/);
    expect(lines['plane-heading']).toMatch(/Hover/);
    expect(lines['train-heading']).toMatch(/test images/);
    expect(await page.locator('.plane-pane .explain').first().isVisible()).toBe(true);
  }, 120_000);

  it('the loss chart plots train and test reconstruction together and the latent-map term apart (item 9)', async () => {
    await open(page, 'sup');
    const metrics = readFileSync(path.join(runsDir, 'sup', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const trainLines = metrics.filter((l) => typeof l.recon === 'number');
    const last = trainLines.at(-1)!;
    expect(last.loss).not.toBeCloseTo(last.recon, 6); // the supervised loss has another term
    await page.waitForFunction(() => document.getElementById('curve')!.dataset.run === 'sup');
    expect(await page.getAttribute('#curve', 'data-series')).toBe('train reconstruction (MSE)|test reconstruction (MSE)');
    expect(Number(await page.getAttribute('#curve', 'data-points'))).toBe(trainLines.length);
    expect(Number(await page.getAttribute('#curve', 'data-test-points'))).toBe(metrics.filter((l) => typeof l.testLoss === 'number').length);
    expect(Number(await page.getAttribute('#curve', 'data-test-points'))).toBe(2);
    expect(Number(await page.getAttribute('#curve', 'data-train-last'))).toBe(last.recon);
    expect(await page.locator('#curve-latent').isVisible()).toBe(true);
    expect(Number(await page.getAttribute('#curve-latent', 'data-points'))).toBe(metrics.filter((l) => typeof l.latent === 'number').length);
    expect(Number(await page.getAttribute('#curve-latent', 'data-last'))).toBe(trainLines.at(-1)!.latent);
    await page.locator('.train-pane').screenshot({ path: path.join(SHOTS, 'chart-supervised.png') });
    // an unsupervised run has no latent-map term: no second chart
    await open(page, 'plain');
    expect(await page.locator('#curve-latent').isHidden()).toBe(true);
    expect(await page.textContent('#train-status')).toBe('finished: 40 steps');
  }, 120_000);

  it('a run with a broken config.json, metrics.jsonl or checkpoint says which file and what is wrong (item 11)', async () => {
    for (const [run, re] of [['bad-config', /^config\.json: .*JSON/], ['bad-metrics', /^metrics\.jsonl: line 3/], ['bad-checkpoint', /^checkpoint\.safetensors: /]] as const) {
      await page.goto(`${srv.url}?run=${run}`);
      await page.waitForSelector(`body[data-ready="1"][data-run="${run}"]`, { timeout: 60_000 });
      await page.waitForSelector('#run-problem:not([hidden])');
      const text = (await page.textContent('#run-problem'))!;
      expect(text, run).toMatch(re);
      expect(text.split('\n')).toHaveLength(1);
    }
    await page.screenshot({ path: path.join(SHOTS, 'broken-run.png'), fullPage: true });
    await open(page, 'plain');
    expect(await page.locator('#run-problem').isHidden()).toBe(true);
  }, 120_000);

  it('lays out on a 1280x800 desktop (screenshot kept)', async () => {
    await open(page, 'plain');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
    await page.screenshot({ path: path.join(SHOTS, 'desktop-1280x800.png'), fullPage: true });
  }, 60_000);

  it('while a run trains, the page decodes with the weights it publishes (swapped in without a reload), the scatter moves, Stop keeps a resumable run and Resume continues it (items 6, 7, 8)', async () => {
    if (!need('cli', 'web-live.test')) return;
    await page.goto(srv.url);
    await page.waitForSelector('body[data-ready="1"]');
    await page.click('#train-details summary');
    await page.fill('#train-form input[name="name"]', 'live');
    await page.fill('#train-form input[name="maxSteps"]', '1500');
    await page.fill('#train-form input[name="batchSize"]', '32');
    await page.selectOption('#train-form select[name="backend"]', 'wasm');
    await page.fill('#train-form input[name="snapshotEvery"]', '20');
    await page.fill('#train-form input[name="testLimit"]', '300');
    await page.click('#train-start');
    await page.waitForSelector('body[data-run="live"]');
    const loads = (): Promise<number> => page.evaluate(() => performance.getEntriesByType('navigation').length);
    const navs = await loads();
    // the first live weights (published every 5 s) and the first snapshot
    await page.waitForSelector('body[data-weights^="live.safetensors@"]', { timeout: 120_000 });
    await page.waitForFunction(() => Number(document.getElementById('overlay')!.dataset.points ?? 0) > 0 && !!document.getElementById('overlay')!.dataset.plot, null, { timeout: 120_000 });
    // progress in words while it trains
    const status = (await page.textContent('#train-status'))!;
    expect(status).toMatch(/^training: step \d+ of 1500 \(epoch 1 of 1\)/);
    // hover a point, drag a box, draw a digit: each is decoded with the weights shown in data-weights
    await page.click('input[name="mode"][value="pan"]');
    for (let i = 0; i < 3; i++) await page.click('#zoom-out');
    const p = await plot(page);
    await page.keyboard.down('Shift');
    await page.mouse.move(p.x + p.w * 0.2, p.y + p.h * 0.2);
    await page.mouse.down();
    await page.mouse.move(p.x + p.w * 0.8, p.y + p.h * 0.8, { steps: 6 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await page.mouse.move(p.x + p.w * 0.3, p.y + p.h * 0.7);
    const pad = (await page.locator('#pad').boundingBox())!;
    await page.mouse.move(pad.x + pad.width * 0.3, pad.y + pad.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(pad.x + pad.width * 0.7, pad.y + pad.height * 0.2, { steps: 6 });
    await page.mouse.move(pad.x + pad.width * 0.4, pad.y + pad.height * 0.85, { steps: 8 });
    await page.mouse.up();
    // hover again on the plane: the Decoded card follows the pointer
    await page.mouse.move(p.x + p.w * 0.3, p.y + p.h * 0.7, { steps: 3 });
    const current = async (): Promise<Record<string, string | undefined>> => page.evaluate(() => ({
      weights: document.body.dataset.weights, decoded: document.getElementById('decoded')!.dataset.weights,
      grid: document.getElementById('grid')!.dataset.weights, recon: document.getElementById('recon')!.dataset.weights,
      snap: document.body.dataset.snap,
    }));
    await page.waitForFunction(() => {
      const w = document.body.dataset.weights;
      return ['decoded', 'grid', 'recon'].every((id) => document.getElementById(id)!.dataset.weights === w);
    }, null, { timeout: 60_000 });
    const a = await current();
    const px = { decoded: await pixels(page, '#decoded'), grid: await pixels(page, '#grid'), recon: await pixels(page, '#recon'), plane: await pixels(page, '#plane') };
    await page.screenshot({ path: path.join(SHOTS, 'live-weights-1.png'), fullPage: true });
    // newer weights are published: all three views are decoded again with them, without a reload
    await page.waitForFunction((w) => document.body.dataset.weights !== w, a.weights, { timeout: 60_000 });
    await page.waitForFunction(() => {
      const w = document.body.dataset.weights;
      return ['decoded', 'grid', 'recon'].every((id) => document.getElementById(id)!.dataset.weights === w);
    }, null, { timeout: 60_000 });
    const b = await current();
    expect(Number(b.weights!.split('@')[1])).toBeGreaterThan(Number(a.weights!.split('@')[1]));
    expect(await pixels(page, '#decoded')).not.toEqual(px.decoded);
    expect(await pixels(page, '#grid')).not.toEqual(px.grid);
    expect(await pixels(page, '#recon')).not.toEqual(px.recon);
    // the scatter of the fixed test subset has moved (a later snapshot)
    await page.waitForFunction((s) => Number(document.body.dataset.snap) > Number(s), a.snap, { timeout: 60_000 });
    await page.waitForTimeout(200);
    expect(await pixels(page, '#plane')).not.toEqual(px.plane);
    expect(await loads()).toBe(navs);
    await page.screenshot({ path: path.join(SHOTS, 'live-weights-2.png'), fullPage: true });

    // Stop keeps the run: stopped at the step it reached, its checkpoint there, resumable
    await page.click('#stop');
    await page.waitForFunction(() => document.body.dataset.runStatus === 'stopped', null, { timeout: 120_000 });
    const st = JSON.parse(readFileSync(path.join(runsDir, 'live', 'status.json'), 'utf8')) as { state: string; step: number; checkpointStep: number };
    expect(st.state).toBe('stopped');
    expect(st.checkpointStep).toBe(st.step);
    expect(st.step).toBeLessThan(1500);
    await page.waitForSelector('#resume:not([hidden])');
    const stopped = (await page.textContent('#train-status'))!;
    expect(stopped).toMatch(new RegExp(`^stopped at step ${st.step} of 1500 \\(epoch 1 of 1\\)`));
    await page.waitForSelector('body[data-model="ready"][data-run="live"]');
    await page.screenshot({ path: path.join(SHOTS, 'live-stopped.png'), fullPage: true });
    // the latencies from publication to the first decode shown, kept for the note
    const lat = (await page.getAttribute('body', 'data-live-latencies'))!.split(',').map(Number);
    expect(lat.length).toBeGreaterThanOrEqual(2);
    expect(lat.every((v) => v >= 0)).toBe(true);
    const timings = JSON.parse((await page.getAttribute('body', 'data-live-timings'))!) as unknown[];
    writeFileSync(path.join(SHOTS, 'live-latency.json'), JSON.stringify({ ms: lat, median: [...lat].sort((x, y) => x - y)[Math.floor(lat.length / 2)], timings }, null, 1));

    // Resume from the page: it continues from its checkpoint (same log, steps after the stop), live again
    await page.click('#resume');
    await page.waitForFunction(() => document.body.dataset.runStatus === 'training', null, { timeout: 60_000 });
    const metricsFile = path.join(runsDir, 'live', 'metrics.jsonl');
    const stepsNow = (): number[] => readFileSync(metricsFile, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    for (let t0 = Date.now(); !stepsNow().some((x) => x > st.step + 20); await new Promise((r) => setTimeout(r, 300)))
      if (Date.now() - t0 > 120_000) throw new Error('the resumed run did not go on');
    const steps = stepsNow();
    expect(steps).toEqual([...steps].sort((x, y) => x - y)); // one log, no step twice
    expect(new Set(steps).size).toBe(steps.length);
    await page.waitForFunction((w) => document.body.dataset.weights !== w, await page.getAttribute('body', 'data-weights'), { timeout: 60_000 });
    expect(await page.textContent('#train-status')).toMatch(/^training: step \d+ of 1500 \(epoch 1 of 1\)/);
    await page.click('#stop');
    await page.waitForFunction(() => document.body.dataset.runStatus === 'stopped', null, { timeout: 120_000 });
    const st2 = JSON.parse(readFileSync(path.join(runsDir, 'live', 'status.json'), 'utf8')) as { state: string; step: number; checkpointStep: number };
    expect(st2).toMatchObject({ state: 'stopped', checkpointStep: st2.step });
    expect(st2.step).toBeGreaterThan(st.step);
  }, 600_000);

  it('a run stopped from the page is resumed by the CLI (latentlab train --resume DIR) (item 7)', async () => {
    if (!need('cli', 'web-live.test')) return;
    const post = (p: string, body: unknown) => fetch(new URL(p, srv.url), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const r = await post('/api/train', { name: 'cli-resume', settings: { maxSteps: 80, batchSize: 32, backend: 'wasm', threads: 1, logEvery: 5 }, testLimit: 200 });
    expect(r.status, await r.text()).toBe(201);
    const dir = path.join(runsDir, 'cli-resume');
    for (let t0 = Date.now(); ; await new Promise((res) => setTimeout(res, 300))) {
      if (existsSync(path.join(dir, 'metrics.jsonl')) && readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').includes('"step":10,')) break;
      if (Date.now() - t0 > 120_000) throw new Error('no step 10');
    }
    expect((await post('/api/runs/cli-resume/stop', {})).status).toBe(202);
    let d: { status: string; canResume: boolean; progress: { step: number; checkpointStep: number } } | null = null;
    for (let t0 = Date.now(); ; await new Promise((res) => setTimeout(res, 300))) {
      d = await (await fetch(new URL('/api/runs/cli-resume', srv.url))).json() as typeof d;
      if (d!.status === 'stopped' || d!.status === 'failed' || d!.status === 'done') break;
      if (Date.now() - t0 > 120_000) throw new Error('not stopped');
    }
    expect(d!.status).toBe('stopped');
    expect(d!.canResume).toBe(true);
    expect(d!.progress.checkpointStep).toBe(d!.progress.step);
    // the CLI as a user runs it (async: the server in this process keeps answering meanwhile)
    const cli = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'train', '--resume', dir, '--no-pictures', '--test-limit', '200', '--data-dir', MNIST_DIR], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    cli.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const code = await new Promise<number | null>((res) => cli.on('exit', res));
    expect(code, stderr).toBe(0);
    const after = await (await fetch(new URL('/api/runs/cli-resume', srv.url))).json() as { status: string; result: { steps: number } };
    expect(after.status).toBe('done');
    expect(after.result.steps).toBe(80);
  }, 400_000);

  describe('a 390x844 phone with a touch screen (item 13)', () => {
    let phone: BrowserContext;
    let p: Page;
    let cdp: CDPSession;
    /** A finger dragged from a to b (Chromium's touch emulation: touch events, and pointer events of type touch from them). */
    async function swipe(a: { x: number; y: number }, b: { x: number; y: number }, steps = 8): Promise<void> {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: a.x, y: a.y }] });
      for (let i = 1; i <= steps; i++) {
        const x = a.x + ((b.x - a.x) * i) / steps, y = a.y + ((b.y - a.y) * i) / steps;
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x, y }] });
        await p.waitForTimeout(30);
      }
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    }

    beforeAll(async () => {
      phone = await browser.newContext({ viewport: PHONE, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
      p = await phone.newPage();
      p.on('pageerror', (e) => errors.push(e.message));
      cdp = await phone.newCDPSession(p);
    });
    afterAll(async () => { await phone?.close(); });

    it('nothing overflows and the plane fills the width', async () => {
      await open(p, 'plain');
      const over = await p.evaluate(() => {
        const out: string[] = [];
        for (const e of document.querySelectorAll('body *')) {
          const b = e.getBoundingClientRect();
          if (b.width > 0 && (b.right > innerWidth + 0.5 || b.left < -0.5)) out.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
        }
        return { scrollWidth: document.documentElement.scrollWidth, out };
      });
      expect(over).toEqual({ scrollWidth: 390, out: [] });
      const b = (await p.locator('#overlay').boundingBox())!;
      expect(b.width).toBeGreaterThanOrEqual(390 * 0.9);
      expect(b.height).toBeGreaterThanOrEqual(b.width * 0.9);
      await p.screenshot({ path: path.join(SHOTS, 'phone-390x844.png'), fullPage: true });
    }, 120_000);

    it('a finger scrubs the plane (decodes under it), a tap pins, a dragged box gives the grid, and a drawn digit lands on the plane', async () => {
      await open(p, 'plain');
      expect(await p.isChecked('input[name="mode"][value="scrub"]')).toBe(true);
      // zoom out so that the ends of the swipe are far apart in the latent space
      for (let i = 0; i < 5; i++) await p.tap('#zoom-out');
      const pl = await plot(p);
      await p.locator('#overlay').scrollIntoViewIfNeeded();
      const pl2 = await plot(p);
      const at = (fx: number, fy: number) => ({ x: pl2.x + pl2.w * fx, y: pl2.y + pl2.h * fy });
      expect(pl2.w).toBeCloseTo(pl.w, 0);
      const n0 = await count(p, '#decoded');
      await swipe(at(0.1, 0.1), at(0.5, 0.5));
      await p.waitForFunction((n) => Number(document.getElementById('decoded')!.dataset.count ?? 0) > n + 1, n0);
      await p.waitForTimeout(300);
      const first = await pixels(p, '#decoded');
      const n1 = await count(p, '#decoded');
      await swipe(at(0.5, 0.5), at(0.9, 0.9));
      await p.waitForFunction((n) => Number(document.getElementById('decoded')!.dataset.count ?? 0) > n, n1);
      await p.waitForTimeout(300);
      expect(await pixels(p, '#decoded')).not.toEqual(first);
      expect(await p.getAttribute('#pins', 'data-count')).toBe('0'); // a swipe is not a tap
      await p.screenshot({ path: path.join(SHOTS, 'phone-scrub.png') });
      // a tap pins
      await p.touchscreen.tap(at(0.3, 0.6).x, at(0.3, 0.6).y);
      await p.waitForFunction(() => document.getElementById('pins')!.dataset.count === '1');
      // Box mode: the finger drags a box, the grid is decoded
      await p.tap('input[name="mode"][value="box"]');
      await p.locator('#overlay').scrollIntoViewIfNeeded();
      const pl3 = await plot(p);
      await swipe({ x: pl3.x + pl3.w * 0.2, y: pl3.y + pl3.h * 0.2 }, { x: pl3.x + pl3.w * 0.8, y: pl3.y + pl3.h * 0.8 });
      await p.waitForFunction(() => Number(document.getElementById('grid')!.dataset.cells ?? 0) === 100, null, { timeout: 30_000 });
      await p.locator('#grid').scrollIntoViewIfNeeded();
      await p.screenshot({ path: path.join(SHOTS, 'phone-box-grid.png') });
      // the pad: a finger draws a 7
      await p.locator('#pad').scrollIntoViewIfNeeded();
      const pad = (await p.locator('#pad').boundingBox())!;
      const q = (fx: number, fy: number) => ({ x: pad.x + pad.width * fx, y: pad.y + pad.height * fy });
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [q(0.25, 0.2)] });
      for (const [fx, fy] of [[0.45, 0.2], [0.75, 0.2], [0.6, 0.5], [0.4, 0.85]]) {
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [q(fx, fy)] });
        await p.waitForTimeout(30);
      }
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
      await p.waitForFunction(() => !!document.getElementById('overlay')!.dataset.drawn, null, { timeout: 30_000 });
      expect(await count(p, '#recon')).toBeGreaterThanOrEqual(1);
      await p.screenshot({ path: path.join(SHOTS, 'phone-draw.png') });
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBe(390);
    }, 180_000);
  });
});
