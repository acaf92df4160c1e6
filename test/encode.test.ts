/**
 * `latentlab encode` and `encodeImages`: real MNIST test digits drawn large, dark on light, as PNG
 * and JPEG files, come back through the preprocessing close to the originals; their latent
 * points are the model's; the outputs are written; bad files give one line naming the file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCanvas } from '@napi-rs/canvas';
import '../src/node-backends.js';
import { cli } from './cli-helper.js';
import { train } from '../src/lab/train/train.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/index.js';
import { openRun, type Run } from '../src/lab/run/run.js';
import { encodeImages } from '../src/lab/analysis/encode.js';
import { decodePng } from '../src/viz/node.js';
import { labelledSheetSize, latentFigureSize } from '../src/viz/figures.js';
import { MNIST_DIR } from './helpers.js';
import { need } from './requirements.js';

const haveData = need('mnist', 'encode.test');


/** Test image i drawn at `scale`x, black ink on white paper, off-centre on a wider page. */
function drawDigit(images: Uint8Array, i: number, scale: number, format: 'png' | 'jpeg'): Buffer {
  const w = 28 * scale + 60, h = 28 * scale + 20;
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, w, h);
  const img = ctx.createImageData(28, 28);
  for (let k = 0; k < 784; k++) {
    const g = 255 - images[i * 784 + k]!;
    img.data[4 * k] = img.data[4 * k + 1] = img.data[4 * k + 2] = g;
    img.data[4 * k + 3] = 255;
  }
  const small = createCanvas(28, 28);
  small.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 40, 10, 28 * scale, 28 * scale);
  return format === 'png' ? canvas.toBuffer('image/png') : canvas.toBuffer('image/jpeg', 95);
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]! / n; mb += b[i]! / n; }
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) { const x = a[i]! - ma, y = b[i]! - mb; sab += x * y; saa += x * x; sbb += y * y; }
  return sab / Math.sqrt(saa * sbb);
}

