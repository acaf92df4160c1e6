/** A trainable tensor with its gradient, both in the owning module's backend memory. */
export class Parameter {
  constructor(
    public readonly shape: number[],
    public data: Float32Array,
    public grad: Float32Array,
    public requiresGrad = true,
  ) {}

  get size(): number { return this.data.length; }

  zeroGrad(): void { this.grad.fill(0); }
}
