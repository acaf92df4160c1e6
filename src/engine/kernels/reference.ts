/**
 * The reference backend: plain TypeScript written for clarity, single-threaded.
 * It is the oracle the faster backends are tested against.
 */
import { checkBnInPlace, type Act, type Backend, type ConvGeom, type Layout } from './index.js';

export function actForward(act: Act, v: number): number {
  switch (act.kind) {
    case 'none': return v;
    case 'relu': return v > 0 ? v : 0;
    case 'leaky': return v > 0 ? v : v * act.slope;
    case 'tanh': return Math.tanh(v);
    case 'sigmoid': return 1 / (1 + Math.exp(-v));
  }
}

/** d act(x) / dx, from the input x and the output y = act(x). */
export function actGrad(act: Act, x: number, y: number): number {
  switch (act.kind) {
    case 'none': return 1;
    case 'relu': return x > 0 ? 1 : 0;
    case 'leaky': return x > 0 ? 1 : act.slope;
    case 'tanh': return 1 - y * y;
    case 'sigmoid': return y * (1 - y);
  }
}

/** Unfolds one image [C,H,W] into columns [C*R*S, OH*OW]. */
export function im2col(g: ConvGeom, x: Float32Array, xOff: number, col: Float32Array): void {
  const { C, H, W, R, S, strideH, strideW, padH, padW, OH, OW } = g;
  for (let c = 0; c < C; c++)
    for (let r = 0; r < R; r++)
      for (let s = 0; s < S; s++) {
        const row = ((c * R + r) * S + s) * OH * OW;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * strideH - padH + r;
          for (let ow = 0; ow < OW; ow++) {
            const iw = ow * strideW - padW + s;
            col[row + oh * OW + ow] = ih >= 0 && ih < H && iw >= 0 && iw < W ? x[xOff + (c * H + ih) * W + iw] : 0;
          }
        }
      }
}

/** Folds columns [C*R*S, OH*OW] back into one image [C,H,W], summing overlaps (dx is overwritten). */
export function col2im(g: ConvGeom, col: Float32Array, dx: Float32Array, dxOff: number): void {
  const { C, H, W, R, S, strideH, strideW, padH, padW, OH, OW } = g;
  dx.fill(0, dxOff, dxOff + C * H * W);
  for (let c = 0; c < C; c++)
    for (let r = 0; r < R; r++)
      for (let s = 0; s < S; s++) {
        const row = ((c * R + r) * S + s) * OH * OW;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * strideH - padH + r;
          if (ih < 0 || ih >= H) continue;
          for (let ow = 0; ow < OW; ow++) {
            const iw = ow * strideW - padW + s;
            if (iw >= 0 && iw < W) dx[dxOff + (c * H + ih) * W + iw] += col[row + oh * OW + ow];
          }
        }
      }
}

