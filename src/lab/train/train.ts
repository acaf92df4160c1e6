/**
 * The training loop. One step: uint8 batch -> float [-1,1] (straight into backend memory) ->
 * encoder -> z (+ the latent-map term when supervised) -> decoder -> loss -> backward through the
 * decoder, then the encoder -> optimizer.step -> scheduler.step -> metrics -> now and then a
 * checkpoint or a snapshot. Everything a resumed run needs (weights, optimiser, scheduler, data
 * order, step) is in one checkpoint file, written atomically.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Backend } from '../../engine/kernels/index.js';
import { createBackend } from '../../engine/kernels/select.js';
import { bceLoss, mseLoss } from '../../engine/loss.js';
import { packOptimizerState, unpackOptimizerState } from '../../engine/optim/optimizer.js';
import { Rng } from '../../engine/rng.js';
import { f32, i64, loadSafetensors, saveSafetensors, type StateDict } from '../../engine/state.js';
import { Tensor } from '../../engine/tensor.js';
import { VERSION } from '../../version.js';
import { resolveTrainConfig, TRAIN_KEYS, type LatentMap, type TrainConfig } from '../run/config.js';
import { DataLoader, type LoaderState } from '../data/loader.js';
import { loadDataset, type LoadedDataset } from '../data/datasets.js';
import type { Split } from '../data/idx.js';
import { writeFileAtomic, writeJsonAtomic } from '../run/atomic.js';
import { AutoEncoder } from '../models/autoencoder.js';
import { reconstructionError } from '../analysis/eval.js';
import { currentMomentum, makeOptimizer, makeScheduler, type AnyOpt, type Schedule } from './optimizer.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W, batchShape, toModel } from '../data/image.js';

export interface StepInfo {
  step: number; epoch: number; batch: number; batchesPerEpoch: number; totalSteps: number;
  loss: number; reconLoss: number; latentLoss?: number;
  lr: number; momentum?: number; elapsed: number; samplesPerSec: number;
}

export interface EpochInfo { epoch: number; step: number; testLoss: number }

export interface Snapshot {
  step: number; loss: number;
  /** Latents of the fixed snapshot subset of the test set: n * dim. */
  z: Float32Array; dim: number; labels: Uint8Array;
  /** Decoded images (g*g*IMAGE_PIXELS) over `box` for 2-D latents, else reconstructions of the first g*g subset images. */
  grid: Float32Array; gridSize: number; box?: [number, number, number, number];
}

export interface TrainCallbacks {
  /** After every step; return 'stop' to end training after this step (a final checkpoint is written). */
  onStep?: (info: StepInfo, trainer: Trainer) => void | 'stop';
  onEpoch?: (info: EpochInfo) => void;
  onSnapshot?: (snap: Snapshot) => void;
  /** One line for humans (backend choice, checkpoints, results). */
  onLog?: (line: string) => void;
}

export interface TrainOptions {
  /** Run folder; without it nothing is written. */
  out?: string;
  /** Continue the run in `out` from its checkpoint (its config.json wins over `config`, except epochs/maxSteps). */
  resume?: boolean;
  /** Data already loaded (else found via config.dataset / dataDir). */
  data?: LoadedDataset;
  /** A backend already made (else created from config.backend and threads). */
  backend?: Backend;
  /** Evaluate (test loss, latents) on at most this many test images (default all). */
  testLimit?: number;
  /** Train images encoded at the end for centroids and k-NN (default 10,000). */
  trainLatents?: number;
  callbacks?: TrainCallbacks;
}

export interface TrainResult {
  config: TrainConfig; model: AutoEncoder; steps: number; epochs: number;
  testMse: number; samplesPerSec: number; seconds: number; out?: string; stopped: boolean;
}

export class TrainingError extends Error {}

const CKPT = 'checkpoint.safetensors';

interface MetricLine { step: number; epoch: number; loss?: number; lr?: number; elapsed: number; samplesPerSec?: number; testLoss?: number; [k: string]: unknown }

export class Trainer {
  readonly model: AutoEncoder;
  readonly opt: AnyOpt;
  readonly sched: Schedule;
  readonly loader: DataLoader;
  readonly totalSteps: number;
  step = 0;
  private metrics: MetricLine[] = [];
  private elapsedBefore = 0;
  private t0 = 0;
  private xbuf: Float32Array;
  private grad: Float32Array;
  private latentGrad: Float32Array | null = null;
  private targets: Float32Array | null = null;
  private snapIdx: Int32Array;
  private lastGoodStep = 0;

