/**
 * Returning memory to a backend: a model, an optimiser's state and a whole training core. The wasm backend's
 * memory is only reused once freed (it never shrinks), so a page that trains one model after another on the
 * same backend must give each run's memory back: the heap stays where the first run left it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { WasmBackend } from '../src/engine/kernels/wasm/backend.js';
import { createWasmBackend } from '../src/engine/kernels/wasm/node.js';
import { Adam, SGD } from '../src/engine/optim/index.js';
import { Rng } from '../src/engine/rng.js';
import { AutoEncoder } from '../src/lab/models/autoencoder.js';
import type { Split } from '../src/lab/data/idx-format.js';
import { resolveTrainConfig, type TrainConfig } from '../src/lab/run/config.js';
import { TrainCore } from '../src/lab/train/step.js';

const split = (n: number, seed: number): Split => {
  const r = new Rng(seed);
  return { images: Uint8Array.from({ length: n * 784 }, () => Math.floor(r.uniform(0, 256))), labels: Uint8Array.from({ length: n }, (_, i) => i % 10), n, rows: 28, cols: 28 };
};
const data = { train: split(96, 1), test: split(40, 2) };

describe('dispose', async () => {
  const be: WasmBackend = await createWasmBackend({ threads: 2 });
  afterAll(() => be.dispose());

  it('a training core gives its memory back: the next runs on the same backend reuse it (SGD and Adam, a VAE)', () => {
    for (const settings of [{}, { optimizer: 'adam', lr: 1e-3, scheduler: 'none' }, { model: 'vae' }] as Partial<TrainConfig>[]) {
      // the backend keeps its kernels' per-thread scratch from the first run on: the baseline is after it
      let live = -1;
      const heaps: number[] = [];
      for (let run = 0; run < 3; run++) {
        const c = new TrainCore(resolveTrainConfig({}, { ...settings, backend: 'wasm', threads: 2, maxSteps: 3, batchSize: 16, snapshotPoints: 20 }), data, be);
        for (let i = 0; i < 3; i++) c.next();
        c.snapshot(NaN);
        heaps.push(be.heapBytes);
        c.dispose();
        if (run === 0) live = be.liveBytes;
        expect(be.liveBytes, JSON.stringify(settings)).toBe(live);
      }
      // and the freed memory is reused: the heap stays where the first run left it
      expect(heaps[2], JSON.stringify(settings)).toBe(heaps[0]);
    }
    // without dispose every run takes more (the check above can fail)
    const before = be.liveBytes;
    const c = new TrainCore(resolveTrainConfig({}, { backend: 'wasm', threads: 2, maxSteps: 1, batchSize: 16 }), data, be);
    c.next();
    const c2 = new TrainCore(resolveTrainConfig({}, { backend: 'wasm', threads: 2, maxSteps: 1, batchSize: 16 }), data, be);
    c2.next();
    expect(be.liveBytes).toBeGreaterThan(before + 2 * 4 * 500_000);
    c.dispose();
    c2.dispose();
    expect(be.liveBytes).toBe(before);
  });

  it('a disposed model is empty; an optimiser gives back its state arrays, also those a loaded state dict replaced', () => {
    const start = be.liveBytes;
    const m = new AutoEncoder({ model: 'bn', latent: 2 }, new Rng(0)).to(be);
    const params = m.parameters();
    expect(params.every((p) => p.data.length > 0 && be.owns(p.data))).toBe(true);
    for (const make of [() => new SGD(params, { lr: 0.1, momentum: 0.9 }), () => new Adam(params, { lr: 1e-3 })]) {
      const none = be.liveBytes;
      const opt = make();
      for (const p of params) p.grad.fill(0.01);
      opt.step();
      opt.step();
      const sd = opt.stateDict();
      const live = be.liveBytes;
      for (let i = 0; i < 3; i++) opt.loadStateDict(sd);  // each load's arrays replace the last's
      expect(be.liveBytes).toBe(live);
      expect(live - none).toBeGreaterThanOrEqual(4 * params.reduce((t, p) => t + p.size, 0));  // one array a parameter at least
      opt.dispose();
      expect(opt.state.size).toBe(0);
      expect(be.liveBytes).toBe(none);
      const again = make();
      again.step();
      expect(be.liveBytes).toBe(live);
      again.dispose();
    }
    m.dispose();
    expect(m.parameters().every((p) => p.data.length === 0 && p.grad.length === 0)).toBe(true);
    expect(be.liveBytes).toBe(start);
  });
});
