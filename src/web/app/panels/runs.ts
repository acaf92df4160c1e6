/**
 * The runs: the list, the open run's settings and figures, and opening a run (its metrics, latents or
 * latest snapshot, and weights), following it over server-sent events while it trains.
 */
import { loadSafetensors } from '../../../engine/state.js';
import { $, el, getBytes, getJson, showError } from '../dom.js';
import { model } from '../model-client.js';
import type { WorkerResponse } from '../protocol.js';
import { beginRun, emit, on, setLatents, state, type Latents, type MetricLine, type RunDetail, type RunSummary } from '../store.js';

let es: EventSource | null = null;

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
  if (r.problems?.length) parts.push(`cannot read ${r.problems.length === 1 ? 'a file' : `${r.problems.length} files`}`);
  return parts.join(' · ');
}

function renderRunList(): void {
  const ul = $('run-list');
  ul.replaceChildren();
  if (!state.runs.length) ul.append(el('li', { class: 'msg', text: 'No runs yet: train one below or with latentlab train --out <runs>/<name>.' }));
  for (const r of state.runs) {
    const b = el('button', { type: 'button', 'data-run': r.name, 'aria-current': String(state.runName === r.name) },
      el('span', { class: 'name', text: r.name }), el('span', { class: `badge ${r.status}`, text: r.status }),
      el('span', { class: 'meta', text: runMeta(r) }));
    (b.querySelector('.meta') as HTMLElement).style.display = 'block';
    b.addEventListener('click', () => void openRun(r.name));
    ul.append(el('li', {}, b));
  }
}

export async function refreshRuns(): Promise<void> {
  try {
    const { runs } = await getJson<{ runs: RunSummary[] }>('/api/runs');
    state.runs = runs;
    renderRunList();
  } catch (e) { showError(`runs: ${(e as Error).message}`); }
}

function renderRunInfo(): void {
  const r = state.run;
  $('run-title').textContent = r?.name ?? (state.runName ? `${state.runName}` : 'Open a run');
  const details = $('run-settings');
  const dl = $('run-figures');
  const tb = $('run-config').querySelector('tbody')!;
  dl.replaceChildren();
  tb.replaceChildren();
  details.hidden = !r;
  const problem = $('run-problem');
  const problems = r?.problems ?? [];
  problem.hidden = !problems.length;
  problem.textContent = problems.join('\n');
  if (!r) return;
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
  for (const [k, v] of Object.entries(c)) tb.append(el('tr', {}, el('td', { text: k }), el('td', { text: typeof v === 'object' ? JSON.stringify(v) : String(v) })));
}

export function parseLatents(bytes: Uint8Array, source: string): Latents {
  const { tensors } = loadSafetensors(bytes, source);
  const z = tensors.get('z'), lab = tensors.get('labels');
  if (!z || !lab || z.shape.length !== 2) throw new Error(`${source}: expected z [N, D] and labels [N]`);
  return { z: z.data as Float32Array, n: z.shape[0], dim: z.shape[1], labels: Uint8Array.from(lab.data as ArrayLike<number | bigint>, Number), source };
}

/**
 * Loads a run's weights into the worker: `file` is model.safetensors (the last checkpoint's weights)
 * or live.safetensors (what the trainer publishes every few seconds; publishedAt: its mtime).
 */
async function loadModel(r: RunDetail, token: number, file = 'model.safetensors', publishedAt: number | null = null, heardAt?: number): Promise<void> {
  if (!r.config || (file === 'model.safetensors' && !r.hasModel)) { state.modelReady = false; return; }
  await model.ready;
  const c = r.config;
  const res = await model.call({ type: 'load', url: `/runs/${encodeURIComponent(r.name)}/${file}`, config: { model: c.model as 'bn', latent: c.latent as number, activation: c.activation as 'leaky', latentActivation: c.latentActivation as 'leaky', vae: c.vae === true } }) as Extract<WorkerResponse, { type: 'load' }>;
  if (token !== state.token) return;
  state.latentDim = res.latentDim;
  state.modelReady = true;
  state.weights = { file, step: res.step, publishedAt, heardAt, loadedAt: Date.now(), firstDecodeAt: null };
  document.body.dataset.model = 'ready';
  document.body.dataset.weights = `${file}@${res.step ?? ''}`;
  $('engine-status').textContent = `${model.note} · ${file === 'live.safetensors' ? `live weights of ${r.name}${res.step !== null ? ` at step ${res.step}` : ''}` : `weights of ${r.name}`} loaded in ${res.ms.toFixed(0)} ms`;
  emit('model');
}

