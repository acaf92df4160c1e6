/**
 * The training-step benchmark shared by Node and the browser tab (src/bench/tab.ts, the tab's worker):
 * the study's model (bn, z=2), SGD momentum + CyclicLR, on a deterministic synthetic split (the
 * speed of a step does not depend on the pixel values), median samples/s of `windows` windows of 10
 * steps after 5 warm-up steps. Browser-safe.
 */
import type { Backend } from '../../engine/kernels/index.js';
import { Rng } from '../../engine/rng.js';
import { resolveTrainConfig } from '../run/config.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W } from '../data/image.js';
import type { Split } from '../data/idx-format.js';
import { TrainCore } from './step.js';

export interface StepBench { samplesPerSec: number; windows: number[]; backend: string; threads: number; relaxed: boolean; batchSize: number }

function syntheticSplit(n: number, seed: number): Split {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * IMAGE_PIXELS), labels = new Uint8Array(n);
  for (let i = 0; i < images.length; i++) images[i] = rng.random() < 0.8 ? 0 : Math.floor(rng.random() * 256);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(rng.random() * 10);
  return { images, labels, n, rows: IMAGE_H, cols: IMAGE_W };
}

export function benchTrainStep(backend: Backend, opts: { windows?: number; batchSize?: number } = {}): StepBench {
  const windows = opts.windows ?? 5, B = opts.batchSize ?? 64;
  const config = resolveTrainConfig({}, { batchSize: B, seed: 0, maxSteps: 5 + 10 * windows, snapshotPoints: 1 });
  const core = new TrainCore(config, { train: syntheticSplit(B * 8, 1), test: syntheticSplit(16, 2) }, backend);
  for (let i = 0; i < 5; i++) core.next();
  const w: number[] = [];
  for (let k = 0; k < windows; k++) {
    const t = performance.now();
    for (let i = 0; i < 10; i++) core.next();
    w.push((10 * B) / ((performance.now() - t) / 1000));
  }
  const s = [...w].sort((a, b) => a - b);
  return { samplesPerSec: s[Math.floor(s.length / 2)], windows: w, backend: backend.name, threads: backend.threads, relaxed: Boolean((backend as { relaxed?: boolean }).relaxed), batchSize: B };
}
