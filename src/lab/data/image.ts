/**
 * The image contract: the one place that says what an image is to latentlab, and what each data set
 * is (its name, image shape and class names). Browser-safe: no Node modules.
 *
 *   - an image is IMAGE_H × IMAGE_W × IMAGE_C = 28 × 28 × 1 bytes (0 = background, 255 = ink),
 *     row-major: IMAGE_PIXELS = 784 values per image; a batch of n is the tensor [n, 1, 28, 28];
 *   - the model sees each byte v as v / 127.5 - 1, in [-1, 1] (`toModel`); a model value goes back to
 *     a byte with `toByte`, and to [0, 1] (for PSNR and BCE) with `toUnit`. An MSE on [-1, 1] is 4×
 *     the MSE on [0, 1] (`MSE_TO_UNIT`).
 *
 * The data-set descriptors here carry what pictures and reports need (name, title, shape, class
 * names, the word for a class); `datasets.ts` adds the files, checksums and mirrors on top (Node).
 */

/** Rows (height) of an image. */
export const IMAGE_H = 28;
/** Columns (width) of an image. */
export const IMAGE_W = 28;
/** Channels of an image (greyscale). */
export const IMAGE_C = 1;
/** Values per image: 28 × 28 × 1 = 784. */
export const IMAGE_PIXELS = IMAGE_H * IMAGE_W * IMAGE_C;
/** The shape of one image as a tensor without the batch axis: [C, H, W]. */
export const IMAGE_SHAPE: readonly [number, number, number] = [IMAGE_C, IMAGE_H, IMAGE_W];

/** The shape of a batch of n images: [n, C, H, W]. */
export function batchShape(n: number): [number, number, number, number] {
  return [n, IMAGE_C, IMAGE_H, IMAGE_W];
}

/** Half the byte range: a byte v maps to v / BYTE_HALF - 1. */
export const BYTE_HALF = 127.5;

/** One byte (0..255) as the model sees it: v / 127.5 - 1, in [-1, 1]. */
export function toModel(v: number): number {
  return v / BYTE_HALF - 1;
}

/** A model value in [-1, 1] as a grey byte: round((x + 1) × 127.5), clamped to 0..255. */
export function toByte(x: number): number {
  const g = Math.round((x + 1) * BYTE_HALF);
  return g < 0 ? 0 : g > 255 ? 255 : g;
}

/** A model value in [-1, 1] as a pixel in [0, 1]: (x + 1) / 2. */
export function toUnit(x: number): number {
  return (x + 1) / 2;
}

/** An MSE on [-1, 1] times this is the MSE on [0, 1] pixels (the range is half as wide). */
export const MSE_TO_UNIT = 1 / 4;

/** PSNR in dB of an MSE on [0, 1] pixels (peak 1). */
export function psnrOfUnitMse(mse01: number): number {
  return 10 * Math.log10(1 / mse01);
}

/**
 * `count` images from `bytes` (starting at image `from`) as model input, written to `out` from
 * image `at` on. Returns `out`.
 */
export function toModelImages(bytes: ArrayLike<number>, out: Float32Array, from = 0, count = 1, at = 0): Float32Array {
  const src = from * IMAGE_PIXELS, dst = at * IMAGE_PIXELS, m = count * IMAGE_PIXELS;
  for (let j = 0; j < m; j++) out[dst + j] = bytes[src + j] / BYTE_HALF - 1;
  return out;
}

// ---------------------------------------------------------------------------------------------
// data sets

export type DatasetName = 'mnist' | 'fashion-mnist';

/** What a data set is, independent of where its files are. */
export interface DatasetInfo {
  /** The `--dataset` value ('mnist', 'fashion-mnist') and the folder name under the cache / system folders. */
  name: string;
  title: string;
  rows: number;
  cols: number;
  channels: number;
  /** Class names, indexed by label. */
  classes: readonly string[];
  /** The word for one class in sentences: 'digit' (MNIST) or 'class'. */
  classNoun: string;
}

export const MNIST_INFO: DatasetInfo = {
  name: 'mnist',
  title: 'MNIST handwritten digits',
  rows: IMAGE_H, cols: IMAGE_W, channels: IMAGE_C,
  classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  classNoun: 'digit',
};

export const FASHION_MNIST_INFO: DatasetInfo = {
  name: 'fashion-mnist',
  title: 'Fashion-MNIST (Zalando article images)',
  rows: IMAGE_H, cols: IMAGE_W, channels: IMAGE_C,
  classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  classNoun: 'class',
};

export const DATASET_INFO: Readonly<Record<DatasetName, DatasetInfo>> = {
  mnist: MNIST_INFO,
  'fashion-mnist': FASHION_MNIST_INFO,
};

/** The descriptor of a data set name; anything unknown or absent (old runs) is MNIST. */
export function datasetInfo(name?: string | null): DatasetInfo {
  return (name && (DATASET_INFO as Record<string, DatasetInfo | undefined>)[name]) || MNIST_INFO;
}

/** The name of a label in a data set (the number itself outside the class list). */
export function className(info: DatasetInfo, label: number): string {
  return info.classes[label] ?? String(label);
}

/** A pair of classes for sentences: "3/5", or "Shirt vs Coat" in a data set whose names hold slashes ("T-shirt/top"). */
export function classPair(info: DatasetInfo, a: number, b: number): string {
  const sep = info.classes.some((c) => c.includes('/')) ? ' vs ' : '/';
  return `${className(info, a)}${sep}${className(info, b)}`;
}
