/**
 * The training loop. One step: uint8 batch -> float [-1,1] (straight into backend memory) ->
 * encoder -> z (+ the latent-map term when supervised) -> decoder -> loss -> backward through the
 * decoder, then the encoder -> optimizer.step -> scheduler.step -> a metrics line appended -> now
 * and then a checkpoint, a snapshot or the live weights, all through the run folder (../run/).
 * Everything a resumed run needs (weights, optimiser, scheduler, data order, step, metrics length)
 * is in one checkpoint file, written atomically, and only when the weights are finite.
 *
 * `Trainer.run` is four named steps: begin (the folder: fresh or resumed), loop (the steps),
 * finish (every final file) or fail (the status says why).
 */
import { readFileSync } from 'node:fs';
import type { Backend } from '../../engine/kernels/index.js';
import { createBackend } from '../../engine/kernels/select.js';
import { packOptimizerState, unpackOptimizerState } from '../../engine/optim/optimizer.js';
import { Rng } from '../../engine/rng.js';
import { f32, i64, saveSafetensors, type StateDict } from '../../engine/state.js';
import { VERSION } from '../../version.js';
import { resolveTrainConfig, resumeConfig, type LatentMap, type TrainConfig } from '../run/config.js';
import type { DataLoader, LoaderState } from '../data/loader.js';
import { loadDataset, type LoadedDataset } from '../data/datasets.js';
import type { Split } from '../data/idx.js';
import { RunFolder, parseMetricsText, type DataIdentity } from '../run/folder.js';
import { firstNonFinite } from '../run/run.js';
import { checkDataIsNamed, checkSameData, dataIdentity } from '../run/data-identity.js';
import { isVae, type LatentModel } from '../models/family.js';
import { checkModelKind } from '../models/vae.js';
import { readStateDictFile } from '../run/run.js';
import { UsageError } from '../run/errors.js';
import { latentHealth } from '../analysis/latent_health.js';
import { evaluateVae } from '../analysis/vae_eval.js';
import { currentMomentum, type AnyOpt, type Schedule } from './optimizer.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W, toModel } from '../data/image.js';
import { TrainCore, type Snapshot, type StepResult } from './step.js';

export { gridPoints, latentBox, TrainCore, type Snapshot, type StepHooks, type StepResult, type TrainSplits } from './step.js';
import { onStopSignals, type StopSignal } from './signals.js';

export interface StepInfo {
  step: number; epoch: number; batch: number; batchesPerEpoch: number; totalSteps: number;
  loss: number; reconLoss: number; latentLoss?: number;
  /** A VAE's KL (nats per image) and its weight at this step; a sparse run's L1 term. */
  kl?: number; klWeight?: number; l1?: number;
  lr: number; momentum?: number; elapsed: number; samplesPerSec: number;
}

export interface EpochInfo { epoch: number; step: number; testLoss: number }


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
  /** Continue the run in `out` from its checkpoint (its settings win, except the run settings: epochs, max steps, ...). */
  resume?: boolean;
  /** Replace a run already in `out` (else a folder holding a run is refused). */
  overwrite?: boolean;
  /** The run folder, already opened for training (train() opens `out`). */
  folder?: RunFolder;
  /** Data already loaded (else found via config.dataset / dataDir). */
  data?: LoadedDataset;
  /** A backend already made (else created from config.backend and threads). */
  backend?: Backend;
  /** Evaluate (test loss, latents) on at most this many test images (default all). */
  testLimit?: number;
  /** Train images encoded at the end for centroids and k-NN (default 10,000). */
  trainLatents?: number;
  /** Stop at SIGINT/SIGTERM after the current step, with a checkpoint there (the CLI). */
  handleSignals?: boolean;
  /** Seconds between writes of live.safetensors, the latest weights (default 5; 0: never). */
  liveEvery?: number;
  callbacks?: TrainCallbacks;
}

export interface TrainResult {
  config: TrainConfig; model: LatentModel; steps: number; epochs: number;
  testMse: number; samplesPerSec: number; seconds: number; out?: string; stopped: boolean;
  /** The signal that stopped the run (its final files are not written: --resume finishes them). */
  signal?: StopSignal;
}

export class TrainingError extends Error {}

/** Seconds between status.json updates of the step while training. */
const STATUS_EVERY = 2;

