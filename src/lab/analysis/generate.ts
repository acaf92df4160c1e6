/**
 * New digits from a trained autoencoder: latent points near where a digit lives, to be decoded.
 * Browser-safe (no Node modules): works on anything shaped like a run.
 *
 *  - supervised runs (config.supervised): the digit's target point of the latent map plus
 *    Gaussian noise of standard deviation `spread`;
 *  - otherwise: around the digit's centroid in the training latents (else the test latents),
 *    the noise of each dimension scaled by that digit's standard deviation there times `spread`.
 */
import type { Rng } from '../../engine/rng.js';

/** Latents of labelled images: z is n × dim, row-major. */
export interface LabelledLatents {
  z: ArrayLike<number>;
  dim: number;
  labels: ArrayLike<number>;
  n: number;
}

/** What digitLatents needs of a run (a `Run` from lab/run.ts fits). */
export interface RunLike {
  config: { supervised?: Record<string, readonly [number, number] | number[]> | null };
  testLatents?: LabelledLatents | null;
  trainLatents?: LabelledLatents | null;
}

export interface Centroids {
  dim: number;
  /** Number of classes (rows): one more than the largest label seen, at least 10. */
  classes: number;
  /** classes × dim means (NaN for a class without points). */
  mean: Float64Array;
  /** classes × dim standard deviations (population; 0 for a single point, NaN for none). */
  std: Float64Array;
  /** Points per class. */
  count: Int32Array;
}

/** Per-class mean and standard deviation of each latent dimension. */
export function centroids(latents: LabelledLatents): Centroids {
  const { z, dim, labels } = latents;
  const n = Math.min(latents.n, labels.length, Math.floor(z.length / dim));
  let classes = 10;
  for (let i = 0; i < n; i++) if (labels[i] + 1 > classes) classes = labels[i] + 1;
  const count = new Int32Array(classes);
  const sum = new Float64Array(classes * dim), sq = new Float64Array(classes * dim);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (!(l >= 0) || !Number.isInteger(l)) continue;
    count[l]++;
    for (let j = 0; j < dim; j++) {
      const v = z[i * dim + j];
      sum[l * dim + j] += v;
      sq[l * dim + j] += v * v;
    }
  }
  const mean = new Float64Array(classes * dim), std = new Float64Array(classes * dim);
  for (let c = 0; c < classes; c++) {
    for (let j = 0; j < dim; j++) {
      const k = c * dim + j;
      if (count[c] === 0) { mean[k] = NaN; std[k] = NaN; continue; }
      mean[k] = sum[k] / count[c];
      std[k] = Math.sqrt(Math.max(0, sq[k] / count[c] - mean[k] * mean[k]));
    }
  }
  return { dim, classes, mean, std, count };
}

/** Where the points came from, for captions. */
export interface DigitLatentsInfo {
  source: 'supervised' | 'train' | 'test';
  /** The centre the noise was added around. */
  center: number[];
  /** Per-dimension noise standard deviation used. */
  sigma: number[];
}

/** Checks a digit: an integer 0-9. */
export function checkDigit(digit: number, flag = '--digit'): number {
  if (!Number.isInteger(digit) || digit < 0 || digit > 9) throw new Error(`${flag}: expected a digit 0-9, got ${digit}`);
  return digit;
}

/**
 * `count` latent points (count × dim, row-major) near where `digit` lives in the run's latent
 * space. `rng` makes it reproducible. `info`, when given, is filled with the centre and the noise.
 */
export function digitLatents(run: RunLike, digit: number, count: number, spread: number, rng: Rng, info?: Partial<DigitLatentsInfo>): Float32Array {
  checkDigit(digit);
  if (!Number.isInteger(count) || count < 1) throw new Error(`--count: expected a positive integer, got ${count}`);
  if (!(spread >= 0) || !Number.isFinite(spread)) throw new Error(`--spread: expected a number >= 0, got ${spread}`);
  let center: number[], sigma: number[], source: DigitLatentsInfo['source'];
  const map = run.config.supervised;
  if (map) {
    const p = map[String(digit)];
    if (!p || p.length !== 2) throw new Error(`config.supervised: no target point for digit ${digit}`);
    center = [Number(p[0]), Number(p[1])];
    sigma = [spread, spread];
    source = 'supervised';
  } else {
    const tryOn = (l: LabelledLatents | null | undefined): { c: Centroids; l: LabelledLatents } | null => {
      if (!l || l.n < 1) return null;
      const c = centroids(l);
      return digit < c.classes && c.count[digit] > 0 ? { c, l } : null;
    };
    const fromTrain = tryOn(run.trainLatents);
    const found = fromTrain ?? tryOn(run.testLatents);
    if (!found) throw new Error(`--digit: no latents of digit ${digit} in the run (neither train nor test latents hold one)`);
    source = fromTrain ? 'train' : 'test';
    const { c } = found, D = c.dim;
    center = Array.from(c.mean.subarray(digit * D, digit * D + D));
    sigma = Array.from(c.std.subarray(digit * D, digit * D + D), (s) => s * spread);
  }
  const D = center.length;
  const out = new Float32Array(count * D);
  for (let i = 0; i < count; i++) for (let j = 0; j < D; j++) out[i * D + j] = center[j] + sigma[j] * rng.normal();
  if (info) Object.assign(info, { source, center, sigma });
  return out;
}
