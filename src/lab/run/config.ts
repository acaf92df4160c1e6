/**
 * A training run's settings, declared once as a schema (zod): every key's type, bounds, default and
 * the words of its error. CLI flags, `--config` files, a run's config.json (resume, eval) and the
 * web server's training form all go through `resolveTrainConfig` / `parseTrainSettings`, and every
 * error names what the user typed: the flag (`--latent: expected ...`) or the file and its key
 * (`runs/x/config.json: key "latent": expected ...`).
 *
 * Each key is also declared as a MODEL setting (the weights' shape: a resumed run keeps it), a RUN
 * setting (how long and where it runs: a resumed run may change it), or a TRAINING setting (the
 * optimiser, schedule and data order the checkpoint carries: a resumed run keeps it too).
 */
import { z } from 'zod';
import { DEFAULT_MODEL, type ModelConfig } from '../models/autoencoder.js';
import { UsageError } from './errors.js';
import { parseNoise } from '../data/noise.js';

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

/** The largest latent size: the Linear layers around it hold 2 x 3136 x latent weights (1024: 6.4M, 26 MB). */
export const LATENT_MAX = 1024;
/** The most compute threads: the machine's cores, or this cap when the machine has fewer cores. */
export const THREADS_CAP = 64;
export const threadsMax = (): number =>
  Math.max(THREADS_CAP, (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1);

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
  /** The model family: a variational autoencoder (mu/logvar heads, KL to N(0, I)) instead of the plain one. */
  vae: boolean;
  /** The KL's weight in a VAE's loss (mse + beta * KL; 1/784 is a unit-variance... see latent_loss vaeObjective). */
  beta: number;
  /** Steps over which the KL weight rises linearly from 0 to beta (0: beta from the start). */
  klWarmup: number;
  /** Input corruption of a denoising autoencoder: gaussian:SIGMA, saltpepper:P, mask:P or none (data/noise.ts). */
  noise: string;
  /** Keras's L1 activity regulariser on the latent: loss += activityL1 * sum|z| / N (a sparse autoencoder). */
  activityL1: number;
  /** Start from the weights of this checkpoint (safetensors or a PyTorch torch.save state_dict). */
  init?: string;
}

/**
 * The default KL weight: mse + beta * KL is the negative ELBO of a Gaussian decoder N(y, s^2 I) scaled by
 * 2 s^2 / 784; s^2 = 0.5 on the [-1, 1] scale gives 1/784 (engine latent_loss.ts vaeObjective).
 */
export const DEFAULT_BETA = 1 / 784;

export const DEFAULT_TRAIN: TrainConfig = {
  ...DEFAULT_MODEL,
  dataset: 'mnist',
  optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false, betas: [0.9, 0.999],
  scheduler: 'cyclic', baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 400, mode: 'triangular', cycleMomentum: true,
  pctStart: 0.3, annealStrategy: 'cos', threePhase: false,
  stepSize: 1000, milestones: [], etaMin: 0, factor: 0.1, patience: 10,
  epochs: 1, batchSize: 64, seed: 0, backend: 'auto', precision: 'fp32', loss: 'mse',
  checkpointEvery: 500, snapshotEvery: 0, snapshotPoints: 2000, logEvery: 10, latentWeight: 1,
  vae: false, beta: DEFAULT_BETA, klWarmup: 0, noise: 'none', activityL1: 0,
};

// ---------------------------------------------------------------------------------------------
// the schema

/** What a key is: the model's shape, the training's numerics (kept on resume), or the run's length and place (may change on resume). */
export type SettingKind = 'model' | 'training' | 'run';

interface Field { type: z.ZodType; expected: string; kind: SettingKind }

const finite = () => z.number().finite();
const posNum = () => finite().positive();
const nonNeg = () => finite().min(0);
const posInt = () => z.number().int().min(1);
const nonNegInt = () => z.number().int().min(0);
const oneOfText = (v: readonly string[]): string => `one of ${v.join(', ')}`;
const f = (type: z.ZodType, expected: string, kind: SettingKind = 'training'): Field => ({ type, expected, kind });

/** Checks a latent map: ten digits 0-9, each a point [x, y] of finite numbers. */
export function checkLatentMap(m: unknown, source = '--supervised'): LatentMap {
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new UsageError(`${source}: expected a JSON object mapping the digits 0-9 to [x, y] points`);
  const keys = Object.keys(m).sort();
  const want = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  if (keys.length !== 10 || !want.every((k) => keys.includes(k)))
    throw new UsageError(`${source}: expected ten points, one for each digit 0-9, got keys [${keys.join(', ')}]`);
  for (const k of want) {
    const p = (m as Record<string, unknown>)[k];
    if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw new UsageError(`${source}: the point of digit ${k} must be [x, y] with two finite numbers, got ${JSON.stringify(p)}`);
  }
  return m as LatentMap;
}

