/**
 * Kernels composed of the Backend's primitives and a TypeScript loop, for every backend: they work in place
 * on the backend's arrays (wasm memory views, native arrays alike) and take either activation layout.
 */
import type { Act, Backend, Layout } from './index.js';

/** Channels per block of `layout`: 1 for NCHW, the backend's channelBlock for blocked. */
function blockOf(b: Backend, layout: Layout): number {
  if (layout === 'nchw') return 1;
  if (!b.channelBlock) throw new Error(`the ${b.name} backend has no blocked layout`);
  return b.channelBlock;
}

/**
 * out[c] = the sum of channel c of x [N, C, HW] (a bias gradient), on the backend when it has the kernel.
 * Four partial sums break the add chain (about twice as fast in V8).
 */
export function channelSums(b: Backend, N: number, C: number, HW: number, x: Float32Array, out: Float32Array,
                            layout: Layout = 'nchw'): void {
  if (b.channelSums) { b.channelSums(N, C, HW, x, out, layout); return; }
  if (layout !== 'nchw') throw new Error(`the ${b.name} backend has no blocked layout`);
  out.fill(0, 0, C);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = 0;
      const o = (n * C + c) * HW;
      for (; i + 3 < HW; i += 4) { s0 += x[o + i]; s1 += x[o + i + 1]; s2 += x[o + i + 2]; s3 += x[o + i + 3]; }
      for (; i < HW; i++) s0 += x[o + i];
      out[c] += (s0 + s1) + (s2 + s3);
    }
}

/**
 * Backward of batch-norm in eval mode, y = act(gamma * (x - mean) / sqrt(var + eps) + beta) with the
 * running statistics fixed: writes dx, dgamma and dbeta (overwritten). dx may be dy.
 */
export function batchNormEvalBackward(b: Backend, N: number, C: number, HW: number, x: Float32Array, y: Float32Array,
                                      dy: Float32Array, gamma: Float32Array, runningMean: Float32Array,
                                      runningVar: Float32Array, eps: number, act: Act, dx: Float32Array,
                                      dgamma: Float32Array, dbeta: Float32Array, layout: Layout = 'nchw'): void {
  // g = dy * act'(pre-activation), from the output (its sign is the input's for every fusable activation)
  b.activationBackward(act, N * C * HW, y, y, dy, dx);
  const B = blockOf(b, layout);
  for (let c = 0; c < C; c++) {
    const is = 1 / Math.sqrt(runningVar[c] + eps), scale = gamma[c] * is, mu = runningMean[c];
    // element (n, c, i) is at n*C*HW + c*HW + i in NCHW, at n*C*HW + (c - c%B)*HW + i*B + c%B blocked
    const l = c % B, cHW = (c - l) * HW;
    let sg = 0, sgx = 0;
    for (let n = 0; n < N; n++) {
      const o = n * C * HW + cHW + l;
      for (let i = 0; i < HW; i++) {
        const j = o + i * B, g = dx[j];
        sg += g;
        sgx += g * (x[j] - mu) * is;
        dx[j] = g * scale;
      }
    }
    dbeta[c] = sg;
    dgamma[c] = sgx;
  }
}
