/**
 * One benchmark configuration, run in its own process so that its peak memory is its own:
 * training steps of the study's model (bn, z=2) at a batch size, on one backend and thread count.
 * Prints one JSON line: median samples/s over windows after a warm-up, per-layer times, peak RSS.
 *   node dist/bench/step.js --backend wasm --threads 2 [--batch 64] [--precision bf16 [--bf16-timed]]
 */
import { createBackend } from '../engine/kernels/select.js';
import { createNativeBackend } from '../engine/kernels/native/index.js';
import { Sequential, type LayerTimes } from '../engine/nn/sequential.js';
import { mseLoss } from '../engine/loss.js';
import { SGD } from '../engine/optim/index.js';
import { CyclicLR } from '../engine/lr_scheduler.js';
import { Rng } from '../engine/rng.js';
import { Tensor } from '../engine/tensor.js';
import { AutoEncoder } from '../lab/models/autoencoder.js';
import '../node-backends.js';
import { IMAGE_PIXELS, batchShape } from '../lab/data/image.js';
import type { Backend, ConvGeom } from '../engine/kernels/index.js';
import type { Module } from '../engine/nn/module.js';

export interface StepBenchResult {
  backend: string; threads: number; precision: string; batch: number;
  samplesPerSec: number; windows: number[]; msPerStep: number;
  layers: { name: string; forwardMs: number; backwardMs: number }[];
  /** Every convolution kernel of a step, timed inside the profiled steps: layer, direction, ms, GFLOP. */
  convs: ConvTiming[];
  /**
   * Step time of the profiled pass (ms), the part of it spent inside the convolution kernels, and the part of that
   * spent in kernels that compute a convolution and a batch-norm together (Backend.fusesNormConvTranspose).
   */
  profiledStepMs: number;
  convMs: number;
  fusedMs: number;
  peakRssMB: number;
}

/**
 * One convolution of the model in one direction (for a ConvTranspose2d, fwd runs conv2dBackwardData); 'fwd+bn' and
 * 'bwd+bn': a kernel that computes the convolution with a batch-norm next to it, whose GFLOP are the convolutions'.
 */
export interface ConvTiming { layer: string; dir: 'fwd' | 'bwd-data' | 'bwd-weight' | 'fwd+bn' | 'bwd+bn'; ms: number; gflop: number }

type ConvKernel = 'conv2d' | 'conv2dBackwardData' | 'conv2dBackwardWeight';
/** The fused convolution + batch-norm kernels, and how many of the convolution's passes each computes. */
const FUSED_KERNELS = {
  convNormForward: { dir: 'fwd+bn', passes: 1 },
  normConvTransposeForward: { dir: 'fwd+bn', passes: 1 },
  normConvTransposeBackward: { dir: 'bwd+bn', passes: 2 },  // the input and the weight gradients
  convNormBackward: { dir: 'bwd+bn', passes: 1 },  // the weight gradient (a first layer: no input gradient)
} as const;

/**
 * Times every convolution kernel call while `on`: the backend's three conv methods and its fused ones (FUSED_KERNELS)
 * are wrapped, and the model's Conv2d / ConvTranspose2d layers say which layer and pass is calling. Bench only.
 */
function instrumentConvs(backend: Backend, model: Module): { on: boolean; rows: Map<string, ConvTiming>; ms: number; fusedMs: number } {
  const state = { on: false, rows: new Map<string, ConvTiming>(), ms: 0, fusedMs: 0 };
  let current: { layer: string; pass: 'forward' | 'backward' } | null = null;
  for (const [name, m] of model.namedModules()) {
    if (m.typeName !== 'Conv2d' && m.typeName !== 'ConvTranspose2d') continue;
    const label = `${name} ${m.typeName}`;
    const mm = m as unknown as { forward: (...a: unknown[]) => unknown; backward: (...a: unknown[]) => unknown };
    for (const pass of ['forward', 'backward'] as const) {
      const orig = mm[pass].bind(m);
      mm[pass] = (...a: unknown[]) => { current = { layer: label, pass }; try { return orig(...a); } finally { current = null; } };
    }
  }
  const b = backend as unknown as Partial<Record<ConvKernel | keyof typeof FUSED_KERNELS, (g: ConvGeom, ...a: unknown[]) => void>>;
  const kernels = [...(['conv2d', 'conv2dBackwardData', 'conv2dBackwardWeight'] as const).map((k) => ({ k, fused: null })),
    ...(Object.keys(FUSED_KERNELS) as (keyof typeof FUSED_KERNELS)[]).map((k) => ({ k, fused: FUSED_KERNELS[k] }))];
  for (const { k, fused } of kernels) {
    const orig = b[k]?.bind(backend);
    if (!orig) continue;
    b[k] = (g: ConvGeom, ...a: unknown[]) => {
      if (!state.on || !current) { orig(g, ...a); return; }
      const t0 = performance.now();
      orig(g, ...a);
      const ms = performance.now() - t0;
      const dir = fused ? fused.dir : current.pass === 'forward' ? 'fwd' : k === 'conv2dBackwardWeight' ? 'bwd-weight' : 'bwd-data';
      const key = `${current.layer}|${dir}`;
      const gflop = (fused?.passes ?? 1) * 2 * g.N * g.K * g.OH * g.OW * g.C * g.R * g.S / 1e9;
      const r = state.rows.get(key) ?? { layer: current.layer, dir, ms: 0, gflop };
      r.ms += ms;
      state.ms += ms;
      if (fused) state.fusedMs += ms;
      state.rows.set(key, r);
    };
  }
  return state;
}

