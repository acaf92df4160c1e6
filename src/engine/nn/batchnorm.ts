/**
 * BatchNorm2d, after torch.nn.BatchNorm2d: normalises each channel over (N, H, W) with the batch's
 * statistics in training (updating running_mean and the unbiased running_var with `momentum`, and
 * num_batches_tracked) and with the running statistics in eval mode.
 * A following activation can be fused in (Sequential does this): the kernel then writes act(bn(x))
 * and the backward pass takes the gradient of the activation's output.
 */
import { NO_ACT, type Act } from '../kernels/index.js';
import { Tensor } from '../tensor.js';
import { accumulate, type BufferEntry, Module, type Parameter } from './module.js';

export interface BatchNormOptions { eps?: number; momentum?: number }

export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: BufferEntry;
  readonly runningVar: BufferEntry;
  readonly numBatchesTracked: BufferEntry;
  readonly eps: number;
  readonly momentum: number;
  /** The activation fused after the normalisation (set by Sequential for one forward/backward). */
  fusedAct: Act = NO_ACT;
  override readonly blockedInput = 'keep' as const;
  private x: Tensor | null = null;
  private y: Tensor | null = null;
  private usedBatchStats = true;
  private act: Act = NO_ACT;

  constructor(readonly numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = this.registerParameter('weight', [numFeatures]);
    this.bias = this.registerParameter('bias', [numFeatures]);
    this.runningMean = this.registerBuffer('running_mean', [numFeatures]);
    this.runningVar = this.registerBuffer('running_var', [numFeatures]);
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', [], 'I64');
    this.weight.data.fill(1);
    this.runningVar.data.fill(1);
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=True, track_running_stats=True`;
  }

  private dims(x: Tensor): [number, number, number] {
    const [N, C] = x.shape;
    if (x.shape.length < 2 || C !== this.numFeatures)
      throw new Error(`BatchNorm2d: expected input [N, ${this.numFeatures}, H, W], got [${x.shape.join(', ')}]`);
    return [N, C, x.size / (N * C)];
  }

  forward(x: Tensor): Tensor {
    const [N, C, HW] = this.dims(x);
    const y = this.scratch('y', x.size);
    this.act = this.fusedAct;
    this.usedBatchStats = this.training;
    if (this.training) {
      const M = N * HW;
      if (M < 2) throw new Error(`BatchNorm2d: expected more than 1 value per channel when training, got input [${x.shape.join(', ')}]`);
      const mean = this.scratch('mean', C), invstd = this.scratch('invstd', C);
      this.backend.batchNormTrain(N, C, HW, x.data, this.weight.data, this.bias.data, this.eps, this.act, y, mean, invstd, x.layout);
      const m = this.momentum, rm = this.runningMean.data, rv = this.runningVar.data;
      for (let c = 0; c < C; c++) {
        const biasedVar = 1 / (invstd[c] * invstd[c]) - this.eps;
        rm[c] = (1 - m) * rm[c] + m * mean[c];
        rv[c] = (1 - m) * rv[c] + m * biasedVar * M / (M - 1);
      }
      this.numBatchesTracked.data[0] += 1;
    } else {
      const { scale, shift } = this.evalAffine(C);
      this.backend.channelAffine(N, C, HW, x.data, scale, shift, this.act, y, x.layout);
    }
    this.x = x;
    this.y = new Tensor(x.shape, y, x.layout);
    return this.y;
  }

  /** Eval mode folded into y = x * scale + shift. */
  private evalAffine(C: number): { scale: Float32Array; shift: Float32Array } {
    const scale = this.scratch('scale', C), shift = this.scratch('shift', C);
    const rm = this.runningMean.data, rv = this.runningVar.data;
    for (let c = 0; c < C; c++) {
      scale[c] = this.weight.data[c] / Math.sqrt(rv[c] + this.eps);
      shift[c] = this.bias.data[c] - rm[c] * scale[c];
    }
    return { scale, shift };
  }

  backward(dy: Tensor): Tensor {
    const x = this.x, y = this.y;
    if (!x || !y) throw new Error('BatchNorm2d.backward called before forward');
    const [N, C, HW] = this.dims(x);
    dy = this.toLayout(dy, x.layout, 'dyLayout');
    const dx = this.gradInPlace ? dy.data.subarray(0, x.size) : this.scratch('dx', x.size);
    const dg = this.scratch('dgamma', C), db = this.scratch('dbeta', C);
    if (this.usedBatchStats) {
      this.backend.batchNormBackward(N, C, HW, x.data, y.data, dy.data, this.weight.data,
        this.scratch('mean', C), this.scratch('invstd', C), this.act, dx, dg, db, x.layout, this.bias.data);
    } else {
      // eval mode: y = act(x * scale + shift) with fixed statistics
      this.backend.activationBackward(this.act, x.size, y.data, y.data, dy.data, dx);
      const rm = this.runningMean.data, rv = this.runningVar.data;
      dg.fill(0); db.fill(0);
      // element (n, c, i) is at n*C*HW + c*HW + i in NCHW, at n*C*HW + (c - c%B)*HW + i*B + c%B blocked
      const B = x.layout === 'blocked' ? this.backend.channelBlock ?? 1 : 1;
      for (let c = 0; c < C; c++) {
        const is = 1 / Math.sqrt(rv[c] + this.eps), scale = this.weight.data[c] * is;
        const l = c % B, cHW = (c - l) * HW;
        for (let n = 0; n < N; n++) {
          const o = n * C * HW + cHW + l;
          for (let i = 0; i < HW; i++) {
            const j = o + i * B, g = dx[j];
            db[c] += g;
            dg[c] += g * (x.data[j] - rm[c]) * is;
            dx[j] = g * scale;
          }
        }
      }
    }
    accumulate(this.weight.grad, dg);
    accumulate(this.bias.grad, db);
    return new Tensor(x.shape, dx, x.layout);
  }
}
