/** Linear, after torch.nn.Linear: y = x W^T + b, weight [out, in]. */
import type { Rng } from '../rng.js';
import { Tensor } from '../tensor.js';
import { EMPTY, Module, type Parameter } from './module.js';

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  needsInputGrad = true;
  private x: Tensor | null = null;

  protected override forgetForward(): void { this.x = null; }

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; rng?: Rng } = {}) {
    super();
    const shape = [outFeatures, inFeatures];
    ({ weight: this.weight, bias: this.bias } = this.registerWeightAndBias(shape, outFeatures, opts.bias !== false, opts.rng));
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }

  private rows(x: Tensor): number {
    if (x.layout !== 'nchw') throw new Error('Linear: expected an input in the NCHW layout');
    const last = x.shape[x.shape.length - 1];
    if (last !== this.inFeatures) throw new Error(`Linear: expected input [..., ${this.inFeatures}], got [${x.shape.join(', ')}]`);
    return x.size / this.inFeatures;
  }

  forward(x: Tensor): Tensor {
    const N = this.rows(x), O = this.outFeatures;
    const y = this.scratch('y', N * O);
    // y = b (each row), then y += x W^T
    if (this.bias) for (let n = 0; n < N; n++) y.set(this.bias.data, n * O);
    this.backend.gemm(false, true, N, O, this.inFeatures, 1, x.data, this.weight.data, this.bias ? 1 : 0, y);
    this.x = x;
    return new Tensor([...x.shape.slice(0, -1), O], y);
  }

  backward(dy: Tensor): Tensor {
    const x = this.x;
    if (!x) throw new Error('Linear.backward called before forward');
    const N = this.rows(x), O = this.outFeatures, I = this.inFeatures;
    // dW += dy^T x (dW = when the gradient is zero)
    const w = this.weight;
    this.backend.gemm(true, false, O, I, N, 1, dy.data, x.data, w.gradBeta, w.gradBuffer);
    w.gradIn(w.gradBuffer);
    // db += 1^T dy (the column sums of dy)
    const b = this.bias;
    if (b) {
      this.backend.gemm(false, false, 1, O, N, 1, this.ones(N), dy.data, b.gradBeta, b.gradBuffer);
      b.gradIn(b.gradBuffer);
    }
    if (!this.needsInputGrad) return EMPTY;
    const dx = this.gradScratch(N * I, dy.data);
    this.backend.gemm(false, false, N, I, O, 1, dy.data, this.weight.data, 0, dx);
    return new Tensor(x.shape, dx);
  }
}
