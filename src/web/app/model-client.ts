/** The model worker (worker.ts) seen from the page: requests by id, and the engine's start. */
import { $, showError } from './dom.js';
import type { WorkerRequest, WorkerResponse } from './protocol.js';

type RequestBody = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

export class ModelClient {
  private readonly worker = new Worker('/app/worker.js');
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void }>();
  /** One line on the backend (shown in the header). */
  note = '';
  /** Resolves once the worker has its backend (a model is loaded only after that). */
  ready: Promise<void> = Promise.resolve();

  constructor() {
    this.worker.addEventListener('message', (e: MessageEvent<WorkerResponse>) => {
      const p = this.pending.get(e.data.id);
      if (!p) return;
      this.pending.delete(e.data.id);
      if (e.data.ok) p.resolve(e.data); else p.reject(new Error(e.data.error));
    });
    this.worker.addEventListener('error', (e) => showError(`model worker: ${e.message}`));
  }

  call(req: RequestBody, transfer: Transferable[] = []): Promise<Extract<WorkerResponse, { ok: true }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: WorkerResponse) => void, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  async decode(z: Float32Array, n: number): Promise<{ images: Float32Array; ms: number }> {
    const r = await this.call({ type: 'decode', z, n }) as Extract<WorkerResponse, { type: 'decode' }>;
    return { images: r.images, ms: r.ms };
  }

  async encode(x: Float32Array, n: number): Promise<{ z: Float32Array; ms: number }> {
    const r = await this.call({ type: 'encode', x, n }) as Extract<WorkerResponse, { type: 'encode' }>;
    return { z: r.z, ms: r.ms };
  }

  /** Starts the worker's backend (wasm, or reference with ?backend=reference). */
  start(): Promise<void> {
    const prefer = new URLSearchParams(location.search).get('backend') === 'reference' ? 'reference' : 'wasm';
    this.ready = (async () => {
      try {
        const r = await this.call({ type: 'init', prefer, wasmUrl: '/app/kernels.wasm', relaxedUrl: '/app/kernels-relaxed.wasm' }) as Extract<WorkerResponse, { type: 'init' }>;
        this.note = `model worker: ${r.backend} backend${r.backend === 'wasm' ? `, ${r.threads} thread${r.threads > 1 ? 's' : ''}${r.relaxed ? ', relaxed SIMD' : ''}` : ''}`;
        document.body.dataset.backend = r.backend;
        $('engine-status').textContent = this.note + (r.note ? ` (${r.note})` : '');
      } catch (e) {
        showError(`model worker: ${(e as Error).message}`);
      }
    })();
    return this.ready;
  }
}

/** The page's one model worker. */
export const model = new ModelClient();
