import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DataError, DataLoader, FASHION_MNIST, MNIST, cacheDir, checkSplit, contentMd5, datasetFilesIn,
  downloadDataset, encodeIdxImages, encodeIdxLabels, findDataset, loadDataset, locateDataset, md5Hex,
  mirrorUrl, parseIdxImages, readDataset, readIdxImages, readIdxLabels, readIdxSplit, resolveMirrors,
  toFloat, verifyDataset, type DatasetDescriptor, type DownloadEvent, type FileKey,
  IMAGE_C, IMAGE_H, IMAGE_PIXELS, IMAGE_W, FASHION_MNIST_INFO, MNIST_INFO, MSE_TO_UNIT, batchShape, classPair,
  datasetInfo, getDataset, psnrOfUnitMse, toByte, toModel, toModelImages, toUnit,
} from '../src/lab/data/index.js';
import { maybeGunzip } from '../src/lab/data/idx.js';
import { Rng } from '../src/engine/rng.js';
import { labelNamer } from '../src/viz/palette.js';

const MNIST_DIR = process.env.LATENTLAB_MNIST ?? path.resolve('../shared/data/mnist');

let tmpRoot: string;
beforeAll(() => { tmpRoot = mkdtempSync(path.join(tmpdir(), 'latentlab-data-')); });
afterAll(() => { rmSync(tmpRoot, { recursive: true, force: true }); });

