import type { Backend } from '../kernels/index.js';

/** A trainable tensor with its gradient, both in the owning module's backend memory. */
export class Parameter {
  /** The backend whose memory holds data and grad (set by the owning module); optimisers use its kernels. */
  device: Backend | null = null;

  constructor(
    public readonly shape: number[],
    public data: Float32Array,
    public grad: Float32Array,
    public requiresGrad = true,
  ) {}

  get size(): number { return this.data.length; }

  zeroGrad(): void { this.grad.fill(0); }
}
