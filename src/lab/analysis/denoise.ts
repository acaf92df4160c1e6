/**
 * Denoising on test images: corrupt clean images (seeded), reconstruct the corrupted ones, and measure
 * PSNR before (noisy vs clean) and after (denoised vs clean). For `latentlab denoise RUN`.
 */
import type { Rng } from '../../engine/rng.js';
import { corrupt, type NoiseSpec } from '../data/noise.js';
import { psnr } from './quality.js';
import { IMAGE_PIXELS } from '../data/image.js';

/** Anything that reconstructs n images (n*784 floats in [-1, 1]): an AutoEncoder, a VAE (through its mean). */
export interface Reconstructor { reconstruct(x: Float32Array, n: number, batchSize?: number): Float32Array }

export interface DenoiseResult {
  /** The corrupted inputs, the model's outputs for them (n*784 each, [-1, 1]). */
  noisy: Float32Array;
  denoised: Float32Array;
  /** Noisy vs clean, and denoised vs clean: mean squared error ([-1, 1] scale) and PSNR (dB, [0, 1] pixels). */
  before: { mse: number; psnr: number };
  after: { mse: number; psnr: number };
}

/** Corrupts the first n clean images with spec (drawing from rng) and denoises them with the model. */
export function denoise(model: Reconstructor, clean: Float32Array, n: number, spec: NoiseSpec | null, rng: Rng, batchSize = 64): DenoiseResult {
  const P = IMAGE_PIXELS, x = clean.subarray(0, n * P);
  const noisy = corrupt(x, spec, rng, new Float32Array(n * P));
  const denoised = model.reconstruct(noisy, n, batchSize);
  return { noisy, denoised, before: psnr(noisy, x, n, P), after: psnr(denoised, x, n, P) };
}
