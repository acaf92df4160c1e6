/**
 * Projections of D-dimensional latents onto a plane for plotting (browser-safe):
 * PCA (with an inverse, so points picked on the plane can be decoded) and seeded UMAP.
 */
import { UMAP } from 'umap-js';
import { Rng } from '../../engine/rng.js';

type Num = ArrayLike<number>;

/**
 * Eigen-decomposition of a symmetric n × n matrix (row-major) by cyclic Jacobi rotations.
 * Returns eigenvalues in descending order and the matching unit eigenvectors as the rows of `vectors`.
 */
export function symmetricEigen(matrix: Num, n: number, maxSweeps = 100): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix as ArrayLike<number>);
  if (a.length !== n * n) throw new Error(`symmetricEigen: expected ${n * n} entries, got ${a.length}`);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
  const tol = 1e-24 * Math.max(scale, 1e-300);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    if (off <= tol) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) { // columns p, q
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) { // rows p, q
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((col, r) => {
    values[r] = a[col * n + col];
    for (let k = 0; k < n; k++) vectors[r * n + k] = v[k * n + col];
  });
  return { values, vectors };
}

/** Principal component analysis keeping `k` components. */
export class PCA {
  private constructor(
    /** Input dimension D. */
    readonly dim: number,
    /** Number of kept components. */
    readonly k: number,
    /** Per-dimension mean (D). */
    readonly mean: Float64Array,
    /** Kept components as rows (k × D), unit length, sign fixed so the largest entry is positive. */
    readonly components: Float64Array,
    /** All D eigenvalues of the covariance, descending (variance along each component). */
    readonly variances: Float64Array,
  ) {}

  /** Fit on n × d data (row-major). */
  static fit(data: Num, n: number, d: number, k = 2): PCA {
    if (data.length < n * d) throw new Error(`PCA.fit: expected ${n * d} values, got ${data.length}`);
    if (n < 1) throw new Error('PCA.fit: no data');
    k = Math.min(k, d);
    const mean = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += data[i * d + j];
    for (let j = 0; j < d; j++) mean[j] /= n;
    const cov = new Float64Array(d * d);
    const row = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) row[j] = data[i * d + j] - mean[j];
      for (let p = 0; p < d; p++) {
        const rp = row[p];
        if (rp === 0) continue;
        for (let q = p; q < d; q++) cov[p * d + q] += rp * row[q];
      }
    }
    const denom = Math.max(1, n - 1);
    for (let p = 0; p < d; p++) for (let q = p; q < d; q++) { cov[p * d + q] /= denom; cov[q * d + p] = cov[p * d + q]; }
    const { values, vectors } = symmetricEigen(cov, d);
    const comps = vectors.slice(0, k * d);
    for (let c = 0; c < k; c++) {
      let big = 0;
      for (let j = 0; j < d; j++) if (Math.abs(comps[c * d + j]) > Math.abs(comps[c * d + big])) big = j;
      if (comps[c * d + big] < 0) for (let j = 0; j < d; j++) comps[c * d + j] = -comps[c * d + j];
    }
    for (let i = 0; i < values.length; i++) if (values[i] < 0) values[i] = 0;
    return new PCA(d, k, mean, comps, values);
  }

  /** Fraction of the total variance along each kept component. */
  get explainedRatio(): number[] {
    let total = 0;
    for (const v of this.variances) total += v;
    return Array.from(this.variances.subarray(0, this.k), (v) => (total > 0 ? v / total : 0));
  }

  /** n × D data → n × k coordinates. */
  transform(data: Num, n: number): Float32Array {
    const { dim: d, k } = this;
    const out = new Float32Array(n * k);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < k; c++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += (data[i * d + j] - this.mean[j]) * this.components[c * d + j];
        out[i * k + c] = s;
      }
    }
    return out;
  }

  /** n × k plane coordinates → n × D points (the other components at their mean). */
  inverse(points: Num, n: number): Float32Array {
    const { dim: d, k } = this;
    const out = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) {
        let s = this.mean[j];
        for (let c = 0; c < k; c++) s += points[i * k + c] * this.components[c * d + j];
        out[i * d + j] = s;
      }
    }
    return out;
  }
}

/** UMAP is slow on many points: the CLI's pictures and the explorer embed at most this many (the first ones). */
export const UMAP_MAX_POINTS = 3000;
/** UMAP's neighbours per point unless told otherwise (umap-js's default too). */
export const UMAP_NEIGHBOURS = 15;

export interface UmapOptions {
  seed?: number;
  nNeighbors?: number;
  minDist?: number;
  nEpochs?: number;
  /**
   * Called once the neighbour graph is built (epoch 0) and after each optimisation epoch, with the
   * number of epochs the layout takes; the embedding is the same with or without it.
   */
  onProgress?: (epoch: number, nEpochs: number) => void;
}

