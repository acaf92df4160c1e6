/**
 * Benchmark of the native (oneDNN) backend on this model's convolutions at batch 64: forward,
 * backward-data and backward-weight of each layer (the ConvTranspose2d layers run conv2dBackwardData as
 * their forward), in fp32 and bf16, reporting GFLOP/s from the median of several runs. It also times a
 * whole training step made of the backend's kernels (the model's forward, MSE loss, backward and an
 * Adam update), as samples/s.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/native.js [--threads 2] [--reps 15] [--batch 64]
 *     [--layout auto|any|plain|tuned] [--precision fp32,bf16] [--bf16-wgrad] [--no-step]
 * (LATENTLAB_BENCH_IMPL=1 also prints the oneDNN implementation of each convolution.)
 */
import { pathToFileURL } from 'node:url';
import type { Act, ConvGeom } from '../engine/kernels/index.js';
import { convOutSize, NO_ACT } from '../engine/kernels/index.js';
import { createNativeBackend, type NativeBackend, type NativeLayout } from '../engine/kernels/native/index.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W } from '../lab/data/image.js';

/** A feature map at the image's resolution (28 × 28). */
const HW = IMAGE_H * IMAGE_W;

export type ConvOp = 'fwd' | 'bwd-data' | 'bwd-weight';

export interface BenchNativeOptions {
  /** Threads (default 2). */
  threads?: number;
  /** Batch size (default 64). */
  batch?: number;
  /** Timed runs per measurement; the median is reported (default 15). */
  reps?: number;
  /** Precisions to time (default both). */
  precisions?: ('fp32' | 'bf16')[];
  /** Convolution layout of the backend (default 'auto'). */
  layout?: NativeLayout;
  /** With bf16: weight gradients in bf16 too (default: the backend's choice, bf16 only on AMX). */
  bf16WeightGrad?: boolean;
  /** Also time a whole training step of kernels (default true). */
  step?: boolean;
  /** Where the report lines go (default console.log; null for silence). */
  log?: ((line: string) => void) | null;
}

export interface ConvResult {
  layer: string;
  /** The layer's operation (for a ConvTranspose2d, fwd is the backend's conv2dBackwardData). */
  op: string;
  /** The backend kernel timed. */
  kernel: ConvOp;
  precision: 'fp32' | 'bf16';
  gflop: number;
  medianMs: number;
  /** GFLOP/s at the median time. */
  gflops: number;
  bestMs: number;
  /** GFLOP/s at the best time (the machine's capability when other processes compete for the cores). */
  bestGflops: number;
  impl: string | null;
}

export interface StepResult {
  precision: 'fp32' | 'bf16';
  medianMs: number;
  samplesPerSec: number;
  bestMs: number;
  bestSamplesPerSec: number;
  /** Share of the step spent in convolutions. */
  convShare: number;
}

export interface BenchNativeResult {
  threads: number;
  batch: number;
  info: NativeBackend['info'];
  convs: ConvResult[];
  steps: StepResult[];
  /** Whether bf16 runs computed the weight gradients in bf16 (else fp32). */
  bf16WeightGrad?: boolean;
}

function geom(N: number, C: number, H: number, K: number, stride: number): ConvGeom {
  const O = convOutSize(H, 3, stride, 1);
  return { N, C, H, W: H, K, R: 3, S: 3, strideH: stride, strideW: stride, padH: 1, padW: 1, OH: O, OW: O };
}

/** The model's convolutions as conv geometries (a ConvTranspose2d is the transpose of the conv listed). */
export function modelConvs(N: number): { layer: string; transposed: boolean; g: ConvGeom }[] {
  return [
    { layer: 'enc1 Conv2d(1,32,3,p1) 28x28', transposed: false, g: geom(N, 1, IMAGE_H, 32, 1) },
    { layer: 'enc2 Conv2d(32,64,3,s2,p1) 28->14', transposed: false, g: geom(N, 32, IMAGE_H, 64, 2) },
    { layer: 'enc3 Conv2d(64,64,3,s2,p1) 14->7', transposed: false, g: geom(N, 64, 14, 64, 2) },
    { layer: 'dec1 ConvT(64,64,3,s2,p1,op1) 7->14', transposed: true, g: geom(N, 64, 14, 64, 2) },
    { layer: 'dec2 ConvT(64,32,3,s2,p1,op1) 14->28', transposed: true, g: geom(N, 32, IMAGE_H, 64, 2) },
    { layer: 'dec3 ConvT(32,1,3,p1) 28x28', transposed: true, g: geom(N, 1, IMAGE_H, 32, 1) },
  ];
}

