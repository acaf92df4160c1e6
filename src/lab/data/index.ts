/** The lab's data layer: the image contract, IDX files, dataset descriptors and search, downloads, batches. */
export * from './idx.js';
export * from './image.js';
export * from './datasets.js';
export * from './download.js';
export * from './loader.js';
