/**
 * The kernel interface: the only place where the engine's numerical work happens.
 *
 * Every tensor the engine computes on lives in memory that the backend hands out with `alloc`
 * (for the wasm backend, a view into its shared WebAssembly.Memory), so layers call kernels
 * without copies. Plain TypeScript may read and write those arrays directly as well.
 *
 * All arrays are float32, row-major, NCHW. Kernels overwrite their outputs (they never
 * accumulate) unless a parameter says otherwise.
 *
 * One exception, opt-in: a backend that declares `channelBlock` (the native one) may also be handed
 * activations in the channel-blocked layout it computes fastest in (see `Layout`); the planner
 * (planner.ts) asks for it only inside a Sequential, and only from such a backend. Other backends never
 * see it.
 *
 * Beside this interface: table.ts (the numbers shared with the compiled kernels), planner.ts (fusion and
 * layouts of a chain of layers), composite.ts (kernels made of these primitives and a TypeScript loop),
 * reference.ts, wasm/ and native/ (the backends), select.ts (choosing one).
 */

/**
 * Memory layout of an activation [N, C, H, W]: 'nchw' (row-major), or 'blocked': nChw{B}c with
 * B = the backend's `channelBlock`, i.e. [N][C/B][H][W][B] (C a multiple of B; the same number of
 * elements). Weights, biases and everything that is not an activation are always plain.
 */
export type Layout = 'nchw' | 'blocked';

/**
 * Where feature f = c * HW + i of one [C, H, W] image (its NCHW order, as Flatten gives it) sits in the same
 * image in the blocked layout with B channels per block: ((c / B) * HW + i) * B + c % B. One image is one
 * contiguous run in both layouts, so a blocked activation of N images is N rows of C * HW features in this
 * order (what a Linear next to a Flatten or Unflatten reads or writes when the planner keeps it blocked).
 */
export function blockedFeatureOrder(C: number, HW: number, B: number): Int32Array {
  if (C % B !== 0) throw new Error(`blocked layout: ${C} channels are not a multiple of ${B}`);
  const perm = new Int32Array(C * HW);
  for (let c = 0; c < C; c++)
    for (let i = 0; i < HW; i++) perm[c * HW + i] = (Math.floor(c / B) * HW + i) * B + (c % B);
  return perm;
}

/** A batch-norm in training with its activation, as a fused kernel applies it: its parameters and the batch's statistics. */
export interface NormArgs { gamma: Float32Array; beta: Float32Array; mean: Float32Array; invstd: Float32Array; act: Act }
/** A batch-norm in training that the kernel before it applies: NormArgs whose mean, invstd and variance (biased) it writes. */
export interface PostNormArgs extends NormArgs { eps: number; variance: Float32Array }

/** Geometry of one 2-D convolution (groups = 1, dilation = 1). x: [N,C,H,W], w: [K,C,R,S], y: [N,K,OH,OW]. */
export interface ConvGeom {
  N: number; C: number; H: number; W: number;
  K: number; R: number; S: number;
  strideH: number; strideW: number;
  padH: number; padW: number;
  OH: number; OW: number;
  /** Layouts of x and y (default 'nchw'); 'blocked' only for a backend with `channelBlock`. */
  xLayout?: Layout; yLayout?: Layout;
}

/** A convolution's shape without its input's size (what a fused kernel's applicability depends on). */
export type ConvShape = Pick<ConvGeom, 'C' | 'K' | 'R' | 'S' | 'strideH' | 'strideW' | 'padH' | 'padW'>;

export type ActKind = 'none' | 'relu' | 'leaky' | 'tanh' | 'sigmoid';
/** An element-wise activation; `slope` is LeakyReLU's negative_slope. */
export interface Act { kind: ActKind; slope: number }
export const NO_ACT: Act = { kind: 'none', slope: 0 };
/**
 * Whether the activation's input can be recovered from its output: none, and leaky with a positive slope
 * (batchNormBackward then works from y alone, so that batch-norm may write y over x).
 */
export function invertibleAct(act: Act): boolean { return act.kind === 'none' || (act.kind === 'leaky' && act.slope > 0); }
/** batchNormBackward's precondition without x (the backends check it before they start). */
export function checkBnInPlace(x: Float32Array | null, act: Act, beta: Float32Array | undefined): void {
  if (!x && !(beta && invertibleAct(act)))
    throw new Error(`batchNormBackward: without x (in place) it needs beta and an activation none or leaky with slope > 0, got ${act.kind}${beta ? '' : ' and no beta'}`);
}

