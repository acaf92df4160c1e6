/**
 * Loading the optional native addon (native/build/Release/latentlab.node, built from native/ on
 * oneDNN). Node only: it uses createRequire. Nothing here runs at import time.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** How to get the native backend, appended to every load error. */
export const NATIVE_HINT = 'to enable it: apt-get install libdnnl-dev, then npm run build:native';

export interface NativeInfo {
  /** oneDNN version, e.g. "2.6.3". */
  dnnl: string;
  /** oneDNN's CPU threading runtime: 'omp', 'tbb', 'seq' or 'other'. */
  cpuRuntime: string;
  maxThreads: number;
  numProcs: number;
  /** The instruction set oneDNN dispatches to, e.g. 'avx512_core_bf16'. */
  isa: string;
  /** kernelTableHash() of the kernel table the addon was built from (src/engine/kernels/table.ts). */
  tableHash: number;
}

/** One native context: threads, precision and the primitive caches of one backend. */
export interface NativeContext {
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
       A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void;
  conv2d(N: number, C: number, H: number, W: number, K: number, R: number, S: number,
         sh: number, sw: number, ph: number, pw: number, OH: number, OW: number,
         x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, xBlocked?: boolean, yBlocked?: boolean): void;
  conv2dBackwardData(N: number, C: number, H: number, W: number, K: number, R: number, S: number,
                     sh: number, sw: number, ph: number, pw: number, OH: number, OW: number,
                     dy: Float32Array, w: Float32Array, unused: null, dx: Float32Array, xBlocked?: boolean, yBlocked?: boolean): void;
  conv2dBackwardWeight(N: number, C: number, H: number, W: number, K: number, R: number, S: number,
                       sh: number, sw: number, ph: number, pw: number, OH: number, OW: number,
                       x: Float32Array, dy: Float32Array, db: Float32Array | null, dw: Float32Array, xBlocked?: boolean, yBlocked?: boolean): void;
  /** y null: the statistics only (then gamma and beta may be null too). */
  batchNormTrain(N: number, C: number, HW: number, x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null,
                 eps: number, actKind: number, slope: number, y: Float32Array | null, mean: Float32Array,
                 invstd: Float32Array, blocked?: boolean, variance?: Float32Array | null): void;
  channelAffine(N: number, C: number, HW: number, x: Float32Array, scale: Float32Array, shift: Float32Array,
                actKind: number, slope: number, y: Float32Array, blocked?: boolean): void;
  batchNormBackward(N: number, C: number, HW: number, x: Float32Array | null, y: Float32Array, dy: Float32Array,
                    gamma: Float32Array, mean: Float32Array, invstd: Float32Array, actKind: number, slope: number,
                    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, blocked?: boolean,
                    beta?: Float32Array | null): void;
  normConvT1Forward(N: number, K: number, H: number, W: number, x: Float32Array, w: Float32Array, bias: Float32Array | null,
                    gamma: Float32Array, beta: Float32Array, mean: Float32Array, invstd: Float32Array, actKind: number,
                    slope: number, out: Float32Array): void;
  normConvT1Backward(N: number, K: number, H: number, W: number, x: Float32Array, w: Float32Array, gamma: Float32Array,
                     beta: Float32Array, mean: Float32Array, invstd: Float32Array, actKind: number, slope: number,
                     dy: Float32Array, dw: Float32Array, db: Float32Array | null, dgamma: Float32Array,
                     dbeta: Float32Array, dx: Float32Array): void;
  /** y = act(batch-norm(conv2d(x, w, bias))) from one input channel; writes mean, invstd and variance. */
  convNormForward(N: number, C: number, H: number, W: number, K: number, R: number, S: number, strideH: number,
                  strideW: number, padH: number, padW: number, OH: number, OW: number, x: Float32Array, w: Float32Array,
                  bias: Float32Array | null, gamma: Float32Array, beta: Float32Array, eps: number, actKind: number,
                  slope: number, y: Float32Array, mean: Float32Array, invstd: Float32Array, variance: Float32Array,
                  yBlocked: boolean): void;
  /** convNormForward's backward for a first layer: dw, db, dgamma, dbeta from y (its output) and dy. */
  convNormBackward(N: number, C: number, H: number, W: number, K: number, R: number, S: number, strideH: number,
                   strideW: number, padH: number, padW: number, OH: number, OW: number, x: Float32Array,
                   gamma: Float32Array, beta: Float32Array, invstd: Float32Array, actKind: number, slope: number,
                   y: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null, dgamma: Float32Array,
                   dbeta: Float32Array, yBlocked: boolean): void;
  /** NCHW <-> nChw16c. */
  reorderLayout(N: number, C: number, HW: number, src: Float32Array, dst: Float32Array, toBlocked: boolean): void;
  channelSums(N: number, C: number, HW: number, x: Float32Array, out: Float32Array, blocked: boolean): void;
  /** The sum of (input - target)^2; grad = float(2 scale / n * (input - target)). */
  mseLoss(n: number, input: Float32Array, target: Float32Array, grad: Float32Array, scale: number): number;
  sgdMomentumStep(n: number, data: Float32Array, grad: Float32Array, buf: Float32Array, momentum: number,
                  gradScale: number, negLr: number): void;
  /** scalars: the AdamStepScalars fields in the order of KERNEL_TABLE.adamScalars. */
  adamStep(n: number, data: Float32Array, grad: Float32Array, expAvg: Float32Array, expAvgSq: Float32Array,
           scalars: Float32Array, useWeightDecay: boolean, decoupled: boolean): void;
  activation(actKind: number, slope: number, n: number, x: Float32Array, y: Float32Array): void;
  activationBackward(actKind: number, slope: number, n: number, x: Float32Array, y: Float32Array,
                     dy: Float32Array, dx: Float32Array): void;
  /** The oneDNN implementation behind a cached convolution (kind 0 fwd, 1 bwd-data, 2 bwd-weights), or null. */
  convImpl(kind: number, N: number, C: number, H: number, W: number, K: number, R: number, S: number,
           sh: number, sw: number, ph: number, pw: number, OH: number, OW: number, hasBias: boolean,
           xBlocked?: boolean, yBlocked?: boolean): string | null;
  dispose(): void;
}

