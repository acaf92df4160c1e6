/**
 * Learning-rate schedulers with torch.optim.lr_scheduler's semantics (PyTorch 1.13), option names
 * in camelCase (`step_size_up` -> `stepSizeUp`, `T_max` -> `tMax`).
 *
 * As in PyTorch, constructing a scheduler performs an initial `step()` (lastEpoch -1 -> 0) that
 * writes the schedule's first LR into the optimiser, and every later `step()` advances one epoch
 * (or batch, for CyclicLR / OneCycleLR) using the recursive "chainable" form where PyTorch has one.
 * Call `scheduler.step()` after `optimizer.step()`. The deprecated `step(epoch)` argument
 * (closed forms) and `verbose` are not provided.
 *
 * PyTorch 2.x differences (we follow 1.13, where noted we also accept what 2.x added):
 * - `_LRScheduler` is named `LRScheduler` in 2.x (the name used here); `verbose` is deprecated.
 * - the chainable `get_lr` of StepLR / ExponentialLR / CosineAnnealingLR tests `last_epoch == 0` in
 *   1.13 but an `_is_initial` flag (the constructor's step) in recent 2.x; they differ only when
 *   resuming with lastEpoch >= 0, which is not supported here.
 * - CyclicLR: 1.13 requires an optimiser with `momentum` when cycleMomentum is true (Adam raises);
 *   2.x also accepts `betas` and cycles beta1. We implement the 2.x behaviour for Adam/AdamW; for
 *   SGD both versions give identical LRs and momenta. 2.x additionally stores `maxMomentum` /
 *   `baseMomentum` in each group and sets momentum to maxMomentum (1.13: baseMomentum) before the
 *   initial step, which then overwrites it with maxMomentum in both versions.
 * - ReduceLROnPlateau is a plain object in 1.13 (no `_last_lr` before the first step); in 2.x it
 *   subclasses LRScheduler and `get_last_lr()` works right after construction, as here.
 * - CosineAnnealingLR's recursive form drifts slightly from the closed form over long runs in both
 *   versions; we reproduce the recursion (including the restart branch when lastEpoch passes tMax).
 */
import type { Optimizer, ParamGroup } from './optim/optimizer.js';

type AnyOptimizer = Optimizer<ParamGroup>;

function fail(owner: string, msg: string): never {
  throw new Error(`${owner}: ${msg}`);
}

function checkPositiveInt(owner: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(owner, `invalid ${name} ${String(v)} (expected a positive integer)`);
  return v;
}

function checkNonNegative(owner: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) fail(owner, `invalid ${name} ${String(v)} (expected a number >= 0)`);
  return v;
}

/** PyTorch's `_format_param`: one value per parameter group. */
function perGroup(owner: string, name: string, opt: AnyOptimizer, v: number | number[]): number[] {
  const n = opt.paramGroups.length;
  if (Array.isArray(v)) {
    if (v.length !== n) fail(owner, `expected ${n} values for ${name} (one per parameter group), got ${v.length}`);
    return v.map((x) => { if (typeof x !== 'number' || Number.isNaN(x)) fail(owner, `invalid ${name} ${String(x)}`); return x; });
  }
  if (typeof v !== 'number' || Number.isNaN(v)) fail(owner, `invalid ${name} ${String(v)}`);
  return new Array<number>(n).fill(v);
}

/** JSON-serialisable scheduler state (numbers, strings, booleans, arrays, objects; +-Infinity as strings). */
export type SchedulerStateDict = Record<string, unknown>;

/** Deep copy into plain JSON values; +-Infinity and NaN become the strings 'Infinity', '-Infinity', 'NaN'. */
function toJson<T>(v: T): unknown {
  if (v === undefined) return v;
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x)));
}

/** Inverse of toJson. */
function fromJson(v: unknown): unknown {
  if (v === undefined) return v;
  return JSON.parse(JSON.stringify(v), (_k, x) => (x === 'Infinity' ? Infinity : x === '-Infinity' ? -Infinity : x === 'NaN' ? NaN : x));
}

