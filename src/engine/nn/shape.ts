/**
 * Flatten and Unflatten, after torch.nn.Flatten and torch.nn.Unflatten: views, no copies. Inside a
 * Sequential on a backend with a blocked layout the planner converts around them (a blocked activation
 * before Flatten, Unflatten's output when the layers after it take it blocked), except next to a Linear:
 * there the view passes the blocked activation on as blocked features (`ForwardOptions.layout` 'blocked',
 * kernels/index.ts blockedFeatureOrder) and the Linear permutes its weights instead.
 */
import type { ForwardOptions } from '../kernels/planner.js';
import { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class Flatten extends Module {
  private inShape: readonly number[] = [];
  readonly view = true;
  /** NCHW, or (asked by the planner) a blocked activation passed on as blocked features; else the planner reorders first. */
  readonly blockedInput = 'convert' as const;
  /** Flattening [N, C, H, W] to [N, C*H*W] (start_dim 1, end_dim -1), it can hand a blocked activation on as features. */
  readonly viewsBlocked: boolean;
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
    this.viewsBlocked = startDim === 1 && endDim === -1;
  }
  override extraRepr(): string { return `start_dim=${this.startDim}, end_dim=${this.endDim}`; }

  outputShape(s: readonly number[]): number[] {
    const end = this.endDim < 0 ? s.length + this.endDim : this.endDim;
    const mid = s.slice(this.startDim, end + 1).reduce((a, b) => a * b, 1);
    return [...s.slice(0, this.startDim), mid, ...s.slice(end + 1)];
  }

  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    const view = opts.layout === 'blocked';
    if (x.layout !== (view ? 'blocked' : 'nchw')) throw new Error(`Flatten: expected an ${view ? 'blocked' : 'NCHW'} input`);
    if (view && (this.startDim !== 1 || x.shape.length !== 4 || this.outputShape(x.shape).length !== 2))
      throw new Error(`Flatten: a blocked input [N, C, H, W] flattens to [N, C*H*W] only, got [${x.shape.join(', ')}] from dim ${this.startDim}`);
    this.inShape = x.shape;
    return new Tensor(this.outputShape(x.shape), x.data, x.layout);
  }

  backward(dy: Tensor): Tensor { return new Tensor(this.inShape, dy.data, dy.layout); }
}

export class Unflatten extends Module {
  private inShape: readonly number[] = [];
  readonly view = true;
  /** An [N, C, H, W] output may be handed on blocked (the planner reorders it). */
  readonly blockedOutput = 'convert' as const;
  /** The channels of an [N, C, H, W] output (0 for other shapes, which stay NCHW). */
  readonly outChannels: number;
  constructor(readonly dim: number, readonly sizes: readonly number[]) {
    super();
    this.outChannels = dim === 1 && sizes.length === 3 ? sizes[0] : 0;
  }
  override extraRepr(): string { return `dim=${this.dim}, unflattened_size=(${this.sizes.join(', ')})`; }

  outputShape(s: readonly number[]): number[] {
    const n = this.sizes.reduce((a, b) => a * b, 1);
    if (s[this.dim] !== n) throw new Error(`Unflatten: dimension ${this.dim} of [${s.join(', ')}] is not ${n} = ${this.sizes.join('*')}`);
    return [...s.slice(0, this.dim), ...this.sizes, ...s.slice(this.dim + 1)];
  }

  /** Unflattening dim 1 to [C, H, W], it can view a Linear's blocked features as a blocked activation. */
  get viewsBlocked(): boolean { return this.outChannels > 0; }
  private layout: 'nchw' | 'blocked' = 'nchw';

  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    // asked for a blocked output by the planner only after a Linear that wrote blocked features
    const view = opts.layout === 'blocked';
    if (view && (this.dim !== 1 || this.outChannels === 0 || x.shape.length !== 2))
      throw new Error(`Unflatten: blocked features unflatten to [N, C, H, W] only, got [${x.shape.join(', ')}] at dim ${this.dim}`);
    if (x.layout !== (view ? 'blocked' : 'nchw')) throw new Error(`Unflatten: expected an ${view ? 'blocked' : 'NCHW'} input`);
    this.inShape = x.shape;
    this.layout = view ? 'blocked' : 'nchw';
    return new Tensor(this.outputShape(x.shape), x.data, this.layout);
  }

  backward(dy: Tensor): Tensor {
    if (dy.layout !== this.layout) throw new Error(`Unflatten.backward: expected a gradient in the ${this.layout} layout of the output`);
    return new Tensor(this.inShape, dy.data, dy.layout);
  }
}
