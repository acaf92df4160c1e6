/**
 * `data` of `latentlab/node`: everything of the browser `data` plus files: IDX files (gzipped or
 * raw), dataset descriptors, locating/caching/verifying/downloading MNIST and Fashion-MNIST.
 */
export * from '../lab/data/index.js';