/** Does the optimiser have a momentum-like hyperparameter, and which (PyTorch 2.x `use_beta1`)? */
function momentumKind(owner: string, opt: AnyOptimizer): 'betas' | 'momentum' {
  if ('betas' in opt.defaults) return 'betas';
  if ('momentum' in opt.defaults) return 'momentum';
  fail(owner, 'cycleMomentum requires an optimizer with momentum or betas (pass cycleMomentum: false)');
}

function setMomentum(group: ParamGroup, kind: 'betas' | 'momentum', m: number): void {
  if (kind === 'betas') {
    const betas = group.betas as number[];
    group.betas = [m, ...betas.slice(1)];
  } else group.momentum = m;
}

/** Base class (PyTorch's `_LRScheduler` / 2.x `LRScheduler`). */
export abstract class LRScheduler {
  /** Index of the last step taken; 0 right after construction. */
  lastEpoch = -1;
  /** The groups' initial learning rates (`initial_lr`). */
  baseLrs: number[];
  protected stepCount = 0;
  protected lastLr: number[] = [];

  /** Fields excluded from stateDict (besides the optimizer). */
  protected static readonly transient: readonly string[] = [];

  constructor(readonly optimizer: AnyOptimizer) {
    for (const g of optimizer.paramGroups) if (g.initialLr === undefined) g.initialLr = g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr as number);
  }

  /** Must be called at the end of subclass constructors: PyTorch's `_initial_step`. */
  protected initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** The schedule's LRs for `lastEpoch` (may read the optimiser's current LRs: chainable form). */
  protected abstract getLr(): number[];

  /** Advances the schedule by one step and writes the new LRs into the optimiser. */
  step(): void {
    this.stepCount++;
    this.lastEpoch++;
    const values = this.getLr();
    this.optimizer.paramGroups.forEach((g, i) => { g.lr = values[i]; });
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The LRs written by the last `step()` (one per group). */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Every field except the optimiser, as JSON values (PyTorch: `self.__dict__` minus the optimizer). */
  stateDict(): SchedulerStateDict {
    const skip = new Set(['optimizer', ...(this.constructor as typeof LRScheduler).transient]);
    const out: SchedulerStateDict = {};
    for (const [k, v] of Object.entries(this)) if (!skip.has(k) && typeof v !== 'function') out[k] = toJson(v);
    return out;
  }

  /** Restores fields written by `stateDict()`. Restore the optimiser's state dict too (it holds the LRs). */
  loadStateDict(sd: SchedulerStateDict): void {
    const skip = new Set(['optimizer', ...(this.constructor as typeof LRScheduler).transient]);
    for (const [k, v] of Object.entries(sd)) {
      if (skip.has(k)) continue;
      if (!(k in this)) fail(this.constructor.name, `loadStateDict: unknown field ${k}`);
      (this as Record<string, unknown>)[k] = fromJson(v);
    }
  }
}

// ------------------------------------------------------------------------------------------ StepLR

export interface StepLROptions { stepSize: number; gamma?: number }

/** Multiplies the LR by gamma every stepSize epochs. */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;
  constructor(optimizer: AnyOptimizer, { stepSize, gamma = 0.1 }: StepLROptions) {
    super(optimizer);
    this.stepSize = checkPositiveInt('StepLR', 'stepSize', stepSize);
    this.gamma = checkNonNegative('StepLR', 'gamma', gamma);
    this.initialStep();
  }
  protected override getLr(): number[] {
    const groups = this.optimizer.paramGroups;
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return groups.map((g) => g.lr);
    return groups.map((g) => g.lr * this.gamma);
  }
}

// ------------------------------------------------------------------------------------- MultiStepLR

export interface MultiStepLROptions { milestones: number[]; gamma?: number }

