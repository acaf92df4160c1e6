/**
 * IDX file reader (the MNIST format: http://yann.lecun.com/exdb/mnist/), for gzipped or raw
 * files. Images stay uint8 (N*rows*cols, row-major); labels stay uint8.
 *
 * Every error is a single line that names the file and says what was expected.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';

import { checkSplit, DataError, isGzip, oneLine, parseIdxImages, parseIdxLabels, type IdxImages, type IdxLabels, type ImageShape, type Split } from './idx-format.js';

export * from './idx-format.js';

/**
 * The output chunk size for gunzipping `buf`: the uncompressed size the gzip trailer records (ISIZE,
 * the size mod 2^32), so that zlib writes one buffer of the exact size instead of growing chunks
 * and concatenating them (for MNIST's 47 MB of train images that was a second, transient copy).
 * A trailer that lies is refused by zlib's own length check.
 */
function gunzipChunkSize(buf: Uint8Array): number {
  const n = buf.length;
  const isize = (buf[n - 4] | (buf[n - 3] << 8) | (buf[n - 2] << 16) | (buf[n - 1] << 24)) >>> 0;
  return Math.min(Math.max(isize, 64 * 1024), 1 << 30);
}

/** Gunzips `buf` if it is gzipped, else returns it as is. `name` is used in error messages. */
export function maybeGunzip(buf: Uint8Array, name = 'data'): Uint8Array {
  if (!isGzip(buf)) return buf;
  try {
    return gunzipSync(buf, { chunkSize: gunzipChunkSize(buf) });
  } catch (e) {
    throw new DataError(`${name}: expected valid gzip data, got ${oneLine(e)}`);
  }
}

/** Reads a file, gunzipping it when it starts with the gzip magic. */
export function readMaybeGzip(file: string): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(`${file}: cannot read (${code ?? oneLine(e)})`);
  }
  return maybeGunzip(raw, basename(file));
}

/** MD5 (hex) of a buffer. */
export function md5Hex(buf: Uint8Array): string {
  return createHash('md5').update(buf).digest('hex');
}

/** MD5 (hex) of the uncompressed content of a file, gzipped or raw. */
export function contentMd5(file: string): string {
  return md5Hex(readMaybeGzip(file));
}

/** Reads an IDX images file (gzipped or raw). */
export function readIdxImages(file: string, expect: ImageShape = {}): IdxImages {
  return parseIdxImages(readMaybeGzip(file), basename(file), expect);
}

/** Reads an IDX labels file (gzipped or raw). */
export function readIdxLabels(file: string): IdxLabels {
  return parseIdxLabels(readMaybeGzip(file), basename(file));
}

/** Reads an images file and a labels file and checks that their counts agree. */
export function readIdxSplit(imagesFile: string, labelsFile: string, expect: ImageShape = {}): Split {
  return checkSplit(readIdxImages(imagesFile, expect), readIdxLabels(labelsFile), basename(imagesFile), basename(labelsFile));
}

