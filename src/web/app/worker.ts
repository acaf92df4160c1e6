/**
 * The model worker: latentlab's own engine in a dedicated Worker. The decoder and the encoder run on
 * the wasm backend (SIMD kernels on a shared WebAssembly.Memory; its thread pool is nested workers
 * that block in Atomics.wait, which a worker may do), or on the reference backend when the page is not
 * cross-origin isolated or WebAssembly threads are missing. Weights come from the run's model.safetensors,
 * or live.safetensors while it trains (loaded into the same model: no new memory per swap).
 */
import { ReferenceBackend } from '../../engine/kernels/reference.js';
import type { Backend } from '../../engine/kernels/index.js';
import { createWasmBackendFrom } from '../../engine/kernels/wasm/backend.js';
import { loadSafetensors, type StateDict } from '../../engine/state.js';
import { makeModel, type LatentModel } from '../../lab/models/family.js';
import type { WorkerRequest, WorkerResponse } from './protocol.js';

declare const self: DedicatedWorkerGlobalScope;

let backend: Backend | null = null;
let model: LatentModel | null = null;
/** Latents decoded in one forward pass: a whole grid (24 x 24 at most) at once, not in batches of 64. */
const DECODE_BATCH = 576;
let modelKey = '';

function reply(m: WorkerResponse, transfer: Transferable[] = []): void {
  self.postMessage(m, transfer);
}

async function init(req: Extract<WorkerRequest, { type: 'init' }>): Promise<WorkerResponse> {
  let note: string | undefined;
  if (req.prefer === 'wasm') {
    try {
      if (!(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) throw new Error('the page is not cross-origin isolated (no shared memory)');
      if (typeof SharedArrayBuffer === 'undefined') throw new Error('SharedArrayBuffer is missing');
      const threads = Math.max(1, Math.min(req.threads ?? navigator.hardwareConcurrency ?? 1, 4));
      const pending = createWasmBackendFrom({ wasm: new URL(req.wasmUrl, self.location.href), relaxedWasm: req.relaxedUrl ? new URL(req.relaxedUrl, self.location.href) : undefined, threads, canBlock: true });
      // a browser that cannot start the pool's nested workers may never answer: do not wait for ever
      let timer = 0;
      const timeout = new Promise<never>((_, reject) => { timer = self.setTimeout(() => reject(new Error('its worker threads did not start within 15 s')), 15_000); });
      const b = await Promise.race([pending, timeout]).catch((e: unknown) => {
        pending.then((late) => late.dispose(), () => {});
        throw e;
      }).finally(() => self.clearTimeout(timer));
      backend = b;
      return { id: req.id, ok: true, type: 'init', backend: b.name, threads: b.threads, relaxed: b.relaxed };
    } catch (e) {
      note = `wasm backend unavailable (${(e as Error).message}); using the reference backend`;
    }
  }
  backend = new ReferenceBackend();
  return { id: req.id, ok: true, type: 'init', backend: backend.name, threads: 1, relaxed: false, note };
}

async function load(req: Extract<WorkerRequest, { type: 'load' }>): Promise<WorkerResponse> {
  if (!backend) throw new Error('the worker has no backend yet');
  const t0 = performance.now();
  const res = await fetch(req.url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${req.url}: ${res.status} ${res.statusText}`);
  const { tensors, metadata } = loadSafetensors(new Uint8Array(await res.arrayBuffer()), req.url);
  let sd: StateDict = tensors;
  if ([...tensors.keys()].some((k) => k.startsWith('model.')))
    sd = new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v]));
  const key = JSON.stringify(req.config);
  let m: LatentModel;
  if (model && modelKey === key) m = model; // the same shape (a run's newer checkpoint): reuse its memory
  else {
    // hand the old model's arrays back to the wasm heap
    model?.dispose();
    model = null;
    // a VAE (its heads mu/logvar; the decoder takes the mean) or the plain autoencoder
    m = makeModel(req.config);
    m.to(backend);
  }
  m.loadStateDict(sd);
  m.eval();
  model = m;
  modelKey = key;
  const step = Number(metadata.step);
  return { id: req.id, ok: true, type: 'load', latentDim: m.latentDim, latentShape: m.latentShape, ms: performance.now() - t0, step: Number.isInteger(step) ? step : null };
}

self.addEventListener('message', (e: MessageEvent<WorkerRequest>) => {
  const req = e.data;
  void (async () => {
    try {
      switch (req.type) {
        case 'init': reply(await init(req)); break;
        case 'load': reply(await load(req)); break;
        case 'decode': {
          if (!model) throw new Error('no model loaded');
          const t0 = performance.now();
          const images = model.decode(req.z, req.n, DECODE_BATCH);
          reply({ id: req.id, ok: true, type: 'decode', images, ms: performance.now() - t0 }, [images.buffer]);
          break;
        }
        case 'encode': {
          if (!model) throw new Error('no model loaded');
          const t0 = performance.now();
          const z = model.encode(req.x, req.n, 64);
          reply({ id: req.id, ok: true, type: 'encode', z, ms: performance.now() - t0 }, [z.buffer]);
          break;
        }
      }
    } catch (err) {
      reply({ id: req.id, ok: false, error: (err as Error).message ?? String(err) });
    }
  })();
});
