/**
 * What a data set's files are: their keys, names and checksums, and its mirrors (browser-safe types).
 * Declared apart from datasets.ts (finding files) and download.ts (fetching them), which both use it.
 */
import type { DatasetInfo } from './image.js';

export type FileKey = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';
export const FILE_KEYS: readonly FileKey[] = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];

export interface DatasetFile {
  /** File name as served by the mirrors (gzipped), e.g. `train-images-idx3-ubyte.gz`. */
  name: string;
  /** MD5 (hex) of the uncompressed content. */
  md5: string;
}

/** A data set (name, shape, class names: see image.ts) and where its files come from. */
export interface DatasetDescriptor extends DatasetInfo {
  /** Expected sample counts (informational; the files' headers are authoritative). */
  counts: { train: number; test: number };
  files: Record<FileKey, DatasetFile>;
  /** Base URLs tried in order; a file's URL is the base + its name. */
  mirrors: readonly string[];
}
