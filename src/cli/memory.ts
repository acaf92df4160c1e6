/**
 * A full garbage collection on request. A finished training run drops its training buffers, its
 * optimiser state and the data set (about 120 MB), but V8 collects them only when it decides to; the
 * pictures that follow (Skia's 24 MB among them) would be added on top. Collecting once between the
 * two keeps the run's peak at the training's own.
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
