/**
 * The explorer's views beyond the plane, end to end on real tiny runs of real MNIST: the nearest real
 * images (checked against a brute-force search over the served latents and images), the interpolation
 * strip (its end frames are the decodes of its endpoints), the shareable address (a reload restores the
 * view, the box and the pins), PNG export, and VAE runs in the explorer and the library. Headless
 * Chromium (playwright-core driving /usr/bin/chromium); screenshots go to test-output/web-views/.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import '../src/node-backends.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/datasets.js';
import { IMAGE_PIXELS, toByte } from '../src/lab/data/image.js';
import { isVae } from '../src/lab/models/family.js';
import { loadModel, openRun, readLatents, type Latents } from '../src/lab/run/run.js';
import { latentsTestImages } from '../src/lab/run/test-latents.js';
import { train } from '../src/lab/train/train.js';
import { startServer, type WebServer } from '../src/web/server.js';
import { MNIST_DIR, ROOT } from './helpers.js';
import { need } from './requirements.js';
import { DESKTOP, usePage } from './browser-helper.js';

const HAVE_CHROMIUM = need('chromium', 'web-views.test');
const HAVE_MNIST = need('mnist', 'web-views.test');
const SHOTS = path.join(ROOT, 'test-output', 'web-views');
const N_TEST = 400;

let runsDir = '';
let srv: WebServer;
let data: LoadedDataset;
const quick = { batchSize: 32, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 10, snapshotEvery: 0 } as const;

function get(p: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: srv.port, path: p }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

/** Width, height and the decoded (inflated) scanlines' length of a PNG; throws when it is not one. */
function decodePng(buf: Buffer): { width: number; height: number; bytesPerPixel: number } {
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  let o = 8, width = 0, height = 0, bpp = 0;
  const idat: Buffer[] = [];
  while (o < buf.length) {
    const len = buf.readUInt32BE(o), type = buf.toString('latin1', o + 4, o + 8), body = buf.subarray(o + 8, o + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0); height = body.readUInt32BE(4);
      expect(body[8]).toBe(8); // 8 bits a channel
      bpp = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[body[9]];
    } else if (type === 'IDAT') idat.push(body);
    o += 12 + len;
  }
  // every scanline: one filter byte, then width pixels
  expect(inflateSync(Buffer.concat(idat)).length).toBe(height * (1 + width * bpp));
  return { width, height, bytesPerPixel: bpp };
}

beforeAll(async () => {
  if (!HAVE_MNIST) return;
  const b = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'build-web.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`build-web failed: ${b.stderr}`);
  data = await loadDataset('mnist', { dataDir: MNIST_DIR });
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-views-'));
  const common = { data, testLimit: N_TEST, trainLatents: 200 };
  await train({ ...quick, maxSteps: 40 }, { ...common, out: path.join(runsDir, 'plain') });
  await train({ ...quick, maxSteps: 40, model: 'vae' as never }, { ...common, out: path.join(runsDir, 'vae') });
  // a run whose config.json records other test images than the ones this server has
  cpSync(path.join(runsDir, 'plain'), path.join(runsDir, 'otherdata'), { recursive: true });
  const cfgFile = path.join(runsDir, 'otherdata', 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { data: { md5: Record<string, string> } };
  cfg.data.md5.testImages = '0'.repeat(32);
  writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
  srv = await startServer({ runsDir, port: 0, dataDir: MNIST_DIR });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => { await srv?.close(); });

describe.skipIf(!HAVE_MNIST)('the test images behind the latents, and VAE runs in the library', () => {
  it('serves the first n test images of the run\'s data, n the rows of latents.safetensors, in the latents\' order', async () => {
    const r = await get('/api/runs/plain/test-images');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.headers['x-images']).toBe(String(N_TEST));
    expect(r.headers['cross-origin-embedder-policy']).toBe('require-corp');
    const want = latentsTestImages(data.test, N_TEST);
    expect(r.body.length).toBe(N_TEST * IMAGE_PIXELS);
    expect(r.body.equals(Buffer.from(want.images))).toBe(true);
    expect(Buffer.from(want.images).equals(Buffer.from(data.test.images.subarray(0, N_TEST * IMAGE_PIXELS)))).toBe(true);
    // the latents' labels are those images' labels, row by row
    const lat = readLatents(path.join(runsDir, 'plain', 'latents.safetensors'));
    expect(Array.from(lat.labels)).toEqual(Array.from(want.labels));
  });

  it('refuses, in one line, test images that are not the run\'s data, and runs that do not exist', async () => {
    const r = await get('/api/runs/otherdata/test-images');
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body.toString()).error).toMatch(/^otherdata: the mnist test images found on this server are not the ones the run was trained on \(MD5 differs from config.json\)/);
    expect((await get('/api/runs/nope/test-images')).status).toBe(404);
    expect((await get('/api/runs/..%2Fplain/test-images')).status).toBe(400);
  });

  it('openRun and loadModel open a VAE run: its model is the VAE, the latents file holds the encoder\'s means', async () => {
    const run = await openRun(path.join(runsDir, 'vae'), { backendName: 'wasm', threads: 1 });
    expect(isVae(run.model)).toBe(true);
    expect(run.config.vae).toBe(true);
    const x = new Float32Array(16 * IMAGE_PIXELS);
    for (let i = 0; i < x.length; i++) x[i] = data.test.images[i] / 127.5 - 1;
    const mu = run.model.encode(x, 16);
    const z = run.testLatents.z.subarray(0, 16 * 2);
    for (let i = 0; i < z.length; i++) expect(Math.abs(mu[i] - z[i])).toBeLessThan(1e-4);
    // decode is deterministic (the decoder's output at z, no sampling)
    expect(Array.from(run.model.decode(mu, 16))).toEqual(Array.from(run.model.decode(mu, 16)));
    expect(() => loadModel(path.join(runsDir, 'vae', 'model.safetensors'), { vae: false })).toThrow(/^[^\n]*model\.safetensors[^\n]*$/);
  });
});

