/**
 * The autoencoder family behind one type: the plain autoencoder (autoencoder.ts) and the VAE (vae.ts).
 * Both encode (a VAE: the posterior mean), decode and reconstruct the same way; what differs is asked
 * with `isVae`. `makeModel` builds the one a run's settings name.
 */
import type { Rng } from '../../engine/rng.js';
import { AutoEncoder, type ModelConfig } from './autoencoder.js';
import { VAE } from './vae.js';

export type LatentModel = AutoEncoder | VAE;

export function isVae(m: LatentModel): m is VAE { return m instanceof VAE; }

/** The model of a configuration: a VAE when `vae` is set (eps drawn from `noise`), else the plain autoencoder. */
export function makeModel(c: Partial<ModelConfig> & { vae?: boolean }, rng?: Rng, noise?: Rng): LatentModel {
  const { vae, ...mc } = c as Partial<ModelConfig> & { vae?: boolean } & Record<string, unknown>;
  const cfg: Partial<ModelConfig> = { model: mc.model, latent: mc.latent, activation: mc.activation, latentActivation: mc.latentActivation };
  return vae ? new VAE(cfg, rng, noise ? { noise } : {}) : new AutoEncoder(cfg, rng);
}

/** The words of a model's kind and shape, for messages: "--model vae --latent 2", "--model bn --latent 10". */
export function describeModel(m: LatentModel): string {
  const body = m.config.model;
  return `--model ${isVae(m) ? (body === 'bn' ? 'vae' : 'vae-simple') : body} --latent ${m.config.latent}`;
}
