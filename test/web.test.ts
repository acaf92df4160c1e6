/**
 * The web explorer end to end: real tiny runs trained on real MNIST, the server on a free port, and
 * headless Chromium (playwright-core driving /usr/bin/chromium) hovering, boxing, drawing, generating,
 * training live and stopping; plus the server's API and its security rules over raw HTTP.
 * Screenshots go to test-output/web/. Without Chromium the browser part is skipped (it fails in CI).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import '../src/node-backends.js';
import { STUDY_LATENT_MAP } from '../src/lab/run/config.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/datasets.js';
import { train } from '../src/lab/train/train.js';
import { parseTrainRequest, startServer, type WebServer } from '../src/web/server.js';
import { MNIST_DIR, ROOT } from './helpers.js';
import { need } from './requirements.js';
import { DESKTOP, usePage } from './browser-helper.js';

const HAVE_CHROMIUM = need('chromium', 'web.test');
const SHOTS = path.join(ROOT, 'test-output', 'web');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');


let runsDir = '';
let outside = '';
let srv: WebServer;
let data: LoadedDataset;
const quick = { batchSize: 32, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 5, snapshotEvery: 10 } as const;

/** A raw request (the path is sent as it is, no normalisation). */
function raw(p: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: p, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (opts.body) req.write(opts.body);
    req.end();
  });
}

const postJson = (p: string, body: unknown, headers: Record<string, string> = {}) =>
  raw(p, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs = 180_000, every = 500): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

