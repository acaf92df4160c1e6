/**
 * Batches of uint8 images as float32 in [-1, 1] (x / 127.5 - 1), shuffled each epoch by a seeded
 * Rng, written into one reused (or caller-provided) Float32Array: no allocation of pixel buffers
 * per batch.
 *
 * Resuming: each epoch's permutation is drawn from the Rng when the epoch begins, and the Rng
 * state at that moment is kept. `state()` returns { epoch, batch, rng } where `batch` is the index
 * of the next batch and `rng` the state at the start of that epoch; `new DataLoader(data,
 * { start: state })` (or `seek(state)`) redraws the same permutation and goes on from that batch.
 * The next epoch is begun as soon as the last batch of the previous one is handed out, so a state
 * taken at an epoch boundary is already { epoch: e + 1, batch: 0, rng: <state before its draw> }.
 *
 * Give the loader its own Rng (the `seed` option, or an `rng` nobody else draws from): with a
 * shared Rng the permutation is still reproducible from the saved state, but the other users'
 * draws after a resume will not be.
 */
import { Rng, type RngState } from '../../engine/rng.js';
import { IMAGE_PIXELS, toModel } from './image.js';

/** A serializable loader position (plain JSON). */
export interface LoaderState {
  /** The epoch of the next batch (0-based). */
  epoch: number;
  /** Index of the next batch within the epoch. */
  batch: number;
  /** Rng state at the start of `epoch`, before its permutation was drawn. */
  rng: { s: RngState; spare: number | null };
}

export interface LoaderData {
  images: Uint8Array;
  labels?: Uint8Array | null;
  /** Number of samples (default images.length / pixels). */
  n?: number;
  rows?: number;
  cols?: number;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (default true); when false the order is 0..n-1. */
  shuffle?: boolean;
  /** Skip the last, smaller batch of each epoch (default false). */
  dropLast?: boolean;
  /** Seed of the loader's own Rng (default 0); ignored when `rng` is given. */
  seed?: number;
  /** An Rng to draw the permutations from. */
  rng?: Rng;
  /** Buffer for the batches' pixels (at least batchSize * pixels floats); default allocated once. */
  out?: Float32Array;
  /** Start at this position (from `state()`). */
  start?: LoaderState;
}

export interface Batch {
  /** size * pixels floats in [-1, 1], a view of the loader's buffer: valid until the next call. */
  x: Float32Array;
  /** The batch's labels (a view of a reused buffer), or null when the loader has no labels. */
  labels: Uint8Array | null;
  /** Sample indices of the batch (a view of a reused buffer). */
  indices: Int32Array;
  size: number;
  epoch: number;
  /** Index of this batch within its epoch. */
  batch: number;
}

/** images[i] / 127.5 - 1 for each byte value, as float32. */
const LUT = (() => {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = toModel(v);
  return t;
})();

/**
 * Writes the images at `indices` as float32 in [-1, 1] into `out` (image k at k * pixels).
 * Returns `out`.
 */
export function toFloat(images: Uint8Array, indices: ArrayLike<number>, out: Float32Array, pixels = IMAGE_PIXELS): Float32Array {
  const m = indices.length;
  if (out.length < m * pixels) {
    throw new RangeError(`toFloat: out holds ${out.length} floats, expected at least ${m}*${pixels} = ${m * pixels}`);
  }
  const nImages = Math.floor(images.length / pixels);
  for (let k = 0; k < m; k++) {
    const idx = indices[k];
    if (!(idx >= 0 && idx < nImages)) throw new RangeError(`toFloat: index ${idx} out of range [0, ${nImages})`);
    const src = idx * pixels, dst = k * pixels;
    for (let j = 0; j < pixels; j++) out[dst + j] = LUT[images[src + j]];
  }
  return out;
}

export class DataLoader implements Iterable<Batch> {
  readonly n: number;
  readonly pixels: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly batchesPerEpoch: number;
  readonly rng: Rng;

  private readonly images: Uint8Array;
  private readonly labels: Uint8Array | null;
  private readonly perm: Int32Array<ArrayBuffer>;
  private readonly buf: Float32Array;
  private readonly labelBuf: Uint8Array | null;
  private readonly indexBuf: Int32Array;
  private epochNo = 0;
  private batchNo = 0;
  private epochRng: LoaderState['rng'];