const latentMapType = z.custom<LatentMap>((v) => { try { checkLatentMap(v); return true; } catch { return false; } });

/** Every training setting: its type and bounds, the words of its error, and its kind. */
export const TRAIN_FIELDS: Readonly<Record<keyof TrainConfig, Field>> = {
  model: f(z.enum(['bn', 'simple']), 'bn, simple, vae (vae-bn) or vae-simple', 'model'),
  latent: f(z.union([z.literal('conv'), z.number().int().min(1).max(LATENT_MAX)]), `a positive integer (at most ${LATENT_MAX}) or 'conv'`, 'model'),
  activation: f(z.enum(['leaky', 'relu']), 'leaky or relu', 'model'),
  latentActivation: f(z.enum(['leaky', 'relu', 'none']), 'leaky, relu or none', 'model'),
  dataset: f(z.enum(['mnist', 'fashion-mnist']), 'mnist or fashion-mnist', 'training'),
  dataDir: f(z.string().min(1), 'a folder', 'run'),
  optimizer: f(z.enum(OPTIMIZERS as [OptimizerName, ...OptimizerName[]]), oneOfText(OPTIMIZERS)),
  lr: f(posNum(), 'a positive number', 'run'),
  momentum: f(nonNeg(), 'a number >= 0'),
  weightDecay: f(nonNeg(), 'a number >= 0'),
  nesterov: f(z.boolean(), 'true or false'),
  betas: f(z.tuple([finite().min(0).lt(1), finite().min(0).lt(1)]), 'two numbers in [0, 1)'),
  scheduler: f(z.enum(SCHEDULERS as [SchedulerName, ...SchedulerName[]]), oneOfText(SCHEDULERS)),
  baseLr: f(posNum(), 'a positive number'),
  maxLr: f(posNum(), 'a positive number'),
  stepSizeUp: f(posInt(), 'a positive integer'),
  stepSizeDown: f(posInt(), 'a positive integer'),
  mode: f(z.enum(['triangular', 'triangular2', 'exp_range']), 'triangular, triangular2 or exp_range'),
  gamma: f(posNum(), 'a positive number'),
  cycleMomentum: f(z.boolean(), 'true or false'),
  baseMomentum: f(nonNeg(), 'a number >= 0'),
  maxMomentum: f(nonNeg(), 'a number >= 0'),
  pctStart: f(finite().gt(0).lt(1), 'a number in (0, 1)'),
  annealStrategy: f(z.enum(['cos', 'linear']), 'cos or linear'),
  threePhase: f(z.boolean(), 'true or false'),
  stepSize: f(posInt(), 'a positive integer'),
  milestones: f(z.array(posInt()), 'a list of positive integers'),
  tMax: f(posInt(), 'a positive integer'),
  etaMin: f(nonNeg(), 'a number >= 0'),
  factor: f(finite().gt(0).lt(1), 'a number in (0, 1)'),
  patience: f(nonNegInt(), 'an integer >= 0'),
  epochs: f(posInt(), 'a positive integer', 'run'),
  maxSteps: f(posInt(), 'a positive integer', 'run'),
  batchSize: f(z.number().int().min(2), 'an integer >= 2 (BatchNorm needs two samples)'),
  seed: f(nonNegInt(), 'an integer >= 0'),
  threads: f(z.number().int().min(1).refine((n) => n <= threadsMax()), `a positive integer, at most ${threadsMax()} (the cores of this machine, or ${THREADS_CAP})`, 'run'),
  backend: f(z.enum(['auto', 'native', 'wasm', 'reference']), 'auto, native, wasm or reference', 'run'),
  precision: f(z.enum(['fp32', 'bf16']), 'fp32 or bf16', 'run'),
  loss: f(z.enum(['mse', 'bce']), 'mse or bce'),
  checkpointEvery: f(posInt(), 'a positive integer', 'run'),
  snapshotEvery: f(nonNegInt(), 'an integer >= 0', 'run'),
  snapshotPoints: f(posInt(), 'a positive integer'),
  logEvery: f(posInt(), 'a positive integer', 'run'),
  supervised: f(latentMapType, 'a JSON object mapping the digits 0-9 to [x, y] points'),
  latentWeight: f(nonNeg(), 'a number >= 0'),
  vae: f(z.boolean(), 'true or false', 'model'),
  beta: f(nonNeg(), 'a number >= 0'),
  klWarmup: f(nonNegInt(), 'a whole number of steps >= 0'),
  noise: f(z.string().refine((v) => { try { parseNoise(v); return true; } catch { return false; } }), 'gaussian:SIGMA, saltpepper:P, mask:P or none'),
  activityL1: f(nonNeg(), 'a number >= 0'),
  init: f(z.string().min(1), 'a checkpoint file', 'training'),
};

