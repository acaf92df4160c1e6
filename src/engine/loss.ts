/**
 * Losses with mean reduction, after torch.nn.functional.mse_loss and binary_cross_entropy. Each
 * returns the loss and writes dL/d(input) into `grad` (so that further terms can be added to any
 * gradient in the network before its backward pass).
 */
import type { Backend } from './kernels/index.js';

/**
 * mean((input - target)^2); grad = 2 (input - target) / n. With a `backend` that has the loop (Backend.mseLoss) and a
 * grad, it runs there: the same gradient, bit for bit.
 */
export function mseLoss(input: Float32Array, target: Float32Array, n: number, grad?: Float32Array, scale = 1, backend?: Backend): number {
  if (grad && backend?.mseLoss) return backend.mseLoss(n, input, target, grad, scale);
  let s = 0;
  const k = (2 * scale) / n;
  for (let i = 0; i < n; i++) {
    const d = input[i] - target[i];
    s += d * d;
    if (grad) grad[i] = k * d;
  }
  return s / n;
}

/**
 * -mean(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1], with PyTorch's clamp of each log
 * at -100; grad = (p - t) / max(p (1 - p), 1e-12) / n as in PyTorch's backward.
 */
export function bceLoss(input: Float32Array, target: Float32Array, n: number, grad?: Float32Array, scale = 1): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const p = input[i], t = target[i];
    if (!(p >= 0 && p <= 1)) throw new Error(`bceLoss: input must be a probability in [0, 1], got ${p} at ${i}`);
    const lp = Math.max(Math.log(p), -100), l1p = Math.max(Math.log(1 - p), -100);
    s -= t * lp + (1 - t) * l1p;
    if (grad) grad[i] = (scale * (p - t)) / Math.max(p * (1 - p), 1e-12) / n;
  }
  return s / n;
}
