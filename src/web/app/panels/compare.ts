/**
 * Compare runs: tick two or more runs in the sidebar, and the page shows their figures in one table
 * (config.json's settings, every figure of result.json, and a k-NN accuracy computed from the run's
 * latents in an analysis worker), their training loss curves on one chart (one colour per run), and
 * their latent planes side by side on the same axis ranges. Opening a run closes the comparison.
 */
import { project } from '../../../lab/analysis/projection.js';
import { dataRange, type Range } from '../../../viz/axes.js';
import { drawCurves, type CurveSeries } from '../../../viz/curves.js';
import { lossRunFromMetrics } from '../../../viz/figures.js';
import { TAB10 } from '../../../viz/palette.js';
import { drawScatter } from '../../../viz/scatter.js';
import { runAnalysis } from '../analysis-client.js';
import { $, el, fitCanvas, fmt, getBytes, getJson } from '../dom.js';
import { on, state, type Latents, type RunDetail } from '../store.js';
import { parseLatents } from './runs.js';

const KNN_K = 5;

interface Compared {
  name: string;
  color: string;
  detail: RunDetail;
  latents: Latents | null;
  /** The latents on their plane (PCA for more than two dimensions). */
  plane: { x: Float32Array; y: Float32Array; xLabel: string; yLabel: string } | null;
  knn: { accuracy: number; n: number; references: number } | 'computing' | string | null;
}

const chosen = new Set<string>();
let shown: Compared[] = [];
/** Bumped by every (re)opening: answers for an older comparison are dropped. */
let generation = 0;

const view = $('compare-view');
const openBtn = $<HTMLButtonElement>('compare-open');

// --------------------------------------------------------------------------------- choosing runs

function renderChoices(): void {
  const ul = $('compare-list');
  ul.replaceChildren();
  for (const r of state.runs) {
    const box = el('input', { type: 'checkbox', value: r.name, 'data-compare': r.name });
    box.checked = chosen.has(r.name);
    box.addEventListener('change', () => { if (box.checked) chosen.add(r.name); else chosen.delete(r.name); updateButton(); });
    ul.append(el('li', {}, el('label', {}, box, `${r.name} (${r.status})`)));
  }
  for (const n of [...chosen]) if (!state.runs.some((r) => r.name === n)) chosen.delete(n);
  updateButton();
}

function updateButton(): void {
  openBtn.disabled = chosen.size < 2;
  openBtn.textContent = chosen.size >= 2 ? `Compare ${chosen.size} runs` : 'Compare (tick two or more)';
}

// ------------------------------------------------------------------------------------- loading

async function loadOne(name: string, k: number): Promise<Compared> {
  const enc = encodeURIComponent(name);
  const detail = await getJson<RunDetail>(`/api/runs/${enc}`);
  const latents = detail.hasLatents ? parseLatents(await getBytes(`/runs/${enc}/latents.safetensors`), `${name} test latents`) : null;
  let plane: Compared['plane'] = null;
  if (latents) {
    const p = project(latents.z, latents.dim, 'pca');
    plane = { x: p.x, y: p.y, xLabel: p.projection.xLabel, yLabel: p.projection.yLabel };
  }
  return { name, color: TAB10[k % TAB10.length], detail, latents, plane, knn: null };
}

/** k-NN accuracy of the run's test latents against its train latents, in an analysis worker. */
async function computeKnn(c: Compared, gen: number): Promise<void> {
  if (!c.latents) { c.knn = 'no latents'; return; }
  let ref: Latents;
  try {
    ref = parseLatents(await getBytes(`/runs/${encodeURIComponent(c.name)}/train-latents.safetensors`), `${c.name} train latents`);
  } catch { c.knn = 'no train latents'; return; }
  c.knn = 'computing';
  const z = c.latents.z.slice(), refZ = ref.z.slice();
  const job = runAnalysis({ type: 'knn', z, labels: c.latents.labels.slice(), refZ, refLabels: ref.labels.slice(), dim: c.latents.dim, k: KNN_K }, undefined, [z.buffer, refZ.buffer]);
  try {
    const r = await job.result;
    c.knn = { accuracy: r.accuracy, n: r.n, references: r.references };
  } catch (e) { c.knn = `failed: ${(e as Error).message}`; }
  if (gen === generation) renderTable();
}