/** UMAP of n × d data to 2-D (n × 2), reproducible for a given seed. */
export function umap2d(data: Num, n: number, d: number, opts: UmapOptions = {}): Float32Array {
  const rows: number[][] = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = Array.from({ length: d }, (_, j) => data[i * d + j]);
  const rng = new Rng(opts.seed ?? 0);
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.max(2, Math.min(opts.nNeighbors ?? UMAP_NEIGHBOURS, n - 1)),
    minDist: opts.minDist ?? 0.1,
    nEpochs: opts.nEpochs,
    random: () => rng.random(),
  });
  // what umap.fit does, with a look at each epoch
  const nEpochs = umap.initializeFit(rows);
  const progress = opts.onProgress;
  progress?.(0, nEpochs);
  for (let epoch = 0; epoch < nEpochs;) {
    epoch = umap.step();
    progress?.(epoch, nEpochs);
  }
  const emb = umap.getEmbedding();
  const out = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) { out[2 * i] = emb[i][0]; out[2 * i + 1] = emb[i][1]; }
  return out;
}

/**
 * The row of `points` (m × dim, row-major) nearest to `q` (dim values) in Euclidean distance; -1
 * when there is none. A plane without an inverse (UMAP) decodes the nearest encoded point's latent.
 */
export function nearestIndex(points: Num, m: number, dim: number, q: Num): number {
  let best = -1, bestD = Infinity;
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) { const u = points[i * dim + j] - q[j]; s += u * u; }
    if (s < bestD) { bestD = s; best = i; }
  }
  return best;
}

export type ProjectionMethod = 'pca' | 'umap' | 'none';

export interface Projection {
  /** What was done: 'identity' for 2-D latents (or 'none'), else the method. */
  method: 'identity' | 'pca' | 'umap';
  /** A one-line caption for the figure. */
  caption: string;
  xLabel: string;
  yLabel: string;
  /** The fitted PCA (method 'pca'). */
  pca?: PCA;
  /** Plane points (n × 2) → latent points (n × dim); absent for UMAP (no inverse). */
  inverse?: (points: Num, n: number) => Float32Array;
}

export interface Projected {
  /** n × 2, interleaved. */
  coords: Float32Array;
  x: Float32Array;
  y: Float32Array;
  projection: Projection;
}

function split(coords: Float32Array, n: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) { x[i] = coords[2 * i]; y[i] = coords[2 * i + 1]; }
  return { x, y };
}

/**
 * Put n latents (z: n × dim) on a plane. 2-D latents are shown as they are (whatever the method,
 * except an explicit 'umap'); 'none' keeps the first two dimensions.
 */
export function project(z: Num, dim: number, method: ProjectionMethod = 'pca', opts: UmapOptions = {}): Projected {
  const n = Math.floor(z.length / dim);
  if (dim < 1 || n * dim !== z.length) throw new Error(`project: ${z.length} values is not a whole number of ${dim}-D points`);
  if (method === 'umap') {
    const coords = umap2d(z, n, dim, opts);
    const nn = Math.max(2, Math.min(opts.nNeighbors ?? UMAP_NEIGHBOURS, n - 1));
    return {
      coords, ...split(coords, n),
      projection: {
        method: 'umap', xLabel: 'UMAP 1', yLabel: 'UMAP 2',
        caption: `UMAP of the ${dim}-D latents (seed ${opts.seed ?? 0}, ${nn} neighbours, min dist ${opts.minDist ?? 0.1}); no inverse: axes have no latent meaning`,
      },
    };
  }
  if (dim <= 2 || method === 'none') {
    const coords = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) { coords[2 * i] = z[i * dim]; coords[2 * i + 1] = dim > 1 ? z[i * dim + 1] : 0; }
    const caption = dim === 2 ? '' : dim === 1 ? '1-D latent (y = 0)' : `latent dimensions 1 and 2 of ${dim} (others at their mean)`;
    const mean = new Float64Array(dim);
    for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += z[i * dim + j] / n;
    const inverse = (points: Num, m: number) => {
      const out = new Float32Array(m * dim);
      for (let i = 0; i < m; i++) {
        for (let j = 2; j < dim; j++) out[i * dim + j] = mean[j];
        out[i * dim] = points[2 * i];
        if (dim > 1) out[i * dim + 1] = points[2 * i + 1];
      }
      return out;
    };
    return { coords, ...split(coords, n), projection: { method: 'identity', caption, xLabel: 'z₁', yLabel: dim > 1 ? 'z₂' : '', inverse } };
  }
  const pca = PCA.fit(z, n, dim, 2);
  const coords = pca.transform(z, n);
  const [r1, r2] = pca.explainedRatio.map((r) => (100 * r).toFixed(1));
  return {
    coords, ...split(coords, n),
    projection: {
      method: 'pca', pca,
      xLabel: `PC1 (${r1}% of variance)`, yLabel: `PC2 (${r2}% of variance)`,
      caption: `PCA plane of the ${dim}-D latents: other dimensions at their mean`,
      inverse: (points, m) => pca.inverse(points, m),
    },
  };
}