/** Multiplies the LR by gamma at each milestone (a repeated milestone multiplies by gamma^count). */
export class MultiStepLR extends LRScheduler {
  /** milestone -> count (PyTorch's Counter). */
  milestones: Record<string, number>;
  gamma: number;
  constructor(optimizer: AnyOptimizer, { milestones, gamma = 0.1 }: MultiStepLROptions) {
    super(optimizer);
    if (!Array.isArray(milestones)) fail('MultiStepLR', `invalid milestones ${String(milestones)} (expected an array of integers)`);
    this.milestones = {};
    for (const m of milestones) {
      if (!Number.isInteger(m)) fail('MultiStepLR', `invalid milestones entry ${String(m)} (expected an integer)`);
      this.milestones[m] = (this.milestones[m] ?? 0) + 1;
    }
    this.gamma = checkNonNegative('MultiStepLR', 'gamma', gamma);
    this.initialStep();
  }
  protected override getLr(): number[] {
    const groups = this.optimizer.paramGroups;
    const count = this.milestones[this.lastEpoch];
    if (count === undefined) return groups.map((g) => g.lr);
    return groups.map((g) => g.lr * this.gamma ** count);
  }
}

// ----------------------------------------------------------------------------------- ExponentialLR

export interface ExponentialLROptions { gamma: number }

/** Multiplies the LR by gamma every epoch. */
export class ExponentialLR extends LRScheduler {
  gamma: number;
  constructor(optimizer: AnyOptimizer, { gamma }: ExponentialLROptions) {
    super(optimizer);
    this.gamma = checkNonNegative('ExponentialLR', 'gamma', gamma);
    this.initialStep();
  }
  protected override getLr(): number[] {
    const groups = this.optimizer.paramGroups;
    if (this.lastEpoch === 0) return groups.map((g) => g.lr);
    return groups.map((g) => g.lr * this.gamma);
  }
}

// ------------------------------------------------------------------------------- CosineAnnealingLR

export interface CosineAnnealingLROptions { tMax: number; etaMin?: number }

/**
 * Cosine annealing from the initial LR to etaMin over tMax steps, in PyTorch's recursive form
 * (which keeps going past tMax: the LR climbs back up over the next tMax steps, and so on).
 */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;
  constructor(optimizer: AnyOptimizer, { tMax, etaMin = 0 }: CosineAnnealingLROptions) {
    super(optimizer);
    this.tMax = checkPositiveInt('CosineAnnealingLR', 'tMax', tMax);
    this.etaMin = checkNonNegative('CosineAnnealingLR', 'etaMin', etaMin);
    this.initialStep();
  }
  protected override getLr(): number[] {
    const groups = this.optimizer.paramGroups, e = this.lastEpoch, T = this.tMax, etaMin = this.etaMin;
    if (e === 0) return groups.map((g) => g.lr);
    if (this.stepCount === 1 && e > 0)
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    if (pyMod(e - 1 - T, 2 * T) === 0)
      return groups.map((g, i) => g.lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    return groups.map((g) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (g.lr - etaMin) + etaMin);
  }
}

/** Python's `%` (result has the divisor's sign). */
function pyMod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

// ----------------------------------------------------------------------------------------- CyclicLR

export type CyclicMode = 'triangular' | 'triangular2' | 'exp_range';

export interface CyclicLROptions {
  baseLr: number | number[];
  maxLr: number | number[];
  /** Default 2000. */
  stepSizeUp?: number;
  /** Default: stepSizeUp. */
  stepSizeDown?: number;
  /** Default 'triangular'; ignored when scaleFn is given. */
  mode?: CyclicMode;
  /** exp_range's base: scale = gamma^iterations. Default 1. */
  gamma?: number;
  /** Custom amplitude scale (0 <= scaleFn(x) <= 1); overrides mode. */
  scaleFn?: (x: number) => number;
  /** What scaleFn is evaluated on: the cycle number or the iteration. Default 'cycle'. */
  scaleMode?: 'cycle' | 'iterations';
  /** Default true: cycles SGD's momentum (or Adam's beta1, as in PyTorch 2.x) inversely to the LR. */
  cycleMomentum?: boolean;
  /** Default 0.8. */
  baseMomentum?: number | number[];
  /** Default 0.9. */
  maxMomentum?: number | number[];
}

