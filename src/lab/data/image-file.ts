/**
 * The header of a PNG or JPEG file, read before anything is decoded (browser-safe): its size, so a
 * 30000 x 30000 picture is refused before it costs gigabytes, and whether the file is whole (a PNG
 * ends with its IEND chunk, a JPEG has its end-of-image marker after the scan), so a truncated file
 * is an error rather than a partial image.
 */

/** The largest picture `encode` decodes: 4096 x 4096 pixels (64 MiB as RGBA). */
export const MAX_IMAGE_PIXELS = 4096 * 4096;

export interface ImageHeader { format: 'png' | 'jpeg'; width: number; height: number }

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IEND = [0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];

function pngHeader(b: Uint8Array, name: string): ImageHeader {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 33 || String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR') throw new Error(`${name}: a damaged PNG (no IHDR chunk)`);
  const width = dv.getUint32(16), height = dv.getUint32(20);
  const tail = b.subarray(b.length - IEND.length);
  if (b.length < 33 + IEND.length || !IEND.every((v, i) => tail[i] === v)) throw new Error(`${name}: a truncated PNG (it does not end with its IEND chunk)`);
  return { format: 'png', width, height };
}

function jpegHeader(b: Uint8Array, name: string): ImageHeader {
  let pos = 2, size: { width: number; height: number } | null = null;
  while (pos + 4 <= b.length) {
    if (b[pos] !== 0xff) throw new Error(`${name}: a damaged JPEG (no marker at byte ${pos})`);
    const marker = b[pos + 1];
    if (marker === 0xff) { pos++; continue; }                          // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { pos += 2; continue; }
    const len = (b[pos + 2] << 8) | b[pos + 3];
    // SOF0..SOF15, but not DHT (c4), JPG (c8) and DAC (cc)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (pos + 9 > b.length) break;
      size = { height: (b[pos + 5] << 8) | b[pos + 6], width: (b[pos + 7] << 8) | b[pos + 8] };
    }
    if (marker === 0xda) {                                              // start of scan: the rest is image data
      if (!size) throw new Error(`${name}: a damaged JPEG (no frame header before its data)`);
      let end = b.length - 1;
      while (end > pos && b[end] === 0) end--;                          // some writers pad with zeros
      if (!(b[end - 1] === 0xff && b[end] === 0xd9)) throw new Error(`${name}: a truncated JPEG (no end-of-image marker)`);
      return { format: 'jpeg', ...size };
    }
    pos += 2 + len;
  }
  throw new Error(`${name}: a truncated JPEG (it ends before its image data)`);
}

/** Size and format of a PNG or JPEG; one-line errors naming `name` for anything else, damaged or cut short. */
export function readImageHeader(bytes: Uint8Array, name: string): ImageHeader {
  if (PNG_SIGNATURE.every((v, i) => bytes[i] === v)) return pngHeader(bytes, name);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return jpegHeader(bytes, name);
  throw new Error(`${name}: not a PNG or JPEG image`);
}

/** The header, after checking the size bound. */
export function checkImageFile(bytes: Uint8Array, name: string): ImageHeader {
  const h = readImageHeader(bytes, name);
  if (!(h.width > 0 && h.height > 0)) throw new Error(`${name}: an image without pixels (${h.width} x ${h.height})`);
  if (h.width * h.height > MAX_IMAGE_PIXELS)
    throw new Error(`${name}: ${h.width} x ${h.height} pixels is larger than the ${Math.sqrt(MAX_IMAGE_PIXELS)} x ${Math.sqrt(MAX_IMAGE_PIXELS)} (${(MAX_IMAGE_PIXELS / 1e6).toFixed(1)} MP) that encode reads; scale it down first`);
  return h;
}
