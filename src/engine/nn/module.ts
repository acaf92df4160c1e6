/**
 * The base of every layer, after torch.nn.Module: named children, parameters and buffers,
 * train/eval mode, state_dict()/load_state_dict() with PyTorch's key names. Unlike PyTorch there is
 * no autograd tape: each layer has an explicit `backward(dy)` beside its `forward(x)` that uses what
 * the forward saved. A layer's output lives in a buffer it owns and reuses: it is valid until the
 * layer's next forward (clone() it to keep it).
 */
import type { Backend } from '../kernels/index.js';
import type { BackwardOptions, ForwardOptions, Plannable } from '../kernels/planner.js';
import { ReferenceBackend } from '../kernels/reference.js';
import { f32, i64, type StateDict } from '../state.js';
import { Tensor } from '../tensor.js';
import { Parameter } from './parameter.js';
import type { Rng } from '../rng.js';
import { biasUniform, defaultRng, kaimingUniform } from './init.js';

export { Parameter };

let currentDefault: Backend = new ReferenceBackend();

/** The backend new modules are created on (reference until changed). */
export function getDefaultBackend(): Backend { return currentDefault; }
export function setDefaultBackend(b: Backend): void { currentDefault = b; }

/** A non-trainable state tensor (BatchNorm's running statistics). I64 buffers hold integers in a Float64Array. */
export interface BufferEntry { shape: number[]; dtype: 'F32' | 'I64'; data: Float32Array | Float64Array }

export interface LoadResult { missingKeys: string[]; unexpectedKeys: string[] }

export type { BackwardOptions, ForwardOptions };

/**
 * Two buffers that the layers of one model take turns to write their input gradients (dx) into during
 * a backward pass, instead of one buffer per layer. A layer's dx is read only by the layer before it,
 * whose own dx goes into the other buffer (`take` never hands out the one holding dy), so two suffice:
 * for the study's autoencoder 9.6 MB instead of 21 MB at batch 64. Set up by a model that knows the
 * gradient its backward returns is not kept (shareGradientBuffers); a layer on its own keeps its own dx.
 */
export class GradientBuffers {
  private readonly slots: ({ a: Float32Array; backend: Backend } | null)[] = [null, null];
  private last = 1;

  /** n floats from the buffer that does not hold `dy`. */
  take(backend: Backend, n: number, dy: Float32Array): Float32Array {
    const hit = (k: number): boolean => { const s = this.slots[k]; return !!s && s.a.buffer === dy.buffer && s.a.byteOffset < dy.byteOffset + dy.byteLength && dy.byteOffset < s.a.byteOffset + s.a.byteLength; };
    const fits = (k: number): boolean => (this.slots[k]?.a.length ?? 0) >= n;
    // the one without dy; when neither holds it, the one not handed out last, unless only the other is
    // large enough (so the next pass starts where the last one did and neither grows again)
    const other = 1 - this.last;
    const k = hit(0) ? 1 : hit(1) ? 0 : !fits(other) && fits(this.last) ? this.last : other;
    this.last = k;
    let s = this.slots[k];
    if (!s || s.backend !== backend || s.a.length < n) {
      if (s) s.backend.free(s.a);
      s = this.slots[k] = { a: backend.alloc(n), backend };
    }
    return s.a.length === n ? s.a : s.a.subarray(0, n);
  }

  /** Returns both buffers to their backend. */
  release(): void {
    for (const s of this.slots) s?.backend.free(s.a);
    this.slots.fill(null);
    this.last = 1;
  }

  /** Floats held (for tests and inspection). */
  get size(): number { return this.slots.reduce((t, s) => t + (s ? s.a.length : 0), 0); }
}

export abstract class Module implements Plannable {
  training = true;
  protected backend: Backend = currentDefault;
  private readonly _children: [string, Module][] = [];
  private readonly _params: [string, Parameter][] = [];
  private readonly _buffers: [string, BufferEntry][] = [];
  private readonly _scratch = new Map<string, Float32Array>();
  private _grads: GradientBuffers | null = null;

  // A layer may also declare what the planner (kernels/planner.ts, Plannable) reads when it runs inside a
  // Sequential: blockedInput, blockedOutput with outChannels, takesAct, fusableAct, inPlaceGrad; forward
  // then takes ForwardOptions and backward BackwardOptions as their second argument.

  abstract forward(x: Tensor): Tensor;
  /** Given dL/d(output), accumulates parameter gradients and returns dL/d(input). */
  abstract backward(dy: Tensor): Tensor;

  /** The PyTorch class name, for summaries. */
  get typeName(): string { return this.constructor.name; }