/** Cyclical learning rates (Smith 2017), per batch. Sets the groups' LR to baseLr at construction. */
export class CyclicLR extends LRScheduler {
  maxLrs: number[];
  totalSize: number;
  stepRatio: number;
  mode: CyclicMode | 'custom';
  gamma: number;
  scaleMode: 'cycle' | 'iterations';
  cycleMomentum: boolean;
  useBeta1: boolean;
  baseMomentums: number[] = [];
  maxMomentums: number[] = [];
  /** Not serialisable: a custom scale function must be passed to the constructor again before loadStateDict. */
  scaleFnCustom: ((x: number) => number) | null;
  protected static override readonly transient = ['scaleFnCustom'];

  constructor(optimizer: AnyOptimizer, o: CyclicLROptions) {
    const name = 'CyclicLR';
    const baseLrs = perGroup(name, 'baseLr', optimizer, o.baseLr);
    for (const b of baseLrs) checkNonNegative(name, 'baseLr', b);
    for (const [i, g] of optimizer.paramGroups.entries()) g.lr = baseLrs[i];
    super(optimizer);
    this.maxLrs = perGroup(name, 'maxLr', optimizer, o.maxLr);
    for (const m of this.maxLrs) checkNonNegative(name, 'maxLr', m);
    const up = o.stepSizeUp ?? 2000;
    if (typeof up !== 'number' || !(up > 0)) fail(name, `invalid stepSizeUp ${String(up)} (expected a number > 0)`);
    const down = o.stepSizeDown ?? up;
    if (typeof down !== 'number' || !(down >= 0)) fail(name, `invalid stepSizeDown ${String(down)} (expected a number >= 0)`);
    this.totalSize = up + down;
    this.stepRatio = up / this.totalSize;
    const mode = o.mode ?? 'triangular';
    if (!o.scaleFn && !['triangular', 'triangular2', 'exp_range'].includes(mode))
      fail(name, `unknown mode '${String(mode)}' (expected triangular, triangular2 or exp_range, or pass scaleFn)`);
    this.gamma = o.gamma ?? 1;
    if (typeof this.gamma !== 'number' || Number.isNaN(this.gamma)) fail(name, `invalid gamma ${String(this.gamma)}`);
    this.scaleFnCustom = o.scaleFn ?? null;
    if (o.scaleFn) {
      this.mode = 'custom';
      const sm = o.scaleMode ?? 'cycle';
      if (sm !== 'cycle' && sm !== 'iterations') fail(name, `unknown scaleMode '${String(sm)}' (expected cycle or iterations)`);
      this.scaleMode = sm;
    } else {
      this.mode = mode;
      this.scaleMode = mode === 'exp_range' ? 'iterations' : 'cycle';
    }
    this.cycleMomentum = o.cycleMomentum ?? true;
    this.useBeta1 = false;
    if (this.cycleMomentum) {
      const kind = momentumKind(name, optimizer);
      this.useBeta1 = kind === 'betas';
      this.baseMomentums = perGroup(name, 'baseMomentum', optimizer, o.baseMomentum ?? 0.8);
      this.maxMomentums = perGroup(name, 'maxMomentum', optimizer, o.maxMomentum ?? 0.9);
      // 1.13 sets the momentum to baseMomentum here (2.x: maxMomentum); the initial step overwrites it
      optimizer.paramGroups.forEach((g, i) => setMomentum(g, kind, this.baseMomentums[i]));
    }
    this.initialStep();
    this.baseLrs = baseLrs;
  }

  scaleFn(x: number): number {
    if (this.scaleFnCustom) return this.scaleFnCustom(x);
    if (this.mode === 'triangular') return 1;
    if (this.mode === 'triangular2') return 1 / 2 ** (x - 1);
    if (this.mode === 'exp_range') return this.gamma ** x;
    fail('CyclicLR', 'a custom scaleFn was not supplied (pass it to the constructor before loadStateDict)');
  }

