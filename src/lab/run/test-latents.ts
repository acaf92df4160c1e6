/**
 * Which test images a run's latents encode: latents.safetensors holds the latents of the first n images
 * of the run's test split, in the split's order (row i of `z` is test image i, `labels[i]` its label).
 * This is the one place that says so: the trainer's evaluation (train/step.ts) encodes these images, and
 * the explorer's server (web/test-images.ts) serves these same images beside the latents. Browser-safe.
 */
import type { Split } from '../data/idx-format.js';

/** The test images that latents of `n` rows encode: the first n of the split (a view, no copy). */
export function latentsTestImages(test: Split, n: number): Split {
  const m = Math.max(0, Math.min(n, test.n));
  const px = test.rows * test.cols;
  return { ...test, n: m, images: test.images.subarray(0, m * px), labels: test.labels.subarray(0, m) };
}
