/**
 * The analysis worker: one job per worker (the page ends a job by terminating its worker), so UMAP's
 * hundreds of epochs and a k-NN over thousands of latents never hold up the page. The math is the
 * library's (lab/analysis: projection.ts, eval.ts), the same the CLI uses.
 */
import { umap2d } from '../../lab/analysis/projection.js';
import { knn } from '../../lab/analysis/eval.js';
import type { AnalysisMessage, AnalysisRequest } from './analysis-protocol.js';

declare const self: DedicatedWorkerGlobalScope;

function post(m: AnalysisMessage, transfer: Transferable[] = []): void { self.postMessage(m, transfer); }

function runUmap(req: Extract<AnalysisRequest, { type: 'umap' }>): void {
  const t0 = performance.now();
  post({ type: 'progress', done: 0, total: 1, phase: 'neighbour graph' });
  let last = 0;
  const embedding = umap2d(req.z, req.n, req.dim, {
    seed: req.seed,
    onProgress: (epoch, nEpochs) => {
      // every epoch would flood the page with messages: about 50 reports in all
      if (epoch === 0 || epoch === nEpochs || epoch - last >= nEpochs / 50) { last = epoch; post({ type: 'progress', done: epoch, total: nEpochs, phase: 'layout epochs' }); }
    },
  });
  post({ type: 'umap', embedding, ms: performance.now() - t0 }, [embedding.buffer]);
}

function runKnn(req: Extract<AnalysisRequest, { type: 'knn' }>): void {
  const t0 = performance.now();
  const n = req.labels.length;
  const pred = knn(req.z, req.refZ, req.refLabels, req.dim, req.k);
  let right = 0;
  for (let i = 0; i < n; i++) if (pred[i] === req.labels[i]) right++;
  post({ type: 'knn', accuracy: n ? right / n : 0, n, references: req.refLabels.length, ms: performance.now() - t0 });
}

self.addEventListener('message', (e: MessageEvent<AnalysisRequest>) => {
  try {
    if (e.data.type === 'umap') runUmap(e.data); else runKnn(e.data);
  } catch (err) {
    post({ type: 'error', error: (err as Error).message ?? String(err) });
  }
});