  protected override getLr(): number[] {
    const e = this.lastEpoch;
    const cycle = Math.floor(1 + e / this.totalSize);
    const x = 1 + e / this.totalSize - cycle;
    const scaleFactor = x <= this.stepRatio ? x / this.stepRatio : (x - 1) / (this.stepRatio - 1);
    const arg = this.scaleMode === 'cycle' ? cycle : e;
    const lrs = this.baseLrs.map((b, i) => b + (this.maxLrs[i] - b) * scaleFactor * this.scaleFn(arg));
    if (this.cycleMomentum) {
      const kind = this.useBeta1 ? 'betas' : 'momentum';
      this.optimizer.paramGroups.forEach((g, i) => {
        const height = (this.maxMomentums[i] - this.baseMomentums[i]) * scaleFactor;
        setMomentum(g, kind, this.maxMomentums[i] - height * this.scaleFn(arg));
      });
    }
    return lrs;
  }
}

// --------------------------------------------------------------------------------------- OneCycleLR

export interface OneCycleLROptions {
  maxLr: number | number[];
  /** Either totalSteps or epochs and stepsPerEpoch. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Fraction of the cycle spent increasing the LR. Default 0.3. */
  pctStart?: number;
  /** Default 'cos'. */
  annealStrategy?: 'cos' | 'linear';
  /** Default true: cycles SGD's momentum or Adam's beta1. */
  cycleMomentum?: boolean;
  /** Default 0.85. */
  baseMomentum?: number | number[];
  /** Default 0.95. */
  maxMomentum?: number | number[];
  /** initialLr = maxLr / divFactor. Default 25. */
  divFactor?: number;
  /** minLr = initialLr / finalDivFactor. Default 1e4. */
  finalDivFactor?: number;
  /** Default false. */
  threePhase?: boolean;
}

interface Phase { endStep: number; startLr: string; endLr: string; startMomentum: string; endMomentum: string }

/** The 1cycle policy (Smith & Topin 2018), per batch; sets the LR to maxLr/divFactor at construction. */
export class OneCycleLR extends LRScheduler {
  totalSteps: number;
  schedulePhases: Phase[];
  annealStrategy: 'cos' | 'linear';
  cycleMomentum: boolean;
  useBeta1 = false;