describe.skipIf(!haveData)('encode', () => {
  let tmp = '', runDir = '', run: Run;
  let data: LoadedDataset;
  const files: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-encode-'));
    data = await loadDataset('mnist', { dataDir: MNIST_DIR });
    runDir = path.join(tmp, 'run');
    await train({ batchSize: 32, backend: 'wasm', threads: 2, dataDir: MNIST_DIR, maxSteps: 3 }, { out: runDir, data, testLimit: 200, trainLatents: 200 });
    run = await openRun(runDir, { backendName: 'wasm', threads: 2 });
    for (const [i, fmt, scale] of [[0, 'png', 10], [1, 'jpeg', 6], [2, 'png', 3]] as const) {
      const f = path.join(tmp, `digit${i}.${fmt === 'png' ? 'png' : 'jpg'}`);
      writeFileSync(f, drawDigit(data.test.images, i, scale, fmt));
      files.push(f);
    }
  });

  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('encodeImages: the preprocessed pictures match the MNIST originals; z is the model encoding', async () => {
    const enc = await encodeImages(run, files);
    expect(enc.length).toBe(3);
    for (const [i, e] of enc.entries()) {
      const orig = data.test.images.subarray(i * 784, (i + 1) * 784);
      expect(correlation(e.pixels, orig), e.file).toBeGreaterThan(0.9);
      expect(e.input.length).toBe(784);
      expect(e.z.length).toBe(2);
      const z = run.model.encode(e.input, 1);
      expect([...e.z]).toEqual([...z]);
      expect(e.recon.length).toBe(784);
    }
  });

  it('latentlab encode prints the points and writes inputs, reconstructions and the plot', async () => {
    const out = path.join(tmp, 'out');
    const r = await cli('encode', runDir, ...files, '--plot', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    for (const f of files) expect(lines.some((l) => l.startsWith(`${f}: (`) && /\(-?\d+\.\d+, -?\d+\.\d+\)$/.test(l))).toBe(true);
    for (const s of ['digit0', 'digit1', 'digit2']) {
      for (const k of ['input', 'recon']) {
        const img = await decodePng(path.join(out, `${s}-${k}.png`));
        expect([img.width, img.height]).toEqual([28, 28]);
      }
    }
    const plot = await decodePng(path.join(out, 'encode-latent.png'));
    const size = latentFigureSize();
    expect([plot.width, plot.height]).toEqual([size.width, size.height]);
  });

  it('encode FOLDER --worst N: the N pictures reconstructed worst, highest error first, with their file names; a picture of them', async () => {
    const folder = path.join(tmp, 'mine');
    mkdirSync(folder);
    // five of the user's pictures, and a file that is no picture (skipped: only .png/.jpg/.jpeg are read)
    const names = ['a.png', 'b.jpg', 'c.png', 'd.JPEG', 'e.png'];
    names.forEach((n, i) => writeFileSync(path.join(folder, n), drawDigit(data.test.images, 10 + i, 4 + i, /\.png$/.test(n) ? 'png' : 'jpeg')));
    writeFileSync(path.join(folder, 'notes.txt'), 'not a picture');
    const out = path.join(tmp, 'worst-out');
    const r = await cli('encode', runDir, folder, '--worst', '2', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // the expected order, from the reconstructions themselves
    const enc = await encodeImages(run, names.map((n) => path.join(folder, n)));
    const mse = enc.map((e) => e.recon.reduce((s, v, i) => s + (v - e.input[i]!) ** 2, 0) / 784);
    const order = mse.map((m, i) => [m, i] as const).sort((x, y) => y[0] - x[0]).map(([, i]) => i);
    const line = r.out.split('\n').find((l) => l.startsWith('worst reconstructed: '))!;
    expect(line).toBe(`worst reconstructed: ${order.slice(0, 2).map((i) => `${path.join(folder, names[i]!)} (MSE ${mse[i]!.toFixed(4)})`).join(', ')}`);
    expect(r.out).not.toContain('notes');
    const sheet = await decodePng(path.join(out, 'worst.png'));
    const size = labelledSheetSize(4, 10, { caption: 'x' });
    expect([sheet.width, sheet.height]).toEqual([size.width, size.height]);
    // --json: the worst as data
    const j = await cli('encode', runDir, folder, '--worst', '9', '--out', out, '--json');
    expect(j.code).toBe(0);
    const worst = JSON.parse(j.out.trim().split('\n').pop()!).worst as { file: string; mse: number }[];
    expect(worst.map((w) => w.file)).toEqual(order.map((i) => path.join(folder, names[i]!)));
    // the CLI decodes on its own backend (native when built): the same numbers to float precision
    worst.forEach((w, k) => expect(w.mse).toBeCloseTo(mse[order[k]!]!, 5));
  });

  it('encode --worst: bad values and an empty folder are one line, exit 2', async () => {
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty);
    for (const [args, msg] of [
      [['--worst', '0', files[0]!], 'latentlab: --worst: expected a whole number >= 1, got 0\n'],
      [['--worst', 'abc', files[0]!], /^error: option '--worst <n>' argument 'abc' is invalid. --worst: expected an integer, got 'abc'\n$/],
      [[empty], `latentlab: ${empty}: a folder without PNG or JPEG files (.png, .jpg, .jpeg)\n`],
    ] as [string[], string | RegExp][]) {
      const r = await cli('encode', runDir, ...args);
      expect(r.code, r.err).toBe(2);
      if (typeof msg === 'string') expect(r.err).toBe(msg); else expect(r.err).toMatch(msg);
    }
  });

  it('bad files: one line naming the file', async () => {
    const missing = path.join(tmp, 'nope.png');
    let r = await cli('encode', runDir, missing);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`latentlab: ${missing}: cannot read (no such file)\n`);

    const junk = path.join(tmp, 'junk.png');
    writeFileSync(junk, 'not an image');
    r = await cli('encode', runDir, junk);
    expect(r.code).toBe(1);
    expect(r.err.split('\n').length).toBe(2);
    expect(r.err).toContain(`${junk}: not a PNG or JPEG image`);

    const blank = path.join(tmp, 'blank.png');
    const c = createCanvas(50, 50);
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, 50, 50);
    writeFileSync(blank, c.toBuffer('image/png'));
    r = await cli('encode', runDir, files[0]!, blank);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`latentlab: ${blank}: no ink found (blank image)\n`);
  });
});
