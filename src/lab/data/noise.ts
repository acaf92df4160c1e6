/**
 * Input corruption for a denoising autoencoder (`--noise`): the inputs are corrupted, the targets stay
 * clean. Images follow the image contract, floats in [-1, 1] (-1 is the background); corrupted images
 * stay in [-1, 1]. Seeded: the same generator state gives the same corruption.
 *
 *   gaussian:SIGMA   adds N(0, SIGMA^2) noise in [0, 1] pixel units, as the Keras and TensorFlow
 *                    tutorials' noise_factor (so 2 SIGMA on the [-1, 1] scale), then clips
 *   saltpepper:P     each pixel with probability P becomes white or black (one half each)
 *   mask:P           each pixel with probability P is dropped to the background (masking noise)
 *   none             no corruption
 */
import type { Rng } from '../../engine/rng.js';

export type NoiseSpec =
  | { kind: 'gaussian'; sigma: number }
  | { kind: 'saltpepper'; p: number }
  | { kind: 'mask'; p: number };

export const NOISE_KINDS = ['gaussian', 'saltpepper', 'mask'] as const;

/**
 * The corruption a denoising autoencoder is shown by default: `latentlab denoise` without --noise on a run
 * trained without noise, and the study's denoising runs (the Keras tutorial's noise_factor 0.5).
 * tools/fixtures/gen_family_reference.py trains PyTorch's denoising runs with the same (test/study.test.ts checks).
 */
export const DEFAULT_DENOISE_NOISE = 'gaussian:0.5';

const USAGE = 'expected gaussian:SIGMA, saltpepper:P, mask:P or none';

/**
 * Parses a --noise value; null for 'none'. Throws one line naming `where` (the flag, or a config file
 * and its key) and what was expected, e.g. "--noise gaussian:abc: SIGMA must be a number >= 0, got 'abc'".
 */
export function parseNoise(spec: string, where = '--noise'): NoiseSpec | null {
  const s = String(spec).trim();
  if (s === 'none') return null;
  const m = /^([a-z]+):(.*)$/.exec(s);
  if (!m) throw new Error(`${where}: ${USAGE}, got '${spec}'`);
  const [, kind, arg] = m;
  const v = arg.trim() === '' ? NaN : Number(arg);
  if (kind === 'gaussian') {
    if (!(Number.isFinite(v) && v >= 0)) throw new Error(`${where} ${s}: SIGMA must be a number >= 0 (in [0, 1] pixel units), got '${arg}'`);
    return { kind, sigma: v };
  }
  if (kind === 'saltpepper' || kind === 'mask') {
    if (!(Number.isFinite(v) && v >= 0 && v <= 1)) throw new Error(`${where} ${s}: P must be a probability in [0, 1], got '${arg}'`);
    return { kind, p: v };
  }
  throw new Error(`${where}: ${USAGE}, got '${spec}'`);
}

/** The spec as typed (parseNoise's inverse): 'gaussian:0.5', 'mask:0.3', 'none'. */
export function formatNoise(spec: NoiseSpec | null): string {
  if (!spec) return 'none';
  return spec.kind === 'gaussian' ? `gaussian:${spec.sigma}` : `${spec.kind}:${spec.p}`;
}

/**
 * Writes a corrupted copy of the first `count` values of x (images in [-1, 1]) into out (x itself is not
 * changed: it is the clean target) and returns out. Draws from rng; with spec null, copies.
 */
export function corrupt(x: Float32Array, spec: NoiseSpec | null, rng: Rng, out: Float32Array = new Float32Array(x.length), count = x.length): Float32Array {
  if (out === x) throw new Error('corrupt: out must not be the clean input (it is the target)');
  if (out.length < count) throw new Error(`corrupt: out holds ${out.length} values, ${count} needed`);
  if (!spec) { out.set(x.subarray(0, count)); return out; }
  if (spec.kind === 'gaussian') {
    const k = 2 * spec.sigma;
    for (let i = 0; i < count; i++) {
      const v = x[i] + k * rng.normal();
      out[i] = v < -1 ? -1 : v > 1 ? 1 : v;
    }
  } else if (spec.kind === 'saltpepper') {
    for (let i = 0; i < count; i++) out[i] = rng.random() < spec.p ? (rng.random() < 0.5 ? -1 : 1) : x[i];
  } else {
    for (let i = 0; i < count; i++) out[i] = rng.random() < spec.p ? -1 : x[i];
  }
  return out;
}
