/**
 * Encoding your own pictures of digits with a trained run (Node): PNG or JPEG files of any size
 * are decoded with @napi-rs/canvas, preprocessed MNIST-style (./preprocess.ts), encoded to latent
 * points and decoded back. `latentlab encode` and `encodeImages` of `latentlab/node`.
 */
import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { mnistPixelsFromPixels, normalizeMnist } from '../data/preprocess.js';
import { checkImageFile } from '../data/image-file.js';
import { openRun, type Run } from '../run/run.js';
import { PCA } from './projection.js';
import { dataRange } from '../../viz/axes.js';
import { labelledSheetFigure, labelledSheetSize, latentFigure, latentFigureSize, type LatentFigureOptions } from '../../viz/figures.js';
import { worstN } from './anomaly.js';
import { labelNamer } from '../../viz/palette.js';
import type { ScatterMark } from '../../viz/scatter.js';
import { decodePng, renderPng, writeFileAtomic, type DecodedImage } from '../../viz/node.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W, toByte } from '../data/image.js';

export interface EncodedImage {
  /** The file as given. */
  file: string;
  /** The preprocessed 28x28 input as bytes (0 background, 255 ink). */
  pixels: Uint8Array;
  /** The model's input, IMAGE_PIXELS (784) values in [-1, 1]. */
  input: Float32Array;
  /** The latent point (the model's latent size; 98 values for a 'conv' latent). */
  z: Float32Array;
  /** The reconstruction, IMAGE_PIXELS (784) values in [-1, 1] (or the 'simple' model's raw outputs). */
  recon: Float32Array;
}

