/**
 * latentlab: the browser-safe API (nothing here imports a node: module).
 *
 * ```ts
 * import { nn, optim, lr_scheduler, data, models, Tensor } from 'latentlab';
 * const model = new models.AutoEncoder({ latent: 2 });
 * const opt = new optim.SGD(model.parameters(), { lr: 1e-4, momentum: 0.9 });
 * const sched = new lr_scheduler.CyclicLR(opt, { baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 400 });
 * ```
 *
 * Node-only parts (files, datasets on disk and downloads, `train`, run folders, PNG rendering,
 * the wasm and native backends) are in `latentlab/node`.
 *
 * @module latentlab
 */

// engine
export { Tensor, numel, shapeEq } from './engine/tensor.js';
export { Rng, type RngState } from './engine/rng.js';
export * as nn from './engine/nn/index.js';
export * as optim from './engine/optim/index.js';
export * as lr_scheduler from './engine/lr_scheduler.js';
export * as losses from './engine/loss.js';
export { mseLoss, bceLoss } from './engine/loss.js';
export {
  saveSafetensors, loadSafetensors, f32, i64,
  type StateDict, type StateEntry, type Safetensors, type DType,
} from './engine/state.js';
export type { Backend, ConvGeom, Act, ActKind } from './engine/kernels/index.js';
export { ReferenceBackend } from './engine/kernels/reference.js';
export {
  createBackend, registerBackend, availableBackends, BACKEND_NAMES,
  type BackendName, type BackendOptions, type BackendFactory,
} from './engine/kernels/select.js';
export { manualSeed, getDefaultBackend, setDefaultBackend } from './engine/nn/index.js';

// the lab: models, data, evaluation, projection, preprocessing
export * as models from './api/models.js';
export * as data from './api/data.js';
export * as metrics from './lab/analysis/eval.js';
export * as projection from './lab/analysis/projection.js';
export * as preprocess from './lab/data/preprocess.js';
export { mnistFromPixels, mnistPixelsFromPixels, normalizeMnist, type PreprocessOptions } from './lab/data/preprocess.js';
export { centroids, digitLatents, checkDigit, type Centroids, type LabelledLatents } from './lab/analysis/generate.js';

// the autoencoder family (variational, denoising, sparse), latent health and anomaly search
export { VAE, isVaeStateDict, checkModelKind, type VaeConfig, type VaeOptions } from './lab/models/vae.js';
export * as latentLosses from './engine/latent_loss.js';
export { parseNoise, formatNoise, corrupt, NOISE_KINDS, type NoiseSpec } from './lab/data/noise.js';
export * as quality from './lab/analysis/quality.js';
export { denoise, type DenoiseResult, type Reconstructor } from './lab/analysis/denoise.js';
export { sparsityStats, type SparsityStats } from './lab/analysis/sparsity.js';
export {
  latentHealth, type LatentHealth, type LatentHealthOptions, type DimensionHealth, type LatentCondition, type LatentActivationName,
} from './lab/analysis/latent_health.js';
export { worstN, errorHistogram, type WorstImage, type ErrorHistogram } from './lab/analysis/anomaly.js';
export { evaluateVae, normalQuantile, priorGridPoints, type VaeEvaluation } from './lab/analysis/vae_eval.js';

// drawing on any CanvasRenderingContext2D (figures, scatter, grids, curves, GIF encoding)
export * as viz from './viz/index.js';

export { VERSION } from './version.js';
