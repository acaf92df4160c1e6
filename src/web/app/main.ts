/**
 * The explorer page: the runs, the latent plane (scatter, zoom, pan, legend, hover decode, pins, box
 * grid), the draw pad, generation for supervised runs, sliders through higher-dimensional latents, and
 * live training over server-sent events. The model runs in a dedicated Worker (worker.ts) on
 * latentlab's engine; this file only draws and talks to the server and the worker.
 */
import { loadSafetensors } from '../../engine/state.js';
import { mnistFromPixels } from '../../lab/data/preprocess.js';
import { PCA } from '../../lab/analysis/projection.js';
import { dataRange, type Transform } from '../../viz/axes.js';
import { drawCurves, type CurveSeries } from '../../viz/curves.js';
import { lossRunFromMetrics } from '../../viz/figures.js';
import { drawImageGrid, toGrey } from '../../viz/grid.js';
import { labelColor } from '../../viz/palette.js';
import { drawScatter } from '../../viz/scatter.js';
import type { WorkerRequest, WorkerResponse } from './protocol.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W } from '../../lab/data/image.js';

// ------------------------------------------------------------------------------------------ helpers

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e as T;
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v; else if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function showError(msg: string | null): void {
  const box = $('error');
  if (!msg) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  box.textContent = msg;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { cache: 'no-store' });
  const body = await res.json().catch(() => ({})) as { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${url}: ${res.status}`);
  return body as T;
}

async function getBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

const fmt = (v: number, d = 3): string => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(d));

function gauss(): number {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

/** Paints one 28x28 image (values in [-1, 1]) into a 28x28 canvas. */
function paintDigit(canvas: HTMLCanvasElement, img: Float32Array, offset = 0): void {
  const ctx = canvas.getContext('2d')!;
  const id = ctx.createImageData(IMAGE_W, IMAGE_H);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const g = toGrey(img[offset + i]);
    id.data[4 * i] = g; id.data[4 * i + 1] = g; id.data[4 * i + 2] = g; id.data[4 * i + 3] = 255;
  }
  ctx.putImageData(id, 0, 0);
  canvas.dataset.count = String(Number(canvas.dataset.count ?? 0) + 1);
}

/** Sizes a canvas's backing store to its CSS box times devicePixelRatio; returns the CSS size. */
function fitCanvas(c: HTMLCanvasElement): { w: number; h: number; dpr: number } {
  const r = c.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(r.width)), h = Math.max(1, Math.round(r.height));
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  return { w, h, dpr };
}

// ------------------------------------------------------------------------------------ model worker

type RequestBody = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

class ModelClient {
  private readonly worker = new Worker('/app/worker.js');
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void }>();
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
}

// ------------------------------------------------------------------------------------------- state

interface RunSummary {
  name: string; status: string; config: Record<string, unknown> | null; result: Record<string, unknown> | null;
  hasModel?: boolean; hasLatents?: boolean; ownJob?: boolean; error?: string;
}
interface RunDetail extends RunSummary { metrics: MetricLine[]; snapshotSteps: number[]; hasSnapshotLabels: boolean }
interface MetricLine { step: number; epoch: number; loss?: number; recon?: number; latent?: number; testLoss?: number; lr?: number; samplesPerSec?: number }

interface Latents { z: Float32Array; n: number; dim: number; labels: Uint8Array; source: string }
interface Pin { x: number; y: number; z: Float32Array; img: Float32Array }
type View = { x: [number, number]; y: [number, number] };

const state = {
  runs: [] as RunSummary[],
  run: null as RunDetail | null,
  token: 0,
  latents: null as Latents | null,
  px: new Float32Array(0), py: new Float32Array(0),
  pca: null as PCA | null,
  sliders: [] as number[],
  hidden: new Set<number>(),
  view: null as View | null,
  T: null as Transform | null,
  modelReady: false,
  latentDim: 0,
  pins: [] as Pin[],
  box: null as [number, number, number, number] | null,
  drawn: null as { x: number; y: number } | null,
  gen: null as { x: number; y: number; digit: number } | null,
  hover: null as { x: number; y: number } | null,
  metrics: [] as MetricLine[],
  lastSnap: -1,
  es: null as EventSource | null,
  mode: 'pan' as 'pan' | 'box',
  /** The user zoomed or panned: new snapshots keep the view. */
  userView: false,
};

const model = new ModelClient();
let engineNote = '';
/** The worker must have its backend before a model is loaded. */
let engineReady: Promise<void> = Promise.resolve();

// ------------------------------------------------------------------------------------ latent mapping

function latentDim(): number { return state.latents?.dim ?? state.latentDim; }

/** A point of the plane → a latent vector (PCA plane plus the sliders for D > 2). */
function fromPlane(x: number, y: number): Float32Array {
  const D = latentDim();
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
function toPlane(z: Float32Array): { x: number; y: number } {
  const D = z.length;
  if (D === 1) return { x: z[0], y: 0 };
  if (D === 2 || !state.pca) return { x: z[0], y: z[1] };
  const c = state.pca.transform(z, 1);
  return { x: c[0], y: c[1] };
}

function setLatents(l: Latents | null, keepView = false): void {
  state.latents = l;
  if (!l) { state.px = new Float32Array(0); state.py = new Float32Array(0); state.pca = null; renderDims(); drawPlane(); return; }
  const { z, n, dim } = l;
  const px = new Float32Array(n), py = new Float32Array(n);
  if (dim > 2) {
    if (!keepView || !state.pca || state.pca.dim !== dim) state.pca = PCA.fit(z, n, dim, Math.min(dim, 8));
    const c = state.pca.transform(z, n);
    const k = state.pca.k;
    for (let i = 0; i < n; i++) { px[i] = c[i * k]; py[i] = c[i * k + 1]; }
  } else {
    state.pca = null;
    for (let i = 0; i < n; i++) { px[i] = z[i * dim]; py[i] = dim > 1 ? z[i * dim + 1] : 0; }
  }
  state.px = px; state.py = py;
  if (!keepView || !state.view) resetView();
  renderDims();
  drawPlane();
}

function resetView(): void {
  state.userView = false;
  const vis = (i: number): boolean => !!state.latents && !state.hidden.has(state.latents.labels[i]);
  state.view = { x: dataRange(state.px, 0.05, vis), y: dataRange(state.py, 0.05, vis) };
}

function parseLatents(bytes: Uint8Array, source: string): Latents {
  const { tensors } = loadSafetensors(bytes, source);
  const z = tensors.get('z'), lab = tensors.get('labels');
  if (!z || !lab || z.shape.length !== 2) throw new Error(`${source}: expected z [N, D] and labels [N]`);
  return { z: z.data as Float32Array, n: z.shape[0], dim: z.shape[1], labels: Uint8Array.from(lab.data as ArrayLike<number | bigint>, Number), source };
}

// ---------------------------------------------------------------------------------------- drawing

const plane = $<HTMLCanvasElement>('plane');
const overlay = $<HTMLCanvasElement>('overlay');

function axisLabels(): { xLabel: string; yLabel: string } {
  const D = latentDim();
  if (D > 2 && state.pca) {
    const r = state.pca.explainedRatio;
    return { xLabel: `PC1 (${(100 * r[0]).toFixed(1)}%)`, yLabel: `PC2 (${(100 * r[1]).toFixed(1)}%)` };
  }
  return { xLabel: 'z₁', yLabel: D > 1 ? 'z₂' : '' };
}

let planeQueued = false;
function drawPlane(): void {
  if (planeQueued) return;
  planeQueued = true;
  requestAnimationFrame(() => { planeQueued = false; drawPlaneNow(); });
}

function drawPlaneNow(): void {
  const { w, h, dpr } = fitCanvas(plane);
  fitCanvas(overlay);
  const ctx = plane.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const l = state.latents;
  if (!l || !state.view) {
    ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
    ctx.fillText(state.run ? 'no latents yet (they appear with the first snapshot or at the end of training)' : 'open a run', w / 2, h / 2);
    state.T = null;
    overlay.dataset.points = '0';
    drawOverlay();
    return;
  }
  state.T = drawScatter(ctx, {
    x: state.px, y: state.py, labels: l.labels, xRange: state.view.x, yRange: state.view.y, hidden: state.hidden,
    legend: false, pointSize: l.n > 4000 ? 3 : 4, alpha: 0.75, ...axisLabels(),
  }, { x: 0, y: 0, width: w, height: h });
  overlay.dataset.points = String(l.n);
  drawOverlay();
}

function drawOverlay(): void {
  const { w, h, dpr } = fitCanvas(overlay);
  const ctx = overlay.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const T = state.T;
  if (!T) return;
  ctx.save();
  ctx.beginPath();
  ctx.rect(T.plot.x, T.plot.y, T.plot.width, T.plot.height);
  ctx.clip();
  const cross = (x: number, y: number, color: string, label?: string): void => {
    const px = T.toPx(x), py = T.toPy(y);
    ctx.strokeStyle = '#ffffff'; ctx.lineWidth = 4;
    ctx.beginPath(); ctx.moveTo(px - 7, py - 7); ctx.lineTo(px + 7, py + 7); ctx.moveTo(px - 7, py + 7); ctx.lineTo(px + 7, py - 7); ctx.stroke();
    ctx.strokeStyle = color; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(px - 7, py - 7); ctx.lineTo(px + 7, py + 7); ctx.moveTo(px - 7, py + 7); ctx.lineTo(px + 7, py - 7); ctx.stroke();
    if (label) {
      ctx.font = 'bold 13px sans-serif'; ctx.lineWidth = 3; ctx.strokeStyle = '#ffffff'; ctx.fillStyle = color;
      ctx.strokeText(label, px + 9, py - 8); ctx.fillText(label, px + 9, py - 8);
    }
  };
  state.pins.forEach((p, i) => cross(p.x, p.y, '#000000', String(i + 1)));
  if (state.drawn) {
    const px = T.toPx(state.drawn.x), py = T.toPy(state.drawn.y);
    ctx.fillStyle = '#ffeb3b'; ctx.strokeStyle = '#000000'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(px, py, 8, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
    ctx.font = 'bold 13px sans-serif'; ctx.fillStyle = '#000000'; ctx.fillText('drawn', px + 11, py - 8);
  }
  if (state.gen) cross(state.gen.x, state.gen.y, labelColor(state.gen.digit), `gen ${state.gen.digit}`);
  const box = drag && drag.kind === 'box' && drag.moved ? [T.fromPx(drag.x0), T.fromPy(drag.y0), T.fromPx(drag.x), T.fromPy(drag.y)] : state.box;
  if (box) {
    const x0 = T.toPx(Math.min(box[0], box[2])), x1 = T.toPx(Math.max(box[0], box[2]));
    const y0 = T.toPy(Math.max(box[1], box[3])), y1 = T.toPy(Math.min(box[1], box[3]));
    ctx.setLineDash([8, 5]); ctx.lineWidth = 2; ctx.strokeStyle = '#000000';
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.setLineDash([]);
  }
  if (state.hover) {
    const px = T.toPx(state.hover.x), py = T.toPy(state.hover.y);
    ctx.strokeStyle = 'rgba(0,0,0,0.6)'; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(px, py, 6, 0, Math.PI * 2); ctx.stroke();
  }
  ctx.restore();
}

function renderLegend(): void {
  const box = $('legend');
  box.replaceChildren();
  const l = state.latents;
  const present = new Set<number>(l ? l.labels : []);
  for (let d = 0; d < 10; d++) {
    const on = !state.hidden.has(d);
    const b = el('button', { type: 'button', 'aria-pressed': String(on), title: `show or hide digit ${d}`, 'data-digit': String(d) },
      el('span', { class: 'sw' }), String(d));
    (b.firstChild as HTMLElement).style.background = labelColor(d);
    b.disabled = !!l && !present.has(d);
    b.addEventListener('click', (e) => {
      if ((e as MouseEvent).altKey) { state.hidden = new Set([...Array(10).keys()].filter((k) => k !== d)); }
      else if (state.hidden.has(d)) state.hidden.delete(d); else state.hidden.add(d);
      renderLegend();
      drawPlane();
    });
    box.append(b);
  }
  const all = el('button', { type: 'button', text: 'All' });
  all.addEventListener('click', () => { state.hidden.clear(); renderLegend(); drawPlane(); });
  box.append(all);
}

function renderDims(): void {
  const box = $('dims');
  box.replaceChildren();
  const p = state.pca;
  const cap = $('plane-caption');
  const D = latentDim();
  if (!p || D <= 2) {
    box.hidden = true;
    state.sliders = [];
    cap.textContent = state.latents ? `${D}-D latent: the plane is the latent space itself (${state.latents.source})` : '';
    return;
  }
  cap.textContent = `${D}-D latent: the PCA plane of the latents (${state.latents?.source}); the sliders move along the next principal components.`;
  box.hidden = false;
  state.sliders = new Array(p.k).fill(0);
  for (let c = 2; c < p.k; c++) {
    const sd = Math.sqrt(p.variances[c]) || 1;
    const input = el('input', { type: 'range', min: String(-3 * sd), max: String(3 * sd), step: String(sd / 50), value: '0', 'aria-label': `principal component ${c + 1}` });
    const out = el('output', { text: '0.00' });
    input.addEventListener('input', () => {
      state.sliders[c] = Number(input.value);
      out.textContent = Number(input.value).toFixed(2);
      if (state.hover) void hoverDecode(state.hover.x, state.hover.y);
      if (state.box) void decodeGrid();
    });
    box.append(el('label', {}, `PC${c + 1}`, input, out));
  }
}

function drawCurve(): void {
  const c = $<HTMLCanvasElement>('curve');
  const { w, h, dpr } = fitCanvas(c);
  const ctx = c.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const m = state.metrics;
  // like with like: the training reconstruction term against the test MSE; the latent-map term apart
  const { train: tr, test: te, latent } = lossRunFromMetrics('', m);
  const series: CurveSeries[] = [];
  if (tr.steps.length) series.push({ name: 'train reconstruction', ...tr });
  if (te.steps.length) series.push({ name: 'test reconstruction', ...te, dashed: true });
  if (latent) series.push({ name: 'latent-map term (train)', ...latent, color: '#888888' });
  if (!series.length) {
    ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
    ctx.fillText(state.run ? 'no metrics yet' : '', w / 2, h / 2);
  } else {
    drawCurves(ctx, series, { x: 0, y: 0, width: w, height: h }, { logY: true, title: undefined });
  }
  c.dataset.points = String(tr.steps.length);
}

// ---------------------------------------------------------------------------------------- decoding

let hoverBusy = false;
let hoverNext: { x: number; y: number } | null = null;

async function hoverDecode(x: number, y: number): Promise<void> {
  hoverNext = { x, y };
  if (hoverBusy || !state.modelReady) return;
  hoverBusy = true;
  const token = state.token;
  try {
    while (hoverNext && token === state.token) {
      const p = hoverNext;
      hoverNext = null;
      const z = fromPlane(p.x, p.y);
      const { images, ms } = await model.decode(z, 1);
      if (token !== state.token) break;
      paintDigit($<HTMLCanvasElement>('decoded'), images);
      $('decoded-z').textContent = `z = [${Array.from(z.slice(0, 8), (v) => v.toFixed(2)).join(', ')}${z.length > 8 ? ', …' : ''}]`;
      $('decode-time').textContent = `decoded in ${ms.toFixed(1)} ms`;
    }
  } catch (e) {
    showError(`decode: ${(e as Error).message}`);
  } finally {
    hoverBusy = false;
  }
}

async function pinAt(x: number, y: number): Promise<void> {
  if (!state.modelReady) return;
  const z = fromPlane(x, y);
  const { images } = await model.decode(z, 1);
  state.pins.push({ x, y, z, img: images });
  paintDigit($<HTMLCanvasElement>('decoded'), images);
  renderPins();
  drawOverlay();
}

function renderPins(): void {
  const ul = $('pins');
  ul.replaceChildren();
  state.pins.forEach((p, i) => {
    const c = el('canvas', { width: String(IMAGE_W), height: String(IMAGE_H), role: 'img', 'aria-label': `pinned point ${i + 1}` }) as HTMLCanvasElement;
    paintDigit(c, p.img);
    const b = el('button', { type: 'button', 'aria-label': `remove pin ${i + 1}`, text: '×' });
    b.addEventListener('click', () => { state.pins.splice(i, 1); renderPins(); drawOverlay(); });
    ul.append(el('li', {}, c, `${i + 1}: (${p.x.toFixed(2)}, ${p.y.toFixed(2)})`, b));
  });
  $('pins').dataset.count = String(state.pins.length);
}

async function decodeGrid(): Promise<void> {
  if (!state.box || !state.modelReady) return;
  const gInput = $<HTMLInputElement>('grid-size');
  const g = Math.max(2, Math.min(24, Math.round(Number(gInput.value) || 10)));
  gInput.value = String(g);
  const [bx0, by0, bx1, by1] = state.box;
  const x0 = Math.min(bx0, bx1), x1 = Math.max(bx0, bx1), y0 = Math.min(by0, by1), y1 = Math.max(by0, by1);
  const D = latentDim();
  const z = new Float32Array(g * g * D);
  // row r from the top (largest y), column c from the left: the grid reads like the plane
  for (let r = 0; r < g; r++) for (let c = 0; c < g; c++) {
    const x = x0 + (c * (x1 - x0)) / (g - 1), y = y1 - (r * (y1 - y0)) / (g - 1);
    z.set(fromPlane(x, y), (r * g + c) * D);
  }
  const token = state.token;
  const { images, ms } = await model.decode(z, g * g);
  if (token !== state.token) return;
  const canvas = $<HTMLCanvasElement>('grid');
  canvas.hidden = false;
  const { w, dpr } = fitCanvas(canvas);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  const side = Math.round(w * dpr);
  drawImageGrid(ctx, images, g, g, IMAGE_H, IMAGE_W, { x: 0, y: 0, width: side, height: side }, { gap: Math.max(1, Math.round(dpr)) });
  canvas.dataset.cells = String(g * g);
  canvas.hidden = false;
  $('grid-caption').textContent = `${g}×${g} decoded over x ${fmt(x0, 2)}…${fmt(x1, 2)}, y ${fmt(y0, 2)}…${fmt(y1, 2)} (${ms.toFixed(0)} ms)`;
}

// --------------------------------------------------------------------------------- plane interaction

interface Drag { id: number; kind: 'pan' | 'box'; x0: number; y0: number; x: number; y: number; moved: boolean; view0: View }
let drag: Drag | null = null;

function local(e: { clientX: number; clientY: number }): { x: number; y: number } {
  const r = overlay.getBoundingClientRect();
  return { x: e.clientX - r.left, y: e.clientY - r.top };
}

function inPlot(p: { x: number; y: number }): boolean {
  const T = state.T;
  return !!T && p.x >= T.plot.x && p.x <= T.plot.x + T.plot.width && p.y >= T.plot.y && p.y <= T.plot.y + T.plot.height;
}

function zoom(factor: number, cx?: number, cy?: number): void {
  const v = state.view;
  if (!v) return;
  const mx = cx ?? (v.x[0] + v.x[1]) / 2, my = cy ?? (v.y[0] + v.y[1]) / 2;
  state.view = { x: [mx + (v.x[0] - mx) * factor, mx + (v.x[1] - mx) * factor], y: [my + (v.y[0] - my) * factor, my + (v.y[1] - my) * factor] };
  state.userView = true;
  drawPlane();
}

function pan(fx: number, fy: number): void {
  const v = state.view;
  if (!v) return;
  const dx = (v.x[1] - v.x[0]) * fx, dy = (v.y[1] - v.y[0]) * fy;
  state.view = { x: [v.x[0] + dx, v.x[1] + dx], y: [v.y[0] + dy, v.y[1] + dy] };
  state.userView = true;
  drawPlane();
}

overlay.addEventListener('pointerdown', (e) => {
  if (!state.T || e.button > 0) return;
  const p = local(e);
  if (!inPlot(p)) return;
  e.preventDefault();
  overlay.focus({ preventScroll: true });
  drag = { id: e.pointerId, kind: state.mode === 'box' || e.shiftKey ? 'box' : 'pan', x0: p.x, y0: p.y, x: p.x, y: p.y, moved: false, view0: { x: [...state.view!.x], y: [...state.view!.y] } };
  overlay.setPointerCapture(e.pointerId);
});

overlay.addEventListener('pointermove', (e) => {
  const p = local(e);
  const T = state.T;
  if (!T) return;
  if (drag && e.pointerId === drag.id) {
    drag.x = p.x; drag.y = p.y;
    if (Math.hypot(p.x - drag.x0, p.y - drag.y0) > 4) drag.moved = true;
    if (drag.kind === 'pan' && drag.moved) {
      overlay.classList.add('panning');
      const v = drag.view0;
      const dx = -(p.x - drag.x0) * (v.x[1] - v.x[0]) / T.plot.width, dy = (p.y - drag.y0) * (v.y[1] - v.y[0]) / T.plot.height;
      state.view = { x: [v.x[0] + dx, v.x[1] + dx], y: [v.y[0] + dy, v.y[1] + dy] };
      state.userView = true;
      drawPlane();
    } else if (drag.kind === 'box') drawOverlay();
    return;
  }
  if (e.pointerType === 'touch' || !inPlot(p)) return;
  state.hover = { x: T.fromPx(p.x), y: T.fromPy(p.y) };
  drawOverlay();
  void hoverDecode(state.hover.x, state.hover.y);
});

function endDrag(e: PointerEvent, cancel: boolean): void {
  if (!drag || e.pointerId !== drag.id) return;
  const d = drag;
  drag = null;
  overlay.classList.remove('panning');
  try { overlay.releasePointerCapture(e.pointerId); } catch { /* already released */ }
  const T = state.T;
  if (cancel || !T) { drawOverlay(); return; }
  if (!d.moved) {
    const x = T.fromPx(d.x0), y = T.fromPy(d.y0);
    state.hover = { x, y };
    void pinAt(x, y);
  } else if (d.kind === 'box') {
    state.box = [T.fromPx(Math.min(d.x0, d.x)), T.fromPy(Math.max(d.y0, d.y)), T.fromPx(Math.max(d.x0, d.x)), T.fromPy(Math.min(d.y0, d.y))];
    drawOverlay();
    void decodeGrid();
  }
}
overlay.addEventListener('pointerup', (e) => endDrag(e, false));
overlay.addEventListener('pointercancel', (e) => endDrag(e, true));
overlay.addEventListener('pointerleave', () => { if (!drag && state.hover) { drawOverlay(); } });

overlay.addEventListener('wheel', (e) => {
  const T = state.T;
  if (!T) return;
  e.preventDefault();
  const p = local(e);
  const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
  const f = Math.exp(Math.max(-0.5, Math.min(0.5, e.deltaY * unit * 0.0015)));
  zoom(f, T.fromPx(p.x), T.fromPy(p.y));
}, { passive: false });

overlay.addEventListener('keydown', (e) => {
  const v = state.view;
  if (!v) return;
  const k = e.key;
  if (k === 'ArrowLeft') pan(-0.1, 0); else if (k === 'ArrowRight') pan(0.1, 0);
  else if (k === 'ArrowUp') pan(0, 0.1); else if (k === 'ArrowDown') pan(0, -0.1);
  else if (k === '+' || k === '=') zoom(0.8); else if (k === '-' || k === '_') zoom(1.25);
  else if (k === '0') { resetView(); drawPlane(); }
  else if (k === 'Enter' || k === ' ') {
    const x = (v.x[0] + v.x[1]) / 2, y = (v.y[0] + v.y[1]) / 2;
    state.hover = { x, y };
    void pinAt(x, y);
  } else return;
  e.preventDefault();
});

$('zoom-in').addEventListener('click', () => zoom(0.8));
$('zoom-out').addEventListener('click', () => zoom(1.25));
$('zoom-reset').addEventListener('click', () => { resetView(); drawPlane(); });
for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]'))
  r.addEventListener('change', () => { if (r.checked) state.mode = r.value as 'pan' | 'box'; });
$('pins-clear').addEventListener('click', () => { state.pins = []; renderPins(); drawOverlay(); });
$('grid-size').addEventListener('change', () => void decodeGrid());

// -------------------------------------------------------------------------------------- draw pad

const pad = $<HTMLCanvasElement>('pad');
const padCtx = pad.getContext('2d', { willReadFrequently: true })!;
function clearPad(): void {
  padCtx.fillStyle = '#000000';
  padCtx.fillRect(0, 0, pad.width, pad.height);
  pad.dataset.ink = '0';
}
clearPad();
let stroke: { id: number; x: number; y: number } | null = null;
let padTimer = 0;

function padPoint(e: PointerEvent): { x: number; y: number } {
  const r = pad.getBoundingClientRect();
  return { x: ((e.clientX - r.left) * pad.width) / r.width, y: ((e.clientY - r.top) * pad.height) / r.height };
}
pad.addEventListener('pointerdown', (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  const p = padPoint(e);
  stroke = { id: e.pointerId, ...p };
  padCtx.fillStyle = '#ffffff';
  padCtx.beginPath(); padCtx.arc(p.x, p.y, 8, 0, Math.PI * 2); padCtx.fill();
  pad.dataset.ink = '1';
});
pad.addEventListener('pointermove', (e) => {
  if (!stroke || e.pointerId !== stroke.id) return;
  const p = padPoint(e);
  padCtx.strokeStyle = '#ffffff'; padCtx.lineWidth = 16; padCtx.lineCap = 'round'; padCtx.lineJoin = 'round';
  padCtx.beginPath(); padCtx.moveTo(stroke.x, stroke.y); padCtx.lineTo(p.x, p.y); padCtx.stroke();
  stroke.x = p.x; stroke.y = p.y;
  if (!padTimer) padTimer = window.setTimeout(() => { padTimer = 0; void encodePad(); }, 120);
});
const endStroke = (e: PointerEvent): void => {
  if (!stroke || e.pointerId !== stroke.id) return;
  stroke = null;
  void encodePad();
};
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);
$('pad-clear').addEventListener('click', () => {
  clearPad();
  state.drawn = null;
  for (const id of ['recon', 'pad-input']) { const c = $<HTMLCanvasElement>(id); c.getContext('2d')!.clearRect(0, 0, IMAGE_W, IMAGE_H); }
  $('drawn-z').textContent = '';
  delete overlay.dataset.drawn;
  drawOverlay();
});

let padBusy = false, padAgain = false;
async function encodePad(): Promise<void> {
  if (!state.modelReady || pad.dataset.ink !== '1') return;
  if (padBusy) { padAgain = true; return; }
  padBusy = true;
  try {
    do {
      padAgain = false;
      const rgba = padCtx.getImageData(0, 0, pad.width, pad.height).data;
      let x: Float32Array;
      try { x = mnistFromPixels(rgba, pad.width, pad.height, 4, { name: 'draw pad', darkOnLight: false }); } catch { return; }
      paintDigit($<HTMLCanvasElement>('pad-input'), x);
      const token = state.token;
      const { z } = await model.encode(x, 1);
      const { images } = await model.decode(z, 1);
      if (token !== state.token) return;
      paintDigit($<HTMLCanvasElement>('recon'), images);
      const p = toPlane(z);
      state.drawn = p;
      overlay.dataset.drawn = `${p.x},${p.y}`;
      $('drawn-z').textContent = `drawn: z = [${Array.from(z.slice(0, 6), (v) => v.toFixed(2)).join(', ')}${z.length > 6 ? ', …' : ''}]`;
      drawOverlay();
    } while (padAgain);
  } catch (e) {
    showError(`draw pad: ${(e as Error).message}`);
  } finally {
    padBusy = false;
  }
}

// ---------------------------------------------------------------------------------- generate (supervised)

function renderGenerate(): void {
  const panel = $('gen-panel');
  const map = state.run?.config?.supervised as Record<string, [number, number]> | undefined;
  const box = $('gen-buttons');
  box.replaceChildren();
  if (!map || latentDim() !== 2) { panel.hidden = true; return; }
  panel.hidden = false;
  for (let d = 0; d < 10; d++) {
    const t = map[String(d)];
    if (!t) continue;
    const b = el('button', { type: 'button', text: String(d), 'aria-label': `generate digit ${d}`, title: `decode (${t[0]}, ${t[1]}) plus a little noise` });
    b.style.borderColor = labelColor(d);
    b.addEventListener('click', async () => {
      if (!state.modelReady) return;
      const x = t[0] + 0.3 * gauss(), y = t[1] + 0.3 * gauss();
      const { images } = await model.decode(Float32Array.of(x, y), 1);
      state.gen = { x, y, digit: d };
      paintDigit($<HTMLCanvasElement>('decoded'), images);
      $('decoded-z').textContent = `digit ${d}: z = [${x.toFixed(2)}, ${y.toFixed(2)}] (target (${t[0]}, ${t[1]}) + noise)`;
      drawOverlay();
    });
    box.append(b);
  }
}

// --------------------------------------------------------------------------------------------- runs

function runMeta(r: RunSummary): string {
  const c = r.config ?? {};
  const parts: string[] = [];
  if (c.model) parts.push(`${c.model} · z=${c.latent}`);
  if (c.optimizer) parts.push(`${c.optimizer}/${c.scheduler}`);
  if (c.supervised) parts.push('supervised');
  const res = r.result;
  if (res) {
    if (typeof res.steps === 'number') parts.push(`${res.steps} steps`);
    if (typeof res.testMse === 'number') parts.push(`MSE ${res.testMse.toFixed(4)}`);
    if (res.stopped === true) parts.push('stopped early');
  } else if (typeof c.totalSteps === 'number') parts.push(`${c.totalSteps} steps planned`);
  return parts.join(' · ');
}

function renderRunList(): void {
  const ul = $('run-list');
  ul.replaceChildren();
  if (!state.runs.length) ul.append(el('li', { class: 'msg', text: 'No runs yet: train one below or with latentlab train --out <runs>/<name>.' }));
  for (const r of state.runs) {
    const b = el('button', { type: 'button', 'data-run': r.name, 'aria-current': String(state.run?.name === r.name) },
      el('span', { class: 'name', text: r.name }), el('span', { class: `badge ${r.status}`, text: r.status }),
      el('span', { class: 'meta', text: runMeta(r) }));
    (b.querySelector('.meta') as HTMLElement).style.display = 'block';
    b.addEventListener('click', () => void openRun(r.name));
    ul.append(el('li', {}, b));
  }
}

async function refreshRuns(): Promise<void> {
  try {
    const { runs } = await getJson<{ runs: RunSummary[] }>('/api/runs');
    state.runs = runs;
    renderRunList();
  } catch (e) { showError(`runs: ${(e as Error).message}`); }
}

function renderRunInfo(r: RunDetail): void {
  $('run-title').textContent = r.name;
  const details = $('run-settings');
  details.hidden = false;
  const dl = $('run-figures');
  dl.replaceChildren();
  const c = r.config ?? {}, res = r.result ?? {};
  const fig: [string, unknown][] = [
    ['model', c.model], ['latent', c.latent], ['optimizer', c.optimizer], ['scheduler', c.scheduler],
    ['lr / max lr', c.lr !== undefined ? `${c.lr} / ${c.maxLr}` : undefined], ['batch', c.batchSize], ['epochs', c.epochs], ['seed', c.seed],
    ['backend', c.backend ? `${c.backend} (${c.threads} thr)` : undefined],
    ['steps', res.steps ?? c.totalSteps], ['test MSE', typeof res.testMse === 'number' ? res.testMse.toFixed(4) : undefined],
    ['final loss', typeof res.finalLoss === 'number' ? res.finalLoss.toFixed(4) : undefined],
    ['samples/s', res.samplesPerSec], ['seconds', res.seconds], ['stopped', res.stopped === true ? 'yes' : undefined],
  ];
  for (const [k, v] of fig) if (v !== undefined && v !== null) dl.append(el('div', {}, el('dt', { text: k }), el('dd', { text: String(v) })));
  const tb = $('run-config').querySelector('tbody')!;
  tb.replaceChildren();
  for (const [k, v] of Object.entries(c)) tb.append(el('tr', {}, el('td', { text: k }), el('td', { text: typeof v === 'object' ? JSON.stringify(v) : String(v) })));
}

function setStatus(r: { status: string; ownJob?: boolean; error?: string }): void {
  const st = r.status;
  const txt: Record<string, string> = {
    done: 'finished', training: 'training…', starting: 'starting…', finishing: 'stopping: writing the latents of the last checkpoint…',
    stopped: 'stopped (its last checkpoint is kept)', failed: 'failed', incomplete: 'incomplete (no weights)',
  };
  $('run-status').textContent = `${txt[st] ?? st}${r.error ? `: ${r.error}` : ''}`;
  const live = st === 'training' || st === 'starting';
  $<HTMLButtonElement>('stop').disabled = !(live && r.ownJob);
  const m = state.metrics.filter((l) => l.loss !== undefined).at(-1);
  const total = (state.run?.config?.totalSteps as number | undefined);
  $('train-status').textContent = m ? `${txt[st] ?? st} step ${m.step}${total ? ` of ${total}` : ''}, loss ${fmt(m.loss!, 4)}${m.samplesPerSec ? `, ${m.samplesPerSec} samples/s` : ''}` : txt[st] ?? st;
  document.body.dataset.runStatus = st;
}

async function loadModel(r: RunDetail, token: number): Promise<void> {
  if (!r.hasModel || !r.config) { state.modelReady = false; return; }
  await engineReady;
  const c = r.config;
  const res = await model.call({ type: 'load', url: `/runs/${encodeURIComponent(r.name)}/model.safetensors`, config: { model: c.model as 'bn', latent: c.latent as number, activation: c.activation as 'leaky', latentActivation: c.latentActivation as 'leaky' } }) as Extract<WorkerResponse, { type: 'load' }>;
  if (token !== state.token) return;
  state.latentDim = res.latentDim;
  state.modelReady = true;
  document.body.dataset.model = 'ready';
  $('engine-status').textContent = `${engineNote} · weights of ${r.name} loaded in ${res.ms.toFixed(0)} ms`;
}

async function loadSnapshot(name: string, step: number, token: number): Promise<void> {
  const enc = encodeURIComponent(name);
  const pad7 = String(step).padStart(7, '0');
  const [snapB, labB] = await Promise.all([getBytes(`/runs/${enc}/snapshots/step-${pad7}.safetensors`), getBytes(`/runs/${enc}/snapshots/labels.safetensors`)]);
  if (token !== state.token) return;
  const { tensors } = loadSafetensors(snapB, `snapshot ${step}`);
  const z = tensors.get('z')!;
  const labels = Uint8Array.from(loadSafetensors(labB, 'snapshot labels').tensors.get('labels')!.data as Float32Array);
  const first = !state.latents;
  // the latents move while training: follow them unless the user has zoomed or panned
  setLatents({ z: z.data as Float32Array, n: z.shape[0], dim: z.shape[1], labels, source: `snapshot at step ${step}` }, !first && state.userView);
  if (first) renderLegend();
  state.lastSnap = step;
}

function closeEvents(): void {
  state.es?.close();
  state.es = null;
}

function watch(name: string, token: number): void {
  closeEvents();
  const es = new EventSource(`/api/runs/${encodeURIComponent(name)}/events?from=${state.metrics.length}&snap=${state.lastSnap}`);
  state.es = es;
  es.addEventListener('status', (e) => {
    if (token !== state.token) return;
    const { status } = JSON.parse((e as MessageEvent).data) as { status: string };
    if (state.run) { state.run.status = status; setStatus(state.run); }
    const item = state.runs.find((r) => r.name === name);
    if (item) { item.status = status; renderRunList(); }
  });
  es.addEventListener('metrics', (e) => {
    if (token !== state.token) return;
    const { from, lines } = JSON.parse((e as MessageEvent).data) as { from: number; lines: MetricLine[] };
    state.metrics = state.metrics.slice(0, from).concat(lines);
    drawCurve();
    if (state.run) setStatus(state.run);
  });
  es.addEventListener('snapshot', (e) => {
    if (token !== state.token) return;
    const { step } = JSON.parse((e as MessageEvent).data) as { step: number };
    void (async () => {
      try {
        await loadSnapshot(name, step, token);
        // the latest checkpoint's weights, so hovering decodes with the model as it is now
        const info = await getJson<RunDetail>(`/api/runs/${encodeURIComponent(name)}`);
        if (token === state.token && info.hasModel && info.config) { state.run = { ...info, metrics: state.metrics }; await loadModel(state.run, token); }
      } catch { /* the next snapshot will do */ }
    })();
  });
  es.addEventListener('end', () => {
    closeEvents();
    if (token !== state.token) return;
    void refreshRuns().then(() => openRun(name, true));
  });
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED && token === state.token) state.es = null;
  });
}

async function openRun(name: string, keepView = false): Promise<void> {
  const token = ++state.token;
  closeEvents();
  showError(null);
  const prevName = state.run?.name;
  state.modelReady = false;
  delete document.body.dataset.model;
  state.lastSnap = -1;
  if (prevName !== name || !keepView) {
    state.pins = []; state.box = null; state.drawn = null; state.gen = null; state.hover = null; state.hidden.clear(); state.view = null;
    renderPins();
    $<HTMLCanvasElement>('grid').getContext('2d')!.clearRect(0, 0, 1e5, 1e5);
    delete $<HTMLCanvasElement>('grid').dataset.cells;
    $<HTMLCanvasElement>('grid').hidden = true;
    $('grid-caption').textContent = 'Drag a box on the plane (Box mode or Shift-drag).';
  }
  document.body.dataset.run = name;
  let r: RunDetail;
  try {
    r = await getJson<RunDetail>(`/api/runs/${encodeURIComponent(name)}`);
  } catch (e) { showError(`run ${name}: ${(e as Error).message}`); return; }
  if (token !== state.token) return;
  state.run = r;
  state.metrics = r.metrics;
  renderRunList();
  renderRunInfo(r);
  setStatus(r);
  drawCurve();
  state.latentDim = 0;
  try {
    if (r.hasLatents) {
      const l = parseLatents(await getBytes(`/runs/${encodeURIComponent(name)}/latents.safetensors`), 'test latents');
      if (token !== state.token) return;
      setLatents(l, keepView && prevName === name);
    } else if (r.snapshotSteps.length && r.hasSnapshotLabels) {
      state.latents = null;
      await loadSnapshot(name, r.snapshotSteps.at(-1)!, token);
    } else setLatents(null);
    renderLegend();
    renderGenerate();
    await loadModel(r, token);
    renderGenerate();
    if (state.box) void decodeGrid();
  } catch (e) {
    if (token === state.token) showError(`run ${name}: ${(e as Error).message}`);
  }
  if (token !== state.token) return;
  if (['training', 'starting', 'finishing'].includes(r.status)) watch(name, token);
}

$('refresh-runs').addEventListener('click', () => void refreshRuns());
$('stop').addEventListener('click', async () => {
  const r = state.run;
  if (!r) return;
  $<HTMLButtonElement>('stop').disabled = true;
  try {
    const res = await fetch(`/api/runs/${encodeURIComponent(r.name)}/stop`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    const body = await res.json() as { error?: string };
    if (!res.ok) throw new Error(body.error ?? String(res.status));
    $('train-status').textContent = 'stopping: the run keeps its last checkpoint…';
  } catch (e) { showError(`stop: ${(e as Error).message}`); }
});

// --------------------------------------------------------------------------------------- train form

const form = $<HTMLFormElement>('train-form');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(form);
  const settings: Record<string, unknown> = {};
  for (const k of ['model', 'latent', 'optimizer', 'scheduler', 'lr', 'maxLr', 'baseLr', 'batchSize', 'epochs', 'maxSteps', 'seed', 'backend', 'snapshotEvery']) {
    const v = String(f.get(k) ?? '').trim();
    if (v !== '') settings[k] = ['model', 'latent', 'optimizer', 'scheduler', 'backend'].includes(k) ? v : Number(v);
  }
  if (f.get('supervised')) settings.supervised = true;
  const msg = $('train-form-msg');
  msg.textContent = 'starting…';
  const btn = $<HTMLButtonElement>('train-start');
  btn.disabled = true;
  try {
    const res = await fetch('/api/train', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: String(f.get('name') ?? '').trim(), settings, testLimit: String(f.get('testLimit') ?? '').trim() || undefined }),
    });
    const body = await res.json() as { name?: string; error?: string };
    if (!res.ok) throw new Error(body.error ?? String(res.status));
    msg.textContent = `started ${body.name}`;
    await refreshRuns();
    await openRun(body.name!);
  } catch (err) {
    msg.textContent = `not started: ${(err as Error).message}`;
  } finally {
    btn.disabled = false;
  }
});

async function fillForm(): Promise<void> {
  try {
    const info = await getJson<{ optimizers: string[]; schedulers: string[]; defaults: Record<string, unknown>; canTrain: boolean; version: string }>('/api/info');
    const opt = form.elements.namedItem('optimizer') as HTMLSelectElement, sch = form.elements.namedItem('scheduler') as HTMLSelectElement;
    for (const o of info.optimizers) opt.append(el('option', { value: o, text: o }));
    for (const s of info.schedulers) sch.append(el('option', { value: s, text: s }));
    opt.value = String(info.defaults.optimizer); sch.value = String(info.defaults.scheduler);
    if (!info.canTrain) { $<HTMLButtonElement>('train-start').disabled = true; $('train-form-msg').textContent = 'the CLI is not built (npm run build): training cannot be started here'; }
  } catch (e) { showError(`info: ${(e as Error).message}`); }
}

// ------------------------------------------------------------------------------------------- start

async function startEngine(): Promise<void> {
  const prefer = new URLSearchParams(location.search).get('backend') === 'reference' ? 'reference' : 'wasm';
  try {
    const r = await model.call({ type: 'init', prefer, wasmUrl: '/app/kernels.wasm', relaxedUrl: '/app/kernels-relaxed.wasm' }) as Extract<WorkerResponse, { type: 'init' }>;
    engineNote = `model worker: ${r.backend} backend${r.backend === 'wasm' ? `, ${r.threads} thread${r.threads > 1 ? 's' : ''}${r.relaxed ? ', relaxed SIMD' : ''}` : ''}`;
    document.body.dataset.backend = r.backend;
    $('engine-status').textContent = engineNote + (r.note ? ` (${r.note})` : '');
  } catch (e) {
    showError(`model worker: ${(e as Error).message}`);
  }
}

new ResizeObserver(() => { drawPlane(); drawCurve(); }).observe($('plane-wrap'));
renderLegend();
renderPins();
drawCurve();
engineReady = startEngine();
void fillForm();
void refreshRuns().then(async () => {
  await engineReady;
  const want = new URLSearchParams(location.search).get('run');
  if (want && state.runs.some((r) => r.name === want)) await openRun(want);
  document.body.dataset.ready = '1';
});
