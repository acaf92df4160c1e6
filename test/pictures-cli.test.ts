/**
 * The picture commands on real (small) runs trained on real MNIST: plot latent/loss, sample,
 * generate, recon, gif, and the pictures `latentlab train` draws at the end.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCanvas } from '@napi-rs/canvas';
import '../src/node-backends.js';
import { main } from '../src/cli/main.js';
import { train } from '../src/lab/train/train.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/index.js';
import { openRun, readMetrics } from '../src/lab/run/run.js';
import { centroids, digitLatents } from '../src/lab/analysis/generate.js';
import { Rng } from '../src/engine/rng.js';
import { createBackend } from '../src/engine/kernels/select.js';
import { gridLayout, cellRect } from '../src/viz/grid.js';
import { TAB10_RGB } from '../src/viz/palette.js';
import { countGifFrames } from '../src/viz/gif.js';
import { decodePng } from '../src/viz/node.js';
import { latentFigureSize, lossFigureSize, reconFigureSize, sampleFigureSize, trainingFrameSize } from '../src/viz/figures.js';
import { latentPicture, lossPicture, readLossSource, renderRunPictures, samplePicture } from '../src/cli/pictures.js';
import type { Ctx2D } from '../src/viz/ctx.js';
import { need } from './requirements.js';

const DATA = process.env.LATENTLAB_MNIST ?? path.resolve('../shared/data/mnist');
const haveData = need('mnist', 'pictures-cli.test');

let tmp = '';
let run2 = '', run10 = '', runSup = '';
let data: LoadedDataset;

/** Runs the CLI, capturing stdout and stderr. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err += String(s); return true; });
  try {
    const code = await main(['node', 'latentlab', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

function wrote(out: string): string[] {
  return out.split('\n').filter((l) => l.startsWith('wrote ')).map((l) => l.slice(6));
}

async function expectPng(file: string, width: number, height: number) {
  expect(existsSync(file), file).toBe(true);
  const img = await decodePng(file);
  expect([img.width, img.height]).toEqual([width, height]);
  return img;
}

function pixel(img: { width: number; data: Uint8ClampedArray }, x: number, y: number): number[] {
  const o = (y * img.width + x) * 4;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}

describe.skipIf(!haveData)('picture commands', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-pictures-'));
    data = await loadDataset('mnist', { dataDir: DATA });
    run2 = path.join(tmp, 'run2');
    run10 = path.join(tmp, 'run10');
    runSup = path.join(tmp, 'sup');
    const base = { batchSize: 32, backend: 'wasm', dataDir: DATA, threads: 2 } as const;
    await train({ ...base, maxSteps: 60, snapshotEvery: 20 }, { out: run2, data, testLimit: 500, trainLatents: 1000 });
    await train({ ...base, maxSteps: 5, latent: 10, snapshotEvery: 5 }, { out: run10, data, testLimit: 500, trainLatents: 1000 });
    await train({ ...base, maxSteps: 5, supervised: { 0: [-2, 6], 1: [-2, -6], 2: [-6, 2], 3: [-3, 4], 4: [6, 2], 5: [2, 4], 6: [0, 2], 7: [0, -2], 8: [-2, 0], 9: [2, -2] } },
      { out: runSup, data, testLimit: 300, trainLatents: 500 });
  });

  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('renderRunPictures draws latent, sample, loss and the GIF', async () => {
    const files = await renderRunPictures(run2);
    expect(files.map((f) => path.basename(f))).toEqual(['latent.png', 'sample.png', 'loss.png', 'training.gif']);
    const ls = latentFigureSize();
    await expectPng(path.join(run2, 'latent.png'), ls.width, ls.height);
    const ss = sampleFigureSize(10);
    await expectPng(path.join(run2, 'sample.png'), ss.width, ss.height);
    const lo = lossFigureSize();
    await expectPng(path.join(run2, 'loss.png'), lo.width, lo.height);
    const gif = new Uint8Array(readFileSync(path.join(run2, 'training.gif')));
    expect(countGifFrames(gif)).toBe(4); // steps 0, 20, 40, 60
    expect(gif[6] | (gif[7] << 8)).toBe(trainingFrameSize().width);
    expect(gif[8] | (gif[9] << 8)).toBe(trainingFrameSize().height);
  });

  it('plot latent: a known latent point lands on its pixel, in its digit colour', async () => {
    const out = path.join(tmp, 'latent.png');
    const r = await cli('plot', 'latent', run2, '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(wrote(r.out)).toEqual([out]);
    const size = latentFigureSize();
    const img = await expectPng(out, size.width, size.height);
    const backend = await createBackend('reference');
    const run = await openRun(run2, { backend });
    const pic = await latentPicture(run, 'pca');
    const { z, labels, n } = run.testLatents;
    const i = n - 1; // drawn last, so on top
    const px = Math.floor(pic.transform.toPx(z[2 * i])), py = Math.floor(pic.transform.toPy(z[2 * i + 1]));
    expect(px).toBeGreaterThan(pic.transform.plot.x);
    expect(py).toBeLessThan(pic.transform.plot.y + pic.transform.plot.height);
    const got = pixel(img, px, py), want = TAB10_RGB[labels[i]];
    for (let k = 0; k < 3; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(3);
  });

  it('sample: the box is drawn, the decoded images differ across the box, and the scatter transform holds', async () => {
    const out = path.join(tmp, 'sample.png');
    const r = await cli('sample', run2, '--box', '-1,-1.5,2,2.5', '--grid', '6', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(wrote(r.out)).toEqual([out]);
    const size = sampleFigureSize(6);
    const img = await expectPng(out, size.width, size.height);

    const backend = await createBackend('reference');
    const run = await openRun(run2, { backend });
    const pic = await samplePicture(run, { box: [-1, -1.5, 2, 2.5], gridN: 6 });
    expect(pic.images.length).toBe(36 * 784);
    // grid points in order: top-left is (x0, y1), bottom-right is (x1, y0)
    expect(Array.from(pic.latents.subarray(0, 2))).toEqual([-1, 2.5]);
    expect(Array.from(pic.latents.subarray(70, 72))).toEqual([2, -1.5]);
    // the images differ from one another
    const diff = (a: number, b: number) => {
      let s = 0;
      for (let j = 0; j < 784; j++) s += Math.abs(pic.images[a * 784 + j] - pic.images[b * 784 + j]);
      return s / 784;
    };
    expect(diff(0, 35)).toBeGreaterThan(0.02);
    expect(diff(5, 30)).toBeGreaterThan(0.02);
    expect(diff(0, 1)).toBeGreaterThan(0);
    // ... and so do their cells in the PNG
    const ctx = createCanvas(10, 10).getContext('2d') as unknown as Ctx2D;
    const g = gridLayout(ctx, 6, 6, 28, 28, { x: 820, y: 8, width: 760, height: 784 }, { gap: 1, title: 'x' });
    const cellSum = (r0: number, c0: number) => {
      const c = cellRect(g, r0, c0);
      let s = 0;
      for (let y = c.y; y < c.y + c.height; y++) for (let x = c.x; x < c.x + c.width; x++) s += pixel(img, x, y)[0];
      return s / (c.width * c.height);
    };
    const sums = [cellSum(0, 0), cellSum(0, 5), cellSum(5, 0), cellSum(5, 5)];
    expect(new Set(sums.map((s) => s.toFixed(2))).size).toBeGreaterThan(1);
    // the box outline is black at its top-left corner; a test point is in its colour
    const t = pic.transform;
    const cx = Math.round(t.toPx(-1)), cy = Math.round(t.toPy(2.5));
    let darkest = 255;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) darkest = Math.min(darkest, Math.max(...pixel(img, cx + dx, cy + dy)));
    expect(darkest).toBeLessThan(60);
    const { z, labels, n } = run.testLatents;
    const i = n - 1;
    const got = pixel(img, Math.floor(t.toPx(z[2 * i])), Math.floor(t.toPy(z[2 * i + 1])));
    const want = TAB10_RGB[labels[i]];
    const onBox = Math.max(...got) < 80;
    if (!onBox) for (let k = 0; k < 3; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(3);

    // default box: spans the latents
    const r2 = await cli('sample', run2);
    expect(r2.code).toBe(0);
    expect(wrote(r2.out)).toEqual([path.join(run2, 'sample.png')]);
  });

  it('generate: every digit 0-9, 28x28 PNGs and a sheet, reproducible by seed', async () => {
    for (let d = 0; d <= 9; d++) {
      const outDir = path.join(tmp, 'gen');
      const r = await cli('generate', run2, '--digit', String(d), '--count', '3', '--seed', '7', '--out', outDir);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const files = wrote(r.out);
      expect(files.map((f) => path.basename(f))).toEqual([`digit-${d}-00.png`, `digit-${d}-01.png`, `digit-${d}-02.png`, `digit-${d}-sheet.png`]);
      for (const f of files.slice(0, 3)) await expectPng(f, 28, 28);
      const sheet = await decodePng(files[3]);
      expect(sheet.width).toBeGreaterThanOrEqual(400);
    }
    const a = readFileSync(path.join(tmp, 'gen', 'digit-9-00.png'));
    await cli('generate', run2, '--digit', '9', '--count', '3', '--seed', '7', '--out', path.join(tmp, 'gen2'));
    expect(readFileSync(path.join(tmp, 'gen2', 'digit-9-00.png')).equals(a)).toBe(true);
    // default folder and count
    const r = await cli('generate', run2, '--digit', '4');
    expect(r.code).toBe(0);
    expect(wrote(r.out)).toHaveLength(11);
    expect(existsSync(path.join(run2, 'generate', 'digit-4-09.png'))).toBe(true);
    // supervised run: its target points
    for (let d = 0; d <= 9; d++) {
      const s = await cli('generate', runSup, '--digit', String(d), '--count', '2', '--out', path.join(tmp, 'gensup'));
      expect(s.code).toBe(0);
    }
  });

  it('digitLatents: supervised targets, centroids of train latents, fallback to test latents', async () => {
    const backend = await createBackend('reference');
    const sup = await openRun(runSup, { backend });
    const z0 = digitLatents(sup, 4, 5, 0, new Rng(1));
    for (let i = 0; i < 5; i++) expect([z0[2 * i], z0[2 * i + 1]]).toEqual([6, 2]);
    const zs = digitLatents(sup, 0, 2000, 0.5, new Rng(1));
    let mx = 0, sx = 0;
    for (let i = 0; i < 2000; i++) { mx += zs[2 * i]; sx += (zs[2 * i] + 2) ** 2; }
    expect(mx / 2000).toBeCloseTo(-2, 1);
    expect(Math.sqrt(sx / 2000)).toBeCloseTo(0.5, 1);

    const run = await openRun(run10, { backend });
    const c = centroids(run.trainLatents!);
    for (let d = 0; d <= 9; d++) {
      expect(c.count[d]).toBeGreaterThan(0);
      const z = digitLatents(run, d, 4, 0, new Rng(0));
      expect(z.length).toBe(40);
      for (let j = 0; j < 10; j++) expect(z[j]).toBeCloseTo(c.mean[d * 10 + j], 5);
    }
    // no train latents: the test latents' centroid
    const ct = centroids(run.testLatents);
    const z = digitLatents({ ...run, trainLatents: null }, 3, 1, 0, new Rng(0));
    for (let j = 0; j < 10; j++) expect(z[j]).toBeCloseTo(ct.mean[30 + j], 5);
    // the noise follows the digit's per-dimension std
    const zn = digitLatents(run, 7, 4000, 2, new Rng(3));
    let s = 0;
    for (let i = 0; i < 4000; i++) s += (zn[i * 10] - c.mean[70]) ** 2;
    expect(Math.sqrt(s / 4000) / (2 * c.std[70])).toBeCloseTo(1, 1);
    expect(() => digitLatents(run, 12, 1, 1, new Rng(0))).toThrow(/--digit: expected a digit 0-9/);
  });

  it('recon: originals beside reconstructions, N per digit', async () => {
    const r = await cli('recon', run2, '--per-digit', '3', '--data-dir', DATA);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(wrote(r.out)).toEqual([path.join(run2, 'recon.png')]);
    const size = reconFigureSize(3, 10, 28, 28, { caption: 'x' });
    await expectPng(path.join(run2, 'recon.png'), size.width, size.height);
  });

  it('gif: one frame per snapshot, fixed size', async () => {
    const out = path.join(tmp, 'film.gif');
    const r = await cli('gif', run2, '--fps', '10', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(wrote(r.out)).toEqual([out]);
    const backend = await createBackend('reference');
    const run = await openRun(run2, { backend });
    expect(countGifFrames(new Uint8Array(readFileSync(out)))).toBe(run.snapshotSteps().length);
    expect(run.snapshotSteps()).toEqual([0, 20, 40, 60]);
    // 10-D run: PCA of the snapshots
    const r10 = await cli('gif', run10);
    expect(r10.code).toBe(0);
    expect(countGifFrames(new Uint8Array(readFileSync(path.join(run10, 'training.gif'))))).toBe(2);
  });

  it('plot loss: several runs, log scale', async () => {
    const out = path.join(tmp, 'loss.png');
    const r = await cli('plot', 'loss', run2, run10, '--log', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(wrote(r.out)).toEqual([out]);
    const size = lossFigureSize();
    await expectPng(out, size.width, size.height);
    const r2 = await cli('plot', 'loss', run2);
    expect(r2.code).toBe(0);
    expect(wrote(r2.out)).toEqual([path.join(run2, 'loss.png')]);
  });

  it('plot loss of a supervised run: training reconstruction against test MSE, the latent-map term in its own panel', async () => {
    const out = path.join(tmp, 'loss-sup.png');
    const r = await cli('plot', 'loss', runSup, '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const size = lossFigureSize({ latent: true });
    expect(size.height).toBeGreaterThan(lossFigureSize().height);
    await expectPng(out, size.width, size.height);
    const pic = await lossPicture([readLossSource(runSup)]);
    const lines = readMetrics(runSup).filter((m) => m.loss !== undefined);
    expect(lines.length).toBeGreaterThan(0);
    const [train, test, latent] = pic.series;
    expect(train.name).toBe('sup train');
    // the reconstruction term, not the total (reconstruction + latent term)
    expect(Array.from(train.values)).toEqual(lines.map((m) => m.recon));
    expect(lines.every((m) => m.loss! > m.recon!)).toBe(true);
    expect(test.name).toBe('sup test');
    expect(test.dashed).toBe(true);
    expect(latent.name).toBe('sup latent term');
    expect(Array.from(latent.values)).toEqual(lines.map((m) => m.latent));
  });

  it('10-D run: plot latent and sample on the PCA plane, with the caption saying so', async () => {
    const r = await cli('plot', 'latent', run10);
    expect(r.code).toBe(0);
    const size = latentFigureSize({ caption: 'x' });
    await expectPng(path.join(run10, 'latent.png'), size.width, size.height);
    const s = await cli('sample', run10, '--projection', 'pca', '--grid', '5');
    expect(s.code).toBe(0);
    await expectPng(path.join(run10, 'sample.png'), sampleFigureSize(5).width, sampleFigureSize(5).height);
    const backend = await createBackend('reference');
    const run = await openRun(run10, { backend });
    const pic = await samplePicture(run, { gridN: 3 });
    expect(pic.caption).toMatch(/PCA plane of the 10-D latents.*PCA inverse/);
    expect(pic.latents.length).toBe(9 * 10);
    // the decoded points project back onto the grid points of the plane
    const back = pic.projected.projection.pca!.transform(pic.latents, 9);
    expect(back[0]).toBeCloseTo(pic.box[0], 3);
    expect(back[1]).toBeCloseTo(pic.box[3], 3);
    const lat = await latentPicture(run, 'pca');
    expect(lat.caption).toMatch(/PCA/);
    // UMAP: runs, with its caption
    const u = await cli('plot', 'latent', run10, '--projection', 'umap', '--out', path.join(tmp, 'umap.png'));
    expect(u.code).toBe(0);
    await expectPng(path.join(tmp, 'umap.png'), size.width, size.height);
  });

  it('bad input: a non-zero exit and one line naming the flag or file', async () => {
    const cases: [string[], RegExp][] = [
      [['plot', 'latent', path.join(tmp, 'nope')], /nope: no such run folder/],
      [['sample', path.join(tmp, 'nope')], /nope: no such run folder/],
      [['sample', run2, '--box', '1,2,3'], /--box: expected 4 comma-separated numbers/],
      [['sample', run2, '--box', '1,2,1,3'], /--box: expected a box of non-zero width/],
      [['sample', run2, '--grid', '0'], /--grid: expected an integer from 1 to 40, got '0'/],
      [['sample', run2, '--projection', 'umap'], /--projection: expected one of pca, got 'umap'/],
      [['generate', run2, '--digit', '12'], /--digit: expected an integer from 0 to 9, got '12'/],
      [['generate', run2, '--digit', '3', '--count', '0'], /--count: expected an integer from 1 to 100/],
      [['generate', run2, '--digit', '3', '--spread', '-1'], /--spread: expected a number >= 0/],
      [['recon', run2, '--per-digit', 'x'], /--per-digit: expected an integer/],
      [['gif', run2, '--fps', '0'], /--fps: expected a number more than 0/],
      [['gif', runSup], /snapshots: no snapshots/],
      [['plot', 'latent', run2, '--projection', 'tsne'], /--projection: expected one of pca, umap/],
      [['plot', 'loss', run2, path.join(tmp, 'nope')], /nope: no such run folder/],
      [['plot', 'latent', tmp], /not a run folder/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.err, args.join(' ')).toMatch(/^latentlab: /);
      expect(r.err, args.join(' ')).toMatch(msg);
      expect(wrote(r.out)).toEqual([]);
    }
    // a missing --digit is commander's own one-line error
    const m = await cli('generate', run2);
    expect(m.code).not.toBe(0);
    expect(m.err.trimEnd().split('\n')).toHaveLength(1);
    expect(m.err).toMatch(/--digit/);
  });
});
