/**
 * An opened run: its folder (./folder.ts, the only code touching its files), its settings, its
 * model and latents, loaded once and handed on to whatever draws or evaluates it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createBackend } from '../../engine/kernels/select.js';
import type { Backend } from '../../engine/kernels/index.js';
import { loadSafetensors, loadStateDict, type StateDict } from '../../engine/state.js';
import type { TrainConfig } from './config.js';
import { fsError } from './atomic.js';
import { RunFolder, type MetricsLine, type RunResult } from './folder.js';
import type { ModelConfig } from '../models/autoencoder.js';
import { describeModel, makeModel, type LatentModel } from '../models/family.js';
import { checkModelKind, isVaeStateDict } from '../models/vae.js';
import { UsageError } from './errors.js';

export type { MetricsLine } from './folder.js';

export interface Latents { z: Float32Array; dim: number; labels: Uint8Array; n: number }

export interface SnapshotRecord { step: number; loss: number; z: Float32Array; dim: number; grid: Float32Array; gridSize: number; box: [number, number, number, number] | null }

export interface Run {
  folder: RunFolder;
  dir: string;
  name: string;
  config: TrainConfig & Record<string, unknown>;
  model: LatentModel;
  testLatents: Latents;
  /** Latents of a subset of the training set (may be absent in runs made elsewhere). */
  trainLatents: Latents | null;
  result: RunResult | null;
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

/** Reads a model's weights (a state dict in safetensors, ours or PyTorch's, or a torch.save file) into a new model of the given shape. */
/**
 * The state dict in a weights file (safetensors, ours or PyTorch's, or a torch.save file); a checkpoint's
 * `model.` keys without the prefix. `flag` names the flag the file came from in errors (--init).
 */
export function readStateDictFile(file: string, flag?: string): StateDict {
  const where = flag ? `${flag} ${file}` : file;
  if (!existsSync(file)) throw new UsageError(`${where}: not found (expected a checkpoint: safetensors, or a PyTorch state_dict saved with torch.save)`);
  let bytes: Uint8Array;
  try { bytes = readFileSync(file); } catch (e) { throw fsError(e, file, 'read'); }
  const { tensors } = loadStateDict(bytes, file);
  let sd: StateDict = tensors;
  if ([...tensors.keys()].some((k) => k.startsWith('model.'))) {
    sd = new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v]));
  }
  return sd;
}

/**
 * Reads a model's weights into a new model of the given shape. The kind (plain or VAE) is `cfg.vae` when
 * given (a mismatch with the file is one line naming it), else the file's (a VAE has mu/logvar heads).
 */
export function loadModel(file: string, cfg: Partial<ModelConfig> & { vae?: boolean }, backend?: Backend): LatentModel {
  const sd = readStateDictFile(file);
  if (cfg.vae !== undefined) {
    try { checkModelKind(sd, cfg.vae, file); } catch (e) { throw new UsageError((e as Error).message); }
  }
  const vae = cfg.vae ?? isVaeStateDict(sd);
  const model = makeModel({ ...cfg, vae, ...(vae ? { latentActivation: 'none' as const } : {}) });
  if (backend) model.to(backend);
  try {
    model.loadStateDict(sd);
  } catch (e) {
    const desc = describeModel(model);
    throw new Error(`${file}: does not fit ${desc} (${(e as Error).message.replace(/^Error\(s\) in loading state_dict for \w+: /, '').slice(0, 300)})`, { cause: e });
  }
  const bad = firstNonFinite(sd);
  if (bad) throw new Error(`${file}: holds non-finite weights (${bad}); the training diverged (train again with a lower --lr or --max-lr)`);
  model.eval();
  return model;
}

/** The first tensor holding a NaN or an infinity, as "NaN in encoder.0.weight"; null when all are finite. */
export function firstNonFinite(sd: StateDict): string | null {
  for (const [k, v] of sd) {
    const d = v.data;
    if (!(d instanceof Float32Array || d instanceof Float64Array)) continue;
    for (let i = 0; i < d.length; i++) {
      const x = d[i];
      if (x - x !== 0) return `${Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity'} in ${k}`;
    }
  }
  return null;
}

/**
 * Opens a run folder made by `latentlab train`: a path, or a RunFolder already opened by the caller.
 * Loads its settings, its model (or takes `opts.model`, the model just trained into it) and its latents.
 */
export async function openRun(dir: string | RunFolder, opts: { backend?: Backend; backendName?: string; threads?: number; model?: LatentModel } = {}): Promise<Run> {
  const folder = typeof dir === 'string' ? RunFolder.open(dir) : dir;
  const config = { ...folder.readConfigRecord(), ...folder.readConfig() } as TrainConfig & Record<string, unknown>;
  const latFile = folder.latentsFile('test');
  if (!existsSync(latFile)) throw new Error(`${latFile}: not found (the run has not finished; latents are written at the end${folder.has('checkpoint') ? `: finish it with latentlab train --resume ${folder.dir}` : ''})`);
  // opts.model: the model just trained into this folder (the same weights as its model.safetensors)
  const model = opts.model ?? loadModel(folder.file('model'), config,
    opts.backend ?? await createBackend(opts.backendName ?? 'auto', opts.threads ? { threads: opts.threads } : {}));
  const testLatents = readLatents(latFile);
  const tl = folder.latentsFile('train');
  return {
    folder, dir: folder.dir, name: folder.name, config, model, testLatents,
    trainLatents: existsSync(tl) ? readLatents(tl) : null,
    result: folder.readResult(),
    metrics: () => folder.readMetrics(),
    snapshotSteps: () => folder.snapshotSteps(),
    snapshot: (step: number) => readSnapshot(folder.snapshotFile(step)),
    snapshotLabels: () => {
      const f = folder.snapshotLabelsFile();
      if (!existsSync(f)) return null;
      return Uint8Array.from(loadSafetensors(readFileSync(f), f).tensors.get('labels')!.data as Float32Array);
    },
  };
}

/** The metrics lines of a run folder (a torn last line skipped). */
export function readMetrics(dir: string | RunFolder): MetricsLine[] {
  return (typeof dir === 'string' ? RunFolder.open(dir) : dir).readMetrics();
}

export function readSnapshot(file: string): SnapshotRecord {
  const { tensors, metadata } = loadSafetensors(readFileSync(file), file);
  const z = tensors.get('z')!, grid = tensors.get('grid')!;
  return {
    step: Number(metadata.step), loss: Number(metadata.loss), z: z.data as Float32Array, dim: z.shape[1],
    grid: grid.data as Float32Array, gridSize: Number(metadata.gridSize), box: JSON.parse(metadata.box ?? 'null'),
  };
}
