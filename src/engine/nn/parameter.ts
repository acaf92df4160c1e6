import type { Backend } from '../kernels/index.js';

/**
 * A trainable tensor with its gradient, both in the owning module's backend memory.
 *
 * `zeroGrad()` zeroes the gradient lazily: it only notes that the gradient is zero, and the first layer
 * to compute a gradient for this parameter writes it in place of the zeros (`gradOut` / `gradIn`)
 * instead of adding it to a buffer of zeros: one pass over every gradient less per step for the zero
 * fill and one for the addition. Reading `grad` while the zeros are pending writes them first, so what
 * anyone reads is exactly what PyTorch 1.13's `zero_grad(set_to_none=False)` then `backward()` give.
 */
export class Parameter {
  /** The backend whose memory holds data and grad (set by the owning module); optimisers use its kernels. */
  device: Backend | null = null;
  private g: Float32Array;
  /** The gradient is zero, but its buffer may still hold an older one. */
  private zeroPending = false;

  constructor(
    public readonly shape: number[],
    public data: Float32Array,
    grad: Float32Array,
    public requiresGrad = true,
  ) {
    this.g = grad;
  }

  get size(): number { return this.data.length; }

  /** The gradient (its pending zeros written first). */
  get grad(): Float32Array {
    if (this.zeroPending) { this.g.fill(0); this.zeroPending = false; }
    return this.g;
  }
  set grad(a: Float32Array) { this.g = a; this.zeroPending = false; }

  /** Sets the gradient to zero (lazily: see the class). */
  zeroGrad(): void { this.zeroPending = true; }

  /**
   * Where a layer writes this parameter's gradient from one backward pass: the gradient buffer itself when
   * it is zero (the result then replaces the zeros), else `scratch()`, whose contents `gradIn` adds.
   */
  gradOut(scratch: () => Float32Array): Float32Array {
    return this.zeroPending ? this.g : scratch();
  }

  /** Takes a gradient written where `gradOut` said: added to the gradient, or (written in place) kept as it is. */
  gradIn(src: Float32Array): void {
    if (src === this.g) { this.zeroPending = false; return; }
    const g = this.grad;
    for (let i = 0; i < g.length; i++) g[i] += src[i];
  }

  /**
   * For a kernel that computes C = A B + beta C straight into the gradient (a GEMM): beta 0 when the gradient
   * is zero (its buffer is then overwritten, not read), else 1. Call `gradIn(grad)` after the kernel.
   */
  get gradBeta(): 0 | 1 { return this.zeroPending ? 0 : 1; }
  /** The gradient buffer as it is (for a kernel told `gradBeta`). */
  get gradBuffer(): Float32Array { return this.g; }
}
