import type { Layout } from './kernels/index.js';

/**
 * A float32 tensor: a shape over a flat array (usually memory of the active backend), NCHW unless
 * `layout` says 'blocked' (an activation inside a Sequential on a backend with a channel-blocked
 * layout; Sequential hands out NCHW tensors only).
 */
export class Tensor {
  constructor(public readonly shape: readonly number[], public readonly data: Float32Array,
              public readonly layout: Layout = 'nchw') {
    const n = numel(shape);
    if (data.length < n) throw new Error(`Tensor: data has ${data.length} elements, shape [${shape.join(', ')}] needs ${n}`);
  }

  get size(): number { return numel(this.shape); }

  /** The same data with another shape (no copy). */
  view(...shape: number[]): Tensor {
    const inferred = shape.indexOf(-1);
    if (inferred >= 0) {
      const rest = shape.reduce((a, d, i) => (i === inferred ? a : a * d), 1);
      shape[inferred] = this.size / rest;
    }
    if (numel(shape) !== this.size) throw new Error(`view: cannot view [${this.shape.join(', ')}] as [${shape.join(', ')}]`);
    if (this.layout !== 'nchw') throw new Error(`view: a tensor in the ${this.layout} layout has no views`);
    return new Tensor(shape, this.data);
  }

  /** A copy in ordinary JavaScript memory, safe to keep after the next forward pass. */
  clone(): Tensor {
    return new Tensor([...this.shape], this.data.slice(0, this.size), this.layout);
  }

  /** The elements as a plain array (for small tensors, printing and tests). */
  toArray(): number[] {
    return Array.from(this.data.subarray(0, this.size));
  }

  static from(shape: readonly number[], values: ArrayLike<number>): Tensor {
    return new Tensor([...shape], Float32Array.from(values));
  }

  static zeros(shape: readonly number[]): Tensor {
    return new Tensor([...shape], new Float32Array(numel(shape)));
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
