/**
 * The native backend: the Backend interface on the optional N-API addon in native/ (oneDNN
 * convolutions and gemm, OpenMP loops for batch-norm and activations). Node only.
 *
 * Arrays are ordinary Float32Arrays passed to the addon without copies. With precision 'bf16' the
 * convolutions compute on bf16 copies of their inputs (fp32 accumulation, fp32 outputs); weights,
 * activations and gradients stay fp32 in memory.
 */
import { availableParallelism } from 'node:os';
import { checkBnInPlace, type Act, type ActKind, type AdamStepScalars, type Backend, type ConvGeom, type ConvShape, type Layout, type NormArgs, type PostNormArgs } from '../index.js';
import type { BackendOptions } from '../select.js';
import { KERNEL_TABLE, kernelTableHash } from '../table.js';
import { loadNativeAddon, type NativeContext, type NativeInfo } from './addon.js';

export { loadNativeAddon, nativeAvailable, nativeAddonPath, NATIVE_HINT } from './addon.js';
export type { NativeAddon, NativeContext, NativeInfo } from './addon.js';

export type NativeLayout = 'any' | 'plain' | 'tuned' | 'auto';

export interface NativeBackendOptions extends BackendOptions {
  /**
   * Memory layout of the convolutions: 'any' lets oneDNN choose blocked layouts (with cached reorders
   * from and to NCHW), 'plain' keeps activations NCHW, 'tuned' times both on the first call of each
   * shape and keeps the faster, 'auto' (default) picks per shape by a fixed rule from measurements
   * (blocked, except backward-data into fewer than 8 channels).
   */
  layout?: NativeLayout;
  /**
   * With precision 'bf16': compute the weight gradients in bf16 too (inputs rounded to bf16, fp32 sums). Without
   * AMX, the addon's own kernel (AVX512-BF16's vdpbf16ps) computes them for blocked activations of 16-channel
   * blocks (the study's 32-64-channel convolutions), and the other shapes stay fp32 (oneDNN 2.6's bf16 weight
   * gradients were no faster than its fp32 ones there); with AMX, oneDNN's bf16 ones run. Default: true where
   * either applies (oneDNN's ISA is avx512_core_bf16 or AMX).
   */
  bf16WeightGrad?: boolean;
  /**
   * With precision 'bf16': on the first call of each convolution and direction, time its bf16 and fp32
   * versions (the least of 5 alternating runs each) and keep the faster, whatever bf16WeightGrad says.
   * The choice depends on the machine's load at that moment, so two runs may pick differently (and so
   * round differently). Default false: bf16 everywhere except weight gradients (see bf16WeightGrad) and
   * backward-data into fewer than 8 channels.
   */
  bf16Timed?: boolean;
  /**
   * Allocate with 64-byte aligned native memory instead of `new Float32Array` (whose large arrays are only
   * 16-byte aligned). Default true: oneDNN's AVX-512 kernels then never split a vector across cache
   * lines (measured 2-5% faster training steps, fp32 / bf16).
   */
  alignedAlloc?: boolean;
}

const ACT_CODE: Record<ActKind, number> = KERNEL_TABLE.act;
const LAYOUT_CODE: Record<NativeLayout, number> = KERNEL_TABLE.nativeLayout;
const CONV_KIND = KERNEL_TABLE.nativeConvKind;
/** Index of each AdamStepScalars field in adamStep's scalars array. */
const ADAM_SLOT = KERNEL_TABLE.adamScalars;

function actCode(act: Act): number {
  const k = ACT_CODE[act.kind];
  if (k === undefined) throw new Error(`native: unknown activation '${act.kind}'`);
  return k;
}

export class NativeBackend implements Backend {
  readonly name = 'native';
  readonly batchNormInPlace = true;
  readonly threads: number;
  /** Activations may stay in oneDNN's nChw16c layout between layers (see Layout). */
  readonly channelBlock = KERNEL_TABLE.nativeChannelBlock;
  readonly precision: 'fp32' | 'bf16';
  readonly layout: NativeLayout;
  readonly info: NativeInfo;
  /** Whether the weight gradients are computed in bf16 (precision 'bf16' only). */
  readonly bf16WeightGrad: boolean;
  /** Whether bf16 and fp32 are timed per convolution (precision 'bf16' only). */
  readonly bf16Timed: boolean;
  private ctx: NativeContext | null;
  private readonly allocFn: (n: number) => Float32Array;

