/**
 * The projection of latents with more than two dimensions (10-D, the conv latent's 2×7×7 = 98) onto
 * the plane: the PCA / UMAP switch, the caption, the sliders of the PCA components beyond the plane's
 * two, and UMAP computed in the analysis worker with its progress. PCA has an inverse: a point of the
 * plane plus the sliders is a latent (store.ts fromPlane). UMAP has none: a point of the plane decodes
 * the latent of the nearest encoded point, and the box grid is off (grid.ts says so).
 */
import { UMAP_MAX_POINTS, UMAP_NEIGHBOURS } from '../../../lab/analysis/projection.js';
import { runAnalysis, type AnalysisJob } from '../analysis-client.js';
import { $, el, showError } from '../dom.js';
import { priorCaption } from './prior.js';
import { emit, fromPlane, latentDim, on, resetView, setLatents, state, toPlane, type Latents } from '../store.js';

const UMAP_SEED = 0;

/** What the user chose (the plane shows PCA until a UMAP embedding is ready). */
let wanted: 'pca' | 'umap' = 'pca';
/** The latents as the run gave them (UMAP embeds their first UMAP_MAX_POINTS). */
let full: Latents | null = null;
/** The latents the UMAP embedding on the plane belongs to (a subset of `full`). */
let embedded: Latents | null = null;
let job: AnalysisJob<'umap'> | null = null;
/** Progress reports of the last UMAP job (tests read it through latentlabPlane). */
const umapLog: { done: number; total: number; phase: string }[] = [];

const box = $('projection');
const bar = $<HTMLProgressElement>('umap-progress');
const status = $('umap-status');

function umapInput(l: Latents): Latents {
  const n = Math.min(l.n, UMAP_MAX_POINTS);
  if (n === l.n) return l;
  return { z: l.z.subarray(0, n * l.dim), n, dim: l.dim, labels: l.labels.subarray(0, n), source: `${l.source}, the first ${n} of ${l.n} for UMAP` };
}

function cancelUmap(): void {
  job?.cancel();
  job = null;
  bar.hidden = true;
  delete bar.dataset.state;
}

/** Puts the embedding of `input` on the plane. */
function showUmap(input: Latents, embedding: Float32Array): void {
  const n = input.n, px = new Float32Array(n), py = new Float32Array(n);
  for (let i = 0; i < n; i++) { px[i] = embedding[2 * i]; py[i] = embedding[2 * i + 1]; }
  embedded = input;
  state.latents = input;
  state.px = px; state.py = py;
  state.projection = 'umap';
  state.box = null;
  resetView();
  replaceMarks();
  emit('latents', 'plane', 'mapping', 'overlay', 'pins');
}

/** The plane changed its coordinates: pins go where their latents now are; the hover and drawn marks (plane points only) are dropped. */
function replaceMarks(): void {
  for (const p of state.pins) { const q = toPlane(p.z); p.x = q.x; p.y = q.y; }
  state.hover = null;
  state.drawn = null;
}

/** Embeds the run's latents with UMAP in the analysis worker; a job running goes on, and the newest latents are embedded after it. */
function startUmap(): void {
  if (job || !full || full.dim <= 2) return;
  const source = full, input = umapInput(full), token = state.token;
  umapLog.length = 0;
  bar.hidden = false; bar.max = 1; bar.value = 0; bar.dataset.state = 'running';
  status.textContent = `UMAP of ${input.n} points: building the neighbour graph… (the PCA plane meanwhile)`;
  const z = input.z.slice();
  const j = runAnalysis({ type: 'umap', z, n: input.n, dim: input.dim, seed: UMAP_SEED }, (done, total, phase) => {
    umapLog.push({ done, total, phase });
    bar.max = total; bar.value = done;
    bar.dataset.events = String(umapLog.length);
    if (phase !== 'neighbour graph') status.textContent = `UMAP of ${input.n} points: ${phase} ${done}/${total} (the PCA plane meanwhile)`;
  }, [z.buffer]);
  job = j;
  j.result.then((r) => {
    if (job !== j) return;
    job = null;
    if (token !== state.token || wanted !== 'umap') return;
    bar.dataset.state = 'done';
    bar.hidden = true;
    status.textContent = `UMAP of ${input.n} points in ${(r.ms / 1000).toFixed(1)} s`;
    showUmap(input, r.embedding);
    // the run moved on meanwhile (a new snapshot): embed the newest latents too
    if (full && full !== source) startUmap();
  }, (e: Error) => {
    if (job !== j) return;
    job = null;
    bar.hidden = true;
    bar.dataset.state = 'failed';
    status.textContent = '';
    if (e.message !== 'cancelled') showError(`UMAP: ${e.message}`);
  });
}

