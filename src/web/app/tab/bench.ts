/**
 * The bench page (bench.html?threads=2&windows=5): the training step's samples/s in this browser's
 * worker on the wasm backend (src/lab/train/bench-step.ts, the same measurement as Node's in
 * src/bench/tab.ts). The result is shown and left in `self.benchResult` for a headless driver.
 */
import type { FromWorker, ToWorker } from './protocol.js';

const q = new URLSearchParams(location.search);
const out = document.getElementById('out')!;
const worker = new Worker('worker.js');
worker.addEventListener('message', (e: MessageEvent<FromWorker>) => {
  const m = e.data;
  if (m.type === 'bench') {
    (self as unknown as { benchResult: unknown }).benchResult = m.result;
    out.textContent = `${m.result.samplesPerSec.toFixed(0)} samples/s on ${m.result.backend}${m.result.relaxed ? ' (relaxed SIMD)' : ''} with ${m.result.threads} threads (batch ${m.result.batchSize})`;
  } else if (m.type === 'error') {
    (self as unknown as { benchResult: unknown }).benchResult = { error: m.error };
    out.textContent = m.error;
  }
});
const req: ToWorker = { type: 'bench', threads: Number(q.get('threads') ?? 2), windows: Number(q.get('windows') ?? 5) };
worker.postMessage(req);
