/**
 * Loss terms on a latent code, in the style of loss.ts (each returns its value and, when given arrays,
 * writes its gradient): the KL divergence of a diagonal Gaussian posterior to N(0, I) (a VAE's), the
 * VAE objective with a KL weight and its linear warm-up, the evidence lower bound per sample, and
 * Keras's L1 activity regulariser (a sparse autoencoder's). Rows are samples: arrays are [N, D] row-major.
 */
import { mseLoss } from './loss.js';

/**
 * KL(N(mu, exp(logvar)) || N(0, I)) summed over the D dimensions and averaged over the N rows:
 * mean_n -0.5 sum_d (1 + logvar - mu^2 - exp(logvar)), as PyTorch's
 * `(-0.5 * (1 + lv - mu.pow(2) - lv.exp()).sum(1)).mean()`.
 * With dMu / dLogvar, writes scale * the gradient: mu / N and (exp(logvar) - 1) / (2N).
 */
export function klDivergence(mu: Float32Array, logvar: Float32Array, N: number, D: number,
                             dMu?: Float32Array, dLogvar?: Float32Array, scale = 1): number {
  const n = N * D;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const m = mu[i], l = logvar[i], e = Math.exp(l);
    s += 1 + l - m * m - e;
    if (dMu) dMu[i] = (scale * m) / N;
    if (dLogvar) dLogvar[i] = (scale * 0.5 * (e - 1)) / N;
  }
  return (-0.5 * s) / N;
}

/** The KL of each row (nats), D dimensions each. */
export function klPerSample(mu: Float32Array, logvar: Float32Array, N: number, D: number): Float64Array {
  const out = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    let s = 0;
    for (let i = r * D; i < (r + 1) * D; i++) { const l = logvar[i]; s += 1 + l - mu[i] * mu[i] - Math.exp(l); }
    out[r] = -0.5 * s;
  }
  return out;
}

/** The KL of each latent dimension averaged over the rows (a dimension near 0 nats is unused: posterior collapse). */
export function klPerDimension(mu: Float32Array, logvar: Float32Array, N: number, D: number): Float64Array {
  const out = new Float64Array(D);
  for (let r = 0; r < N; r++)
    for (let d = 0; d < D; d++) { const i = r * D + d, l = logvar[i]; out[d] += -0.5 * (1 + l - mu[i] * mu[i] - Math.exp(l)); }
  for (let d = 0; d < D; d++) out[d] /= N;
  return out;
}

/**
 * The KL weight at a training step (0-based: the number of steps done before this one) with a linear
 * warm-up over `warmupSteps`: beta * min(1, step / warmupSteps); beta from the first step when
 * warmupSteps is 0. A pure function of the step, so a resumed run continues the same schedule.
 */
export function klWeight(step: number, beta: number, warmupSteps = 0): number {
  if (!(beta >= 0) || !Number.isFinite(beta)) throw new Error(`--beta: expected a number >= 0, got ${beta}`);
  if (!(Number.isInteger(warmupSteps) && warmupSteps >= 0)) throw new Error(`--kl-warmup: expected a whole number of steps >= 0, got ${warmupSteps}`);
  if (warmupSteps === 0) return beta;
  return beta * Math.min(1, Math.max(0, step) / warmupSteps);
}

export interface VaeTerms {
  /** reconstruction + weight * kl, the value minimised. */
  loss: number;
  /** Mean squared error per element, as the plain autoencoder's loss. */
  reconstruction: number;
  /** KL to the prior per sample (nats), see klDivergence. */
  kl: number;
  /** The KL weight used (klWeight of the step). */
  weight: number;
}

/**
 * The VAE objective of one batch of N samples of P values with D latent dimensions:
 * mse(y, x) + weight * KL. Writes dL/dy into dy (N*P floats) and the KL
 * term's gradients into dMu and dLogvar (N*D floats each), for VAE.backward(dy, dMu, dLogvar).
 *
 * Scale: the reconstruction is per value (the plain autoencoder's loss, so test MSEs compare), the KL per
 * sample. The negative ELBO of a Gaussian decoder N(y, s^2 I), divided by P and multiplied by 2 s^2, is
 * mse + (2 s^2 / P) KL: weight = 2 s^2 / P, e.g. 1/784 ~ 1.3e-3 for s^2 = 0.5 on the [-1, 1] scale. A weight
 * of 1 makes the KL dominate and the posterior collapse to the prior.
 */
export function vaeObjective(y: Float32Array, x: Float32Array, mu: Float32Array, logvar: Float32Array,
                             N: number, P: number, D: number, weight: number,
                             dy?: Float32Array, dMu?: Float32Array, dLogvar?: Float32Array): VaeTerms {
  const reconstruction = mseLoss(y, x, N * P, dy);
  const kl = klDivergence(mu, logvar, N, D, dMu, dLogvar, weight);
  return { loss: reconstruction + weight * kl, reconstruction, kl, weight };
}

/**
 * The evidence lower bound of each sample (nats) under a Gaussian decoder of unit variance, p(x|z) =
 * N(y, I) over the P values of a sample: ELBO = -0.5 sum_p (x - y)^2 - 0.5 P log(2 pi) - KL, with y decoded
 * from one z (the mean, in evaluation). Also returns the two terms per sample.
 */
export function gaussianElbo(y: Float32Array, x: Float32Array, mu: Float32Array, logvar: Float32Array,
                             N: number, P: number, D: number): { elbo: Float64Array; logLikelihood: Float64Array; kl: Float64Array } {
  const kl = klPerSample(mu, logvar, N, D), ll = new Float64Array(N), elbo = new Float64Array(N);
  const c = 0.5 * P * Math.log(2 * Math.PI);
  for (let r = 0; r < N; r++) {
    let s = 0;
    for (let i = r * P; i < (r + 1) * P; i++) { const d = x[i] - y[i]; s += d * d; }
    ll[r] = -0.5 * s - c;
    elbo[r] = ll[r] - kl[r];
  }
  return { elbo, logLikelihood: ll, kl };
}

/**
 * Keras's L1 activity regulariser on a layer's output z (N rows of D): lambda * sum |z| / N (Keras divides an
 * activity regulariser's value by the batch size). With grad, writes its gradient lambda * sign(z) / N
 * (0 at 0, as torch.abs's backward), to add to dL/dz.
 */
export function l1Activity(z: Float32Array, N: number, D: number, lambda: number, grad?: Float32Array): number {
  const n = N * D;
  let s = 0;
  const k = lambda / N;
  for (let i = 0; i < n; i++) {
    const v = z[i];
    s += Math.abs(v);
    if (grad) grad[i] = v > 0 ? k : v < 0 ? -k : 0;
  }
  return (lambda * s) / N;
}