function convFlop(g: ConvGeom): number {
  return 2 * g.N * g.K * g.OH * g.OW * g.C * g.R * g.S;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fill(a: Float32Array, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

/** Median and best time in ms of `reps` runs after `warmup` runs. */
function timeMs(fn: () => void, reps: number, warmup = 2): { median: number; best: number } {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return { median: median(t), best: Math.min(...t) };
}

function benchConvs(be: NativeBackend, N: number, reps: number): ConvResult[] {
  const out: ConvResult[] = [];
  for (const { layer, transposed, g } of modelConvs(N)) {
    const x = fill(be.alloc(g.N * g.C * g.H * g.W), 1), w = fill(be.alloc(g.K * g.C * g.R * g.S), 2, 0.2);
    const y = fill(be.alloc(g.N * g.K * g.OH * g.OW), 3), dw = be.alloc(w.length), b = be.alloc(g.K);
    const gflop = convFlop(g) / 1e9;
    // For a ConvTranspose2d the layer's forward is conv2dBackwardData, its input gradient conv2d.
    const ops: [string, ConvOp, () => void][] = transposed
      ? [
        ['fwd', 'bwd-data', () => be.conv2dBackwardData(g, y, w, x)],
        ['bwd-data', 'fwd', () => be.conv2d(g, x, w, null, y)],
        ['bwd-weight', 'bwd-weight', () => be.conv2dBackwardWeight(g, x, y, dw, null)],
      ]
      : [
        ['fwd', 'fwd', () => be.conv2d(g, x, w, b, y)],
        ['bwd-data', 'bwd-data', () => be.conv2dBackwardData(g, y, w, x)],
        ['bwd-weight', 'bwd-weight', () => be.conv2dBackwardWeight(g, x, y, dw, b)],
      ];
    for (const [op, kernel, fn] of ops) {
      const t = timeMs(fn, reps);
      const hasBias = transposed ? false : kernel !== 'bwd-data';
      out.push({
        layer, op, kernel, precision: be.precision, gflop, medianMs: t.median, gflops: gflop / (t.median / 1e3),
        bestMs: t.best, bestGflops: gflop / (t.best / 1e3),
        impl: be.convImpl(kernel, g, hasBias),
      });
    }
  }
  return out;
}

/**
 * One training step of the autoencoder made only of backend kernels (plus the small loss and Adam loops
 * in TypeScript), at batch N: what the engine does per step, minus its bookkeeping.
 */
function makeStep(be: NativeBackend, N: number): { run: () => void; convMs: () => number } {
  const leaky: Act = { kind: 'leaky', slope: 0.01 };
  const tanh: Act = { kind: 'tanh', slope: 0 };
  const A = (n: number, seed = 0, scale = 0) => (seed ? fill(be.alloc(n), seed, scale) : be.alloc(n));
  const [e1, e2, e3, d1, d2, d3] = modelConvs(N).map((c) => c.g);
  const params: Float32Array[] = [];
  const grads: Float32Array[] = [];
  const P = (n: number, scale: number) => {
    const p = A(n, params.length + 11, scale), g = A(n);
    params.push(p); grads.push(g);
    return [p, g] as const;
  };
  const bnP = (C: number) => {
    const gamma = A(C).fill(1), beta = A(C), dg = A(C), db = A(C);
    params.push(gamma, beta); grads.push(dg, db);
    return { C, gamma, beta, dg, db, mean: A(C), invstd: A(C) };
  };
  // encoder
  const input = A(N * IMAGE_PIXELS, 5, 1);
  const [w1, gw1] = P(32 * 9, 0.3), [b1, gb1] = P(32, 0.1), bn1 = bnP(32);
  const [w2, gw2] = P(64 * 32 * 9, 0.06), [b2, gb2] = P(64, 0.1), bn2 = bnP(64);
  const [w3, gw3] = P(64 * 64 * 9, 0.04), [b3, gb3] = P(64, 0.1), bn3 = bnP(64);
  const [wl1, gwl1] = P(2 * 3136, 0.02), [bl1, gbl1] = P(2, 0.1);
  const [wl2, gwl2] = P(3136 * 2, 0.5), [bl2, gbl2] = P(3136, 0.1);
  // decoder: ConvTranspose2d weights are [Cin, Cout, 3, 3] = the conv geometry's [K, C, 3, 3]
  const [w4, gw4] = P(64 * 64 * 9, 0.04), [b4, gb4] = P(64, 0.1), bn4 = bnP(64);
  const [w5, gw5] = P(64 * 32 * 9, 0.06), [b5, gb5] = P(32, 0.1), bn5 = bnP(32);
  const [w6, gw6] = P(32 * 9, 0.06), [b6, gb6] = P(1, 0.1);
  const a1 = A(N * 32 * HW), h1 = A(N * 32 * HW), a2 = A(N * 64 * 196), h2 = A(N * 64 * 196);
  const a3 = A(N * 64 * 49), h3 = A(N * 64 * 49), z = A(N * 2), l2 = A(N * 3136);
  const a4 = A(N * 64 * 196), h4 = A(N * 64 * 196), a5 = A(N * 32 * HW), h5 = A(N * 32 * HW);
  const a6 = A(N * IMAGE_PIXELS), out = A(N * IMAGE_PIXELS);
  const g784 = A(N * IMAGE_PIXELS), g32a = A(N * 32 * HW), g32b = A(N * 32 * HW), g64a = A(N * 64 * 196), g64b = A(N * 64 * 196);
  const g49a = A(N * 64 * 49), g49b = A(N * 64 * 49), gz = A(N * 2);
  const m = params.map((p) => A(p.length)), v = params.map((p) => A(p.length));
  let t = 0, convTime = 0;

  // bias add and bias gradient with backend kernels: channelAffine(scale 1, shift bias) and two gemms
  // (sum over the batch, then over each channel's pixels) against vectors of ones
  const ones = A(3136).fill(1), colSum = A(N * 32 * HW), unit = A(3136).fill(1);
  const addBias = (y: Float32Array, b: Float32Array, C: number, HW: number) =>
    be.channelAffine(N, C, HW, y, unit, b, NO_ACT, y);
  const biasGrad = (dy: Float32Array, db: Float32Array, C: number, HW: number) => {
    be.gemm(true, false, C * HW, 1, N, 1, dy, ones, 0, colSum);
    be.gemm(false, false, C, 1, HW, 1, colSum, ones, 0, db);
  };
  const conv = (fn: () => void) => { const t0 = performance.now(); fn(); convTime += performance.now() - t0; };

  const run = () => {
    // forward
    conv(() => be.conv2d(e1, input, w1, b1, a1));
    be.batchNormTrain(N, 32, HW, a1, bn1.gamma, bn1.beta, 1e-5, leaky, h1, bn1.mean, bn1.invstd);
    conv(() => be.conv2d(e2, h1, w2, b2, a2));
    be.batchNormTrain(N, 64, 196, a2, bn2.gamma, bn2.beta, 1e-5, leaky, h2, bn2.mean, bn2.invstd);
    conv(() => be.conv2d(e3, h2, w3, b3, a3));
    be.batchNormTrain(N, 64, 49, a3, bn3.gamma, bn3.beta, 1e-5, leaky, h3, bn3.mean, bn3.invstd);
    be.gemm(false, true, N, 2, 3136, 1, h3, wl1, 0, z); addBias(z, bl1, 2, 1);
    be.gemm(false, true, N, 3136, 2, 1, z, wl2, 0, l2); addBias(l2, bl2, 3136, 1);
    conv(() => be.conv2dBackwardData(d1, l2, w4, a4)); addBias(a4, b4, 64, 196);
    be.batchNormTrain(N, 64, 196, a4, bn4.gamma, bn4.beta, 1e-5, leaky, h4, bn4.mean, bn4.invstd);
    conv(() => be.conv2dBackwardData(d2, h4, w5, a5)); addBias(a5, b5, 32, HW);
    be.batchNormTrain(N, 32, HW, a5, bn5.gamma, bn5.beta, 1e-5, leaky, h5, bn5.mean, bn5.invstd);
    conv(() => be.conv2dBackwardData(d3, h5, w6, a6)); addBias(a6, b6, 1, HW);
    be.activation(tanh, N * IMAGE_PIXELS, a6, out);
    // MSE loss gradient
    const k = 2 / (N * IMAGE_PIXELS);
    for (let i = 0; i < N * IMAGE_PIXELS; i++) g784[i] = k * (out[i] - input[i]);
    // backward
    be.activationBackward(tanh, N * IMAGE_PIXELS, a6, out, g784, g784);
    biasGrad(g784, gb6, 1, HW);
    conv(() => be.conv2dBackwardWeight(d3, g784, h5, gw6, null));
    conv(() => be.conv2d(d3, g784, w6, null, g32a));
    be.batchNormBackward(N, 32, HW, a5, h5, g32a, bn5.gamma, bn5.mean, bn5.invstd, leaky, g32b, bn5.dg, bn5.db);
    biasGrad(g32b, gb5, 32, HW);
    conv(() => be.conv2dBackwardWeight(d2, g32b, h4, gw5, null));
    conv(() => be.conv2d(d2, g32b, w5, null, g64a));
    be.batchNormBackward(N, 64, 196, a4, h4, g64a, bn4.gamma, bn4.mean, bn4.invstd, leaky, g64b, bn4.dg, bn4.db);
    biasGrad(g64b, gb4, 64, 196);
    conv(() => be.conv2dBackwardWeight(d1, g64b, l2, gw4, null));
    conv(() => be.conv2d(d1, g64b, w4, null, g49a));
    // Linear(2,3136): l2 = z @ wl2^T + bl2
    biasGrad(g49a, gbl2, 3136, 1);
    be.gemm(true, false, 3136, 2, N, 1, g49a, z, 0, gwl2);
    be.gemm(false, false, N, 2, 3136, 1, g49a, wl2, 0, gz);
    // Linear(3136,2): z = h3 @ wl1^T + bl1
    biasGrad(gz, gbl1, 2, 1);
    be.gemm(true, false, 2, 3136, N, 1, gz, h3, 0, gwl1);
    be.gemm(false, false, N, 3136, 2, 1, gz, wl1, 0, g49a);
    be.batchNormBackward(N, 64, 49, a3, h3, g49a, bn3.gamma, bn3.mean, bn3.invstd, leaky, g49b, bn3.dg, bn3.db);
    conv(() => be.conv2dBackwardWeight(e3, h2, g49b, gw3, gb3));
    conv(() => be.conv2dBackwardData(e3, g49b, w3, g64a));
    be.batchNormBackward(N, 64, 196, a2, h2, g64a, bn2.gamma, bn2.mean, bn2.invstd, leaky, g64b, bn2.dg, bn2.db);
    conv(() => be.conv2dBackwardWeight(e2, h1, g64b, gw2, gb2));
    conv(() => be.conv2dBackwardData(e2, g64b, w2, g32a));
    be.batchNormBackward(N, 32, HW, a1, h1, g32a, bn1.gamma, bn1.mean, bn1.invstd, leaky, g32b, bn1.dg, bn1.db);
    conv(() => be.conv2dBackwardWeight(e1, input, g32b, gw1, gb1));
    // Adam
    t++;
    const lr = 1e-3, b1c = 1 - 0.9 ** t, b2c = 1 - 0.999 ** t;
    for (let j = 0; j < params.length; j++) {
      const p = params[j], g = grads[j], mj = m[j], vj = v[j];
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        mj[i] = 0.9 * mj[i] + 0.1 * gi;
        vj[i] = 0.999 * vj[i] + 0.001 * gi * gi;
        p[i] -= lr * (mj[i] / b1c) / (Math.sqrt(vj[i] / b2c) + 1e-8);
      }
    }
  };
  return { run, convMs: () => { const c = convTime; convTime = 0; return c; } };
}

function benchStep(be: NativeBackend, N: number, reps: number): StepResult {
  const step = makeStep(be, N);
  for (let i = 0; i < 3; i++) step.run();
  step.convMs();
  const times: number[] = [];
  let convTotal = 0;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    step.run();
    times.push(performance.now() - t0);
  }
  convTotal = step.convMs();
  const ms = median(times), best = Math.min(...times), total = times.reduce((a, b) => a + b, 0);
  return {
    precision: be.precision, medianMs: ms, samplesPerSec: N / (ms / 1e3), bestMs: best,
    bestSamplesPerSec: N / (best / 1e3), convShare: convTotal / total,
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** Times the model's convolutions (and a kernel-level training step) on the native backend. */
export async function benchNative(opts: BenchNativeOptions = {}): Promise<BenchNativeResult> {
  const threads = opts.threads ?? 2, N = opts.batch ?? 64, reps = opts.reps ?? 15;
  const precisions = opts.precisions ?? ['fp32', 'bf16'];
  const log = opts.log === undefined ? (l: string) => console.log(l) : opts.log;
  const result: BenchNativeResult = { threads, batch: N, info: null as unknown as NativeBackend['info'], convs: [], steps: [] };
  for (const precision of precisions) {
    const be = await createNativeBackend({
      threads, precision, layout: opts.layout ?? 'auto', bf16WeightGrad: opts.bf16WeightGrad,
    });
    result.info = be.info;
    if (precision === 'bf16') result.bf16WeightGrad = be.bf16WeightGrad;
    try {
      result.convs.push(...benchConvs(be, N, reps));
      if (opts.step ?? true) result.steps.push(benchStep(be, N, reps));
    } finally {
      be.dispose();
    }
  }
  if (log) {
    const i = result.info;
    log(`native backend: oneDNN ${i.dnnl} (${i.cpuRuntime}, isa ${i.isa}), ${threads} threads, batch ${N}, ` +
        `median of ${reps} runs, layout ${opts.layout ?? 'auto'}` +
        (result.bf16WeightGrad === false ? '; bf16 runs compute weight gradients in fp32 (--bf16-wgrad for bf16)' : ''));
    log(`${pad('layer', 38)} ${pad('op', 10)} ${lpad('GFLOP', 6)} ` +
        precisions.map((p) => `${lpad(p + ' ms', 9)} ${lpad(p + ' GFLOP/s', 13)} ${lpad('(best)', 7)}`).join(' '));
    const keyed = new Map<string, ConvResult[]>();
    for (const r of result.convs) {
      const k = `${r.layer}|${r.op}`;
      keyed.set(k, [...(keyed.get(k) ?? []), r]);
    }
    const sums = new Map<string, { ms: number; gflop: number; best: number }>();
    for (const rs of keyed.values()) {
      const r0 = rs[0];
      const cols = precisions.map((p) => {
        const r = rs.find((x) => x.precision === p);
        if (!r) return `${lpad('-', 9)} ${lpad('-', 13)} ${lpad('-', 7)}`;
        const s = sums.get(p) ?? { ms: 0, gflop: 0, best: 0 };
        s.ms += r.medianMs; s.gflop += r.gflop; s.best += r.bestMs; sums.set(p, s);
        return `${lpad(r.medianMs.toFixed(3), 9)} ${lpad(r.gflops.toFixed(1), 13)} ${lpad(r.bestGflops.toFixed(0), 7)}`;
      });
      log(`${pad(r0.layer, 38)} ${pad(r0.op, 10)} ${lpad(r0.gflop.toFixed(3), 6)} ${cols.join(' ')}`);
    }
    log(`${pad('all convolutions', 38)} ${pad('', 10)} ${lpad('', 6)} ` + precisions.map((p) => {
      const s = sums.get(p);
      return s ? `${lpad(s.ms.toFixed(3), 9)} ${lpad((s.gflop / (s.ms / 1e3)).toFixed(1), 13)} ${lpad((s.gflop / (s.best / 1e3)).toFixed(0), 7)}` : '';
    }).join(' '));
    for (const s of result.steps)
      log(`training step (kernels only) ${s.precision}: ${s.medianMs.toFixed(2)} ms = ` +
          `${s.samplesPerSec.toFixed(0)} samples/s (best ${s.bestSamplesPerSec.toFixed(0)}; convolutions ${(100 * s.convShare).toFixed(0)}% of the time)`);
    if (process.env.LATENTLAB_BENCH_IMPL) for (const r of result.convs)
      log(`  ${r.precision} ${r.layer} ${r.op}: ${r.impl}`);
  }
  return result;
}

function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const num = (n: string) => { const v = argValue(argv, n); return v === undefined ? undefined : Number(v); };
  const prec = argValue(argv, '--precision');
  benchNative({
    threads: num('--threads'), batch: num('--batch'), reps: num('--reps'),
    layout: argValue(argv, '--layout') as NativeLayout | undefined,
    precisions: prec ? (prec.split(',') as ('fp32' | 'bf16')[]) : undefined,
    step: !argv.includes('--no-step'),
    bf16WeightGrad: argv.includes('--bf16-wgrad') ? true : undefined,
  }).catch((e: unknown) => {
    process.stderr.write(`bench native: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
