/**
 * The study's autoencoder as a variational autoencoder (Kingma & Welling): the same encoder body and
 * decoder (autoencoder.ts), and instead of the encoder's last layer two heads, the posterior's mean
 * and log-variance; z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) drawn from a seeded generator
 * (or given). No activation on the heads (a Gaussian's mean and log-variance are unbounded).
 *
 *   encoder (a Sequential, the study's indices):  bn: Conv BN act x3  [Flatten]   simple: Conv act x3 [Flatten]
 *   mu, logvar:  Linear(3136, z) each, or Conv2d(64, 2, 3, p1) each for the (2,7,7) latent
 *   decoder:     the study's decoder
 *
 * State-dict keys are those of the PyTorch VAE in tools/fixtures/gen_vae.py (`encoder.0.weight`,
 * `mu.weight`, `logvar.weight`, `decoder.0.weight`, ...): a checkpoint loads there with
 * load_state_dict(strict=True) and back.
 *
 * Training step (forward and backward explicit, like the rest of the engine):
 *
 *   const y = vae.forward(x);                              // draws eps from the noise generator
 *   const t = vaeObjective(y.data, x.data, vae.lastMu!.data, vae.lastLogvar!.data, N, D, weight, dy, dMu, dLogvar);
 *   vae.backward(new Tensor(y.shape, dy), dMu, dLogvar);   // the KL's gradients enter at the heads
 */
import { Tensor } from '../../engine/tensor.js';
import { Conv2d, Flatten, Linear, Module, Sequential } from '../../engine/nn/index.js';
import type { Rng } from '../../engine/rng.js';
import type { StateDict } from '../../engine/state.js';
import {
  checkModelConfig, checkOut, convBody, decodeLatents, decoderLayers, DEFAULT_MODEL, latentShapeOf, type ModelConfig,
} from './autoencoder.js';
import { IMAGE_PIXELS, IMAGE_SHAPE } from '../data/image.js';

/** A VAE's configuration: the autoencoder's, whose latent activation is always 'none' (linear heads). */
export type VaeConfig = ModelConfig & { latentActivation: 'none' };

export interface VaeOptions {
  /** The generator eps is drawn from in training-mode forward passes (the run's seeded generator). */
  noise?: Rng;
}

export class VAE extends Module {
  readonly encoder: Sequential;
  readonly mu: Linear | Conv2d;
  readonly logvar: Linear | Conv2d;
  readonly decoder: Sequential;
  readonly config: VaeConfig;
  /** The latent's shape without the batch: [z] or [2, 7, 7]. */
  readonly latentShape: number[];
  /** Where eps comes from when a training-mode forward is not given one. */
  noise: Rng | null;

  /** Of the last forward pass (valid until the next one): the heads' outputs, the noise and z. */
  lastMu: Tensor | null = null;
  lastLogvar: Tensor | null = null;
  lastEps: Tensor | null = null;
  lastLatent: Tensor | null = null;
  private lastH: Tensor | null = null;

  protected override forgetForward(): void { this.lastMu = this.lastLogvar = this.lastEps = this.lastLatent = this.lastH = null; }
  private sampled = false;

  /**
   * `config.latentActivation`, when given, must be 'none' or is an error (a VAE's heads are linear).
   * `rng` initialises the weights (as AutoEncoder's); `opts.noise` draws eps.
   */
  constructor(config: Partial<ModelConfig> = {}, rng?: Rng, opts: VaeOptions = {}) {
    super();
    const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as Partial<ModelConfig>;
    if (given.latentActivation !== undefined && given.latentActivation !== 'none')
      throw new Error(`--latent-activation: a VAE's mean and log-variance heads take no activation; expected none, got '${given.latentActivation}'`);
    const c = checkModelConfig({ ...DEFAULT_MODEL, ...given, latentActivation: 'none' }) as VaeConfig;
    this.config = c;
    this.noise = opts.noise ?? null;
    const o = rng ? { rng } : {};
    const enc = convBody(c, o);
    if (c.latent !== 'conv') enc.push(new Flatten());
    (enc[0] as Conv2d).needsInputGrad = false;
    const head = (): Linear | Conv2d => (c.latent === 'conv' ? new Conv2d(64, 2, 3, { padding: 1, ...o }) : new Linear(64 * 7 * 7, c.latent, o));
    this.encoder = this.registerModule('encoder', new Sequential(...enc));
    this.mu = this.registerModule('mu', head());
    this.logvar = this.registerModule('logvar', head());
    this.decoder = this.registerModule('decoder', new Sequential(...decoderLayers(c, o)));
    this.latentShape = latentShapeOf(c.latent);
    this.encoder.profileName = 'encoder';
    this.decoder.profileName = 'decoder';
    // the layers' input gradients take turns in two buffers (headsBackward copies dh out of them)
    this.shareGradientBuffers();
  }

