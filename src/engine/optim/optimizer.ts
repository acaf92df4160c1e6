/**
 * Optimiser base class with torch.optim.Optimizer's semantics (PyTorch 1.13), in the spirit of
 * tinygrad's nn/optim.py: every optimiser is a subclass that only implements the per-group update.
 *
 * - `paramGroups`: each group is `{ params, lr, ...hyperparameters }`. The constructor takes a
 *   `Parameter[]` (one group) or group objects whose missing options fall back to the defaults,
 *   exactly like PyTorch. Option names are PyTorch's in camelCase (`weight_decay` -> `weightDecay`);
 *   schedulers add `initialLr`, `maxLr`, `minLr`, `maxMomentum`, `baseMomentum` to groups as PyTorch does.
 * - per-parameter state lives in `state` (a Map keyed by the Parameter) and holds Float32Arrays and
 *   numbers (`momentumBuffer`; `step`, `expAvg`, `expAvgSq`, `maxExpAvgSq`).
 * - `stateDict()` / `loadStateDict()` mirror PyTorch's packing: parameters are replaced by their
 *   index in group order, hyperparameters are plain JSON values, state tensors are Float32Array
 *   copies, so a run resumes bit-exactly. `packOptimizerState` / `unpackOptimizerState` convert
 *   that to/from a safetensors StateDict + string metadata for checkpoint files.
 *
 * Differences from PyTorch, by design: `zeroGrad()` sets gradients to zero (1.13's default
 * `set_to_none=False`, the zeros written lazily: see Parameter; PyTorch 2.x defaults to `set_to_none=True`,
 * after which parameters without a gradient are skipped by `step()`: here a parameter is skipped only
 * when `requiresGrad` is false).
 * Sparse gradients, closures that need autograd, `foreach`, `fused`, `capturable` and
 * `differentiable` do not apply.
 */
import type { Backend } from '../kernels/index.js';
import { Parameter } from '../nn/parameter.js';
import { f32, type StateDict } from '../state.js';

/** One parameter group: its parameters, learning rate and the optimiser's other hyperparameters. */
export interface ParamGroup {
  params: Parameter[];
  lr: number;
  /** Set by LR schedulers (PyTorch's `initial_lr`). */
  initialLr?: number;
  [option: string]: unknown;
}

/** A group as passed to a constructor: `params` plus any options that override the defaults. */
export type ParamGroupInput<G extends ParamGroup> = { params: Parameter[] } & Partial<Omit<G, 'params'>>;

/** What optimiser constructors accept: a flat parameter list or a list of groups. */
export type ParamsInput<G extends ParamGroup> = Parameter[] | ParamGroupInput<G>[];

/** Per-parameter optimiser state. */
export type ParamState = Record<string, Float32Array | number>;

/** A packed group: hyperparameters as JSON values, `params` as indices into the optimiser's parameters. */
export type PackedParamGroup = { params: number[] } & Record<string, unknown>;

/** PyTorch-shaped optimiser state: `state` is keyed by the parameter's index (as a string). */
export interface OptimizerStateDict {
  state: Record<string, ParamState>;
  paramGroups: PackedParamGroup[];
}

/** Float32 rounding; every tensor operation in the optimisers rounds its result like PyTorch's float32 kernels. */
export const fr = Math.fround;

function cloneValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneValue);
  if (v instanceof Float32Array) return v.slice();
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cloneValue(x)]));
  return v;
}

/** Throws a one-line error naming `name` unless `value` is a finite number >= min (or within [min, max)). */
export function checkNumber(owner: string, name: string, value: unknown, min = 0, maxExclusive?: number): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || (maxExclusive !== undefined && value >= maxExclusive)) {
    const range = maxExclusive !== undefined ? `in [${min}, ${maxExclusive})` : `>= ${min}`;
    throw new Error(`${owner}: invalid ${name} ${String(value)} (expected a number ${range})`);
  }
}

export abstract class Optimizer<G extends ParamGroup = ParamGroup> {
  /** Default hyperparameters, used for options a group does not set (PyTorch's `defaults`). */
  readonly defaults: Readonly<Record<string, unknown>>;
  readonly paramGroups: G[] = [];
  readonly state = new Map<Parameter, ParamState>();
  /** Number of completed `step()` calls (PyTorch's `_step_count`, kept for schedulers). */
  stepCount = 0;

