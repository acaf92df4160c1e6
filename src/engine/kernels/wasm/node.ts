/**
 * Node entry of the wasm backend: enables relaxed SIMD in V8 when needed, reads build/wasm/*.wasm, runs the
 * workers on worker_threads (unref'd, so they never keep the process alive) and registers the backend
 * as 'wasm' in select.ts. Importing this module is what makes `--backend wasm` available in Node.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { registerBackend, type BackendOptions } from '../select.js';
import { createWasmBackendFrom, type WasmBackend, type WorkerPort } from './backend.js';

export { WasmBackend } from './backend.js';

const PLAIN_URL = new URL('../../../../build/wasm/kernels.wasm', import.meta.url);
const RELAXED_URL = new URL('../../../../build/wasm/kernels-relaxed.wasm', import.meta.url);

let relaxedFlagSet = false;
/** Node 20 ships relaxed SIMD behind a flag; it must be set before the module is compiled. */
function enableRelaxedSimd(): void {
  if (relaxedFlagSet) return;
  relaxedFlagSet = true;
  try { v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); } catch { /* older/newer V8: ignore */ }
}

export function nodeWorker(code: string): WorkerPort {
  const w = new Worker(code, { eval: true });
  const listeners: [string, (...a: unknown[]) => void][] = [];
  return {
    postMessage: m => w.postMessage(m),
    onMessage: cb => { listeners.push(['message', cb]); w.on('message', cb); },
    onError: cb => { listeners.push(['error', cb]); w.on('error', cb); },
    terminate: () => { void w.terminate(); },
    // the message listeners would keep the process alive: drop them once the worker is ready
    unref: () => {
      for (const [ev, cb] of listeners) w.off(ev, cb);
      w.on('error', () => { /* a worker error surfaces as a failed kernel call */ });
      w.unref();
    },
  };
}

export interface NodeWasmOptions extends BackendOptions {
  /** Use the plain SIMD128 build even when relaxed SIMD is available. */
  noRelaxed?: boolean;
  /** Spin iterations before a waiting thread blocks. */
  spin?: number;
}

let bytesCache: Promise<[Uint8Array, Uint8Array | undefined]> | undefined;
function loadBytes(): Promise<[Uint8Array, Uint8Array | undefined]> {
  bytesCache ??= (async () => {
    let plain: Uint8Array;
    try { plain = await readFile(PLAIN_URL); } catch {
      throw new Error(`wasm kernels not built (${PLAIN_URL.pathname} missing): run npm run build:wasm`);
    }
    const relaxed = await readFile(RELAXED_URL).then(b => new Uint8Array(b), () => undefined);
    return [new Uint8Array(plain), relaxed];
  })();
  bytesCache.catch(() => { bytesCache = undefined; });
  return bytesCache;
}

export async function createWasmBackend(opts: NodeWasmOptions = {}): Promise<WasmBackend> {
  if (!opts.noRelaxed) enableRelaxedSimd();
  const [plain, relaxed] = await loadBytes();
  return createWasmBackendFrom({
    wasm: plain,
    relaxedWasm: relaxed,
    noRelaxed: opts.noRelaxed,
    threads: opts.threads ?? os.availableParallelism(),
    createWorker: nodeWorker,
    canBlock: true,
    spin: opts.spin,
  });
}

registerBackend('wasm', opts => createWasmBackend(opts));
