/**
 * Dataset descriptors (MNIST, Fashion-MNIST) and where to find their files.
 *
 * Search order of `findDataset` / `locateDataset`:
 *   1. the `dataDir` option (`--data-dir`): must exist and hold the four files (directly or in a
 *      `<dataset>/` subfolder), else a one-line error;
 *   2. `$LATENTLAB_DATA`: a folder holding either a `<dataset>/` subfolder or the four files;
 *   3. the cache `$XDG_CACHE_HOME/latentlab/<dataset>` (default `~/.cache/latentlab/<dataset>`);
 *   4. the system folder `/usr/share/datasets/<dataset>` (Debian's packages install there);
 *   5. else (findDataset only) download into the cache.
 *
 * In a folder, each file is looked for under its name (`train-images-idx3-ubyte.gz`) and, failing
 * that, without the `.gz` (a raw IDX file); either form may in fact be gzipped or raw.
 */
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DataError, checkSplit, md5Hex, readIdxImages, readIdxLabels, readMaybeGzip, type Split } from './idx.js';
import { downloadDataset, type DownloadOptions } from './download.js';
import { FASHION_MNIST_INFO, MNIST_INFO, type DatasetName } from './image.js';

export type { DatasetInfo, DatasetName } from './image.js';
export { FILE_KEYS, type DatasetDescriptor, type DatasetFile, type FileKey } from './descriptor.js';
import { FILE_KEYS, type DatasetDescriptor, type DatasetFile, type FileKey } from './descriptor.js';

const IDX_NAMES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

export const MNIST: DatasetDescriptor = {
  ...MNIST_INFO,
  counts: { train: 60000, test: 10000 },
  files: {
    trainImages: { name: IDX_NAMES.trainImages, md5: '6bbc9ace898e44ae57da46a324031adb' },
    trainLabels: { name: IDX_NAMES.trainLabels, md5: 'a25bea736e30d166cdddb491f175f624' },
    testImages: { name: IDX_NAMES.testImages, md5: '2646ac647ad5339dbf082846283269ea' },
    testLabels: { name: IDX_NAMES.testLabels, md5: '27ae3e4e09519cfbb04c329615203637' },
  },
  mirrors: [
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'http://yann.lecun.com/exdb/mnist/',
  ],
};

/**
 * Fashion-MNIST. The MD5s are of the uncompressed files and were computed from the Debian-installed
 * copies in /usr/share/datasets/fashion-mnist/*.gz (`gunzip -c FILE | md5sum`).
 */
export const FASHION_MNIST: DatasetDescriptor = {
  ...FASHION_MNIST_INFO,
  counts: { train: 60000, test: 10000 },
  files: {
    trainImages: { name: IDX_NAMES.trainImages, md5: 'f4a8712d7a061bf5bd6d2ca38dc4d50a' },
    trainLabels: { name: IDX_NAMES.trainLabels, md5: '9018921c3c673c538a1fc5bad174d6f9' },
    testImages: { name: IDX_NAMES.testImages, md5: '8181f5470baa50b63fa0f6fddb340f0a' },
    testLabels: { name: IDX_NAMES.testLabels, md5: '15d484375f8d13e6eb1aabb0c3f46965' },
  },
  mirrors: [
    'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    'https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/',
  ],
};

export const DATASETS: Readonly<Record<DatasetName, DatasetDescriptor>> = {
  mnist: MNIST,
  'fashion-mnist': FASHION_MNIST,
};

export const DATASET_NAMES = Object.keys(DATASETS) as DatasetName[];

/** The system-wide folder of datasets. */
export const SYSTEM_DATA_DIR = '/usr/share/datasets';

/** Resolves a dataset name (or passes a descriptor through). Unknown names are a one-line error. */
export function getDataset(name: string | DatasetDescriptor): DatasetDescriptor {
  if (typeof name !== 'string') return name;
  const d = (DATASETS as Record<string, DatasetDescriptor | undefined>)[name];
  if (!d) throw new DataError(`unknown dataset '${name}' (expected ${DATASET_NAMES.join(' or ')})`);
  return d;
}

export type DataSource = 'data-dir' | 'env' | 'cache' | 'system' | 'download';