  /** `defaults` may omit `lr` (SGD's `lr=required`); then every group must set it. */
  protected constructor(params: ParamsInput<G>, defaults: Omit<G, 'params' | 'lr'> & { lr?: number }) {
    this.defaults = Object.freeze({ ...defaults });
    const list = params as unknown[];
    if (!Array.isArray(list) || list.length === 0) throw new Error(`${this.constructor.name}: params is an empty parameter list`);
    const groups = list[0] instanceof Parameter ? [{ params: list as Parameter[] } as ParamGroupInput<G>] : (list as ParamGroupInput<G>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group, filling unset options from the defaults (PyTorch's `add_param_group`). */
  addParamGroup(input: ParamGroupInput<G>): void {
    const name = this.constructor.name;
    if (!input || !Array.isArray(input.params)) throw new Error(`${name}: params must be a Parameter[] or a list of { params: Parameter[], ... } groups`);
    for (const p of input.params) if (!(p instanceof Parameter)) throw new Error(`${name}: params must contain only Parameter objects`);
    const overrides = Object.fromEntries(Object.entries(input).filter(([k, v]) => k !== 'params' && v !== undefined));
    const group = { ...(cloneValue(this.defaults) as object), ...(cloneValue(overrides) as object), params: [...input.params] } as unknown as G;
    if (typeof group.lr !== 'number') throw new Error(`${name}: parameter group ${this.paramGroups.length} does not specify lr, which has no default`);
    this.validateGroup(group);
    const seen = new Set<Parameter>();
    for (const g of this.paramGroups) for (const p of g.params) seen.add(p);
    for (const p of group.params) {
      if (seen.has(p)) throw new Error(`${name}: some parameters appear in more than one parameter group`);
      seen.add(p);
    }
    this.paramGroups.push(group);
  }

  /** Checks a group's hyperparameters; throws a one-line error naming the bad option. */
  protected abstract validateGroup(group: G): void;

  /** Updates every parameter of one group from its gradient. */
  protected abstract updateGroup(group: G): void;

  /** Sets every gradient to zero (PyTorch 1.13's `zero_grad(set_to_none=False)`; lazily, see Parameter). */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.zeroGrad();
  }

  /** Performs one optimisation step. A closure, if given, is called first and its loss returned. */
  step(closure?: () => number): number | undefined {
    const loss = closure ? closure() : undefined;
    for (const g of this.paramGroups) this.updateGroup(g);
    this.stepCount++;
    return loss;
  }

  /** Parameters of a group that take part in a step (PyTorch skips `grad is None`). */
  /**
   * A zeroed state array for parameter p: in its device's memory when it has one (a wasm backend's kernels then
   * read it in place instead of copying it in and out every step).
   */
  protected stateBuffer(p: Parameter, n: number): Float32Array {
    if (!p.device) return new Float32Array(n);
    const a = p.device.alloc(n);
    this.deviceArrays.set(a, p.device);
    return a;
  }
  /** The state arrays allocated in a device's memory, with the device (dispose() returns them). */
  private readonly deviceArrays = new Map<Float32Array, Backend>();

  /**
   * Returns the state arrays held in the parameters' devices' memory (see stateBuffer) to them and clears the
   * state; the optimiser starts afresh if stepped again.
   */
  dispose(): void {
    for (const [a, d] of this.deviceArrays) d.free(a);
    this.deviceArrays.clear();
    this.state.clear();
  }

  protected active(group: G): Parameter[] {
    return group.params.filter((p) => p.requiresGrad);
  }

  /** A deep copy of the optimiser state; see the module comment for its layout. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Parameter, number>();
    let next = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const packed: PackedParamGroup = { params: [] };
      for (const [k, v] of Object.entries(g)) if (k !== 'params') packed[k] = cloneValue(v);
      for (const p of g.params) {
        if (!index.has(p)) index.set(p, next++);
        packed.params.push(index.get(p)!);
      }
      return packed;
    });
    const state: Record<string, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[String(i)] = cloneValue(s) as ParamState;
    }
    return { state, paramGroups };
  }

  /** Restores state written by `stateDict()` (copies it; the argument is not retained). */
  loadStateDict(sd: OptimizerStateDict): void {
    const name = this.constructor.name;
    if (!sd || !Array.isArray(sd.paramGroups) || typeof sd.state !== 'object') throw new Error(`${name}: loadStateDict expects { state, paramGroups }`);
    if (sd.paramGroups.length !== this.paramGroups.length)
      throw new Error(`${name}: loaded state dict has ${sd.paramGroups.length} parameter groups, the optimizer has ${this.paramGroups.length}`);
    const byIndex = new Map<number, Parameter>();
    sd.paramGroups.forEach((sg, gi) => {
      const g = this.paramGroups[gi];
      if (!Array.isArray(sg.params) || sg.params.length !== g.params.length)
        throw new Error(`${name}: loaded parameter group ${gi} has ${sg.params?.length} parameters, the optimizer's has ${g.params.length}`);
      sg.params.forEach((id, k) => byIndex.set(id, g.params[k]));
    });
    const state = new Map<Parameter, ParamState>();
    for (const [key, s] of Object.entries(sd.state)) {
      const p = byIndex.get(Number(key));
      if (!p) throw new Error(`${name}: loaded state refers to unknown parameter ${key}`);
      for (const [k, v] of Object.entries(s))
        if (v instanceof Float32Array && v.length !== p.size)
          throw new Error(`${name}: loaded state ${key}.${k} has ${v.length} elements, the parameter has ${p.size}`);
      const st = cloneValue(s) as ParamState;
      for (const [k, v] of Object.entries(st)) if (v instanceof Float32Array) { const b = this.stateBuffer(p, v.length); b.set(v); st[k] = b; }
      state.set(p, st);
    }
    sd.paramGroups.forEach((sg, gi) => {
      const params = this.paramGroups[gi].params;
      const restored = { ...(cloneValue(sg) as object), params } as unknown as G;
      this.paramGroups[gi] = restored;
    });
    this.state.clear();
    for (const [p, s] of state) this.state.set(p, s);
    // the replaced state's device arrays go back to their devices
    const kept = new Set([...state.values()].flatMap((s) => Object.values(s).filter((v): v is Float32Array => v instanceof Float32Array)));
    for (const [a, d] of this.deviceArrays) if (!kept.has(a)) { d.free(a); this.deviceArrays.delete(a); }
  }
}

/**
 * Converts an optimiser state dict to safetensors form: Float32Array state as F32 tensors named
 * `state.<param index>.<key>`, everything else (scalars such as `step`, and the param groups) as
 * JSON in metadata `optimizer.scalars` / `optimizer.param_groups`.
 */
export function packOptimizerState(sd: OptimizerStateDict): { tensors: StateDict; metadata: Record<string, string> } {
  const tensors: StateDict = new Map();
  const scalars: Record<string, Record<string, unknown>> = {};
  for (const [i, s] of Object.entries(sd.state)) {
    for (const [k, v] of Object.entries(s)) {
      if (v instanceof Float32Array) tensors.set(`state.${i}.${k}`, f32([v.length], v.slice()));
      else (scalars[i] ??= {})[k] = v;
    }
  }
  return { tensors, metadata: { 'optimizer.scalars': JSON.stringify(scalars), 'optimizer.param_groups': JSON.stringify(sd.paramGroups) } };
}

/** Inverse of `packOptimizerState`. */
export function unpackOptimizerState(tensors: StateDict, metadata: Record<string, string>): OptimizerStateDict {
  const groups = metadata['optimizer.param_groups'];
  if (groups === undefined) throw new Error('unpackOptimizerState: metadata has no optimizer.param_groups');
  const state: Record<string, ParamState> = {};
  const scalars = JSON.parse(metadata['optimizer.scalars'] ?? '{}') as Record<string, Record<string, number>>;
  for (const [i, s] of Object.entries(scalars)) state[i] = { ...s };
  for (const [name, e] of tensors) {
    const m = /^state\.(\d+)\.(.+)$/.exec(name);
    if (!m || e.dtype !== 'F32') continue;
    (state[m[1]] ??= {})[m[2]] = (e.data as Float32Array).slice();
  }
  return { state, paramGroups: JSON.parse(groups) as PackedParamGroup[] };
}
