/**
 * The study's convolutional autoencoder (../shared/seed/study-autoencoder-mnist.txt), with the
 * variants the study tried. Layer indices, and so state-dict keys, are those of the study's PyTorch
 * code: a checkpoint loads there with load_state_dict(strict=True) and back.
 *
 *   bn:      Conv(1,32,p1) BN act  Conv(32,64,s2,p1) BN act  Conv(64,64,s2,p1) BN act  Flatten Linear(3136,z) act
 *            Linear(z,3136) Unflatten(64,7,7) act  ConvT(64,64,s2,p1,op1) BN act  ConvT(64,32,s2,p1,op1) BN act
 *            ConvT(32,1,p1) Tanh
 *   simple:  the same without BatchNorm and without the final Tanh (the study's first version)
 *   latent 'conv': a (2,7,7) latent: the encoder ends with Conv(64,2,p1) act instead of Flatten Linear act,
 *            the decoder starts with ConvT(2,64,p1) act instead of Linear Unflatten act.
 */
import { Tensor } from '../../engine/tensor.js';
import {
  BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, Module, ReLU, Sequential, Tanh, Unflatten,
} from '../../engine/nn/index.js';
import type { Rng } from '../../engine/rng.js';
import { IMAGE_PIXELS, IMAGE_SHAPE } from '../data/image.js';

export type Variant = 'bn' | 'simple';
export type LatentSpec = number | 'conv';

export interface ModelConfig {
  /** 'bn' (the study's model) or 'simple' (no BatchNorm, no final Tanh). */
  model: Variant;
  /** Latent size (2, 10, any N >= 1) or 'conv' for a (2,7,7) latent. */
  latent: LatentSpec;
  /** The hidden activation: 'leaky' (LeakyReLU(0.01), the study's) or 'relu'. */
  activation: 'leaky' | 'relu';
  /** The activation after the encoder's last layer: 'leaky' (the study's), 'relu' or 'none'. */
  latentActivation: 'leaky' | 'relu' | 'none';
}

export const DEFAULT_MODEL: ModelConfig = { model: 'bn', latent: 2, activation: 'leaky', latentActivation: 'leaky' };

/** Checks a model configuration; throws one line naming the bad field. */
export function checkModelConfig(c: ModelConfig): ModelConfig {
  if (c.model !== 'bn' && c.model !== 'simple') throw new Error(`--model: expected bn or simple, got '${c.model}'`);
  if (c.latent !== 'conv' && !(Number.isInteger(c.latent) && c.latent >= 1))
    throw new Error(`--latent: expected a positive integer or 'conv', got '${c.latent}'`);
  if (c.activation !== 'leaky' && c.activation !== 'relu') throw new Error(`--activation: expected leaky or relu, got '${c.activation}'`);
  if (c.latentActivation !== 'leaky' && c.latentActivation !== 'relu' && c.latentActivation !== 'none')
    throw new Error(`--latent-activation: expected leaky, relu or none, got '${c.latentActivation}'`);
  return c;
}

