/**
 * Turns an arbitrary picture of a digit (a canvas's RGBA pixels, a decoded PNG/JPEG, a draw pad)
 * into a 28x28 MNIST-style input in [-1, 1], the way the MNIST digits were made:
 *
 *   1. grey levels (alpha composited on white; Rec. 601 luma for colour),
 *   2. polarity: if the border is lighter than the middle grey the picture is dark ink on light
 *      paper and is inverted, so the digit is white (255) on black (0) like MNIST,
 *   3. contrast: the background level (border mean) is taken off and the ink stretched to 0..1,
 *   4. crop to the bounding box of the ink (values above `threshold`),
 *   5. scale so that the larger side is 20 px, keeping the aspect ratio (area averaging when
 *      shrinking, bilinear when enlarging),
 *   6. place into 28x28 so that the centre of mass is at the centre (14, 14) in pixel indices (as
 *      in MNIST, whose digits' centres of mass lie at 14 +- 0.5), by an integer shift, kept inside
 *      the frame,
 *   7. quantise to bytes like the dataset, and map x -> x / 127.5 - 1 (the training normalisation).
 *
 * Browser-safe: no Node imports.
 */
import { IMAGE_H, toModel } from './image.js';

/** MNIST's side. */
export const MNIST_SIDE = IMAGE_H;
/** MNIST's digit box: the larger side of the digit is scaled to this. */
export const MNIST_BOX = 20;

export interface PreprocessOptions {
  /** The input's name for error messages (a file name, 'draw pad'); default `WxH image`. */
  name?: string;
  /** The ink threshold for the bounding box, on the stretched 0..1 ink scale; default 0.1. */
  threshold?: number;
  /** Force the polarity instead of detecting it from the border: true = dark ink on light paper. */
  darkOnLight?: boolean;
}

function inputName(width: number, height: number, opts: PreprocessOptions): string {
  return opts.name ?? `${width}x${height} image`;
}

/** Grey levels 0..255 (float) with alpha composited on white. */
function toGrey(data: ArrayLike<number>, width: number, height: number, channels: number): Float32Array {
  const n = width * height;
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    let v: number;
    let a = 255;
    if (channels === 1) v = data[p]!;
    else if (channels === 2) { v = data[p]!; a = data[p + 1]!; }
    else {
      v = 0.299 * data[p]! + 0.587 * data[p + 1]! + 0.114 * data[p + 2]!;
      if (channels === 4) a = data[p + 3]!;
    }
    const af = a / 255;
    g[i] = v * af + 255 * (1 - af);
  }
  return g;
}

/** The mean of the outermost rows and columns. */
function borderMean(g: Float32Array, width: number, height: number): number {
  let sum = 0;
  let count = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y === 0 || y === height - 1 || x === 0 || x === width - 1) { sum += g[y * width + x]!; count++; }
    }
  }
  return count ? sum / count : 0;
}

/**
 * A 1-D resampling matrix from `n` source samples to `m` (as per-output lists of source indices
 * and weights): area averaging (box filter) when shrinking, bilinear (half-pixel centres, edges
 * clamped) when enlarging or keeping the size.
 */
function resampleWeights(n: number, m: number): { idx: number[][]; w: number[][] } {
  const idx: number[][] = [];
  const w: number[][] = [];
  const scale = n / m; // source pixels per output pixel
  for (let j = 0; j < m; j++) {
    const ii: number[] = [];
    const ww: number[] = [];
    if (m < n) {
      const a = j * scale;
      const b = (j + 1) * scale;
      for (let i = Math.floor(a); i < Math.ceil(b) && i < n; i++) {
        const cover = Math.min(b, i + 1) - Math.max(a, i);
        if (cover > 0) { ii.push(i); ww.push(cover / scale); }
      }
    } else {
      let s = (j + 0.5) * scale - 0.5;
      s = Math.min(Math.max(s, 0), n - 1);
      const i0 = Math.floor(s);
      const i1 = Math.min(i0 + 1, n - 1);
      const f = s - i0;
      ii.push(i0); ww.push(1 - f);
      if (f > 0 && i1 !== i0) { ii.push(i1); ww.push(f); }
    }
    idx.push(ii);
    w.push(ww);
  }
  return { idx, w };
}

/** Separable resampling of a (h, w) image to (nh, nw). */
function resize(src: Float32Array, w: number, h: number, nw: number, nh: number): Float32Array {
  const cx = resampleWeights(w, nw);
  const cy = resampleWeights(h, nh);
  const tmp = new Float32Array(h * nw);
  for (let y = 0; y < h; y++) {
    for (let j = 0; j < nw; j++) {
      let s = 0;
      const ii = cx.idx[j]!, ww = cx.w[j]!;
      for (let k = 0; k < ii.length; k++) s += src[y * w + ii[k]!]! * ww[k]!;
      tmp[y * nw + j] = s;
    }
  }
  const out = new Float32Array(nh * nw);
  for (let j = 0; j < nh; j++) {
    const ii = cy.idx[j]!, ww = cy.w[j]!;
    for (let x = 0; x < nw; x++) {
      let s = 0;
      for (let k = 0; k < ii.length; k++) s += tmp[ii[k]! * nw + x]! * ww[k]!;
      out[j * nw + x] = s;
    }
  }
  return out;
}

