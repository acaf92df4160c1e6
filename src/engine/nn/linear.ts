/**
 * Linear, after torch.nn.Linear: y = x W^T + b, weight [out, in].
 * Next to a Flatten or Unflatten inside a Sequential on a backend with a blocked layout, the planner may hand
 * it its input's features, or ask for its output's, in the order of a blocked activation
 * (`ForwardOptions.inFeatures` / `outFeatures`, kernels/index.ts blockedFeatureOrder): it then computes with
 * its weights (and bias) permuted to that order, which gives the same sums as reordering the activation
 * would, without the two reorders of an activation per pass. Its parameters and their gradients stay in
 * PyTorch's order.
 */
import { blockedFeatureOrder } from '../kernels/index.js';
import type { ForwardOptions } from '../kernels/planner.js';
import type { Rng } from '../rng.js';
import { Tensor } from '../tensor.js';
import { EMPTY, Module, type Parameter } from './module.js';

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  needsInputGrad = true;
  readonly featureLayout = true;
  /** y is a buffer of its own that backward does not read (an activation after it may write over it). */
  readonly scratchOutput = true;
  private x: Tensor | null = null;
  /** The feature permutations of the last forward (null: PyTorch's order). */
  private inPerm: Int32Array | null = null;
  private outPerm: Int32Array | null = null;
  /** The weight the last forward used (the parameter, or its permuted copy). */
  private wUsed: Float32Array | null = null;
  private readonly perms = new Map<string, Int32Array>();

  protected override forgetForward(): void { this.x = null; this.wUsed = null; }

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; rng?: Rng } = {}) {
    super();
    const shape = [outFeatures, inFeatures];
    ({ weight: this.weight, bias: this.bias } = this.registerWeightAndBias(shape, outFeatures, opts.bias !== false, opts.rng));
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }

  private rows(x: Tensor, blocked: boolean): number {
    if (x.layout !== (blocked ? 'blocked' : 'nchw')) throw new Error(`Linear: expected an input in the ${blocked ? 'blocked feature' : 'NCHW'} layout`);
    const last = x.shape[x.shape.length - 1];
    if (last !== this.inFeatures) throw new Error(`Linear: expected input [..., ${this.inFeatures}], got [${x.shape.join(', ')}]`);
    return x.size / this.inFeatures;
  }

  /** The blocked order of `features` features of `channels` channels (cached). */
  private perm(features: number, channels: number | undefined): Int32Array | null {
    if (!channels) return null;
    const B = this.backend.channelBlock;
    if (!B || features % channels !== 0) throw new Error(`Linear: ${features} features are not a blocked activation of ${channels} channels on the ${this.backend.name} backend`);
    const key = `${features}/${channels}/${B}`;
    let p = this.perms.get(key);
    if (!p) this.perms.set(key, p = blockedFeatureOrder(channels, features / channels, B));
    return p;
  }

  /** W (and b) in the order of the last forward's features: the parameters themselves, or permuted copies. */
  private permuted(): { w: Float32Array; b: Float32Array | null } {
    const ip = this.inPerm, op = this.outPerm, I = this.inFeatures, O = this.outFeatures;
    if (!ip && !op) return { w: this.weight.data, b: this.bias?.data ?? null };
    const w = this.weight.data, wp = this.scratch('wPerm', O * I);
    for (let o = 0; o < O; o++) {
      const src = o * I, dst = (op ? op[o] : o) * I;
      if (ip) for (let f = 0; f < I; f++) wp[dst + ip[f]] = w[src + f];
      else for (let f = 0; f < I; f++) wp[dst + f] = w[src + f];
    }
    let b = this.bias?.data ?? null;
    if (b && op) {
      const bp = this.scratch('bPerm', O);
      for (let o = 0; o < O; o++) bp[op[o]] = b[o];
      b = bp;
    }
    return { w: wp, b };
  }

  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    this.inPerm = this.perm(this.inFeatures, opts.inFeatures);
    this.outPerm = this.perm(this.outFeatures, opts.outFeatures);
    const N = this.rows(x, this.inPerm !== null), O = this.outFeatures;
    const { w, b } = this.permuted();
    this.wUsed = w;
    const y = this.scratch('y', N * O);
    // y = b (each row), then y += x W^T
    if (b) for (let n = 0; n < N; n++) y.set(b, n * O);
    this.backend.gemm(false, true, N, O, this.inFeatures, 1, x.data, w, b ? 1 : 0, y);
    this.x = x;
    return new Tensor([...x.shape.slice(0, -1), O], y, this.outPerm ? 'blocked' : 'nchw');
  }

  backward(dy: Tensor): Tensor {
    const x = this.x;
    if (!x) throw new Error('Linear.backward called before forward');
    const ip = this.inPerm, op = this.outPerm;
    if (dy.layout !== (op ? 'blocked' : 'nchw')) throw new Error(`Linear.backward: dy is ${dy.layout}, the output was ${op ? 'blocked' : 'nchw'}`);
    const N = this.rows(x, ip !== null), O = this.outFeatures, I = this.inFeatures;
    const wt = this.weight, bt = this.bias;
    if (!ip && !op) {
      // dW += dy^T x (dW = when the gradient is zero)
      this.backend.gemm(true, false, O, I, N, 1, dy.data, x.data, wt.gradBeta, wt.gradBuffer);
      wt.gradIn(wt.gradBuffer);
      // db += 1^T dy (the column sums of dy)
      if (bt) {
        this.backend.gemm(false, false, 1, O, N, 1, this.ones(N), dy.data, bt.gradBeta, bt.gradBuffer);
        bt.gradIn(bt.gradBuffer);
      }
    } else {
      // the gradients in the permuted order, then back to PyTorch's
      const dwp = this.scratch('dwPerm', O * I);
      this.backend.gemm(true, false, O, I, N, 1, dy.data, x.data, 0, dwp);
      const dw = wt.gradOut(() => this.scratch('dw', O * I));
      for (let o = 0; o < O; o++) {
        const src = (op ? op[o] : o) * I, dst = o * I;
        if (ip) for (let f = 0; f < I; f++) dw[dst + f] = dwp[src + ip[f]];
        else for (let f = 0; f < I; f++) dw[dst + f] = dwp[src + f];
      }
      wt.gradIn(dw);
      if (bt) {
        const dbp = this.scratch('dbPerm', O);
        this.backend.gemm(false, false, 1, O, N, 1, this.ones(N), dy.data, 0, dbp);
        const db = bt.gradOut(() => this.scratch('db', O));
        for (let o = 0; o < O; o++) db[o] = dbp[op ? op[o] : o];
        bt.gradIn(db);
      }
    }
    if (!this.needsInputGrad) return EMPTY;
    const dx = this.gradScratch(N * I, dy.data);
    this.backend.gemm(false, false, N, I, O, 1, dy.data, this.wUsed ?? this.weight.data, 0, dx);
    return new Tensor(x.shape, dx, ip ? 'blocked' : 'nchw');
  }
}