export class Trainer {
  /** The browser-safe step (./step.ts): model, optimiser, scheduler, loader, the step count. */
  readonly core: TrainCore;
  readonly model: LatentModel;
  readonly opt: AnyOpt;
  readonly loader: DataLoader;
  readonly totalSteps: number;
  /** The run folder written (null: nothing is written). */
  folder: RunFolder | null;
  /** samples/s of the metrics lines so far (the run's throughput is their median). */
  private spsLog: number[] = [];
  private elapsedBefore = 0;
  private t0 = 0;
  private lastGoodStep: number | null = null;
  private stopSignal: StopSignal | null = null;
  private lastLive = 0;
  private lastStatus = 0;

  constructor(readonly config: TrainConfig, readonly data: LoadedDataset, readonly backend: Backend, readonly opts: TrainOptions) {
    this.folder = opts.folder ?? null;
    this.core = new TrainCore(config, data, backend, { testLimit: opts.testLimit });
    this.model = this.core.model;
    this.opt = this.core.opt;
    this.loader = this.core.loader;
    this.totalSteps = this.core.totalSteps;
    if (config.init && !(opts.resume && opts.folder?.has('checkpoint'))) this.initFrom(config.init);
  }

  /** Steps done. */
  get step(): number { return this.core.step; }
  set step(v: number) { this.core.step = v; }
  get sched(): Schedule { return this.core.sched; }

  get out(): string | undefined { return this.folder?.dir ?? this.opts.out; }
  get elapsed(): number { return this.elapsedBefore + (performance.now() - this.t0) / 1000; }
  private log(line: string): void { this.opts.callbacks?.onLog?.(line); }

  /** Asks the loop to stop after the current step, with a checkpoint there (SIGINT/SIGTERM). */
  requestStop(signal: StopSignal): void { this.stopSignal = signal; }

  /** Where the last finite checkpoint is, in words, naming only a file that exists. */
  private lastGood(): string {
    if (!this.folder) return '';
    return this.lastGoodStep !== null && this.folder.has('checkpoint')
      ? `, the last good checkpoint (step ${this.lastGoodStep}) is kept in ${this.folder.file('checkpoint')}`
      : ', no checkpoint was written before it';
  }

  /** --init: the weights of a checkpoint file (of the same kind and shape) as the starting point. */
  private initFrom(file: string): void {
    const sd = readStateDictFile(file, '--init');
    try { checkModelKind(sd, isVae(this.model), `--init ${file}`); } catch (e) { throw new UsageError((e as Error).message); }
    try {
      this.model.loadStateDict(sd);
    } catch (e) {
      throw new UsageError(`--init ${file}: does not fit this run's model (${(e as Error).message.split('\n')[0].replace(/^Error\(s\) in loading state_dict for \w+: /, '').slice(0, 240)})`);
    }
  }

  /** One optimisation step on the next batch (./step.ts); returns the step's losses. */
  trainStep(): StepResult {
    return this.core.next({
      nonFinite: (loss, step) => {
        this.pending = null; // the weights of that checkpoint gave this loss
        throw new TrainingError(`the loss became ${loss} at step ${step}; training stopped${this.lastGood()} (try a lower --lr or --max-lr)`);
      },
      beforeUpdate: () => this.commitCheckpoint(),
    });
  }

  /**
   * Test MSE on [-1, 1] (eval mode) and the test latents, over the first `limit` test images. The weights
   * change only with a step, so the same step and limit give the last result again: a run that ends with
   * an epoch evaluates once, not at the epoch's end and again at the run's (on wasm, seconds).
   */
  evaluate(limit = this.opts.testLimit): { mse: number; z: Float32Array; labels: Uint8Array } {
    const last = this.lastEval;
    if (last && last.step === this.step && last.limit === limit) return last.result;
    const result = this.core.evaluate(limit);
    this.lastEval = { step: this.step, limit, result };
    return result;
  }
  private lastEval: { step: number; limit: number | undefined; result: ReturnType<TrainCore['evaluate']> } | null = null;

  snapshot(loss: number): Snapshot { return this.core.snapshot(loss); }

  /** The weights in PyTorch's state-dict names (model.safetensors, live.safetensors). */
  private weightsBytes(meta: Record<string, string> = {}): Uint8Array {
    return saveSafetensors(this.model.stateDict(), { format: 'pt', producer: `latentlab ${VERSION}`, ...meta });
  }