  constructor(readonly config: TrainConfig, readonly data: LoadedDataset, readonly backend: Backend, readonly opts: TrainOptions) {
    const c = config;
    this.model = new AutoEncoder(c, new Rng(c.seed)).to(backend);
    this.model.train();
    const B = c.batchSize;
    this.xbuf = backend.alloc(B * IMAGE_PIXELS);
    this.grad = backend.alloc(B * IMAGE_PIXELS);
    this.loader = new DataLoader(data.train, { batchSize: B, seed: c.seed + 1, out: this.xbuf, dropLast: true });
    const perEpoch = this.loader.batchesPerEpoch;
    this.totalSteps = Math.min(c.maxSteps ?? Infinity, c.epochs * perEpoch);
    this.opt = makeOptimizer(c, this.model.parameters());
    this.sched = makeScheduler(c, this.opt, this.totalSteps);
    if (c.supervised) {
      this.latentGrad = backend.alloc(B * 2);
      this.targets = new Float32Array(B * 2);
    }
    // a fixed subset of the test set for snapshots, the same for the whole run
    const nTest = Math.min(data.test.n, opts.testLimit ?? data.test.n);
    const k = Math.min(c.snapshotPoints, nTest);
    this.snapIdx = new Rng(c.seed + 2).permutation(nTest).slice(0, k);
  }

  get out(): string | undefined { return this.opts.out; }
  get elapsed(): number { return this.elapsedBefore + (performance.now() - this.t0) / 1000; }
  private log(line: string): void { this.opts.callbacks?.onLog?.(line); }