function choose(m: 'pca' | 'umap'): void {
  wanted = m;
  for (const r of box.querySelectorAll<HTMLInputElement>('input[name="projection"]')) r.checked = r.value === m;
  if (m === 'umap') { startUmap(); return; }
  cancelUmap();
  status.textContent = '';
  // back to the run's own latents, on their PCA plane
  if (full && (state.latents !== full || state.projection === 'umap')) {
    setLatents(full);
    replaceMarks();
    emit('pins', 'overlay');
  } else render();
}

// ------------------------------------------------------------------------------- caption, sliders

function pcaCaption(D: number): string {
  const p = state.pca!;
  const rest = p.k < D ? `; components ${p.k + 1}–${D} stay at their mean` : '';
  return `${D}-D latent${latentShapeNote(D)}: the PCA plane of the latents (${state.latents?.source}); the sliders move along the next principal components${rest}.`;
}

function latentShapeNote(D: number): string {
  const c = state.run?.config?.latent;
  return c === 'conv' ? ` (the conv latent, 2×7×7 = ${D} numbers)` : '';
}

function renderSliders(): void {
  const dims = $('dims');
  dims.replaceChildren();
  const p = state.pca!;
  state.sliders = new Array(p.k).fill(0);
  for (let c = 2; c < p.k; c++) {
    const sd = Math.sqrt(p.variances[c]) || 1;
    const input = el('input', { type: 'range', min: String(-3 * sd), max: String(3 * sd), step: String(sd / 50), value: '0', 'aria-label': `principal component ${c + 1}` });
    const out = el('output', { text: '0.00' });
    input.addEventListener('input', () => {
      state.sliders[c] = Number(input.value);
      out.textContent = Number(input.value).toFixed(2);
      emit('mapping');
    });
    dims.append(el('label', {}, `PC${c + 1}`, input, out));
  }
  dims.hidden = false;
}

/** The caption under the plane, the sliders (PCA) and the switch (D > 2). */
function render(): void {
  const dims = $('dims'), cap = $('plane-caption');
  const D = latentDim(), l = state.latents;
  box.hidden = !full || full.dim <= 2;
  if (state.projection === 'umap' && l) {
    dims.hidden = true; dims.replaceChildren(); state.sliders = [];
    cap.textContent = `${D}-D latent${latentShapeNote(D)}: UMAP of the latents (${l.source}; seed ${UMAP_SEED}, ${UMAP_NEIGHBOURS} neighbours). UMAP has no inverse: hovering or pinning decodes the latent of the nearest encoded point, and the box grid is off (switch to PCA for it).`;
  } else if (state.pca && D > 2 && l) {
    const prior = priorCaption();
    cap.textContent = prior ? `${prior} The sliders move along the next principal components.` : pcaCaption(D);
    renderSliders();
  } else {
    dims.hidden = true; dims.replaceChildren(); state.sliders = [];
    cap.textContent = priorCaption() ?? (l ? `${D}-D latent: the plane is the latent space itself (${l.source})` : '');
  }
  box.dataset.method = state.projection;
}

function onLatents(): void {
  const l = state.latents;
  if (l && l === embedded && state.projection === 'umap') { render(); return; }
  full = l;
  embedded = null;
  render();
  if (wanted === 'umap' && l && l.dim > 2) startUmap();
}

/** For tests: the plane's coordinates and the latent a point of it decodes. */
function exposeForTests(): void {
  (self as unknown as { latentlabPlane: unknown }).latentlabPlane = {
    coords: () => ({ method: state.projection, n: state.px.length, dim: state.latents?.dim ?? 0, x: Array.from(state.px), y: Array.from(state.py), view: state.view, hover: state.hover }),
    latentAt: (x: number, y: number) => Array.from(fromPlane(x, y)),
    umapLog: () => umapLog.slice(),
  };
}

export function mountProjection(): void {
  for (const r of box.querySelectorAll<HTMLInputElement>('input[name="projection"]'))
    r.addEventListener('change', () => { if (r.checked) choose(r.value as 'pca' | 'umap'); });
  on('latents', onLatents);
  on('reset', () => { cancelUmap(); full = null; embedded = null; status.textContent = ''; render(); });
  exposeForTests();
  render();
}
