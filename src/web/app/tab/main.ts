/**
 * "Train in the tab": the user gives the MNIST or Fashion-MNIST IDX files, picks a recipe and trains
 * the study's convolutional autoencoder in a worker (./worker.ts) on the wasm backend with threads,
 * with a progress bar, the live latent plane of a fixed test subset and the live loss chart (drawn by
 * src/viz). Pause, resume, a new LR, downloads of model.safetensors and metrics.jsonl, and a
 * downloaded model reopened. A static page: any server with COOP/COEP headers serves it.
 */
import { drawCurves } from '../../../viz/curves.js';
import { drawScatter } from '../../../viz/scatter.js';
import { drawImageGrid } from '../../../viz/grid.js';
import { labelNamer } from '../../../viz/palette.js';
import type { TrainConfig } from '../../../lab/run/config.js';
import { IMAGE_H, IMAGE_W } from '../../../lab/data/image.js';
import type { DataFiles, FromWorker, PlaneMsg, ToWorker } from './protocol.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const form = $<HTMLFormElement>('form');
const status = $('status');
const progress = $<HTMLProgressElement>('progress');
const buttons = { train: $<HTMLButtonElement>('train'), pause: $<HTMLButtonElement>('pause'), stop: $<HTMLButtonElement>('stop'),
  setlr: $<HTMLButtonElement>('setlr'), dlmodel: $<HTMLButtonElement>('dlmodel'), dlmetrics: $<HTMLButtonElement>('dlmetrics') };
const lrInput = $<HTMLInputElement>('lr');

/** The four files by role, from their names. */
const ROLES: { key: keyof DataFiles; re: RegExp; name: string }[] = [
  { key: 'trainImages', re: /train-images/i, name: 'train-images-idx3-ubyte' },
  { key: 'trainLabels', re: /train-labels/i, name: 'train-labels-idx1-ubyte' },
  { key: 'testImages', re: /(t10k|test)-images/i, name: 't10k-images-idx3-ubyte' },
  { key: 'testLabels', re: /(t10k|test)-labels/i, name: 't10k-labels-idx1-ubyte' },
];
const files: Partial<Record<keyof DataFiles, File>> = {};
const metrics: Record<string, number>[] = [];
let plane: PlaneMsg | null = null;
let config: TrainConfig | null = null;
let runState = 'idle';
let worker = new Worker('worker.js');
(self as unknown as { tabState: () => unknown }).tabState = () => ({ runState, metrics: metrics.length, plane: plane?.step ?? null, dim: plane?.dim ?? null, status: status.textContent });

function setStatus(text: string, error = false): void { status.textContent = text; status.classList.toggle('error', error); }

function addFiles(list: FileList | File[]): void {
  const ignored: string[] = [];
  for (const f of Array.from(list)) {
    const role = ROLES.find((r) => r.re.test(f.name));
    if (role) files[role.key] = f; else ignored.push(f.name);
  }
  const ul = $('filelist');
  ul.replaceChildren(...ROLES.map((r) => {
    const li = document.createElement('li');
    const f = files[r.key];
    li.textContent = f ? `${r.name}: ${f.name} (${f.size >= 1e6 ? `${(f.size / 1e6).toFixed(1)} MB` : `${Math.ceil(f.size / 1e3)} kB`})` : `${r.name}: missing`;
    if (!f) li.className = 'bad';
    return li;
  }), ...ignored.map((n) => { const li = document.createElement('li'); li.className = 'bad'; li.textContent = `${n}: not an MNIST file name (expected train-images, train-labels, t10k-images or t10k-labels)`; return li; }));
  buttons.train.disabled = !haveAll() || runState === 'running' || runState === 'paused';
}
const haveAll = (): boolean => ROLES.every((r) => files[r.key]);

async function readFiles(): Promise<DataFiles> {
  const out: Partial<DataFiles> = {};
  for (const r of ROLES) out[r.key] = new Uint8Array(await files[r.key]!.arrayBuffer());
  return out as DataFiles;
}

