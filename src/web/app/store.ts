/**
 * The page's state, in one place, and the topics panels listen to. A panel changes the state, then
 * says what changed (`emit`); the panels that show it redraw (`on`). Switching runs goes through
 * `beginRun`, which empties everything that belonged to the previous run before anything of the new
 * one arrives, so no panel can show the previous run's plane, grid, chart or decodes.
 */
import { nearestIndex, PCA } from '../../lab/analysis/projection.js';
import { dataRange, type Transform } from '../../viz/axes.js';

export interface RunSummary {
  name: string; status: string; config: Record<string, unknown> | null; result: Record<string, unknown> | null;
  hasModel?: boolean; hasLatents?: boolean; ownJob?: boolean; error?: string;
  /** Where the run is (status.json): the step reached, the steps planned, the checkpoint's step. */
  progress?: { step: number | null; totalSteps: number | null; checkpointStep: number | null; perEpoch?: number | null } | null;
  /** live.safetensors is there (a run training), and its mtime. */
  hasLive?: boolean; liveMtime?: number | null;
  /** A stopped run with a checkpoint that this server can continue (Resume). */
  canResume?: boolean;
  /** Files of the run that cannot be read, one line each ("config.json: not JSON (...)"). */
  problems?: string[];
}
export interface RunDetail extends RunSummary { metrics: MetricLine[]; snapshotSteps: number[]; hasSnapshotLabels: boolean }
export interface MetricLine { step: number; epoch: number; loss?: number; recon?: number; latent?: number; testLoss?: number; lr?: number; samplesPerSec?: number }

export interface Latents { z: Float32Array; n: number; dim: number; labels: Uint8Array; source: string }
export interface Pin { x: number; y: number; z: Float32Array; img: Float32Array }
export type View = { x: [number, number]; y: [number, number] };
export type Box = [number, number, number, number];

export const state = {
  runs: [] as RunSummary[],
  /** The run being shown (null while a run loads: nothing of the previous one stays). */
  run: null as RunDetail | null,
  /** The name of the run being opened or shown. */
  runName: '',
  /** Bumped by every run switch: work started for an older token is dropped when it returns. */
  token: 0,
  latents: null as Latents | null,
  px: new Float32Array(0), py: new Float32Array(0),
  pca: null as PCA | null,
  sliders: [] as number[],
  /**
   * How latents of more than two dimensions are put on the plane: PCA (with an inverse: the plane and
   * the sliders give a latent) or UMAP (panels/projection.ts; no inverse: a point of the plane stands
   * for the latent of the nearest encoded point).
   */
  projection: 'pca' as 'pca' | 'umap',
  hidden: new Set<number>(),
  view: null as View | null,
  /** The plane's data ↔ pixel transform of the last drawing (null: nothing drawn). */
  T: null as Transform | null,
  modelReady: false,
  latentDim: 0,
  pins: [] as Pin[],
  box: null as Box | null,
  /** The drawn digit's point on the plane and its latent vector. */
  drawn: null as { x: number; y: number; z?: Float32Array } | null,
  gen: null as { x: number; y: number; digit: number } | null,
  hover: null as { x: number; y: number } | null,
  /** The latent vector of the last point decoded under the pointer (the Decoded card shows its image). */
  hoverZ: null as Float32Array | null,
  metrics: [] as MetricLine[],
  lastSnap: -1,
  mode: 'pan' as 'pan' | 'box' | 'scrub',
  /** The user zoomed or panned: new snapshots keep the view. */
  userView: false,
  /**
   * The weights the worker decodes with: their file, their training step (null: not recorded) and,
   * for live weights, when the trainer published them (the file's mtime, ms since the epoch) and
   * when the first decode with them was shown.
   */
  weights: null as { file: string; step: number | null; publishedAt: number | null; heardAt?: number; loadedAt?: number; firstDecodeAt: number | null } | null,
};

/** Live-decode latencies measured on this page (ms from publication to the first decode shown), for tests and the note. */
export const liveLatencies: number[] = [];
/** The same, split: publication → event heard, → weights loaded in the worker, → first decode shown (ms). */
export const liveTimings: { heard: number; loaded: number; decoded: number }[] = [];

/**
 * Marks a canvas as painted with the current weights (data-weights: their step) and, the first time
 * after live weights were swapped in, records the latency from their publication to this decode.
 */
export function paintedWithWeights(canvas: HTMLElement): void {
  const w = state.weights;
  canvas.dataset.weights = w ? `${w.file}@${w.step ?? ''}` : '';
  if (!w || w.publishedAt === null || w.firstDecodeAt !== null) return;
  w.firstDecodeAt = Date.now();
  const ms = w.firstDecodeAt - w.publishedAt;
  liveLatencies.push(ms);
  liveTimings.push({ heard: (w.heardAt ?? NaN) - w.publishedAt, loaded: (w.loadedAt ?? NaN) - w.publishedAt, decoded: ms });
  document.body.dataset.liveTimings = JSON.stringify(liveTimings);
  document.body.dataset.liveLatency = String(Math.round(ms));
  document.body.dataset.liveLatencies = liveLatencies.map((v) => Math.round(v)).join(',');
}

/**
 * What changed: `plane` the points or the view, `overlay` the marks on the plane (pins, box, hover,
 * drawn, generated), `latents` new latents (legend, sliders), `metrics` the chart, `pins`, `model` the
 * weights (ready or not), `mapping` the plane → latent mapping (the sliders), `run` the run's
 * information, `reset` a run switch (each panel empties what it shows), `hover` the point under the
 * pointer was decoded (state.hoverZ), `view` the user moved the view (zoom, pan) or the box.
 */