  constructor(opts: NativeBackendOptions = {}) {
    const addon = loadNativeAddon();
    this.info = addon.info();
    if (this.info.tableHash !== kernelTableHash())
      throw new Error(`native addon built from another kernel table (src/engine/kernels/table.ts); run npm run build:native`);
    this.threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(this.threads) || this.threads < 1)
      throw new Error(`--threads: expected a positive integer, got '${this.threads}'`);
    this.precision = opts.precision ?? 'fp32';
    if (this.precision !== 'fp32' && this.precision !== 'bf16')
      throw new Error(`--precision: expected fp32 or bf16, got '${String(this.precision)}'`);
    this.layout = opts.layout ?? 'auto';
    if (LAYOUT_CODE[this.layout] === undefined) throw new Error(`native: unknown layout '${this.layout}'`);
    this.bf16WeightGrad = this.precision === 'bf16' && (opts.bf16WeightGrad ?? /bf16|amx/.test(this.info.isa));
    this.bf16Timed = this.precision === 'bf16' && !!opts.bf16Timed;
    this.ctx = new addon.Context(this.threads, this.precision === 'bf16', LAYOUT_CODE[this.layout], this.bf16WeightGrad, this.bf16Timed);
    this.allocFn = opts.alignedAlloc ?? true ? (n) => addon.allocAligned(n) : (n) => new Float32Array(n);
  }

  private get c(): NativeContext {
    if (!this.ctx) throw new Error('native backend: used after dispose()');
    return this.ctx;
  }

  alloc(n: number): Float32Array { return this.allocFn(n); }
  free(_a: Float32Array): void { /* garbage-collected (native memory is freed by its finalizer) */ }

  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
       A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void {
    this.c.gemm(transA, transB, M, N, K, alpha, A, B, beta, C);
  }

  conv2d(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array): void {
    this.c.conv2d(g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.strideH, g.strideW, g.padH, g.padW, g.OH, g.OW, x, w, bias, y,
      g.xLayout === 'blocked', g.yLayout === 'blocked');
  }

  conv2dBackwardData(g: ConvGeom, dy: Float32Array, w: Float32Array, dx: Float32Array): void {
    this.c.conv2dBackwardData(g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.strideH, g.strideW, g.padH, g.padW, g.OH, g.OW,
      dy, w, null, dx, g.xLayout === 'blocked', g.yLayout === 'blocked');
  }

  conv2dBackwardWeight(g: ConvGeom, x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null): void {
    this.c.conv2dBackwardWeight(g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.strideH, g.strideW, g.padH, g.padW, g.OH, g.OW,
      x, dy, db, dw, g.xLayout === 'blocked', g.yLayout === 'blocked');
  }

  batchNormTrain(N: number, C: number, HW: number, x: Float32Array, gamma: Float32Array, beta: Float32Array,
                 eps: number, act: Act, y: Float32Array, mean: Float32Array, invstd: Float32Array, layout?: Layout,
                 variance?: Float32Array): void {
    this.c.batchNormTrain(N, C, HW, x, gamma, beta, eps, actCode(act), act.slope, y, mean, invstd, layout === 'blocked',
      variance ?? null);
  }

  channelAffine(N: number, C: number, HW: number, x: Float32Array, scale: Float32Array, shift: Float32Array,
                act: Act, y: Float32Array, layout?: Layout): void {
    this.c.channelAffine(N, C, HW, x, scale, shift, actCode(act), act.slope, y, layout === 'blocked');
  }

  batchNormBackward(N: number, C: number, HW: number, x: Float32Array | null, y: Float32Array, dy: Float32Array,
                    gamma: Float32Array, mean: Float32Array, invstd: Float32Array, act: Act,
                    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, layout?: Layout, beta?: Float32Array): void {
    checkBnInPlace(x, act, beta);
    this.c.batchNormBackward(N, C, HW, x, y, dy, gamma, mean, invstd, actCode(act), act.slope, dx, dgamma, dbeta,
      layout === 'blocked', beta ?? null);
  }

  /**
   * Batch-norm + activation fused into a ConvTranspose2d into one channel, 3x3, stride 1, padding 1, from a blocked
   * activation (native/latentlab.cc normConvT1Forward / normConvT1Backward).
   */
  fusesNormConvTranspose(s: ConvShape, act: Act): boolean {
    return s.C === 1 && s.K % this.channelBlock === 0 && s.R === 3 && s.S === 3 && s.strideH === 1 && s.strideW === 1
      && s.padH === 1 && s.padW === 1 && (act.kind === 'none' || act.kind === 'relu' || act.kind === 'leaky');
  }

  batchNormStats(N: number, C: number, HW: number, x: Float32Array, eps: number, mean: Float32Array,
                 invstd: Float32Array, variance: Float32Array, layout?: Layout): void {
    this.c.batchNormTrain(N, C, HW, x, null, null, eps, ACT_CODE.none, 0, null, mean, invstd, layout === 'blocked', variance);
  }

  private checkNormConv(g: ConvGeom, act: Act): void {
    if (!this.fusesNormConvTranspose(g, act) || g.yLayout !== 'blocked' || g.xLayout === 'blocked' || g.H !== g.OH || g.W !== g.OW)
      throw new Error('native normConvTranspose: a shape, layout or activation fusesNormConvTranspose does not take');
  }

  normConvTransposeForward(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, n: NormArgs,
                           y: Float32Array): void {
    this.checkNormConv(g, n.act);
    this.c.normConvT1Forward(g.N, g.K, g.H, g.W, x, w, bias, n.gamma, n.beta, n.mean, n.invstd, actCode(n.act), n.act.slope, y);
  }

  normConvTransposeBackward(g: ConvGeom, x: Float32Array, w: Float32Array, n: NormArgs, dy: Float32Array,
                            dw: Float32Array, db: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
                            dx: Float32Array): void {
    this.checkNormConv(g, n.act);
    this.c.normConvT1Backward(g.N, g.K, g.H, g.W, x, w, n.gamma, n.beta, n.mean, n.invstd, actCode(n.act), n.act.slope,
      dy, dw, db, dgamma, dbeta, dx);
  }

  /**
   * A convolution from one channel (at most 7x7 taps) with the batch-norm and activation (none, relu, leaky) after it
   * (native/latentlab.cc convNormForward: the statistics from the input's patch moments, the normalisation folded into
   * the convolution's weights and bias, the activation as its post-op).
   */
  fusesConvNorm(s: ConvShape, act: Act): boolean {
    return s.C === 1 && s.R * s.S <= 49 && (act.kind === 'none' || act.kind === 'relu' || act.kind === 'leaky');
  }

  convNormForward(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, n: PostNormArgs, y: Float32Array): void {
    if (!this.fusesConvNorm(g, n.act) || g.xLayout === 'blocked')
      throw new Error('native convNormForward: a shape, layout or activation fusesConvNorm does not take');
    this.c.convNormForward(g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.strideH, g.strideW, g.padH, g.padW, g.OH, g.OW, x, w, bias,
      n.gamma, n.beta, n.eps, actCode(n.act), n.act.slope, y, n.mean, n.invstd, n.variance, g.yLayout === 'blocked');
  }

  /** convNormForward's backward (native/latentlab.cc convNormBackward): whole channel blocks, activation none or leaky. */
  fusesConvNormBackward(s: ConvShape, act: Act): boolean {
    return this.fusesConvNorm(s, act) && act.kind !== 'relu' && s.R === 3 && s.S === 3 && s.K % this.channelBlock === 0;
  }

  convNormBackward(g: ConvGeom, x: Float32Array, n: NormArgs, y: Float32Array, dy: Float32Array, dw: Float32Array,
                   db: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array): void {
    if (!this.fusesConvNormBackward(g, n.act) || g.xLayout === 'blocked')
      throw new Error('native convNormBackward: a shape, layout or activation fusesConvNormBackward does not take');
    this.c.convNormBackward(g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.strideH, g.strideW, g.padH, g.padW, g.OH, g.OW, x,
      n.gamma, n.beta, n.invstd, actCode(n.act), n.act.slope, y, dy, dw, db, dgamma, dbeta, g.yLayout === 'blocked');
  }

  reorderLayout(N: number, C: number, HW: number, src: Float32Array, dst: Float32Array, to: Layout): void {
    this.c.reorderLayout(N, C, HW, src, dst, to === 'blocked');
  }

  channelSums(N: number, C: number, HW: number, x: Float32Array, out: Float32Array, layout?: Layout): void {
    this.c.channelSums(N, C, HW, x, out, layout === 'blocked');
  }

  activation(act: Act, n: number, x: Float32Array, y: Float32Array): void {
    this.c.activation(actCode(act), act.slope, n, x, y);
  }

  activationBackward(act: Act, n: number, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void {
    this.c.activationBackward(actCode(act), act.slope, n, x, y, dy, dx);
  }

  mseLoss(n: number, input: Float32Array, target: Float32Array, grad: Float32Array, scale: number): number {
    return this.c.mseLoss(n, input, target, grad, scale) / n;
  }

  sgdMomentumStep(n: number, data: Float32Array, grad: Float32Array, buf: Float32Array, momentum: number,
                  gradScale: number, negLr: number): void {
    this.c.sgdMomentumStep(n, data, grad, buf, momentum, gradScale, negLr);
  }

  private readonly adamScalars = new Float32Array(ADAM_SLOT.length);
  adamStep(n: number, data: Float32Array, grad: Float32Array, expAvg: Float32Array, expAvgSq: Float32Array,
           s: AdamStepScalars): void {
    const k = this.adamScalars;
    for (let i = 0; i < ADAM_SLOT.length; i++) k[i] = s[ADAM_SLOT[i]];
    this.c.adamStep(n, data, grad, expAvg, expAvgSq, k, s.useWeightDecay, s.decoupled);
  }

  /** The oneDNN implementation chosen for a convolution already run (for reports), or null. */
  convImpl(kind: 'fwd' | 'bwd-data' | 'bwd-weight', g: ConvGeom, hasBias = false): string | null {
    const k = kind === 'fwd' ? CONV_KIND.fwd : kind === 'bwd-data' ? CONV_KIND.bwdData : CONV_KIND.bwdWeight;
    return this.c.convImpl(k, g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.strideH, g.strideW, g.padH, g.padW, g.OH, g.OW,
      hasBias, g.xLayout === 'blocked', g.yLayout === 'blocked');
  }

  dispose(): void {
    this.ctx?.dispose();
    this.ctx = null;
  }
}

/** The factory `registerBackend('native', ...)` uses; throws (saying how to enable it) when the addon is missing. */
export async function createNativeBackend(opts: NativeBackendOptions = {}): Promise<NativeBackend> {
  return new NativeBackend(opts);
}
