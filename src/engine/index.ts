/** The engine: tensors, kernels, layers, losses, optimisers, LR schedulers and state. Browser-safe. */
export { Tensor, numel, shapeEq } from './tensor.js';
export { Rng, type RngState } from './rng.js';
export * as nn from './nn/index.js';
export { mseLoss, bceLoss } from './loss.js';
export { saveSafetensors, loadSafetensors, type StateDict, type StateEntry, type Safetensors } from './state.js';
export type { Backend, ConvGeom, Act, ActKind } from './kernels/index.js';
export { ReferenceBackend } from './kernels/reference.js';
export { createBackend, registerBackend, availableBackends, type BackendName, type BackendOptions } from './kernels/select.js';
