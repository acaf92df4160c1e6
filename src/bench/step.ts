/**
 * One benchmark configuration, run in its own process so that its peak memory is its own:
 * training steps of the study's model (bn, z=2) at a batch size, on one backend and thread count.
 * Prints one JSON line: median samples/s over windows after a warm-up, per-layer times, peak RSS.
 *   node dist/bench/step.js --backend wasm --threads 2 [--batch 64] [--precision bf16]
 */
import { createBackend } from '../engine/kernels/select.js';
import { Sequential, type LayerTimes } from '../engine/nn/sequential.js';
import { mseLoss } from '../engine/loss.js';
import { SGD } from '../engine/optim/index.js';
import { CyclicLR } from '../engine/lr_scheduler.js';
import { Rng } from '../engine/rng.js';
import { Tensor } from '../engine/tensor.js';
import { AutoEncoder } from '../lab/models/autoencoder.js';
import '../node-backends.js';
import { IMAGE_PIXELS, batchShape } from '../lab/data/image.js';

export interface StepBenchResult {
  backend: string; threads: number; precision: string; batch: number;
  samplesPerSec: number; windows: number[]; msPerStep: number;
  layers: { name: string; forwardMs: number; backwardMs: number }[];
  peakRssMB: number;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

export async function benchStep(backendName: string, threads: number, batch = 64, precision: 'fp32' | 'bf16' = 'fp32',
                                warmup = 5, windows = 5, stepsPerWindow = 10): Promise<StepBenchResult> {
  const backend = await createBackend(backendName, { threads, precision });
  const model = new AutoEncoder({ model: 'bn', latent: 2 }, new Rng(0)).to(backend);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const sched = new CyclicLR(opt, { baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 400 });
  const x = backend.alloc(batch * IMAGE_PIXELS), grad = backend.alloc(batch * IMAGE_PIXELS);
  const rng = new Rng(1);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform(-1, 1);
  const xt = new Tensor(batchShape(batch), x);
  const step = (): void => {
    model.zeroGrad();
    const y = model.forward(xt);
    mseLoss(y.data, x, y.size, grad);
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
  for (let i = 0; i < stepsPerWindow; i++) step();
  Sequential.profiler = null;
  const layers = [...prof].map(([name, t]) => ({ name, forwardMs: t.forward / t.calls, backwardMs: t.backward / t.calls }));
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  backend.dispose?.();
  return {
    backend: backend.name, threads: backend.threads, precision, batch, samplesPerSec: median, windows: rates,
    msPerStep: (1000 * batch) / median, layers, peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  benchStep(arg('backend', 'wasm'), Number(arg('threads', '2')), Number(arg('batch', '64')), arg('precision', 'fp32') as 'fp32' | 'bf16',
    Number(arg('warmup', '5')), Number(arg('windows', '5')), Number(arg('steps', '10')))
    .then((r) => { process.stdout.write(`${JSON.stringify(r)}\n`); process.exit(0); })
    .catch((e) => { process.stderr.write(`bench: ${(e as Error).message}\n`); process.exit(1); });
}
