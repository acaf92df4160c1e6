/**
 * Comparing runs in the explorer, end to end in headless Chromium (playwright-core driving
 * /usr/bin/chromium): two short real runs on MNIST (SGD + CyclicLR and Adam), ticked in the sidebar.
 * The table shows each run's figures equal to its result.json and config.json, and a k-NN accuracy
 * equal to eval.ts's knn over the run's latent files; the chart has one curve per run, in its own
 * colour; the latent planes share their axis ranges, which hold every point of both runs.
 * Screenshots (desktop and a 390 px phone) go to test-output/web/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import '../src/node-backends.js';
import { knn } from '../src/lab/analysis/eval.js';
import { loadDataset } from '../src/lab/data/datasets.js';
import { readLatents, type Latents } from '../src/lab/run/run.js';
import { train } from '../src/lab/train/train.js';
import { TAB10 } from '../src/viz/palette.js';
import { startServer, type WebServer } from '../src/web/server.js';
import { MNIST_DIR, ROOT } from './helpers.js';
import { need } from './requirements.js';
import { shootBothSizes, usePage } from './browser-helper.js';

const HAVE = need('chromium', 'web-compare.test') && need('mnist', 'web-compare.test');
const SHOTS = path.join(ROOT, 'test-output', 'web');
const N = 400;
const RUNS = ['sgd', 'adam'] as const;

let srv: WebServer;
let runsDir = '';
const files: Record<string, { result: Record<string, unknown>; config: Record<string, unknown>; test: Latents; train: Latents; lossLines: number }> = {};

beforeAll(async () => {
  if (!HAVE) return;
  const b = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'build-web.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`build-web failed: ${b.stderr}`);
  const data = await loadDataset('mnist', { dataDir: MNIST_DIR });
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-compare-'));
  const quick = { batchSize: 32, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 5, snapshotEvery: 0, maxSteps: 40 } as const;
  await train({ ...quick, seed: 0 }, { data, testLimit: N, trainLatents: N, out: path.join(runsDir, 'sgd') });
  await train({ ...quick, seed: 1, optimizer: 'adam', scheduler: 'none', lr: 1e-3 }, { data, testLimit: N, trainLatents: N, out: path.join(runsDir, 'adam') });
  for (const r of RUNS) {
    const dir = path.join(runsDir, r);
    const json = (f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>;
    const metrics = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number });
    files[r] = { result: json('result.json'), config: json('config.json'), test: readLatents(path.join(dir, 'latents.safetensors')), train: readLatents(path.join(dir, 'train-latents.safetensors')), lossLines: metrics.filter((m) => m.loss !== undefined).length };
  }
  srv = await startServer({ runsDir, port: 0, dataDir: MNIST_DIR });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => { await srv?.close(); });

describe.skipIf(!HAVE)('compare runs (headless Chromium)', () => {
  let page: Page;
  const errors = usePage((_b, p) => { page = p; });

  const cell = (key: string, run: string) => page.locator(`#compare-table tr[data-key="${key}"] td[data-run="${run}"]`);
  const valueOf = async (key: string, run: string): Promise<unknown> => JSON.parse((await cell(key, run).getAttribute('data-value'))!);
  /** How the table words a value (integers as they are, other numbers to 4 decimals, booleans yes/no). */
  const shown = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v));

  it('ticks two runs: the table holds their figures (equal to result.json), the chart one curve per run, the planes one shared scale', async () => {
    await page.goto(srv.url);
    await page.waitForSelector('body[data-ready="1"]');
    await page.click('#compare-box summary');
    expect(await page.isDisabled('#compare-open')).toBe(true);
    for (const r of RUNS) await page.check(`#compare-list input[data-compare="${r}"]`);
    expect(await page.textContent('#compare-open')).toBe('Compare 2 runs');
    await page.click('#compare-open');
    await page.waitForFunction(() => document.getElementById('compare-view')!.dataset.runs !== '' && !!document.getElementById('compare-view')!.dataset.runs);
    await page.waitForSelector('#compare-table[data-knn="done"]', { timeout: 60_000 });
    expect(await page.isHidden('.panes')).toBe(true);
    // the runs in the order of the list (newest first): columns, curves and planes
    const order = (await page.getAttribute('#compare-view', 'data-runs'))!.split('|');
    expect([...order].sort()).toEqual([...RUNS].sort());

    // the figures: every key of result.json, the settings, the latent size, the k-NN accuracy
    for (const r of RUNS) {
      const { result, config, test, train: ref } = files[r];
      for (const [k, v] of Object.entries(result)) {
        expect(await valueOf(`result.${k}`, r), `${r} result.${k}`).toEqual(v);
        expect(await cell(`result.${k}`, r).textContent(), `${r} result.${k}`).toBe(shown(v));
      }
      for (const k of ['model', 'optimizer', 'scheduler', 'batchSize', 'seed']) expect(await valueOf(`config.${k}`, r), `${r} config.${k}`).toEqual(config[k]);
      expect(await valueOf('config.latent', r)).toBe(2);
      expect(await valueOf('latent.dim', r)).toBe(2);
      const pred = knn(test.z, ref.z, ref.labels, test.dim, 5);
      const acc = pred.reduce((s, p, i) => s + (p === test.labels[i] ? 1 : 0), 0) / test.n;
      expect(await valueOf('knn.accuracy', r), `${r} k-NN`).toBe(acc);
      expect(await cell('knn.accuracy', r).textContent()).toBe(`${(100 * acc).toFixed(1)}% (${N} test vs ${N} train latents)`);
    }
    expect(files.sgd.config.optimizer).not.toBe(files.adam.config.optimizer);
    // the lower test MSE is the one in bold
    const best = (files.sgd.result.testMse as number) < (files.adam.result.testMse as number) ? 'sgd' : 'adam';
    expect(await cell('result.testMse', best).getAttribute('class')).toContain('best');
    expect(await cell('result.testMse', best === 'sgd' ? 'adam' : 'sgd').getAttribute('class')).not.toContain('best');

    // the chart: one curve per run, each in its colour, with all its logged points
    const chart = await page.$eval('#compare-curve', (c) => ({ ...(c as HTMLElement).dataset }));
    expect(chart.series).toBe(order.join('|'));
    expect(chart.colors).toBe(`${TAB10[0]}|${TAB10[1]}`);
    expect(chart.points).toBe(order.map((r) => files[r].lossLines).join('|'));
    const inks = await page.$eval('#compare-curve', (c, colors) => {
      const cv = c as HTMLCanvasElement, d = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
      return colors.map((hex) => {
        const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 30) n++;
        return n;
      });
    }, [TAB10[0], TAB10[1]]);
    for (const n of inks) expect(n).toBeGreaterThan(100);

    // the planes: one per run, every point drawn, the same axis ranges, which hold every point of both runs
    type Plane = { run?: string; points?: string; xRange?: string; yRange?: string; w: number; h: number };
    const planes: Plane[] = await page.$$eval('#compare-planes canvas', (cs) => cs.map((c) => {
      const d = (c as HTMLElement).dataset, r = c.getBoundingClientRect();
      return { run: d.run, points: d.points, xRange: d.xRange, yRange: d.yRange, w: r.width, h: r.height };
    }));
    expect(planes.map((p) => p.run)).toEqual(order);
    expect(planes.map((p) => p.points)).toEqual([String(N), String(N)]);
    expect(planes[1].xRange).toBe(planes[0].xRange);
    expect(planes[1].yRange).toBe(planes[0].yRange);
    expect(planes[1].w).toBeCloseTo(planes[0].w, 0);
    for (const [axis, key] of [[0, 'xRange'], [1, 'yRange']] as const) {
      const [lo, hi] = planes[0][key]!.split(',').map(Number);
      let min = Infinity, max = -Infinity;
      for (const r of RUNS) for (let i = 0; i < N; i++) { const v = files[r].test.z[i * 2 + axis]; min = Math.min(min, v); max = Math.max(max, v); }
      expect(lo).toBeLessThanOrEqual(min);
      expect(hi).toBeGreaterThanOrEqual(max);
      expect(hi - lo).toBeLessThan(1.25 * (max - min));
    }
    expect(await shootBothSizes(page, SHOTS, 'compare', 400)).toBeLessThanOrEqual(0);
  }, 180_000);

  it('opening a run from the list ends the comparison', async () => {
    await page.click('#run-list button[data-run="sgd"]');
    await page.waitForSelector('body[data-model="ready"][data-run="sgd"]', { timeout: 60_000 });
    expect(await page.isHidden('#compare-view')).toBe(true);
    expect(await page.isVisible('.panes')).toBe(true);
    expect(errors).toEqual([]);
  }, 120_000);
});