beforeAll(async () => {
  // the app bundle is cheap to build; the CLI (dist/) is built by npm test
  const b = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'build-web.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`build-web failed: ${b.stderr}`);
  data = await loadDataset('mnist', { dataDir: MNIST_DIR });
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-web-'));
  const common = { data, testLimit: 500, trainLatents: 500 };
  await train({ ...quick, maxSteps: 40 }, { ...common, out: path.join(runsDir, 'plain') });
  await train({ ...quick, maxSteps: 40, supervised: STUDY_LATENT_MAP }, { ...common, out: path.join(runsDir, 'sup') });
  await train({ ...quick, maxSteps: 40, latent: 10 }, { ...common, out: path.join(runsDir, 'z10') });
  // things that lead out of the runs folder
  outside = mkdtempSync(path.join(os.tmpdir(), 'latentlab-outside-'));
  writeFileSync(path.join(outside, 'secret.txt'), 'secret');
  copyFileSync(path.join(runsDir, 'plain', 'config.json'), path.join(outside, 'config.json'));
  copyFileSync(path.join(runsDir, 'plain', 'model.safetensors'), path.join(outside, 'model.safetensors'));
  symlinkSync(outside, path.join(runsDir, 'evil'));
  mkdirSync(path.join(runsDir, 'leaky'));
  copyFileSync(path.join(runsDir, 'plain', 'config.json'), path.join(runsDir, 'leaky', 'config.json'));
  symlinkSync(path.join(outside, 'secret.txt'), path.join(runsDir, 'leaky', 'model.safetensors'));
  srv = await startServer({ runsDir, port: 0, dataDir: MNIST_DIR });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => {
  await srv?.close();
});

describe('server', () => {
  it('lists the runs with their settings and figures, and serves the app with cross-origin isolation', async () => {
    expect(srv.host).toBe('127.0.0.1');
    const r = await raw('/api/runs');
    expect(r.status).toBe(200);
    const runs = JSON.parse(r.body).runs as { name: string; status: string; config: Record<string, unknown>; result: Record<string, unknown> }[];
    const names = runs.map((x) => x.name).sort();
    expect(names).toEqual(expect.arrayContaining(['plain', 'sup', 'z10']));
    expect(names).not.toContain('evil');
    const plain = runs.find((x) => x.name === 'plain')!;
    expect(plain.status).toBe('done');
    expect(plain.config).toMatchObject({ model: 'bn', latent: 2, batchSize: 32 });
    expect(plain.result).toMatchObject({ steps: 40 });
    const page = await raw('/');
    expect(page.status).toBe(200);
    expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
    for (const f of ['/app/main.js', '/app/worker.js', '/app/kernels.wasm', '/app/style.css']) {
      const a = await raw(f);
      expect(a.status, f).toBe(200);
      expect(a.headers['cross-origin-embedder-policy'], f).toBe('require-corp');
    }
    expect((await raw('/app/kernels.wasm')).headers['content-type']).toBe('application/wasm');
    const lat = await raw('/runs/plain/latents.safetensors');
    expect(lat.status).toBe(200);
  });

  it('refuses path traversal, symlinks out of the runs folder and files that are not run data', async () => {
    const bad: [string, number][] = [
      ['/api/runs/..%2F..%2Fetc/passwd', 400],
      ['/api/runs/..%2F..%2Fetc%2Fpasswd', 400],
      ['/runs/../../etc/passwd', 400],
      ['/runs/..%2F..%2Fetc/passwd', 400],
      ['/runs/plain/..%2F..%2F..%2Fetc%2Fpasswd', 400],
      ['/runs/%2Fetc/passwd', 400],
      ['/app/..%2F..%2F..%2Fpackage.json', 400],
      ['/app/../../package.json', 400],
      ['/api/runs/evil', 403],
      ['/runs/evil/config.json', 403],
      ['/runs/evil/model.safetensors', 403],
      ['/runs/leaky/model.safetensors', 403],
      ['/runs/plain/checkpoint.safetensors', 404],
      ['/runs/plain/../sup/config.json', 400],
      ['/package.json', 404],
    ];
    for (const [p, status] of bad) {
      const r = await raw(p);
      expect(r.status, p).toBe(status);
      expect(r.body, p).not.toContain('root:');
      expect(r.body, p).not.toContain('secret');
    }
    // DNS rebinding: a foreign Host is refused
    expect((await raw('/api/runs', { headers: { Host: 'evil.example:80' } })).status).toBe(403);
  });

  it('validates training requests like the CLI and limits request bodies', async () => {
    const cases: [unknown, RegExp][] = [
      [{ settings: { lr: -1 } }, /--lr: expected a positive number/],
      [{ settings: { optimizer: 'rmsprop' } }, /--optimizer/],
      [{ settings: { latent: 'big' } }, /--latent/],
      [{ settings: { batchSize: 1 } }, /--batch-size/],
      [{ settings: { dataDir: '/etc' } }, /not allowed setting 'dataDir'/],
      [{ settings: { supervised: true, latent: 10 } }, /--supervised/],
      [{ name: '../escape', settings: {} }, /name:/],
      [{ name: 'plain', settings: {} }, /already exists/],
      [{ settings: {}, extra: 1 }, /unknown field/],
    ];
    for (const [body, msg] of cases) {
      const r = await postJson('/api/train', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(JSON.parse(r.body).error, JSON.stringify(body)).toMatch(msg);
    }
    expect(() => parseTrainRequest({ settings: { maxSteps: 1.5 } }, runsDir)).toThrow(/--max-steps: expected an integer/);
    const ok = parseTrainRequest({ name: 'x1', settings: { maxSteps: '30', latent: '2', supervised: true, optimizer: 'adam' }, testLimit: 100 }, runsDir);
    expect(ok.args).toEqual(['--max-steps', '30', '--latent', '2', '--supervised', '--optimizer', 'adam', '--test-limit', '100']);
    expect((await postJson('/api/train', { settings: { note: 'x'.repeat(70_000) } })).status).toBe(413);
    expect((await raw('/api/train', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect((await postJson('/api/train', { settings: {} }, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await postJson('/api/runs/plain/stop', {})).status).toBe(409);
  });

  it('streams a run started from the CLI (metrics and snapshots over server-sent events) and lists it when done', async () => {
    if (!need('cli', 'web.test')) return;
    const out = path.join(runsDir, 'from-cli');
    const child = spawn(process.execPath, [CLI, 'train', '--out', out, '--max-steps', '30', '--batch-size', '32', '--backend', 'wasm', '--threads', '1',
      '--snapshot-every', '10', '--log-every', '5', '--test-limit', '300', '--no-pictures', '--data-dir', MNIST_DIR], { stdio: 'ignore' });
    await until('the CLI run folder', async () => existsSync(path.join(out, 'config.json')), 120_000, 200);
    const events: { event: string; data: unknown }[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: srv.port, path: '/api/runs/from-cli/events' }, (res) => {
        expect(res.headers['content-type']).toMatch(/text\/event-stream/);
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i); buf = buf.slice(i + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1], d = /^data: (.*)$/m.exec(block)?.[1];
            if (ev && d) events.push({ event: ev, data: JSON.parse(d) });
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      setTimeout(() => { req.destroy(); reject(new Error(`no end event; got ${events.map((e) => e.event).join(',')}`)); }, 240_000);
    });
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    const lines = events.filter((e) => e.event === 'metrics').flatMap((e) => (e.data as { lines: { step: number }[] }).lines);
    expect(lines.map((l) => l.step)).toEqual(expect.arrayContaining([5, 10, 30]));
    expect(events.some((e) => e.event === 'snapshot')).toBe(true);
    const end = events.at(-1)!;
    expect(end.event).toBe('end');
    expect(end.data).toMatchObject({ name: 'from-cli', status: 'done' });
    const runs = JSON.parse((await raw('/api/runs')).body).runs as { name: string }[];
    expect(runs.map((r) => r.name)).toContain('from-cli');
  }, 300_000);

  it('stops a run it started: the run is kept as stopped, with a checkpoint at the step it reached, resumable', async () => {
    if (!need('cli', 'web.test')) return;
    const r = await postJson('/api/train', { name: 'to-stop', settings: { maxSteps: 5000, batchSize: 32, backend: 'wasm', threads: 1, checkpointEvery: 10, logEvery: 5, snapshotEvery: 10 }, testLimit: 300 });
    expect(r.status, r.body).toBe(201);
    expect((await postJson('/api/train', { settings: { maxSteps: 10 } })).status).toBe(409); // one job at a time
    await until('20 steps', async () => {
      const d = JSON.parse((await raw('/api/runs/to-stop')).body) as { metrics?: { step: number }[] };
      return (d.metrics ?? []).some((l) => l.step >= 20);
    });
    const s = await postJson('/api/runs/to-stop/stop', {});
    expect(s.status, s.body).toBe(202);
    const done = await until('the run to be stopped', async () => {
      const d = JSON.parse((await raw('/api/runs/to-stop')).body) as { status: string; canResume: boolean; progress: { step: number; totalSteps: number; checkpointStep: number } | null; hasModel: boolean };
      return d.status === 'done' || d.status === 'failed' || d.status === 'stopped' ? d : null;
    });
    expect(done.status).toBe('stopped');
    expect(done.canResume).toBe(true);
    expect(done.hasModel).toBe(true); // the weights at the stop step: the page decodes with them
    // SIGTERM checkpoints at the step it arrived (not only at multiples of --checkpoint-every)
    expect(done.progress!.checkpointStep).toBe(done.progress!.step);
    expect(done.progress!.step).toBeGreaterThanOrEqual(20);
    expect(done.progress!.step).toBeLessThan(5000);
    expect(done.progress!.totalSteps).toBe(Math.min(5000, Math.floor(60_000 / 32))); // --max-steps 5000, one epoch of 1875
    const st = JSON.parse(readFileSync(path.join(runsDir, 'to-stop', 'status.json'), 'utf8')) as { state: string };
    expect(st.state).toBe('stopped');
    // a stopped run cannot be stopped again; a finished one cannot be resumed
    expect((await postJson('/api/runs/to-stop/stop', {})).status).toBe(409);
    expect((await postJson('/api/runs/plain/resume', {})).status).toBe(409);
    expect((await postJson('/api/runs/to-stop/resume', {}, { Origin: 'http://evil.example' })).status).toBe(403);
  }, 300_000);
});

describe.skipIf(!HAVE_CHROMIUM)('browser (headless Chromium)', () => {
  let page: Page;
  const errors = usePage((_b, p) => { page = p; });

  const pixels = (sel: string): Promise<number[]> => page.$eval(sel, (c) => {
    const cv = c as HTMLCanvasElement;
    return Array.from(cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data);
  });
  const count = (sel: string): Promise<number> => page.$eval(sel, (c) => Number((c as HTMLElement).dataset.count ?? 0));
  /** The plot area of the plane in page coordinates (the scatter leaves margins for the axes). */
  const plot = async (): Promise<{ x: number; y: number; w: number; h: number }> => {
    const b = (await page.locator('#overlay').boundingBox())!;
    return { x: b.x + 70, y: b.y + 30, w: b.width - 100, h: b.height - 90 };
  };

  async function open(run: string): Promise<void> {
    await page.goto(`${srv.url}?run=${run}`);
    await page.waitForSelector(`body[data-model="ready"][data-run="${run}"]`, { timeout: 60_000 });
  }

  it('runs the decoder in a worker on the wasm backend, and hovering changes the decoded image', async () => {
    await open('plain');
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(await page.getAttribute('body', 'data-backend')).toBe('wasm');
    expect(await page.textContent('#engine-status')).toMatch(/wasm backend/);
    expect(await page.locator('#run-list button[data-run]').count()).toBeGreaterThanOrEqual(3);
    expect(await page.getAttribute('#overlay', 'data-points')).toBe('500');
    // zoom out with the keyboard, so that the corners are far apart in the latent space
    await page.focus('#overlay');
    for (let i = 0; i < 6; i++) await page.keyboard.press('-');
    const p = await plot();
    await page.mouse.move(p.x + p.w * 0.1, p.y + p.h * 0.1);
    await page.waitForFunction(() => Number(document.getElementById('decoded')!.dataset.count ?? 0) >= 1);
    await page.waitForTimeout(300);
    const n1 = await count('#decoded');
    const before = await pixels('#decoded');
    await page.mouse.move(p.x + p.w * 0.9, p.y + p.h * 0.9, { steps: 4 });
    await page.waitForFunction((n) => Number(document.getElementById('decoded')!.dataset.count ?? 0) > n, n1);
    await page.waitForTimeout(300);
    const after = await pixels('#decoded');
    expect(after).not.toEqual(before);
    // a click pins the point
    await page.mouse.click(p.x + p.w * 0.5, p.y + p.h * 0.5);
    await page.waitForFunction(() => document.getElementById('pins')!.dataset.count === '1');
    // the legend hides a digit
    await page.click('#legend button[data-digit="1"]');
    expect(await page.getAttribute('#legend button[data-digit="1"]', 'aria-pressed')).toBe('false');
    await page.screenshot({ path: path.join(SHOTS, 'plane-hover.png'), fullPage: true });
  }, 120_000);

  it('zooms with the wheel and a shift-dragged box gives the grid of decoded images', async () => {
    await open('plain');
    const p = await plot();
    await page.mouse.move(p.x + p.w / 2, p.y + p.h / 2);
    await page.mouse.wheel(0, -300);
    await page.mouse.wheel(0, 300);
    await page.fill('#grid-size', '8');
    await page.keyboard.down('Shift');
    await page.mouse.move(p.x + p.w * 0.2, p.y + p.h * 0.2);
    await page.mouse.down();
    await page.mouse.move(p.x + p.w * 0.5, p.y + p.h * 0.5, { steps: 5 });
    await page.mouse.move(p.x + p.w * 0.8, p.y + p.h * 0.8, { steps: 5 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await page.waitForFunction(() => document.getElementById('grid')!.dataset.cells === '64', null, { timeout: 30_000 });
    const px = await pixels('#grid');
    let grey = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i] !== 255 || px[i + 1] !== 255) grey++;
    expect(grey).toBeGreaterThan(1000);
    // the size is adjustable
    await page.fill('#grid-size', '5');
    await page.dispatchEvent('#grid-size', 'change');
    await page.waitForFunction(() => document.getElementById('grid')!.dataset.cells === '25', null, { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'box-grid.png'), fullPage: true });
  }, 120_000);

  it('a digit drawn on the pad is encoded, lands on the plane and is reconstructed', async () => {
    await open('plain');
    const b = (await page.locator('#pad').boundingBox())!;
    // a "7": across the top, then down to the left
    await page.mouse.move(b.x + b.width * 0.25, b.y + b.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(b.x + b.width * 0.75, b.y + b.height * 0.2, { steps: 8 });
    await page.mouse.move(b.x + b.width * 0.4, b.y + b.height * 0.85, { steps: 10 });
    await page.mouse.up();
    await page.waitForFunction(() => !!document.getElementById('overlay')!.dataset.drawn, null, { timeout: 30_000 });
    const [x, y] = (await page.getAttribute('#overlay', 'data-drawn'))!.split(',').map(Number);
    expect(Number.isFinite(x) && Number.isFinite(y)).toBe(true);
    expect(await count('#recon')).toBeGreaterThanOrEqual(1);
    const input = await pixels('#pad-input');
    expect(input.some((v, i) => i % 4 === 0 && v > 128)).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'draw-pad.png'), fullPage: true });
  }, 120_000);

  it('a supervised run generates a chosen digit; a 10-D run shows the PCA plane with sliders', async () => {
    await open('sup');
    await page.waitForSelector('#gen-panel:not([hidden])');
    const n0 = await count('#decoded');
    await page.click('#gen-buttons button[aria-label="generate digit 3"]');
    await page.waitForFunction((n) => Number(document.getElementById('decoded')!.dataset.count ?? 0) > n, n0);
    expect(await page.textContent('#decoded-z')).toMatch(/digit 3/);
    await page.screenshot({ path: path.join(SHOTS, 'supervised-generate.png'), fullPage: true });

    await open('z10');
    expect(await page.locator('#gen-panel').isHidden()).toBe(true);
    expect(await page.locator('#dims input[type="range"]').count()).toBe(8);
    expect(await page.textContent('#plane-caption')).toMatch(/PCA/);
    const p = await plot();
    await page.mouse.move(p.x + p.w * 0.3, p.y + p.h * 0.6);
    await page.waitForFunction(() => Number(document.getElementById('decoded')!.dataset.count ?? 0) >= 1);
    await page.waitForTimeout(300);
    const before = await pixels('#decoded');
    const n1 = await count('#decoded');
    // moving a slider moves the decoded point through the other dimensions
    await page.locator('#dims input[type="range"]').first().fill(String(await page.locator('#dims input[type="range"]').first().getAttribute('max')));
    await page.waitForFunction((n) => Number(document.getElementById('decoded')!.dataset.count ?? 0) > n, n1);
    await page.waitForTimeout(300);
    expect(await pixels('#decoded')).not.toEqual(before);
    await page.screenshot({ path: path.join(SHOTS, 'pca-sliders.png'), fullPage: true });
  }, 120_000);

  it('starts a short live run from the form: the loss chart and the latents update, and the run joins the list', async () => {
    if (!need('cli', 'web.test')) return;
    await page.goto(srv.url);
    await page.waitForSelector('body[data-ready="1"]');
    await page.click('#train-details summary');
    await page.fill('#train-form input[name="name"]', 'live1');
    await page.fill('#train-form input[name="maxSteps"]', '30');
    await page.fill('#train-form input[name="batchSize"]', '32');
    await page.selectOption('#train-form select[name="backend"]', 'wasm');
    await page.fill('#train-form input[name="snapshotEvery"]', '10');
    await page.fill('#train-form input[name="testLimit"]', '300');
    await page.click('#train-start');
    await page.waitForSelector('body[data-run="live1"]');
    await page.waitForFunction(() => Number(document.getElementById('curve')!.dataset.points ?? 0) >= 2, null, { timeout: 180_000 });
    await page.waitForFunction(() => Number(document.getElementById('overlay')!.dataset.points ?? 0) > 0, null, { timeout: 180_000 });
    await page.screenshot({ path: path.join(SHOTS, 'live-training.png'), fullPage: true });
    await page.waitForFunction(() => document.body.dataset.runStatus === 'done', null, { timeout: 240_000 });
    await page.waitForSelector('#run-list button[data-run="live1"] .badge.done', { timeout: 30_000 });
    expect(existsSync(path.join(runsDir, 'live1', 'latents.safetensors'))).toBe(true);
    const m = readFileSync(path.join(runsDir, 'live1', 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(m.length).toBeGreaterThanOrEqual(3);
    await page.waitForSelector('body[data-model="ready"][data-run="live1"]', { timeout: 60_000 });
    await page.screenshot({ path: path.join(SHOTS, 'live-finished.png'), fullPage: true });
  }, 420_000);

  it('switching runs never shows the previous run\'s plane, grid, chart or decodes, neither while the next one loads nor after', async () => {
    await open('plain');
    const p = await plot();
    // marks of plain: a hover decode, a pin, a box grid
    await page.mouse.move(p.x + p.w * 0.4, p.y + p.h * 0.4);
    await page.waitForFunction(() => document.getElementById('decoded')!.dataset.run === 'plain');
    await page.focus('#overlay');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => Number(document.getElementById('pins')!.dataset.count) >= 1);
    await page.keyboard.down('Shift');
    await page.mouse.move(p.x + p.w * 0.3, p.y + p.h * 0.3);
    await page.mouse.down();
    await page.mouse.move(p.x + p.w * 0.6, p.y + p.h * 0.6, { steps: 5 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await page.waitForFunction(() => document.getElementById('grid')!.dataset.run === 'plain');
    expect(await page.getAttribute('#overlay', 'data-run')).toBe('plain');
    expect(Number(await page.getAttribute('#curve', 'data-points'))).toBeGreaterThan(0);
    /** Pixels of the plane with a colour (the scatter's points); the empty plane is white and grey. */
    const coloured = (): Promise<number> => page.$eval('#plane', (c) => {
      const cv = c as HTMLCanvasElement;
      const px = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]) > 40) n++;
      return n;
    });
    expect(await coloured()).toBeGreaterThan(100);
    const stale = (): Promise<Record<string, string | null>> => page.evaluate(() => {
      const d = (id: string, k: string): string | null => document.getElementById(id)!.dataset[k] ?? null;
      return {
        plane: d('overlay', 'run'), points: d('overlay', 'points'), grid: d('grid', 'run'), gridHidden: String(document.getElementById('grid')!.hidden),
        chart: d('curve', 'run'), chartPoints: d('curve', 'points'), decoded: d('decoded', 'run'), pins: d('pins', 'count'),
        title: document.getElementById('run-title')!.textContent, settings: String(document.getElementById('run-settings')!.hidden),
      };
    });
    const empty = { plane: '', points: '0', grid: '', gridHidden: 'true', chart: '', chartPoints: '0', decoded: '', pins: '0', settings: 'true' };
    // hold z10's answer: what the page shows while it loads must not be plain's
    let release: () => void = () => {};
    const held = new Promise<void>((r) => { release = r; });
    await page.route('**/api/runs/z10', async (route) => { await held; await route.continue(); });
    await page.click('#run-list button[data-run="z10"]');
    await page.waitForSelector('body[data-run="z10"]');
    await page.waitForTimeout(200);
    expect(await stale()).toEqual({ ...empty, title: 'z10' });
    expect(await coloured()).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, 'switch-loading.png'), fullPage: true });
    release();
    await page.waitForSelector('body[data-model="ready"][data-run="z10"]', { timeout: 60_000 });
    await page.unroute('**/api/runs/z10');
    await page.waitForFunction(() => document.getElementById('overlay')!.dataset.run === 'z10');
    expect(await page.getAttribute('#curve', 'data-run')).toBe('z10');
    expect(await coloured()).toBeGreaterThan(100);
    // and to a run with neither latents nor metrics: nothing of z10 stays once it is open
    await page.click('#run-list button[data-run="leaky"]');
    await page.waitForFunction(() => document.getElementById('run-status')!.textContent !== 'loading…' && document.body.dataset.run === 'leaky');
    await page.waitForTimeout(300);
    expect(await stale()).toMatchObject({ plane: '', points: '0', grid: '', gridHidden: 'true', chart: '', chartPoints: '0', decoded: '', pins: '0', title: 'leaky' });
    expect(await coloured()).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, 'switch-empty-run.png'), fullPage: true });
  }, 120_000);

  it('lays out on a 1280x800 desktop and a 390x844 phone (screenshots kept)', async () => {
    for (const [w, h] of [[1280, 800], [390, 844]]) {
      await page.setViewportSize({ width: w, height: h });
      await open('plain');
      await page.waitForFunction(() => Number(document.getElementById('overlay')!.dataset.points ?? 0) > 0);
      const box = (await page.locator('#overlay').boundingBox())!;
      expect(box.width).toBeGreaterThan(w * 0.4);
      await page.screenshot({ path: path.join(SHOTS, `layout-${w}x${h}.png`), fullPage: true });
    }
    await page.setViewportSize(DESKTOP);
  }, 120_000);

  it('shows keyboard focus and no page errors', async () => {
    await page.goto(`${srv.url}?run=plain`);
    await page.waitForSelector('body[data-model="ready"]');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => {
      const a = document.activeElement as HTMLElement;
      return getComputedStyle(a).outlineStyle;
    });
    expect(outline).not.toBe('none');
    await page.focus('#overlay');
    await page.keyboard.press('+');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => Number(document.getElementById('pins')!.dataset.count) >= 1);
    expect(errors.filter((e) => !/favicon/.test(e))).toEqual([]);
  }, 60_000);

  it('falls back to the reference backend in the worker when asked (?backend=reference)', async () => {
    await page.goto(`${srv.url}?run=plain&backend=reference`);
    await page.waitForSelector('body[data-model="ready"][data-run="plain"]', { timeout: 60_000 });
    expect(await page.getAttribute('body', 'data-backend')).toBe('reference');
    const p = await plot();
    await page.mouse.move(p.x + p.w * 0.5, p.y + p.h * 0.5);
    await page.waitForFunction(() => Number(document.getElementById('decoded')!.dataset.count ?? 0) >= 1);
  }, 60_000);
});
