/**
 * Evaluation of a trained model: reconstruction error (MSE on [-1, 1] and on [0, 1] pixels, PSNR)
 * and what the latent space knows about the classes (digits for MNIST, articles for Fashion-MNIST):
 * k-NN (k = 5, against train latents) accuracy, per-class accuracy, the most confused class pairs;
 * for supervised runs the nearest-target accuracy and the mean distance to the class's target.
 * The report names the data set and its classes, and `formatEval` words it with them.
 */
import { mseLoss } from '../../engine/loss.js';
import type { LatentMap } from '../run/config.js';
import type { Split } from '../data/idx-format.js';
import { isVae, type LatentModel } from '../models/family.js';
import { latentHealth, type LatentCondition } from './latent_health.js';
import { sparsityStats } from './sparsity.js';
import { evaluateVae } from './vae_eval.js';
import { IMAGE_PIXELS, MNIST_INFO, MSE_TO_UNIT, classPair, datasetInfo, psnrOfUnitMse, toModelImages, type DatasetInfo } from '../data/image.js';

export interface Confusion { a: number; b: number; count: number }

export interface EvalReport {
  /** The data set evaluated ('mnist', 'fashion-mnist'). */
  dataset: string;
  /** Its class names, indexed by label (perClass[i] is the accuracy of classes[i]). */
  classes: string[];
  n: number;
  mse: number; mse01: number; psnr: number;
  knn?: { k: number; references: number; accuracy: number; perClass: number[]; confused: Confusion[] };
  supervised?: { nearestTargetAccuracy: number; meanDistance: number; perClass: number[] };
  /** Every model: the latent code's verdict and its usual fix (latent_health.ts), and each dimension's 1-99% range. */
  latentHealth: { condition: LatentCondition; message: string; inactiveShare: number; dims: { p01: number; p99: number; std: number }[] };
  /** Every model: how sparse the code is (mean |z|, share of |z| <= 0.01, units near zero on 99% of images). */
  sparsity: { meanAbs: number; nearZeroShare: number; deadUnitShare: number; tol: number };
  /** A VAE: per test image reconstruction MSE (from the mean), KL and ELBO (nats), their means; the KL of each dimension. */
  vae?: { reconstruction: number; kl: number; elbo: number; klPerDim: number[] };
}

/** Reconstruction error over the first n images of a split; returns the test latents too. */
export function reconstructionError(model: LatentModel, split: Split, n = split.n, B = 64): { mse: number; z: Float32Array; labels: Uint8Array } {
  n = Math.min(n, split.n);
  const D = model.latentDim, z = new Float32Array(n * D);
  // one batch of inputs and of reconstructions, reused: no garbage per batch
  const x = new Float32Array(B * IMAGE_PIXELS), y = new Float32Array(B * IMAGE_PIXELS);
  let se = 0;
  for (let i = 0; i < n; i += B) {
    const b = Math.min(B, n - i);
    toModelImages(split.images, x, i, b);
    const xb = x.subarray(0, b * IMAGE_PIXELS);
    const zb = model.encode(xb, b, B, z.subarray(i * D, (i + b) * D));
    se += mseLoss(model.decode(zb, b, B, y), xb, b * IMAGE_PIXELS) * b * IMAGE_PIXELS;
  }
  return { mse: se / (n * IMAGE_PIXELS), z, labels: split.labels.slice(0, n) };
}

/** k-NN classification of latents `z` against reference latents (majority vote, ties to the nearest). */
export function knn(z: Float32Array, refZ: Float32Array, refLabels: Uint8Array, D: number, k = 5, classes = 10): Uint8Array {
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
    const votes = new Int32Array(classes);
    for (let t = 0; t < k; t++) if (bestL[t] >= 0) votes[bestL[t]]++;
    let best = bestL[0];
    for (let c = 0; c < classes; c++) if (votes[c] > votes[best]) best = c;
    pred[i] = best;
  }
  return pred;
}

/** Per-class accuracy and the most confused unordered pairs of classes. */
export function confusionSummary(pred: Uint8Array, labels: Uint8Array, top = 5, classes = 10): { accuracy: number; perClass: number[]; confused: Confusion[] } {
  const M = Array.from({ length: classes }, () => new Int32Array(classes));
  let ok = 0;
  for (let i = 0; i < labels.length; i++) { M[labels[i]][pred[i]]++; if (pred[i] === labels[i]) ok++; }
  const perClass = M.map((row, d) => { const s = row.reduce((a, b) => a + b, 0); return s ? row[d] / s : NaN; });
  const pairs: Confusion[] = [];
  for (let a = 0; a < classes; a++) for (let b = a + 1; b < classes; b++) pairs.push({ a, b, count: M[a][b] + M[b][a] });
  pairs.sort((p, q) => q.count - p.count);
  return { accuracy: ok / labels.length, perClass, confused: pairs.slice(0, top).filter((p) => p.count > 0) };
}

/** Nearest-target accuracy and mean distance to the target for a supervised (latent-map) run. */
export function targetMetrics(z: Float32Array, labels: Uint8Array, map: LatentMap): { nearestTargetAccuracy: number; meanDistance: number; perClass: number[] } {
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
  return { nearestTargetAccuracy: ok / n, meanDistance: dist / n, perClass: Array.from(hit, (h, d) => (cnt[d] ? h / cnt[d] : NaN)) };
}