/** The values of --model: a body (bn, simple), or a VAE with that body (vae = vae-bn, vae-simple). */
export const MODEL_CHOICES = ['bn', 'simple', 'vae', 'vae-bn', 'vae-simple'] as const;
export type ModelChoice = typeof MODEL_CHOICES[number];

/** Splits a --model value into the body and the family: 'vae' -> { model: 'bn', vae: true }. */
export function splitModelChoice(v: ModelChoice): { model: 'bn' | 'simple'; vae: boolean } {
  if (v === 'vae' || v === 'vae-bn') return { model: 'bn', vae: true };
  if (v === 'vae-simple') return { model: 'simple', vae: true };
  return { model: v, vae: false };
}

/** The schema of a complete, resolved TrainConfig (optional keys may be absent). */
export const TrainConfigSchema = z.object(Object.fromEntries(Object.entries(TRAIN_FIELDS).map(([k, fl]) =>
  [k, k in DEFAULT_TRAIN ? fl.type : fl.type.optional()]))).strict();

/** The schema of a partial set of settings (a `--config` file, the web form's settings). */
export const TrainSettingsSchema = TrainConfigSchema.partial();

export const TRAIN_KEYS: ReadonlySet<string> = new Set(Object.keys(TRAIN_FIELDS));

/** Flag name of a config key: maxLr -> --max-lr. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Where a setting came from, for the words of its error: a flag, or a key of a file. */
export type Origin = { flag: true } | { file: string };
export const FROM_FLAGS: Origin = { flag: true };

/** How an error names a key: `--latent` or `runs/x/config.json: key "latent"`. */
export function nameOf(key: string, origin: Origin): string {
  return 'file' in origin ? `${origin.file}: key ${JSON.stringify(key)}` : flagOf(key);
}

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v));

/**
 * Checks settings from one origin (flags, a --config file, a run's config.json, the web form)
 * against the schema: an object of known keys, each of the right type and within bounds. Throws
 * one line naming the flag, or the file and the key. Keys whose value is undefined are dropped.
 */