let dirCounter = 0;
function freshDir(label = 'd'): string {
  const d = path.join(tmpRoot, `${label}-${++dirCounter}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Deterministic synthetic uint8 images and labels. */
function synth(n: number, rows = 28, cols = 28, salt = 0): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(n * rows * cols);
  for (let i = 0; i < images.length; i++) images[i] = (i * 31 + salt * 7 + (i >> 5)) & 0xff;
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) labels[i] = (i + salt) % 10;
  return { images, labels };
}

interface Tiny {
  /** uncompressed IDX contents */
  raw: Record<FileKey, Uint8Array>;
  /** gzipped */
  gz: Record<FileKey, Uint8Array>;
  desc: DatasetDescriptor;
}

/** A tiny dataset (5 train, 3 test) with its descriptor (MD5s of the uncompressed content). */
function makeTiny(name = 'tiny', salt = 0): Tiny {
  const tr = synth(5, 28, 28, salt), te = synth(3, 28, 28, salt + 1);
  const raw: Record<FileKey, Uint8Array> = {
    trainImages: encodeIdxImages(tr.images, 5, 28, 28),
    trainLabels: encodeIdxLabels(tr.labels),
    testImages: encodeIdxImages(te.images, 3, 28, 28),
    testLabels: encodeIdxLabels(te.labels),
  };
  const gz = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, new Uint8Array(gzipSync(v))])) as Record<FileKey, Uint8Array>;
  const files = Object.fromEntries(Object.entries(MNIST.files).map(([k, f]) => [k, { name: f.name, md5: md5Hex(raw[k as FileKey]) }])) as DatasetDescriptor['files'];
  const desc: DatasetDescriptor = { ...MNIST, name, files, counts: { train: 5, test: 3 }, mirrors: ['http://127.0.0.1:9/never/'] };
  return { raw, gz, desc };
}

const KEYS: FileKey[] = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];

function writeTiny(dir: string, t: Tiny, opts: { gz?: boolean; skip?: FileKey } = {}): void {
  mkdirSync(dir, { recursive: true });
  for (const k of KEYS) {
    if (k === opts.skip) continue;
    const name = t.desc.files[k].name;
    if (opts.gz === false) writeFileSync(path.join(dir, name.replace(/\.gz$/, '')), t.raw[k]);
    else writeFileSync(path.join(dir, name), t.gz[k]);
  }
}

function expectOneLineError(fn: () => unknown, re: RegExp): DataError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(DataError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  expect(msg).toMatch(re);
  return err as DataError;
}

// ---------------------------------------------------------------------------------------------
describe('the image contract', () => {
  it('one shape: 28 x 28 x 1 = 784 values, batches [n, 1, 28, 28]', () => {
    expect([IMAGE_H, IMAGE_W, IMAGE_C, IMAGE_PIXELS]).toEqual([28, 28, 1, 784]);
    expect(batchShape(5)).toEqual([5, IMAGE_C, IMAGE_H, IMAGE_W]);
    // every data set's descriptor carries that shape, and reading a data set checks it
    for (const d of [MNIST, FASHION_MNIST]) expect([d.rows, d.cols, d.channels]).toEqual([IMAGE_H, IMAGE_W, IMAGE_C]);
  });

  it('bytes map to [-1, 1] as v / 127.5 - 1 and back to the same byte; to [0, 1] for PSNR', () => {
    expect(toModel(0)).toBe(-1);
    expect(toModel(255)).toBe(1);
    for (let v = 0; v < 256; v++) {
      expect(toByte(toModel(v))).toBe(v);
      expect(toByte(Math.fround(toModel(v)))).toBe(v); // through float32 too
      expect(toUnit(toModel(v))).toBeCloseTo(v / 255, 12);
    }
    expect([toByte(-3), toByte(3)]).toEqual([0, 255]);
    // an MSE on [-1, 1] is 4x the MSE on [0, 1]: a constant error of 0.2 on [-1, 1] is 0.1 on [0, 1]
    expect(0.2 ** 2 * MSE_TO_UNIT).toBeCloseTo(0.1 ** 2, 15);
    expect(psnrOfUnitMse(0.01)).toBeCloseTo(20, 12);
    // the DataLoader's table and toModelImages agree with toModel
    const bytes = Uint8Array.from({ length: 3 * IMAGE_PIXELS }, (_, i) => (i * 37) % 256);
    const out = toModelImages(bytes, new Float32Array(3 * IMAGE_PIXELS).fill(7), 1, 2, 1);
    expect(out.subarray(0, IMAGE_PIXELS).every((v) => v === 7)).toBe(true);
    for (let j = 0; j < 2 * IMAGE_PIXELS; j++) expect(out[IMAGE_PIXELS + j]).toBe(Math.fround(toModel(bytes[IMAGE_PIXELS + j])));
    const viaLoader = toFloat(bytes, [2], new Float32Array(IMAGE_PIXELS));
    for (let j = 0; j < IMAGE_PIXELS; j++) expect(viaLoader[j]).toBe(Math.fround(toModel(bytes[2 * IMAGE_PIXELS + j])));
  });

  it("data sets name their classes once, and every legend and sentence uses them", () => {
    expect(MNIST.classes).toBe(MNIST_INFO.classes);
    expect(FASHION_MNIST.classes).toBe(FASHION_MNIST_INFO.classes);
    expect(FASHION_MNIST.classes).toEqual(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
    expect(MNIST.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect([MNIST.classNoun, FASHION_MNIST.classNoun]).toEqual(['digit', 'class']);
    expect(getDataset('fashion-mnist').title).toBe(FASHION_MNIST_INFO.title);
    expect(datasetInfo('fashion-mnist')).toBe(FASHION_MNIST_INFO);
    expect(datasetInfo(undefined)).toBe(MNIST_INFO); // runs written before the dataset setting existed
    expect(Array.from({ length: 10 }, (_, l) => labelNamer('fashion-mnist')(l))).toEqual(FASHION_MNIST.classes);
    expect(labelNamer('mnist')(7)).toBe('7');
    expect(classPair(MNIST_INFO, 4, 9)).toBe('4/9');
    expect(classPair(FASHION_MNIST_INFO, 0, 6)).toBe('T-shirt/top vs Shirt');
    expect(classPair(FASHION_MNIST_INFO, 2, 4)).toBe('Pullover vs Coat');
  });
});

describe('IDX reader', () => {
  it('reads raw and gzipped images and labels', () => {
    const dir = freshDir('idx');
    const { images, labels } = synth(4);
    const ib = encodeIdxImages(images, 4, 28, 28), lb = encodeIdxLabels(labels);
    writeFileSync(path.join(dir, 'img-raw'), ib);
    writeFileSync(path.join(dir, 'img.gz'), gzipSync(ib));
    writeFileSync(path.join(dir, 'lab-raw'), lb);
    writeFileSync(path.join(dir, 'lab.gz'), gzipSync(lb));
    for (const [img, lab] of [['img-raw', 'lab-raw'], ['img.gz', 'lab.gz'], ['img-raw', 'lab.gz']]) {
      const s = readIdxSplit(path.join(dir, img), path.join(dir, lab), { rows: 28, cols: 28 });
      expect(s.n).toBe(4);
      expect(s.rows).toBe(28);
      expect(s.cols).toBe(28);
      expect(s.images).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(s.images)).toBe(false);
      expect(s.images.length).toBe(4 * 784);
      expect(Array.from(s.images)).toEqual(Array.from(images));
      expect(Array.from(s.labels)).toEqual(Array.from(labels));
    }
    // A gzipped file under a raw-looking name (detection is by magic, not by name).
    writeFileSync(path.join(dir, 'sneaky'), gzipSync(ib));
    expect(readIdxImages(path.join(dir, 'sneaky')).n).toBe(4);
  });

  it('rejects a bad magic number with a one-line error naming the file', () => {
    const dir = freshDir('idx');
    const ib = encodeIdxImages(synth(2).images, 2, 28, 28);
    // gzipped twice: after one gunzip the content starts with the gzip header 1f 8b 08 00
    const f = path.join(dir, 'train-images-idx3-ubyte.gz');
    writeFileSync(f, gzipSync(gzipSync(ib)));
    expectOneLineError(() => readIdxImages(f),
      /^train-images-idx3-ubyte\.gz: expected IDX magic 0x00000803 \(uint8 images\), got 0x1f8b0800$/);
    // a labels file read as images and vice versa
    const lf = path.join(dir, 'train-labels-idx1-ubyte');
    writeFileSync(lf, encodeIdxLabels(new Uint8Array(3)));
    expectOneLineError(() => readIdxImages(lf), /^train-labels-idx1-ubyte: expected IDX magic 0x00000803 \(uint8 images\), got 0x00000801$/);
    const imf = path.join(dir, 'imgs');
    writeFileSync(imf, ib);
    expectOneLineError(() => readIdxLabels(imf), /^imgs: expected IDX magic 0x00000801 \(uint8 labels\), got 0x00000803$/);
  });

  it('rejects wrong sizes and dimensions', () => {
    const dir = freshDir('idx');
    const ib = encodeIdxImages(synth(5).images, 5, 28, 28);
    const short = path.join(dir, 'short.gz');
    writeFileSync(short, gzipSync(ib.subarray(0, ib.length - 1)));
    expectOneLineError(() => readIdxImages(short), /^short\.gz: expected 16 \+ 5\*28\*28 = 3936 bytes, got 3935$/);
    const long = path.join(dir, 'long');
    writeFileSync(long, Buffer.concat([ib, Buffer.from([0])]));
    expectOneLineError(() => readIdxImages(long), /expected 16 \+ 5\*28\*28 = 3936 bytes, got 3937/);
    const lb = encodeIdxLabels(new Uint8Array(7));
    const lshort = path.join(dir, 'labels');
    writeFileSync(lshort, lb.subarray(0, 10));
    expectOneLineError(() => readIdxLabels(lshort), /^labels: expected 8 \+ 7 = 15 bytes, got 10$/);
    const header = path.join(dir, 'hdr');
    writeFileSync(header, Buffer.from([0, 0, 8, 3, 0]));
    writeFileSync(path.join(dir, 'hdr2'), Buffer.from([0, 0]));
    expectOneLineError(() => readIdxLabels(path.join(dir, 'hdr2')), /^hdr2: expected an IDX labels header of 8 bytes, got 2 bytes$/);
    expectOneLineError(() => readIdxImages(header), /^hdr: expected an IDX images header of 16 bytes, got 5 bytes$/);
    const small = path.join(dir, 'small');
    writeFileSync(small, encodeIdxImages(synth(2, 14, 14).images, 2, 14, 14));
    expect(readIdxImages(small).rows).toBe(14);
    expectOneLineError(() => readIdxImages(small, { rows: 28, cols: 28 }), /^small: expected 28x28 images, got 14x14$/);
  });

  it('rejects an image/label count mismatch, corrupt gzip and missing files', () => {
    const dir = freshDir('idx');
    const im = path.join(dir, 'train-images-idx3-ubyte.gz'), lb = path.join(dir, 'train-labels-idx1-ubyte.gz');
    writeFileSync(im, gzipSync(encodeIdxImages(synth(5).images, 5, 28, 28)));
    writeFileSync(lb, gzipSync(encodeIdxLabels(new Uint8Array(4))));
    expectOneLineError(() => readIdxSplit(im, lb),
      /^train-labels-idx1-ubyte\.gz: expected 5 labels \(the image count of train-images-idx3-ubyte\.gz\), got 4$/);
    expect(() => checkSplit(parseIdxImages(encodeIdxImages(new Uint8Array(784), 1, 28, 28)), { labels: new Uint8Array(1), n: 1 })).not.toThrow();
    const gz = gzipSync(encodeIdxImages(synth(5).images, 5, 28, 28));
    const trunc = path.join(dir, 'trunc.gz');
    writeFileSync(trunc, gz.subarray(0, gz.length - 20));
    expectOneLineError(() => readIdxImages(trunc), /^trunc\.gz: expected valid gzip data, got /);
    const missing = path.join(dir, 'nope.gz');
    expectOneLineError(() => readIdxImages(missing), new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read \\(ENOENT\\)$`));
  });
});