  constructor(optimizer: AnyOptimizer, o: OneCycleLROptions) {
    const name = 'OneCycleLR';
    let total: number;
    if (o.totalSteps === undefined && o.epochs === undefined && o.stepsPerEpoch === undefined)
      fail(name, 'totalSteps, or epochs and stepsPerEpoch, must be given');
    else if (o.totalSteps !== undefined) total = checkPositiveInt(name, 'totalSteps', o.totalSteps);
    else total = checkPositiveInt(name, 'epochs', o.epochs) * checkPositiveInt(name, 'stepsPerEpoch', o.stepsPerEpoch);
    const pct = o.pctStart ?? 0.3;
    if (typeof pct !== 'number' || !(pct >= 0 && pct <= 1)) fail(name, `invalid pctStart ${String(pct)} (expected a number in [0, 1])`);
    const strategy = o.annealStrategy ?? 'cos';
    if (strategy !== 'cos' && strategy !== 'linear') fail(name, `unknown annealStrategy '${String(strategy)}' (expected cos or linear)`);
    const divFactor = o.divFactor ?? 25, finalDiv = o.finalDivFactor ?? 1e4;
    if (typeof divFactor !== 'number' || !(divFactor > 0)) fail(name, `invalid divFactor ${String(divFactor)} (expected a number > 0)`);
    if (typeof finalDiv !== 'number' || !(finalDiv > 0)) fail(name, `invalid finalDivFactor ${String(finalDiv)} (expected a number > 0)`);
    const maxLrs = perGroup(name, 'maxLr', optimizer, o.maxLr);
    for (const m of maxLrs) checkNonNegative(name, 'maxLr', m);
    optimizer.paramGroups.forEach((g, i) => {
      g.initialLr = maxLrs[i] / divFactor;
      g.maxLr = maxLrs[i];
      g.minLr = g.initialLr / finalDiv;
    });
    const cycleMomentum = o.cycleMomentum ?? true;
    let useBeta1 = false;
    if (cycleMomentum) {
      const kind = momentumKind(name, optimizer);
      useBeta1 = kind === 'betas';
      const maxM = perGroup(name, 'maxMomentum', optimizer, o.maxMomentum ?? 0.95);
      const baseM = perGroup(name, 'baseMomentum', optimizer, o.baseMomentum ?? 0.85);
      optimizer.paramGroups.forEach((g, i) => {
        setMomentum(g, kind, maxM[i]);
        g.maxMomentum = maxM[i];
        g.baseMomentum = baseM[i];
      });
    }
    super(optimizer);
    this.totalSteps = total;
    this.annealStrategy = strategy;
    this.cycleMomentum = cycleMomentum;
    this.useBeta1 = useBeta1;
    this.schedulePhases = o.threePhase
      ? [
          { endStep: pct * total - 1, startLr: 'initialLr', endLr: 'maxLr', startMomentum: 'maxMomentum', endMomentum: 'baseMomentum' },
          { endStep: 2 * pct * total - 2, startLr: 'maxLr', endLr: 'initialLr', startMomentum: 'baseMomentum', endMomentum: 'maxMomentum' },
          { endStep: total - 1, startLr: 'initialLr', endLr: 'minLr', startMomentum: 'maxMomentum', endMomentum: 'maxMomentum' },
        ]
      : [
          { endStep: pct * total - 1, startLr: 'initialLr', endLr: 'maxLr', startMomentum: 'maxMomentum', endMomentum: 'baseMomentum' },
          { endStep: total - 1, startLr: 'maxLr', endLr: 'minLr', startMomentum: 'baseMomentum', endMomentum: 'maxMomentum' },
        ];
    this.initialStep();
  }

  private anneal(start: number, end: number, pct: number): number {
    if (this.annealStrategy === 'cos') return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
    return (end - start) * pct + start;
  }

  protected override getLr(): number[] {
    const stepNum = this.lastEpoch;
    if (stepNum > this.totalSteps)
      fail('OneCycleLR', `tried to step ${stepNum + 1} times; the specified number of total steps is ${this.totalSteps}`);
    const phases = this.schedulePhases;
    return this.optimizer.paramGroups.map((g) => {
      let start = 0, lr = 0, mom = 0;
      for (let i = 0; i < phases.length; i++) {
        const ph = phases[i];
        if (stepNum <= ph.endStep || i === phases.length - 1) {
          const pct = (stepNum - start) / (ph.endStep - start);
          lr = this.anneal(g[ph.startLr] as number, g[ph.endLr] as number, pct);
          if (this.cycleMomentum) mom = this.anneal(g[ph.startMomentum] as number, g[ph.endMomentum] as number, pct);
          break;
        }
        start = ph.endStep;
      }
      if (this.cycleMomentum) setMomentum(g, this.useBeta1 ? 'betas' : 'momentum', mom);
      return lr;
    });
  }
}

// -------------------------------------------------------------------------------- ReduceLROnPlateau

export interface ReduceLROnPlateauOptions {
  /** Default 'min'. */
  mode?: 'min' | 'max';
  /** new lr = lr * factor; must be < 1. Default 0.1. */
  factor?: number;
  /** Bad epochs tolerated before reducing. Default 10. */
  patience?: number;
  /** Default 1e-4. */
  threshold?: number;
  /** Default 'rel'. */
  thresholdMode?: 'rel' | 'abs';
  /** Epochs to wait after a reduction. Default 0. */
  cooldown?: number;
  /** Default 0. */
  minLr?: number | number[];
  /** Reductions smaller than eps are ignored. Default 1e-8. */
  eps?: number;
}

