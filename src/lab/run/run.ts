/**
 * A run folder, as `latentlab train` writes it:
 *   config.json               every resolved setting, the version, backend and threads
 *   metrics.jsonl             a line per logged step {step, epoch, loss, lr, elapsed, samplesPerSec} and per epoch {testLoss}
 *   model.safetensors         the weights, with the study's PyTorch state-dict names
 *   checkpoint.safetensors    weights + optimiser + scheduler + data order: what --resume needs
 *   latents.safetensors       the test set's latents `z` [N, D] and `labels` [N]
 *   train-latents.safetensors latents of a fixed subset of the training set (centroids, k-NN)
 *   result.json               steps, test MSE, throughput
 *   snapshots/                step-NNNNNNN.safetensors (latents of a fixed test subset + a decoded grid), for training.gif
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createBackend } from '../../engine/kernels/select.js';
import type { Backend } from '../../engine/kernels/index.js';
import { loadSafetensors, type StateDict } from '../../engine/state.js';
import type { TrainConfig } from './config.js';
import { readJson } from './atomic.js';
import { AutoEncoder, type ModelConfig } from '../models/autoencoder.js';

export interface Latents { z: Float32Array; dim: number; labels: Uint8Array; n: number }

export interface MetricsLine { step: number; epoch: number; loss?: number; recon?: number; latent?: number; lr?: number; elapsed?: number; samplesPerSec?: number; testLoss?: number }

export interface SnapshotRecord { step: number; loss: number; z: Float32Array; dim: number; grid: Float32Array; gridSize: number; box: [number, number, number, number] | null }

export interface Run {
  dir: string;
  name: string;
  config: TrainConfig & Record<string, unknown>;
  model: AutoEncoder;
  testLatents: Latents;
  /** Latents of a subset of the training set (may be absent in runs made elsewhere). */
  trainLatents: Latents | null;
  result: Record<string, unknown> | null;
  metrics(): MetricsLine[];
  /** Snapshot steps recorded for the GIF. */
  snapshotSteps(): number[];
  snapshot(step: number): SnapshotRecord;
  snapshotLabels(): Uint8Array | null;
}

export function readLatents(file: string): Latents {
  const { tensors } = loadSafetensors(readFileSync(file), file);
  const z = tensors.get('z'), labels = tensors.get('labels');
  if (!z || !labels || z.shape.length !== 2) throw new Error(`${file}: expected tensors 'z' [N, D] and 'labels' [N]`);
  return {
    z: z.data as Float32Array, dim: z.shape[1], n: z.shape[0],
    labels: Uint8Array.from(labels.data as ArrayLike<number | bigint>, Number),
  };
}

/** Reads a model's weights (a state dict in safetensors, ours or PyTorch's) into a new model of the given shape. */
export function loadModel(file: string, cfg: Partial<ModelConfig>, backend?: Backend): AutoEncoder {
  if (!existsSync(file)) throw new Error(`${file}: not found (expected a safetensors checkpoint)`);
  const { tensors } = loadSafetensors(readFileSync(file), file);
  let sd: StateDict = tensors;
  if ([...tensors.keys()].some((k) => k.startsWith('model.'))) {
    sd = new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v]));
  }
  const model = new AutoEncoder(cfg);
  if (backend) model.to(backend);
  try {
    model.loadStateDict(sd);
  } catch (e) {
    const desc = `--model ${model.config.model} --latent ${model.config.latent}`;
    throw new Error(`${file}: does not fit ${desc} (${(e as Error).message.replace(/^Error\(s\) in loading state_dict for AutoEncoder: /, '').slice(0, 300)})`);
  }
  model.eval();
  return model;
}

/** Opens a run folder made by `latentlab train`. */
export async function openRun(dir: string, opts: { backend?: Backend; backendName?: string; threads?: number; model?: AutoEncoder } = {}): Promise<Run> {
  if (!existsSync(dir)) throw new Error(`${dir}: no such run folder`);
  const cfgFile = path.join(dir, 'config.json');
  if (!existsSync(cfgFile)) throw new Error(`${dir}: not a run folder (no config.json; expected the --out folder of latentlab train)`);
  const config = readJson<TrainConfig & Record<string, unknown>>(cfgFile, "a run's settings");
  // opts.model: the model just trained into this folder (the same weights as its model.safetensors)
  const model = opts.model ?? loadModel(path.join(dir, 'model.safetensors'), config,
    opts.backend ?? await createBackend(opts.backendName ?? 'auto', opts.threads ? { threads: opts.threads } : {}));
  const latFile = path.join(dir, 'latents.safetensors');
  if (!existsSync(latFile)) throw new Error(`${latFile}: not found (the run has not finished; latents are written at the end)`);
  const testLatents = readLatents(latFile);
  const tl = path.join(dir, 'train-latents.safetensors');
  const resFile = path.join(dir, 'result.json');
  const snapDir = path.join(dir, 'snapshots');
  return {
    dir, name: path.basename(path.resolve(dir)), config, model, testLatents,
    trainLatents: existsSync(tl) ? readLatents(tl) : null,
    result: existsSync(resFile) ? readJson(resFile) : null,
    metrics: () => readMetrics(dir),
    snapshotSteps: () => existsSync(snapDir)
      ? readdirSync(snapDir).map((f) => /^step-(\d+)\.safetensors$/.exec(f)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1])).sort((a, b) => a - b)
      : [],
    snapshot: (step: number) => readSnapshot(path.join(snapDir, `step-${String(step).padStart(7, '0')}.safetensors`)),
    snapshotLabels: () => {
      const f = path.join(snapDir, 'labels.safetensors');
      if (!existsSync(f)) return null;
      return Uint8Array.from(loadSafetensors(readFileSync(f), f).tensors.get('labels')!.data as Float32Array);
    },
  };
}

export function readMetrics(dir: string): MetricsLine[] {
  const f = path.join(dir, 'metrics.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l, i) => {
    try { return JSON.parse(l) as MetricsLine; } catch { throw new Error(`${f}: line ${i + 1} is not JSON`); }
  });
}

export function readSnapshot(file: string): SnapshotRecord {
  const { tensors, metadata } = loadSafetensors(readFileSync(file), file);
  const z = tensors.get('z')!, grid = tensors.get('grid')!;
  return {
    step: Number(metadata.step), loss: Number(metadata.loss), z: z.data as Float32Array, dim: z.shape[1],
    grid: grid.data as Float32Array, gridSize: Number(metadata.gridSize), box: JSON.parse(metadata.box ?? 'null'),
  };
}