  /**
   * Writes everything needed to resume, atomically, then the plain PyTorch-style weights. Only
   * finite weights and optimiser state are kept (else a TrainingError names the last good
   * checkpoint), and only weights that have given a finite loss: a checkpoint taken between steps
   * is written once the next step's loss is finite (`now`: at once, for the last step and a stop).
   */
  checkpoint(epochDone: number, now = true): void {
    const folder = this.folder;
    if (!folder) return;
    const tensors: StateDict = new Map();
    const msd = this.model.stateDict();
    for (const [k, v] of msd) tensors.set(`model.${k}`, v);
    const po = packOptimizerState(this.opt.stateDict());
    for (const [k, v] of po.tensors) tensors.set(`optim.${k}`, v);
    const bad = firstNonFinite(tensors);
    if (bad) throw new TrainingError(`the weights became non-finite at step ${this.step} (${bad.replace(/ in (model|optim)\./, ' in $1 ')}); training stopped${this.lastGood()} (try a lower --lr or --max-lr)`);
    const meta: Record<string, string> = {
      format: 'latentlab-checkpoint', version: VERSION, step: String(this.step), epoch: String(epochDone),
      elapsed: String(this.elapsed), loader: JSON.stringify(this.loader.state()),
      scheduler: this.sched.kind === 'none' ? 'null' : JSON.stringify(this.sched.s.stateDict()),
      metricsBytes: String(folder.metricsSize), ...po.metadata,
      rngs: JSON.stringify({ eps: this.core.epsRng.getState(), noise: this.core.noiseRng.getState() }),
    };
    this.pending = { step: this.step, checkpoint: saveSafetensors(tensors, meta), model: this.weightsBytes() };
    if (now) this.commitCheckpoint();
  }

  private pending: { step: number; checkpoint: Uint8Array; model: Uint8Array } | null = null;

  /** Writes the checkpoint taken last (its weights have given a finite loss, or training ends there). */
  private commitCheckpoint(): void {
    const p = this.pending, folder = this.folder;
    if (!p || !folder) return;
    this.pending = null;
    folder.writeCheckpoint(p.checkpoint);
    folder.writeModel(p.model);
    this.lastGoodStep = p.step;
    this.lastStatus = performance.now();
    folder.writeStatus({ step: this.step, checkpointStep: p.step });
  }

  /** Restores the folder's checkpoint; returns how many bytes of the metrics log it covers (null: unknown, a line count instead). */
  restore(): { metricsBytes: number | null; metricsLines: number } {
    const folder = this.folder!;
    const file = folder.file('checkpoint');
    const { tensors, metadata } = folder.readCheckpoint();
    if (metadata.format !== 'latentlab-checkpoint') throw new Error(`${file}: not a latentlab checkpoint`);
    const model: StateDict = new Map(), optim: StateDict = new Map();
    for (const [k, v] of tensors) {
      if (k.startsWith('model.')) model.set(k.slice(6), v);
      else if (k.startsWith('optim.')) optim.set(k.slice(6), v);
    }
    try {
      this.model.loadStateDict(model);
    } catch (e) {
      throw new Error(`${file}: does not fit the model of this run (${(e as Error).message.slice(0, 200)})`, { cause: e });
    }
    this.opt.loadStateDict(unpackOptimizerState(optim, metadata));
    if (this.sched.kind !== 'none' && metadata.scheduler !== 'null') this.sched.s.loadStateDict(JSON.parse(metadata.scheduler));
    this.loader.seek(JSON.parse(metadata.loader) as LoaderState);
    if (metadata.rngs) {
      const r = JSON.parse(metadata.rngs) as { eps: ReturnType<Rng['getState']>; noise: ReturnType<Rng['getState']> };
      this.core.epsRng.setState(r.eps);
      this.core.noiseRng.setState(r.noise);
    }
    this.step = Number(metadata.step);
    this.lastGoodStep = this.step;
    this.elapsedBefore = Number(metadata.elapsed);
    return {
      metricsBytes: metadata.metricsBytes !== undefined ? Number(metadata.metricsBytes) : null,
      metricsLines: Number(metadata.metricsLines ?? 0),
    };
  }

  /** A changed LR of a resumed run (scheduler none): the optimiser's groups take it. */
  private applyRunSettings(changed: string[]): void {
    if (changed.includes('lr')) for (const g of this.opt.paramGroups) g.lr = this.config.lr;
  }

  // ------------------------------------------------------------------------------ the named steps of run()

