/**
 * Latent health, for every model: whether the latent code is usable, and if not, what went wrong and
 * its usual fix, in one line. A learner cannot tell a collapsed latent from a bug: one epoch of the
 * study's 2-D recipe squeezes z into [-0.06, 0] x [-0.1, 0.8] (LeakyReLU on z) and every decoded
 * point is one blurry blob. Pure function of the latents (N x D, row-major) and the latent activation.
 *
 * The conditions, most severe first:
 *   negative-slope  LeakyReLU on z and most values below 0, where it scales by 0.01: the code is squeezed
 *   dead            ReLU on z and most values exactly 0 (its flat region: no gradient flows back)
 *   collapsed       a dimension (nearly) constant over the inputs, or no spread at all
 *   posterior-collapse  (a VAE, given the KL per dimension) dimensions with almost no KL: unused
 *   healthy
 */

export type LatentActivationName = 'leaky' | 'relu' | 'none';

export interface DimensionHealth {
  min: number; max: number; mean: number; std: number;
  /** 1st and 99th percentile. */
  p01: number; p99: number;
  /** Share of values in the activation's negative region (LeakyReLU: z < 0; otherwise 0). */
  negativeShare: number;
  /** Share of values in the activation's flat region (ReLU: z == 0; otherwise 0). */
  flatShare: number;
  /** The KL of this dimension (nats, a VAE's), when given. */
  kl?: number;
}

export type LatentCondition = 'healthy' | 'negative-slope' | 'dead' | 'collapsed' | 'posterior-collapse';

export interface LatentHealth {
  n: number;
  dims: DimensionHealth[];
  activation: LatentActivationName;
  /** Share of all values in the activation's negative or flat region. */
  inactiveShare: number;
  condition: LatentCondition;
  /** The condition and its usual fix, in one line. */
  message: string;
}

export interface LatentHealthOptions {
  /** A VAE's KL per dimension (nats, averaged over the inputs; engine klPerDimension). */
  klPerDim?: ArrayLike<number>;
  /** The share of values in the negative/flat region from which the code counts as squeezed (default 0.5). */
  inactiveThreshold?: number;
  /** A dimension whose std is below this share of the largest one counts as collapsed (default 0.01). */
  relativeSpread?: number;
  /** A dimension with less KL than this (nats) is unused (default 0.01). */
  minKl?: number;
}

const pct = (v: number): string => `${Math.round(v * 100)}%`;
const num = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) < 1e-3 ? v.toExponential(1) : v.toPrecision(2));
const dimList = (ds: number[]): string => (ds.length === 1 ? `dimension ${ds[0] + 1}` : `dimensions ${ds.map((d) => d + 1).join(', ')}`);

/** Spread and activation-region shares of each latent dimension, and the one-line verdict. */
export function latentHealth(z: ArrayLike<number>, N: number, D: number, activation: LatentActivationName,
                             opts: LatentHealthOptions = {}): LatentHealth {
  if (!(N >= 1 && D >= 1) || z.length < N * D) throw new Error(`latentHealth: expected ${N} x ${D} latents, got ${z.length} values`);
  const dims: DimensionHealth[] = [];
  const col = new Float64Array(N);
  let inactive = 0;
  for (let d = 0; d < D; d++) {
    let s = 0, neg = 0, flat = 0;
    for (let r = 0; r < N; r++) {
      const v = z[r * D + d];
      col[r] = v;
      s += v;
      if (activation === 'leaky' && v < 0) neg++;
      if (activation === 'relu' && v === 0) flat++;
    }
    const mean = s / N;
    let q = 0;
    for (let r = 0; r < N; r++) q += (col[r] - mean) ** 2;
    col.sort();
    const at = (p: number): number => col[Math.min(N - 1, Math.max(0, Math.round(p * (N - 1))))];
    dims.push({
      min: col[0], max: col[N - 1], mean, std: Math.sqrt(q / N), p01: at(0.01), p99: at(0.99),
      negativeShare: neg / N, flatShare: flat / N,
      ...(opts.klPerDim ? { kl: opts.klPerDim[d] } : {}),
    });
    inactive += neg + flat;
  }
  const inactiveShare = inactive / (N * D);
  const base = { n: N, dims, activation, inactiveShare };
  const threshold = opts.inactiveThreshold ?? 0.5;
  const range = dims.map((h) => `[${num(h.p01)}, ${num(h.p99)}]`).join(' x ');

  if (activation === 'leaky' && inactiveShare >= threshold)
    return { ...base, condition: 'negative-slope',
      message: `z is ${pct(inactiveShare)} in LeakyReLU's negative slope (1-99% range ${range}): try --latent-activation none` };
  if (activation === 'relu' && inactiveShare >= threshold) {
    const dead = dims.flatMap((h, d) => (h.flatShare >= 0.99 ? [d] : []));
    return { ...base, condition: 'dead',
      message: `z is ${pct(inactiveShare)} zero in ReLU's flat region${dead.length ? ` (${dimList(dead)} dead)` : ''}: try --latent-activation none or leaky` };
  }
  const maxStd = Math.max(...dims.map((h) => h.std));
  const rel = opts.relativeSpread ?? 0.01;
  if (!(maxStd > 1e-6))
    return { ...base, condition: 'collapsed',
      message: `z does not vary between images (std ${num(maxStd)}): every point decodes to the same image; check the learning rate and train longer` };
  const flatDims = dims.flatMap((h, d) => (h.std < rel * maxStd ? [d] : []));
  if (flatDims.length)
    return { ...base, condition: 'collapsed',
      message: `z ${dimList(flatDims)} barely varies (std ${flatDims.map((d) => num(dims[d].std)).join(', ')} vs ${num(maxStd)}): the decoder ignores it; train longer or use a smaller --latent` };
  if (opts.klPerDim) {
    const minKl = opts.minKl ?? 0.01;
    const unused = dims.flatMap((h, d) => ((h.kl ?? Infinity) < minKl ? [d] : []));
    if (unused.length)
      return { ...base, condition: 'posterior-collapse',
        message: `z ${dimList(unused)} carries almost no information (KL < ${minKl} nats, the posterior is the prior): lower --beta or use --kl-warmup` };
  }
  const where = activation === 'leaky' ? `, ${pct(inactiveShare)} in LeakyReLU's negative slope`
    : activation === 'relu' ? `, ${pct(inactiveShare)} zero (ReLU)` : '';
  return { ...base, condition: 'healthy', message: `z is healthy: every dimension spreads (1-99% range ${range})${where}` };
}
