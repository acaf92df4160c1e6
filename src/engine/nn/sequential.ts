/**
 * Sequential, after torch.nn.Sequential: children named "0", "1", ... so that state-dict keys match
 * PyTorch's. Forward runs the children in order, backward in reverse. How they run on the backend (a
 * BatchNorm2d fused with the activation after it, activations kept in a blocked layout between layers) is
 * the planner's choice (kernels/planner.ts), made afresh each forward pass; the result is the same.
 */
import type { Layout } from '../kernels/index.js';
import { overlaps, planChain, reorderTo, type Plan, type Step } from '../kernels/planner.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

/** Time spent per layer (milliseconds), filled when `Sequential.profiler` is set. */
export interface LayerTimes { forward: number; backward: number; calls: number }

export class Sequential extends Module {
  /** When set, every Sequential adds each child's forward and backward time under `<prefix>.<index> <Type>`. */
  static profiler: Map<string, LayerTimes> | null = null;
  /** Name used in profiles. */
  profileName = '';
  readonly layers: Module[];
  /** Set false to run every layer on its own (for testing the fusion). */
  fuse = true;
  /**
   * On a backend with a channel-blocked layout (native), let activations stay blocked between layers.
   * Inputs and outputs of the Sequential stay NCHW. Set false to keep every activation NCHW.
   */
  blockedLayouts = true;
  private plan: Plan | null = null;

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  get length(): number { return this.layers.length; }
  at(i: number): Module { return this.layers[i]; }

  /** The layout of each child's output in the last forward pass (for inspection and tests). */
  get lastLayouts(): Layout[] { return this.plan ? [...this.plan.layouts] : []; }

  forward(x: Tensor): Tensor {
    const plan = this.plan = planChain(this.layers, this.backend, { fuse: this.fuse, blocked: this.blockedLayouts });
    plan.steps.forEach((s, k) => {
      const t0 = Sequential.profiler ? performance.now() : 0;
      if (s.kind === 'reorder') x = reorderTo(this.backend, x, s.to, this.scratch(`fwd${k}`, x.size));
      else x = s.opts ? s.layer.forward(x, s.opts) : s.layer.forward(x);
      if (Sequential.profiler) this.record(s, performance.now() - t0, 'forward');
    });
    return x;
  }

  backward(dy: Tensor): Tensor {
    if (!this.plan) throw new Error('Sequential.backward called before forward');
    const steps = this.plan.steps, given = dy.data;
    for (let k = steps.length - 1; k >= 0; k--) {
      const s = steps[k];
      if (s.kind === 'layer' && (s.backwardInNext || s.backwardInPrev)) continue;  // a neighbour's backward computes this one's
      const t0 = Sequential.profiler ? performance.now() : 0;
      if (s.kind === 'reorder') dy = reorderTo(this.backend, dy, s.from, this.scratch(`bwd${k}`, dy.size));
      else if (s.layer.inPlaceGrad) dy = s.layer.backward(dy, { inPlace: !overlaps(dy.data, given) });
      else dy = s.layer.backward(dy);
      if (Sequential.profiler) this.record(s, performance.now() - t0, 'backward');
    }
    return dy;
  }

  /** Adds a layer step's time to the profile (reorders between layers are not counted). */
  private record(s: Step, ms: number, pass: 'forward' | 'backward'): void {
    if (s.kind !== 'layer') return;
    const i = s.index, fused = s.fused ? `+${this.layers[i + 1].typeName}` : '';
    const key = `${this.profileName}.${i} ${this.layers[i].typeName}${fused}`;
    const p = Sequential.profiler!;
    const e = p.get(key) ?? { forward: 0, backward: 0, calls: 0 };
    e[pass] += ms;
    if (pass === 'forward') e.calls++;
    p.set(key, e);
  }
}