describe.skipIf(!HAVE_CHROMIUM || !HAVE_MNIST)('views in headless Chromium', () => {
  let page: Page;
  let plainLatents: Latents;
  const errors = usePage(async (_b, p) => {
    page = p;
    // the page's decode requests to the model worker, by the number of latents in each
    await page.addInitScript(() => {
      const w = window as unknown as { decodeCalls: number[] };
      w.decodeCalls = [];
      const post = Worker.prototype.postMessage as (this: Worker, m: unknown, t?: Transferable[]) => void;
      Worker.prototype.postMessage = function (this: Worker, m: unknown, t?: Transferable[]) {
        if ((m as { type?: string }).type === 'decode') w.decodeCalls.push((m as { n: number }).n);
        post.call(this, m, t);
      } as typeof Worker.prototype.postMessage;
    });
    plainLatents = readLatents(path.join(runsDir, 'plain', 'latents.safetensors'));
  }, { acceptDownloads: true });

  async function open(query: string): Promise<void> {
    const run = new URLSearchParams(query).get('run')!;
    await page.goto(`${srv.url}?${query}`);
    await page.waitForSelector(`body[data-ready="1"][data-model="ready"][data-run="${run}"]`, { timeout: 90_000 });
  }
  /** The plane's plot area in page coordinates (the scatter leaves margins for the axes). */
  async function plot(): Promise<{ x: number; y: number; w: number; h: number }> {
    const b = (await page.locator('#overlay').boundingBox())!;
    const [px, py, pw, ph] = (await page.getAttribute('#overlay', 'data-plot'))!.split(',').map(Number);
    return { x: b.x + px, y: b.y + py, w: pw, h: ph };
  }
  const rgba = (sel: string): Promise<number[]> => page.$eval(sel, (c) => {
    const cv = c as HTMLCanvasElement;
    return Array.from(cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data);
  });
  async function download(button: string): Promise<Buffer> {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
    return readFileSync((await d.path())!);
  }

  it('hovering shows the k nearest test images: the brute-force nearest of the served latents, with their labels and pixels', async () => {
    await open('run=plain');
    const p = await plot();
    await page.mouse.move(p.x + p.w * 0.3, p.y + p.h * 0.6);
    await page.mouse.move(p.x + p.w * 0.55, p.y + p.h * 0.45, { steps: 3 });
    await page.waitForFunction(() => document.getElementById('nearest')!.dataset.run === 'plain', null, { timeout: 30_000 });
    await page.waitForTimeout(500); // the last hover's neighbours
    const shown = await page.$eval('#nearest', (e) => ({ ...(e as HTMLElement).dataset }));
    const z = shown.z!.split(',').map(Number);
    expect(z).toHaveLength(2);
    // brute force over every row of latents.safetensors
    const { z: lz, n, dim, labels } = plainLatents;
    const d = Array.from({ length: n }, (_, i) => ({ i, d: Math.hypot(...Array.from({ length: dim }, (_, j) => lz[i * dim + j] - z[j])) }));
    d.sort((a, b) => a.d - b.d || a.i - b.i);
    const want = d.slice(0, 8);
    expect(shown.indices!.split(',').map(Number)).toEqual(want.map((w) => w.i));
    expect(shown.labels!.split(',').map(Number)).toEqual(want.map((w) => labels[w.i]));
    shown.dists!.split(',').map(Number).forEach((v, k) => expect(v).toBeCloseTo(want[k].d, 5));
    // each shown image is that test image, pixel for pixel
    const served = (await get('/api/runs/plain/test-images')).body;
    for (let k = 0; k < 8; k++) {
      const px = await rgba(`#nearest figure:nth-child(${k + 1}) canvas`);
      const img = served.subarray(want[k].i * IMAGE_PIXELS, (want[k].i + 1) * IMAGE_PIXELS);
      for (let j = 0; j < IMAGE_PIXELS; j++) expect(px[4 * j]).toBe(img[j]);
    }
    expect(await page.textContent('#nearest figure:first-child figcaption')).toBe(`${labels[want[0].i]} · ${Number(want[0].d.toPrecision(2))}`);
  }, 120_000);

  it('the interpolation strip between two pins starts and ends with their decodes, and exports as a PNG of its size', async () => {
    await open('run=plain');
    // zoomed out, so that the two pins are far apart in the latent space (and decode to different pictures)
    await page.focus('#overlay');
    for (let i = 0; i < 6; i++) await page.keyboard.press('-');
    const p = await plot();
    await page.mouse.click(p.x + p.w * 0.1, p.y + p.h * 0.9);
    await page.waitForFunction(() => document.getElementById('pins')!.dataset.count === '1');
    await page.mouse.click(p.x + p.w * 0.9, p.y + p.h * 0.1);
    await page.waitForFunction(() => document.getElementById('pins')!.dataset.count === '2');
    await page.waitForFunction(() => /from pin 1 to pin 2, linear/.test(document.getElementById('interp-caption')!.textContent ?? ''), null, { timeout: 30_000 });
    expect(await page.getAttribute('#interp', 'data-frames')).toBe('10');
    const strip = await rgba('#interp');
    const W = Number(await page.$eval('#interp', (c) => (c as HTMLCanvasElement).width));
    expect(W).toBe(10 * 28 + 9 * 2);
    const frame = (f: number): number[] => Array.from({ length: IMAGE_PIXELS }, (_, j) => strip[4 * (Math.floor(j / 28) * W + f * 30 + (j % 28))]);
    const pin1 = (await rgba('#pins li:nth-child(1) canvas')).filter((_, i) => i % 4 === 0);
    const pin2 = (await rgba('#pins li:nth-child(2) canvas')).filter((_, i) => i % 4 === 0);
    const maxDiff = (a: number[], b: number[]): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    // the same latent decoded alone (the pin) and in a batch of 10 (the strip): the same picture
    expect(maxDiff(frame(0), pin1)).toBeLessThanOrEqual(1);
    expect(maxDiff(frame(9), pin2)).toBeLessThanOrEqual(1);
    expect(maxDiff(frame(0), pin2)).toBeGreaterThan(8);
    expect(maxDiff(frame(5), pin1)).toBeGreaterThan(1);
    // two test images by number, spherical path: the ends are those images' latents decoded
    await page.selectOption('#interp-a', 'test');
    await page.selectOption('#interp-b', 'test');
    await page.fill('#interp-a-index', '3');
    await page.dispatchEvent('#interp-a-index', 'change');
    await page.fill('#interp-b-index', '7');
    await page.dispatchEvent('#interp-b-index', 'change');
    await page.selectOption('#interp-path', 'slerp');
    await page.fill('#interp-steps', '6');
    await page.dispatchEvent('#interp-steps', 'change');
    await page.waitForFunction(() => /^6 decodes from test image 3 \(\d\) to test image 7 \(\d\), spherical/.test(document.getElementById('interp-caption')!.textContent ?? ''), null, { timeout: 30_000 });
    expect(await page.textContent('#interp-caption')).toContain(`test image 3 (${plainLatents.labels[3]})`);
    const png = decodePng(await download('#interp-export'));
    expect(png).toMatchObject({ width: 4 * (6 * 28 + 5 * 2), height: 4 * 28 });
    // a drawn digit as an endpoint: the strip starts with its reconstruction (the decode of its z)
    await page.locator('#pad').scrollIntoViewIfNeeded();
    const pad = (await page.locator('#pad').boundingBox())!;
    await page.mouse.move(pad.x + pad.width * 0.25, pad.y + pad.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(pad.x + pad.width * 0.75, pad.y + pad.height * 0.2, { steps: 8 });
    await page.mouse.move(pad.x + pad.width * 0.4, pad.y + pad.height * 0.85, { steps: 10 });
    await page.mouse.up();
    await page.waitForFunction(() => [...document.querySelectorAll('#interp-a option')].some((o) => (o as HTMLOptionElement).value === 'drawn'), null, { timeout: 30_000 });
    await page.selectOption('#interp-a', 'drawn');
    await page.waitForFunction(() => /^6 decodes from the drawn digit to test image 7/.test(document.getElementById('interp-caption')!.textContent ?? ''), null, { timeout: 30_000 });
    await page.waitForTimeout(800); // the last encoding of the drawing, and its strip
    const strip2 = await rgba('#interp');
    const W2 = 6 * 28 + 5 * 2;
    const first = Array.from({ length: IMAGE_PIXELS }, (_, j) => strip2[4 * (Math.floor(j / 28) * W2 + (j % 28))]);
    const recon = (await rgba('#recon')).filter((_, i) => i % 4 === 0);
    expect(maxDiff(first, recon)).toBeLessThanOrEqual(1);
    // a number outside the test images: one line
    await page.fill('#interp-b-index', String(N_TEST));
    await page.dispatchEvent('#interp-b-index', 'change');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toBe(`interpolation: test image: expected a number from 0 to ${N_TEST - 1}, got '${N_TEST}'`);
    await page.screenshot({ path: path.join(SHOTS, 'interpolation.png'), fullPage: true });
  }, 120_000);

  it('the address holds the run, the view, the box and the pins: a reload shows the same, and the plane and grid export as PNG', async () => {
    await open('run=plain');
    await page.focus('#overlay');
    await page.keyboard.press('+');
    await page.keyboard.press('ArrowLeft');
    const p = await plot();
    await page.check('input[name="mode"][value="box"]');
    await page.mouse.move(p.x + p.w * 0.25, p.y + p.h * 0.3);
    await page.evaluate(() => { (window as unknown as { decodeCalls: number[] }).decodeCalls = []; });
    await page.mouse.down();
    await page.mouse.move(p.x + p.w * 0.7, p.y + p.h * 0.75, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(() => document.getElementById('grid')!.dataset.cells === '100', null, { timeout: 30_000 });
    // the 10x10 grid is one decode call of 100 latents (the worker runs them in one forward pass)
    expect(await page.evaluate(() => (window as unknown as { decodeCalls: number[] }).decodeCalls.filter((n) => n > 1))).toEqual([100]);
    await page.check('input[name="mode"][value="pan"]');
    await page.mouse.click(p.x + p.w * 0.4, p.y + p.h * 0.5);
    await page.waitForFunction(() => document.getElementById('pins')!.dataset.count === '1');
    await page.mouse.click(p.x + p.w * 0.6, p.y + p.h * 0.35);
    await page.waitForFunction(() => document.getElementById('pins')!.dataset.count === '2');
    await page.waitForFunction(() => /view=.*box=.*pins=[^;]+;/.test(location.search));
    const url = page.url();
    const q = new URL(url).searchParams;
    expect(q.get('run')).toBe('plain');
    expect(q.get('view')!.split(',')).toHaveLength(4);
    const gridCaption = await page.textContent('#grid-caption');
    const pinsText = await page.$$eval('#pins li', (li) => li.map((l) => l.textContent));
    const view = await page.getAttribute('#overlay', 'data-plot');
    // a new page with that address: the same view, box (grid) and pins, and the same address
    await page.goto('about:blank');
    await page.goto(url);
    await page.waitForSelector('body[data-ready="1"][data-model="ready"][data-run="plain"]', { timeout: 90_000 });
    await page.waitForFunction(() => document.getElementById('pins')!.dataset.count === '2', null, { timeout: 30_000 });
    await page.waitForFunction(() => document.getElementById('grid')!.dataset.cells === '100', null, { timeout: 30_000 });
    expect((await page.textContent('#grid-caption'))!.replace(/ \(\d+ ms\)$/, '')).toBe(gridCaption!.replace(/ \(\d+ ms\)$/, ''));
    expect(await page.$$eval('#pins li', (li) => li.map((l) => l.textContent))).toEqual(pinsText);
    expect(await page.getAttribute('#overlay', 'data-plot')).toBe(view);
    await page.waitForFunction((u) => location.href === u, url);
    // export: the plane (with its marks) and the grid, each a PNG of the canvas's size
    const planeSize = await page.$eval('#overlay', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
    expect(decodePng(await download('#export-plane'))).toMatchObject({ width: planeSize[0], height: planeSize[1] });
    const gridSize = await page.$eval('#grid', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
    expect(gridSize).toEqual([10 * 28 + 9 * 2, 10 * 28 + 9 * 2]); // the grid is drawn at the images' own size
    expect(decodePng(await download('#export-grid'))).toMatchObject({ width: 4 * gridSize[0], height: 4 * gridSize[1] });
    // a bad address: one line, and the run still opens
    await open('run=plain&box=1,2,x');
    expect(await page.textContent('#error')).toBe('address: box=1,2,x: expected 4 numbers separated by commas');
    expect(errors.filter((e) => !/favicon/.test(e))).toEqual([]);
  }, 180_000);

  it('a VAE run opens: the plane is the prior (caption, 1- and 2-sigma rings), hover decodes the decoder at z, slerp by default', async () => {
    await open('run=vae');
    expect(await page.textContent('#plane-caption')).toMatch(/^VAE, 2-D latent: the plane is its latent space under the prior N\(0, I\) \(rings at 1σ and 2σ\); each dot is the encoder's mean/);
    expect(await page.inputValue('#interp-path')).toBe('slerp');
    expect(await page.getAttribute('#curve-latent', 'data-kind')).toBe('kl'); // the second chart is the KL
    const [cx, cy, rx] = (await page.getAttribute('#overlay', 'data-prior'))!.split(',').map(Number);
    const ov = await rgba('#overlay');
    const ow = await page.$eval('#overlay', (c) => (c as HTMLCanvasElement).width);
    const dpr = await page.evaluate(() => devicePixelRatio);
    const at = (x: number, y: number): number => ov[4 * (Math.round(y * dpr) * ow + Math.round(x * dpr)) + 3];
    // the 1-sigma ring passes through (cx + rx, cy) and the 2-sigma ring through (cx - 2rx, cy); the centre is empty
    expect(Math.max(at(cx + rx, cy), at(cx + rx - 1, cy), at(cx + rx + 1, cy))).toBeGreaterThan(0);
    expect(Math.max(at(cx - 2 * rx, cy), at(cx - 2 * rx - 1, cy), at(cx - 2 * rx + 1, cy))).toBeGreaterThan(0);
    const p = await plot();
    await page.mouse.move(p.x + p.w * 0.5, p.y + p.h * 0.5);
    await page.mouse.move(p.x + p.w * 0.45, p.y + p.h * 0.4, { steps: 2 });
    await page.waitForFunction(() => document.getElementById('nearest')!.dataset.run === 'vae', null, { timeout: 30_000 });
    await page.waitForTimeout(500);
    const z = Float32Array.from((await page.getAttribute('#nearest', 'data-z'))!.split(',').map(Number));
    const shown = (await rgba('#decoded')).filter((_, i) => i % 4 === 0);
    const run = await openRun(path.join(runsDir, 'vae'), { backendName: 'wasm', threads: 1 });
    const want = Array.from(run.model.decode(z, 1), toByte);
    expect(shown.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0)).toBeLessThanOrEqual(1);
    await page.screenshot({ path: path.join(SHOTS, 'vae-prior.png'), fullPage: true });
  }, 120_000);

  it('lays out on a desktop and a 390 px phone (screenshots kept)', async () => {
    for (const [w, h, run] of [[1280, 800, 'plain'], [390, 844, 'plain'], [390, 844, 'vae']] as const) {
      await page.setViewportSize({ width: w, height: h });
      await open(`run=${run}`);
      const p = await plot();
      await page.mouse.click(p.x + p.w * 0.3, p.y + p.h * 0.7);
      await page.mouse.click(p.x + p.w * 0.7, p.y + p.h * 0.3);
      await page.waitForFunction(() => document.getElementById('interp')!.dataset.frames === '10', null, { timeout: 30_000 });
      const strip = (await page.locator('#interp').boundingBox())!;
      expect(strip.width).toBeLessThanOrEqual(w);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(w);
      await page.screenshot({ path: path.join(SHOTS, `layout-${run}-${w}x${h}.png`), fullPage: true });
    }
    await page.setViewportSize(DESKTOP);
  }, 180_000);
});