export interface Backend {
  readonly name: string;
  /** Threads the backend computes with. */
  readonly threads: number;
  /**
   * Set when the backend can keep activations in the blocked layout nChw{channelBlock}c between layers
   * (its convolutions then skip two reorders per call). Such a backend also implements `reorderLayout`
   * and `channelSums`, and takes the optional `layout` arguments below.
   */
  readonly channelBlock?: number;
  /**
   * Set when batchNormBackward takes x = null (the forward wrote y over x): a batch-norm then may run in
   * place (see BatchNorm2d). A backend without it is always handed x.
   */
  readonly batchNormInPlace?: boolean;
  /** Copies an activation [N, C, HW] from one layout into the other (src and dst distinct). */
  reorderLayout?(N: number, C: number, HW: number, src: Float32Array, dst: Float32Array, to: Layout): void;
  /** out[c] = sum of channel c of x [N, C, HW] (overwritten). Optional (composite.ts has a loop for the others). */
  channelSums?(N: number, C: number, HW: number, x: Float32Array, out: Float32Array, layout?: Layout): void;

  /** A zero-filled float32 array of n elements in this backend's memory. */
  alloc(n: number): Float32Array;
  /** Returns an array from `alloc` to the backend. Using it afterwards is an error. */
  free(a: Float32Array): void;

  /**
   * C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major, where op(A) is [M,K] (A is [K,M] when transA)
   * and op(B) is [K,N] (B is [N,K] when transB).
   */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
       A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void;

  /** y = conv2d(x, w) + bias (bias may be null). */
  conv2d(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array): void;
  /** dx = gradient of conv2d with respect to x, given dy (this is also ConvTranspose2d's forward). */
  conv2dBackwardData(g: ConvGeom, dy: Float32Array, w: Float32Array, dx: Float32Array): void;
  /** dw (and db when not null) = gradient of conv2d with respect to w (and bias), given x and dy. */
  conv2dBackwardWeight(g: ConvGeom, x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null): void;

  /**
   * Batch-norm in training mode over [N,C,HW], followed by `act`:
   * y = act(gamma * (x - mean) * invstd + beta). Writes the batch mean and invstd = 1/sqrt(var + eps)
   * for the backward pass, and, when given, the biased batch variance var itself (for the running
   * statistics: deriving it back from invstd loses its low bits to eps). y may be x (in place).
   */
  batchNormTrain(N: number, C: number, HW: number, x: Float32Array, gamma: Float32Array, beta: Float32Array,
                 eps: number, act: Act, y: Float32Array, mean: Float32Array, invstd: Float32Array, layout?: Layout,
                 variance?: Float32Array): void;
  /** y = act(x * scale[c] + shift[c]) over [N,C,HW] (batch-norm in eval mode, folded). */
  channelAffine(N: number, C: number, HW: number, x: Float32Array, scale: Float32Array, shift: Float32Array,
                act: Act, y: Float32Array, layout?: Layout): void;
  /**
   * Backward of batchNormTrain (with its activation): given x, the forward output y and dy, writes
   * dx, dgamma and dbeta (overwritten). `beta`, the forward's shift, is optional: a backend may use it
   * to recompute the activation's input from x instead of reading y.
   * x null (backends with `batchNormInPlace`): the forward wrote y over x. Then `beta` is required, the
   * activation is invertible (`invertibleAct`) and gamma has no zero: x's normalised value is recovered
   * from y as (act^-1(y) - beta) / gamma.
   */
  batchNormBackward(N: number, C: number, HW: number, x: Float32Array | null, y: Float32Array, dy: Float32Array,
                    gamma: Float32Array, mean: Float32Array, invstd: Float32Array, act: Act,
                    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, layout?: Layout, beta?: Float32Array): void;

