/**
 * `encode` reads a picture's header before decoding it: a 30000 x 30000 PNG is refused by its
 * header (it used to pass 6 GB), a truncated PNG or JPEG is an error rather than a partial image.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { createCanvas } from '@napi-rs/canvas';
import { describe, expect, it } from 'vitest';
import { readImagePixels } from '../src/lab/analysis/encode.js';
import { MAX_IMAGE_PIXELS, readImageHeader } from '../src/lab/data/image-file.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-img-'));

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A well-formed PNG header claiming width x height (grey, 8 bit), with one row of data. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr[8] = 8; ihdr[9] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(width + 1))), chunk('IEND', new Uint8Array(0))]);
}

function drawn(mime: 'image/png' | 'image/jpeg'): Buffer {
  const c = createCanvas(40, 30);
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, 40, 30);
  ctx.fillStyle = '#000'; ctx.fillRect(10, 5, 8, 20);
  return mime === 'image/png' ? c.toBuffer('image/png') : c.toBuffer('image/jpeg');
}

describe('picture files are checked by their header', () => {
  it('reads the size of a PNG and a JPEG without decoding', () => {
    expect(readImageHeader(drawn('image/png'), 'a.png')).toEqual({ format: 'png', width: 40, height: 30 });
    expect(readImageHeader(drawn('image/jpeg'), 'a.jpg')).toEqual({ format: 'jpeg', width: 40, height: 30 });
  });

  it('a 30000 x 30000 PNG is refused from its header, naming the bound', async () => {
    const f = path.join(dir, 'huge.png');
    writeFileSync(f, pngClaiming(30000, 30000));
    expect(30000 * 30000).toBeGreaterThan(MAX_IMAGE_PIXELS);
    await expect(readImagePixels(f)).rejects.toThrow(`${f}: 30000 x 30000 pixels is larger than the 4096 x 4096 (16.8 MP) that encode reads; scale it down first`);
  });

  it('a truncated PNG and a truncated JPEG are errors, not partial images', async () => {
    for (const [name, bytes, msg] of [['cut.png', drawn('image/png'), 'a truncated PNG'], ['cut.jpg', drawn('image/jpeg'), 'a truncated JPEG']] as const) {
      const f = path.join(dir, name);
      writeFileSync(f, bytes.subarray(0, bytes.length - 40));
      await expect(readImagePixels(f)).rejects.toThrow(`${f}: ${msg}`);
      writeFileSync(f, bytes);
      const img = await readImagePixels(f);
      expect([img.width, img.height]).toEqual([40, 30]);
    }
  });
});
