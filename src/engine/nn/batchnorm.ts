/**
 * BatchNorm2d, after torch.nn.BatchNorm2d: normalises each channel over (N, H, W) with the batch's
 * statistics in training (updating running_mean and the unbiased running_var with `momentum`, and
 * num_batches_tracked) and with the running statistics in eval mode.
 * A following activation can be fused in (a Sequential's plan asks for it): the kernel then writes
 * act(bn(x)) and the backward pass takes the gradient of the activation's output.
 * In training it may write y over x when the plan says nothing else reads x (`ForwardOptions.inPlace`), the
 * activation is invertible and y keeps x's information (`recoverable`): the backward then recovers x from y,
 * as in-place activated batch-norm (Rota Bulo et al., 2018).
 * In training the layer after it may apply it (`preNorm`, planner.ts): the forward then computes the statistics
 * only (`ForwardOptions.statsOnly`) and returns x, and that layer's backward computes this one's. Or the convolution
 * before it applies it (`postNorm`): the forward then takes its input as its output (`ForwardOptions.normApplied`).
 */
import { batchNormEvalBackward } from '../kernels/composite.js';
import { invertibleAct, NO_ACT, type Act } from '../kernels/index.js';
import type { BackwardOptions, ForwardOptions, PostNorm, PreNorm } from '../kernels/planner.js';
import { Tensor } from '../tensor.js';
import { type BufferEntry, Module, type Parameter } from './module.js';

export interface BatchNormOptions { eps?: number; momentum?: number }

