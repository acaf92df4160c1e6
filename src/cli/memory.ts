/**
 * A full garbage collection on request. A finished training run drops its training buffers, its
 * optimiser state and the data set (about 120 MB), but V8 collects them only when it decides to; the
 * pictures that follow (Skia's 24 MB among them) would be added on top. Collecting between the two
 * keeps the run's peak at the training's own.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      // exposes gc() to contexts created from now on (the documented `--expose-gc`, set at run time)
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;   // a runtime without it: V8 collects in its own time
    }
  }
  gcFn?.();
}

/**
 * Collects, lets the collected memory really go, and collects again: array buffers are swept and
 * native memory (the addon's buffers) finalized after a collection, in tasks of their own; the
 * second collection takes what those finalizers let go. Measured after a training run: the data set
 * and the native training buffers (about 100 MB) were still counted after one plain collection.
 */
export async function releaseMemory(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