  /** Layer-specific part of the printed representation, like PyTorch's extra_repr(). */
  extraRepr(): string { return ''; }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this._children.push([name, m]);
    return m;
  }

  protected registerParameter(name: string, shape: number[]): Parameter {
    const n = shape.reduce((a, b) => a * b, 1);
    const p = new Parameter(shape, this.backend.alloc(n), this.backend.alloc(n));
    p.device = this.backend;
    this._params.push([name, p]);
    return p;
  }

  /**
   * The weight (and bias) of Conv2d, ConvTranspose2d and Linear, initialised as their PyTorch
   * reset_parameters() does: kaiming_uniform(a = sqrt(5)) and a bias uniform in +-1/sqrt(fan_in).
   */
  protected registerWeightAndBias(shape: number[], biasSize: number, bias: boolean, rng: Rng = defaultRng()): { weight: Parameter; bias: Parameter | null } {
    const w = this.registerParameter('weight', shape);
    const b = bias ? this.registerParameter('bias', [biasSize]) : null;
    kaimingUniform(rng, w.data, shape);
    if (b) biasUniform(rng, b.data, shape);
    return { weight: w, bias: b };
  }

  protected registerBuffer(name: string, shape: number[], dtype: 'F32' | 'I64' = 'F32'): BufferEntry {
    const n = shape.reduce((a, b) => a * b, 1);
    const b: BufferEntry = { shape, dtype, data: dtype === 'F32' ? this.backend.alloc(n) : new Float64Array(n) };
    this._buffers.push([name, b]);
    return b;
  }

  /**
   * n ones in backend memory (refilled on every call: scratch memory may have been released and reused,
   * see releaseScratch and to()).
   */
  protected ones(n: number): Float32Array {
    return this.scratch('ones', n).fill(1);
  }

  /**
   * Inference over n items in eval mode (the mode restored after), `batchSize` at a time: each batch of
   * x (items of `itemShape`) is copied into backend memory under `key` and handed to `run` as a tensor
   * [b, ...itemShape] with the index of its first item (a copy of what it needs must be taken there: the
   * next batch overwrites the buffers).
   */
  evalBatches(key: string, x: Float32Array, n: number, itemShape: readonly number[], batchSize: number,
              run: (xb: Tensor, start: number, b: number) => void): void {
    const per = itemShape.reduce((a, d) => a * d, 1), was = this.training;
    this.train(false);
    try {
      for (let i = 0; i < n; i += batchSize) {
        const b = Math.min(batchSize, n - i), xb = this.scratch(key, b * per);
        xb.set(x.subarray(i * per, (i + b) * per));
        run(new Tensor([b, ...itemShape], xb), i, b);
      }
    } finally { this.train(was); }
  }

  /** A reusable array of n floats in backend memory, kept between calls under `key`. */
  protected scratch(key: string, n: number): Float32Array {
    let a = this._scratch.get(key);
    if (!a || a.length < n) {
      if (a) this.backend.free(a);
      a = this.backend.alloc(n);
      this._scratch.set(key, a);
    }
    return a.length === n ? a : a.subarray(0, n);
  }

  /**
   * The buffer a layer's input gradient (n floats) is written to: one of the model's shared
   * GradientBuffers (not the one holding `dy`) when the model set them up, else this layer's own.
   */
  protected gradScratch(n: number, dy: Float32Array): Float32Array {
    return this._grads ? this._grads.take(this.backend, n, dy) : this.scratch('dx', n);
  }

  /**
   * Lets every layer of this module write its input gradient into two buffers shared by all of them
   * (GradientBuffers). Only for a model whose backward does not keep the gradients its children return.
   */
  protected shareGradientBuffers(): void {
    const g = new GradientBuffers();
    for (const [, m] of this.namedModules()) m._grads = g;
  }

  /** The shared gradient buffers (null: each layer has its own). */
  get gradientBuffers(): GradientBuffers | null { return this._grads; }

  namedChildren(): [string, Module][] { return [...this._children]; }
  children(): Module[] { return this._children.map(([, m]) => m); }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this._children) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [name, m] of this.namedModules(prefix))
      for (const [pn, p] of m._params) out.push([name ? `${name}.${pn}` : pn, p]);
    return out;
  }

  parameters(): Parameter[] { return this.namedParameters().map(([, p]) => p); }

  namedBuffers(prefix = ''): [string, BufferEntry][] {
    const out: [string, BufferEntry][] = [];
    for (const [name, m] of this.namedModules(prefix))
      for (const [bn, b] of m._buffers) out.push([name ? `${name}.${bn}` : bn, b]);
    return out;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this { return this.train(false); }

  /**
   * Sets every parameter's gradient to zero (lazily: see Parameter). Walks the modules directly: building
   * parameters()'s named list took 0.09 ms a training step of the study's model, 26 parameters.
   */
  zeroGrad(): void {
    for (const [, p] of this._params) p.zeroGrad();
    for (const [, m] of this._children) m.zeroGrad();
  }

  /** Moves parameters, gradients and buffers into another backend's memory (like .to(device)). */
  to(backend: Backend): this {
    for (const [, m] of this.namedModules()) {
      if (m.backend === backend) continue;
      const old = m.backend;
      const move = (a: Float32Array): Float32Array => {
        const b = backend.alloc(a.length);
        b.set(a);
        old.free(a);
        return b;
      };
      for (const [, p] of m._params) { p.data = move(p.data); p.grad = move(p.grad); p.device = backend; }
      for (const [, b] of m._buffers) if (b.dtype === 'F32') b.data = move(b.data as Float32Array);
      for (const a of m._scratch.values()) old.free(a);
      m._scratch.clear();
      m._grads?.release();
      m.backend = backend;
    }
    return this;
  }

  /**
   * Returns every scratch buffer (layer outputs, gradients) of this module and its children to the
   * backend, and drops the tensors the last forward pass kept; they are allocated again when next
   * needed. Frees a trained model's training buffers (a backward pass needs a forward pass first).
   */
  releaseScratch(): void {
    for (const [, m] of this.namedModules()) {
      for (const a of m._scratch.values()) m.backend.free(a);
      m._scratch.clear();
      m._grads?.release();
      m.forgetForward();
    }
  }

  /**
   * Returns every array this module and its children hold in backend memory (parameters, gradients, buffers,
   * scratch) to the backend, like TensorFlow.js's `dispose()`: on the wasm backend that memory is only reused
   * once freed (a page that trains a second model on the same backend would otherwise keep the first one's).
   * The module is empty afterwards (its parameters and buffers have no elements) and cannot be used again.
   */
  dispose(): void {
    const empty = new Float32Array(0);
    for (const [, m] of this.namedModules()) {
      for (const [, p] of m._params) {
        m.backend.free(p.data);
        m.backend.free(p.gradBuffer);
        p.data = empty;
        p.grad = empty;
      }
      for (const [, b] of m._buffers) if (b.dtype === 'F32') { m.backend.free(b.data as Float32Array); b.data = empty; }
    }
    this.releaseScratch();
  }

  /**
   * Drops what the last forward pass kept for backward (its input and output tensors, views of
   * scratch memory), so that released scratch is not still reachable from here (releaseScratch).
   */
  protected forgetForward(): void { /* a layer that keeps tensors drops them */ }

  /** The backend this module computes on. */
  get device(): Backend { return this.backend; }

  /** Parameters and buffers by PyTorch's names, in PyTorch's order (each module's parameters, then its buffers). Copies. */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, m] of this.namedModules()) {
      const key = (k: string): string => (name ? `${name}.${k}` : k);
      for (const [pn, p] of m._params) sd.set(key(pn), f32([...p.shape], p.data.slice()));
      for (const [bn, b] of m._buffers)
        sd.set(key(bn), b.dtype === 'F32'
          ? f32([...b.shape], (b.data as Float32Array).slice())
          : i64([...b.shape], BigInt64Array.from(b.data as Float64Array, (v) => BigInt(Math.round(v)))));
    }
    return sd;
  }

  /**
   * Copies tensors from a state dict. With strict (the default) missing or unexpected keys are an
   * error, as in PyTorch; a shape mismatch is always an error. The message lists every problem:
   * `Error(s) in loading state_dict for AutoEncoder: Missing key(s) in state_dict: "a", "b". ...`
   */
  loadStateDict(sd: StateDict, strict = true): LoadResult {
    const own = new Map<string, { shape: number[]; dtype: 'F32' | 'I64'; data: Float32Array | Float64Array }>();
    for (const [n, p] of this.namedParameters()) own.set(n, { shape: p.shape, dtype: 'F32', data: p.data });
    for (const [n, b] of this.namedBuffers()) own.set(n, b);
    const missingKeys = [...own.keys()].filter((k) => !sd.has(k));
    const unexpectedKeys = [...sd.keys()].filter((k) => !own.has(k));
    const mismatches: string[] = [];
    for (const [k, t] of own) {
      const e = sd.get(k);
      if (!e) continue;
      const same = e.shape.length === t.shape.length && e.shape.every((d, i) => d === t.shape[i]);
      if (!same) mismatches.push(`size mismatch for ${k}: copying a param with shape [${e.shape.join(', ')}] from checkpoint, the shape in current model is [${t.shape.join(', ')}].`);
    }
    const errs: string[] = [];
    if (strict && missingKeys.length) errs.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length) errs.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    errs.push(...mismatches);
    if (errs.length) throw new Error(`Error(s) in loading state_dict for ${this.typeName}: ${errs.join(' ')}`);
    for (const [k, t] of own) {
      const e = sd.get(k);
      if (!e) continue;
      if (t.dtype === 'I64') t.data.set(Array.from(e.data as ArrayLike<number | bigint>, Number));
      else t.data.set(e.dtype === 'F32' ? (e.data as Float32Array) : Float32Array.from(e.data as BigInt64Array, Number));
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Number of parameter elements (trainable) and buffer elements (not trainable). */
  countParameters(): { trainable: number; nonTrainable: number } {
    let trainable = 0, nonTrainable = 0;
    for (const [, p] of this.namedParameters()) trainable += p.size;
    for (const [, b] of this.namedBuffers()) nonTrainable += b.data.length;
    return { trainable, nonTrainable };
  }

  /** A printed representation like PyTorch's. */
  toString(): string {
    const kids = this._children;
    const head = `${this.typeName}(${this.extraRepr()}`;
    if (!kids.length) return `${head})`;
    const inner = kids.map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`).join('\n');
    return `${head}\n${inner}\n)`;
  }
}

/** What backward returns when the input needs no gradient (a first layer). */
export const EMPTY = new Tensor([0], new Float32Array(0));

