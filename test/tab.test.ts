/**
 * "Train in the tab" end to end: `npm run build:web`'s static folder dist/web/tab/ served by
 * `latentlab serve --static` (COOP/COEP headers, nothing else), driven in headless Chromium
 * (playwright-core, /usr/bin/chromium): the real MNIST .gz files given to the file input, a 50-step
 * run in a worker on the wasm backend compared bit for bit with `latentlab train --backend wasm
 * --max-steps 50` (same seed, settings, thread count), the downloaded model evaluated by
 * `latentlab eval --checkpoint` and in PyTorch (its decode against ours), the metrics downloaded, pause / resume / a new LR, a downloaded model
 * reopened, and screenshots at 1280x900 and 390x844 in test-output/web/.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createBackend } from '../src/engine/kernels/select.js';
import { f32, loadSafetensors, saveSafetensors } from '../src/engine/state.js';
import { loadModel } from '../src/lab/run/run.js';
import { expectClose, f32of, MNIST_DIR, ROOT } from './helpers.js';
import { need, pythonWithTorch } from './requirements.js';
import { PHONE, launchChromium, newPage } from './browser-helper.js';

const HAVE_CHROMIUM = need('chromium', 'tab.test');
const SHOTS = path.join(ROOT, 'test-output', 'web');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const TAB = path.join(ROOT, 'dist', 'web', 'tab');
const FILES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map((f) => path.join(MNIST_DIR, f));
/** The recipe of the bit-for-bit comparison: the study's SGD + CyclicLR, latent 2. */
const SAME = { seed: 3, batchSize: 32, steps: 50, threads: 2 };

let server: ChildProcess;
let url = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-tab-'));

function get(p: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    http.get({ host: u.hostname, port: u.port, path: p }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject);
  });
}

beforeAll(async () => {
  server = spawn(process.execPath, [CLI, 'serve', '--static', TAB, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => { out += d.toString(); const m = /(http:\/\/\S+)/.exec(out); if (m) resolve(m[1]); });
    server.once('exit', (code) => reject(new Error(`serve --static exited with ${code}`)));
  });
}, 60_000);
afterAll(() => { server?.kill('SIGTERM'); });