  override get typeName(): string { return 'VAE'; }

  /** Elements of one latent vector (2, 10, or 98 for the conv latent). */
  get latentDim(): number { return this.latentShape.reduce((a, b) => a * b, 1); }

  /**
   * The heads on the encoder's output h ([N,3136] or [N,64,7,7]): mu, logvar and z. z = mu + exp(logvar/2) eps
   * when eps is given (N*latentDim floats) or in training mode (eps drawn from `noise`); z = mu in eval mode.
   */
  heads(h: Tensor, eps?: Float32Array): { mu: Tensor; logvar: Tensor; z: Tensor } {
    const mu = this.mu.forward(h), logvar = this.logvar.forward(h);
    const n = mu.size, N = h.shape[0];
    const shape = [N, ...this.latentShape];
    this.lastH = h;
    this.lastMu = new Tensor(shape, mu.data);
    this.lastLogvar = new Tensor(shape, logvar.data);
    this.sampled = eps !== undefined || this.training;
    if (!this.sampled) {
      this.lastEps = null;
      this.lastLatent = this.lastMu;
      return { mu: this.lastMu, logvar: this.lastLogvar, z: this.lastMu };
    }
    const e = this.scratch('eps', n);
    if (eps) {
      if (eps.length < n) throw new Error(`VAE: expected ${n} noise values for ${N} images, got ${eps.length}`);
      e.set(eps.subarray(0, n));
    } else {
      if (!this.noise) throw new Error('VAE: a training-mode forward needs a noise generator (new VAE(config, rng, { noise })) or the noise itself');
      for (let i = 0; i < n; i++) e[i] = this.noise.normal();
    }
    const z = this.scratch('z', n), m = mu.data, lv = logvar.data;
    for (let i = 0; i < n; i++) z[i] = m[i] + Math.fround(Math.exp(0.5 * lv[i])) * e[i];
    this.lastEps = new Tensor(shape, e);
    this.lastLatent = new Tensor(shape, z);
    return { mu: this.lastMu, logvar: this.lastLogvar, z: this.lastLatent };
  }

  /**
   * The heads' backward: from dL/dz (and extra gradients w.r.t. mu and logvar, a KL term's) accumulates
   * the heads' parameter gradients and returns dL/dh.
   */
  headsBackward(dz: Tensor, dMu?: Float32Array, dLogvar?: Float32Array): Tensor {
    const h = this.lastH, mu = this.lastMu, lv = this.lastLogvar;
    if (!h || !mu || !lv) throw new Error('VAE.backward called before forward');
    const n = mu.size;
    const gm = this.scratch('dMu', n), gl = this.scratch('dLogvar', n), d = dz.data;
    if (this.sampled) {
      const e = this.lastEps!.data, l = lv.data;
      for (let i = 0; i < n; i++) {
        gm[i] = d[i] + (dMu ? dMu[i] : 0);
        gl[i] = d[i] * e[i] * 0.5 * Math.fround(Math.exp(0.5 * l[i])) + (dLogvar ? dLogvar[i] : 0);
      }
    } else {
      for (let i = 0; i < n; i++) { gm[i] = d[i] + (dMu ? dMu[i] : 0); gl[i] = dLogvar ? dLogvar[i] : 0; }
    }
    const headShape = this.config.latent === 'conv' ? mu.shape : [mu.shape[0], n / mu.shape[0]];
    const a = this.mu.backward(new Tensor(headShape, gm));
    const dh = this.scratch('dh', h.size);
    dh.set(a.data.subarray(0, h.size));
    const b = this.logvar.backward(new Tensor(headShape, gl)).data;
    for (let i = 0; i < h.size; i++) dh[i] += b[i];
    return new Tensor(h.shape, dh);
  }