  /** One optimisation step on the next batch; returns the step's losses. */
  trainStep(): { loss: number; recon: number; latent?: number; epoch: number; batch: number } {
    const c = this.config, model = this.model;
    const b = this.loader.next();
    const n = b.size;
    const x = new Tensor(batchShape(n), this.xbuf);
    model.zeroGrad();
    const y = model.forward(x);
    const m = n * IMAGE_PIXELS;
    let recon: number;
    if (c.loss === 'mse') {
      recon = mseLoss(y.data, this.xbuf, m, this.grad);
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
    const loss = recon + (latent !== undefined ? c.latentWeight * latent : 0);
    if (!Number.isFinite(loss))
      throw new TrainingError(`the loss became ${loss} at step ${this.step + 1}; training stopped` +
        (this.out ? `, the last good checkpoint (step ${this.lastGoodStep}) is kept in ${path.join(this.out, CKPT)}` : '') +
        ' (try a lower --lr or --max-lr)');
    model.backward(new Tensor(y.shape, this.grad), this.latentGrad ?? undefined);
    this.opt.step();
    if (this.sched.kind === 'batch') this.sched.s.step();
    this.step++;
    return { loss, recon, latent, epoch: b.epoch, batch: b.batch };
  }

  private pBuf: Float32Array | null = null;
  private tBuf: Float32Array | null = null;
  private scratchP(m: number): Float32Array { return (this.pBuf && this.pBuf.length >= m) ? this.pBuf : (this.pBuf = new Float32Array(m)); }
  private scratchT(m: number): Float32Array { return (this.tBuf && this.tBuf.length >= m) ? this.tBuf : (this.tBuf = new Float32Array(m)); }

  /** Test MSE on [-1, 1] (eval mode) and the test latents, over the first `limit` test images. */
  evaluate(limit = this.opts.testLimit): { mse: number; z: Float32Array; labels: Uint8Array } {
    // in batches of the training size, so that evaluation reuses the training buffers
    return reconstructionError(this.model, this.data.test, limit ?? this.data.test.n, this.config.batchSize);
  }

  snapshot(loss: number): Snapshot {
    const t = this.data.test, k = this.snapIdx.length, D = this.model.latentDim;
    const x = new Float32Array(k * IMAGE_PIXELS);
    for (let i = 0; i < k; i++) {
      const src = this.snapIdx[i] * IMAGE_PIXELS;
      for (let j = 0; j < IMAGE_PIXELS; j++) x[i * IMAGE_PIXELS + j] = toModel(t.images[src + j]);
    }
    const z = this.model.encode(x, k, this.config.batchSize);
    const labels = Uint8Array.from(this.snapIdx, (i) => t.labels[i]);
    const g = 8;
    let grid: Float32Array, box: [number, number, number, number] | undefined;
    if (D === 2) {
      box = latentBox(z);
      grid = this.model.decode(gridPoints(box, g), g * g);
    } else {
      grid = this.model.reconstruct(x.subarray(0, g * g * IMAGE_PIXELS), g * g);
    }
    return { step: this.step, loss, z, dim: D, labels, grid, gridSize: g, box };
  }

  /** Writes everything needed to resume, atomically, then the plain PyTorch-style weights. */
  checkpoint(epochDone: number): void {
    if (!this.out) return;
    const tensors: StateDict = new Map();
    for (const [k, v] of this.model.stateDict()) tensors.set(`model.${k}`, v);
    const po = packOptimizerState(this.opt.stateDict());
    for (const [k, v] of po.tensors) tensors.set(`optim.${k}`, v);
    const meta: Record<string, string> = {
      format: 'latentlab-checkpoint', version: VERSION, step: String(this.step), epoch: String(epochDone),
      elapsed: String(this.elapsed), loader: JSON.stringify(this.loader.state()),
      scheduler: this.sched.kind === 'none' ? 'null' : JSON.stringify(this.sched.s.stateDict()),
      metricsLines: String(this.metrics.length), ...po.metadata,
    };
    writeFileAtomic(path.join(this.out, CKPT), saveSafetensors(tensors, meta));
    writeFileAtomic(path.join(this.out, 'model.safetensors'), saveSafetensors(this.model.stateDict(), { format: 'pt', producer: `latentlab ${VERSION}` }));
    this.lastGoodStep = this.step;
  }

  /** Restores a checkpoint written by `checkpoint()`. */
  restore(file: string): void {
    const { tensors, metadata } = loadSafetensors(readFileSync(file), file);
    if (metadata.format !== 'latentlab-checkpoint') throw new Error(`${file}: not a latentlab checkpoint`);
    const model: StateDict = new Map(), optim: StateDict = new Map();
    for (const [k, v] of tensors) {
      if (k.startsWith('model.')) model.set(k.slice(6), v);
      else if (k.startsWith('optim.')) optim.set(k.slice(6), v);
    }
    try {
      this.model.loadStateDict(model);
    } catch (e) {
      throw new Error(`${file}: does not fit the model of this run (${(e as Error).message.slice(0, 200)})`);
    }
    this.opt.loadStateDict(unpackOptimizerState(optim, metadata));
    if (this.sched.kind !== 'none' && metadata.scheduler !== 'null') this.sched.s.loadStateDict(JSON.parse(metadata.scheduler));
    this.loader.seek(JSON.parse(metadata.loader) as LoaderState);
    this.step = Number(metadata.step);
    this.lastGoodStep = this.step;
    this.elapsedBefore = Number(metadata.elapsed);
    this.metrics = this.metrics.slice(0, Number(metadata.metricsLines));
  }

  private writeMetrics(): void {
    if (this.out) writeFileAtomic(path.join(this.out, 'metrics.jsonl'), this.metrics.map((m) => JSON.stringify(m)).join('\n') + '\n');
  }

  /** Runs to the end (or until a callback says stop). */
  async run(): Promise<TrainResult> {
    const c = this.config, cb = this.opts.callbacks ?? {}, out = this.out;
    if (out) {
      mkdirSync(out, { recursive: true });
      if (this.opts.resume && existsSync(path.join(out, CKPT))) {
        if (existsSync(path.join(out, 'metrics.jsonl')))
          this.metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as MetricLine);
        this.restore(path.join(out, CKPT));
        this.log(`resumed ${out} at step ${this.step} of ${this.totalSteps}`);
        const snaps = path.join(out, 'snapshots');
        if (existsSync(snaps)) for (const f of readdirSync(snaps)) {
          const m = /^step-(\d+)\.safetensors$/.exec(f);
          if (m && Number(m[1]) > this.step) rmSync(path.join(snaps, f));
        }
      } else {
        for (const f of ['metrics.jsonl', 'snapshots', 'latents.safetensors', 'train-latents.safetensors', 'result.json', 'training.gif'])
          rmSync(path.join(out, f), { recursive: true, force: true });
      }
      writeJsonAtomic(path.join(out, 'config.json'), {
        ...c, version: VERSION, backend: this.backend.name, requestedBackend: c.backend, threads: this.backend.threads,
        dataset: c.dataset, dataSource: this.data.source, totalSteps: this.totalSteps, batchesPerEpoch: this.loader.batchesPerEpoch,
      });
    }
    const perEpoch = this.loader.batchesPerEpoch;
    let stopped = false;
    let windowStart = performance.now(), windowSteps = 0;
    let sps = 0;
    this.t0 = performance.now();
    let lastLoss = NaN;
    if (c.snapshotEvery > 0 && this.step === 0) this.emitSnapshot(NaN);
    while (this.step < this.totalSteps) {
      const r = this.trainStep();
      lastLoss = r.loss;
      windowSteps++;
      const now = performance.now();
      if (now - windowStart > 1000 || this.step === this.totalSteps) {
        sps = (windowSteps * c.batchSize) / ((now - windowStart) / 1000);
        windowStart = now; windowSteps = 0;
      }
      const lr = this.opt.paramGroups[0].lr;
      const info: StepInfo = {
        step: this.step, epoch: r.epoch, batch: r.batch + 1, batchesPerEpoch: perEpoch, totalSteps: this.totalSteps,
        loss: r.loss, reconLoss: r.recon, latentLoss: r.latent, lr, momentum: currentMomentum(this.opt),
        elapsed: this.elapsed, samplesPerSec: sps,
      };
      if (this.step % c.logEvery === 0 || this.step === this.totalSteps) {
        this.metrics.push({ step: this.step, epoch: r.epoch, loss: r.loss, recon: r.recon, ...(r.latent !== undefined ? { latent: r.latent } : {}),
          lr, elapsed: round3(info.elapsed), samplesPerSec: Math.round(sps) });
        this.writeMetrics();
      }
      if (c.snapshotEvery > 0 && this.step % c.snapshotEvery === 0) this.emitSnapshot(r.loss);
      const epochEnd = r.batch + 1 === perEpoch;
      if (epochEnd) {
        const { mse } = this.evaluate();
        if (this.sched.kind === 'plateau') this.sched.s.step(mse);
        this.metrics.push({ step: this.step, epoch: r.epoch, testLoss: mse, elapsed: round3(this.elapsed) });
        this.writeMetrics();
        cb.onEpoch?.({ epoch: r.epoch, step: this.step, testLoss: mse });
        this.log(`epoch ${r.epoch + 1}: test MSE ${mse.toFixed(4)} (on [-1, 1])`);
      }
      if (cb.onStep?.(info, this) === 'stop') { stopped = true; }
      if (epochEnd || this.step % c.checkpointEvery === 0 || stopped || this.step === this.totalSteps) this.checkpoint(epochEnd ? r.epoch + 1 : r.epoch);
      if (stopped) break;
      // let timers, signals and servers run between steps
      if (this.step % 8 === 0) await new Promise((res) => setImmediate(res));
    }
    const seconds = this.elapsed;
    const trainSps = this.metrics.length ? this.throughput() : 0;
    const ev = this.evaluate();
    if (out) {
      writeFileAtomic(path.join(out, 'latents.safetensors'), saveSafetensors(new Map([
        ['z', f32([ev.labels.length, this.model.latentDim], ev.z)],
        ['labels', i64([ev.labels.length], BigInt64Array.from(ev.labels, (v) => BigInt(v)))],
      ]), { split: 'test', shape: JSON.stringify(this.model.latentShape) }));
      const tl = this.trainLatents(this.opts.trainLatents ?? 10000);
      writeFileAtomic(path.join(out, 'train-latents.safetensors'), saveSafetensors(new Map([
        ['z', f32([tl.labels.length, this.model.latentDim], tl.z)],
        ['labels', i64([tl.labels.length], BigInt64Array.from(tl.labels, (v) => BigInt(v)))],
      ]), { split: 'train' }));
      writeJsonAtomic(path.join(out, 'result.json'), {
        steps: this.step, epochs: this.step / perEpoch, testMse: ev.mse, finalLoss: lastLoss,
        samplesPerSec: Math.round(trainSps), seconds: round3(seconds), backend: this.backend.name, threads: this.backend.threads, stopped,
      });
    }
    this.log(`done: ${this.step} steps in ${seconds.toFixed(1)} s, test MSE ${ev.mse.toFixed(4)} on [-1, 1], ${Math.round(trainSps)} samples/s on ${this.backend.name} with ${this.backend.threads} thread${this.backend.threads > 1 ? 's' : ''}`);
    return { config: c, model: this.model, steps: this.step, epochs: this.step / perEpoch, testMse: ev.mse,
             samplesPerSec: trainSps, seconds, out, stopped };
  }

