/**
 * The training step, browser-safe: the one place where a batch becomes an update. The Node Trainer
 * (./train.ts: run folders, checkpoints, signals) and the page's training worker
 * (src/web/app/tab/worker.ts) both drive a `TrainCore`, so the same seed and settings give the same
 * weights in Node and in a browser tab on the same backend.
 *
 * One step: the seeded loader's next uint8 batch -> float [-1,1] (straight into backend memory) ->
 * encoder -> z (+ the latent-map term when supervised) -> decoder -> loss -> backward through the
 * decoder, then the encoder -> optimizer.step -> the batch scheduler's step.
 *
 * Nothing here touches files, processes or timers.
 */
import type { Backend } from '../../engine/kernels/index.js';
import { bceLoss, mseLoss } from '../../engine/loss.js';
import { Rng } from '../../engine/rng.js';
import { Tensor } from '../../engine/tensor.js';
import type { TrainConfig } from '../run/config.js';
import { DataLoader } from '../data/loader.js';
import type { Split } from '../data/idx-format.js';
import { isVae, makeModel, type LatentModel } from '../models/family.js';
import { klWeight, l1Activity, vaeObjective } from '../../engine/latent_loss.js';
import { corrupt, parseNoise, type NoiseSpec } from '../data/noise.js';
import { reconstructionError } from '../analysis/eval.js';
import { latentsTestImages } from '../run/test-latents.js';
import { makeOptimizer, makeScheduler, type AnyOpt, type Schedule } from './optimizer.js';
import { IMAGE_PIXELS, batchShape, toModel } from '../data/image.js';

/** The data a run trains on: the two splits (uint8 images, labels). */
export interface TrainSplits { train: Split; test: Split }

export interface StepResult { loss: number; recon: number; latent?: number; kl?: number; klWeight?: number; l1?: number; epoch: number; batch: number }

export interface Snapshot {
  step: number; loss: number;
  /** Latents of the fixed snapshot subset of the test set: n * dim. */
  z: Float32Array; dim: number; labels: Uint8Array;
  /** Decoded images (g*g*IMAGE_PIXELS) over `box` for 2-D latents, else reconstructions of the first g*g subset images. */
  grid: Float32Array; gridSize: number; box?: [number, number, number, number];
}

/** What a caller may do between the loss and the update of a step. */
export interface StepHooks {
  /** The loss is not finite: throw (the default throws a plain Error naming the step). */
  nonFinite?: (loss: number, step: number) => never;
  /** The loss is finite, the weights are not yet changed (the Trainer writes the checkpoint taken before this step). */
  beforeUpdate?: () => void;
}

export class TrainCore {
  readonly model: LatentModel;
  /** eps of the VAE's reparameterisation (seed + 4) and the input corruption (seed + 5): saved in checkpoints. */
  readonly epsRng: Rng;
  readonly noiseRng: Rng;
  readonly noiseSpec: NoiseSpec | null;
  private xin: Float32Array | null = null;
  private dMu: Float32Array | null = null;
  private dLogvar: Float32Array | null = null;
  private l1Grad: Float32Array | null = null;
  readonly opt: AnyOpt;
  sched: Schedule;
  readonly loader: DataLoader;
  readonly totalSteps: number;
  /** Steps done. */
  step = 0;
  private xbuf: Float32Array;
  private grad: Float32Array;
  private latentGrad: Float32Array | null = null;
  private targets: Float32Array | null = null;
  private pBuf: Float32Array | null = null;
  private tBuf: Float32Array | null = null;
  /** The fixed subset of the test set the snapshots encode (the same for the whole run). */
  readonly snapIdx: Int32Array;

  constructor(readonly config: TrainConfig, readonly data: TrainSplits, readonly backend: Backend, opts: { testLimit?: number } = {}) {
    const c = config;
    this.epsRng = new Rng(c.seed + 4);
    this.noiseRng = new Rng(c.seed + 5);
    this.noiseSpec = parseNoise(c.noise);
    this.model = makeModel(c, new Rng(c.seed), this.epsRng).to(backend);
    this.model.train();
    const B = c.batchSize;
    const D = this.model.latentDim;
    if (this.noiseSpec) this.xin = backend.alloc(B * IMAGE_PIXELS);
    if (isVae(this.model)) { this.dMu = new Float32Array(B * D); this.dLogvar = new Float32Array(B * D); }
    if (c.activityL1 > 0) this.l1Grad = new Float32Array(B * D);
    this.xbuf = backend.alloc(B * IMAGE_PIXELS);
    this.grad = backend.alloc(B * IMAGE_PIXELS);
    this.loader = new DataLoader(data.train, { batchSize: B, seed: c.seed + 1, out: this.xbuf, dropLast: true });
    this.totalSteps = Math.min(c.maxSteps ?? Infinity, c.epochs * this.loader.batchesPerEpoch);
    this.opt = makeOptimizer(c, this.model.parameters());
    this.sched = makeScheduler(c, this.opt, this.totalSteps);
    if (c.supervised) {
      this.latentGrad = backend.alloc(B * 2);
      this.targets = new Float32Array(B * 2);
    }
    const nTest = Math.min(data.test.n, opts.testLimit ?? data.test.n);
    const k = Math.min(c.snapshotPoints, nTest);
    this.snapIdx = new Rng(c.seed + 2).permutation(nTest).slice(0, k);
  }

