/**
 * Sequential, after torch.nn.Sequential: children named "0", "1", ... so that state-dict keys match
 * PyTorch's. A BatchNorm2d directly followed by an activation runs as one fused kernel (the
 * activation's own forward and backward are then skipped); the result is the same.
 */
import { NO_ACT } from '../kernels/index.js';
import { Tensor } from '../tensor.js';
import { Activation } from './activation.js';
import { BatchNorm2d } from './batchnorm.js';
import { choosesLayout, Module } from './module.js';

/** Time spent per layer (milliseconds), filled when `Sequential.profiler` is set. */
export interface LayerTimes { forward: number; backward: number; calls: number }

/** Whether two arrays share any memory. */
function overlaps(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

export class Sequential extends Module {
  /** When set, every Sequential adds each child's forward and backward time under `<prefix>.<index> <Type>`. */
  static profiler: Map<string, LayerTimes> | null = null;
  /** Name used in profiles. */
  profileName = '';
  readonly layers: Module[];
  /** Set false to run every layer on its own (for testing the fusion). */
  fuse = true;
  /**
   * On a backend with a channel-blocked layout (native), let convolutions hand blocked activations to
   * the layers after them (no reorders between layers). Inputs and outputs of the Sequential stay NCHW.
   * Set false to keep every activation NCHW.
   */
  blockedLayouts = true;
  /** The layout of each child's output in the last forward pass (for inspection and tests). */
  readonly lastLayouts: Tensor['layout'][] = [];
  private fusedAt = new Set<number>();
  private outLayout: Tensor['layout'] = 'nchw';

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  get length(): number { return this.layers.length; }
  at(i: number): Module { return this.layers[i]; }

  forward(x: Tensor): Tensor {
    this.fusedAt.clear();
    const L = this.layers;
    const block = this.blockedLayouts ? this.backend.channelBlock ?? 0 : 0;
    L.forEach((m, i) => {
      if (!choosesLayout(m)) return;
      // blocked only if every layer that will see it takes it: layers that keep the layout, then one that
      // accepts any layout (or the end of this Sequential, which converts back to NCHW)
      let ok = block > 0 && m.outChannels > 0 && m.outChannels % block === 0, j = i + 1;
      while (ok && j < L.length && L[j].blockedInput === 'keep') j++;
      ok &&= j === L.length || L[j].blockedInput === 'any';
      m.outputLayout = ok ? 'blocked' : 'nchw';
    });
    for (let i = 0; i < L.length; i++) {
      const m = L[i], next = L[i + 1];
      const t0 = Sequential.profiler ? performance.now() : 0;
      const at = i;
      if (this.fuse && m instanceof BatchNorm2d && next instanceof Activation && next.fusable) {
        m.fusedAct = next.act;
        x = m.forward(x);
        m.fusedAct = NO_ACT;
        this.fusedAt.add(i + 1);
        i++;
      } else {
        x = m.forward(x);
      }
      for (let k = at; k <= i; k++) this.lastLayouts[k] = x.layout;
      if (Sequential.profiler) this.record(at, performance.now() - t0, 'forward');
    }
    // the choice holds for this pass only (the layers saved it for their backward): used on its own,
    // a layer returns NCHW again
    for (const m of L) if (choosesLayout(m)) m.outputLayout = 'nchw';
    this.lastLayouts.length = L.length;
    this.outLayout = x.layout;
    return this.toLayout(x, 'nchw', 'out');
  }

  backward(dy: Tensor): Tensor {
    const given = dy;
    dy = this.toLayout(dy, this.outLayout, 'dyLayout');
    for (let i = this.layers.length - 1; i >= 0; i--) {
      if (this.fusedAt.has(i)) continue;
      const t0 = Sequential.profiler ? performance.now() : 0;
      const m = this.layers[i];
      // the caller's dy is never overwritten; gradients made by the layers after this one may be
      m.gradInPlace = !overlaps(dy.data, given.data);
      try {
        dy = m.backward(dy);
      } finally {
        m.gradInPlace = false;
      }
      if (Sequential.profiler) this.record(i, performance.now() - t0, 'backward');
    }
    return dy;
  }

  private record(i: number, ms: number, pass: 'forward' | 'backward'): void {
    const m = this.layers[i];
    const fused = this.fusedAt.has(i + 1) ? `+${this.layers[i + 1].typeName}` : '';
    const key = `${this.profileName}.${i} ${m.typeName}${fused}`;
    const p = Sequential.profiler!;
    const e = p.get(key) ?? { forward: 0, backward: 0, calls: 0 };
    e[pass] += ms;
    if (pass === 'forward') e.calls++;
    p.set(key, e);
  }
}
