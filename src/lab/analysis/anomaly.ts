/**
 * Anomaly search by reconstruction error (`eval --worst N`): the images the model reconstructs worst,
 * and how the error spreads within each class. Pure functions over per-image errors (see
 * quality.perImageMse) and labels; class names come from the caller (the data set's descriptor).
 */

export interface WorstImage {
  /** Index of the image in the evaluated set. */
  index: number;
  error: number;
  label: number;
  className: string;
}

function className(names: readonly string[], label: number): string {
  return names[label] ?? String(label);
}

/** The n images with the highest error, highest first (ties: the lower index first). */
export function worstN(errors: ArrayLike<number>, labels: ArrayLike<number>, n: number, classNames: readonly string[]): WorstImage[] {
  if (errors.length !== labels.length) throw new Error(`worstN: ${errors.length} errors but ${labels.length} labels`);
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`--worst: expected a whole number >= 1, got ${n}`);
  const idx = Array.from({ length: errors.length }, (_, i) => i);
  idx.sort((a, b) => errors[b] - errors[a] || a - b);
  return idx.slice(0, n).map((i) => ({ index: i, error: errors[i], label: labels[i], className: className(classNames, labels[i]) }));
}

export interface ErrorHistogram {
  /** bins + 1 bin edges, from lo to hi. */
  edges: number[];
  classNames: string[];
  /** counts[c][b]: images of class c with an error in bin b (the last bin includes hi; values outside are clamped). */
  counts: number[][];
  /** Per class: images, mean error, and the largest error. */
  perClass: { className: string; n: number; mean: number; max: number }[];
}

/**
 * The histogram of the error per class, over `bins` equal bins from `range` (default: 0 to the largest
 * error). Classes are 0 .. classNames.length - 1.
 */
export function errorHistogram(errors: ArrayLike<number>, labels: ArrayLike<number>, classNames: readonly string[],
                               bins = 20, range?: [number, number]): ErrorHistogram {
  if (errors.length !== labels.length) throw new Error(`errorHistogram: ${errors.length} errors but ${labels.length} labels`);
  if (!(Number.isInteger(bins) && bins >= 1)) throw new Error(`errorHistogram: expected a whole number of bins >= 1, got ${bins}`);
  let hiAll = 0;
  for (let i = 0; i < errors.length; i++) hiAll = Math.max(hiAll, errors[i]);
  const [lo, hi] = range ?? [0, hiAll > 0 ? hiAll : 1];
  if (!(hi > lo)) throw new Error(`errorHistogram: expected a range lo < hi, got [${lo}, ${hi}]`);
  const C = classNames.length;
  const counts = Array.from({ length: C }, () => new Array<number>(bins).fill(0));
  const sum = new Float64Array(C), cnt = new Int32Array(C), max = new Float64Array(C).fill(-Infinity);
  for (let i = 0; i < errors.length; i++) {
    const c = labels[i], e = errors[i];
    if (!(c >= 0 && c < C)) throw new Error(`errorHistogram: label ${c} of image ${i} has no class name (${C} given)`);
    const b = Math.min(bins - 1, Math.max(0, Math.floor(((e - lo) / (hi - lo)) * bins)));
    counts[c][b]++;
    sum[c] += e; cnt[c]++; max[c] = Math.max(max[c], e);
  }
  return {
    edges: Array.from({ length: bins + 1 }, (_, b) => lo + ((hi - lo) * b) / bins),
    classNames: [...classNames],
    counts,
    perClass: classNames.map((name, c) => ({ className: name, n: cnt[c], mean: cnt[c] ? sum[c] / cnt[c] : NaN, max: cnt[c] ? max[c] : NaN })),
  };
}
