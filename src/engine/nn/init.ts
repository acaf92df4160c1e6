/** PyTorch's default initialisation, from a seeded Rng. */
import type { Rng } from '../rng.js';

/**
 * fan_in as torch.nn.init._calculate_fan_in_and_fan_out computes it: weight.size(1) times the
 * receptive field. For ConvTranspose2d's weight [in, out, kh, kw] that is out * kh * kw.
 */
export function fanIn(shape: readonly number[]): number {
  let rf = 1;
  for (let i = 2; i < shape.length; i++) rf *= shape[i];
  return shape[1] * rf;
}

/** kaiming_uniform_(w, a) with PyTorch's leaky_relu gain: bound = sqrt(6 / ((1 + a^2) fan_in)). */
export function kaimingUniform(rng: Rng, w: Float32Array, shape: readonly number[], a = Math.sqrt(5)): void {
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = Math.sqrt(3) * gain / Math.sqrt(fanIn(shape));
  rng.fillUniform(w, -bound, bound);
}

/** The bias init of Conv and Linear layers: uniform in +-1/sqrt(fan_in). */
export function biasUniform(rng: Rng, b: Float32Array, weightShape: readonly number[]): void {
  const f = fanIn(weightShape);
  const bound = f > 0 ? 1 / Math.sqrt(f) : 0;
  rng.fillUniform(b, -bound, bound);
}

import { Rng as RngClass } from '../rng.js';

let globalRng = new RngClass(0);

/** Seeds the generator that layers use for their initial weights (like torch.manual_seed). */
export function manualSeed(seed: number): void { globalRng = new RngClass(seed); }

/** The generator layers draw their initial weights from when not given one. */
export function defaultRng(): Rng { return globalRng; }
