/** Conv2d, after torch.nn.Conv2d (groups = 1, dilation = 1). Weight [out, in, kh, kw]. */
import { convOutSize, type ConvGeom, type ConvShape } from '../kernels/index.js';
import type { ForwardOptions, PostNorm } from '../kernels/planner.js';
import type { Rng } from '../rng.js';
import { Tensor } from '../tensor.js';
import { EMPTY, Module, type Parameter } from './module.js';

export interface ConvOptions { stride?: number; padding?: number; bias?: boolean; rng?: Rng }

export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;
  /** False for a first layer: its input needs no gradient, so the backward-data pass is skipped. */
  needsInputGrad = true;
  readonly blockedInput = 'any' as const;
  readonly blockedOutput = 'native' as const;
  readonly scratchOutput = true;
  private x: Tensor | null = null;
  private g: ConvGeom | null = null;
  /** The batch-norm whose backward this layer's computes (ForwardOptions.postNormBackward), and its output. */
  private post: { norm: PostNorm; y: Float32Array } | null = null;

  protected override forgetForward(): void { this.x = null; this.g = null; this.post = null; }

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, opts: ConvOptions = {}) {
    super();
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    ({ weight: this.weight, bias: this.bias } = this.registerWeightAndBias(shape, outChannels, opts.bias !== false, opts.rng));
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize}, ${this.kernelSize}), stride=(${this.stride}, ${this.stride}), padding=(${this.padding}, ${this.padding})${this.bias ? '' : ', bias=False'}`;
  }

  geometry(inShape: readonly number[]): ConvGeom {
    const [N, C, H, W] = inShape;
    if (inShape.length !== 4 || C !== this.inChannels)
      throw new Error(`Conv2d: expected input [N, ${this.inChannels}, H, W], got [${inShape.join(', ')}]`);
    const k = this.kernelSize, s = this.stride, p = this.padding;
    return { N, C, H, W, K: this.outChannels, R: k, S: k, strideH: s, strideW: s, padH: p, padW: p,
             OH: convOutSize(H, k, s, p), OW: convOutSize(W, k, s, p) };
  }

  outputShape(inShape: readonly number[]): number[] {
    const g = this.geometry(inShape);
    return [g.N, g.K, g.OH, g.OW];
  }

  /** y = conv2d(x) + bias, in the layout `opts.layout` (default NCHW). */
  /** This convolution's shape, for a batch-norm after it to be applied by it (ForwardOptions.postNorm). */
  get outNormShape(): ConvShape {
    const k = this.kernelSize, s = this.stride, p = this.padding;
    return { C: this.inChannels, K: this.outChannels, R: k, S: k, strideH: s, strideW: s, padH: p, padW: p };
  }

  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    const g: ConvGeom = { ...this.geometry(x.shape), xLayout: x.layout, yLayout: opts.layout ?? 'nchw' };
    const y = this.scratch('y', g.N * g.K * g.OH * g.OW);
    if (opts.postNorm) {
      if (!this.backend.convNormForward) throw new Error(`Conv2d: the ${this.backend.name} backend cannot apply a batch-norm`);
      this.backend.convNormForward(g, x.data, this.weight.data, this.bias?.data ?? null, opts.postNorm.args(), y);
    } else this.backend.conv2d(g, x.data, this.weight.data, this.bias?.data ?? null, y);
    this.x = x; this.g = g;
    this.post = opts.postNorm && opts.postNormBackward ? { norm: opts.postNorm, y } : null;
    return new Tensor([g.N, g.K, g.OH, g.OW], y, g.yLayout);
  }

  backward(dy: Tensor): Tensor {
    const g = this.g, x = this.x;
    if (!g || !x) throw new Error('Conv2d.backward called before forward');
    if (dy.layout !== g.yLayout) throw new Error(`Conv2d.backward: dy is ${dy.layout}, the output was ${g.yLayout}`);
    const dw = this.weight.gradOut(() => this.scratch('dw', this.weight.size));
    const db = this.bias ? this.bias.gradOut(() => this.scratch('db', this.outChannels)) : null;
    const post = this.post;
    if (post) {  // dy is the batch-norm's output gradient: its backward and this one's weight gradient in one kernel
      if (!this.backend.convNormBackward) throw new Error(`Conv2d: the ${this.backend.name} backend cannot differentiate a batch-norm`);
      post.norm.writeGrads((dgamma, dbeta) =>
        this.backend.convNormBackward!(g, x.data, post.norm.args(), post.y, dy.data, dw, db, dgamma, dbeta));
    } else this.backend.conv2dBackwardWeight(g, x.data, dy.data, dw, db);
    this.weight.gradIn(dw);
    if (this.bias && db) this.bias.gradIn(db);
    if (!this.needsInputGrad) return EMPTY;
    const dx = this.gradScratch(g.N * g.C * g.H * g.W, dy.data);
    this.backend.conv2dBackwardData(g, dy.data, this.weight.data, dx);
    return new Tensor(x.shape, dx, x.layout);
  }
}
