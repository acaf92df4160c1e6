/**
 * `data` of the browser-safe entry: the DataLoader (batches in [-1, 1], seeded shuffling,
 * resumable) and IDX parsing on bytes. Files, caches, verification and downloads are in
 * `latentlab/node`'s `data`.
 */
export * from '../lab/data/idx-format.js';
export { DataLoader, toFloat, type Batch, type DataLoaderOptions, type LoaderData, type LoaderState } from '../lab/data/loader.js';
export * from '../lab/data/image.js';
