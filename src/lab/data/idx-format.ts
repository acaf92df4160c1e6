/**
 * The IDX format (MNIST's) on bytes: parsing with checks of magic numbers, dimensions and counts,
 * and encoding. Browser-safe (no node: imports); `idx.ts` adds files, sync gunzip and checksums.
 */

/** Magic number of a uint8 IDX file with 3 dimensions (images). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of a uint8 IDX file with 1 dimension (labels). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** An error about the data (missing/corrupt files, failed downloads); its message is one line. */
export class DataError extends Error {
  override name = 'DataError';
}

export interface IdxImages {
  /** N*rows*cols bytes, row-major, one image after another. */
  images: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

export interface IdxLabels {
  labels: Uint8Array;
  n: number;
}

/** One split (train or test): images and labels of the same count. */
export interface Split {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

export interface ImageShape {
  rows?: number;
  cols?: number;
}

/** True when the buffer starts with the gzip magic bytes 1f 8b. */
export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Gunzips `buf` if it is gzipped (with DecompressionStream), else returns it as is. */
export async function maybeGunzipAsync(buf: Uint8Array, name = 'data'): Promise<Uint8Array> {
  if (!isGzip(buf)) return buf;
  try {
    const ds = new DecompressionStream('gzip');
    const stream = new Blob([buf as Uint8Array<ArrayBuffer>]).stream().pipeThrough(ds);
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new DataError(`${name}: expected valid gzip data, got ${String((e as Error)?.message ?? e).split('\n')[0]}`);
  }
}

function hex32(x: number): string {
  return '0x' + (x >>> 0).toString(16).padStart(8, '0');
}

function readU32BE(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/** Parses an uncompressed IDX images buffer (magic 0x00000803). */
export function parseIdxImages(buf: Uint8Array, name = 'images', expect: ImageShape = {}): IdxImages {
  if (buf.length >= 4) {
    const magic = readU32BE(buf, 0);
    if (magic !== IDX_IMAGES_MAGIC) {
      throw new DataError(`${name}: expected IDX magic ${hex32(IDX_IMAGES_MAGIC)} (uint8 images), got ${hex32(magic)}`);
    }
  }
  if (buf.length < 16) {
    throw new DataError(`${name}: expected an IDX images header of 16 bytes, got ${buf.length} bytes`);
  }
  const n = readU32BE(buf, 4), rows = readU32BE(buf, 8), cols = readU32BE(buf, 12);
  if (rows === 0 || cols === 0) {
    throw new DataError(`${name}: expected non-zero image dimensions, got ${rows}x${cols}`);
  }
  if ((expect.rows !== undefined && rows !== expect.rows) || (expect.cols !== undefined && cols !== expect.cols)) {
    throw new DataError(`${name}: expected ${expect.rows ?? rows}x${expect.cols ?? cols} images, got ${rows}x${cols}`);
  }
  const want = 16 + n * rows * cols;
  if (buf.length !== want) {
    throw new DataError(`${name}: expected 16 + ${n}*${rows}*${cols} = ${want} bytes, got ${buf.length}`);
  }
  // A plain Uint8Array view (not a Buffer) over the pixel bytes, no copy.
  const images = new Uint8Array(buf.buffer, buf.byteOffset + 16, n * rows * cols);
  return { images, n, rows, cols };
}

/** Parses an uncompressed IDX labels buffer (magic 0x00000801). */
export function parseIdxLabels(buf: Uint8Array, name = 'labels'): IdxLabels {
  if (buf.length >= 4) {
    const magic = readU32BE(buf, 0);
    if (magic !== IDX_LABELS_MAGIC) {
      throw new DataError(`${name}: expected IDX magic ${hex32(IDX_LABELS_MAGIC)} (uint8 labels), got ${hex32(magic)}`);
    }
  }
  if (buf.length < 8) {
    throw new DataError(`${name}: expected an IDX labels header of 8 bytes, got ${buf.length} bytes`);
  }
  const n = readU32BE(buf, 4);
  const want = 8 + n;
  if (buf.length !== want) {
    throw new DataError(`${name}: expected 8 + ${n} = ${want} bytes, got ${buf.length}`);
  }
  const labels = new Uint8Array(buf.buffer, buf.byteOffset + 8, n);
  return { labels, n };
}

/** Checks that images and labels agree in count; throws a one-line DataError otherwise. */
export function checkSplit(images: IdxImages, labels: IdxLabels, imagesName = 'images', labelsName = 'labels', classes?: number): Split {
  if (images.n !== labels.n) {
    throw new DataError(`${labelsName}: expected ${images.n} labels (the image count of ${imagesName}), got ${labels.n}`);
  }
  if (classes !== undefined) {
    const i = labels.labels.findIndex((l) => l >= classes);
    if (i >= 0) throw new DataError(`${labelsName}: label ${labels.labels[i]} at index ${i} is not one of the data set's ${classes} classes (0-${classes - 1})`);
  }
  return { images: images.images, labels: labels.labels, n: images.n, rows: images.rows, cols: images.cols };
}

/** A split from the bytes of an images file and a labels file (gzipped or raw), e.g. fetched in a browser. */
export async function splitFromBytes(imagesBytes: Uint8Array, labelsBytes: Uint8Array, names: { images?: string; labels?: string } = {}, classes?: number): Promise<Split> {
  const imagesName = names.images ?? 'images', labelsName = names.labels ?? 'labels';
  const images = parseIdxImages(await maybeGunzipAsync(imagesBytes, imagesName), imagesName);
  const labels = parseIdxLabels(await maybeGunzipAsync(labelsBytes, labelsName), labelsName);
  return checkSplit(images, labels, imagesName, labelsName, classes);
}

/** Encodes uint8 images as an IDX buffer (uncompressed); for tests and tools. */
export function encodeIdxImages(images: Uint8Array, n: number, rows: number, cols: number): Uint8Array {
  if (images.length !== n * rows * cols) throw new DataError(`encodeIdxImages: expected ${n * rows * cols} bytes, got ${images.length}`);
  const out = new Uint8Array(16 + images.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IDX_IMAGES_MAGIC); dv.setUint32(4, n); dv.setUint32(8, rows); dv.setUint32(12, cols);
  out.set(images, 16);
  return out;
}

/** Encodes uint8 labels as an IDX buffer (uncompressed); for tests and tools. */
export function encodeIdxLabels(labels: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + labels.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IDX_LABELS_MAGIC); dv.setUint32(4, labels.length);
  out.set(labels, 8);
  return out;
}

/** First line of an error's message. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0];
}