export interface EvaluateOptions {
  /** Test images to evaluate (default all). */
  limit?: number;
  /** Reference latents for k-NN (train latents); without them k-NN is skipped. */
  reference?: { z: Float32Array; labels: Uint8Array } | null;
  supervised?: LatentMap;
  k?: number;
  /** The data set of `test` (its name and class names go into the report; default MNIST). */
  dataset?: DatasetInfo;
}

export function evaluate(model: LatentModel, test: Split, opts: EvaluateOptions = {}): EvalReport {
  const { mse, z, labels } = reconstructionError(model, test, opts.limit);
  const mse01 = mse * MSE_TO_UNIT;
  const info = opts.dataset ?? MNIST_INFO;
  const D = model.latentDim, C = info.classes.length, n = labels.length;
  let klPerDim: Float64Array | undefined;
  let vae: EvalReport['vae'];
  if (isVae(model)) {
    const v = evaluateVae(model, test, n);
    klPerDim = v.klPerDim;
    vae = { ...v.mean, klPerDim: Array.from(v.klPerDim) };
  }
  const h = latentHealth(z, n, D, model.config.latentActivation, klPerDim ? { klPerDim } : {});
  const sp = sparsityStats(z, n, D);
  const report: EvalReport = {
    dataset: info.name, classes: [...info.classes], n, mse, mse01, psnr: psnrOfUnitMse(mse01),
    latentHealth: { condition: h.condition, message: h.message, inactiveShare: h.inactiveShare, dims: h.dims.map((d) => ({ p01: d.p01, p99: d.p99, std: d.std })) },
    sparsity: { meanAbs: sp.meanAbs, nearZeroShare: sp.nearZeroShare, deadUnitShare: sp.deadUnitShare, tol: sp.tol },
    ...(vae ? { vae } : {}),
  };
  if (opts.reference) {
    const k = opts.k ?? 5;
    const pred = knn(z, opts.reference.z, opts.reference.labels, D, k, C);
    report.knn = { k, references: opts.reference.labels.length, ...confusionSummary(pred, labels, 5, C) };
  }
  if (opts.supervised && D === 2) report.supervised = targetMetrics(z, labels, opts.supervised);
  return report;
}

/**
 * The report as text, worded with its data set's classes: "digit accuracy" and "per digit: 0: 98%, ..."
 * for MNIST, "class accuracy" and "per class: T-shirt/top: 80%, ..." for Fashion-MNIST.
 */
export function formatEval(r: EvalReport): string {
  const info = { ...datasetInfo(r.dataset), classes: r.classes ?? datasetInfo(r.dataset).classes };
  const pct = (a: number): string => `${(100 * a).toFixed(0)}%`;
  const perClass = (acc: number[]): string => acc.map((a, c) => `${info.classes[c] ?? c}: ${pct(a)}`).join(', ');
  const lines = [
    `test images: ${r.n}`,
    `data set: ${info.title}`,
    `MSE on [-1, 1]: ${r.mse.toFixed(5)}`,
    `MSE on [0, 1] pixels: ${r.mse01.toFixed(5)}`,
    `PSNR: ${r.psnr.toFixed(2)} dB`,
  ];
  if (r.knn) {
    lines.push(`k-NN (k=${r.knn.k}, ${r.knn.references} train latents) ${info.classNoun} accuracy: ${(100 * r.knn.accuracy).toFixed(1)}%`);
    lines.push(`per ${info.classNoun}: ${perClass(r.knn.perClass)}`);
    lines.push(`most confused pairs: ${r.knn.confused.map((c) => `${classPair(info, c.a, c.b)} (${c.count})`).join(', ') || 'none'}`);
  }
  if (r.vae) {
    lines.push(`VAE per test image: reconstruction MSE ${r.vae.reconstruction.toFixed(5)} (from the mean), KL ${r.vae.kl.toFixed(3)} nats, ELBO ${r.vae.elbo.toFixed(1)} nats`);
    lines.push(`KL per latent dimension (nats): ${r.vae.klPerDim.map((v) => v.toFixed(3)).join(', ')}`);
  }
  if (r.latentHealth) lines.push(`latent health: ${r.latentHealth.message}`);
  if (r.sparsity)
    lines.push(`sparsity: mean |z| ${r.sparsity.meanAbs.toPrecision(3)}, ${(100 * r.sparsity.nearZeroShare).toFixed(1)}% of values near zero (|z| <= ${r.sparsity.tol}), ${(100 * r.sparsity.deadUnitShare).toFixed(0)}% of units near zero on 99% of images`);
  if (r.supervised) {
    lines.push(`nearest-target accuracy: ${(100 * r.supervised.nearestTargetAccuracy).toFixed(1)}%`);
    lines.push(`nearest-target accuracy per ${info.classNoun}: ${perClass(r.supervised.perClass)}`);
    lines.push(`mean distance to the target: ${r.supervised.meanDistance.toFixed(3)}`);
  }
  return `${lines.join('\n')}\n`;
}