  /**
   * Returns the run's backend memory (the model, the optimiser's state, the batch buffers) to the backend: a
   * page that trains again on the same backend reuses it instead of growing (the wasm memory never shrinks).
   * The core cannot be used afterwards.
   */
  dispose(): void {
    this.opt.dispose();
    this.model.dispose();
    for (const a of [this.xin, this.xbuf, this.grad, this.latentGrad]) if (a) this.backend.free(a);
    this.xin = this.latentGrad = null;
  }

  /** The LR of the first parameter group now. */
  get lr(): number { return this.opt.paramGroups[0].lr; }

  /**
   * Sets the LR of every parameter group from the next step on. A running batch schedule
   * (cyclic, onecycle, ...) would overwrite it at once, so it ends there: the LR stays as set.
   */
  setLr(lr: number): void {
    if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`lr: expected a positive number, got ${lr}`);
    for (const g of this.opt.paramGroups) g.lr = lr;
    if (this.sched.kind === 'batch') this.sched = { kind: 'none' };
  }

  /** One optimisation step on the next batch; returns the step's losses. */
  next(hooks: StepHooks = {}): StepResult {
    const c = this.config, model = this.model;
    const b = this.loader.next();
    const n = b.size;
    // a denoising run sees corrupted inputs; the targets (xbuf) stay clean
    const input = this.xin ? corrupt(this.xbuf, this.noiseSpec, this.noiseRng, this.xin, n * IMAGE_PIXELS) : this.xbuf;
    const x = new Tensor(batchShape(n), input);
    model.zeroGrad();
    const y = model.forward(x);
    const m = n * IMAGE_PIXELS;
    if (isVae(model)) {
      const D = model.latentDim;
      const w = klWeight(this.step, c.beta, c.klWarmup);
      const t = vaeObjective(y.data, this.xbuf, model.lastMu!.data, model.lastLogvar!.data, n, IMAGE_PIXELS, D, w, this.grad, this.dMu!, this.dLogvar!);
      if (!Number.isFinite(t.loss)) {
        if (hooks.nonFinite) hooks.nonFinite(t.loss, this.step + 1);
        throw new Error(`the loss became ${t.loss} at step ${this.step + 1}; training stopped (try a lower lr, max lr or beta)`);
      }
      hooks.beforeUpdate?.();
      model.backward(new Tensor(y.shape, this.grad), this.dMu!, this.dLogvar!);
      this.opt.step();
      if (this.sched.kind === 'batch') this.sched.s.step();
      this.step++;
      return { loss: t.loss, recon: t.reconstruction, kl: t.kl, klWeight: w, epoch: b.epoch, batch: b.batch };
    }
    let recon: number;
    if (c.loss === 'mse') {
      recon = mseLoss(y.data, this.xbuf, m, this.grad, 1, this.backend);
    } else {
      // BCE on pixels in [0, 1]: p = (y + 1) / 2 against t = (x + 1) / 2
      const p = this.scratchP(m), t = this.scratchT(m);
      for (let i = 0; i < m; i++) { p[i] = (y.data[i] + 1) / 2; t[i] = (this.xbuf[i] + 1) / 2; }
      recon = bceLoss(p, t, m, this.grad, 0.5);
    }
    let latent: number | undefined;
    if (c.supervised && this.latentGrad && this.targets && b.labels) {
      const z = model.lastLatent!.data;
      for (let i = 0; i < n; i++) {
        const [tx, ty] = c.supervised[b.labels[i]];
        this.targets[2 * i] = tx; this.targets[2 * i + 1] = ty;
      }
      latent = mseLoss(z, this.targets, n * 2, this.latentGrad, c.latentWeight);
    }
    let l1: number | undefined;
    let latentGrad = this.latentGrad ?? undefined;
    if (this.l1Grad) {
      const D = model.latentDim;
      l1 = l1Activity(model.lastLatent!.data, n, D, c.activityL1, this.l1Grad);
      if (latentGrad) for (let i = 0; i < n * D; i++) latentGrad[i] += this.l1Grad[i];
      else latentGrad = this.l1Grad;
    }
    const loss = recon + (latent !== undefined ? c.latentWeight * latent : 0) + (l1 ?? 0);
    if (!Number.isFinite(loss)) {
      if (hooks.nonFinite) hooks.nonFinite(loss, this.step + 1);
      throw new Error(`the loss became ${loss} at step ${this.step + 1}; training stopped (try a lower lr or max lr)`);
    }
    hooks.beforeUpdate?.();
    model.backward(new Tensor(y.shape, this.grad), latentGrad);
    this.opt.step();
    if (this.sched.kind === 'batch') this.sched.s.step();
    this.step++;
    return { loss, recon, latent, l1, epoch: b.epoch, batch: b.batch };
  }

  private scratchP(m: number): Float32Array { return (this.pBuf && this.pBuf.length >= m) ? this.pBuf : (this.pBuf = new Float32Array(m)); }
  private scratchT(m: number): Float32Array { return (this.tBuf && this.tBuf.length >= m) ? this.tBuf : (this.tBuf = new Float32Array(m)); }

  /** Test MSE on [-1, 1] (eval mode) and the test latents (those of latents.safetensors: run/test-latents.ts). */
  evaluate(limit?: number): { mse: number; z: Float32Array; labels: Uint8Array } {
    const test = latentsTestImages(this.data.test, limit ?? this.data.test.n);
    // in batches of the training size, so that evaluation reuses the training buffers
    return reconstructionError(this.model, test, test.n, this.config.batchSize);
  }

  /** The latents of the snapshot subset and a decoded grid (the live plane). */
  snapshot(loss: number): Snapshot {
    const t = this.data.test, k = this.snapIdx.length, D = this.model.latentDim, B = this.config.batchSize;
    const g = 8, first = Math.min(k, g * g);
    // a batch of the subset at a time, uint8 -> float into one batch-sized buffer (2000 images as floats
    // at once were 6 MB more at every snapshot)
    const x = new Float32Array(Math.max(B, first) * IMAGE_PIXELS);
    const fill = (i0: number, n: number): void => {
      for (let i = 0; i < n; i++) {
        const src = this.snapIdx[i0 + i] * IMAGE_PIXELS;
        for (let j = 0; j < IMAGE_PIXELS; j++) x[i * IMAGE_PIXELS + j] = toModel(t.images[src + j]);
      }
    };
    const z = new Float32Array(k * D);
    for (let i0 = 0; i0 < k; i0 += B) {
      const n = Math.min(B, k - i0);
      fill(i0, n);
      this.model.encode(x, n, B, z.subarray(i0 * D, (i0 + n) * D));
    }
    const labels = Uint8Array.from(this.snapIdx, (i) => t.labels[i]);
    let grid: Float32Array, box: [number, number, number, number] | undefined;
    if (D === 2) {
      box = latentBox(z);
      grid = this.model.decode(gridPoints(box, g), g * g);
    } else {
      fill(0, first);
      grid = this.model.reconstruct(x, first);
    }
    return { step: this.step, loss, z, dim: D, labels, grid, gridSize: g, box };
  }
}

