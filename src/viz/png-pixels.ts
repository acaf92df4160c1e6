/**
 * The RGBA pixels of a PNG of 8-bit RGBA or RGB, non-interlaced (what Skia writes): the chunks'
 * image data inflated with node:zlib and its rows unfiltered. The GIF frames read their pixels this
 * way because @napi-rs/canvas 1.1 never gives back the memory of a direct read-back (getImageData,
 * data(): the frame's size, about 3 MB, each time), while encoding a PNG costs it only a little.
 *
 * Hand-written rather than an npm decoder because of memory: with fast-png 8 (inflate by fflate) in its
 * place, `npm run demo` peaked at 225 MB against 206 MB with this one (two runs each, side by side), and
 * the point of reading frames this way is the peak.
 */
import { inflateSync } from 'node:zlib';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes `png` into width * height * 4 RGBA bytes; throws on a PNG of another kind. */
export function pngRgba(png: Uint8Array): { width: number; height: number; data: Uint8ClampedArray } {
  if (png.length < 8 || SIGNATURE.some((b, i) => png[i] !== b)) throw new Error('pngRgba: not a PNG');
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let width = 0, height = 0, channels = 0;
  const idat: Uint8Array[] = [];
  for (let p = 8; p + 8 <= png.length;) {
    const len = dv.getUint32(p), type = String.fromCharCode(png[p + 4], png[p + 5], png[p + 6], png[p + 7]);
    const body = png.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      width = dv.getUint32(p + 8); height = dv.getUint32(p + 12);
      const depth = body[8], colour = body[9], interlace = body[12];
      channels = colour === 6 ? 4 : colour === 2 ? 3 : 0;
      if (depth !== 8 || !channels || interlace !== 0)
        throw new Error(`pngRgba: expected 8-bit RGBA or RGB without interlacing, got depth ${depth}, colour type ${colour}, interlace ${interlace}`);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    p += 12 + len;
  }
  if (!channels) throw new Error('pngRgba: no IHDR chunk');
  const stride = width * channels;
  // one output buffer of the exact size (zlib's default 16 kB chunks would be concatenated: a copy)
  const raw = inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat), { chunkSize: Math.max(64 * 1024, (stride + 1) * height) });
  if (raw.length < (stride + 1) * height) throw new Error(`pngRgba: ${raw.length} bytes of image data, expected ${(stride + 1) * height}`);
  // unfilter in place: row y's bytes at (stride + 1) * y + 1, the row above just before them
  const n = channels;
  for (let y = 0; y < height; y++) {
    const f = raw[(stride + 1) * y], o = (stride + 1) * y + 1, up = o - stride - 1;
    if (f === 0) continue;
    if (f === 1) {
      for (let i = n; i < stride; i++) raw[o + i] = raw[o + i] + raw[o + i - n];
    } else if (f === 2) {
      if (y > 0) for (let i = 0; i < stride; i++) raw[o + i] = raw[o + i] + raw[up + i];
    } else if (f === 3) {
      for (let i = 0; i < stride; i++) {
        const a = i >= n ? raw[o + i - n] : 0, b = y > 0 ? raw[up + i] : 0;
        raw[o + i] = raw[o + i] + ((a + b) >> 1);
      }
    } else if (f === 4) {
      for (let i = 0; i < stride; i++) {
        const a = i >= n ? raw[o + i - n] : 0, b = y > 0 ? raw[up + i] : 0, c = y > 0 && i >= n ? raw[up + i - n] : 0;
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        raw[o + i] = raw[o + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
    } else throw new Error(`pngRgba: unknown row filter ${f}`);
  }
  // the rows without their filter bytes, moved forward in place (RGBA), or spread into a new array (RGB)
  let data: Uint8ClampedArray;
  if (n === 4) {
    for (let y = 0; y < height; y++) raw.copyWithin(y * stride, (stride + 1) * y + 1, (stride + 1) * (y + 1));
    data = new Uint8ClampedArray(raw.buffer, raw.byteOffset, width * height * 4);
  } else {
    data = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      const o = (stride + 1) * y + 1;
      for (let x = 0, d = y * width * 4; x < width; x++, d += 4) {
        data[d] = raw[o + 3 * x]; data[d + 1] = raw[o + 3 * x + 1]; data[d + 2] = raw[o + 3 * x + 2]; data[d + 3] = 255;
      }
    }
  }
  return { width, height, data };
}