/** Parses a --latent value: a positive integer or 'conv'. */
export function parseLatent(v: string | number): LatentSpec {
  if (v === 'conv') return 'conv';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--latent: expected a positive integer or 'conv', got '${v}'`);
  return n;
}

/** The hidden activation of a configuration, a new module each call. */
function hiddenAct(c: ModelConfig): Module { return c.activation === 'relu' ? new ReLU() : new LeakyReLU(); }

/** conv, BatchNorm (bn variant only), activation. */
function convBlock(c: ModelConfig, conv: Module, ch: number): Module[] {
  return c.model === 'bn' ? [conv, new BatchNorm2d(ch), hiddenAct(c)] : [conv, hiddenAct(c)];
}

/** The latent's shape without the batch: [z] or [2, 7, 7]. */
export function latentShapeOf(latent: LatentSpec): number[] {
  return latent === 'conv' ? [2, 7, 7] : [latent];
}

/**
 * The encoder's body shared by the autoencoder and the VAE: three conv blocks, [N,1,28,28] -> [N,64,7,7]
 * (encoder.0 ... encoder.8 with BatchNorm, encoder.0 ... encoder.5 without).
 */
export function convBody(c: ModelConfig, o: { rng?: Rng } = {}): Module[] {
  return [
    ...convBlock(c, new Conv2d(1, 32, 3, { padding: 1, ...o }), 32),
    ...convBlock(c, new Conv2d(32, 64, 3, { stride: 2, padding: 1, ...o }), 64),
    ...convBlock(c, new Conv2d(64, 64, 3, { stride: 2, padding: 1, ...o }), 64),
  ];
}

/** The study's decoder, shared by the autoencoder and the VAE: latent -> [N,1,28,28]. */
export function decoderLayers(c: ModelConfig, o: { rng?: Rng } = {}): Module[] {
  const dec: Module[] = c.latent === 'conv'
    ? [new ConvTranspose2d(2, 64, 3, { padding: 1, ...o }), hiddenAct(c)]
    : [new Linear(c.latent, 64 * 7 * 7, o), new Unflatten(1, [64, 7, 7]), hiddenAct(c)];
  dec.push(
    ...convBlock(c, new ConvTranspose2d(64, 64, 3, { stride: 2, padding: 1, outputPadding: 1, ...o }), 64),
    ...convBlock(c, new ConvTranspose2d(64, 32, 3, { stride: 2, padding: 1, outputPadding: 1, ...o }), 32),
    new ConvTranspose2d(32, 1, 3, { padding: 1, ...o }),
  );
  if (c.model === 'bn') dec.push(new Tanh());
  return dec;
}

export class AutoEncoder extends Module {
  readonly encoder: Sequential;
  readonly decoder: Sequential;
  readonly config: ModelConfig;
  /** The latent's shape without the batch: [z] or [2, 7, 7]. */
  readonly latentShape: number[];

  constructor(config: Partial<ModelConfig> = {}, rng?: Rng) {
    super();
    const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as Partial<ModelConfig>;
    const c = checkModelConfig({ ...DEFAULT_MODEL, ...given });
    this.config = c;
    const o = rng ? { rng } : {};
    const enc: Module[] = convBody(c, o);
    if (c.latent === 'conv') {
      enc.push(new Conv2d(64, 2, 3, { padding: 1, ...o }));
    } else {
      enc.push(new Flatten(), new Linear(64 * 7 * 7, c.latent, o));
    }
    if (c.latentActivation === 'leaky') enc.push(new LeakyReLU());
    else if (c.latentActivation === 'relu') enc.push(new ReLU());
    this.latentShape = latentShapeOf(c.latent);
    const dec = decoderLayers(c, o);
    (enc[0] as Conv2d).needsInputGrad = false;
    this.encoder = this.registerModule('encoder', new Sequential(...enc));
    this.decoder = this.registerModule('decoder', new Sequential(...dec));
    this.encoder.profileName = 'encoder';
    this.decoder.profileName = 'decoder';
    // the layers' input gradients take turns in two buffers (backward copies dz out of them)
    this.shareGradientBuffers();
  }

  override get typeName(): string { return 'AutoEncoder'; }

  /** Elements of one latent vector (2, 10, or 98 for the conv latent). */
  get latentDim(): number { return this.latentShape.reduce((a, b) => a * b, 1); }

  /** x [N,1,28,28] -> reconstruction [N,1,28,28]; the latent is kept in `lastLatent`. */
  forward(x: Tensor): Tensor {
    this.lastLatent = this.encoder.forward(x);
    return this.decoder.forward(this.lastLatent);
  }

  lastLatent: Tensor | null = null;

  protected override forgetForward(): void { this.lastLatent = null; }

  /**
   * Backward from dL/d(reconstruction). `latentGrad`, when given, is added to dL/dz before the
   * encoder's backward pass (a loss term on the latent, like the study's latent map).
   */
  backward(dy: Tensor, latentGrad?: Float32Array): Tensor {
    const dz = this.decoder.backward(dy);
    // dz lies in the shared gradient buffers, which the encoder's layers write next: a copy of its own
    // (n * latentDim floats), with the latent term added
    const g = this.scratch('dz', dz.size), d = dz.data;
    if (latentGrad) for (let i = 0; i < dz.size; i++) g[i] = d[i] + latentGrad[i];
    else g.set(d.subarray(0, dz.size));
    return this.encoder.backward(new Tensor(dz.shape, g, dz.layout));
  }

  /** Encodes n images (n*IMAGE_PIXELS floats in [-1,1], see data/image.ts) in eval mode; returns n*latentDim floats (a copy, or into `out`). */
  encode(x: Float32Array, n: number, batchSize = 64, out = new Float32Array(n * this.latentDim)): Float32Array {
    const D = this.latentDim;
    checkOut(out, n * D, 'encode');
    this.evalBatches('x', x, n, IMAGE_SHAPE, batchSize, (xb, i, b) => out.set(this.encoder.forward(xb).data.subarray(0, b * D), i * D));
    return out;
  }

  /** Decodes n latents (n*latentDim floats) in eval mode; returns n*IMAGE_PIXELS floats in the output's range (a copy, or into `out`). */
  decode(z: Float32Array, n: number, batchSize = 64, out = new Float32Array(n * IMAGE_PIXELS)): Float32Array {
    return decodeLatents(this, this.decoder, this.latentShape, z, n, batchSize, out);
  }

  /** Encodes then decodes n images; returns n*IMAGE_PIXELS floats (a copy). */
  reconstruct(x: Float32Array, n: number, batchSize = 64): Float32Array {
    return this.decode(this.encode(x, n, batchSize), n, batchSize);
  }
}

/**
 * The decode of both models (the autoencoder and the VAE): n latents (n*latentDim floats) through
 * `decoder` in eval mode, batchSize at a time, into out (n*IMAGE_PIXELS floats).
 */
export function decodeLatents(m: Module, decoder: Module, latentShape: readonly number[],
                              z: Float32Array, n: number, batchSize: number, out: Float32Array): Float32Array {
  checkOut(out, n * IMAGE_PIXELS, 'decode');
  m.evalBatches('zIn', z, n, latentShape, batchSize,
    (zb, i, b) => out.set(decoder.forward(zb).data.subarray(0, b * IMAGE_PIXELS), i * IMAGE_PIXELS));
  return out;
}

/** An `out` argument holds at least the floats a call writes (else one line saying so). */
export function checkOut(out: Float32Array, need: number, what: string): void {
  if (out.length < need) throw new RangeError(`${what}: out holds ${out.length} floats, expected at least ${need}`);
}