export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: BufferEntry;
  readonly runningVar: BufferEntry;
  readonly numBatchesTracked: BufferEntry;
  readonly eps: number;
  readonly momentum: number;
  readonly blockedInput = 'keep' as const;
  readonly takesAct = true;
  readonly takesInputBias = true;
  readonly inPlaceGrad = true;
  readonly inPlaceForward = true;
  private x: Tensor | null = null;
  /** Whether the last forward wrote y over x. */
  private xOverwritten = false;
  private y: Tensor | null = null;

  protected override forgetForward(): void { this.x = null; this.y = null; }
  private usedBatchStats = true;
  private act: Act = NO_ACT;

  /** This batch-norm as the next layer applies it (training only; see ForwardOptions.statsOnly). */
  get preNorm(): PreNorm | null {
    if (!this.training) return null;
    const C = this.numFeatures;
    return {
      args: () => ({ gamma: this.weight.data, beta: this.bias.data, mean: this.scratch('mean', C),
                     invstd: this.scratch('invstd', C), act: this.act }),
      writeGrads: (write) => this.writeGrads(write),
    };
  }

  /**
   * This batch-norm as the convolution before it applies it with `act` (ForwardOptions.postNorm): in training, on a
   * backend whose batch-norm backward works in place, with an invertible activation and y keeping x's information
   * (`recoverable`), since x is never stored; else null.
   */
  postNorm(act: Act): PostNorm | null {
    if (!this.training || this.backend.batchNormInPlace !== true || !invertibleAct(act) || !this.recoverable()) return null;
    const C = this.numFeatures;
    return {
      args: () => ({ gamma: this.weight.data, beta: this.bias.data, eps: this.eps, act, mean: this.scratch('mean', C),
                     invstd: this.scratch('invstd', C), variance: this.scratch('var', C) }),
      writeGrads: (write) => this.writeGrads(write),
    };
  }

  /** Calls write(dgamma, dbeta) with where gamma's and beta's gradients go (overwritten), then takes them in. */
  private writeGrads(write: (dgamma: Float32Array, dbeta: Float32Array) => void): void {
    const C = this.numFeatures;
    const dg = this.weight.gradOut(() => this.scratch('dgamma', C)), db = this.bias.gradOut(() => this.scratch('dbeta', C));
    write(dg, db);
    this.weight.gradIn(dg);
    this.bias.gradIn(db);
  }

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

  /**
   * y = bn(x), then `opts.act` when asked (fused). With `opts.inputBias` (a bias the previous layer left
   * out), the result is bn(x + inputBias): the same y in training (the batch's mean absorbs it), and the
   * running mean, or in eval mode the shift, includes it.
   */
  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    const [N, C, HW] = this.dims(x);
    const w = this.weight.data, b = this.bias.data;
    this.act = opts.act ?? NO_ACT;
    this.usedBatchStats = this.training;
    // applied by the convolution before (its postNorm): x is y already, the statistics are in place
    const applied = opts.normApplied === true && this.training;
    const statsOnly = !applied && opts.statsOnly === true && this.training && this.backend.batchNormStats !== undefined;
    this.xOverwritten = applied || (!statsOnly && opts.inPlace === true && this.training && this.backend.batchNormInPlace === true
      && invertibleAct(this.act) && this.recoverable());
    const y = this.xOverwritten || statsOnly ? x.data : this.scratch('y', x.size);
    const ib = opts.inputBias;
    if (this.training) {
      const M = N * HW;
      if (M < 2) throw new Error(`BatchNorm2d: expected more than 1 value per channel when training, got input [${x.shape.join(', ')}]`);
      const mean = this.scratch('mean', C), invstd = this.scratch('invstd', C), variance = this.scratch('var', C);
      if (applied) { /* written by the convolution */ } else if (statsOnly) this.backend.batchNormStats!(N, C, HW, x.data, this.eps, mean, invstd, variance, x.layout);
      else this.backend.batchNormTrain(N, C, HW, x.data, w, b, this.eps, this.act, y, mean, invstd, x.layout, variance);
      // PyTorch: running = (1 - momentum) * running + momentum * batch statistic (the variance unbiased)
      const m = this.momentum, rm = this.runningMean.data, rv = this.runningVar.data;
      for (let c = 0; c < C; c++) {
        rm[c] = (1 - m) * rm[c] + m * (ib ? mean[c] + ib[c] : mean[c]);
        rv[c] = (1 - m) * rv[c] + m * variance[c] * M / (M - 1);
      }
      this.numBatchesTracked.data[0] += 1;
    } else {
      // eval mode folded into y = act(x * scale + shift)
      const scale = this.scratch('scale', C), shift = this.scratch('shift', C);
      const rm = this.runningMean.data, rv = this.runningVar.data;
      for (let c = 0; c < C; c++) {
        scale[c] = w[c] / Math.sqrt(rv[c] + this.eps);
        shift[c] = b[c] - (ib ? rm[c] - ib[c] : rm[c]) * scale[c];
      }
      this.backend.channelAffine(N, C, HW, x.data, scale, shift, this.act, y, x.layout);
    }
    this.x = x;
    this.y = new Tensor(x.shape, y, x.layout);
    return this.y;
  }

  /**
   * Whether x's normalised value can be recovered from y = act(gamma * xhat + beta) to about the precision it
   * is computed with: xhat = (act^-1(y) - beta) / gamma loses |beta / gamma| ulps of y, so every channel
   * needs |beta| <= 16 |gamma| (and gamma not tiny). At initialisation gamma = 1 and beta = 0.
   */
  private recoverable(): boolean {
    const w = this.weight.data, b = this.bias.data;
    for (let c = 0; c < w.length; c++) {
      const g = Math.abs(w[c]);
      if (!(g >= 1e-6 && Math.abs(b[c]) <= 16 * g)) return false;
    }
    return true;
  }

  /** dx, and dgamma and dbeta added to the gradients; `opts.inPlace`: dx may overwrite dy. */
  backward(dy: Tensor, opts: BackwardOptions = {}): Tensor {
    const x = this.x, y = this.y;
    if (!x || !y) throw new Error('BatchNorm2d.backward called before forward');
    if (dy.layout !== x.layout) throw new Error(`BatchNorm2d.backward: dy is ${dy.layout}, the forward pass was ${x.layout}`);
    const [N, C, HW] = this.dims(x);
    const dx = opts.inPlace ? dy.data.subarray(0, x.size) : this.scratch('dx', x.size);
    this.writeGrads((dg, db) => {
      if (this.usedBatchStats)
        this.backend.batchNormBackward(N, C, HW, this.xOverwritten ? null : x.data, y.data, dy.data, this.weight.data,
          this.scratch('mean', C), this.scratch('invstd', C), this.act, dx, dg, db, x.layout, this.bias.data);
      else
        batchNormEvalBackward(this.backend, N, C, HW, x.data, y.data, dy.data, this.weight.data, this.runningMean.data as Float32Array,
          this.runningVar.data as Float32Array, this.eps, this.act, dx, dg, db, x.layout);
    });
    return new Tensor(x.shape, dx, x.layout);
  }
}