  /** Training throughput from the metrics lines: samples per second of training time (evaluation excluded). */
  private throughput(): number {
    const lines = this.metrics.filter((m) => m.samplesPerSec !== undefined).map((m) => m.samplesPerSec as number);
    if (!lines.length) return 0;
    const s = [...lines].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }

  private emitSnapshot(loss: number): void {
    const snap = this.snapshot(loss);
    if (this.out) {
      const dir = path.join(this.out, 'snapshots');
      const t: StateDict = new Map([['z', f32([snap.labels.length, snap.dim], snap.z)], ['grid', f32([snap.gridSize * snap.gridSize, IMAGE_H, IMAGE_W], snap.grid)]]);
      if (snap.step === 0) writeFileAtomic(path.join(dir, 'labels.safetensors'), saveSafetensors(new Map([['labels', f32([snap.labels.length], Float32Array.from(snap.labels))]])));
      writeFileAtomic(path.join(dir, `step-${String(snap.step).padStart(7, '0')}.safetensors`),
        saveSafetensors(t, { step: String(snap.step), loss: String(snap.loss), box: JSON.stringify(snap.box ?? null), gridSize: String(snap.gridSize) }));
    }
    this.opts.callbacks?.onSnapshot?.(snap);
  }

  /** Latents of a fixed subset of the training set (for centroids and k-NN). */
  trainLatents(count: number): { z: Float32Array; labels: Uint8Array } {
    const tr = this.data.train, n = Math.min(count, tr.n), D = this.model.latentDim, B = this.config.batchSize;
    const idx = new Rng(this.config.seed + 3).permutation(tr.n).slice(0, n);
    const z = new Float32Array(n * D), x = new Float32Array(B * IMAGE_PIXELS);
    for (let i = 0; i < n; i += B) {
      const b = Math.min(B, n - i);
      for (let k = 0; k < b; k++) for (let j = 0; j < IMAGE_PIXELS; j++) x[k * IMAGE_PIXELS + j] = toModel(tr.images[idx[i + k] * IMAGE_PIXELS + j]);
      z.set(this.model.encode(x.subarray(0, b * IMAGE_PIXELS), b, B), i * D);
    }
    return { z, labels: Uint8Array.from(idx, (i) => tr.labels[i]) };
  }

}

