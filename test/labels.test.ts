/**
 * A label outside the data set's classes (11 in MNIST) is refused when the data set is read, with
 * one line naming the labels file, the label and where it is; it used to train silently and crash
 * eval and --supervised later.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadDataset, MNIST } from '../src/lab/data/datasets.js';
import { encodeIdxImages, encodeIdxLabels } from '../src/lab/data/idx-format.js';
import { md5Hex } from '../src/lab/data/idx.js';

function writeSet(dir: string, trainLabels: number[]): typeof MNIST {
  const n = trainLabels.length;
  const raw = {
    trainImages: encodeIdxImages(new Uint8Array(n * 784), n, 28, 28), trainLabels: encodeIdxLabels(Uint8Array.from(trainLabels)),
    testImages: encodeIdxImages(new Uint8Array(2 * 784), 2, 28, 28), testLabels: encodeIdxLabels(Uint8Array.of(0, 9)),
  };
  for (const [k, v] of Object.entries(raw)) writeFileSync(path.join(dir, MNIST.files[k as keyof typeof raw].name), gzipSync(v));
  const files = Object.fromEntries(Object.entries(MNIST.files).map(([k, f]) => [k, { ...f, md5: md5Hex(raw[k as keyof typeof raw]) }]));
  return { ...MNIST, name: 'tiny', files } as typeof MNIST;
}

describe('labels are checked when a data set is read', () => {
  it('label 11 in an MNIST-shaped set: one line naming the file, the label and its index', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-labels-'));
    const desc = writeSet(dir, [3, 1, 11, 4]);
    await expect(loadDataset(desc, { dataDir: dir })).rejects.toThrow(
      new RegExp(`^${dir}/train-labels-idx1-ubyte\\.gz: label 11 at index 2 is not one of the data set's 10 classes \\(0-9\\)$`));
  });

  it('labels 0-9 load', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-labels-'));
    const ds = await loadDataset(writeSet(dir, [0, 9, 5]), { dataDir: dir });
    expect(Array.from(ds.train.labels)).toEqual([0, 9, 5]);
  });
});
