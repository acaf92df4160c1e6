/**
 * The training worker of the "train in the tab" page: the study's convolutional autoencoder trained
 * by the same step as `latentlab train` (src/lab/train/step.ts, TrainCore) on the wasm backend (SIMD
 * kernels on a shared WebAssembly.Memory, its thread pool nested workers), or the reference backend
 * when the page is not cross-origin isolated. Steps run in slices so that pause, resume, a new LR and
 * a weights request are answered between steps.
 */
import { ReferenceBackend } from '../../../engine/kernels/reference.js';
import type { Backend } from '../../../engine/kernels/index.js';
import { createWasmBackendFrom } from '../../../engine/kernels/wasm/backend.js';
import { loadSafetensors, saveSafetensors, type StateDict } from '../../../engine/state.js';
import { resolveTrainConfig, type TrainConfig } from '../../../lab/run/config.js';
import { splitFromBytes } from '../../../lab/data/idx-format.js';
import { TrainCore } from '../../../lab/train/step.js';
import { benchTrainStep } from '../../../lab/train/bench-step.js';
import { currentMomentum } from '../../../lab/train/optimizer.js';
import { VERSION } from '../../../version.js';
import type { DataFiles, FromWorker, ToWorker } from './protocol.js';

declare const self: DedicatedWorkerGlobalScope;

let backend: Backend | null = null;
let backendNote: string | undefined;
let core: TrainCore | null = null;
let state: 'idle' | 'running' | 'paused' | 'finished' | 'stopped' | 'failed' = 'idle';
let snapshotMs = 1000;
let elapsedBefore = 0;
let runStart = 0;

function send(m: FromWorker, transfer: Transferable[] = []): void { self.postMessage(m, transfer); }

