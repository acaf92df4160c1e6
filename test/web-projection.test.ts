/**
 * Latents of any size in the explorer, end to end in headless Chromium (playwright-core driving
 * /usr/bin/chromium): a 10-D run and a conv (2,7,7) run trained on real MNIST. The PCA plane is
 * checked against a PCA computed here by subspace iteration (not the library's Jacobi), its inverse
 * plus the sliders against the latent decoded, and the decoded picture against our decoder in Node;
 * UMAP runs in the analysis worker with progress and gives the same embedding as `umap2d` in Node.
 * Screenshots (desktop and a 390 px phone) go to test-output/web/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import '../src/node-backends.js';
import { umap2d } from '../src/lab/analysis/projection.js';
import { loadSafetensors } from '../src/engine/state.js';
import { loadDataset } from '../src/lab/data/datasets.js';
import { openRun, type Run } from '../src/lab/run/run.js';
import { train } from '../src/lab/train/train.js';
import { toGrey } from '../src/viz/grid.js';
import { startServer, type WebServer } from '../src/web/server.js';
import { MNIST_DIR, ROOT } from './helpers.js';
import { need } from './requirements.js';
import { shootBothSizes, usePage } from './browser-helper.js';

const HAVE = need('chromium', 'web-projection.test') && need('mnist', 'web-projection.test');
const SHOTS = path.join(ROOT, 'test-output', 'web');
const N = 500;

interface PlaneCoords { method: string; n: number; dim: number; x: number[]; y: number[]; hover: { x: number; y: number } | null }

/** The top k principal directions of n × d data by subspace iteration (float64), and the mean. */
function referencePca(z: Float32Array, n: number, d: number, k: number): { mean: Float64Array; dirs: Float64Array[] } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += z[i * d + j] / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) for (let p = 0; p < d; p++) for (let q = 0; q < d; q++) cov[p * d + q] += (z[i * d + p] - mean[p]) * (z[i * d + q] - mean[q]) / (n - 1);
  let dirs = Array.from({ length: k }, (_, c) => Float64Array.from({ length: d }, (_, j) => Math.sin(1 + c * 7.1 + j * 1.3)));
  for (let it = 0; it < 20000; it++) {
    dirs = dirs.map((v) => { const w = new Float64Array(d); for (let p = 0; p < d; p++) { let s = 0; for (let q = 0; q < d; q++) s += cov[p * d + q] * v[q]; w[p] = s; } return w; });
    // Gram-Schmidt: the directions stay orthonormal, the first converges to the largest eigenvector, and so on
    for (let c = 0; c < k; c++) {
      for (let b = 0; b < c; b++) { let s = 0; for (let j = 0; j < d; j++) s += dirs[c][j] * dirs[b][j]; for (let j = 0; j < d; j++) dirs[c][j] -= s * dirs[b][j]; }
      let nrm = 0; for (let j = 0; j < d; j++) nrm += dirs[c][j] ** 2;
      nrm = Math.sqrt(nrm); for (let j = 0; j < d; j++) dirs[c][j] /= nrm;
    }
  }
  return { mean, dirs };
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

/** The k nearest other points of point i, by squared distance given as a function. */
function kNearest(n: number, i: number, k: number, dist: (a: number, b: number) => number): Set<number> {
  return new Set(Array.from({ length: n }, (_, j) => j).filter((j) => j !== i).sort((a, b) => dist(i, a) - dist(i, b)).slice(0, k));
}

/** The mean share of each point's k nearest neighbours that two plane embeddings have in common. */
function neighbourOverlap(ax: number[], ay: number[], bx: number[], by: number[], k: number): number {
  const n = ax.length;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const a = kNearest(n, i, k, (p, q) => (ax[p] - ax[q]) ** 2 + (ay[p] - ay[q]) ** 2);
    const b = kNearest(n, i, k, (p, q) => (bx[p] - bx[q]) ** 2 + (by[p] - by[q]) ** 2);
    s += [...a].filter((j) => b.has(j)).length / k;
  }
  return s / n;
}

/** The mean share of each point's k nearest neighbours on the plane that are among its k nearest in the latent space. */
function latentNeighbourShare(z: Float32Array, dim: number, x: number[], y: number[], k: number): number {
  const n = x.length;
  const zd = (p: number, q: number): number => { let s = 0; for (let j = 0; j < dim; j++) s += (z[p * dim + j] - z[q * dim + j]) ** 2; return s; };
  let s = 0;
  for (let i = 0; i < n; i++) {
    const a = kNearest(n, i, k, zd), b = kNearest(n, i, k, (p, q) => (x[p] - x[q]) ** 2 + (y[p] - y[q]) ** 2);
    s += [...a].filter((j) => b.has(j)).length / k;
  }
  return s / n;
}

