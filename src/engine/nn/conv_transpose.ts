/**
 * ConvTranspose2d, after torch.nn.ConvTranspose2d (groups = 1, dilation = 1). Weight [in, out, kh, kw].
 * Its forward is the input-gradient of a Conv2d that maps the (larger) output back to the input, so
 * it runs on the same three convolution kernels with the roles swapped:
 *   forward        = conv2dBackwardData
 *   input gradient = conv2d
 *   weight grad    = conv2dBackwardWeight with x and dy exchanged
 * After a batch-norm in training it may read its input through it (`ForwardOptions.preNorm`, planner.ts) on a
 * backend that fuses the two (Backend.fusesNormConvTranspose): then its backward computes the batch-norm's too.
 */
import { channelSums } from '../kernels/composite.js';
import { NO_ACT, type ConvGeom, type ConvShape } from '../kernels/index.js';
import type { ForwardOptions, PreNorm } from '../kernels/planner.js';
import type { Rng } from '../rng.js';
import { Tensor } from '../tensor.js';
import { EMPTY, Module, type Parameter } from './module.js';

export interface ConvTransposeOptions { stride?: number; padding?: number; outputPadding?: number; bias?: boolean; rng?: Rng }

export class ConvTranspose2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;
  readonly outputPadding: number;
  needsInputGrad = true;
  readonly blockedInput = 'any' as const;
  readonly blockedOutput = 'native' as const;
  readonly scratchOutput = true;
  private x: Tensor | null = null;
  private g: ConvGeom | null = null;
  /** Whether the last forward left the bias to the next layer (ForwardOptions.skipBias). */
  private biasSkipped = false;

  /** The batch-norm the last forward read its input through (ForwardOptions.preNorm), else null. */
  private pre: PreNorm | null = null;

  protected override forgetForward(): void { this.x = null; this.g = null; this.pre = null; }

  /** The equivalent Conv2d's shape, for a batch-norm before it to be fused in (its input gradient is needed then). */
  get normShape(): ConvShape | null {
    if (!this.needsInputGrad) return null;
    const k = this.kernelSize, s = this.stride, p = this.padding;
    return { C: this.outChannels, K: this.inChannels, R: k, S: k, strideH: s, strideW: s, padH: p, padW: p };
  }

  /** The bias, which a following batch-norm in training mode may take over (kernels/planner.ts). */
  get foldableBias(): Float32Array | null { return this.bias?.data ?? null; }

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, opts: ConvTransposeOptions = {}) {
    super();
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.outputPadding = opts.outputPadding ?? 0;
    if (this.outputPadding >= this.stride) throw new Error(`ConvTranspose2d: output_padding (${this.outputPadding}) must be smaller than stride (${this.stride})`);
    const shape = [inChannels, outChannels, kernelSize, kernelSize];
    ({ weight: this.weight, bias: this.bias } = this.registerWeightAndBias(shape, outChannels, opts.bias !== false, opts.rng));
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize}, ${this.kernelSize}), stride=(${this.stride}, ${this.stride}), padding=(${this.padding}, ${this.padding})${this.outputPadding ? `, output_padding=(${this.outputPadding}, ${this.outputPadding})` : ''}`;
  }

  /** The geometry of the equivalent Conv2d, whose input is this layer's output. */
  geometry(inShape: readonly number[]): ConvGeom {
    const [N, C, H, W] = inShape;
    if (inShape.length !== 4 || C !== this.inChannels)
      throw new Error(`ConvTranspose2d: expected input [N, ${this.inChannels}, H, W], got [${inShape.join(', ')}]`);
    const k = this.kernelSize, s = this.stride, p = this.padding, op = this.outputPadding;
    const OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
    return { N, C: this.outChannels, H: OH, W: OW, K: this.inChannels, R: k, S: k,
             strideH: s, strideW: s, padH: p, padW: p, OH: H, OW: W };
  }

  outputShape(inShape: readonly number[]): number[] {
    const g = this.geometry(inShape);
    return [g.N, g.C, g.H, g.W];
  }

  /**
   * y = conv_transpose2d(x) + bias, in the layout `opts.layout` (default NCHW); without the bias when
   * `opts.skipBias` (the next layer, a batch-norm in training mode, accounts for it).
   */
  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    // the equivalent Conv2d's x is this layer's output, its y this layer's input
    const g: ConvGeom = { ...this.geometry(x.shape), xLayout: opts.layout ?? 'nchw', yLayout: x.layout };
    const HW = g.H * g.W;
    const y = this.scratch('y', g.N * g.C * HW);
    this.biasSkipped = this.bias !== null && opts.skipBias === true;
    this.pre = opts.preNorm && this.backend.normConvTransposeForward ? opts.preNorm : null;
    if (this.pre) {
      this.backend.normConvTransposeForward!(g, x.data, this.weight.data, this.biasSkipped ? null : this.bias?.data ?? null,
        this.pre.args(), y);
      this.x = x; this.g = g;
      return new Tensor([g.N, g.C, g.H, g.W], y, g.xLayout);
    }
    this.backend.conv2dBackwardData(g, x.data, this.weight.data, y);
    if (this.bias && !this.biasSkipped) {
      this.backend.channelAffine(g.N, g.C, HW, y, this.ones(g.C), this.bias.data, NO_ACT, y, g.xLayout);
    }
    this.x = x; this.g = g;
    return new Tensor([g.N, g.C, g.H, g.W], y, g.xLayout);
  }

  backward(dy: Tensor): Tensor {
    const g = this.g, x = this.x;
    if (!g || !x) throw new Error('ConvTranspose2d.backward called before forward');
    if (dy.layout !== g.xLayout) throw new Error(`ConvTranspose2d.backward: dy is ${dy.layout}, the output was ${g.xLayout}`);
    if (this.pre) return this.backwardNorm(dy, g, x, this.pre);
    const dw = this.weight.gradOut(() => this.scratch('dw', this.weight.size));
    this.backend.conv2dBackwardWeight(g, dy.data, x.data, dw, null);
    this.weight.gradIn(dw);
    // a bias left to a batch-norm in training mode has a gradient of exactly zero (the batch's mean absorbs it)
    if (this.bias && !this.biasSkipped) {
      const db = this.bias.gradOut(() => this.scratch('db', g.C));
      channelSums(this.backend, g.N, g.C, g.H * g.W, dy.data, db, dy.layout);
      this.bias.gradIn(db);
    }
    if (!this.needsInputGrad) return EMPTY;
    const dx = this.gradScratch(x.size, dy.data);
    this.backend.conv2d(g, dy.data, this.weight.data, null, dx);
    return new Tensor(x.shape, dx, x.layout);
  }

  /** The backward through the batch-norm the forward read its input through: the returned gradient is the batch-norm input's. */
  private backwardNorm(dy: Tensor, g: ConvGeom, x: Tensor, pre: PreNorm): Tensor {
    const dw = this.weight.gradOut(() => this.scratch('dw', this.weight.size));
    const withBias = this.bias !== null && !this.biasSkipped;
    const db = withBias ? this.bias!.gradOut(() => this.scratch('db', g.C)) : null;
    const dx = this.gradScratch(x.size, dy.data);
    pre.writeGrads((dgamma, dbeta) => this.backend.normConvTransposeBackward!(g, x.data, this.weight.data, pre.args(),
      dy.data, dw, db, dgamma, dbeta, dx));
    this.weight.gradIn(dw);
    if (withBias && db) this.bias!.gradIn(db);
    return new Tensor(x.shape, dx, x.layout);
  }
}
