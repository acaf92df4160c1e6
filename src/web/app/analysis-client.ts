/** Runs one job in a fresh analysis worker (analysis-worker.ts): its progress, its answer, and a way to end it. */
import type { AnalysisMessage, AnalysisRequest } from './analysis-protocol.js';

type Answer<T extends AnalysisRequest['type']> = Extract<AnalysisMessage, { type: T }>;

export interface AnalysisJob<T extends AnalysisRequest['type']> {
  result: Promise<Answer<T>>;
  /** Ends the job (its worker is terminated); `result` rejects with "cancelled". */
  cancel(): void;
}

export function runAnalysis<R extends AnalysisRequest>(req: R, onProgress?: (done: number, total: number, phase: string) => void, transfer: Transferable[] = []): AnalysisJob<R['type']> {
  const worker = new Worker('/app/analysis-worker.js');
  let reject: (e: Error) => void = () => {};
  const result = new Promise<Answer<R['type']>>((resolve, rej) => {
    reject = rej;
    worker.addEventListener('message', (e: MessageEvent<AnalysisMessage>) => {
      const m = e.data;
      if (m.type === 'progress') { onProgress?.(m.done, m.total, m.phase); return; }
      worker.terminate();
      if (m.type === 'error') rej(new Error(m.error));
      else resolve(m as Answer<R['type']>);
    });
    worker.addEventListener('error', (e) => { worker.terminate(); rej(new Error(`analysis worker: ${e.message}`)); });
  });
  worker.postMessage(req, transfer);
  return { result, cancel: () => { worker.terminate(); reject(new Error('cancelled')); } };
}