// ---------------------------------------------------------------------------------------------
describe('real MNIST', () => {
  it('loads 60000/10000 images with a sane label histogram, and the MD5s match', async () => {
    expect(existsSync(MNIST_DIR), `MNIST not found at ${MNIST_DIR} (set LATENTLAB_MNIST)`).toBe(true);
    const ds = await loadDataset('mnist', { dataDir: MNIST_DIR, verify: true });
    expect(ds.source).toBe('data-dir');
    expect(ds.train.n).toBe(60000);
    expect(ds.test.n).toBe(10000);
    expect([ds.train.rows, ds.train.cols]).toEqual([28, 28]);
    expect(ds.train.images.length).toBe(60000 * 784);
    expect(ds.test.images.length).toBe(10000 * 784);
    expect(ds.train.labels.length).toBe(60000);
    const hist = (l: Uint8Array) => { const h = new Array(10).fill(0); for (const v of l) h[v]++; return h; };
    expect(hist(ds.train.labels)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(hist(ds.test.labels)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    let max = 0, sum = 0;
    for (let i = 0; i < 784 * 100; i++) { const v = ds.train.images[i]; if (v > max) max = v; sum += v; }
    expect(max).toBe(255);
    expect(sum / (784 * 100)).toBeGreaterThan(20);
    expect(sum / (784 * 100)).toBeLessThan(60);
    // MD5 of the uncompressed content, checked separately as well
    const loc = locateDataset('mnist', { dataDir: MNIST_DIR })!;
    expect(() => verifyDataset(loc)).not.toThrow();
    expect(contentMd5(loc.files.testLabels)).toBe(MNIST.files.testLabels.md5);
    // the same folder checked against Fashion-MNIST's MD5s fails, naming the file
    expectOneLineError(() => verifyDataset({ ...loc, descriptor: FASHION_MNIST }), /train-images-idx3-ubyte\.gz: expected MD5 f4a8712d7a061bf5bd6d2ca38dc4d50a \(uncompressed\), got 6bbc9ace898e44ae57da46a324031adb$/);
  });

  it('a DataLoader over MNIST yields [-1,1] batches', async () => {
    const ds = await loadDataset('mnist', { dataDir: MNIST_DIR });
    const loader = new DataLoader(ds.test, { batchSize: 256, seed: 1 });
    expect(loader.pixels).toBe(784);
    expect(loader.batchesPerEpoch).toBe(40);
    const b = loader.next();
    expect(b.x.length).toBe(256 * 784);
    let lo = Infinity, hi = -Infinity;
    for (const v of b.x) { if (v < lo) lo = v; if (v > hi) hi = v; }
    expect(lo).toBe(-1);
    expect(hi).toBe(1);
    for (let k = 0; k < b.size; k++) expect(b.labels![k]).toBe(ds.test.labels[b.indices[k]]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('dataset search order', () => {
  it('data-dir > $LATENTLAB_DATA > cache > system', () => {
    const t = makeTiny('tiny');
    const dataDir = freshDir('datadir'), envDir = freshDir('env'), cacheRoot = freshDir('xdg'), sysRoot = freshDir('sys');
    writeTiny(dataDir, t);
    writeTiny(envDir, t, { gz: false }); // raw files without .gz are accepted too
    writeTiny(path.join(cacheRoot, 'latentlab', 'tiny'), t);
    writeTiny(path.join(sysRoot, 'tiny'), t);
    const env = { LATENTLAB_DATA: envDir, XDG_CACHE_HOME: cacheRoot };
    const systemDirs = [sysRoot];

    let loc = locateDataset(t.desc, { dataDir, env, systemDirs })!;
    expect([loc.source, loc.dir]).toEqual(['data-dir', dataDir]);
    loc = locateDataset(t.desc, { env, systemDirs })!;
    expect([loc.source, loc.dir]).toEqual(['env', envDir]);
    expect(loc.files.trainImages).toBe(path.join(envDir, 'train-images-idx3-ubyte'));
    expect(readDataset(loc).train.n).toBe(5);
    loc = locateDataset(t.desc, { env: { XDG_CACHE_HOME: cacheRoot }, systemDirs })!;
    expect([loc.source, loc.dir]).toEqual(['cache', path.join(cacheRoot, 'latentlab', 'tiny')]);
    loc = locateDataset(t.desc, { env: { XDG_CACHE_HOME: freshDir('emptyxdg') }, systemDirs })!;
    expect([loc.source, loc.dir]).toEqual(['system', path.join(sysRoot, 'tiny')]);
    expect(locateDataset(t.desc, { env: { XDG_CACHE_HOME: freshDir('emptyxdg') }, systemDirs: [freshDir('nosys')] })).toBeNull();
  });

  it('the cache defaults to ~/.cache/latentlab/<dataset> without $XDG_CACHE_HOME', () => {
    const home = freshDir('home');
    expect(cacheDir('mnist', { HOME: home })).toBe(path.join(home, '.cache', 'latentlab', 'mnist'));
    expect(cacheDir('fashion-mnist', { HOME: home, XDG_CACHE_HOME: '/x/y' })).toBe('/x/y/latentlab/fashion-mnist');
    const t = makeTiny('tiny');
    writeTiny(path.join(home, '.cache', 'latentlab', 'tiny'), t);
    const loc = locateDataset(t.desc, { env: { HOME: home }, systemDirs: [] })!;
    expect([loc.source, loc.dir]).toEqual(['cache', path.join(home, '.cache', 'latentlab', 'tiny')]);
  });

  it('$LATENTLAB_DATA and --data-dir may hold a <dataset>/ subfolder', () => {
    const t = makeTiny('tiny');
    const root = freshDir('envroot');
    writeTiny(path.join(root, 'tiny'), t);
    let loc = locateDataset(t.desc, { env: { LATENTLAB_DATA: root, XDG_CACHE_HOME: freshDir('x') }, systemDirs: [] })!;
    expect([loc.source, loc.dir]).toEqual(['env', path.join(root, 'tiny')]);
    loc = locateDataset(t.desc, { dataDir: root, env: {}, systemDirs: [] })!;
    expect([loc.source, loc.dir]).toEqual(['data-dir', path.join(root, 'tiny')]);
    // a $LATENTLAB_DATA holding only another dataset's subfolder: go on searching
    const other = freshDir('envother');
    writeTiny(path.join(other, 'other'), makeTiny('other'));
    const sys = freshDir('sys');
    writeTiny(path.join(sys, 'tiny'), t);
    loc = locateDataset(t.desc, { env: { LATENTLAB_DATA: other, XDG_CACHE_HOME: freshDir('x') }, systemDirs: [sys] })!;
    expect(loc.source).toBe('system');
  });

  it('a flat $LATENTLAB_DATA with MNIST files is not taken for Fashion-MNIST', () => {
    const flat = freshDir('flatmnist');
    for (const f of Object.values(MNIST.files)) symlinkSync(path.join(MNIST_DIR, f.name), path.join(flat, f.name));
    const env = { LATENTLAB_DATA: flat, XDG_CACHE_HOME: freshDir('x') };
    expect(locateDataset('mnist', { env, systemDirs: [] })!.source).toBe('env');
    expect(locateDataset('fashion-mnist', { env, systemDirs: [freshDir('nosys')] })).toBeNull();
  });

  it('a partial cache is skipped; missing folders and files are one-line errors', async () => {
    const t = makeTiny('tiny');
    const xdg = freshDir('xdg'), sys = freshDir('sys');
    writeTiny(path.join(xdg, 'latentlab', 'tiny'), t, { skip: 'testLabels' });
    writeTiny(path.join(sys, 'tiny'), t);
    expect(locateDataset(t.desc, { env: { XDG_CACHE_HOME: xdg }, systemDirs: [sys] })!.source).toBe('system');

    const nodir = path.join(tmpRoot, 'does-not-exist');
    expectOneLineError(() => locateDataset(t.desc, { dataDir: nodir, env: {} }), new RegExp(`^${nodir}: no such folder \\(--data-dir\\)$`));
    const partial = freshDir('partial');
    writeTiny(partial, t, { skip: 'testLabels' });
    expectOneLineError(() => locateDataset(t.desc, { dataDir: partial, env: {} }), new RegExp(`^${partial}: missing t10k-labels-idx1-ubyte\\.gz for tiny$`));
    expectOneLineError(() => datasetFilesIn(freshDir('empty'), t.desc), /: missing train-images-idx3-ubyte\.gz \(and 3 more\) for tiny$/);
    expectOneLineError(() => locateDataset(t.desc, { env: { LATENTLAB_DATA: partial }, systemDirs: [sys] }), /partial-\d+: missing t10k-labels-idx1-ubyte\.gz for tiny$/);
    expectOneLineError(() => locateDataset(t.desc, { env: { LATENTLAB_DATA: nodir } }), /no such folder \(\$LATENTLAB_DATA\)$/);
    await expect(findDataset(t.desc, { env: { XDG_CACHE_HOME: freshDir('x') }, systemDirs: [], download: false }))
      .rejects.toThrow(/^tiny: not found in .*\(run: latentlab data download --dataset tiny\)$/);
    expect(() => locateDataset('cifar')).toThrow(/^unknown dataset 'cifar' \(expected mnist or fashion-mnist\)$/);
  });

  it('the Fashion-MNIST descriptor matches the system copy', () => {
    const sysDir = '/usr/share/datasets/fashion-mnist';
    if (!existsSync(sysDir)) return; // only where Debian's package is installed
    const loc = locateDataset('fashion-mnist', { env: { XDG_CACHE_HOME: freshDir('x') } })!;
    expect([loc.source, loc.dir]).toEqual(['system', sysDir]);
    expect(() => verifyDataset(loc)).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
describe('download', () => {
  let server: http.Server;
  let base: string;
  let deadBase: string;
  const hits: string[] = [];
  const tiny = makeTiny('tiny');
  const byName = new Map(KEYS.map((k) => [tiny.desc.files[k].name, k]));
  const corrupt = makeTiny('tiny', 5); // valid gzip IDX files, other content: wrong MD5

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      hits.push(url);
      const [, kind, file] = url.split('/');
      const key = byName.get(file ?? '');
      if (!key || kind === 'missing') { res.writeHead(404); res.end('not found'); return; }
      if (kind === 'good') {
        res.writeHead(200, { 'Content-Length': tiny.gz[key].length, 'Content-Type': 'application/octet-stream' });
        res.end(tiny.gz[key]);
      } else if (kind === 'real') {
        // the real MNIST files, so that the built-in descriptor's MD5s match
        const body = readFileSync(path.join(MNIST_DIR, file!));
        res.writeHead(200, { 'Content-Length': body.length });
        res.end(body);
      } else if (kind === 'corrupt') {
        res.writeHead(200, { 'Content-Length': corrupt.gz[key].length });
        res.end(corrupt.gz[key]);
      } else if (kind === 'nolength') {
        res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
        res.end(tiny.gz[key]);
      } else if (kind === 'trunc') {
        const body = tiny.gz[key];
        res.writeHead(200, { 'Content-Length': body.length + 100 });
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.destroy(), 20));
      } else {
        res.writeHead(500); res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // a port with nothing listening
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    deadBase = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((r) => dead.close(() => r()));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('falls back past a 404, a wrong MD5 and a truncated body to a good mirror', async () => {
    const dest = freshDir('dl');
    const events: DownloadEvent[] = [];
    const progress: Array<[number, number | null]> = [];
    hits.length = 0;
    const files = await downloadDataset(tiny.desc, dest, {
      mirrors: [`${base}/missing/`, `${base}/corrupt`, `${base}/trunc/`, `${base}/good/`],
      onEvent: (e) => events.push(e),
      onProgress: (b, t, info) => { if (info.file === 'train-images-idx3-ubyte.gz') progress.push([b, t]); },
    });
    for (const k of KEYS) {
      expect(files[k]).toBe(path.join(dest, tiny.desc.files[k].name));
      expect(contentMd5(files[k])).toBe(tiny.desc.files[k].md5);
    }
    expect(readdirSync(dest).sort()).toEqual(KEYS.map((k) => tiny.desc.files[k].name).sort()); // no .part left
    const fails = events.filter((e) => e.type === 'failed' && e.file === 'train-images-idx3-ubyte.gz') as Array<Extract<DownloadEvent, { type: 'failed' }>>;
    expect(fails.map((f) => f.url)).toEqual(['missing', 'corrupt', 'trunc'].map((k) => `${base}/${k}/train-images-idx3-ubyte.gz`));
    expect(fails[0].reason).toMatch(/^HTTP 404/);
    expect(fails[1].reason).toMatch(/^checksum mismatch \(MD5 [0-9a-f]{32}, expected [0-9a-f]{32}\)$/);
    expect(fails[2].reason).toMatch(/^truncated body/);
    const total = tiny.gz.trainImages.length;
    expect(progress.at(-1)).toEqual([total, total]);
    expect(hits.filter((h) => h.startsWith('/good/')).length).toBe(4);

    // a second run finds the verified files and downloads nothing
    hits.length = 0;
    const ev2: DownloadEvent[] = [];
    await downloadDataset(tiny.desc, dest, { mirrors: [`${base}/good/`], onEvent: (e) => ev2.push(e) });
    expect(hits).toEqual([]);
    expect(ev2.every((e) => e.type === 'present')).toBe(true);
    // a corrupted file in place is downloaded again
    writeFileSync(files.testLabels, gzipSync(Buffer.from('garbage')));
    await downloadDataset(tiny.desc, dest, { mirrors: [`${base}/good/`] });
    expect(hits).toEqual(['/good/t10k-labels-idx1-ubyte.gz']);
    expect(contentMd5(files.testLabels)).toBe(tiny.desc.files.testLabels.md5);
  });

  it('works without Content-Length', async () => {
    const dest = freshDir('dl');
    const progress: Array<number | null> = [];
    await downloadDataset(tiny.desc, dest, { mirrors: [`${base}/nolength/`], onProgress: (_b, t) => progress.push(t) });
    expect(progress.every((t) => t === null)).toBe(true);
    expect(readDataset({ descriptor: tiny.desc, dir: dest, source: 'data-dir', files: datasetFilesIn(dest, tiny.desc) }, { verify: true }).test.n).toBe(3);
  });

  it('fails with one line listing what each mirror did', async () => {
    const dest = freshDir('dl');
    let err: Error | undefined;
    try {
      await downloadDataset(tiny.desc, dest, { mirrors: [`${base}/missing/`, `${base}/corrupt/`, `${base}/trunc/`, `${deadBase}/x/`] });
    } catch (e) { err = e as Error; }
    expect(err).toBeInstanceOf(DataError);
    const msg = err!.message;
    expect(msg).not.toContain('\n');
    expect(msg).toMatch(/^train-images-idx3-ubyte\.gz: download failed from every mirror: /);
    expect(msg).toContain(`${base}/missing/train-images-idx3-ubyte.gz -> HTTP 404`);
    expect(msg).toContain(`${base}/corrupt/train-images-idx3-ubyte.gz -> checksum mismatch`);
    expect(msg).toContain(`${base}/trunc/train-images-idx3-ubyte.gz -> truncated body`);
    expect(msg).toMatch(new RegExp(`${deadBase}/x/train-images-idx3-ubyte\\.gz -> network error \\(ECONNREFUSED\\)`));
    expect(readdirSync(dest)).toEqual([]); // nothing partial left behind
  });

  it('findDataset downloads into the cache, with mirrors from $LATENTLAB_MIRRORS', async () => {
    const xdg = freshDir('xdg');
    const env = { XDG_CACHE_HOME: xdg, LATENTLAB_MIRRORS: ` ${deadBase}/a/ , ${base}/good ` };
    expect(resolveMirrors(tiny.desc, { env })).toEqual([`${deadBase}/a/`, `${base}/good`]);
    expect(resolveMirrors(tiny.desc, { env, mirrors: ['http://x/'] })).toEqual(['http://x/']);
    expect(resolveMirrors(MNIST, { env: {} })).toEqual([...MNIST.mirrors]);
    expect(mirrorUrl('http://h/p', 'f.gz')).toBe('http://h/p/f.gz');
    const loc = await findDataset(tiny.desc, { env, systemDirs: [] });
    expect([loc.source, loc.dir]).toEqual(['download', path.join(xdg, 'latentlab', 'tiny')]);
    const ds = await loadDataset(tiny.desc, { env, systemDirs: [], verify: true });
    expect(ds.source).toBe('cache');
    expect([ds.train.n, ds.test.n]).toEqual([5, 3]);
    expect(Array.from(ds.train.labels)).toEqual([0, 1, 2, 3, 4]);
  });

  it('latentlab data download / info', async () => {
    const { main } = await import('../src/cli/main.js');
    const out: string[] = [];
    const spyOut = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out.push(String(s)); return true; });
    const spyErr = vi.spyOn(process.stderr, 'write').mockImplementation((() => true) as never);
    try {
      const dir = freshDir('cli');
      // all mirrors failing: exit code 1, one line on stderr, nothing left in the folder
      let code = await main(['node', 'latentlab', 'data', 'download', '--dataset', 'mnist', '--data-dir', dir, '--mirrors', `${base}/missing/,${base}/good/`]);
      expect(code).toBe(1);
      const lastErr = String(spyErr.mock.calls.at(-1)?.[0]);
      expect(lastErr).toMatch(/^latentlab: train-images-idx3-ubyte\.gz: download failed from every mirror: .*HTTP 404.*checksum mismatch.*\n$/);
      expect(readdirSync(path.join(dir, 'mnist'))).toEqual([]);
      // a real download (the real files served locally) into DIR/mnist/
      out.length = 0;
      code = await main(['node', 'latentlab', 'data', 'download', '--dataset', 'mnist', '--data-dir', dir, '--mirrors', `${base}/missing/,${base}/real/`]);
      expect(code).toBe(0);
      expect(out.join('')).toBe(`mnist: ${path.join(dir, 'mnist')} (data-dir)\n`);
      const loc = locateDataset('mnist', { dataDir: dir })!;
      expect(loc.dir).toBe(path.join(dir, 'mnist'));
      expect(() => verifyDataset(loc)).not.toThrow();
      out.length = 0;
      code = await main(['node', 'latentlab', 'data', 'info', '--dataset', 'mnist', '--data-dir', MNIST_DIR]);
      expect(code).toBe(0);
      expect(out.join('')).toBe(`mnist: ${MNIST_DIR} (data-dir) train 60000, test 10000, 28x28\n`);
      out.length = 0;
      code = await main(['node', 'latentlab', 'data', 'download', '--dataset', 'mnist', '--data-dir', path.dirname(MNIST_DIR)]);
      expect(code).toBe(0);
      expect(out.join('')).toBe(`mnist: ${MNIST_DIR} (data-dir)\n`);
    } finally {
      spyOut.mockRestore();
      spyErr.mockRestore();
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('DataLoader', () => {
  const n = 10, rows = 3, cols = 3, P = 9;
  const images = new Uint8Array(n * P);
  for (let i = 0; i < n; i++) for (let j = 0; j < P; j++) images[i * P + j] = (i * 25 + j * 3) % 256;
  images[0] = 0; images[1] = 255; images[2] = 127; images[3] = 128;
  const labels = new Uint8Array(n).map((_, i) => (i * 3) % 10);
  const data = { images, labels, n, rows, cols };

  const collect = (l: DataLoader, count: number) => {
    const res: Array<{ idx: number[]; x: number[]; labels: number[]; epoch: number; batch: number }> = [];
    for (let i = 0; i < count; i++) {
      const b = l.next();
      res.push({ idx: Array.from(b.indices), x: Array.from(b.x), labels: Array.from(b.labels!), epoch: b.epoch, batch: b.batch });
    }
    return res;
  };

  it('toFloat scales to [-1, 1]', () => {
    const out = new Float32Array(2 * P);
    toFloat(images, [0, 3], out, P);
    expect(out[0]).toBe(-1);
    expect(out[1]).toBe(1);
    expect(out[2]).toBe(Math.fround(127 / 127.5 - 1));
    expect(out[3]).toBe(Math.fround(128 / 127.5 - 1));
    for (let j = 0; j < P; j++) expect(out[P + j]).toBe(Math.fround(images[3 * P + j] / 127.5 - 1));
    expect(() => toFloat(images, [0, 1, 2], out, P)).toThrow(RangeError);
    expect(() => toFloat(images, [10], out, P)).toThrow(/out of range/);
  });

  it('yields every sample once per epoch, in [-1, 1], with matching labels', () => {
    const l = new DataLoader(data, { batchSize: 4, seed: 3 });
    expect(l.batchesPerEpoch).toBe(3);
    for (let e = 0; e < 3; e++) {
      const seen: number[] = [];
      const sizes: number[] = [];
      for (const b of l) {
        expect(b.epoch).toBe(e);
        sizes.push(b.size);
        for (let k = 0; k < b.size; k++) {
          const i = b.indices[k];
          seen.push(i);
          expect(b.labels![k]).toBe(labels[i]);
          for (let j = 0; j < P; j++) expect(b.x[k * P + j]).toBe(Math.fround(images[i * P + j] / 127.5 - 1));
        }
        for (const v of b.x) { expect(v).toBeGreaterThanOrEqual(-1); expect(v).toBeLessThanOrEqual(1); }
      }
      expect(sizes).toEqual([4, 4, 2]);
      expect(seen.sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
    }
    expect(l.epoch).toBe(3);
    const dl = new DataLoader(data, { batchSize: 4, seed: 3, dropLast: true });
    expect(dl.batchesPerEpoch).toBe(2);
    expect([...dl].map((b) => b.size)).toEqual([4, 4]);
    expect(dl.epoch).toBe(1);
    expect(() => new DataLoader(data, { batchSize: 11, dropLast: true })).toThrow(/no batch per epoch/);
  });

  it('shuffles by seed: same seed same order, epochs differ, shuffle:false is in order', () => {
    const a = collect(new DataLoader(data, { batchSize: 4, seed: 7 }), 9);
    const b = collect(new DataLoader(data, { batchSize: 4, seed: 7 }), 9);
    const c = collect(new DataLoader(data, { batchSize: 4, seed: 8 }), 9);
    expect(a).toEqual(b);
    expect(a.map((x) => x.idx)).not.toEqual(c.map((x) => x.idx));
    const ep = (r: typeof a, e: number) => r.filter((x) => x.epoch === e).flatMap((x) => x.idx);
    expect(ep(a, 0)).not.toEqual(ep(a, 1));
    const plain = collect(new DataLoader(data, { batchSize: 4, shuffle: false }), 3);
    expect(plain.flatMap((x) => x.idx)).toEqual([...Array(n).keys()]);
    // the epoch's permutation is rng.permutation drawn from the saved epoch-start state
    const l = new DataLoader(data, { batchSize: 4, seed: 7 });
    l.next(); l.next(); l.next(); l.next();
    const st = l.state();
    expect([st.epoch, st.batch]).toEqual([1, 1]);
    const r = new Rng(0);
    r.setState(st.rng);
    expect(Array.from(r.permutation(n))).toEqual(Array.from(l.order));
    expect(ep(a, 1)).toEqual(Array.from(l.order));
  });

  it('resumes from a saved state (JSON round trip) mid-epoch and at an epoch boundary', () => {
    for (const after of [0, 2, 3, 5, 7]) {
      const ref = new DataLoader(data, { batchSize: 4, seed: 11 });
      const full = collect(ref, after + 8);
      const l = new DataLoader(data, { batchSize: 4, seed: 11 });
      collect(l, after);
      const saved = JSON.parse(JSON.stringify(l.state()));
      expect(saved.epoch * 3 + saved.batch).toBe(after);
      const resumed = new DataLoader(data, { batchSize: 4, seed: 999, start: saved });
      expect(resumed.step).toBe(after);
      expect(collect(resumed, 8)).toEqual(full.slice(after));
      const sought = new DataLoader(data, { batchSize: 4 });
      sought.seek(saved);
      expect(collect(sought, 8)).toEqual(full.slice(after));
    }
    const l = new DataLoader(data, { batchSize: 4 });
    expect(() => l.seek({ epoch: 0, batch: 4, rng: l.state().rng })).toThrow(RangeError);
  });

  it('reuses one buffer, or the caller\'s', () => {
    const l = new DataLoader(data, { batchSize: 4, seed: 1 });
    const b1 = l.next(), b2 = l.next(), b3 = l.next();
    expect(b1.x.buffer).toBe(b2.x.buffer);
    expect(b3.x.buffer).toBe(b1.x.buffer);
    expect(b3.x.length).toBe(2 * P);
    const mine = new Float32Array(4 * P + 5);
    const b4 = l.next(mine);
    expect(b4.x.buffer).toBe(mine.buffer);
    const own = new Float32Array(4 * P);
    const l2 = new DataLoader(data, { batchSize: 4, out: own });
    expect(l2.next().x).toBe(own);
    expect(() => new DataLoader(data, { batchSize: 4, out: new Float32Array(3) })).toThrow(RangeError);
  });
});

describe('gunzip into one buffer of the size the trailer records', () => {
  const content = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251);
  it('inflates the whole content into a buffer of exactly its size; a trailer that lies is refused', () => {
    const gz = new Uint8Array(gzipSync(content));
    const out = maybeGunzip(gz, 'a.gz');
    expect(Buffer.compare(Buffer.from(out), Buffer.from(content))).toBe(0);
    expect(out.buffer.byteLength).toBe(content.length);
    // ISIZE says 100 bytes: zlib's own length check refuses the file
    const lying = gz.slice();
    new DataView(lying.buffer).setUint32(lying.length - 4, 100, true);
    expect(() => maybeGunzip(lying, 'b.gz')).toThrow(/^b\.gz: expected valid gzip data, got incorrect length check$/);
  });
  it('names the file on corrupt data', () => {
    const gz = new Uint8Array(gzipSync(content));
    gz[gz.length >> 1] ^= 0xff;
    expect(() => maybeGunzip(gz, 'c.gz')).toThrow(/^c\.gz: expected valid gzip data/);
  });
});
