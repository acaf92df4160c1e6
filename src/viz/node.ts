/**
 * Node-only glue: render figures with @napi-rs/canvas, write files atomically, decode PNGs.
 */
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic as writeFileAtomicSync } from '../lab/run/atomic.js';
import type { Ctx2D } from './ctx.js';

export type Draw = (ctx: Ctx2D) => void;

function draw(width: number, height: number, fn: Draw) {
  const canvas = createCanvas(Math.round(width), Math.round(height));
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
  const { canvas, ctx } = draw(width, height, fn);
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.byteLength);
}

/** Writes a file atomically (the project's one writeFileAtomic, in lab/run/atomic.ts); a promise for callers that await it. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  writeFileAtomicSync(path, bytes);
}

export interface DecodedImage { width: number; height: number; data: Uint8ClampedArray }

/** Decode a PNG (or JPEG) file or buffer into RGBA pixels. */
export async function decodePng(src: string | Uint8Array): Promise<DecodedImage> {
  const bytes = typeof src === 'string' ? await readFile(src) : Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  const img = await loadImage(bytes);
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, img.width, img.height);
  return { width: img.width, height: img.height, data: new Uint8ClampedArray(d.data.buffer, d.data.byteOffset, d.data.byteLength) };
}
