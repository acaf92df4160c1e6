/**
 * `models` of the public API: the study's AutoEncoder and its configurations, model summaries,
 * and loading a state dict (ours or PyTorch's) from safetensors bytes. Browser-safe.
 */
import type { Backend } from '../engine/kernels/index.js';
import { loadSafetensors, type StateDict } from '../engine/state.js';
import type { ModelConfig } from '../lab/models/autoencoder.js';
import { describeModel, makeModel, type LatentModel } from '../lab/models/family.js';
import { checkModelKind, isVaeStateDict } from '../lab/models/vae.js';

export { VAE, isVaeStateDict, checkModelKind } from '../lab/models/vae.js';
export { isVae, makeModel, type LatentModel } from '../lab/models/family.js';
export {
  AutoEncoder, DEFAULT_MODEL, checkModelConfig, parseLatent,
  type ModelConfig, type Variant, type LatentSpec,
} from '../lab/models/autoencoder.js';
export {
  DEFAULT_TRAIN, STUDY_LATENT_MAP, OPTIMIZERS, SCHEDULERS, checkTrainConfig, resolveTrainConfig, checkLatentMap,
  TrainConfigSchema, TrainSettingsSchema, TRAIN_FIELDS, parseTrainSettings, parseRunConfig, resumeConfig, LATENT_MAX, threadsMax,
  type TrainConfig, type Origin, type SettingKind, type LatentMap, type OptimizerName, type SchedulerName,
} from '../lab/run/config.js';
export { makeOptimizer, makeScheduler, type AnyOpt, type Schedule } from '../lab/train/optimizer.js';
export { summarize, formatSummary, type ModelSummary, type SummaryRow } from '../lab/models/summary.js';

export interface FromSafetensorsOptions {
  /** Put the model on this backend (default: the default backend, reference unless set). */
  backend?: Backend;
  /** Require exactly the model's keys (default true, like PyTorch's load_state_dict(strict=True)). */
  strict?: boolean;
  /** A name for error messages (a file name or URL). */
  name?: string;
}

/**
 * A model of the given configuration with the weights of a state dict in safetensors bytes: one
 * saved by PyTorch (`safetensors.torch.save_file(model.state_dict(), ...)`, the study's key names
 * `encoder.0.weight` ...), a `model.safetensors` of a run, or a checkpoint whose keys are prefixed
 * `model.`. Returned in eval mode. Throws one line naming the input when the keys or shapes do not fit.
 */
export function modelFromSafetensors(bytes: Uint8Array, config: Partial<ModelConfig> & { vae?: boolean } = {}, opts: FromSafetensorsOptions = {}): LatentModel {
  const name = opts.name ?? 'safetensors';
  const { tensors } = loadSafetensors(bytes, name);
  let sd: StateDict = tensors;
  if ([...tensors.keys()].some((k) => k.startsWith('model.')))
    sd = new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v]));
  // a VAE's weights (mu/logvar heads) make a VAE, unless config.vae says which kind is expected
  if (config.vae !== undefined) checkModelKind(sd, config.vae, name);
  const vae = config.vae ?? isVaeStateDict(sd);
  const model = makeModel({ ...config, vae, ...(vae ? { latentActivation: 'none' as const } : {}) });
  if (opts.backend) model.to(opts.backend);
  try {
    model.loadStateDict(sd, opts.strict ?? true);
  } catch (e) {
    throw new Error(`${name}: does not fit ${describeModel(model)} (${(e as Error).message.split('\n')[0]!.slice(0, 300)})`, { cause: e });
  }
  return model.eval();
}
