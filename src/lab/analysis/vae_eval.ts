/**
 * Evaluation of a VAE on test images: per image the reconstruction error (MSE of the decoded posterior
 * mean), the KL of its posterior to the prior, and the ELBO (engine gaussianElbo: a unit-variance
 * Gaussian decoder on the [-1, 1] scale); their means; the KL per latent dimension. And the points of
 * the prior grid `sample` decodes for a VAE (the Keras tutorial's manifold: a grid at the normal
 * distribution's quantiles).
 */
import { gaussianElbo, klPerDimension } from '../../engine/latent_loss.js';
import type { Split } from '../data/idx-format.js';
import type { VAE } from '../models/vae.js';
import { perImageMse } from './quality.js';

export interface VaeEvaluation {
  n: number;
  /** Per image (n each): MSE of the reconstruction from the mean ([-1, 1] scale), KL (nats), ELBO (nats). */
  reconstruction: Float64Array;
  kl: Float64Array;
  elbo: Float64Array;
  /** Their means over the images. */
  mean: { reconstruction: number; kl: number; elbo: number };
  /** The KL of each latent dimension, averaged over the images (near 0: an unused dimension). */
  klPerDim: Float64Array;
  /** The posterior means and log-variances (n * latentDim each). */
  mu: Float32Array;
  logvar: Float32Array;
  labels: Uint8Array;
}

/** Evaluates the first `limit` images of a split (uint8 pixels, scaled to [-1, 1] as in training). */
export function evaluateVae(model: VAE, split: Split, limit = split.n, batchSize = 64): VaeEvaluation {
  const n = Math.min(limit, split.n), P = split.rows * split.cols, D = model.latentDim;
  const x = new Float32Array(n * P);
  for (let i = 0; i < n * P; i++) x[i] = split.images[i] / 127.5 - 1;
  const { mu, logvar } = model.encodeStats(x, n, batchSize);
  const y = model.decode(mu, n, batchSize);
  const { elbo, kl } = gaussianElbo(y, x, mu, logvar, n, P, D);
  const reconstruction = perImageMse(y, x, n, P);
  const m = (a: Float64Array): number => a.reduce((s, v) => s + v, 0) / n;
  return {
    n, reconstruction, kl, elbo,
    mean: { reconstruction: m(reconstruction), kl: m(kl), elbo: m(elbo) },
    klPerDim: klPerDimension(mu, logvar, n, D),
    mu, logvar, labels: split.labels.slice(0, n),
  };
}

/**
 * The inverse of the standard normal CDF (Acklam's rational approximation refined by one Halley step;
 * error below 1e-12 in practice). p in (0, 1).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: expected p in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  let x: number;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - pl) {
    const q = p - 0.5, r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // one Halley step on Phi(x) - p
  const e = 0.5 * erfc(-x / Math.SQRT2) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** The complementary error function: erf's Taylor series below 3, a continued fraction (Lentz) above. */
function erfc(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    // erf by its Taylor series, converges fast for |x| < 3
    let sum = z, term = z, k = 0;
    while (Math.abs(term) > 1e-17 * Math.abs(sum)) {
      k++;
      term *= (-z * z) / k;
      sum += term / (2 * k + 1);
    }
    r = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = z, C = z, Dd = 0;
    for (let i = 1; i < 60; i++) {
      const an = i / 2;
      Dd = z + an * Dd; Dd = 1 / Dd;
      C = z + an / C;
      const delta = C * Dd;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  }
  return x >= 0 ? r : 2 - r;
}

/**
 * The n x n points of the prior grid in the order the sample grid shows them (row 0 at the top, column 0
 * at the left; as viz boxGridPoints): coordinates at the standard normal's quantiles of n evenly spaced
 * probabilities from lo to hi (default 0.05 to 0.95, as the Keras VAE tutorial). For a latent of D > 2
 * dimensions, the grid spans the first two and the others stay 0 (the prior's mean). Returns n*n*D floats.
 */
export function priorGridPoints(n: number, D = 2, lo = 0.05, hi = 0.95): Float32Array {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`--grid: expected a whole number >= 1, got ${n}`);
  if (!(D >= 2)) throw new Error(`priorGridPoints: expected a latent of 2 or more dimensions, got ${D}`);
  const q = Array.from({ length: n }, (_, i) => normalQuantile(n === 1 ? 0.5 : lo + ((hi - lo) * i) / (n - 1)));
  const out = new Float32Array(n * n * D);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++) {
      out[(r * n + c) * D] = q[c];
      out[(r * n + c) * D + 1] = q[n - 1 - r];
    }
  return out;
}
