/**
 * Evaluation of a trained model: reconstruction error (MSE on [-1, 1] and on [0, 1] pixels, PSNR)
 * and what the latent space knows about digits: k-NN (k = 5, against train latents) accuracy,
 * per-digit accuracy, the most confused digit pairs; for supervised runs the nearest-target
 * accuracy and the mean distance to the digit's target.
 */
import { mseLoss } from '../../engine/loss.js';
import type { LatentMap } from '../run/config.js';
import type { Split } from '../data/idx.js';
import type { AutoEncoder } from '../models/autoencoder.js';

export interface Confusion { a: number; b: number; count: number }

export interface EvalReport {
  n: number;
  mse: number; mse01: number; psnr: number;
  knn?: { k: number; references: number; accuracy: number; perDigit: number[]; confused: Confusion[] };
  supervised?: { nearestTargetAccuracy: number; meanDistance: number; perDigit: number[] };
}

/** Reconstruction error over the first n images of a split; returns the test latents too. */
export function reconstructionError(model: AutoEncoder, split: Split, n = split.n, B = 64): { mse: number; z: Float32Array; labels: Uint8Array } {
  n = Math.min(n, split.n);
  const D = model.latentDim, z = new Float32Array(n * D);
  const x = new Float32Array(B * 784);
  let se = 0;
  for (let i = 0; i < n; i += B) {
    const b = Math.min(B, n - i);
    for (let j = 0; j < b * 784; j++) x[j] = split.images[i * 784 + j] / 127.5 - 1;
    const xb = x.subarray(0, b * 784);
    const zb = model.encode(xb, b, B);
    z.set(zb, i * D);
    se += mseLoss(model.decode(zb, b, B), xb, b * 784) * b * 784;
  }
  return { mse: se / (n * 784), z, labels: split.labels.slice(0, n) };
}

/** k-NN classification of latents `z` against reference latents (majority vote, ties to the nearest). */
export function knn(z: Float32Array, refZ: Float32Array, refLabels: Uint8Array, D: number, k = 5): Uint8Array {
  const n = z.length / D, m = refZ.length / D;
  const pred = new Uint8Array(n);
  const bestD = new Float64Array(k), bestL = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    bestD.fill(Infinity); bestL.fill(-1);
    for (let j = 0; j < m; j++) {
      let d = 0;
      for (let t = 0; t < D; t++) { const u = z[i * D + t] - refZ[j * D + t]; d += u * u; }
      if (d < bestD[k - 1]) {
        let p = k - 1;
        while (p > 0 && bestD[p - 1] > d) { bestD[p] = bestD[p - 1]; bestL[p] = bestL[p - 1]; p--; }
        bestD[p] = d; bestL[p] = refLabels[j];
      }
    }
    const votes = new Int32Array(10);
    for (let t = 0; t < k; t++) if (bestL[t] >= 0) votes[bestL[t]]++;
    let best = bestL[0];
    for (let c = 0; c < 10; c++) if (votes[c] > votes[best]) best = c;
    pred[i] = best;
  }
  return pred;
}

/** Per-digit accuracy and the most confused unordered pairs of digits. */
export function confusionSummary(pred: Uint8Array, labels: Uint8Array, top = 5): { accuracy: number; perDigit: number[]; confused: Confusion[] } {
  const M = Array.from({ length: 10 }, () => new Int32Array(10));
  let ok = 0;
  for (let i = 0; i < labels.length; i++) { M[labels[i]][pred[i]]++; if (pred[i] === labels[i]) ok++; }
  const perDigit = M.map((row, d) => { const s = row.reduce((a, b) => a + b, 0); return s ? row[d] / s : NaN; });
  const pairs: Confusion[] = [];
  for (let a = 0; a < 10; a++) for (let b = a + 1; b < 10; b++) pairs.push({ a, b, count: M[a][b] + M[b][a] });
  pairs.sort((p, q) => q.count - p.count);
  return { accuracy: ok / labels.length, perDigit, confused: pairs.slice(0, top).filter((p) => p.count > 0) };
}

/** Nearest-target accuracy and mean distance to the target for a supervised (latent-map) run. */
export function targetMetrics(z: Float32Array, labels: Uint8Array, map: LatentMap): { nearestTargetAccuracy: number; meanDistance: number; perDigit: number[] } {
  const n = labels.length;
  let ok = 0, dist = 0;
  const hit = new Int32Array(10), cnt = new Int32Array(10);
  for (let i = 0; i < n; i++) {
    const x = z[2 * i], y = z[2 * i + 1];
    let best = 0, bd = Infinity;
    for (let d = 0; d < 10; d++) {
      const [tx, ty] = map[d];
      const dd = (x - tx) ** 2 + (y - ty) ** 2;
      if (dd < bd) { bd = dd; best = d; }
    }
    const [tx, ty] = map[labels[i]];
    dist += Math.hypot(x - tx, y - ty);
    cnt[labels[i]]++;
    if (best === labels[i]) { ok++; hit[labels[i]]++; }
  }
  return { nearestTargetAccuracy: ok / n, meanDistance: dist / n, perDigit: Array.from(hit, (h, d) => (cnt[d] ? h / cnt[d] : NaN)) };
}

export interface EvaluateOptions {
  /** Test images to evaluate (default all). */
  limit?: number;
  /** Reference latents for k-NN (train latents); without them k-NN is skipped. */
  reference?: { z: Float32Array; labels: Uint8Array } | null;
  supervised?: LatentMap;
  k?: number;
}

export function evaluate(model: AutoEncoder, test: Split, opts: EvaluateOptions = {}): EvalReport {
  const { mse, z, labels } = reconstructionError(model, test, opts.limit);
  const mse01 = mse / 4;
  const report: EvalReport = { n: labels.length, mse, mse01, psnr: 10 * Math.log10(1 / mse01) };
  const D = model.latentDim;
  if (opts.reference) {
    const k = opts.k ?? 5;
    const pred = knn(z, opts.reference.z, opts.reference.labels, D, k);
    report.knn = { k, references: opts.reference.labels.length, ...confusionSummary(pred, labels) };
  }
  if (opts.supervised && D === 2) report.supervised = targetMetrics(z, labels, opts.supervised);
  return report;
}
