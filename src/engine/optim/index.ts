export {
  Optimizer, packOptimizerState, unpackOptimizerState,
  type ParamGroup, type ParamGroupInput, type ParamsInput, type ParamState, type PackedParamGroup, type OptimizerStateDict,
} from './optimizer.js';
export { SGD, type SGDGroup, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamGroup, type AdamOptions } from './adam.js';
