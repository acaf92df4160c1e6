/**
 * Micro benchmark of the wasm conv kernels on the model's shapes (batch 64): forward, backward-data and
 * backward-weight, on 1 and 2 threads, median of several runs. `node dist/bench/kernels.js [--runs N]
 * [--threads 1,2] [--batch 64] [--plain]`.
 */
import type { Backend, ConvGeom } from '../engine/kernels/index.js';
import { convOutSize } from '../engine/kernels/index.js';
import { createWasmBackend } from '../engine/kernels/wasm/node.js';
import { IMAGE_H, IMAGE_W } from '../lab/data/image.js';

export interface KernelBenchOptions {
  threads?: number[];
  runs?: number;
  batch?: number;
  /** Use the plain SIMD128 build instead of relaxed SIMD. */
  plain?: boolean;
  log?: (line: string) => void;
}

export interface KernelBenchRow {
  threads: number;
  shape: string;
  kernel: 'fwd' | 'bwdData' | 'bwdWeight';
  /** Median wall time, ms. */
  ms: number;
  gflops: number;
  /** Median process CPU time (all threads), ms. */
  cpuMs: number;
  /** cpuMs / ms: the cores the call really ran on (< threads when the machine is shared with other work). */
  coresBusy: number;
  /** GFLOP/s per core actually used (flop / CPU time). */
  gflopsPerCore: number;
}

export interface KernelBenchResult {
  relaxed: boolean;
  rows: KernelBenchRow[];
  /** Estimated convolution time of one training step (encoder + mirrored decoder), per thread count (wall). */
  stepConvMs: Record<number, number>;
  /** The same from process CPU time divided by the thread count: the step time if every thread had a free core
   * (only meaningful when coresBusy is close to the thread count or for 1 thread). */
  stepConvCpuMs: Record<number, number>;
  /** Batch-norm + LeakyReLU forward and backward of one step (5 layers), wall and CPU per thread. */
  stepBnMs: Record<number, number>;
  stepBnCpuMs: Record<number, number>;
}

function geom(N: number, C: number, H: number, K: number, stride: number): ConvGeom {
  const OH = convOutSize(H, 3, stride, 1);
  return { N, C, H, W: H, K, R: 3, S: 3, strideH: stride, strideW: stride, padH: 1, padW: 1, OH, OW: OH };
}

export const MODEL_SHAPES = (N: number): [string, ConvGeom][] => [
  ['1->32 28x28 s1', geom(N, 1, IMAGE_H, 32, 1)],
  ['32->64 28->14 s2', geom(N, 32, IMAGE_H, 64, 2)],
  ['64->64 14->7 s2', geom(N, 64, 14, 64, 2)],
];

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
}

function fill(a: Float32Array, seed: number): Float32Array {
  let s = seed;
  for (let i = 0; i < a.length; i++) { s = (s * 1664525 + 1013904223) >>> 0; a[i] = s / 2 ** 32 - 0.5; }
  return a;
}

/** Median wall time (ms) of `runs` calls and the median (and least) process CPU time per call: on a machine
 * shared with other work, CPU time / wall shows how many cores the kernel actually got. */
function time(f: () => void, runs: number): { wall: number; cpu: number; cpuMin: number } {
  f(); f(); // warm-up
  const t: number[] = [], c: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    t.push(performance.now() - t0);
    const d = process.cpuUsage(c0);
    c.push((d.user + d.system) / 1000);
  }
  return { wall: median(t), cpu: median(c), cpuMin: Math.min(...c) };
}