function settings(): { settings: Partial<TrainConfig>; threads: number } {
  const v = (n: string): string => (form.elements.namedItem(n) as HTMLInputElement).value.trim();
  const num = (n: string): number | undefined => (v(n) === '' ? undefined : Number(v(n)));
  const latent = v('latent') === 'conv' ? 'conv' : Number(v('latent'));
  const recipe = v('recipe') === 'adam' ? { optimizer: 'adam' as const, lr: 1e-3, scheduler: 'none' as const } : { optimizer: 'sgd' as const, scheduler: 'cyclic' as const };
  const s: Partial<TrainConfig> = { dataset: v('dataset') as TrainConfig['dataset'], latent, ...recipe, epochs: num('epochs') ?? 1, batchSize: num('batchSize') ?? 64, seed: num('seed') ?? 0 };
  const ms = num('maxSteps');
  if (ms !== undefined) s.maxSteps = ms;
  const threads = num('threads') ?? Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4));
  return { settings: s, threads };
}

function post(m: ToWorker, transfer: Transferable[] = []): void { worker.postMessage(m, transfer); }

function download(name: string, data: BlobPart, type: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([data], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function drawLoss(): void {
  const c = $<HTMLCanvasElement>('loss'), ctx = c.getContext('2d')!;
  const tr = metrics.filter((m) => m.loss !== undefined), te = metrics.filter((m) => m.testLoss !== undefined);
  const series = [{ name: 'train', steps: tr.map((m) => m.step), values: tr.map((m) => m.loss) }];
  if (te.length) series.push({ name: 'test', steps: te.map((m) => m.step), values: te.map((m) => m.testLoss) });
  if (!tr.length) { ctx.clearRect(0, 0, c.width, c.height); return; }
  drawCurves(ctx, series, { x: 0, y: 0, width: c.width, height: c.height }, { logY: true, yLabel: 'MSE on [-1, 1]' });
}

function drawPlane(): void {
  if (!plane) return;
  const p = plane, n = p.labels.length, D = p.dim;
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) { x[i] = p.z[i * D]; y[i] = p.z[i * D + (D > 1 ? 1 : 0)]; }
  const c = $<HTMLCanvasElement>('plane');
  drawScatter(c.getContext('2d')!, { x, y, labels: p.labels, box: p.box, xLabel: D === 2 ? 'z1' : 'z[0]', yLabel: D === 2 ? 'z2' : 'z[1]',
    labelName: labelNamer(config?.dataset), title: `step ${p.step}` }, { x: 0, y: 0, width: c.width, height: c.height });
  $('planecap').textContent = D === 2 ? `the latents of ${n} fixed test images` : `the first two of ${D} latent components of ${n} fixed test images`;
  const g = $<HTMLCanvasElement>('grid');
  drawImageGrid(g.getContext('2d')!, p.grid, p.gridSize, p.gridSize, IMAGE_H, IMAGE_W, { x: 0, y: 0, width: g.width, height: g.height });
  $('gridcap').textContent = p.box ? 'decodes of an 8x8 grid over the box' : 'reconstructions of 64 of them';
}

function setRunState(s: string): void {
  runState = s;
  const live = s === 'running' || s === 'paused';
  buttons.train.disabled = live || !haveAll();
  buttons.pause.disabled = !live;
  buttons.pause.textContent = s === 'paused' ? 'Resume' : 'Pause';
  buttons.stop.disabled = !live;
  buttons.setlr.disabled = !live;
  buttons.dlmodel.disabled = s === 'idle' || s === 'starting';
  buttons.dlmetrics.disabled = metrics.length === 0;
}

function onMessage(e: MessageEvent<FromWorker>): void {
  const m = e.data;
  switch (m.type) {
    case 'ready':
      config = m.config;
      $('backend').textContent = `${m.backend}${m.relaxed ? ' (relaxed SIMD)' : ''}, ${m.threads} thread${m.threads > 1 ? 's' : ''}${m.note ? ` · ${m.note}` : ''}`;
      progress.max = m.totalSteps;
      setStatus(`training ${m.totalSteps} steps (${m.batchesPerEpoch} a epoch)`);
      break;
    case 'progress':
      progress.value = m.step;
      if (Number.isFinite(m.loss)) setStatus(`step ${m.step} / ${m.totalSteps} · epoch ${m.epoch + 1} · loss ${m.loss.toFixed(4)} · lr ${m.lr.toPrecision(3)} · ${Math.round(m.samplesPerSec)} samples/s · ${m.elapsed.toFixed(1)} s`);
      if (document.activeElement !== lrInput) lrInput.value = m.lr.toPrecision(4);
      break;
    case 'metrics': metrics.push(m.line); buttons.dlmetrics.disabled = false; drawLoss(); break;
    case 'plane': plane = m; drawPlane(); break;
    case 'state':
      setRunState(m.state);
      if (m.state === 'failed') setStatus(`training failed at step ${m.step}: ${m.error}`, true);
      else if (m.state !== 'running') setStatus(`${m.state} at step ${m.step}${m.state === 'paused' ? ' · Resume continues it' : ''}`);
      break;
    case 'weights': download('model.safetensors', m.bytes as Uint8Array<ArrayBuffer>, 'application/octet-stream'); break;
    case 'opened':
      config = m.config;
      metrics.length = 0; drawLoss(); // the loss chart was the last run's
      setRunState('opened');
      setStatus(`opened ${m.name}: latent ${String(m.config.latent)}, ${m.config.model} (on ${m.backend})`);
      break;
    case 'error': setStatus(m.error, true); break;
  }
}
worker.addEventListener('message', onMessage);

buttons.train.addEventListener('click', () => {
  void (async () => {
    if (runState !== 'idle') { worker.terminate(); worker = new Worker('worker.js'); worker.addEventListener('message', onMessage); }
    metrics.length = 0; plane = null; drawLoss();
    setRunState('starting');
    buttons.train.disabled = true;
    setStatus('reading the files…');
    const { settings: s, threads } = settings();
    const f = await readFiles();
    post({ type: 'start', settings: s, files: f, threads }, Object.values(f).map((a) => a.buffer));
  })().catch((e: unknown) => { setStatus(String((e as Error).message ?? e), true); setRunState('idle'); });
});
buttons.pause.addEventListener('click', () => post({ type: runState === 'paused' ? 'resume' : 'pause' }));
buttons.stop.addEventListener('click', () => post({ type: 'stop' }));
buttons.setlr.addEventListener('click', () => {
  const lr = Number(lrInput.value);
  if (!(lr > 0)) { setStatus(`learning rate: expected a positive number, got '${lrInput.value}'`, true); return; }
  post({ type: 'lr', lr });
});
buttons.dlmodel.addEventListener('click', () => post({ type: 'weights' }));
buttons.dlmetrics.addEventListener('click', () => download('metrics.jsonl', metrics.map((l) => `${JSON.stringify(l)}\n`).join(''), 'application/x-ndjson'));
$<HTMLInputElement>('openmodel').addEventListener('change', (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (!f) return;
  void (async () => {
    if (!files.testImages || !files.testLabels) { setStatus('give the data files first: the plane shows the test images\' latents', true); return; }
    if (runState === 'running' || runState === 'paused') { worker.terminate(); worker = new Worker('worker.js'); worker.addEventListener('message', onMessage); }
    const bytes = new Uint8Array(await f.arrayBuffer());
    const d = await readFiles();
    post({ type: 'open', bytes, name: f.name, files: d, threads: settings().threads }, [bytes.buffer]);
  })();
});
$<HTMLInputElement>('files').addEventListener('change', (e) => addFiles((e.target as HTMLInputElement).files ?? []));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); if (e.dataTransfer?.files) addFiles(e.dataTransfer.files); });
if (!crossOriginIsolated) setStatus('this page is not cross-origin isolated (serve it with COOP/COEP headers): training falls back to the slow reference backend');
addFiles([]);
