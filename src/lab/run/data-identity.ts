/**
 * The identity of the data a run trains on: the MD5 of each IDX file's uncompressed content,
 * computed from the very bytes read (the header rebuilt from the split's counts), checked against
 * the known data sets' checksums and recorded in config.json.
 */
import { createHash } from 'node:crypto';
import { DATASETS, FILE_KEYS, type FileKey } from '../data/datasets.js';
import type { LoadedDataset } from '../data/datasets.js';
import type { Split } from '../data/idx.js';
import { UsageError } from './atomic.js';
import type { DataIdentity } from './folder.js';

/** The MD5 of an images split as an IDX file (the header rebuilt from its counts), as config.json records it. */
export function md5Images(s: Split): string {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(0x00000803, 0); h.writeUInt32BE(s.n, 4); h.writeUInt32BE(s.rows, 8); h.writeUInt32BE(s.cols, 12);
  return createHash('md5').update(h).update(s.images.subarray(0, s.n * s.rows * s.cols)).digest('hex');
}

function md5Labels(s: Split): string {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(0x00000801, 0); h.writeUInt32BE(s.n, 4);
  return createHash('md5').update(h).update(s.labels.subarray(0, s.n)).digest('hex');
}

/** The checksums of a loaded data set and the known data set they belong to, if any. */
export function dataIdentity(data: LoadedDataset): DataIdentity {
  const md5: Record<FileKey, string> = {
    trainImages: md5Images(data.train), trainLabels: md5Labels(data.train),
    testImages: md5Images(data.test), testLabels: md5Labels(data.test),
  };
  const known = Object.values(DATASETS).find((d) => FILE_KEYS.every((k) => d.files[k].md5 === md5[k]))?.name ?? null;
  return { dataset: data.descriptor.name, known, md5 };
}

/** Refuses data that are, by checksum, another known data set than the one named. */
export function checkDataIsNamed(id: DataIdentity, dir: string): void {
  if (id.known && id.known !== id.dataset)
    throw new UsageError(`${dir}: the files are ${id.known} (by their checksums), not ${id.dataset}; pass --dataset ${id.known}, or --data-dir with ${id.dataset}'s files`);
}

/** Refuses to continue a run on other data than it was trained on. */
export function checkSameData(recorded: DataIdentity, now: DataIdentity, dir: string, runDir: string): void {
  const differ = FILE_KEYS.filter((k) => recorded.md5[k] !== undefined && recorded.md5[k] !== now.md5[k]);
  if (!differ.length && recorded.dataset === now.dataset) return;
  const what = (i: DataIdentity) => i.known ?? `${i.dataset} (unknown checksums)`;
  throw new UsageError(`--resume ${runDir}: the data in ${dir} (${what(now)}) are not the data the run was trained on (${what(recorded)}); pass --data-dir with the run's data`);
}
