/**
 * Node-only glue: render figures with @napi-rs/canvas, write files atomically, decode PNGs.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { writeFileAtomic as writeFileAtomicSync } from '../lab/run/atomic.js';
import type { Ctx2D } from './ctx.js';
import { pngRgba } from './png-pixels.js';

export type Draw = (ctx: Ctx2D) => void;

type CanvasModule = typeof import('@napi-rs/canvas');
let canvasModule: CanvasModule | undefined;
/**
 * @napi-rs/canvas, loaded on the first picture: Skia adds about 24 MB to the process, which a
 * training run should not carry while it trains (its pictures come after the training buffers go).
 */
function napiCanvas(): CanvasModule {
  return canvasModule ??= createRequire(import.meta.url)('@napi-rs/canvas') as CanvasModule;
}

function draw(width: number, height: number, fn: Draw) {
  const canvas = napiCanvas().createCanvas(Math.round(width), Math.round(height));
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  fn(ctx as unknown as Ctx2D); // napi ImageData typing differs slightly from the DOM lib
  return { canvas, ctx };
}

/** Draw into a fresh white width × height canvas and encode it as PNG. */
export async function renderPng(width: number, height: number, fn: Draw): Promise<Buffer> {
  const { canvas } = draw(width, height, fn);
  return canvas.encode('png');
}

/** Draw into a fresh white canvas and return its RGBA pixels (for GIF frames). */
export function renderRgba(width: number, height: number, fn: Draw): Uint8ClampedArray {
  return rgbaRenderer(width, height)(fn);
}

/**
 * One white width × height canvas drawn again and again (the frames of a GIF): each call clears it,
 * draws, and returns its RGBA pixels (read back through a PNG, see png-pixels.ts). A canvas per
 * frame would keep Skia's surfaces alive until V8 happens to collect them.
 */
export function rgbaRenderer(width: number, height: number): (fn: Draw) => Uint8ClampedArray {
  const canvas = napiCanvas().createCanvas(Math.round(width), Math.round(height));
  const ctx = canvas.getContext('2d');
  return (fn) => {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.restore();
    ctx.save();
    fn(ctx as unknown as Ctx2D);
    ctx.restore();
    // through a PNG: getImageData (and data()) cost @napi-rs/canvas 1.1 the frame's size (~3 MB) in
    // memory it never gives back, encoding a PNG about a tenth of it; the pixels are the same (opaque)
    return pngRgba(canvas.encodeSync('png')).data;
  };
}

/** Writes a file atomically (the project's one writeFileAtomic, in lab/run/atomic.ts); a promise for callers that await it. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  writeFileAtomicSync(path, bytes);
}

export interface DecodedImage { width: number; height: number; data: Uint8ClampedArray }

/** Decode a PNG (or JPEG) file or buffer into RGBA pixels. */
export async function decodePng(src: string | Uint8Array): Promise<DecodedImage> {
  const bytes = typeof src === 'string' ? await readFile(src) : Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  const { loadImage, createCanvas } = napiCanvas();
  const img = await loadImage(bytes);
  if (!(img.width > 0 && img.height > 0)) throw new Error('no pixels');
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, img.width, img.height);
  return { width: img.width, height: img.height, data: new Uint8ClampedArray(d.data.buffer, d.data.byteOffset, d.data.byteLength) };
}