async function getBackend(threads: number): Promise<Backend> {
  if (backend && backend.threads === threads) return backend;
  backend?.dispose?.();
  backend = null;
  try {
    if (!(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) throw new Error('the page is not cross-origin isolated (no shared memory)');
    const base = self.location.href;
    backend = await createWasmBackendFrom({ wasm: new URL('kernels.wasm', base), relaxedWasm: new URL('kernels-relaxed.wasm', base), threads, canBlock: true });
    backendNote = undefined;
  } catch (e) {
    backendNote = `wasm backend unavailable (${(e as Error).message}); training on the reference backend (slow)`;
    backend = new ReferenceBackend();
  }
  return backend;
}

async function splits(f: DataFiles): Promise<{ train: Awaited<ReturnType<typeof splitFromBytes>>; test: Awaited<ReturnType<typeof splitFromBytes>> }> {
  const train = await splitFromBytes(f.trainImages, f.trainLabels, { images: 'train images', labels: 'train labels' });
  const test = await splitFromBytes(f.testImages, f.testLabels, { images: 'test images', labels: 'test labels' });
  return { train, test };
}

/** The weights in PyTorch's state-dict names, with the recipe in the metadata (so the page can reopen them). */
function weightsBytes(c: TrainCore): Uint8Array {
  const { model, latent, activation, latentActivation, dataset, seed, optimizer } = c.config;
  return saveSafetensors(c.model.stateDict(), {
    format: 'pt', producer: `latentlab ${VERSION} (browser tab)`, step: String(c.step),
    config: JSON.stringify({ model, latent, activation, latentActivation, dataset, seed, optimizer }),
  });
}

function elapsed(): number { return elapsedBefore + (state === 'running' ? (performance.now() - runStart) / 1000 : 0); }

function sendPlane(c: TrainCore, loss: number): void {
  const s = c.snapshot(loss);
  send({ type: 'plane', step: s.step, z: s.z, dim: s.dim, labels: s.labels, grid: s.grid, gridSize: s.gridSize, box: s.box }, [s.z.buffer, s.grid.buffer]);
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

async function loop(): Promise<void> {
  const c = core!;
  const cfg = c.config, perEpoch = c.loader.batchesPerEpoch, B = cfg.batchSize;
  let planeEvery = snapshotMs, lastPlane = performance.now(), lastProgress = 0, windowStart = performance.now(), windowSteps = 0, sps = 0, loss = NaN;
  while (state === 'running' && c.step < c.totalSteps) {
    const sliceEnd = performance.now() + 50;
    while (state === 'running' && c.step < c.totalSteps && performance.now() < sliceEnd) {
      const r = c.next();
      loss = r.loss;
      windowSteps++;
      const now = performance.now();
      if (now - windowStart > 1000 || c.step === c.totalSteps) {
        sps = (windowSteps * B) / ((now - windowStart) / 1000);
        windowStart = now; windowSteps = 0;
      }
      if (c.step % cfg.logEvery === 0 || c.step === c.totalSteps) {
        const m = currentMomentum(c.opt);
        send({ type: 'metrics', line: { step: c.step, epoch: r.epoch, loss: r.loss, recon: r.recon, ...(r.latent !== undefined ? { latent: r.latent } : {}),
          lr: c.lr, ...(m !== undefined ? { momentum: m } : {}), elapsed: Math.round(elapsed() * 1000) / 1000, samplesPerSec: Math.round(sps) } });
      }
      if (r.batch + 1 === perEpoch) {
        const { mse } = c.evaluate();
        if (c.sched.kind === 'plateau') c.sched.s.step(mse);
        send({ type: 'metrics', line: { step: c.step, epoch: r.epoch, testLoss: mse, elapsed: Math.round(elapsed() * 1000) / 1000 } });
      }
      if (now - lastProgress > 100 || c.step === c.totalSteps) {
        lastProgress = now;
        send({ type: 'progress', step: c.step, totalSteps: c.totalSteps, epoch: r.epoch, loss: r.loss, lr: c.lr, samplesPerSec: sps, elapsed: elapsed() });
      }
      if (now - lastPlane > planeEvery) {
        // the live plane costs an encode of the subset: at most about a tenth of the time goes there
        const t = performance.now();
        sendPlane(c, loss);
        const after = performance.now();
        planeEvery = Math.max(snapshotMs, 9 * (after - t));
        lastPlane = after; windowStart += after - t;
      }
    }
    await tick(); // pause, resume, lr and weights requests are answered here
  }
  if (state === 'running') {
    elapsedBefore = elapsed();
    state = 'finished';
    sendPlane(c, loss);
    send({ type: 'state', state: 'finished', step: c.step });
  }
}

/** The last loop() (its steps use core): resolved once it has returned. */
let loopDone: Promise<void> = Promise.resolve();
function runLoop(): Promise<void> { loopDone = loop(); return loopDone; }

/** Stops the run in progress, if any, and waits for its loop to return (before its core or backend goes). */
async function stopRun(): Promise<void> {
  if (state === 'running' || state === 'paused') state = 'stopped';
  await loopDone.catch(() => { /* reported when it failed */ });
}

/** Returns the last run's memory to the backend before the next one (the wasm memory never shrinks). */
function release(): void {
  if (core && core.backend === backend) core.dispose();
  core = null;
}

async function start(req: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  await stopRun();
  const config: TrainConfig = resolveTrainConfig({}, { snapshotPoints: 1000, ...req.settings, backend: 'wasm', threads: req.threads });
  const data = await splits(req.files);
  const b = await getBackend(req.threads);
  release();
  core = new TrainCore(config, data, b);
  snapshotMs = req.snapshotMs ?? 1000;
  elapsedBefore = 0;
  send({ type: 'ready', backend: b.name, threads: b.threads, relaxed: Boolean((b as { relaxed?: boolean }).relaxed), note: backendNote,
    totalSteps: core.totalSteps, batchesPerEpoch: core.loader.batchesPerEpoch, config });
  sendPlane(core, NaN);
  state = 'running';
  runStart = performance.now();
  send({ type: 'state', state: 'running', step: 0 });
  await runLoop();
}

async function open(req: Extract<ToWorker, { type: 'open' }>): Promise<void> {
  const { tensors, metadata } = loadSafetensors(req.bytes, req.name);
  let sd: StateDict = tensors;
  if ([...tensors.keys()].some((k) => k.startsWith('model.')))
    sd = new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v]));
  let recipe: Partial<TrainConfig>;
  if (metadata.config) {
    try { recipe = JSON.parse(metadata.config) as Partial<TrainConfig>; } catch (e) { throw new Error(`${req.name}: its metadata 'config' is not JSON`, { cause: e }); }
  } else {
    // a model made elsewhere: the latent size from the encoder's last layer
    const w = sd.get('encoder.fc.weight') ?? [...sd].find(([k]) => /^encoder\..*weight$/.test(k) && sd.get(k)!.shape.length === 2)?.[1];
    recipe = { latent: w ? w.shape[0] : 'conv' };
  }
  const config = resolveTrainConfig({}, { snapshotPoints: 1000, ...recipe, backend: 'wasm', threads: req.threads, maxSteps: 1 });
  if (!req.files) throw new Error('give the test images and labels first: the plane shows their latents');
  await stopRun();
  const data = await splits(req.files);
  const b = await getBackend(req.threads);
  state = 'idle';
  release();
  const c = new TrainCore(config, data, b);
  try {
    c.model.loadStateDict(sd);
  } catch (e) {
    throw new Error(`${req.name}: does not fit the model ${JSON.stringify(recipe)} (${(e as Error).message.slice(0, 200)})`, { cause: e });
  }
  c.model.eval();
  core = c;
  sendPlane(c, NaN);
  send({ type: 'opened', name: req.name, config, backend: b.name });
}

self.addEventListener('message', (e: MessageEvent<ToWorker>) => {
  const req = e.data;
  void (async () => {
    try {
      switch (req.type) {
        case 'start': await start(req); break;
        case 'open': await open(req); break;
        case 'bench': send({ type: 'bench', result: benchTrainStep(await getBackend(req.threads), { windows: req.windows }) }); break;
        case 'pause':
          if (state === 'running') { elapsedBefore = elapsed(); state = 'paused'; send({ type: 'state', state: 'paused', step: core!.step }); }
          break;
        case 'resume':
          if (state === 'paused') { state = 'running'; runStart = performance.now(); send({ type: 'state', state: 'running', step: core!.step }); await runLoop(); }
          break;
        case 'stop':
          if (state === 'running' || state === 'paused') { elapsedBefore = elapsed(); state = 'stopped'; send({ type: 'state', state: 'stopped', step: core!.step }); }
          break;
        case 'lr':
          if (!core) throw new Error('no run yet');
          core.setLr(req.lr);
          send({ type: 'progress', step: core.step, totalSteps: core.totalSteps, epoch: 0, loss: NaN, lr: core.lr, samplesPerSec: 0, elapsed: elapsed() });
          break;
        case 'weights': {
          if (!core) throw new Error('no model yet');
          const bytes = weightsBytes(core);
          send({ type: 'weights', bytes, step: core.step }, [bytes.buffer]);
          break;
        }
      }
    } catch (err) {
      const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      if (state === 'running') { state = 'failed'; send({ type: 'state', state: 'failed', error: msg, step: core?.step ?? 0 }); }
      else send({ type: 'error', error: msg });
    }
  })();
});