  /** Prepares the run folder: a resumed run continues from its checkpoint, a new one starts empty; writes config.json and status.json. */
  begin(extra: { data?: DataIdentity; changed?: string[] } = {}): void {
    const folder = this.folder, c = this.config;
    if (!folder) return;
    const record: Record<string, unknown> = {};
    if (this.opts.resume && folder.has('checkpoint')) {
      const prev = folder.readConfigRecord();
      const { metricsBytes, metricsLines } = this.restore();
      this.applyRunSettings(extra.changed ?? []);
      let keep = metricsBytes;
      if (keep === null) {
        // a checkpoint of an older version counts lines: keep that many
        const text = folder.has('metrics') ? readMetricsPrefix(folder.file('metrics')) : '';
        keep = Buffer.byteLength(text.split('\n').slice(0, metricsLines).map((l) => `${l}\n`).join(''), 'utf8');
      }
      folder.openMetrics(keep);
      this.spsLog = folder.readMetrics().map((m) => m.samplesPerSec).filter((v): v is number => v !== undefined);
      folder.removeSnapshotsAfter(this.step);
      const resumes = Array.isArray(prev.resumes) ? prev.resumes : [];
      record.resumes = [...resumes, { step: this.step, changed: Object.fromEntries((extra.changed ?? []).map((k) => [k, (c as unknown as Record<string, unknown>)[k]])) }];
      this.log(`resumed ${folder.dir} at step ${this.step} of ${this.totalSteps}${extra.changed?.length ? ` (changed: ${extra.changed.join(', ')})` : ''}`);
    } else {
      folder.clearOutputs();
      folder.openMetrics(null);
    }
    folder.writeConfig({
      ...c, version: VERSION, backend: this.backend.name, requestedBackend: c.backend, threads: this.backend.threads,
      dataset: c.dataset, dataSource: this.data.source, totalSteps: this.totalSteps, batchesPerEpoch: this.loader.batchesPerEpoch,
      ...(extra.data ? { data: extra.data } : {}), ...record,
    });
    folder.writeStatus({ state: 'running', step: this.step, totalSteps: this.totalSteps, checkpointStep: this.lastGoodStep, error: null });
  }

