/**
 * Animated GIFs from RGBA frames, with gifenc (pure JS, so this works in browsers too).
 */
import * as gifencNs from 'gifenc';

type Gifenc = typeof import('gifenc');

// In Node, gifenc's CommonJS build is seen through `default`; bundlers use its ESM build with named exports.
const gifenc: Gifenc = (typeof (gifencNs as unknown as Gifenc).GIFEncoder === 'function'
  ? gifencNs
  : (gifencNs as unknown as { default: Gifenc }).default) as Gifenc;

export interface GifOptions {
  /** Delay per frame in ms (a number, or one per frame). Default 100. */
  delay?: number | number[];
  /** 'global': one palette from all frames (stable colours, smaller); 'per-frame': quantize each frame. Default 'global'. */
  palette?: 'global' | 'per-frame';
  /** Colours per palette (≤ 256). Default 256. */
  maxColors?: number;
  /** 0 = loop forever (default), -1 = play once, n = repeat n times. */
  repeat?: number;
  /** Hold the last frame this much longer (ms). Default 0. */
  lastFrameExtra?: number;
}

/** A frame's RGBA bytes (width·height·4); asked for again when the palette is global (see encodeGifFrom). */
export type FrameSource = (i: number) => Uint8ClampedArray | Uint8Array;

/** Encode frames (each width·height·4 RGBA bytes) as an animated GIF. */
export function encodeGif(frames: (Uint8ClampedArray | Uint8Array)[], width: number, height: number, opts: GifOptions = {}): Uint8Array {
  return encodeGifFrom(frames.length, width, height, (i) => frames[i], opts);
}

/**
 * Encode `count` frames drawn on demand as an animated GIF. Each frame is asked for once, except
 * that the global palette (the default) is built first from the frames `paletteFrom` names (all of
 * them by default: those are then asked for twice, and `frame(i)` must give the same bytes both
 * times). The frames sampled are kept until written; with a few named, at most those few and one
 * more are alive at a time.
 */
export function encodeGifFrom(count: number, width: number, height: number, frame: FrameSource, opts: GifOptions & { paletteFrom?: number[] } = {}): Uint8Array {
  if (count === 0) throw new Error('encodeGif: no frames');
  const need = width * height * 4;
  const get = (i: number) => {
    const f = frame(i);
    if (f.length !== need) throw new Error(`encodeGif: frame ${i} has ${f.length} bytes, expected ${need} (${width}x${height} RGBA)`);
    return f;
  };
  const maxColors = Math.max(2, Math.min(256, opts.maxColors ?? 256));
  const sampled = new Map<number, Uint8ClampedArray | Uint8Array>();
  let global: number[][] | null = null;
  if ((opts.palette ?? 'global') === 'global') {
    const from = opts.paletteFrom ? [...new Set(opts.paletteFrom)].filter((i) => i >= 0 && i < count) : null;
    if (from && from.length) for (const i of from) sampled.set(i, get(i));
    const source = from && from.length ? (k: number) => sampled.get(from[k])! : get;
    global = gifenc.quantize(sampleFrames(from && from.length ? from.length : count, need / 4, source), maxColors);
  }
  const enc = gifenc.GIFEncoder();
  for (let i = 0; i < count; i++) {
    const f = sampled.get(i) ?? get(i);
    sampled.delete(i);
    const palette = global ?? gifenc.quantize(f, maxColors);
    const index = gifenc.applyPalette(f, palette);
    let delay = Array.isArray(opts.delay) ? (opts.delay[i] ?? 100) : (opts.delay ?? 100);
    if (i === count - 1) delay += opts.lastFrameExtra ?? 0;
    enc.writeFrame(index, width, height, {
      palette: i === 0 || !global ? palette : undefined,
      delay,
      repeat: opts.repeat ?? 0,
    });
  }
  enc.finish();
  return enc.bytes();
}

/** An evenly strided sample of at most about `maxPixels` pixels over every frame, to build one palette for all. */
function sampleFrames(count: number, pixelsPerFrame: number, get: FrameSource, maxPixels = 1 << 20): Uint8Array {
  const stride = Math.max(1, Math.ceil((count * pixelsPerFrame) / maxPixels));
  const out = new Uint8Array((Math.ceil(pixelsPerFrame / stride) + 1) * 4 * count);
  let o = 0;
  for (let i = 0; i < count; i++) {
    const f = get(i);
    for (let p = 0; p < pixelsPerFrame; p += stride) {
      out[o++] = f[p * 4]; out[o++] = f[p * 4 + 1]; out[o++] = f[p * 4 + 2]; out[o++] = 255;
    }
  }
  return out.subarray(0, o);
}

/** Count the frames of a GIF (Image Descriptor blocks), skipping extensions; for checks and tests. */
export function countGifFrames(bytes: Uint8Array): number {
  const sig = String.fromCharCode(...bytes.subarray(0, 6));
  if (sig !== 'GIF89a' && sig !== 'GIF87a') throw new Error('not a GIF');
  let p = 13;
  const flags = bytes[10];
  if (flags & 0x80) p += 3 * (1 << ((flags & 7) + 1));
  const skipSubBlocks = () => { while (p < bytes.length && bytes[p] !== 0) p += bytes[p] + 1; p++; };
  let frames = 0;
  while (p < bytes.length) {
    const b = bytes[p++];
    if (b === 0x3b) return frames; // trailer
    if (b === 0x21) { p++; skipSubBlocks(); continue; } // extension: label, sub-blocks
    if (b === 0x2c) {
      frames++;
      const f = bytes[p + 8];
      p += 9;
      if (f & 0x80) p += 3 * (1 << ((f & 7) + 1));
      p++; // LZW minimum code size
      skipSubBlocks();
      continue;
    }
    throw new Error(`bad GIF block 0x${b.toString(16)} at ${p - 1}`);
  }
  throw new Error('GIF has no trailer');
}
