/**
 * What an L1 activity penalty (`--activity-l1`, Keras's activity regulariser) does to a latent code:
 * the mean absolute activation and how many activations and units are near zero.
 */

export interface SparsityStats {
  /** mean |z| over every value. */
  meanAbs: number;
  /** Share of the values with |z| <= tol. */
  nearZeroShare: number;
  /** Per dimension (unit): its mean |z| and its share of values with |z| <= tol. */
  perUnit: { meanAbs: number; nearZeroShare: number }[];
  /** Share of units near zero on at least `deadShare` of the inputs (units the code does not use). */
  deadUnitShare: number;
  tol: number;
}

/** Sparsity of N latent vectors of D values (row-major); near zero means |z| <= tol. */
export function sparsityStats(z: Float32Array, N: number, D: number, tol = 0.01, deadShare = 0.99): SparsityStats {
  if (!(N > 0 && D > 0)) throw new Error(`sparsityStats: expected latents, got ${N} x ${D}`);
  const abs = new Float64Array(D), zero = new Float64Array(D);
  for (let r = 0; r < N; r++)
    for (let d = 0; d < D; d++) {
      const a = Math.abs(z[r * D + d]);
      abs[d] += a;
      if (a <= tol) zero[d]++;
    }
  const perUnit = Array.from(abs, (a, d) => ({ meanAbs: a / N, nearZeroShare: zero[d] / N }));
  const sum = (f: Float64Array): number => f.reduce((s, v) => s + v, 0);
  return {
    meanAbs: sum(abs) / (N * D),
    nearZeroShare: sum(zero) / (N * D),
    perUnit,
    deadUnitShare: perUnit.filter((u) => u.nearZeroShare >= deadShare).length / D,
    tol,
  };
}
