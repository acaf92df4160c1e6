/**
 * The machine's own fp32 FMA peak, the yardstick of `npm run bench`: a native probe (the addon's
 * fmaPeak: AVX-512 / AVX2 FMA chains in registers on OpenMP threads) and a wasm one (the kernels'
 * fmaPeak export: SIMD128, relaxed-SIMD FMA when the runtime has it, on worker_threads). Both report
 * the best of several probes: on a shared machine the best one is the closest to what the cores can do.
 *
 *   node dist/bench/peak.js [--threads 1,2] [--probes 7]
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { loadNativeAddon } from '../engine/kernels/native/addon.js';

export interface PeakResult {
  /** GFLOP/s (2 flops per FMA lane), best of the probes. */
  gflops: number;
  /** Median of the probes, GFLOP/s. */
  medianGflops: number;
  threads: number;
  /** What ran: the native instruction set, or wasm simd128 / relaxed-simd. */
  isa: string;
}

const median = (a: number[]): number => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };

/** The native addon's FMA peak on `threads` threads (throws when the addon is not built). */
export function nativePeak(threads: number, probes = 7, seconds = 0.15): PeakResult {
  const addon = loadNativeAddon();
  // calibrate the iterations so that one probe takes about `seconds`
  let iters = 1e6, r = addon.fmaPeak(threads, iters);
  iters = Math.max(1e5, Math.round(iters * seconds / r.seconds));
  const g: number[] = [];
  for (let i = 0; i < probes; i++) { r = addon.fmaPeak(threads, iters); g.push(r.gflops); }
  return { gflops: Math.max(...g), medianGflops: median(g), threads, isa: r.isa };
}

const WASM_RELAXED = new URL('../../build/wasm/kernels-relaxed.wasm', import.meta.url);
const WASM_PLAIN = new URL('../../build/wasm/kernels.wasm', import.meta.url);

// Each worker instantiates the module on its own memory, waits for the start signal, runs the probe and
// reports its own time and the probe's flops (the module's FMA_PEAK_FLOPS_PER_ITER * iters).
const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ module, iters, start }) => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  const flag = new Int32Array(start);
  Atomics.wait(flag, 0, 0);
  const t0 = performance.now();
  const check = inst.exports.fmaPeak(iters);
  parentPort.postMessage({ ms: performance.now() - t0, check, flops: inst.exports.FMA_PEAK_FLOPS_PER_ITER.value * iters });
});`;

async function compileWasm(): Promise<{ module: WebAssembly.Module; isa: string }> {
  try { v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); } catch { /* flag unknown: relaxed is on or absent */ }
  try {
    return { module: new WebAssembly.Module(await readFile(WASM_RELAXED)), isa: 'wasm relaxed-simd fma' };
  } catch {
    return { module: new WebAssembly.Module(await readFile(WASM_PLAIN)), isa: 'wasm simd128 mul+add' };
  }
}

/** The wasm SIMD FMA peak on `threads` worker threads running at once (the wasm kernels' build). */
export async function wasmPeak(threads: number, probes = 7, seconds = 0.15): Promise<PeakResult> {
  const { module, isa } = await compileWasm();
  const workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true }));
  const once = (w: Worker) => new Promise<{ ms: number; flops: number }>((res, rej) => { w.once('message', res); w.once('error', rej); });
  let flopsPerIter = 0;
  const probe = async (iters: number): Promise<number> => {
    const start = new SharedArrayBuffer(4), flag = new Int32Array(start);
    const done = workers.map(once);
    for (const w of workers) w.postMessage({ module, iters, start });
    await new Promise((r) => setTimeout(r, 20)); // let every worker instantiate and wait
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const runs = await Promise.all(done);
    const ms = Math.max(...runs.map((d) => d.ms));
    flopsPerIter = runs[0].flops / iters;
    return runs.reduce((s, d) => s + d.flops, 0) / (ms / 1e3) / 1e9;
  };
  try {
    let iters = 1e6;
    const g0 = await probe(iters);
    iters = Math.max(1e5, Math.round((g0 * 1e9 * seconds) / (flopsPerIter * threads)));
    const g: number[] = [];
    for (let i = 0; i < probes; i++) g.push(await probe(iters));
    return { gflops: Math.max(...g), medianGflops: median(g), threads, isa };
  } finally {
    for (const w of workers) void w.terminate();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const arg = (n: string) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
  const threads = (arg('--threads') ?? '1,2').split(',').map(Number);
  const probes = Number(arg('--probes') ?? '7');
  for (const t of threads) {
    try {
      const n = nativePeak(t, probes);
      console.log(`native ${n.isa} ${t} thread(s): best ${n.gflops.toFixed(0)} GFLOP/s, median ${n.medianGflops.toFixed(0)}`);
    } catch (e) { console.log(`native: ${(e as Error).message}`); }
    const w = await wasmPeak(t, probes);
    console.log(`${w.isa} ${t} thread(s): best ${w.gflops.toFixed(0)} GFLOP/s, median ${w.medianGflops.toFixed(0)}`);
  }
}