export function gemmRef(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
                        A: Float32Array, B: Float32Array, beta: number, C: Float32Array,
                        aOff = 0, bOff = 0, cOff = 0): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[aOff + k * M + i] : A[aOff + i * K + k];
        const b = transB ? B[bOff + j * K + k] : B[bOff + k * N + j];
        acc += a * b;
      }
      const c = cOff + i * N + j;
      C[c] = alpha * acc + (beta === 0 ? 0 : beta * C[c]);
    }
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly batchNormInPlace: boolean = true;
  readonly threads = 1;

  alloc(n: number): Float32Array { return new Float32Array(n); }
  free(_a: Float32Array): void { /* garbage-collected */ }

  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
       A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void {
    gemmRef(transA, transB, M, N, K, alpha, A, B, beta, C);
  }

  conv2d(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array): void {
    const { N, C, H, W, K, R, S, OH, OW } = g;
    const P = OH * OW, CRS = C * R * S;
    const col = new Float32Array(CRS * P);
    for (let n = 0; n < N; n++) {
      im2col(g, x, n * C * H * W, col);
      // y[n] (K x P) = w (K x CRS) @ col (CRS x P)
      gemmRef(false, false, K, P, CRS, 1, w, col, 0, y, 0, 0, n * K * P);
      if (bias) for (let k = 0; k < K; k++) for (let p = 0; p < P; p++) y[n * K * P + k * P + p] += bias[k];
    }
  }

  conv2dBackwardData(g: ConvGeom, dy: Float32Array, w: Float32Array, dx: Float32Array): void {
    const { N, C, H, W, K, R, S, OH, OW } = g;
    const P = OH * OW, CRS = C * R * S;
    const col = new Float32Array(CRS * P);
    for (let n = 0; n < N; n++) {
      // col (CRS x P) = w^T (CRS x K) @ dy[n] (K x P)
      gemmRef(true, false, CRS, P, K, 1, w, dy, 0, col, 0, n * K * P, 0);
      col2im(g, col, dx, n * C * H * W);
    }
  }

  conv2dBackwardWeight(g: ConvGeom, x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null): void {
    const { N, C, H, W, K, R, S, OH, OW } = g;
    const P = OH * OW, CRS = C * R * S;
    const col = new Float32Array(CRS * P);
    dw.fill(0, 0, K * CRS);
    for (let n = 0; n < N; n++) {
      im2col(g, x, n * C * H * W, col);
      // dw (K x CRS) += dy[n] (K x P) @ col^T (P x CRS)
      gemmRef(false, true, K, CRS, P, 1, dy, col, 1, dw, n * K * P, 0, 0);
    }
    if (db) {
      db.fill(0, 0, K);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) {
        let s = 0;
        for (let p = 0; p < P; p++) s += dy[(n * K + k) * P + p];
        db[k] += s;
      }
    }
  }

  batchNormTrain(N: number, C: number, HW: number, x: Float32Array, gamma: Float32Array, beta: Float32Array,
                 eps: number, act: Act, y: Float32Array, mean: Float32Array, invstd: Float32Array, _layout?: Layout,
                 variance?: Float32Array): void {
    const M = N * HW;
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) sum += x[(n * C + c) * HW + i];
      const mu = sum / M;
      let sq = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) { const d = x[(n * C + c) * HW + i] - mu; sq += d * d; }
      const is = 1 / Math.sqrt(sq / M + eps);
      mean[c] = mu; invstd[c] = is;
      if (variance) variance[c] = sq / M;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        y[j] = actForward(act, gamma[c] * (x[j] - mu) * is + beta[c]);
      }
    }
  }

  channelAffine(N: number, C: number, HW: number, x: Float32Array, scale: Float32Array, shift: Float32Array,
                act: Act, y: Float32Array): void {
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++) {
      const j = (n * C + c) * HW + i;
      y[j] = actForward(act, x[j] * scale[c] + shift[c]);
    }
  }

  batchNormBackward(N: number, C: number, HW: number, x: Float32Array | null, y: Float32Array, dy: Float32Array,
                    gamma: Float32Array, mean: Float32Array, invstd: Float32Array, act: Act,
                    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, _layout?: Layout, beta?: Float32Array): void {
    const M = N * HW;
    checkBnInPlace(x, act, beta);
    for (let c = 0; c < C; c++) {
      const mu = mean[c], is = invstd[c], gc = gamma[c], bc = beta ? beta[c] : 0;
      // x's normalised value, from x or (in place) from y
      const xhat = (j: number): number => x ? (x[j] - mu) * is : (actInverse(act, y[j]) - bc) / gc;
      let sdz = 0, sdzx = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        const g = dyPre(act, y[j], dy[j]);
        sdz += g; sdzx += g * xhat(j);
      }
      dbeta[c] = sdz; dgamma[c] = sdzx;
      const k = gc * is / M;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        const g = dyPre(act, y[j], dy[j]);
        dx[j] = k * (M * g - sdz - xhat(j) * sdzx);
      }
    }
  }

  activation(act: Act, n: number, x: Float32Array, y: Float32Array): void {
    for (let i = 0; i < n; i++) y[i] = actForward(act, x[i]);
  }

  activationBackward(act: Act, n: number, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void {
    for (let i = 0; i < n; i++) dx[i] = dy[i] * actGrad(act, x[i], y[i]);
  }
}

/** The activation's input from its output, for an invertible activation (none, leaky with slope > 0). */
export function actInverse(act: Act, y: number): number {
  return act.kind === 'leaky' && y < 0 ? y / act.slope : y;
}

/** The gradient before a fused activation, from its output y (valid for relu, leaky with slope >= 0, tanh, sigmoid:
 * the sign of y is the sign of the input). */
export function dyPre(act: Act, y: number, dy: number): number {
  switch (act.kind) {
    case 'none': return dy;
    case 'relu': return y > 0 ? dy : 0;
    case 'leaky': return y > 0 ? dy : dy * act.slope;
    case 'tanh': return dy * (1 - y * y);
    case 'sigmoid': return dy * y * (1 - y);
  }
}