export type Topic = 'plane' | 'overlay' | 'latents' | 'metrics' | 'pins' | 'model' | 'mapping' | 'run' | 'reset' | 'hover' | 'view';

const listeners = new Map<Topic, Set<() => void>>();

export function on(topic: Topic, fn: () => void): void {
  let s = listeners.get(topic);
  if (!s) listeners.set(topic, s = new Set());
  s.add(fn);
}

export function emit(...topics: Topic[]): void {
  for (const t of topics) for (const fn of listeners.get(t) ?? []) fn();
}

/**
 * Starts showing run `name`: a new token, and unless the same run is re-opened keeping its view,
 * everything of the previous run is dropped (and the panels told).
 */
export function beginRun(name: string, keepView: boolean): number {
  const token = ++state.token;
  const same = state.runName === name && keepView;
  state.runName = name;
  state.modelReady = false;
  state.lastSnap = -1;
  state.latentDim = 0;
  state.weights = null;
  if (!same) {
    state.run = null;
    state.metrics = [];
    state.latents = null;
    state.px = new Float32Array(0); state.py = new Float32Array(0);
    state.pca = null; state.sliders = []; state.projection = 'pca';
    state.pins = []; state.box = null; state.drawn = null; state.gen = null; state.hover = null; state.hoverZ = null;
    state.hidden.clear(); state.view = null; state.userView = false;
    emit('reset');
  }
  emit('model');
  return token;
}

// ------------------------------------------------------------------------------ plane ↔ latent

export function latentDim(): number { return state.latents?.dim ?? state.latentDim; }

/** Is the plane a UMAP embedding (no inverse) of the latents? */
export function planeIsUmap(): boolean { return state.projection === 'umap' && !!state.latents; }

/** A point of the plane → a latent vector (PCA plane plus the sliders for D > 2; UMAP: the nearest point's latent). */
export function fromPlane(x: number, y: number): Float32Array {
  const D = latentDim();
  if (planeIsUmap()) {
    const l = state.latents!, i = nearestOnPlane(x, y);
    return l.z.slice(i * l.dim, (i + 1) * l.dim);
  }
  const z = new Float32Array(D);
  if (D === 1) { z[0] = x; return z; }
  if (D === 2 || !state.pca) { z[0] = x; z[1] = y; return z; }
  const p = state.pca;
  for (let j = 0; j < D; j++) {
    let s = p.mean[j] + x * p.components[j] + y * p.components[D + j];
    for (let c = 2; c < p.k; c++) s += (state.sliders[c] ?? 0) * p.components[c * D + j];
    z[j] = s;
  }
  return z;
}

/** A latent vector → its point on the plane. */
export function toPlane(z: Float32Array): { x: number; y: number } {
  const D = z.length;
  if (D === 1) return { x: z[0], y: 0 };
  if (planeIsUmap()) {
    const i = nearestIndex(state.latents!.z, state.latents!.n, D, z);
    return { x: state.px[i], y: state.py[i] };
  }
  if (D === 2 || !state.pca) return { x: z[0], y: z[1] };
  const c = state.pca.transform(z, 1);
  return { x: c[0], y: c[1] };
}

/** The index of the point of the plane nearest to (x, y). */
export function nearestOnPlane(x: number, y: number): number {
  let best = 0, bestD = Infinity;
  for (let i = 0; i < state.px.length; i++) {
    const d = (state.px[i] - x) ** 2 + (state.py[i] - y) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}

/** PCA keeps this many components: the plane's two and a slider for each further one. */
export const PCA_COMPONENTS = 10;

/** New latents on the plane (PCA for D > 2; panels/projection.ts may put a UMAP embedding there later); keepView keeps the zoom and the PCA basis (a snapshot of the same run). */
export function setLatents(l: Latents | null, keepView = false): void {
  state.latents = l;
  state.projection = 'pca';
  if (!l) {
    state.px = new Float32Array(0); state.py = new Float32Array(0); state.pca = null;
  } else {
    const { z, n, dim } = l;
    const px = new Float32Array(n), py = new Float32Array(n);
    if (dim > 2) {
      if (!keepView || !state.pca || state.pca.dim !== dim) state.pca = PCA.fit(z, n, dim, Math.min(dim, PCA_COMPONENTS));
      const c = state.pca.transform(z, n);
      const k = state.pca.k;
      for (let i = 0; i < n; i++) { px[i] = c[i * k]; py[i] = c[i * k + 1]; }
    } else {
      state.pca = null;
      for (let i = 0; i < n; i++) { px[i] = z[i * dim]; py[i] = dim > 1 ? z[i * dim + 1] : 0; }
    }
    state.px = px; state.py = py;
    if (!keepView || !state.view) resetView();
  }
  emit('latents', 'plane');
}

/** Is the run shown a VAE (its plane is the prior N(0, I))? */
export function isVaeRun(): boolean { return state.run?.config?.vae === true; }

/** The view that shows every visible point (and, for a VAE, the prior's 2-sigma disc). */
export function resetView(): void {
  state.userView = false;
  const l = state.latents;
  const vis = (i: number): boolean => !!l && !state.hidden.has(l.labels[i]);
  state.view = { x: dataRange(state.px, 0.05, vis), y: dataRange(state.py, 0.05, vis) };
  if (isVaeRun() && l) {
    const c = toPlane(new Float32Array(l.dim)), r = 2.2;
    state.view = { x: [Math.min(state.view.x[0], c.x - r), Math.max(state.view.x[1], c.x + r)], y: [Math.min(state.view.y[0], c.y - r), Math.max(state.view.y[1], c.y + r)] };
  }
}
