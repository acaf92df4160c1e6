/**
 * `npm run bench [-- --json] [-- --quick]`: training throughput of the study's model (bn, z=2, batch
 * 64) for every backend on 1 and 2 threads, each configuration in its own process, run one after
 * the other in one invocation; PyTorch alongside when python3 can import torch; ratios to PyTorch.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StepBenchResult } from './step.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const windows = quick ? '3' : '5';
const log = (s: string): void => { if (!json) process.stdout.write(`${s}\n`); };

function findTorchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch { /* next */ }
  }
  return null;
}

interface Row { backend: string; threads: number; precision?: string; samplesPerSec: number; peakRssMB: number; windows: number[]; layers?: StepBenchResult['layers']; error?: string }

function runNode(backend: string, threads: number, precision = 'fp32'): Row {
  const r = spawnSync(process.execPath, [path.join(here, 'step.js'), '--backend', backend, '--threads', String(threads), '--precision', precision, '--windows', windows],
    { encoding: 'utf8' });
  if (r.status !== 0) return { backend, threads, precision, samplesPerSec: NaN, peakRssMB: NaN, windows: [], error: (r.stderr || '').trim().split('\n').pop() };
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Row;
}

function runTorch(py: string, threads: number): Row {
  const r = spawnSync(py, [path.join(root, 'tools', 'bench_torch.py'), '--threads', String(threads), '--windows', windows],
    { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) } });
  if (r.status !== 0) return { backend: 'pytorch', threads, samplesPerSec: NaN, peakRssMB: NaN, windows: [], error: (r.stderr || '').trim().split('\n').pop() };
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Row;
}

const nativeBuilt = existsSync(path.join(root, 'native', 'build', 'Release', 'latentlab.node'));
const configs: [string, number, string][] = [];
for (const t of [1, 2]) {
  configs.push(['wasm', t, 'fp32']);
  if (nativeBuilt) { configs.push(['native', t, 'fp32']); configs.push(['native', t, 'bf16']); }
}
if (process.argv.includes('--reference')) configs.push(['reference', 1, 'fp32']);
const py = findTorchPython();
const rows: Row[] = [];
log(`latentlab bench: the study's model (bn, z=2), batch 64, SGD momentum + CyclicLR, median of ${windows} windows of 10 steps after 5 warm-up steps`);
if (!nativeBuilt) log('(native backend not built: apt-get install libdnnl-dev, then npm run build:native)');
for (const [b, t, p] of configs) {
  const r = runNode(b, t, p);
  rows.push(r);
  log(`  ${`${b}${p === 'bf16' ? ' bf16' : ''}`.padEnd(12)} ${t} thread${t > 1 ? 's' : ' '}: ${r.error ? `failed: ${r.error}` : `${r.samplesPerSec.toFixed(0).padStart(6)} samples/s, peak RSS ${r.peakRssMB.toFixed(0)} MB`}`);
}
if (py) {
  for (const t of [1, 2]) {
    const r = runTorch(py, t);
    rows.push(r);
    log(`  ${r.backend.padEnd(12)} ${t} thread${t > 1 ? 's' : ' '}: ${r.error ? `failed: ${r.error}` : `${r.samplesPerSec.toFixed(0).padStart(6)} samples/s, peak RSS ${r.peakRssMB.toFixed(0)} MB`}`);
  }
} else log('  (PyTorch not found: no comparison; apt-get install python3-torch)');

const torchAt = (t: number): Row | undefined => rows.find((r) => r.backend.startsWith('pytorch') && r.threads === t && !r.error);
const ratios: Record<string, number> = {};
for (const r of rows) {
  const pt = torchAt(r.threads);
  if (pt && !r.backend.startsWith('pytorch') && !r.error) ratios[`${r.backend}${r.precision === 'bf16' ? '-bf16' : ''}/${r.threads}t`] = r.samplesPerSec / pt.samplesPerSec;
}
if (Object.keys(ratios).length) {
  log('ratio to PyTorch at the same thread count:');
  for (const [k, v] of Object.entries(ratios)) log(`  ${k.padEnd(16)} ${v.toFixed(2)}x`);
}
for (const r of rows.filter((x) => x.layers && x.threads === 2)) {
  log(`per-layer time, ${r.backend}${r.precision === 'bf16' ? ' bf16' : ''} 2 threads (ms per step: forward / backward):`);
  for (const l of r.layers!) log(`  ${l.name.padEnd(34)} ${l.forwardMs.toFixed(2).padStart(7)} / ${l.backwardMs.toFixed(2).padStart(7)}`);
}
spawnSync(process.execPath, [path.join(here, 'tab.js')], { stdio: ['ignore', 'ignore', 'inherit'] }); // train in the tab: Chromium's wasm against Node's
if (json) process.stdout.write(`${JSON.stringify({ rows, ratios })}\n`);
