/**
 * latentlab/node: the whole browser-safe API of `latentlab` plus the Node-only parts: datasets on
 * disk (finding, caching, downloading), `train` and run folders, model and safetensors files,
 * PNG rendering, encoding your own pictures. Importing it registers the wasm backend (over
 * worker_threads) and the optional native addon with `createBackend`.
 *
 * ```ts
 * import { train, openRun, encodeImages } from 'latentlab/node';
 * const result = await train({ epochs: 1, maxSteps: 100 }, { out: 'runs/quick' });
 * ```
 *
 * @module latentlab/node
 */
import './node-backends.js';

export * from './index.js';
// replaces the browser `data` (a superset)
export * as data from './api/node-data.js';

// training and runs
export {
  train, Trainer, TrainingError, floatImages, latentBox, gridPoints,
  type TrainOptions, type TrainResult, type TrainCallbacks, type StepInfo, type EpochInfo, type Snapshot,
} from './lab/train/train.js';
export {
  openRun, loadModel, readLatents, readMetrics, readSnapshot, firstNonFinite,
  type Run, type Latents, type MetricsLine, type SnapshotRecord,
} from './lab/run/run.js';
export {
  RunFolder, RUN_FILES, RUN_PICTURES, isPublicRunFile, parseMetricsText,
  type RunStatus, type RunState, type RunResult, type DataIdentity, type RunFileRole,
} from './lab/run/folder.js';
export { UsageError } from './lab/run/atomic.js';
export { onStopSignals, SIGNAL_EXIT, type StopSignal } from './lab/train/signals.js';
export { evaluate, type EvalReport, type EvaluateOptions } from './lab/analysis/eval.js';

// files
export { loadSafetensorsFile, saveSafetensorsFile, saveModel } from './api/files.js';
export { loadDataset, findDataset, downloadDataset, type LoadedDataset } from './lab/data/index.js';

// pictures
export { renderPng, renderRgba, rgbaRenderer, decodePng, writeFileAtomic, type Draw, type DecodedImage } from './viz/node.js';
export {
  encodeImages, readImagePixels, readDigitImage, writeEncodeOutputs, encodePlotPng, imagePng, formatLatent,
  type EncodedImage, type EncodeOutputs,
} from './lab/analysis/encode.js';