export interface LocateOptions {
  /** An explicit folder (`--data-dir`); takes precedence over everything. */
  dataDir?: string;
  /** Environment to read LATENTLAB_DATA / XDG_CACHE_HOME / HOME / LATENTLAB_MIRRORS from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** System folders holding `<dataset>/` subfolders (default ['/usr/share/datasets']). */
  systemDirs?: readonly string[];
}

export interface FindOptions extends LocateOptions, Omit<DownloadOptions, 'env'> {
  /** Download into the cache when not found (default true). */
  download?: boolean;
}

export interface LocatedDataset {
  descriptor: DatasetDescriptor;
  /** The folder holding the files. */
  dir: string;
  source: DataSource;
  /** Full paths of the four files. */
  files: Record<FileKey, string>;
}

/** The cache folder of a dataset: `$XDG_CACHE_HOME/latentlab/<name>` or `~/.cache/latentlab/<name>`. */
export function cacheDir(name: string | DatasetDescriptor, env: NodeJS.ProcessEnv = process.env): string {
  const d = getDataset(name);
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && xdg.trim() !== '' ? xdg : join(env.HOME || homedir(), '.cache');
  return resolve(base, 'latentlab', d.name);
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

function isFile(p: string): boolean {
  try { return statSync(p).isFile(); } catch { return false; }
}

/** Path of one file in a folder (`name` or `name` without .gz), or null. */
function fileIn(dir: string, f: DatasetFile): string | null {
  const p = join(dir, f.name);
  if (isFile(p)) return p;
  if (f.name.endsWith('.gz')) {
    const raw = join(dir, f.name.slice(0, -3));
    if (isFile(raw)) return raw;
  }
  return null;
}

/** How many of the dataset's files a folder holds, and their paths. */
function scan(dir: string, d: DatasetDescriptor): { found: Partial<Record<FileKey, string>>; missing: DatasetFile[] } {
  const found: Partial<Record<FileKey, string>> = {};
  const missing: DatasetFile[] = [];
  for (const k of FILE_KEYS) {
    const p = fileIn(dir, d.files[k]);
    if (p) found[k] = p; else missing.push(d.files[k]);
  }
  return { found, missing };
}

function missingError(dir: string, d: DatasetDescriptor, missing: DatasetFile[]): DataError {
  const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
  return new DataError(`${dir}: missing ${missing[0].name}${more} for ${d.name}`);
}

/** Checks a folder holds all files; returns them or throws a one-line error naming folder and file. */
export function datasetFilesIn(dir: string, name: string | DatasetDescriptor): Record<FileKey, string> {
  const d = getDataset(name);
  const { found, missing } = scan(dir, d);
  if (missing.length) throw missingError(dir, d, missing);
  return found as Record<FileKey, string>;
}

/**
 * In a flat folder (files directly in it) the file names don't say which dataset it is (MNIST and
 * Fashion-MNIST share them). The train labels file is small: if its MD5 is that of another known
 * dataset, the folder is not this dataset. Custom data (no known MD5) is accepted.
 */
function isOtherKnownDataset(labelsFile: string, d: DatasetDescriptor): boolean {
  let md5: string;
  try { md5 = md5Hex(readMaybeGzip(labelsFile)); } catch { return false; }
  if (md5 === d.files.trainLabels.md5) return false;
  return Object.values(DATASETS).some((o) => o.name !== d.name && o.files.trainLabels.md5 === md5);
}

function located(d: DatasetDescriptor, dir: string, source: DataSource, files: Record<FileKey, string>): LocatedDataset {
  return { descriptor: d, dir, source, files };
}

/**
 * Finds a dataset without downloading: returns where it is, or null when it is nowhere. An explicit
 * `dataDir` or `$LATENTLAB_DATA` that is missing, or that holds only some of the files, is an error.
 */
export function locateDataset(name: string | DatasetDescriptor, opts: LocateOptions = {}): LocatedDataset | null {
  const d = getDataset(name);
  const env = opts.env ?? process.env;

  if (opts.dataDir !== undefined) {
    const dir = resolve(opts.dataDir);
    if (!isDir(dir)) throw new DataError(`${dir}: no such folder (--data-dir)`);
    const sub = join(dir, d.name);
    if (isDir(sub) && Object.keys(scan(sub, d).found).length > 0) {
      return located(d, sub, 'data-dir', datasetFilesIn(sub, d));
    }
    return located(d, dir, 'data-dir', datasetFilesIn(dir, d));
  }

  const envDir = env.LATENTLAB_DATA;
  if (envDir && envDir.trim() !== '') {
    const dir = resolve(envDir);
    if (!isDir(dir)) throw new DataError(`${dir}: no such folder ($LATENTLAB_DATA)`);
    const sub = join(dir, d.name);
    if (isDir(sub)) return located(d, sub, 'env', datasetFilesIn(sub, d));
    const flat = scan(dir, d);
    const nFound = Object.keys(flat.found).length;
    if (nFound > 0) {
      if (flat.missing.length) throw missingError(dir, d, flat.missing);
      const files = flat.found as Record<FileKey, string>;
      if (!isOtherKnownDataset(files.trainLabels, d)) return located(d, dir, 'env', files);
    }
    // else: the folder holds other datasets only; go on searching.
  }

  const cache = cacheDir(d, env);
  if (isDir(cache)) {
    const s = scan(cache, d);
    if (!s.missing.length) return located(d, cache, 'cache', s.found as Record<FileKey, string>);
    // a partial cache (an interrupted download) is completed by findDataset
  }

  for (const sys of opts.systemDirs ?? [SYSTEM_DATA_DIR]) {
    const dir = resolve(sys, d.name);
    if (!isDir(dir)) continue;
    const s = scan(dir, d);
    if (!s.missing.length) return located(d, dir, 'system', s.found as Record<FileKey, string>);
  }
  return null;
}

/** Finds a dataset (see the search order above), downloading it into the cache when it is nowhere. */
export async function findDataset(name: string | DatasetDescriptor, opts: FindOptions = {}): Promise<LocatedDataset> {
  const d = getDataset(name);
  const env = opts.env ?? process.env;
  const found = locateDataset(d, opts);
  if (found) return found;
  const cache = cacheDir(d, env);
  if (opts.download === false) {
    throw new DataError(`${d.name}: not found in $LATENTLAB_DATA, ${cache} or ${join(SYSTEM_DATA_DIR, d.name)} (run: latentlab data download --dataset ${d.name})`);
  }
  const files = await downloadDataset(d, cache, { ...opts, env });
  return located(d, cache, 'download', files);
}

export interface LoadedDataset {
  descriptor: DatasetDescriptor;
  dir: string;
  source: DataSource;
  train: Split;
  test: Split;
}

export interface LoadOptions extends FindOptions {
  /** Check the MD5 of each file's uncompressed content against the descriptor (default false). */
  verify?: boolean;
}

/** Reads the four files of a located dataset (checks magic, sizes, counts; MD5 when `verify`). */
export function readDataset(loc: LocatedDataset, opts: { verify?: boolean } = {}): LoadedDataset {
  const d = loc.descriptor;
  if (opts.verify) verifyDataset(loc);
  const shape = { rows: d.rows, cols: d.cols };
  const f = loc.files;
  const k = d.classes.length;
  const train = checkSplit(readIdxImages(f.trainImages, shape), readIdxLabels(f.trainLabels), f.trainImages, f.trainLabels, k);
  const test = checkSplit(readIdxImages(f.testImages, shape), readIdxLabels(f.testLabels), f.testImages, f.testLabels, k);
  return { descriptor: d, dir: loc.dir, source: loc.source, train, test };
}

/** Finds (downloading if needed) and reads a dataset. */
export async function loadDataset(name: string | DatasetDescriptor, opts: LoadOptions = {}): Promise<LoadedDataset> {
  return readDataset(await findDataset(name, opts), opts);
}

/** Checks each file's uncompressed MD5; throws a one-line error at the first mismatch. */
export function verifyDataset(loc: LocatedDataset): void {
  for (const k of FILE_KEYS) {
    const want = loc.descriptor.files[k].md5;
    const got = md5Hex(readMaybeGzip(loc.files[k]));
    if (got !== want) throw new DataError(`${loc.files[k]}: expected MD5 ${want} (uncompressed), got ${got}`);
  }
}