/** Reduces the LR when a metric stops improving; call `step(metric)` once per epoch. */
export class ReduceLROnPlateau {
  factor: number;
  minLrs: number[];
  patience: number;
  cooldown: number;
  cooldownCounter = 0;
  mode: 'min' | 'max';
  threshold: number;
  thresholdMode: 'rel' | 'abs';
  best: number;
  numBadEpochs = 0;
  modeWorse: number;
  eps: number;
  lastEpoch = 0;
  protected lastLr: number[];

  constructor(readonly optimizer: AnyOptimizer, o: ReduceLROnPlateauOptions = {}) {
    const name = 'ReduceLROnPlateau';
    this.factor = o.factor ?? 0.1;
    if (typeof this.factor !== 'number' || !(this.factor < 1) || Number.isNaN(this.factor)) fail(name, `invalid factor ${String(this.factor)} (expected a number < 1)`);
    this.minLrs = perGroup(name, 'minLr', optimizer, o.minLr ?? 0);
    this.patience = o.patience ?? 10;
    if (!Number.isInteger(this.patience) || this.patience < 0) fail(name, `invalid patience ${String(this.patience)} (expected an integer >= 0)`);
    this.cooldown = o.cooldown ?? 0;
    if (!Number.isInteger(this.cooldown) || this.cooldown < 0) fail(name, `invalid cooldown ${String(this.cooldown)} (expected an integer >= 0)`);
    this.eps = o.eps ?? 1e-8;
    this.mode = o.mode ?? 'min';
    this.threshold = o.threshold ?? 1e-4;
    this.thresholdMode = o.thresholdMode ?? 'rel';
    this.modeWorse = this.initIsBetter();
    this.best = this.modeWorse;
    this.lastLr = optimizer.paramGroups.map((g) => g.lr);
  }

  private initIsBetter(): number {
    if (this.mode !== 'min' && this.mode !== 'max') fail('ReduceLROnPlateau', `unknown mode '${String(this.mode)}' (expected min or max)`);
    if (this.thresholdMode !== 'rel' && this.thresholdMode !== 'abs')
      fail('ReduceLROnPlateau', `unknown thresholdMode '${String(this.thresholdMode)}' (expected rel or abs)`);
    if (typeof this.threshold !== 'number' || Number.isNaN(this.threshold)) fail('ReduceLROnPlateau', `invalid threshold ${String(this.threshold)}`);
    return this.mode === 'min' ? Infinity : -Infinity;
  }

  get inCooldown(): boolean {
    return this.cooldownCounter > 0;
  }

  isBetter(a: number, best: number): boolean {
    if (this.mode === 'min' && this.thresholdMode === 'rel') return a < best * (1 - this.threshold);
    if (this.mode === 'min') return a < best - this.threshold;
    if (this.thresholdMode === 'rel') return a > best * (this.threshold + 1);
    return a > best + this.threshold;
  }

  step(metric: number): void {
    const current = Number(metric);
    this.lastEpoch += 1;
    if (this.isBetter(current, this.best)) {
      this.best = current;
      this.numBadEpochs = 0;
    } else this.numBadEpochs += 1;
    if (this.inCooldown) {
      this.cooldownCounter -= 1;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.patience) {
      this.optimizer.paramGroups.forEach((g, i) => {
        const old = g.lr;
        const next = Math.max(old * this.factor, this.minLrs[i]);
        if (old - next > this.eps) g.lr = next;
      });
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  getLastLr(): number[] {
    return [...this.lastLr];
  }

  stateDict(): SchedulerStateDict {
    const out: SchedulerStateDict = {};
    for (const [k, v] of Object.entries(this)) if (k !== 'optimizer') out[k] = toJson(v);
    return out;
  }

  loadStateDict(sd: SchedulerStateDict): void {
    for (const [k, v] of Object.entries(sd)) {
      if (k === 'optimizer') continue;
      if (!(k in this)) fail('ReduceLROnPlateau', `loadStateDict: unknown field ${k}`);
      (this as Record<string, unknown>)[k] = fromJson(v);
    }
    this.modeWorse = this.initIsBetter();
  }
}