export async function openCompare(names: string[]): Promise<void> {
  const gen = ++generation;
  document.body.classList.add('comparing');
  view.hidden = false;
  view.dataset.runs = '';
  $('compare-heading').textContent = `Comparing ${names.length} runs`;
  $('compare-status').textContent = `loading ${names.join(', ')}…`;
  let runs: Compared[];
  try {
    runs = await Promise.all(names.map((n, k) => loadOne(n, k)));
  } catch (e) {
    if (gen === generation) $('compare-status').textContent = `cannot compare: ${(e as Error).message}`;
    return;
  }
  if (gen !== generation) return;
  shown = runs;
  $('compare-status').textContent = '';
  view.dataset.runs = names.join('|');
  renderTable();
  drawAll();
  for (const c of runs) void computeKnn(c, gen);
}

function closeCompare(): void {
  generation++;
  shown = [];
  document.body.classList.remove('comparing');
  view.hidden = true;
  delete view.dataset.runs;
}

// --------------------------------------------------------------------------------------- table

type Cell = { text: string; value: unknown; best?: 'min' | 'max' };

const latentText = (c: Compared): string => {
  const l = c.detail.config?.latent;
  return l === 'conv' ? 'conv (2×7×7)' : String(l ?? '—');
};

function valueText(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : fmt(v, 4);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (v === undefined || v === null) return '—';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function knnCell(c: Compared): Cell {
  const k = c.knn;
  if (k && typeof k === 'object') return { text: `${(100 * k.accuracy).toFixed(1)}% (${k.n} test vs ${k.references} train latents)`, value: k.accuracy, best: 'max' };
  return { text: k === 'computing' ? 'computing…' : k ?? '—', value: null };
}

/** The table's rows: the settings, how big the latent is, every key of result.json, and the k-NN accuracy. */
function rows(runs: Compared[]): [string, string, (c: Compared) => Cell][] {
  const cfg = (key: string) => (c: Compared): Cell => ({ text: valueText(c.detail.config?.[key]), value: c.detail.config?.[key] ?? null });
  const out: [string, string, (c: Compared) => Cell][] = [
    ['config.model', 'model', cfg('model')],
    ['config.latent', 'latent', (c) => ({ text: latentText(c), value: c.detail.config?.latent ?? null })],
    ['latent.dim', 'numbers in the latent', (c) => ({ text: valueText(c.latents?.dim), value: c.latents?.dim ?? null })],
    ['config.optimizer', 'optimizer', cfg('optimizer')],
    ['config.scheduler', 'scheduler', cfg('scheduler')],
    ['config.batchSize', 'batch', cfg('batchSize')],
    ['config.seed', 'seed', cfg('seed')],
  ];
  const keys: string[] = [];
  for (const c of runs) for (const k of Object.keys(c.detail.result ?? {})) if (!keys.includes(k)) keys.push(k);
  const better: Record<string, 'min' | 'max'> = { testMse: 'min', finalLoss: 'min' };
  for (const k of keys) out.push([`result.${k}`, resultLabel(k), (c) => ({ text: valueText(c.detail.result?.[k]), value: c.detail.result?.[k] ?? null, best: better[k] })]);
  out.push(['knn.accuracy', `k-NN accuracy (k = ${KNN_K})`, knnCell]);
  return out;
}

const RESULT_LABELS: Record<string, string> = {
  steps: 'steps', epochs: 'epochs', testMse: 'test MSE', finalLoss: 'final training loss', samplesPerSec: 'samples/s',
  seconds: 'seconds', backend: 'backend', threads: 'threads', stopped: 'stopped early', latentHealth: 'latent health',
};
const resultLabel = (k: string): string => RESULT_LABELS[k] ?? k;

function renderTable(): void {
  const table = $('compare-table');
  const head = el('tr', {}, el('th', { scope: 'col', text: 'run' }));
  for (const c of shown) {
    const sw = el('span', { class: 'run-sw' });
    sw.style.background = c.color;
    head.append(el('th', { scope: 'col', 'data-run': c.name }, sw, c.name));
  }
  table.querySelector('thead')!.replaceChildren(head);
  const body = table.querySelector('tbody')!;
  body.replaceChildren();
  for (const [key, label, cell] of rows(shown)) {
    const cells = shown.map(cell);
    const nums = cells.map((x) => (typeof x.value === 'number' ? x.value : NaN));
    const how = cells.find((x) => x.best)?.best;
    const target = how === 'min' ? Math.min(...nums.filter(Number.isFinite)) : how === 'max' ? Math.max(...nums.filter(Number.isFinite)) : NaN;
    const tr = el('tr', { 'data-key': key }, el('th', { scope: 'row', text: label }));
    cells.forEach((x, i) => {
      const td = el('td', { text: x.text, 'data-run': shown[i].name, 'data-value': JSON.stringify(x.value ?? null) });
      if (typeof x.value === 'number') td.classList.add('num');
      if (shown.length > 1 && nums[i] === target) td.classList.add('best');
      tr.append(td);
    });
    body.append(tr);
  }
  const knnDone = shown.every((c) => c.knn !== 'computing');
  table.dataset.knn = knnDone ? 'done' : 'computing';
}

// ------------------------------------------------------------------------------- chart, planes

function drawChart(): void {
  const canvas = $<HTMLCanvasElement>('compare-curve');
  const { w, h, dpr } = fitCanvas(canvas);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const series: CurveSeries[] = [];
  for (const c of shown) {
    const { train } = lossRunFromMetrics(c.name, c.detail.metrics);
    if (train.steps.length) series.push({ name: c.name, ...train, color: c.color });
  }
  drawCurves(ctx, series, { x: 0, y: 0, width: w, height: h }, { logY: true, yLabel: 'reconstruction MSE' });
  canvas.dataset.series = series.map((s) => s.name).join('|');
  canvas.dataset.colors = series.map((s) => s.color).join('|');
  canvas.dataset.points = series.map((s) => s.steps.length).join('|');
}

/** One range for every plane: all runs' points fit. */
function sharedRanges(): { x: Range; y: Range } {
  const planes = shown.flatMap((c) => (c.plane ? [c.plane] : []));
  const join = (k: 'x' | 'y'): Float32Array => {
    const all = new Float32Array(planes.reduce((s, p) => s + p[k].length, 0));
    let at = 0;
    for (const p of planes) { all.set(p[k], at); at += p[k].length; }
    return all;
  };
  return { x: dataRange(join('x'), 0.05), y: dataRange(join('y'), 0.05) };
}

function drawPlanes(): void {
  const box = $('compare-planes');
  const { x, y } = sharedRanges();
  if (box.childElementCount !== shown.length) {
    box.replaceChildren(...shown.map((c) => {
      const sw = el('span', { class: 'run-sw' });
      sw.style.background = c.color;
      return el('figure', {}, el('figcaption', {}, sw, c.name), el('canvas', { 'data-run': c.name, role: 'img', 'aria-label': `latent plane of ${c.name}` }));
    }));
  }
  shown.forEach((c, i) => {
    const canvas = box.children[i].querySelector('canvas')!;
    const { w, h, dpr } = fitCanvas(canvas);
    const ctx = canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (!c.plane || !c.latents) {
      ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
      ctx.fillText('no latents', w / 2, h / 2);
      canvas.dataset.points = '0';
      return;
    }
    drawScatter(ctx, { x: c.plane.x, y: c.plane.y, labels: c.latents.labels, xRange: x, yRange: y, xLabel: c.plane.xLabel, yLabel: c.plane.yLabel, legend: true, pointSize: c.latents.n > 4000 ? 2 : 3, alpha: 0.75 }, { x: 0, y: 0, width: w, height: h });
    canvas.dataset.points = String(c.latents.n);
    canvas.dataset.xRange = x.join(',');
    canvas.dataset.yRange = y.join(',');
  });
}

function drawAll(): void {
  if (!shown.length) return;
  drawChart();
  drawPlanes();
}

export function mountCompare(): void {
  $('compare-box').addEventListener('toggle', renderChoices);
  openBtn.addEventListener('click', () => void openCompare(state.runs.map((r) => r.name).filter((n) => chosen.has(n))));
  $('compare-close').addEventListener('click', closeCompare);
  // opening a run (a click in the list) ends the comparison
  on('reset', closeCompare);
  on('run', renderChoices);
  new ResizeObserver(() => drawAll()).observe(view);
  renderChoices();
}
