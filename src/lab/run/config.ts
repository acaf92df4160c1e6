/**
 * A training run's settings: every field has the study's default, a `--config` JSON file may set
 * any of them (same keys), and flags override both. `checkTrainConfig` validates the resolved
 * settings and throws a one-line error naming the flag and what was expected.
 */
import { checkModelConfig, DEFAULT_MODEL, type ModelConfig } from '../models/autoencoder.js';

export type OptimizerName = 'sgd' | 'adam' | 'adamw';
export type SchedulerName = 'none' | 'cyclic' | 'onecycle' | 'step' | 'multistep' | 'exp' | 'cosine' | 'plateau';
export const OPTIMIZERS: readonly OptimizerName[] = ['sgd', 'adam', 'adamw'];
export const SCHEDULERS: readonly SchedulerName[] = ['none', 'cyclic', 'onecycle', 'step', 'multistep', 'exp', 'cosine', 'plateau'];

/** Digit -> target point of the latent plane (the study's supervised experiment). */
export type LatentMap = Record<string, [number, number]>;

/** The study's latent map. */
export const STUDY_LATENT_MAP: LatentMap = {
  0: [-2, 6], 1: [-2, -6], 2: [-6, 2], 3: [-3, 4], 4: [6, 2], 5: [2, 4], 6: [0, 2], 7: [0, -2], 8: [-2, 0], 9: [2, -2],
};

export interface TrainConfig extends ModelConfig {
  dataset: 'mnist' | 'fashion-mnist';
  dataDir?: string;
  optimizer: OptimizerName;
  /** The optimiser's LR (for cyclic and onecycle the scheduler sets the LR from baseLr/maxLr). */
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  betas: [number, number];
  scheduler: SchedulerName;
  baseLr: number;
  maxLr: number;
  stepSizeUp: number;
  stepSizeDown?: number;
  mode: 'triangular' | 'triangular2' | 'exp_range';
  /** exp_range's and StepLR/MultiStepLR/ExponentialLR's gamma. */
  gamma?: number;
  cycleMomentum: boolean;
  baseMomentum?: number;
  maxMomentum?: number;
  pctStart: number;
  annealStrategy: 'cos' | 'linear';
  threePhase: boolean;
  /** StepLR's step size (in batches). */
  stepSize: number;
  /** MultiStepLR's milestones (in batches). */
  milestones: number[];
  /** CosineAnnealingLR's period (in batches; default: the run's total steps). */
  tMax?: number;
  etaMin: number;
  /** ReduceLROnPlateau: stepped with the test loss after each epoch. */
  factor: number;
  patience: number;
  epochs: number;
  /** Stop after this many steps (batches) in all; default: epochs * batches per epoch. */
  maxSteps?: number;
  batchSize: number;
  seed: number;
  threads?: number;
  backend: string;
  precision: 'fp32' | 'bf16';
  loss: 'mse' | 'bce';
  /** Write a resumable checkpoint every N steps (and at the end of every epoch). */
  checkpointEvery: number;
  /** Record a snapshot (test latents and a decoded grid) every N steps for the training GIF; 0: none. */
  snapshotEvery: number;
  /** Test images the snapshots encode. */
  snapshotPoints: number;
  /** A metrics line every N steps. */
  logEvery: number;
  /** Supervised latent map: loss = recon + latentWeight * MSE(z, target(label)). */
  supervised?: LatentMap;
  latentWeight: number;
}

export const DEFAULT_TRAIN: TrainConfig = {
  ...DEFAULT_MODEL,
  dataset: 'mnist',
  optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false, betas: [0.9, 0.999],
  scheduler: 'cyclic', baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 400, mode: 'triangular', cycleMomentum: true,
  pctStart: 0.3, annealStrategy: 'cos', threePhase: false,
  stepSize: 1000, milestones: [], etaMin: 0, factor: 0.1, patience: 10,
  epochs: 1, batchSize: 64, seed: 0, backend: 'auto', precision: 'fp32', loss: 'mse',
  checkpointEvery: 500, snapshotEvery: 0, snapshotPoints: 2000, logEvery: 10, latentWeight: 1,
};

const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;
const nonNegative = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const posInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1;
const nonNegInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;

/** Flag name of a config key: maxLr -> --max-lr. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function need(ok: boolean, key: string, expected: string, got: unknown): void {
  if (!ok) throw new Error(`${flagOf(key)}: expected ${expected}, got ${JSON.stringify(got)}`);
}

/** Checks a latent map: ten digits 0-9, each a point [x, y] of finite numbers. */
export function checkLatentMap(m: unknown, source = '--supervised'): LatentMap {
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new Error(`${source}: expected a JSON object mapping the digits 0-9 to [x, y] points`);
  const keys = Object.keys(m).sort();
  const want = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  if (keys.length !== 10 || !want.every((k) => keys.includes(k)))
    throw new Error(`${source}: expected ten points, one for each digit 0-9, got keys [${keys.join(', ')}]`);
  for (const k of want) {
    const p = (m as Record<string, unknown>)[k];
    if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw new Error(`${source}: the point of digit ${k} must be [x, y] with two finite numbers, got ${JSON.stringify(p)}`);
  }
  return m as LatentMap;
}