function round3(v: number): number { return Math.round(v * 1000) / 1000; }

/** The first n images of a split as floats in [-1, 1]. */
export function floatImages(s: Split, n = s.n): Float32Array {
  const out = new Float32Array(n * IMAGE_PIXELS);
  for (let i = 0; i < n * IMAGE_PIXELS; i++) out[i] = toModel(s.images[i]);
  return out;
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

/** Trains a model: the library's one-call entry point (the CLI's `train` is a thin layer over it). */
export async function train(config: Partial<TrainConfig>, opts: TrainOptions = {}): Promise<TrainResult> {
  let c: TrainConfig;
  if (opts.resume) {
    if (!opts.out) throw new Error('--resume: needs the run folder');
    const file = path.join(opts.out, 'config.json');
    if (!existsSync(file)) throw new Error(`--resume: ${file} not found (expected a run folder made by latentlab train)`);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    // the saved settings, with the backend and thread count the run used (the same numerics);
    // only the length of the run, the backend, the threads and the data folder may be changed
    c = resolveTrainConfig(pickTrainKeys(saved), pickDefined({
      epochs: config.epochs, maxSteps: config.maxSteps, backend: config.backend, threads: config.threads, dataDir: config.dataDir,
    }));
  } else {
    c = resolveTrainConfig({}, config);
  }
  const backend = opts.backend ?? await createBackend(c.backend, { threads: c.threads, precision: c.precision, onNotice: opts.callbacks?.onLog });
  const data = opts.data ?? await loadDataset(c.dataset, { dataDir: c.dataDir });
  const trainer = new Trainer(c, data, backend, opts);
  return trainer.run();
}

function pickDefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function pickTrainKeys(saved: Record<string, unknown>): Partial<TrainConfig> {
  return Object.fromEntries(Object.entries(saved).filter(([k]) => TRAIN_KEYS.has(k))) as Partial<TrainConfig>;
}

export type { LatentMap };
