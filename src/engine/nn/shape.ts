/**
 * Flatten and Unflatten, after torch.nn.Flatten and torch.nn.Unflatten: views, no copies (except that
 * Flatten first brings a blocked activation back to NCHW, and its gradient back to blocked).
 */
import type { Layout } from '../kernels/index.js';
import { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class Flatten extends Module {
  private inShape: readonly number[] = [];
  private inLayout: Layout = 'nchw';
  override readonly blockedInput = 'any' as const;
  constructor(readonly startDim = 1, readonly endDim = -1) { super(); }
  override extraRepr(): string { return `start_dim=${this.startDim}, end_dim=${this.endDim}`; }

  outputShape(s: readonly number[]): number[] {
    const end = this.endDim < 0 ? s.length + this.endDim : this.endDim;
    const mid = s.slice(this.startDim, end + 1).reduce((a, b) => a * b, 1);
    return [...s.slice(0, this.startDim), mid, ...s.slice(end + 1)];
  }

  forward(x: Tensor): Tensor {
    this.inShape = x.shape;
    this.inLayout = x.layout;
    return new Tensor(this.outputShape(x.shape), this.toLayout(x, 'nchw', 'plain').data);
  }

  backward(dy: Tensor): Tensor {
    return this.toLayout(new Tensor(this.inShape, dy.data), this.inLayout, 'dxLayout');
  }
}

export class Unflatten extends Module {
  private inShape: readonly number[] = [];
  /** Layout of the output (Sequential may choose 'blocked' for an [N, C, H, W] output; see Layout). */
  outputLayout: Layout = 'nchw';
  constructor(readonly dim: number, readonly sizes: readonly number[]) { super(); }
  /** The channels of an [N, C, H, W] output (0 for other shapes, which stay NCHW). */
  get outChannels(): number { return this.dim === 1 && this.sizes.length === 3 ? this.sizes[0] : 0; }
  override extraRepr(): string { return `dim=${this.dim}, unflattened_size=(${this.sizes.join(', ')})`; }

  outputShape(s: readonly number[]): number[] {
    const n = this.sizes.reduce((a, b) => a * b, 1);
    if (s[this.dim] !== n) throw new Error(`Unflatten: dimension ${this.dim} of [${s.join(', ')}] is not ${n} = ${this.sizes.join('*')}`);
    return [...s.slice(0, this.dim), ...this.sizes, ...s.slice(this.dim + 1)];
  }

  forward(x: Tensor): Tensor {
    if (x.layout !== 'nchw') throw new Error('Unflatten: expected an NCHW input');
    this.inShape = x.shape;
    return this.toLayout(new Tensor(this.outputShape(x.shape), x.data), this.outputLayout, 'blocked');
  }

  backward(dy: Tensor): Tensor { return new Tensor(this.inShape, this.toLayout(dy, 'nchw', 'dxPlain').data); }
}