export const TRAIN_KEYS = new Set(Object.keys(DEFAULT_TRAIN).concat(['dataDir', 'stepSizeDown', 'gamma', 'baseMomentum', 'maxMomentum', 'tMax', 'maxSteps', 'threads', 'supervised']));

/** Validates every setting; returns the config. */
export function checkTrainConfig(c: TrainConfig): TrainConfig {
  for (const k of Object.keys(c)) if (!TRAIN_KEYS.has(k)) throw new Error(`config: unknown setting '${k}'`);
  checkModelConfig(c);
  need(c.dataset === 'mnist' || c.dataset === 'fashion-mnist', 'dataset', 'mnist or fashion-mnist', c.dataset);
  need(OPTIMIZERS.includes(c.optimizer), 'optimizer', OPTIMIZERS.join(', '), c.optimizer);
  need(SCHEDULERS.includes(c.scheduler), 'scheduler', SCHEDULERS.join(', '), c.scheduler);
  need(positive(c.lr), 'lr', 'a positive number', c.lr);
  need(nonNegative(c.momentum), 'momentum', 'a number >= 0', c.momentum);
  need(nonNegative(c.weightDecay), 'weightDecay', 'a number >= 0', c.weightDecay);
  need(Array.isArray(c.betas) && c.betas.length === 2 && c.betas.every((b) => b >= 0 && b < 1), 'betas', 'two numbers in [0, 1)', c.betas);
  need(positive(c.baseLr), 'baseLr', 'a positive number', c.baseLr);
  need(positive(c.maxLr), 'maxLr', 'a positive number', c.maxLr);
  need(posInt(c.stepSizeUp), 'stepSizeUp', 'a positive integer', c.stepSizeUp);
  if (c.stepSizeDown !== undefined) need(posInt(c.stepSizeDown), 'stepSizeDown', 'a positive integer', c.stepSizeDown);
  need(['triangular', 'triangular2', 'exp_range'].includes(c.mode), 'mode', 'triangular, triangular2 or exp_range', c.mode);
  if (c.gamma !== undefined) need(positive(c.gamma), 'gamma', 'a positive number', c.gamma);
  need(c.pctStart > 0 && c.pctStart < 1, 'pctStart', 'a number in (0, 1)', c.pctStart);
  need(c.annealStrategy === 'cos' || c.annealStrategy === 'linear', 'annealStrategy', 'cos or linear', c.annealStrategy);
  need(posInt(c.stepSize), 'stepSize', 'a positive integer', c.stepSize);
  need(Array.isArray(c.milestones) && c.milestones.every(posInt), 'milestones', 'a list of positive integers', c.milestones);
  if (c.tMax !== undefined) need(posInt(c.tMax), 'tMax', 'a positive integer', c.tMax);
  need(nonNegative(c.etaMin), 'etaMin', 'a number >= 0', c.etaMin);
  need(c.factor > 0 && c.factor < 1, 'factor', 'a number in (0, 1)', c.factor);
  need(nonNegInt(c.patience), 'patience', 'an integer >= 0', c.patience);
  need(posInt(c.epochs), 'epochs', 'a positive integer', c.epochs);
  if (c.maxSteps !== undefined) need(posInt(c.maxSteps), 'maxSteps', 'a positive integer', c.maxSteps);
  need(posInt(c.batchSize) && c.batchSize >= 2, 'batchSize', 'an integer >= 2 (BatchNorm needs two samples)', c.batchSize);
  need(nonNegInt(c.seed), 'seed', 'an integer >= 0', c.seed);
  if (c.threads !== undefined) need(posInt(c.threads), 'threads', 'a positive integer', c.threads);
  need(['auto', 'native', 'wasm', 'reference'].includes(c.backend), 'backend', 'auto, native, wasm or reference', c.backend);
  need(c.precision === 'fp32' || c.precision === 'bf16', 'precision', 'fp32 or bf16', c.precision);
  need(c.loss === 'mse' || c.loss === 'bce', 'loss', 'mse or bce', c.loss);
  need(posInt(c.checkpointEvery), 'checkpointEvery', 'a positive integer', c.checkpointEvery);
  need(nonNegInt(c.snapshotEvery), 'snapshotEvery', 'an integer >= 0', c.snapshotEvery);
  need(posInt(c.snapshotPoints), 'snapshotPoints', 'a positive integer', c.snapshotPoints);
  need(posInt(c.logEvery), 'logEvery', 'a positive integer', c.logEvery);
  need(nonNegative(c.latentWeight), 'latentWeight', 'a number >= 0', c.latentWeight);
  if (c.supervised !== undefined) {
    checkLatentMap(c.supervised);
    if (c.latent !== 2) throw new Error(`--supervised: a latent map needs a 2-D latent (--latent 2), got --latent ${c.latent}`);
  }
  return c;
}

/** Defaults, then the file's settings, then the flags. */
export function resolveTrainConfig(fromFile: Partial<TrainConfig> = {}, flags: Partial<TrainConfig> = {}): TrainConfig {
  const c = { ...DEFAULT_TRAIN } as TrainConfig;
  for (const src of [fromFile, flags])
    for (const [k, v] of Object.entries(src)) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  return checkTrainConfig(c);
}