  /** The training steps, to the end or until stopped; returns why it stopped early (null: it ran to the end). */
  async loop(): Promise<{ stopped: boolean; lastLoss: number }> {
    const c = this.config, cb = this.opts.callbacks ?? {};
    const perEpoch = this.loader.batchesPerEpoch;
    let stopped = false;
    let windowStart = performance.now(), windowSteps = 0;
    let sps = 0;
    this.t0 = performance.now();
    this.lastLive = this.t0;
    this.lastStatus = this.t0;
    const liveMs = (this.opts.liveEvery ?? 5) * 1000;
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
        loss: r.loss, reconLoss: r.recon, latentLoss: r.latent, kl: r.kl, klWeight: r.klWeight, l1: r.l1, lr, momentum: currentMomentum(this.opt),
        elapsed: this.elapsed, samplesPerSec: sps,
      };
      if (this.step % c.logEvery === 0 || this.step === this.totalSteps) {
        this.appendMetrics({ step: this.step, epoch: r.epoch, loss: r.loss, recon: r.recon, ...(r.latent !== undefined ? { latent: r.latent } : {}),
          ...(r.kl !== undefined ? { kl: r.kl, klWeight: r.klWeight } : {}), ...(r.l1 !== undefined ? { l1: r.l1 } : {}),
          lr, elapsed: round3(info.elapsed), samplesPerSec: Math.round(sps) });
      }
      if (c.snapshotEvery > 0 && this.step % c.snapshotEvery === 0) this.emitSnapshot(r.loss);
      const epochEnd = r.batch + 1 === perEpoch;
      if (epochEnd) this.endEpoch(r.epoch);
      if (cb.onStep?.(info, this) === 'stop') stopped = true;
      if (this.stopSignal) stopped = true;
      const last = stopped || this.step === this.totalSteps;
      if (epochEnd || this.step % c.checkpointEvery === 0 || last) this.checkpoint(epochEnd ? r.epoch + 1 : r.epoch, last);
      if (stopped) break;
      if (this.folder && liveMs > 0 && now - this.lastLive >= liveMs) {
        this.lastLive = now;
        this.folder.writeLive(this.weightsBytes({ step: String(this.step) }));
      }
      if (this.folder && now - this.lastStatus >= STATUS_EVERY * 1000) {
        this.lastStatus = now;
        this.folder.writeStatus({ step: this.step });
      }
      // let timers, signals and servers run between steps
      if (this.step % 8 === 0) await new Promise((res) => setImmediate(res));
    }
    return { stopped, lastLoss };
  }

  private appendMetrics(line: Record<string, unknown>): void {
    if (typeof line.samplesPerSec === 'number') this.spsLog.push(line.samplesPerSec);
    this.folder?.appendMetrics(line);
  }

  /** The end of an epoch: test loss, the plateau scheduler, a metrics line. */
  private endEpoch(epoch: number): void {
    const { mse } = this.evaluate();
    if (this.sched.kind === 'plateau') this.sched.s.step(mse);
    this.appendMetrics({ step: this.step, epoch, testLoss: mse, elapsed: round3(this.elapsed) });
    this.opts.callbacks?.onEpoch?.({ epoch, step: this.step, testLoss: mse });
    this.log(`epoch ${epoch + 1}: test MSE ${mse.toFixed(4)} (on [-1, 1])`);
  }

  /** Every final file: the weights, the latents, result.json; status finished (or stopped by a callback). */
  finish(stopped: boolean, lastLoss: number): TrainResult {
    const c = this.config, folder = this.folder, perEpoch = this.loader.batchesPerEpoch;
    const seconds = this.elapsed;
    const trainSps = this.throughput();
    const ev = this.evaluate();
    if (folder) {
      // a resumed run whose checkpoint was the last step writes these too (a kill may have come before them)
      folder.writeModel(this.weightsBytes());
      folder.writeLatents('test', saveSafetensors(new Map([
        ['z', f32([ev.labels.length, this.model.latentDim], ev.z)],
        ['labels', i64([ev.labels.length], BigInt64Array.from(ev.labels, (v) => BigInt(v)))],
      ]), { split: 'test', shape: JSON.stringify(this.model.latentShape) }));
      const tl = this.trainLatents(this.opts.trainLatents ?? 10000);
      folder.writeLatents('train', saveSafetensors(new Map([
        ['z', f32([tl.labels.length, this.model.latentDim], tl.z)],
        ['labels', i64([tl.labels.length], BigInt64Array.from(tl.labels, (v) => BigInt(v)))],
      ]), { split: 'train' }));
      folder.writeResult({
        steps: this.step, epochs: this.step / perEpoch, testMse: ev.mse, finalLoss: lastLoss,
        samplesPerSec: Math.round(trainSps), seconds: round3(seconds), backend: this.backend.name, threads: this.backend.threads, stopped,
      });
      folder.writeStatus({ state: stopped ? 'stopped' : 'finished', step: this.step, error: stopped ? 'stopped on request' : null });
    }
    const health = this.latentHealthLine(ev.z, ev.labels.length);
    if (folder) folder.writeResult({ ...folder.readResult()!, latentHealth: health.condition, ...(health.kl !== undefined ? { testKl: health.kl, testElbo: health.elbo } : {}) });
    this.log(health.line);
    this.log(`done: ${this.step} steps in ${seconds.toFixed(1)} s, test MSE ${ev.mse.toFixed(4)} on [-1, 1], ${Math.round(trainSps)} samples/s on ${this.backend.name} with ${this.backend.threads} thread${this.backend.threads > 1 ? 's' : ''}`);
    return { config: c, model: this.model, steps: this.step, epochs: this.step / perEpoch, testMse: ev.mse,
             samplesPerSec: trainSps, seconds, out: this.out, stopped };
  }

  /** The latent-health verdict of the test latents (a VAE's with its KL per dimension) as one line. */
  private latentHealthLine(z: Float32Array, n: number): { condition: string; line: string; kl?: number; elbo?: number } {
    const m = this.model, D = m.latentDim;
    if (isVae(m)) {
      const v = evaluateVae(m, this.data.test, n, this.config.batchSize);
      const h = latentHealth(v.mu, v.n, D, 'none', { klPerDim: v.klPerDim });
      return { condition: h.condition, kl: v.mean.kl, elbo: v.mean.elbo,
        line: `latent health: ${h.message}; test KL ${v.mean.kl.toFixed(3)} nats, ELBO ${v.mean.elbo.toFixed(1)} nats per image` };
    }
    const h = latentHealth(z, n, D, m.config.latentActivation);
    return { condition: h.condition, line: `latent health: ${h.message}` };
  }

  /** Stopped by a signal: the checkpoint at this step is written; status stopped. */
  private stoppedBySignal(signal: StopSignal): TrainResult {
    this.folder?.writeStatus({ state: 'stopped', step: this.step, error: `stopped by ${signal} at step ${this.step}` });
    const perEpoch = this.loader.batchesPerEpoch;
    return { config: this.config, model: this.model, steps: this.step, epochs: this.step / perEpoch, testMse: NaN,
             samplesPerSec: this.throughput(), seconds: this.elapsed, out: this.out, stopped: true, signal };
  }

  /** A failed run: status failed with the error line. */
  fail(e: unknown): void {
    const line = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    try { this.folder?.writeStatus({ state: 'failed', step: this.step, error: line }); } catch { /* the folder itself may be the fault */ }
  }

  /** Runs to the end (or until a callback or a signal says stop): begin, loop, finish; fail on an error. */
  async run(extra: { data?: DataIdentity; changed?: string[] } = {}): Promise<TrainResult> {
    // a Trainer made by hand with `out` opens (and locks) its folder itself
    const own = !this.folder && this.opts.out ? RunFolder.forTraining(this.opts.out, { resume: this.opts.resume, overwrite: this.opts.overwrite }) : null;
    if (own) this.folder = own;
    const off = this.opts.handleSignals ? onStopSignals((s) => this.requestStop(s)) : null;
    try {
      this.begin(extra);
      const { stopped, lastLoss } = await this.loop();
      off?.();
      if (this.stopSignal) return this.stoppedBySignal(this.stopSignal);
      return this.finish(stopped, lastLoss);
    } catch (e) {
      this.fail(e);
      throw e;
    } finally {
      off?.();
      this.folder?.closeMetrics();
      own?.unlock();
    }
  }

  /** Training throughput from the metrics lines: samples per second of training time (evaluation excluded). */
  private throughput(): number {
    if (!this.spsLog.length) return 0;
    const s = [...this.spsLog].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }

  private emitSnapshot(loss: number): void {
    const snap = this.snapshot(loss);
    if (this.folder) {
      const t: StateDict = new Map([['z', f32([snap.labels.length, snap.dim], snap.z)], ['grid', f32([snap.gridSize * snap.gridSize, IMAGE_H, IMAGE_W], snap.grid)]]);
      if (snap.step === 0) this.folder.writeSnapshotLabels(saveSafetensors(new Map([['labels', f32([snap.labels.length], Float32Array.from(snap.labels))]])));
      this.folder.writeSnapshot(snap.step, saveSafetensors(t, { step: String(snap.step), loss: String(snap.loss), box: JSON.stringify(snap.box ?? null), gridSize: String(snap.gridSize) }));
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
      this.model.encode(x.subarray(0, b * IMAGE_PIXELS), b, B, z.subarray(i * D, (i + b) * D));
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

function readMetricsPrefix(file: string): string {
  return parseMetricsText(readFileSync(file, 'utf8'), file).lines.map((l) => JSON.stringify(l)).join('\n');
}

/**
 * Trains a model: the library's one-call entry point (the CLI's `train` is a thin layer over it).
 * With `out`, the run folder is opened for training (its lock taken: one writer), the data's
 * identity checked and recorded, and the lock released at the end.
 */
export async function train(config: Partial<TrainConfig>, opts: TrainOptions = {}): Promise<TrainResult> {
  if (opts.resume && !opts.out && !opts.folder) throw new Error('--resume: needs the run folder');
  // the settings are checked before any folder is touched
  if (!opts.resume) resolveTrainConfig({}, config);
  const ownFolder = !opts.folder && opts.out ? RunFolder.forTraining(opts.out, { resume: opts.resume, overwrite: opts.overwrite }) : null;
  const folder = opts.folder ?? ownFolder;
  try {
    let c: TrainConfig;
    let changed: string[] = [];
    if (opts.resume) {
      // the saved settings, with the backend and thread count the run used (the same numerics);
      // run settings (length, LR, backend, threads, data folder, intervals) may change, others are refused
      ({ config: c, changed } = resumeConfig(folder!.readConfig(), config, folder!.dir));
    } else {
      c = resolveTrainConfig({}, config);
    }
    const backend = opts.backend ?? await createBackend(c.backend, { threads: c.threads, precision: c.precision, onNotice: opts.callbacks?.onLog });
    const data = opts.data ?? await loadDataset(c.dataset, { dataDir: c.dataDir });
    let identity: DataIdentity | undefined;
    if (folder) {
      identity = dataIdentity(data);
      checkDataIsNamed(identity, data.dir);
      const recorded = opts.resume ? folder.readDataIdentity() : null;
      if (recorded) checkSameData(recorded, identity, data.dir, folder.dir);
    }
    const trainer = new Trainer(c, data, backend, { ...opts, folder: folder ?? undefined });
    return await trainer.run({ data: identity, changed });
  } finally {
    ownFolder?.unlock();
  }
}

export type { LatentMap };
