/** Messages between the page and the model worker (worker.ts). */
import type { ModelConfig } from '../../lab/models/autoencoder.js';

export type WorkerRequest =
  | { id: number; type: 'init'; prefer: 'wasm' | 'reference'; threads?: number; wasmUrl: string; relaxedUrl?: string }
  | { id: number; type: 'load'; url: string; config: Partial<ModelConfig> & { vae?: boolean } }
  | { id: number; type: 'decode'; z: Float32Array; n: number }
  | { id: number; type: 'encode'; x: Float32Array; n: number };

export type WorkerResponse =
  | { id: number; ok: true; type: 'init'; backend: string; threads: number; relaxed: boolean; note?: string }
  | { id: number; ok: true; type: 'load'; latentDim: number; latentShape: number[]; ms: number; step: number | null }
  | { id: number; ok: true; type: 'decode'; images: Float32Array; ms: number }
  | { id: number; ok: true; type: 'encode'; z: Float32Array; ms: number }
  | { id: number; ok: false; error: string };