  /**
   * Optional, with the three below: batch-norm in training, with its activation, read by the ConvTranspose2d after
   * it, without its output being stored. `fusesNormConvTranspose` says which (the equivalent Conv2d's `shape`, whose
   * K is the batch-norm's channels; the activation) the backend takes. batchNormStats writes batchNormTrain's
   * mean, invstd and variance only; normConvTransposeForward is conv2dBackwardData(g, act(batch-norm(x)), w) + bias
   * from the batch-norm's input x (layout g.yLayout); normConvTransposeBackward, given dy (the convolution's output
   * gradient), writes dw, db (when not null), dgamma, dbeta and dx, the batch-norm input's gradient (overwritten).
   */
  fusesNormConvTranspose?(shape: ConvShape, act: Act): boolean;
  batchNormStats?(N: number, C: number, HW: number, x: Float32Array, eps: number, mean: Float32Array,
                  invstd: Float32Array, variance: Float32Array, layout?: Layout): void;
  normConvTransposeForward?(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, norm: NormArgs,
                            y: Float32Array): void;
  normConvTransposeBackward?(g: ConvGeom, x: Float32Array, w: Float32Array, norm: NormArgs, dy: Float32Array,
                             dw: Float32Array, db: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
                             dx: Float32Array): void;

  /**
   * Optional, with the one below: a convolution followed by a batch-norm in training and its activation, in one
   * kernel that never stores the convolution's output. `fusesConvNorm` says which (the convolution's shape, the
   * activation) the backend takes; convNormForward writes y = act(batch-norm(conv2d(x, w, bias))) (layout g.yLayout)
   * and the batch's mean, invstd and variance into `norm`, as batchNormTrain does after conv2d.
   */
  fusesConvNorm?(shape: ConvShape, act: Act): boolean;
  convNormForward?(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, norm: PostNormArgs,
                   y: Float32Array): void;
  /**
   * Optional, with fusesConvNormBackward saying which shapes and activations it takes: convNormForward's backward
   * when the input needs no gradient (a first layer), from y (convNormForward's
   * output, from which the batch-norm's normalised value is recovered, as batchNormBackward does in place: the
   * activation none or leaky) and dy (y's gradient): writes dw, db (when not null), dgamma and dbeta (overwritten)
   * as conv2dBackwardWeight after batchNormBackward would, without the batch-norm's input gradient being stored.
   */
  fusesConvNormBackward?(shape: ConvShape, act: Act): boolean;
  convNormBackward?(g: ConvGeom, x: Float32Array, norm: NormArgs, y: Float32Array, dy: Float32Array, dw: Float32Array,
                    db: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array): void;

  /**
   * Optional: mean((input - target)^2) over n values, with grad = 2 scale (input - target) / n in exactly the arithmetic
   * of engine/loss.ts mseLoss (the difference in double, its product with 2 scale / n rounded to float: the same
   * gradient, bit for bit; the sum may round differently in its last bits).
   */
  mseLoss?(n: number, input: Float32Array, target: Float32Array, grad: Float32Array, scale: number): number;

  /** y = act(x), n elements (y may be x). */
  activation(act: Act, n: number, x: Float32Array, y: Float32Array): void;
  /** dx = dy * act'(x), where y = act(x) is the forward output (dx may be dy). */
  activationBackward(act: Act, n: number, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void;

  /**
   * Optional optimiser steps over one parameter, in exactly the float32 arithmetic of the TypeScript
   * optimisers (src/engine/optim; bit-identical results); the optimisers call them for parameters whose
   * `device` has them, with their state arrays from the device's `alloc`.
   * SGD with momentum, no weight decay, not nesterov:
   *   buf = fround(fround(buf * momentum) + gradScale * grad);  data = fround(data + negLr * buf)
   */
  sgdMomentumStep?(n: number, data: Float32Array, grad: Float32Array, buf: Float32Array, momentum: number,
                   gradScale: number, negLr: number): void;
  /** Adam / AdamW without amsgrad (see Adam.updateGroup for the arithmetic and the scalars). */
  adamStep?(n: number, data: Float32Array, grad: Float32Array, expAvg: Float32Array, expAvgSq: Float32Array,
            s: AdamStepScalars): void;

  /** Releases threads and memory. */
  dispose?(): void;
}

/** The per-step scalars of adamStep, each already a float32 value. */
export interface AdamStepScalars {
  sign: number; beta1: number; oneMinusBeta1: number; beta2: number; oneMinusBeta2: number; eps: number;
  weightDecay: number; decay: number; negStepSize: number; bc2Sqrt: number; useWeightDecay: boolean; decoupled: boolean;
}

export function convOutSize(inSize: number, k: number, stride: number, pad: number): number {
  return Math.floor((inSize + 2 * pad - k) / stride) + 1;
}