export interface NativeAddon {
  /** new Context(threads, bf16, layout): layout 0 = oneDNN's blocked layouts with cached reorders,
   * 1 = plain NCHW activations, 2 = the faster of the two per shape (timed on first use),
   * 3 = per shape by a fixed rule. bf16WeightGrad: with bf16, backward-weights in bf16 too (else fp32).
   * bf16Timed: with bf16, each convolution and direction in the faster of bf16 and fp32 (timed on first use). */
  Context: new (threads: number, bf16: boolean, layout: number, bf16WeightGrad: boolean, bf16Timed?: boolean) => NativeContext;
  info(): NativeInfo;
  /** A zero-filled Float32Array over 64-byte aligned native memory. */
  allocAligned(n: number): Float32Array;
  /** The fp32 FMA peak probe of `npm run bench`: `threads` OpenMP threads each run `iters` rounds of 16
   * independent vector FMAs in registers (AVX-512, else AVX2+FMA, else scalar). */
  fmaPeak(threads: number, iters: number): { gflops: number; seconds: number; isa: string; check: number };
}

/**
 * Where the addon is expected: $LATENTLAB_NATIVE_ADDON when set, else native/build/Release/latentlab.node
 * in the package (the same relative path from src/ and from dist/).
 */
export function nativeAddonPath(): string {
  const env = process.env.LATENTLAB_NATIVE_ADDON;
  if (env) return env;
  return fileURLToPath(new URL('../../../../native/build/Release/latentlab.node', import.meta.url));
}

const loaded = new Map<string, NativeAddon>();

/** libgomp's spin count before a waiting thread sleeps, unless the environment sets one. */
export const GOMP_SPINCOUNT_DEFAULT = 10_000;

/**
 * Loads the addon (once per path; by default from nativeAddonPath()); throws an Error that says how to
 * enable it when it is missing or cannot load (e.g. libdnnl.so.2 is not installed).
 */
export function loadNativeAddon(path = nativeAddonPath()): NativeAddon {
  const hit = loaded.get(path);
  if (hit) return hit;
  if (!existsSync(path)) throw new Error(`native addon not built (${path} is missing); ${NATIVE_HINT}`);
  // libgomp reads its spin policy from the environment once, when the addon pulls it in. Its default
  // (spin ~300k iterations before sleeping) burns a core after every parallel region, which on a machine
  // shared with other processes starves our own main thread: measured 5-10x slower steps under load.
  // Unless the user chose (OMP_WAIT_POLICY / GOMP_SPINCOUNT), spin briefly; the variable is removed again
  // afterwards so that child processes do not inherit it.
  const env = process.env;
  const setSpin = env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined;
  if (setSpin) env.GOMP_SPINCOUNT = String(GOMP_SPINCOUNT_DEFAULT);
  try {
    const require = createRequire(import.meta.url);
    const addon = require(path) as NativeAddon;
    loaded.set(path, addon);
    return addon;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new Error(`native addon failed to load (${msg}); ${NATIVE_HINT}`, { cause: e });
  } finally {
    if (setSpin) delete env.GOMP_SPINCOUNT;
  }
}

/** True when the addon loads here. */
export function nativeAvailable(): boolean {
  try { loadNativeAddon(); return true; } catch { return false; }
}