/**
 * The MNIST-style 28x28 grey levels (0 = background, 255 = ink; row-major) of a picture of a
 * digit. `channels`: 4 = RGBA (canvas ImageData), 3 = RGB, 2 = grey+alpha, 1 = grey.
 * Throws one line naming the input if it has no ink or the sizes do not match.
 */
export function mnistPixelsFromPixels(
  data: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels = 4,
  opts: PreprocessOptions = {},
): Uint8Array {
  const name = inputName(width, height, opts);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new Error(`${name}: bad image size ${width}x${height}`);
  if (![1, 2, 3, 4].includes(channels)) throw new Error(`${name}: channels must be 1, 2, 3 or 4, got ${channels}`);
  if (data.length !== width * height * channels)
    throw new Error(`${name}: expected ${width}x${height}x${channels} = ${width * height * channels} bytes, got ${data.length}`);

  // 1-2. grey, polarity (ink high)
  const g = toGrey(data, width, height, channels);
  const border = borderMean(g, width, height);
  const invert = opts.darkOnLight ?? border > 127.5;
  const n = width * height;
  if (invert) for (let i = 0; i < n; i++) g[i] = 255 - g[i]!;
  const bg = invert ? 255 - border : border;

  // 3. contrast: background -> 0, brightest ink -> 1
  let max = 0;
  for (let i = 0; i < n; i++) if (g[i]! > max) max = g[i]!;
  const range = max - bg;
  if (!(range > 8)) throw new Error(`${name}: no ink found (blank image)`);
  for (let i = 0; i < n; i++) g[i] = Math.min(1, Math.max(0, (g[i]! - bg) / range));

  // 4. bounding box of the ink
  const thr = opts.threshold ?? 0.1;
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (g[y * width + x]! > thr) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) throw new Error(`${name}: no ink found (blank image)`);
  const cw = x1 - x0 + 1;
  const ch = y1 - y0 + 1;
  const crop = new Float32Array(cw * ch);
  for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) crop[y * cw + x] = g[(y0 + y) * width + x0 + x]!;

  // 5. scale: the larger side to 20 px
  const s = MNIST_BOX / Math.max(cw, ch);
  const nw = Math.max(1, Math.min(MNIST_BOX, Math.round(cw * s)));
  const nh = Math.max(1, Math.min(MNIST_BOX, Math.round(ch * s)));
  const small = resize(crop, cw, ch, nw, nh);

  // 6. centre of mass (in pixel indices, as MNIST: its digits' mean is 14.0) to (14, 14) by an integer shift, inside the frame
  let m = 0, mx = 0, my = 0;
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      const v = small[y * nw + x]!;
      m += v; mx += v * x; my += v * y;
    }
  }
  const comX = m > 0 ? mx / m : (nw - 1) / 2;
  const comY = m > 0 ? my / m : (nh - 1) / 2;
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
  const ox = clamp(Math.round(MNIST_SIDE / 2 - comX), 0, MNIST_SIDE - nw);
  const oy = clamp(Math.round(MNIST_SIDE / 2 - comY), 0, MNIST_SIDE - nh);

  // 7. bytes
  const out = new Uint8Array(MNIST_SIDE * MNIST_SIDE);
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      out[(oy + y) * MNIST_SIDE + ox + x] = Math.round(clamp(small[y * nw + x]!, 0, 1) * 255);
    }
  }
  return out;
}

/** Maps MNIST bytes (0..255) to the model's input range: x / 127.5 - 1. */
export function normalizeMnist(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = toModel(pixels[i]!);
  return out;
}

/**
 * A picture of a digit as the model's input: Float32Array(784), row-major 28x28, in [-1, 1]
 * (-1 background, 1 ink), MNIST-style (see the module comment). Feed it as a [1, 1, 28, 28] tensor.
 *
 * @param data the pixels, row-major, `channels` bytes each (canvas ImageData.data is RGBA: 4)
 * @param width the picture's width
 * @param height the picture's height
 * @param channels 4 = RGBA (default), 3 = RGB, 2 = grey+alpha, 1 = grey
 * @param opts the input's name for errors, the ink threshold, a forced polarity
 * @throws one line naming the input for a blank picture (no ink) or mismatched sizes
 */
export function mnistFromPixels(
  data: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels = 4,
  opts: PreprocessOptions = {},
): Float32Array {
  return normalizeMnist(mnistPixelsFromPixels(data, width, height, channels, opts));
}
