/**
 * Image quality of reconstructions, per image and overall: mean squared error and PSNR. Images follow the
 * image contract (../data/image.ts: floats in [-1, 1], IMAGE_PIXELS values each); PSNR is on [0, 1]
 * pixels, as eval reports it.
 */
import { IMAGE_PIXELS, MSE_TO_UNIT, psnrOfUnitMse } from '../data/image.js';

/** PSNR (dB) of a mean squared error on the [-1, 1] scale. */
export function psnrFromMse(mse: number): number {
  return psnrOfUnitMse(mse * MSE_TO_UNIT);
}

/** Mean squared error of each of N images of P values ([-1, 1] scale). */
export function perImageMse(a: Float32Array, b: Float32Array, N: number, P = IMAGE_PIXELS): Float64Array {
  const out = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    let s = 0;
    for (let i = r * P; i < (r + 1) * P; i++) { const d = a[i] - b[i]; s += d * d; }
    out[r] = s / P;
  }
  return out;
}

/** PSNR (dB) of each of N images against its reference. */
export function perImagePsnr(a: Float32Array, b: Float32Array, N: number, P = IMAGE_PIXELS): Float64Array {
  return perImageMse(a, b, N, P).map(psnrFromMse);
}

/** The PSNR (dB) of N images together (of their mean squared error) and their mean squared error. */
export function psnr(a: Float32Array, b: Float32Array, N: number, P = IMAGE_PIXELS): { mse: number; psnr: number } {
  const e = perImageMse(a, b, N, P);
  const mse = e.reduce((s, v) => s + v, 0) / N;
  return { mse, psnr: psnrFromMse(mse) };
}
