/**
 * `node dist/bench/tab.js [--threads N] [--windows N] [--rounds N] [--json]` (part of `npm run bench`):
 * the training step's samples/s in a browser tab (dist/web/tab/bench.html in headless Chromium,
 * driven by playwright-core, its worker on the wasm backend with threads) against Node's wasm backend
 * on the same machine, the same measurement (src/lab/train/bench-step.ts), alternating rounds so that
 * a busy machine hurts both alike; the median round of each and their ratio.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../node-backends.js';
import { CHROMIUM, intArg, launchChromium, median } from './util.js';
import { createBackend } from '../engine/kernels/select.js';
import { benchTrainStep, type StepBench } from '../lab/train/bench-step.js';
import { startStaticServer } from '../web/static-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const TAB = path.join(here, '..', 'web', 'tab');


export async function benchTab(threads: number, windows: number, rounds: number): Promise<{ node: StepBench[]; browser: StepBench[]; ratio: number } | { skipped: string }> {
  if (!existsSync(CHROMIUM)) return { skipped: `no Chromium at ${CHROMIUM}` };
  if (!existsSync(path.join(TAB, 'bench.html'))) return { skipped: 'dist/web/tab/ not built (npm run build:web)' };
  const server = await startStaticServer({ dir: TAB });
  const browser = await launchChromium();
  const backend = await createBackend('wasm', { threads });
  const node: StepBench[] = [], tab: StepBench[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      node.push(benchTrainStep(backend, { windows }));
      const page = await browser.newPage();
      await page.goto(`${server.url}bench.html?threads=${threads}&windows=${windows}`);
      await page.waitForFunction(() => (self as unknown as { benchResult?: unknown }).benchResult !== undefined, null, { timeout: 600_000, polling: 200 });
      const res = await page.evaluate(() => (self as unknown as { benchResult: StepBench | { error: string } }).benchResult);
      await page.close();
      if ('error' in res) throw new Error(`the bench page failed: ${res.error}`);
      tab.push(res);
    }
  } finally {
    backend.dispose?.();
    await browser.close();
    await server.close();
  }
  return { node, browser: tab, ratio: median(tab.map((b) => b.samplesPerSec)) / median(node.map((b) => b.samplesPerSec)) };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const threads = intArg('--threads', 2), windows = intArg('--windows', 5), rounds = intArg('--rounds', 3);
  const r = await benchTab(threads, windows, rounds);
  const log = (l: string): void => { process.stderr.write(`${l}\n`); };
  if ('skipped' in r) log(`train in the tab: skipped (${r.skipped})`);
  else {
    const b = r.browser[0], nm = median(r.node.map((x) => x.samplesPerSec)), bm = median(r.browser.map((x) => x.samplesPerSec));
    log(`train in the tab (Chromium worker, ${b.backend}${b.relaxed ? ' relaxed SIMD' : ''}, ${threads} threads, batch ${b.batchSize}; median of ${rounds} alternating rounds):`);
    log(`  node wasm      ${nm.toFixed(0).padStart(6)} samples/s   (rounds: ${r.node.map((x) => x.samplesPerSec.toFixed(0)).join(', ')})`);
    log(`  chromium wasm  ${bm.toFixed(0).padStart(6)} samples/s   (rounds: ${r.browser.map((x) => x.samplesPerSec.toFixed(0)).join(', ')})`);
    log(`  chromium / node: ${(r.ratio * 100).toFixed(0)}%`);
  }
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(r)}\n`);
}