/** RGBA pixels of a PNG or JPEG file (any size); throws one line naming the file. */
export async function readImagePixels(file: string): Promise<DecodedImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message})`, { cause: e });
  }
  checkImageFile(bytes, file);   // size and wholeness from the header, before decoding anything
  try {
    return await decodePng(bytes);
  } catch (e) {
    throw new Error(`${file}: not a PNG or JPEG image (${String((e as Error).message ?? e).split('\n')[0]})`, { cause: e });
  }
}

/** Reads and preprocesses one picture file into MNIST bytes (28x28); errors name the file. */
export async function readDigitImage(file: string): Promise<Uint8Array> {
  const img = await readImagePixels(file);
  return mnistPixelsFromPixels(img.data, img.width, img.height, 4, { name: file });
}

/**
 * Encodes picture files with a run's model: each is read, preprocessed MNIST-style, encoded and
 * reconstructed. `run` is an open run or a run folder. Throws one line naming the first bad file.
 */
export async function encodeImages(run: Run | string, files: readonly string[]): Promise<EncodedImage[]> {
  if (files.length === 0) throw new Error('encode: expected at least one image file');
  const r = typeof run === 'string' ? await openRun(run) : run;
  const pixels: Uint8Array[] = [];
  for (const f of files) pixels.push(await readDigitImage(f));
  const n = files.length;
  const x = new Float32Array(n * IMAGE_PIXELS);
  pixels.forEach((p, i) => x.set(normalizeMnist(p), i * IMAGE_PIXELS));
  const model = r.model;
  model.eval();
  const dim = model.latentDim;
  const z = model.encode(x, n);
  const recon = model.decode(z, n);
  return files.map((file, i) => ({
    file,
    pixels: pixels[i]!,
    input: x.slice(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS),
    z: z.slice(i * dim, (i + 1) * dim),
    recon: recon.slice(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS),
  }));
}

/** One line for a latent point: `file: (0.123, -4.56)`. */
export function formatLatent(e: EncodedImage, digits = 4): string {
  const vals = [...e.z].map((v) => v.toFixed(digits));
  return `${e.file}: (${vals.join(', ')})`;
}

/** A 28x28 greyscale PNG of 784 values in [-1, 1] drawn pixel by pixel (no layout involved). */
export async function imagePng(values: Float32Array): Promise<Buffer> {
  return renderPng(IMAGE_W, IMAGE_H, (ctx) => {
    const img = ctx.createImageData(IMAGE_W, IMAGE_H);
    for (let i = 0; i < IMAGE_PIXELS; i++) {
      const g = toByte(values[i]!);
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  });
}

/** The file stem used for the outputs of an input file: `dir/seven.jpg` -> `seven`. */
export function outputStem(file: string): string {
  return path.basename(file).replace(/\.[^.]+$/, '') || 'image';
}

export interface EncodeOutputs { inputs: string[]; recons: string[]; plot?: string }

/**
 * Writes, for each encoded picture, `<stem>-input.png` (the preprocessed 28x28 input) and
 * `<stem>-recon.png` (the reconstruction) into `outDir`, atomically; with `plot`, also
 * `encode-latent.png`: the run's test latents with the pictures' points marked (PCA for
 * latents of more than 2 dimensions).
 */
export async function writeEncodeOutputs(run: Run, encoded: EncodedImage[], outDir: string, opts: { plot?: boolean } = {}): Promise<EncodeOutputs> {
  const seen = new Map<string, number>();
  const out: EncodeOutputs = { inputs: [], recons: [] };
  for (const e of encoded) {
    let stem = outputStem(e.file);
    const k = seen.get(stem) ?? 0;
    seen.set(stem, k + 1);
    if (k > 0) stem = `${stem}-${k + 1}`;
    const fi = path.join(outDir, `${stem}-input.png`);
    const fr = path.join(outDir, `${stem}-recon.png`);
    await writeFileAtomic(fi, await imagePng(e.input));
    await writeFileAtomic(fr, await imagePng(e.recon));
    out.inputs.push(fi);
    out.recons.push(fr);
  }
  if (opts.plot) {
    const file = path.join(outDir, 'encode-latent.png');
    await writeFileAtomic(file, await encodePlotPng(run, encoded));
    out.plot = file;
  }
  return out;
}

/** The latent scatter of the run's test set with the encoded pictures marked (PNG bytes). */
export async function encodePlotPng(run: Run, encoded: EncodedImage[]): Promise<Buffer> {
  const lat = run.testLatents;
  const dim = lat.dim;
  const pts = new Float32Array(encoded.length * dim);
  encoded.forEach((e, i) => pts.set(e.z, i * dim));
  let x: Float32Array, y: Float32Array, mx: Float32Array, my: Float32Array;
  let xLabel = 'z₁', yLabel = 'z₂', caption: string | undefined;
  if (dim <= 2) {
    const col = (a: Float32Array, n: number, j: number) => Float32Array.from({ length: n }, (_, i) => (j < dim ? a[i * dim + j]! : 0));
    x = col(lat.z, lat.n, 0); y = col(lat.z, lat.n, 1);
    mx = col(pts, encoded.length, 0); my = col(pts, encoded.length, 1);
  } else {
    const pca = PCA.fit(lat.z, lat.n, dim, 2);
    const a = pca.transform(lat.z, lat.n), b = pca.transform(pts, encoded.length);
    x = Float32Array.from({ length: lat.n }, (_, i) => a[2 * i]!); y = Float32Array.from({ length: lat.n }, (_, i) => a[2 * i + 1]!);
    mx = Float32Array.from({ length: encoded.length }, (_, i) => b[2 * i]!); my = Float32Array.from({ length: encoded.length }, (_, i) => b[2 * i + 1]!);
    xLabel = 'PC 1'; yLabel = 'PC 2'; caption = `PCA of the ${dim}-D latents`;
  }
  const marks: ScatterMark[] = encoded.map((e, i) => ({ x: mx[i]!, y: my[i]!, label: outputStem(e.file) }));
  const all = (a: Float32Array, b: Float32Array) => { const c = new Float32Array(a.length + b.length); c.set(a); c.set(b, a.length); return c; };
  const opts: LatentFigureOptions = {
    x, y, labels: lat.labels, xRange: dataRange(all(x, mx)), yRange: dataRange(all(y, my)), xLabel, yLabel,
    labelName: labelNamer(run.config.dataset), title: `Your digits in the latent space of ${run.name}`, marks, caption,
  };
  const size = latentFigureSize(opts);
  return renderPng(size.width, size.height, (ctx) => latentFigure(ctx, opts));
}

/** The picture files encode reads from a folder: its .png, .jpg and .jpeg files (any case), sorted by name. */
export const IMAGE_FILE_RE = /\.(png|jpe?g)$/i;

/**
 * The files of `encode`'s arguments: a folder expanded to its PNG and JPEG files (not recursive, sorted by
 * name), anything else as given (a missing or bad file is reported when it is read). Throws one line for a
 * folder without pictures.
 */
export function expandImageArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    let isDir = false;
    try { isDir = statSync(a).isDirectory(); } catch { /* not there: readImagePixels names it */ }
    if (!isDir) { out.push(a); continue; }
    const files = readdirSync(a).filter((f) => IMAGE_FILE_RE.test(f)).sort().map((f) => path.join(a, f));
    if (!files.length) throw new Error(`${a}: a folder without PNG or JPEG files (.png, .jpg, .jpeg)`);
    out.push(...files);
  }
  return out;
}

export interface WorstEncoded { file: string; error: number; index: number }

/**
 * Anomaly search on your own pictures (`encode --worst N`): the n pictures reconstructed worst (MSE of the
 * reconstruction against the preprocessed input, on [-1, 1]), highest first, and a picture of each beside its
 * reconstruction labelled with its file name and error. Returns the list and the PNG bytes.
 */
export async function worstEncoded(encoded: EncodedImage[], n: number, runName: string): Promise<{ worst: WorstEncoded[]; png: Buffer }> {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`--worst: expected a whole number >= 1, got ${n}`);
  const errors = encoded.map((e) => { let s = 0; for (let i = 0; i < IMAGE_PIXELS; i++) { const d = e.recon[i]! - e.input[i]!; s += d * d; } return s / IMAGE_PIXELS; });
  const worst = worstN(errors, new Array<number>(errors.length).fill(0), Math.min(n, errors.length), [])
    .map((w) => ({ file: encoded[w.index]!.file, error: w.error, index: w.index }));
  const k = worst.length, images = new Float32Array(2 * k * IMAGE_PIXELS);
  worst.forEach((w, i) => {
    images.set(encoded[w.index]!.input, 2 * i * IMAGE_PIXELS);
    images.set(encoded[w.index]!.recon, (2 * i + 1) * IMAGE_PIXELS);
  });
  const short = (s: string) => (s.length > 14 ? `${s.slice(0, 13)}…` : s);
  const sheet = {
    images, cols: 10, labels: worst.flatMap((w) => [short(path.basename(w.file)), `MSE ${w.error.toFixed(3)}`]),
    title: `Your ${k} worst-reconstructed picture${k > 1 ? 's' : ''} of ${encoded.length} (${runName})`,
    caption: `pairs: your picture (preprocessed to 28×28) then its reconstruction (MSE on [-1, 1]); mean MSE ${(errors.reduce((a, v) => a + v, 0) / errors.length).toFixed(4)}`,
  };
  const size = labelledSheetSize(2 * k, 10, sheet);
  return { worst, png: await renderPng(size.width, size.height, (ctx) => labelledSheetFigure(ctx, sheet)) };
}