let srv: WebServer;
let runsDir = '';
const runs: Record<string, Run> = {};

beforeAll(async () => {
  if (!HAVE) return;
  const b = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'build-web.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`build-web failed: ${b.stderr}`);
  const data = await loadDataset('mnist', { dataDir: MNIST_DIR });
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-proj-'));
  const quick = { batchSize: 32, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 10, snapshotEvery: 0, maxSteps: 40 } as const;
  for (const [name, latent] of [['z10', 10], ['conv', 'conv']] as const) {
    await train({ ...quick, latent }, { data, testLimit: N, trainLatents: N, out: path.join(runsDir, name) });
    runs[name] = await openRun(path.join(runsDir, name));
  }
  srv = await startServer({ runsDir, port: 0, dataDir: MNIST_DIR });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => { await srv?.close(); });

describe.skipIf(!HAVE)('latents of any size on the plane (headless Chromium)', () => {
  let page: Page;
  const errors = usePage((_b, p) => { page = p; });

  const coords = (): Promise<PlaneCoords> => page.evaluate(() => (self as unknown as { latentlabPlane: { coords: () => PlaneCoords } }).latentlabPlane.coords());
  const latentAt = (x: number, y: number): Promise<number[]> => page.evaluate(([a, b]) => (self as unknown as { latentlabPlane: { latentAt: (x: number, y: number) => number[] } }).latentlabPlane.latentAt(a, b), [x, y]);
  const decodedCount = (): Promise<number> => page.$eval('#decoded', (c) => Number((c as HTMLElement).dataset.count ?? 0));
  /** The Decoded card's 28×28 greys (the red channel). */
  const decodedGreys = (): Promise<number[]> => page.$eval('#decoded', (c) => {
    const cv = c as HTMLCanvasElement, d = cv.getContext('2d')!.getImageData(0, 0, 28, 28).data;
    return Array.from({ length: 784 }, (_, i) => d[4 * i]);
  });
  /** Our decoder in Node, on the reference backend, as greys. */
  const nodeGreys = (run: Run, z: number[]): number[] => Array.from(run.model.decode(Float32Array.from(z), 1), toGrey);

  async function open(run: string): Promise<void> {
    await page.goto(`${srv.url}?run=${run}`);
    await page.waitForSelector(`body[data-model="ready"][data-run="${run}"]`, { timeout: 60_000 });
    await page.waitForFunction((n) => document.getElementById('overlay')!.dataset.points === String(n), N);
  }

  /** Hovers a point of the plot (fractions of its width and height); returns the plane point decoded once its picture is shown. */
  async function hover(fx: number, fy: number): Promise<{ x: number; y: number }> {
    const n0 = await decodedCount();
    const [px, py, pw, ph] = (await page.getAttribute('#overlay', 'data-plot'))!.split(',').map(Number);
    const b = (await page.locator('#overlay').boundingBox())!;
    await page.mouse.move(b.x + px + pw * fx, b.y + py + ph * fy);
    await page.waitForFunction((n) => Number(document.getElementById('decoded')!.dataset.count ?? 0) > n, n0);
    await page.waitForTimeout(300);
    return (await coords()).hover!;
  }

  for (const [name, dim] of [['z10', 10], ['conv', 98]] as const) {
    it(`${name}: the PCA plane is the latents' PCA (up to sign), a plane point plus the sliders is the latent decoded, and a slider changes the decode`, async () => {
      await open(name);
      const run = runs[name];
      const { z, n } = run.testLatents;
      expect(run.testLatents.dim).toBe(dim);
      const c = await coords();
      expect(c).toMatchObject({ method: 'pca', n: N, dim });
      expect(await page.isVisible('#projection')).toBe(true);
      expect(await page.textContent('#plane-caption')).toMatch(name === 'conv' ? /98-D latent \(the conv latent, 2×7×7 = 98 numbers\): the PCA plane/ : /10-D latent: the PCA plane/);
      expect(await page.locator('#dims input[type="range"]').count()).toBe(8);

      const { mean, dirs } = referencePca(z, n, dim, 3);
      // the plane's coordinates are the projections on the first two components, up to each one's sign
      const sign = [c.x, c.y].map((col, k) => {
        const ref = Array.from({ length: n }, (_, i) => dot(dirs[k], Array.from(z.subarray(i * dim, (i + 1) * dim), (v, j) => v - mean[j])));
        const s = Math.sign(dot(ref, col));
        const scale = Math.max(1, ...ref.map(Math.abs));
        expect(maxAbsDiff(ref.map((v) => s * v), col), `${name} PC${k + 1}`).toBeLessThan(1e-3 * scale);
        return s;
      });
      // a hovered point of the plane is the latent mean + x·PC1 + y·PC2, and the picture is our decoder's
      const h = await hover(0.3, 0.6);
      const want = Array.from(mean, (m, j) => m + h.x * sign[0] * dirs[0][j] + h.y * sign[1] * dirs[1][j]);
      const got = await latentAt(h.x, h.y);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-3 * Math.max(1, ...want.map(Math.abs)));
      const before = await decodedGreys();
      expect(maxAbsDiff(before, nodeGreys(run, got))).toBeLessThanOrEqual(2);

      // the first slider moves the decoded point along PC3
      const slider = page.locator('#dims input[type="range"]').first();
      const max = Number(await slider.getAttribute('max'));
      const n1 = await decodedCount();
      await slider.fill(String(max));
      await page.waitForFunction((k) => Number(document.getElementById('decoded')!.dataset.count ?? 0) > k, n1);
      await page.waitForTimeout(300);
      // the value the range input took (snapped to its step)
      const value = Number(await slider.inputValue());
      expect(value).toBeGreaterThan(0.9 * max);
      const moved = await latentAt(h.x, h.y);
      const step = moved.map((v, j) => v - got[j]);
      const s3 = Math.sign(dot(step, dirs[2]));
      expect(maxAbsDiff(step, Array.from(dirs[2], (v) => s3 * value * v))).toBeLessThan(1e-3 * Math.max(1, value));
      const after = await decodedGreys();
      expect(maxAbsDiff(after, before)).toBeGreaterThan(10);
      expect(maxAbsDiff(after, nodeGreys(run, moved))).toBeLessThanOrEqual(2);
      expect(await shootBothSizes(page, SHOTS, `projection-pca-${name}`)).toBeLessThanOrEqual(0);
    }, 180_000);
  }

  it('a 10-D run training live: each snapshot\'s latents are on the plane by their own PCA, with the sliders', async () => {
    if (!need('cli', 'web-projection.test')) return;
    await page.goto(srv.url);
    await page.waitForSelector('body[data-ready="1"]');
    const started = await page.evaluate(() => fetch('/api/train', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'live10', settings: { latent: '10', maxSteps: 120, batchSize: 32, backend: 'wasm', snapshotEvery: 10, logEvery: 10 }, testLimit: 300 }) }).then((r) => r.status));
    expect(started).toBe(201);
    await page.goto(`${srv.url}?run=live10`);
    await page.waitForFunction(() => Number(document.body.dataset.snap ?? -1) >= 10, null, { timeout: 180_000 });
    // read the plane and the step it shows at once (a newer snapshot may come any moment)
    const seen = await page.evaluate(() => ({ snap: Number(document.body.dataset.snap), caption: document.getElementById('plane-caption')!.textContent, sliders: document.querySelectorAll('#dims input[type="range"]').length,
      c: (self as unknown as { latentlabPlane: { coords: () => PlaneCoords } }).latentlabPlane.coords() }));
    expect(seen.caption).toContain(`the PCA plane of the latents (snapshot at step ${seen.snap})`);
    expect(seen.sliders).toBe(8);
    expect(seen.c).toMatchObject({ method: 'pca', dim: 10 });
    const snap = loadSafetensors(readFileSync(path.join(runsDir, 'live10', 'snapshots', `step-${String(seen.snap).padStart(7, '0')}.safetensors`))).tensors.get('z')!;
    const [n, dim] = snap.shape;
    expect(seen.c.n).toBe(n);
    const z = snap.data as Float32Array;
    const { mean, dirs } = referencePca(z, n, dim, 2);
    [seen.c.x, seen.c.y].forEach((col, k) => {
      const ref = Array.from({ length: n }, (_, i) => dot(dirs[k], Array.from(z.subarray(i * dim, (i + 1) * dim), (v, j) => v - mean[j])));
      const s = Math.sign(dot(ref, col));
      expect(maxAbsDiff(ref.map((v) => s * v), col), `live PC${k + 1} at step ${seen.snap}`).toBeLessThan(1e-3 * Math.max(1, ...ref.map(Math.abs)));
    });
    await page.screenshot({ path: path.join(SHOTS, 'projection-live-z10.png'), fullPage: true });
    await page.waitForFunction(() => document.body.dataset.runStatus === 'done', null, { timeout: 300_000 });
  }, 420_000);

  it('UMAP runs in a worker with progress, gives an embedding of the n points (the neighbourhoods of umap2d in Node), decodes the nearest point\'s latent and has no box grid', async () => {
    await open('z10');
    const run = runs.z10;
    const pca = await coords();
    await page.check('input[name="projection"][value="umap"]');
    await page.waitForSelector('#umap-progress:not([hidden])');
    await page.waitForFunction(() => (self as unknown as { latentlabPlane: { coords: () => { method: string } } }).latentlabPlane.coords().method === 'umap', null, { timeout: 180_000 });
    const log = await page.evaluate(() => (self as unknown as { latentlabPlane: { umapLog: () => { done: number; total: number; phase: string }[] } }).latentlabPlane.umapLog());
    expect(log.length).toBeGreaterThan(10);
    expect(log[0].phase).toBe('neighbour graph');
    const epochs = log.filter((l) => l.phase === 'layout epochs');
    expect(epochs.at(-1)!.done).toBe(epochs.at(-1)!.total);
    expect(epochs.every((l, i) => i === 0 || l.done >= epochs[i - 1].done)).toBe(true);
    expect(await page.isHidden('#umap-progress')).toBe(true);
    expect(await page.textContent('#umap-status')).toMatch(/^UMAP of 500 points in [\d.]+ s$/);

    const u = await coords();
    expect(u).toMatchObject({ method: 'umap', n: N, dim: 10 });
    expect(u.x.every(Number.isFinite) && u.y.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(u.x, pca.x)).toBeGreaterThan(0.1);
    // the library's umap2d with the page's seed: the same neighbourhoods (UMAP's optimisation is
    // chaotic, and Chromium's V8 and Node's may round a Math function differently, so not the same floats)
    const ref = umap2d(run.testLatents.z, N, 10, { seed: 0 });
    const refX = Array.from({ length: N }, (_, i) => ref[2 * i]), refY = Array.from({ length: N }, (_, i) => ref[2 * i + 1]);
    const shared = neighbourOverlap(u.x, u.y, refX, refY, 10);
    const latentShared = latentNeighbourShare(run.testLatents.z, 10, u.x, u.y, 10);
    console.log(`UMAP: ${shared.toFixed(3)} of 10-NN shared with Node's umap2d; ${latentShared.toFixed(3)} with the latent space's`);
    expect(shared).toBeGreaterThan(0.5);
    expect(latentShared).toBeGreaterThan(0.3);
    expect(await page.textContent('#plane-caption')).toMatch(/UMAP has no inverse: hovering or pinning decodes the latent of the nearest encoded point/);
    expect(await page.isHidden('#dims')).toBe(true);

    // a hovered point decodes the latent of the nearest embedded point
    const h = await hover(0.45, 0.4);
    let best = 0;
    for (let i = 0; i < N; i++) if ((u.x[i] - h.x) ** 2 + (u.y[i] - h.y) ** 2 < (u.x[best] - h.x) ** 2 + (u.y[best] - h.y) ** 2) best = i;
    const zBest = Array.from(run.testLatents.z.subarray(best * 10, best * 10 + 10));
    expect(await latentAt(h.x, h.y)).toEqual(zBest);
    expect(maxAbsDiff(await decodedGreys(), nodeGreys(run, zBest))).toBeLessThanOrEqual(2);

    // a box gives no grid, and says why
    const [px, py, pw, ph] = (await page.getAttribute('#overlay', 'data-plot'))!.split(',').map(Number);
    const b = (await page.locator('#overlay').boundingBox())!;
    await page.check('input[name="mode"][value="box"]');
    await page.mouse.move(b.x + px + pw * 0.3, b.y + py + ph * 0.3);
    await page.mouse.down();
    await page.mouse.move(b.x + px + pw * 0.6, b.y + py + ph * 0.6, { steps: 5 });
    await page.mouse.up();
    await page.waitForTimeout(300);
    expect(await page.isHidden('#grid')).toBe(true);
    expect(await page.textContent('#grid-caption')).toMatch(/^No grid on a UMAP plane: UMAP has no inverse/);
    await page.check('input[name="mode"][value="pan"]');
    expect(await shootBothSizes(page, SHOTS, 'projection-umap')).toBeLessThanOrEqual(0);

    // back to PCA: the plane's inverse and the sliders return
    await page.check('input[name="projection"][value="pca"]');
    await page.waitForFunction(() => (self as unknown as { latentlabPlane: { coords: () => { method: string } } }).latentlabPlane.coords().method === 'pca');
    expect((await coords()).x).toEqual(pca.x);
    expect(await page.locator('#dims input[type="range"]').count()).toBe(8);
    expect(errors).toEqual([]);
  }, 300_000);
});
