/**
 * Flatten and Unflatten, after torch.nn.Flatten and torch.nn.Unflatten: views, no copies. Inside a
 * Sequential on a backend with a blocked layout the planner converts around them (a blocked activation
 * before Flatten, Unflatten's output when the layers after it take it blocked).
 */
import { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class Flatten extends Module {
  private inShape: readonly number[] = [];
  /** NCHW only, but a chain of blocked activations may end here (the planner reorders first). */
  readonly blockedInput = 'convert' as const;
  constructor(readonly startDim = 1, readonly endDim = -1) { super(); }
  override extraRepr(): string { return `start_dim=${this.startDim}, end_dim=${this.endDim}`; }

  outputShape(s: readonly number[]): number[] {
    const end = this.endDim < 0 ? s.length + this.endDim : this.endDim;
    const mid = s.slice(this.startDim, end + 1).reduce((a, b) => a * b, 1);
    return [...s.slice(0, this.startDim), mid, ...s.slice(end + 1)];
  }

  forward(x: Tensor): Tensor {
    if (x.layout !== 'nchw') throw new Error('Flatten: expected an NCHW input');
    this.inShape = x.shape;
    return new Tensor(this.outputShape(x.shape), x.data);
  }

  backward(dy: Tensor): Tensor { return new Tensor(this.inShape, dy.data); }
}

export class Unflatten extends Module {
  private inShape: readonly number[] = [];
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

  forward(x: Tensor): Tensor {
    if (x.layout !== 'nchw') throw new Error('Unflatten: expected an NCHW input');
    this.inShape = x.shape;
    return new Tensor(this.outputShape(x.shape), x.data);
  }

  backward(dy: Tensor): Tensor {
    if (dy.layout !== 'nchw') throw new Error('Unflatten.backward: expected an NCHW gradient');
    return new Tensor(this.inShape, dy.data);
  }
}