/** Live weights: one load at a time, and only the newest publication is loaded after it. */
let liveBusy = false;
let liveNext: { name: string; mtime: number; token: number; heardAt: number } | null = null;
async function loadLive(name: string, mtime: number, token: number): Promise<void> {
  liveNext = { name, mtime, token, heardAt: Date.now() };
  if (liveBusy) return;
  liveBusy = true;
  try {
    while (liveNext) {
      const job = liveNext;
      liveNext = null;
      if (job.token !== state.token || !state.run) continue;
      try {
        // a run opened before it wrote its config.json: its settings are needed to build the model
        if (!state.run.config) {
          const info = await getJson<RunDetail>(`/api/runs/${encodeURIComponent(job.name)}`);
          if (job.token !== state.token || !state.run) continue;
          state.run.config = info.config;
          renderRunInfo();
        }
        await loadModel(state.run, job.token, 'live.safetensors', job.mtime, job.heardAt);
      } catch { /* replaced meanwhile: the next publication will do */ }
    }
  } finally { liveBusy = false; }
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
  state.lastSnap = step;
  document.body.dataset.snap = String(step);
}

function closeEvents(): void {
  es?.close();
  es = null;
}

function watch(name: string, token: number): void {
  closeEvents();
  const source = new EventSource(`/api/runs/${encodeURIComponent(name)}/events?from=${state.metrics.length}&snap=${state.lastSnap}&weights=${state.weights?.file === 'live.safetensors' ? state.weights.publishedAt ?? 0 : 0}`);
  es = source;
  source.addEventListener('status', (e) => {
    if (token !== state.token) return;
    const { status, progress } = JSON.parse((e as MessageEvent).data) as { status: string; progress?: RunDetail['progress'] };
    if (state.run) { state.run.status = status; if (progress !== undefined) state.run.progress = progress; emit('run'); }
    const item = state.runs.find((r) => r.name === name);
    if (item) { item.status = status; renderRunList(); }
  });
  source.addEventListener('metrics', (e) => {
    if (token !== state.token) return;
    const { from, lines } = JSON.parse((e as MessageEvent).data) as { from: number; lines: MetricLine[] };
    state.metrics = state.metrics.slice(0, from).concat(lines);
    emit('metrics');
  });
  source.addEventListener('snapshot', (e) => {
    if (token !== state.token) return;
    const { step } = JSON.parse((e as MessageEvent).data) as { step: number };
    // the latents of the fixed test subset at this step: the scatter moves as the model learns
    void loadSnapshot(name, step, token).catch(() => { /* the next snapshot will do */ });
  });
  source.addEventListener('problem', (e) => {
    if (token !== state.token || !state.run) return;
    const { message } = JSON.parse((e as MessageEvent).data) as { message: string };
    const problems = state.run.problems ?? [];
    if (!problems.includes(message)) { state.run.problems = [...problems, message]; renderRunInfo(); }
  });
  source.addEventListener('weights', (e) => {
    if (token !== state.token) return;
    const { mtime } = JSON.parse((e as MessageEvent).data) as { mtime: number };
    void loadLive(name, mtime, token);
  });
  source.addEventListener('end', () => {
    closeEvents();
    if (token !== state.token) return;
    void refreshRuns().then(() => openRun(name, true));
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED && es === source) es = null;
  });
}

/** Opens run `name` (keepView: the same run again, e.g. at the end of its training, keeping zoom and marks). */
export async function openRun(name: string, keepView = false): Promise<void> {
  closeEvents();
  showError(null);
  const sameRun = state.runName === name && keepView;
  const token = beginRun(name, keepView);
  delete document.body.dataset.model;
  document.body.dataset.run = name;
  $('engine-status').textContent = model.note;
  renderRunList();
  renderRunInfo();
  emit('run');
  let r: RunDetail;
  try {
    r = await getJson<RunDetail>(`/api/runs/${encodeURIComponent(name)}`);
  } catch (e) { if (token === state.token) showError(`run ${name}: ${(e as Error).message}`); return; }
  if (token !== state.token) return;
  state.run = r;
  state.metrics = r.metrics;
  renderRunInfo();
  emit('run', 'metrics');
  try {
    if (r.hasLatents) {
      const l = parseLatents(await getBytes(`/runs/${encodeURIComponent(name)}/latents.safetensors`), 'test latents');
      if (token !== state.token) return;
      setLatents(l, sameRun);
    } else if (r.snapshotSteps.length && r.hasSnapshotLabels) {
      state.latents = null;
      await loadSnapshot(name, r.snapshotSteps.at(-1)!, token);
    } else setLatents(null);
    // a run training: the weights it published last, else its last checkpoint's
    if (r.hasLive && ['training', 'starting'].includes(r.status)) await loadModel(r, token, 'live.safetensors', r.liveMtime ?? null);
    else await loadModel(r, token);
  } catch (e) {
    if (token === state.token) showError(`run ${name}: ${(e as Error).message}`);
  }
  if (token !== state.token) return;
  if (['training', 'starting', 'finishing'].includes(r.status)) watch(name, token);
}

export function mountRuns(): void {
  $('refresh-runs').addEventListener('click', () => void refreshRuns());
  on('run', renderRunList);
}