/** The 1st-99th percentile box of 2-D latents, padded by 5%. */
export function latentBox(z: Float32Array): [number, number, number, number] {
  const n = z.length / 2;
  const xs = Float32Array.from({ length: n }, (_, i) => z[2 * i]).sort();
  const ys = Float32Array.from({ length: n }, (_, i) => z[2 * i + 1]).sort();
  const q = (a: Float32Array, p: number): number => a[Math.min(a.length - 1, Math.max(0, Math.round(p * (a.length - 1))))];
  let [x0, x1, y0, y1] = [q(xs, 0.01), q(xs, 0.99), q(ys, 0.01), q(ys, 0.99)];
  const px = Math.max((x1 - x0) * 0.05, 1e-3), py = Math.max((y1 - y0) * 0.05, 1e-3);
  x0 -= px; x1 += px; y0 -= py; y1 += py;
  return [x0, y0, x1, y1];
}

/**
 * g*g evenly spaced points of a box [x0, y0, x1, y1], row by row from the top (largest y) so the
 * grid reads like the plane: row r, column c -> (x0 + c (x1-x0)/(g-1), y1 - r (y1-y0)/(g-1)).
 */
export function gridPoints(box: readonly number[], g: number): Float32Array {
  const [x0, y0, x1, y1] = box;
  const out = new Float32Array(g * g * 2);
  for (let r = 0; r < g; r++)
    for (let col = 0; col < g; col++) {
      const i = r * g + col;
      out[2 * i] = g === 1 ? (x0 + x1) / 2 : x0 + (col * (x1 - x0)) / (g - 1);
      out[2 * i + 1] = g === 1 ? (y0 + y1) / 2 : y1 - (r * (y1 - y0)) / (g - 1);
    }
  return out;
}