  constructor(data: LoaderData, opts: DataLoaderOptions) {
    const { images } = data;
    this.pixels = data.rows !== undefined && data.cols !== undefined ? data.rows * data.cols
      : data.n ? Math.floor(images.length / data.n) : IMAGE_PIXELS;
    this.n = data.n ?? Math.floor(images.length / this.pixels);
    if (images.length < this.n * this.pixels) {
      throw new RangeError(`DataLoader: images hold ${images.length} bytes, expected ${this.n}*${this.pixels}`);
    }
    if (data.labels && data.labels.length < this.n) {
      throw new RangeError(`DataLoader: expected ${this.n} labels, got ${data.labels.length}`);
    }
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    this.images = images;
    this.labels = data.labels ?? null;
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    this.batchesPerEpoch = this.dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new RangeError(`DataLoader: no batch per epoch (n=${this.n}, batchSize=${this.batchSize}${this.dropLast ? ', dropLast' : ''})`);
    }
    this.rng = opts.rng ?? new Rng(opts.seed ?? 0);
    this.perm = new Int32Array(this.n);
    const need = this.batchSize * this.pixels;
    if (opts.out && opts.out.length < need) {
      throw new RangeError(`DataLoader: out holds ${opts.out.length} floats, expected at least ${need}`);
    }
    this.buf = opts.out ?? new Float32Array(need);
    this.labelBuf = this.labels ? new Uint8Array(this.batchSize) : null;
    this.indexBuf = new Int32Array(this.batchSize);
    this.epochRng = this.rng.getState();
    if (opts.start) this.seek(opts.start);
    else this.beginEpoch(0);
  }

  /** The epoch of the next batch. */
  get epoch(): number { return this.epochNo; }
  /** The index (within its epoch) of the next batch. */
  get batch(): number { return this.batchNo; }
  /** Number of batches handed out since epoch 0 started (the global step, when one batch = one step). */
  get step(): number { return this.epochNo * this.batchesPerEpoch + this.batchNo; }

  /** The permutation of the current epoch (read-only view). */
  get order(): Int32Array { return this.perm; }

  private beginEpoch(epoch: number): void {
    this.epochRng = this.rng.getState();
    if (this.shuffle) this.rng.permutation(this.n, this.perm);
    else for (let i = 0; i < this.n; i++) this.perm[i] = i;
    this.epochNo = epoch;
    this.batchNo = 0;
  }

  /** Where the loader is: enough to resume it (plain JSON). */
  state(): LoaderState {
    const r = this.epochRng;
    return { epoch: this.epochNo, batch: this.batchNo, rng: { s: [r.s[0], r.s[1], r.s[2], r.s[3]], spare: r.spare } };
  }

  /** Moves to a saved position: restores the Rng, redraws that epoch's permutation. */
  seek(st: LoaderState): void {
    if (!Number.isInteger(st.epoch) || st.epoch < 0) throw new RangeError(`DataLoader.seek: bad epoch ${st.epoch}`);
    if (!Number.isInteger(st.batch) || st.batch < 0 || st.batch > this.batchesPerEpoch) {
      throw new RangeError(`DataLoader.seek: batch ${st.batch} out of range [0, ${this.batchesPerEpoch}]`);
    }
    this.rng.setState({ s: [...st.rng.s] as RngState, spare: st.rng.spare });
    this.beginEpoch(st.epoch);
    this.batchNo = st.batch;
    if (this.batchNo === this.batchesPerEpoch) this.beginEpoch(st.epoch + 1);
  }

  /**
   * The next batch (epochs roll over by themselves). Pixels go into `out` when given (at least
   * batchSize * pixels floats), else into the loader's buffer.
   */
  next(out?: Float32Array): Batch {
    const buf = out ?? this.buf;
    const start = this.batchNo * this.batchSize;
    const size = Math.min(this.batchSize, this.n - start);
    // copied: the permutation is redrawn in place when the epoch ends, right after this batch
    this.indexBuf.set(this.perm.subarray(start, start + size));
    const indices = size === this.batchSize ? this.indexBuf : this.indexBuf.subarray(0, size);
    const len = size * this.pixels;
    if (buf.length < len) throw new RangeError(`DataLoader.next: out holds ${buf.length} floats, expected at least ${len}`);
    toFloat(this.images, indices, buf, this.pixels);
    let labels: Uint8Array | null = null;
    if (this.labels && this.labelBuf) {
      for (let k = 0; k < size; k++) this.labelBuf[k] = this.labels[indices[k]];
      labels = size === this.labelBuf.length ? this.labelBuf : this.labelBuf.subarray(0, size);
    }
    const batch: Batch = {
      x: buf.length === len ? buf : buf.subarray(0, len),
      labels,
      indices,
      size,
      epoch: this.epochNo,
      batch: this.batchNo,
    };
    this.batchNo++;
    if (this.batchNo >= this.batchesPerEpoch) this.beginEpoch(this.epochNo + 1);
    return batch;
  }

  /** The remaining batches of the current epoch. */
  *epochBatches(out?: Float32Array): Generator<Batch, void, undefined> {
    const e = this.epochNo;
    while (this.epochNo === e) yield this.next(out);
  }

  [Symbol.iterator](): Iterator<Batch> {
    return this.epochBatches();
  }
}
