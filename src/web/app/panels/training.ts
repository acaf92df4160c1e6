/** Training: the New-run form, the status line of the open run, and Stop. */
import { $, el, fmt, getJson, postJson, showError } from '../dom.js';
import { progressText } from '../progress.js';
import { on, state, type RunDetail } from '../store.js';
import { openRun, refreshRuns } from './runs.js';

const form = $<HTMLFormElement>('train-form');

/** The step the open run has reached: its status, its last metrics line, or a finished run's result. */
function runStep(r: RunDetail): number | null {
  const cands = [r.progress?.step, state.metrics.at(-1)?.step, r.status === 'done' ? (r.result?.steps as number | undefined) : undefined]
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return cands.length ? Math.max(...cands) : null;
}

function renderStatus(): void {
  const r = state.run;
  const stop = $<HTMLButtonElement>('stop');
  const resume = $<HTMLButtonElement>('resume');
  if (!r) {
    $('run-status').textContent = state.runName ? 'loading…' : '';
    $('train-status').textContent = '';
    stop.disabled = true;
    resume.hidden = true;
    delete document.body.dataset.runStatus;
    return;
  }
  const st = r.status;
  const total = r.progress?.totalSteps ?? (typeof r.config?.totalSteps === 'number' ? r.config.totalSteps : null);
  const perEpoch = r.progress?.perEpoch ?? (typeof r.config?.batchesPerEpoch === 'number' ? r.config.batchesPerEpoch : null);
  const line = progressText({ status: st, step: runStep(r), totalSteps: total, perEpoch });
  $('run-status').textContent = `${line}${r.error ? `: ${r.error}` : ''}`;
  const live = st === 'training' || st === 'starting';
  stop.disabled = !(live && r.ownJob);
  resume.hidden = !r.canResume;
  resume.disabled = !r.canResume;
  const m = state.metrics.filter((l) => typeof l.loss === 'number').at(-1);
  const extra = m && live ? ` · training loss ${fmt(m.loss!, 4)}${m.samplesPerSec ? ` · ${m.samplesPerSec} images/s` : ''}` : '';
  $('train-status').textContent = line + extra;
  document.body.dataset.runStatus = st;
}

async function submit(e: SubmitEvent): Promise<void> {
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
    const body = await postJson<{ name: string }>('/api/train', { name: String(f.get('name') ?? '').trim(), settings, testLimit: String(f.get('testLimit') ?? '').trim() || undefined });
    msg.textContent = `started ${body.name}`;
    await refreshRuns();
    await openRun(body.name);
  } catch (err) {
    msg.textContent = `not started: ${(err as Error).message}`;
  } finally {
    btn.disabled = false;
  }
}

/** Fills the form's choices and defaults from /api/info. */
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

export function mountTraining(): Promise<void> {
  form.addEventListener('submit', (e) => void submit(e));
  $('stop').addEventListener('click', async () => {
    const r = state.run;
    if (!r) return;
    $<HTMLButtonElement>('stop').disabled = true;
    try {
      await postJson(`/api/runs/${encodeURIComponent(r.name)}/stop`, {});
      $('train-status').textContent = 'stopping: writing a checkpoint at the current step…';
    } catch (e) { showError(`stop: ${(e as Error).message}`); }
  });
  $('resume').addEventListener('click', async () => {
    const r = state.run;
    if (!r) return;
    $<HTMLButtonElement>('resume').disabled = true;
    try {
      await postJson(`/api/runs/${encodeURIComponent(r.name)}/resume`, {});
      await refreshRuns();
      await openRun(r.name, true);
    } catch (e) { showError(`resume: ${(e as Error).message}`); $<HTMLButtonElement>('resume').disabled = false; }
  });
  on('run', renderStatus);
  on('metrics', renderStatus);
  on('reset', renderStatus);
  return fillForm();
}