export async function benchKernels(opts: KernelBenchOptions = {}): Promise<KernelBenchResult> {
  const threadsList = opts.threads ?? [1, 2];
  const runs = opts.runs ?? 7, N = opts.batch ?? 64;
  const log = opts.log ?? (() => {});
  const rows: KernelBenchRow[] = [];
  const stepConvMs: Record<number, number> = {}, stepConvCpuMs: Record<number, number> = {};
  const stepBnMs: Record<number, number> = {}, stepBnCpuMs: Record<number, number> = {};
  let relaxed = false;
  const busy: string[] = [];
  for (const threads of threadsList) {
    const b: Backend & { relaxed?: boolean } = await createWasmBackend({ threads, noRelaxed: opts.plain });
    relaxed = !!b.relaxed;
    let step = 0, stepCpu = 0;
    try {
      for (const [i, [name, g]] of MODEL_SHAPES(N).entries()) {
        const { C, H, W, K, R, S, OH, OW } = g;
        const x = fill(b.alloc(N * C * H * W), 1), w = fill(b.alloc(K * C * R * S), 2), bias = fill(b.alloc(K), 3);
        const y = b.alloc(N * K * OH * OW), dy = fill(b.alloc(N * K * OH * OW), 4), dx = b.alloc(N * C * H * W);
        const dw = b.alloc(K * C * R * S), db = b.alloc(K);
        const flop = 2 * N * K * OH * OW * C * R * S;
        const t = {
          fwd: time(() => b.conv2d(g, x, w, bias, y), runs),
          bwdData: time(() => b.conv2dBackwardData(g, dy, w, dx), runs),
          bwdWeight: time(() => b.conv2dBackwardWeight(g, x, dy, dw, db), runs),
        };
        const ms = { fwd: t.fwd.wall, bwdData: t.bwdData.wall, bwdWeight: t.bwdWeight.wall };
        for (const k of ['fwd', 'bwdData', 'bwdWeight'] as const) {
          const row: KernelBenchRow = { threads, shape: name, kernel: k, ms: ms[k], gflops: flop / ms[k] / 1e6,
            cpuMs: t[k].cpu, coresBusy: t[k].cpu / ms[k], gflopsPerCore: flop / t[k].cpuMin / 1e6 };
          rows.push(row);
          log(`${threads} thr  ${name.padEnd(18)} ${k.padEnd(9)} ${ms[k].toFixed(2).padStart(7)} ms ${row.gflops.toFixed(1).padStart(6)} GFLOP/s` +
              `  | cores busy ${row.coresBusy.toFixed(2)}  ${row.gflopsPerCore.toFixed(1).padStart(6)} GFLOP/s per busy core`);
        }
        // encoder + decoder mirror use each geometry for all three kernels, except the encoder's first
        // layer needs no input gradient
        step += 2 * (ms.fwd + ms.bwdData + ms.bwdWeight) - (i === 0 ? ms.bwdData : 0);
        stepCpu += (2 * (t.fwd.cpu + t.bwdData.cpu + t.bwdWeight.cpu) - (i === 0 ? t.bwdData.cpu : 0)) / threads;
        for (const a of [x, w, bias, y, dy, dx, dw, db]) b.free(a);
      }
      // batch norm + LeakyReLU after each conv: encoder 32x28x28, 64x14x14, 64x7x7; decoder 64x14x14, 32x28x28
      let bn = 0, bnCpu = 0;
      const act = { kind: 'leaky' as const, slope: 0.2 };
      for (const [C, HW, times] of [[32, IMAGE_H * IMAGE_W, 2], [64, 196, 2], [64, 49, 1]]) {
        const n = N * C * HW;
        const x = fill(b.alloc(n), 5), y = b.alloc(n), dy = fill(b.alloc(n), 6), dx = b.alloc(n);
        const g = b.alloc(C).fill(1), be = b.alloc(C), m = b.alloc(C), is = b.alloc(C), dg = b.alloc(C), db = b.alloc(C);
        const f = time(() => b.batchNormTrain(N, C, HW, x, g, be, 1e-5, act, y, m, is), runs);
        const bw = time(() => b.batchNormBackward(N, C, HW, x, y, dy, g, m, is, act, dx, dg, db), runs);
        log(`${threads} thr  bn+leaky ${C}x${HW}`.padEnd(34) + ` fwd ${f.wall.toFixed(2)} ms (cpu ${f.cpu.toFixed(2)})` +
            `  bwd ${bw.wall.toFixed(2)} ms (cpu ${bw.cpu.toFixed(2)})`);
        bn += times * (f.wall + bw.wall); bnCpu += times * (f.cpu + bw.cpu) / threads;
        for (const a of [x, y, dy, dx, g, be, m, is, dg, db]) b.free(a);
      }
      stepBnMs[threads] = bn; stepBnCpuMs[threads] = bnCpu;
    } finally { b.dispose?.(); }
    stepConvMs[threads] = step; stepConvCpuMs[threads] = stepCpu;
    const tot = step + stepBnMs[threads], totCpu = stepCpu + stepBnCpuMs[threads];
    log(`${threads} thr  step estimate (batch ${N}), conv + bn: wall ${step.toFixed(1)} + ${stepBnMs[threads].toFixed(1)} = ${tot.toFixed(1)} ms` +
        ` -> ${(N / tot * 1000).toFixed(0)} samples/s; if each thread had a free core (CPU time / threads) ${stepCpu.toFixed(1)} + ${stepBnCpuMs[threads].toFixed(1)} =` +
        ` ${totCpu.toFixed(1)} ms -> ${(N / totCpu * 1000).toFixed(0)} samples/s`);
    busy.push(`${threads} thr: ${(stepCpu * threads / step).toFixed(2)} cores busy on average`);
  }
  log(`cores actually used during the conv runs: ${busy.join('; ')}`);
  return { relaxed, rows, stepConvMs, stepConvCpuMs, stepBnMs, stepBnCpuMs };
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const threads = argValue('--threads')?.split(',').map(Number);
  const runs = argValue('--runs') ? Number(argValue('--runs')) : undefined;
  const batch = argValue('--batch') ? Number(argValue('--batch')) : undefined;
  const r = await benchKernels({ threads, runs, batch, plain: process.argv.includes('--plain'), log: l => console.log(l) });
  console.log(`relaxed SIMD: ${r.relaxed}`);
}