/**
 * The profiled step's time outside the convolution kernels (ms), by where it goes; the parts add up to the whole. A
 * kernel that computes a convolution with a batch-norm counts as a convolution kernel (`fused`, not in the total:
 * the time in such kernels, which is also batch-norm work).
 */
export interface OutsideConv {
  total: number;
  fused: number;
  /** Batch-norm layers (with their fused activations). */
  batchNorm: number;
  /** Every other layer that is not a convolution: Linear, activations, Flatten, Unflatten. */
  otherLayers: number;
  /** Inside the convolution layers but outside their kernels (bias, gradient bookkeeping, the calls). */
  aroundKernels: number;
  /** Between the layers: zeroing, loss, optimizer, scheduler, the planner's reorders and the containers. */
  between: number;
}

export function outsideConv(r: Pick<StepBenchResult, 'layers' | 'convMs' | 'fusedMs' | 'profiledStepMs'>): OutsideConv {
  let batchNorm = 0, otherLayers = 0, convLayers = 0;
  for (const l of r.layers) {
    const ms = l.forwardMs + l.backwardMs;
    if (/ (Conv2d|ConvTranspose2d)\b/.test(l.name)) convLayers += ms;
    else if (/ BatchNorm2d\b/.test(l.name)) batchNorm += ms;
    else otherLayers += ms;
  }
  const total = r.profiledStepMs - r.convMs;
  const aroundKernels = convLayers - r.convMs;
  return { total, fused: r.fusedMs, batchNorm, otherLayers, aroundKernels, between: total - batchNorm - otherLayers - aroundKernels };
}

/**
 * The convolutions' GFLOP per training step: the most any of latentlab's configurations timed (PyTorch's rows carry
 * times without FLOPs; the fused rows carry their convolutions' FLOPs, so every latentlab configuration sums the same).
 */
export function convGflopPerStep(rows: { convs?: { gflop?: number }[] }[]): number {
  const sums = rows.filter((x) => x.convs?.length && x.convs.every((c) => Number.isFinite(c.gflop)))
    .map((x) => x.convs!.reduce((s, c) => s + c.gflop!, 0));
  return sums.length ? Math.max(...sums) : NaN;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

export async function benchStep(backendName: string, threads: number, batch = 64, precision: 'fp32' | 'bf16' = 'fp32',
                                warmup = 5, windows = 5, stepsPerWindow = 10, bf16Timed = false): Promise<StepBenchResult> {
  const backend = bf16Timed ? await createNativeBackend({ threads, precision, bf16Timed })
    : await createBackend(backendName, { threads, precision });
  const model = new AutoEncoder({ model: 'bn', latent: 2 }, new Rng(0));
  const convProbe = instrumentConvs(backend, model);
  model.to(backend);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const sched = new CyclicLR(opt, { baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 400 });
  const x = backend.alloc(batch * IMAGE_PIXELS), grad = backend.alloc(batch * IMAGE_PIXELS);
  const rng = new Rng(1);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform(-1, 1);
  const xt = new Tensor(batchShape(batch), x);
  const step = (): void => {
    model.zeroGrad();
    const y = model.forward(xt);
    mseLoss(y.data, x, y.size, grad, 1, backend);
    model.backward(new Tensor(y.shape, grad));
    opt.step();
    sched.step();
  };
  for (let i = 0; i < warmup; i++) step();
  const rates: number[] = [];
  for (let w = 0; w < windows; w++) {
    const t = performance.now();
    for (let i = 0; i < stepsPerWindow; i++) step();
    rates.push((stepsPerWindow * batch) / ((performance.now() - t) / 1000));
  }
  // a separate profiled pass: timing every layer adds a little overhead of its own
  const prof = new Map<string, LayerTimes>();
  Sequential.profiler = prof;
  convProbe.on = true;
  const tp = performance.now();
  for (let i = 0; i < stepsPerWindow; i++) step();
  const profiledStepMs = (performance.now() - tp) / stepsPerWindow;
  convProbe.on = false;
  Sequential.profiler = null;
  const convs = [...convProbe.rows.values()].map((r) => ({ ...r, ms: r.ms / stepsPerWindow }));
  const layers = [...prof].map(([name, t]) => ({ name, forwardMs: t.forward / t.calls, backwardMs: t.backward / t.calls }));
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  backend.dispose?.();
  return {
    backend: backend.name, threads: backend.threads, precision, batch, samplesPerSec: median, windows: rates,
    msPerStep: (1000 * batch) / median, layers, convs, profiledStepMs,
    convMs: convProbe.ms / stepsPerWindow, fusedMs: convProbe.fusedMs / stepsPerWindow, peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  benchStep(arg('backend', 'wasm'), Number(arg('threads', '2')), Number(arg('batch', '64')), arg('precision', 'fp32') as 'fp32' | 'bf16',
    Number(arg('warmup', '5')), Number(arg('windows', '5')), Number(arg('steps', '10')), process.argv.includes('--bf16-timed'))
    .then((r) => { process.stdout.write(`${JSON.stringify(r)}\n`); process.exit(0); })
    .catch((e) => { process.stderr.write(`bench: ${(e as Error).message}\n`); process.exit(1); });
}