export function parseTrainSettings(input: unknown, origin: Origin = FROM_FLAGS): Partial<TrainConfig> {
  const where = 'file' in origin ? origin.file : 'settings';
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new UsageError(`${where}: expected a JSON object of training settings, got ${input === null ? 'null' : Array.isArray(input) ? 'an array' : typeof input}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (!Object.prototype.hasOwnProperty.call(TRAIN_FIELDS, k))
      throw new UsageError('file' in origin ? `${origin.file}: unknown key ${JSON.stringify(k)} (not a training setting)` : `${flagOf(k)}: unknown setting '${k}'`);
    if (v === undefined) continue;
    const fl = TRAIN_FIELDS[k as keyof TrainConfig];
    let value = v;
    // a latent size written as text in a file: "10"
    if (k === 'latent' && typeof v === 'string' && /^\d+$/.test(v)) value = Number(v);
    // --model vae / "model": "vae-simple": the body and the family
    if (k === 'model' && typeof v === 'string' && v.startsWith('vae') && (MODEL_CHOICES as readonly string[]).includes(v)) {
      const { model, vae } = splitModelChoice(v as ModelChoice);
      if (input && (input as Record<string, unknown>).vae === false)
        throw new UsageError(`${nameOf(k, origin)}: ${JSON.stringify(v)} is a VAE, but ${nameOf('vae', origin)} is false`);
      out.model = model; out.vae = vae;
      continue;
    }
    if (!fl.type.safeParse(value).success) {
      if (k === 'supervised') checkLatentMap(value, nameOf(k, origin));
      if (k === 'noise' && typeof value === 'string') {
        try { parseNoise(value, nameOf(k, origin)); } catch (e) { throw new UsageError((e as Error).message); }
      }
      throw new UsageError(`${nameOf(k, origin)}: expected ${fl.expected}, got ${show(v)}`);
    }
    out[k] = value;
  }
  return out as Partial<TrainConfig>;
}

/** Which settings take effect, given the resolved optimiser and scheduler; else the words saying what does. */
function noEffect(key: keyof TrainConfig, c: TrainConfig): string | null {
  const s = c.scheduler, o = c.optimizer;
  const sched = (...ok: SchedulerName[]) => ok.includes(s);
  const withSched = `with --scheduler ${s}`;
  switch (key) {
    case 'lr':
      if (s === 'cyclic') return `${withSched} (CyclicLR sets the LR between --base-lr and --max-lr: use those, or --scheduler none)`;
      if (s === 'onecycle') return `${withSched} (OneCycleLR sets the LR from --max-lr: use it, or --scheduler none)`;
      return null;
    case 'baseLr': return sched('cyclic') ? null : `${withSched} (it is CyclicLR's; this schedule starts from --lr)`;
    case 'maxLr': return sched('cyclic', 'onecycle') ? null : `${withSched} (it is CyclicLR's and OneCycleLR's; this schedule starts from --lr)`;
    case 'stepSizeUp': case 'stepSizeDown': case 'mode':
      return sched('cyclic') ? null : `${withSched} (it is CyclicLR's: --scheduler cyclic)`;
    case 'gamma':
      return (s === 'cyclic' && c.mode === 'exp_range') || sched('step', 'multistep', 'exp') ? null
        : `${withSched}${s === 'cyclic' ? ` --mode ${c.mode}` : ''} (it is used by --mode exp_range and --scheduler step, multistep, exp)`;
    case 'pctStart': case 'annealStrategy': case 'threePhase':
      return sched('onecycle') ? null : `${withSched} (it is OneCycleLR's: --scheduler onecycle)`;
    case 'cycleMomentum': case 'baseMomentum': case 'maxMomentum':
      return sched('cyclic', 'onecycle') ? null : `${withSched} (it is CyclicLR's and OneCycleLR's)`;
    case 'stepSize': return sched('step') ? null : `${withSched} (it is StepLR's: --scheduler step)`;
    case 'milestones': return sched('multistep') ? null : `${withSched} (it is MultiStepLR's: --scheduler multistep)`;
    case 'tMax': case 'etaMin': return sched('cosine') ? null : `${withSched} (it is CosineAnnealingLR's: --scheduler cosine)`;
    case 'factor': case 'patience': return sched('plateau') ? null : `${withSched} (it is ReduceLROnPlateau's: --scheduler plateau)`;
    case 'momentum': case 'nesterov': return o === 'sgd' ? null : `with --optimizer ${o} (its momentum is --betas)`;
    case 'betas': return o === 'sgd' ? `with --optimizer sgd (its momentum is --momentum)` : null;
    case 'latentWeight': return c.supervised ? null : 'without --supervised (it weighs the latent-map term)';
    case 'beta': case 'klWarmup': return c.vae ? null : 'without --model vae (it weighs the KL term of a VAE)';
    default: return null;
  }
}

/** Checks the settings against each other: a latent map needs a 2-D latent; a setting the user changed must take effect. */
function checkTogether(c: TrainConfig, given: Map<string, Origin>): void {
  if (c.vae) {
    const where = (k: string): string => nameOf(k, given.get(k) ?? FROM_FLAGS);
    if (c.latentActivation !== 'none') {
      if (given.has('latentActivation'))
        throw new UsageError(`${where('latentActivation')}: a VAE's mean and log-variance heads take no activation; expected none with --model vae, got ${c.latentActivation}`);
      c.latentActivation = 'none';
    }
    if (c.supervised !== undefined) throw new UsageError(`${where('supervised')}: not with --model vae (the KL term already places the codes; train a plain model for a latent map)`);
    if (c.loss !== 'mse') throw new UsageError(`${where('loss')}: a VAE's reconstruction term is the MSE (a Gaussian decoder); expected mse with --model vae, got ${c.loss}`);
    if (c.activityL1 > 0) throw new UsageError(`${where('activityL1')}: not with --model vae (its KL term already regularises the latent); use it on a plain model`);
  }
  if (c.supervised !== undefined && c.latent !== 2) {
    const o = given.get('supervised') ?? FROM_FLAGS;
    throw new UsageError(`${nameOf('supervised', o)}: a latent map needs a 2-D latent (--latent 2), got --latent ${c.latent}`);
  }
  for (const [k, origin] of given) {
    const v = (c as unknown as Record<string, unknown>)[k];
    const d = (DEFAULT_TRAIN as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(v) === JSON.stringify(d)) continue; // the default changes nothing either way
    const why = noEffect(k as keyof TrainConfig, c);
    if (why) throw new UsageError(`${nameOf(k, origin)}: has no effect ${why}`);
  }
}

/** Validates a complete config (every key of the schema); returns it. */
export function checkTrainConfig(c: TrainConfig, origin: Origin = FROM_FLAGS): TrainConfig {
  const parsed = parseTrainSettings(c, origin) as TrainConfig;
  for (const k of Object.keys(DEFAULT_TRAIN)) if ((parsed as unknown as Record<string, unknown>)[k] === undefined)
    throw new UsageError(`${nameOf(k, origin)}: expected ${TRAIN_FIELDS[k as keyof TrainConfig].expected}, got nothing`);
  checkTogether(parsed, new Map());
  return parsed;
}

/**
 * Defaults, then the file's settings, then the flags; each layer checked with its own origin
 * (errors name the flag, or `file: key`). `file` names the --config file when there is one.
 */
export function resolveTrainConfig(fromFile: unknown = {}, flags: Partial<TrainConfig> = {}, opts: { file?: string } = {}): TrainConfig {
  const fileOrigin: Origin = opts.file ? { file: opts.file } : FROM_FLAGS;
  const layers: [Partial<TrainConfig>, Origin][] = [[parseTrainSettings(fromFile, fileOrigin), fileOrigin], [parseTrainSettings(flags, FROM_FLAGS), FROM_FLAGS]];
  const c = { ...DEFAULT_TRAIN } as unknown as Record<string, unknown>;
  const given = new Map<string, Origin>();
  for (const [values, origin] of layers)
    for (const [k, v] of Object.entries(values)) if (v !== undefined) { c[k] = v; given.set(k, origin); }
  checkTogether(c as unknown as TrainConfig, given);
  return c as unknown as TrainConfig;
}

/** The training settings recorded in a run's config.json (other recorded keys: version, data, ...), checked, naming the file and key. */
export function parseRunConfig(saved: Record<string, unknown>, file: string): TrainConfig {
  const picked = Object.fromEntries(Object.entries(saved).filter(([k]) => TRAIN_KEYS.has(k)));
  // `backend` and `threads` hold what the run ran on (a resumed run keeps the same numerics)
  const parsed = parseTrainSettings(picked, { file });
  const c = { ...DEFAULT_TRAIN, ...parsed } as TrainConfig;
  return c;
}

/**
 * A resumed run's settings: the saved ones, with the run settings the user changed (epochs, max
 * steps, LR, backend, threads, data folder, checkpoint/log/snapshot intervals). A changed model or
 * training setting is refused with one line naming it. Returns the config and the keys changed.
 */
export function resumeConfig(saved: TrainConfig, given: Partial<TrainConfig>, dir: string): { config: TrainConfig; changed: string[] } {
  const c = { ...saved } as unknown as Record<string, unknown>;
  const changed: string[] = [];
  for (const [k, v] of Object.entries(parseTrainSettings(given, FROM_FLAGS))) {
    if (v === undefined) continue;
    const was = c[k];
    if (JSON.stringify(was) === JSON.stringify(v)) continue;
    const kind = TRAIN_FIELDS[k as keyof TrainConfig].kind;
    if (k === 'vae' || (k === 'model' && given.vae !== undefined && given.vae !== saved.vae)) {
      // both come from --model (vae, vae-simple): name the flag the user typed and what the run is
      const choice = (x: { model: string; vae: boolean }): string => (x.vae ? (x.model === 'bn' ? 'vae' : 'vae-simple') : x.model);
      throw new UsageError(`--model: the run in ${dir} is a ${saved.vae ? 'VAE' : 'plain autoencoder'} (--model ${choice(saved)}), not a ${saved.vae ? 'plain autoencoder' : 'VAE'}; `
        + 'a resumed run keeps its model (the checkpoint holds its weights; start a new run with --out to change it)');
    }
    if (kind !== 'run') {
      throw new UsageError(`${flagOf(k)}: the run in ${dir} was trained with ${flagOf(k)} ${show(was)}; a resumed run keeps its ${kind} settings`
        + ` (${kind === 'model' ? 'the checkpoint holds weights of that shape' : 'the checkpoint holds that optimiser, schedule and data order'}; start a new run with --out to change it)`);
    }
    if (k === 'lr' && saved.scheduler !== 'none')
      throw new UsageError(`--lr: cannot change on --resume with --scheduler ${saved.scheduler} (the scheduler's state sets the LR); only with --scheduler none`);
    c[k] = v;
    changed.push(k);
  }
  const config = c as unknown as TrainConfig;
  checkTogether(config, new Map());
  return { config, changed };
}