  /** x [N,1,28,28] -> reconstruction [N,1,28,28]; eps as in heads(). Keeps mu, logvar, eps and z (last*). */
  forward(x: Tensor, eps?: Float32Array): Tensor {
    const h = this.encoder.forward(x);
    const { z } = this.heads(h, eps);
    return this.decoder.forward(z);
  }

  /**
   * Backward from dL/d(reconstruction); dMu and dLogvar (N*latentDim floats), when given, are added at the
   * heads (the KL term's gradients, see vaeObjective). Returns the encoder's input gradient (empty).
   */
  backward(dy: Tensor, dMu?: Float32Array, dLogvar?: Float32Array): Tensor {
    const dz = this.decoder.backward(dy);
    return this.encoder.backward(this.headsBackward(dz, dMu, dLogvar));
  }

  /** The posterior's mean and log-variance of n images (n*784 floats in [-1,1]), eval mode; copies. */
  encodeStats(x: Float32Array, n: number, batchSize = 64): { mu: Float32Array; logvar: Float32Array } {
    const D = this.latentDim, mu = new Float32Array(n * D), logvar = new Float32Array(n * D);
    this.evalBatches('x', x, n, IMAGE_SHAPE, batchSize, (xb, i, b) => {
      const r = this.heads(this.encoder.forward(xb));
      mu.set(r.mu.data.subarray(0, b * D), i * D);
      logvar.set(r.logvar.data.subarray(0, b * D), i * D);
    });
    return { mu, logvar };
  }

  /** The posterior means of n images (the latent a plot shows); n*latentDim floats. */
  encode(x: Float32Array, n: number, batchSize = 64, out?: Float32Array): Float32Array {
    const mu = this.encodeStats(x, n, batchSize).mu;
    if (!out) return mu;
    checkOut(out, mu.length, 'encode');
    out.set(mu);
    return out;
  }

  /** Decodes n latents (n*latentDim floats) in eval mode; returns n*784 floats (a copy). */
  decode(z: Float32Array, n: number, batchSize = 64, out = new Float32Array(n * IMAGE_PIXELS)): Float32Array {
    return decodeLatents(this, this.decoder, this.latentShape, z, n, batchSize, out);
  }

  /** Encodes (the mean) then decodes n images; returns n*784 floats (a copy). */
  reconstruct(x: Float32Array, n: number, batchSize = 64): Float32Array {
    return this.decode(this.encode(x, n, batchSize), n, batchSize);
  }

  /** n images decoded from the prior N(0, I) with the given generator; returns { z, images }. */
  sample(n: number, rng: Rng, batchSize = 64): { z: Float32Array; images: Float32Array } {
    const z = new Float32Array(n * this.latentDim);
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    return { z, images: this.decode(z, n, batchSize) };
  }
}

/** Whether a state dict is a VAE's (it has the heads `mu.*` and `logvar.*`) rather than an autoencoder's. */
export function isVaeStateDict(sd: StateDict): boolean {
  return sd.has('mu.weight') && sd.has('logvar.weight');
}

/**
 * Checks that a state dict is of the expected kind before loading it; throws one line naming `where`
 * (a file) and both kinds, e.g. "run/model.safetensors: holds a plain autoencoder, not a VAE (--model vae)".
 */
export function checkModelKind(sd: StateDict, vae: boolean, where: string): void {
  const isVae = isVaeStateDict(sd);
  if (isVae === vae) return;
  throw new Error(vae
    ? `${where}: holds a plain autoencoder's weights, not a VAE's (no mu/logvar heads): drop --model vae or use a VAE run`
    : `${where}: holds a VAE's weights (mu/logvar heads), not a plain autoencoder's: use --model vae`);
}