describe('serve --static', () => {
  it('serves the built page with the cross-origin isolation headers, and nothing outside its folder', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    expect(r.body).toContain('train in the tab');
    expect(r.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(r.headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect((await get('/kernels.wasm')).headers['content-type']).toBe('application/wasm');
    expect((await get('/worker.js')).status).toBe(200);
    expect((await get('/nothing.js')).status).toBe(404);
    // a dot segment never leaves the folder (the URL parser folds %2e%2e, a raw one is refused)
    expect((await get('/%2e%2e/app/index.html')).status).toBe(404);
  });

  it('refuses a folder that does not exist in one line', () => {
    const r = spawnSync(process.execPath, [CLI, 'serve', '--static', path.join(tmp, 'nope')], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--static');
  });
});

describe.skipIf(!HAVE_CHROMIUM)('train in the tab (headless Chromium)', () => {
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  let modelFile = '';

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchChromium();
    page = await newPage(browser, { viewport: { width: 1280, height: 900 }, acceptDownloads: true }, errors, (t) => t.includes('favicon') || t.includes('404'));
    await page.goto(url);
  }, 120_000);
  afterAll(async () => { await browser?.close(); });

  const state = (): Promise<{ runState: string; metrics: number; plane: number | null; status: string }> =>
    page.evaluate(() => (self as unknown as { tabState: () => { runState: string; metrics: number; plane: number | null; status: string } }).tabState());
  const waitState = (s: string, timeout = 300_000): Promise<unknown> =>
    page.waitForFunction((want) => (self as unknown as { tabState: () => { runState: string } }).tabState().runState === want, s, { timeout, polling: 250 });
  async function downloadOf(button: string, name: string): Promise<string> {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
    const file = path.join(tmp, `${Date.now()}-${name}`);
    await d.saveAs(file);
    expect(d.suggestedFilename()).toBe(name);
    return file;
  }
  async function recipe(r: { latent: string; recipe: string; seed: number; batch: number; steps: number; threads: number }): Promise<void> {
    await page.selectOption('select[name=latent]', r.latent);
    await page.selectOption('select[name=recipe]', r.recipe);
    await page.fill('input[name=seed]', String(r.seed));
    await page.fill('input[name=batchSize]', String(r.batch));
    await page.fill('input[name=maxSteps]', String(r.steps));
    await page.fill('input[name=threads]', String(r.threads));
  }

  it('takes the .gz files, trains 50 steps on wasm with threads, the loss goes down: the same weights as `latentlab train --backend wasm`, bit for bit', async () => {
    await page.setInputFiles('#files', FILES);
    await expect.poll(() => page.textContent('#filelist')).not.toContain('missing');
    await recipe({ latent: '2', recipe: 'sgd-cyclic', seed: SAME.seed, batch: SAME.batchSize, steps: SAME.steps, threads: SAME.threads });
    await page.click('#train');
    await waitState('finished');
    expect(await page.textContent('#backend')).toMatch(new RegExp(`^wasm.*${SAME.threads} threads`));
    expect((await state()).plane).toBe(SAME.steps);
    await page.screenshot({ path: path.join(SHOTS, 'tab-trained-1280x900.png'), fullPage: true });

    modelFile = await downloadOf('#dlmodel', 'model.safetensors');
    const metricsFile = await downloadOf('#dlmetrics', 'metrics.jsonl');
    const lines = readFileSync(metricsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const losses = lines.filter((l) => l.loss !== undefined);
    expect(losses.map((l) => l.step)).toEqual([10, 20, 30, 40, 50]);
    expect(losses.at(-1)!.loss).toBeLessThan(losses[0].loss * 0.8);

    // the same run in Node, through the CLI
    const out = path.join(tmp, 'node-run');
    const r = spawnSync(process.execPath, [CLI, 'train', '--backend', 'wasm', '--threads', String(SAME.threads), '--max-steps', String(SAME.steps),
      '--seed', String(SAME.seed), '--batch-size', String(SAME.batchSize), '--latent', '2', '--data-dir', MNIST_DIR, '--out', out], { encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    const node = loadSafetensors(new Uint8Array(readFileSync(path.join(out, 'model.safetensors')))).tensors;
    const tab = loadSafetensors(new Uint8Array(readFileSync(modelFile))).tensors;
    expect([...tab.keys()].sort()).toEqual([...node.keys()].sort());
    let differing = 0;
    for (const [k, v] of node) {
      const a = new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength), b = tab.get(k)!.data;
      const bb = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      expect(bb.length, k).toBe(a.length);
      for (let i = 0; i < a.length; i++) if (a[i] !== bb[i]) { differing++; break; }
    }
    expect(differing, 'tensors whose bytes differ between the tab and Node').toBe(0);
    // and the losses logged along the way are the same numbers
    const nodeLines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => l.loss !== undefined);
    expect(losses.map((l) => l.loss)).toEqual(nodeLines.map((l) => l.loss));
  }, 900_000);

  it('the downloaded model.safetensors loads in `latentlab eval --checkpoint`', () => {
    const r = spawnSync(process.execPath, [CLI, 'eval', '--checkpoint', modelFile, '--model', 'bn', '--latent', '2', '--data-dir', MNIST_DIR, '--limit', '500', '--json'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as Record<string, unknown>;
    const mse = Number((rep as { mse?: number; testMse?: number }).mse ?? (rep as { testMse?: number }).testMse);
    expect(mse).toBeGreaterThan(0);
    expect(mse).toBeLessThan(1);
  }, 300_000);

  it('the downloaded model.safetensors loads in PyTorch (load_state_dict strict=True) and decodes latents as ours does, within 1e-4', async () => {
    if (!need('pytorch', 'tab.test')) return;
    expect(modelFile, 'the model downloaded by the first test').not.toBe('');
    // latents inside and well outside where the short run puts its codes
    const z = Float32Array.of(0, 0, 0.5, -0.25, -1, 1.5, 3, -2);
    const input = path.join(tmp, 'latents-in.safetensors'), out = path.join(tmp, 'torch-out.safetensors');
    writeFileSync(input, saveSafetensors(new Map([['z', f32([4, 2], z)]])));
    // the study's PyTorch model (tools/fixtures/gen_model.py), the file loaded with strict=True, eval mode
    const r = spawnSync(pythonWithTorch()!, [path.join(ROOT, 'tools', 'fixtures', 'roundtrip.py'), modelFile, input, out, '2'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const torchY = f32of(loadSafetensors(new Uint8Array(readFileSync(out))).tensors, 'y');
    const ours = loadModel(modelFile, { model: 'bn', latent: 2 }, await createBackend('reference')).decode(z, 4);
    expect(torchY.length).toBe(4 * 784);
    expectClose(ours, torchY, 'decode of the tab-trained model: ours vs PyTorch', 1e-4);
  }, 300_000);

  it('pauses, resumes and takes a new learning rate while it trains (Adam, conv latent)', async () => {
    await recipe({ latent: 'conv', recipe: 'adam', seed: 1, batch: 16, steps: 400, threads: 2 });
    await page.click('#train');
    await page.waitForFunction(() => (self as unknown as { tabState: () => { metrics: number } }).tabState().metrics >= 2, null, { timeout: 300_000 });
    await page.click('#pause');
    await waitState('paused', 30_000);
    const at = Number(/paused at step (\d+)/.exec((await state()).status)![1]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(Number(/paused at step (\d+)/.exec((await state()).status)![1])).toBe(at);
    expect((await state()).runState).toBe('paused');
    await page.fill('#lr', '0.0005');
    await page.click('#setlr');
    await page.click('#pause'); // now "Resume"
    await waitState('running', 30_000);
    await page.waitForFunction((s) => (self as unknown as { tabState: () => { status: string } }).tabState().status.match(/step (\d+)/) && Number(/step (\d+)/.exec((self as unknown as { tabState: () => { status: string } }).tabState().status)![1]) > s + 20, at, { timeout: 300_000 });
    await page.click('#stop');
    await waitState('stopped', 30_000);
    const file = await downloadOf('#dlmetrics', 'metrics.jsonl');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => l.loss !== undefined);
    expect(lines.filter((l) => l.step <= at).every((l) => l.lr === 1e-3)).toBe(true);
    const after = lines.filter((l) => l.step > at);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((l) => l.lr === 0.0005)).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'tab-paused-lr-1280x900.png'), fullPage: true });
  }, 600_000);

  it('the bench page measures the training step in the tab on wasm with threads (npm run bench compares it with Node)', async () => {
    const b = await browser.newPage();
    await b.goto(`${url}bench.html?threads=2&windows=1`);
    await b.waitForFunction(() => (self as unknown as { benchResult?: unknown }).benchResult !== undefined, null, { timeout: 300_000, polling: 250 });
    const r = await b.evaluate(() => (self as unknown as { benchResult: Record<string, unknown> }).benchResult);
    await b.close();
    expect(r).toMatchObject({ backend: 'wasm', threads: 2, batchSize: 64 });
    expect(r.windows as number[]).toHaveLength(1);
    expect(r.samplesPerSec as number).toBeGreaterThan(0);
  }, 300_000);

  it('reopens a downloaded model: its plane is drawn from the test images', async () => {
    await page.setInputFiles('#openmodel', modelFile);
    await page.waitForFunction(() => (self as unknown as { tabState: () => { runState: string } }).tabState().runState === 'opened', null, { timeout: 120_000 });
    expect((await state()).status).toContain('latent 2');
    const st = await page.evaluate(() => (self as unknown as { tabState: () => { plane: number; dim: number } }).tabState());
    expect(st).toMatchObject({ plane: 0, dim: 2 }); // the reopened model's own plane, not the last run's (conv)
    // the plane of the reopened model is the plane of the trained one at its last step (the same weights, the same subset)
    const ink = await page.$eval('#plane', (c) => {
      const cv = c as HTMLCanvasElement, d = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
      let n = 0; for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i + 1]) > 60 || Math.abs(d[i + 1] - d[i + 2]) > 60) n++;
      return n;
    });
    expect(ink).toBeGreaterThan(500); // coloured points
    await page.screenshot({ path: path.join(SHOTS, 'tab-reopened-1280x900.png'), fullPage: true });
    await page.setViewportSize(PHONE);
    await page.screenshot({ path: path.join(SHOTS, 'tab-390x844.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    expect(errors).toEqual([]);
  }, 300_000);
});
