/**
 * `latentlab study`: runs the study's experiments (src/lab/study/study.ts), each as its own process
 * (src/cli/study-worker.ts), `--jobs` at a time, then writes report.md and a self-contained
 * report.html into the study folder. Interrupted studies resume: finished runs are skipped, the
 * others continue from their checkpoint.
 *
 *   <out>/study.json         the study's settings (a folder holds one kind of study: quick or full)
 *   <out>/runs/<name>/       one run folder per experiment (as `latentlab train` writes it, plus
 *                            study-eval.json, pictures, worker.log)
 *   <out>/loss-*.png         combined loss plots
 *   <out>/report.md, report.html
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { findDataset } from '../lab/data/datasets.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../lab/run/atomic.js';
import { RunFolder } from '../lab/run/folder.js';
import { toHtml, toMarkdown } from '../lab/study/report.js';
import { FAMILY_LATENTS, buildStudyReport, familyRunName, studyRuns, studyScale, type RunFigures, type StudyOptions, type StudyReportInput, type StudyRun } from '../lab/study/study.js';
import { FAMILY_KINDS } from '../lab/study/reference.js';
import { int, oneOf } from './options.js';
import { familyPicture, lossPicture, openRunForPictures, readLossSource, type OpenedRun } from './pictures.js';
import { progress, type Progress } from './progress.js';
import type { StudyJob, WorkerMessage } from './study-worker.js';

interface StudyFlags {
  out?: string; quick?: boolean; epochs?: number; steps?: number; jobs?: number; threads?: number; seeds?: number;
  only?: string; dataDir?: string; backend?: string; report?: boolean;
}

export function register(program: Command): void {
  program.command('study')
    .description("run the study's experiments (2-D seeds, supervised latent map, 10-D, conv latent, ReLU, optimisers) and write report.md + report.html")
    .option('--out <dir>', 'study folder (default studies/<time>); an existing one is resumed')
    .option('--quick', `a few steps per experiment on 1,000 test images (tests, CI)`)
    .option('--epochs <n>', 'epochs per experiment (default 1)', int('--epochs'))
    .option('--steps <n>', 'steps per experiment (overrides --quick/--epochs length)', int('--steps'))
    .option('--jobs <n>', 'runs in parallel (default: cores / threads)', int('--jobs'))
    .option('--threads <n>', 'compute threads per run (default 1 when jobs > 1)', int('--threads'))
    .option('--seeds <n>', 'seeds of the unsupervised 2-D experiment (default 3)', int('--seeds'))
    .option('--only <names>', 'comma-separated run names to run (default all)')
    .option('--data-dir <dir>', 'folder with the MNIST IDX files')
    .option('--backend <b>', 'auto | native | wasm | reference', oneOf('--backend', ['auto', 'native', 'wasm', 'reference'] as const))
    .option('--no-report', 'run the experiments only')
    .action(async (o: StudyFlags) => {
      const code = await runStudy(o);
      if (code) throw new Error(`study: ${code === 130 ? 'interrupted' : 'some runs failed'} (run the same command again to continue)`);
    });
}

/** The worker script: next to this file when built; from dist/ when this file runs as TypeScript (tests). */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return path.join(path.dirname(here), 'study-worker.js');
  return path.resolve(path.dirname(here), '../../dist/cli/study-worker.js');
}

type Status = 'done' | 'resume' | 'new';

function statusOf(dir: string): Status {
  const f = RunFolder.at(dir);
  if (f.has('studyEval') && f.has('result')) return 'done';
  if (f.has('checkpoint')) return 'resume';
  return 'new';
}

const fmtFig = (f: RunFigures): string => [
  `test MSE ${f.testMse.toFixed(4)}`,
  f.knnAccuracy !== null ? `k-NN ${f.knnAccuracy.toFixed(3)}` : '',
  f.targetAccuracy !== undefined ? `target acc ${f.targetAccuracy.toFixed(3)}` : '',
  `${f.steps} steps in ${f.seconds.toFixed(0)} s (${f.samplesPerSec} samples/s)`,
].filter(Boolean).join(', ');

export async function runStudy(o: StudyFlags): Promise<number> {
  const t0 = Date.now();
  const opts: StudyOptions = {
    quick: !!o.quick, epochs: o.epochs, steps: o.steps, seeds: o.seeds,
    only: o.only ? o.only.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
  };
  if (o.quick && o.epochs !== undefined) throw new Error('--epochs: not with --quick (a quick study runs a few steps; use --steps N)');
  for (const k of ['epochs', 'steps', 'jobs', 'threads', 'seeds'] as const)
    if (o[k] !== undefined && !(o[k]! >= 1)) throw new Error(`--${k}: expected a positive integer, got ${o[k]}`);
  const scale = studyScale(opts);
  const runs = studyRuns(opts);
  const out = o.out ?? path.join('studies', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19));
  const runsDir = path.join(out, 'runs');
  // find (or download) the data once, before any folder or worker: one clear error instead of one per run
  await findDataset('mnist', { dataDir: o.dataDir });
  mkdirSync(runsDir, { recursive: true });

  // one kind of study per folder
  const mode = { quick: scale.quick, epochs: scale.epochs, steps: scale.totalSteps };
  const studyFile = path.join(out, 'study.json');
  if (existsSync(studyFile)) {
    const prev = readJson<{ mode?: typeof mode }>(studyFile, 'a study description');
    if (prev.mode && (prev.mode.quick !== mode.quick || prev.mode.steps !== mode.steps))
      throw new Error(`--out: ${out} holds a ${prev.mode.quick ? 'quick ' : ''}study of ${prev.mode.steps} steps per run; this one is ${mode.quick ? 'quick, ' : ''}${mode.steps} steps per run (use another folder)`);
  }
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const threads = o.threads ?? (o.jobs !== undefined && o.jobs <= 1 ? cores : 1);
  const jobs = Math.max(1, Math.min(o.jobs ?? Math.max(1, Math.floor(cores / threads)), runs.length));
  const backend = o.backend ?? process.env.LATENTLAB_BACKEND ?? 'auto';
  writeJsonAtomic(studyFile, { mode, runs: runs.map((r) => r.name), dataDir: o.dataDir ?? null, backend, jobs, threads });

  const status = new Map(runs.map((r) => [r.name, statusOf(path.join(runsDir, r.name))] as const));
  const count = (s: Status) => [...status.values()].filter((v) => v === s).length;
  let bar: Progress | null = null;
  const log = (line: string) => (bar ? bar.log(line) : process.stderr.write(`${line}\n`));
  log(`study: ${runs.length} runs (${count('done')} finished, ${count('resume')} to resume, ${count('new')} new), ${scale.totalSteps} steps each, `
    + `${jobs} at a time × ${threads} thread${threads > 1 ? 's' : ''}, backend ${backend} -> ${path.resolve(out)}`);

  const figures = new Map<string, RunFigures>();
  const readFigures = (name: string): RunFigures | null => {
    const f = RunFolder.at(path.join(runsDir, name)).file('studyEval');
    return existsSync(f) ? readJson<RunFigures>(f, "a study run's figures") : null;
  };
  const pending: StudyRun[] = [];
  for (const r of runs) {
    const f = status.get(r.name) === 'done' ? readFigures(r.name) : null;
    if (f) { figures.set(r.name, f); log(`skip   ${r.name}: finished (${fmtFig(f)})`); } else pending.push(r);
  }

  // progress over the steps still to train
  const stepsDone = new Map<string, number>();
  const totalToTrain = pending.length * scale.totalSteps;
  if (pending.length && process.stderr.isTTY) bar = progress(totalToTrain, 'study');
  const updateBar = () => {
    if (!bar) return;
    const done = [...stepsDone.values()].reduce((a, b) => a + b, 0);
    bar.update(Math.min(done, totalToTrain), { runs: `${figures.size}/${runs.length}` });
  };

  const children = new Set<ChildProcess>();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    log('study: stopping; the runs write a checkpoint (run the same command again to continue)');
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const failures: { name: string; message: string }[] = [];
  let trainedNow = 0;

  const runOne = (r: StudyRun): Promise<void> => new Promise((resolve) => {
    const dir = path.join(runsDir, r.name);
    mkdirSync(dir, { recursive: true });
    const st = status.get(r.name)!;
    const job: StudyJob = {
      name: r.name, dir, totalSteps: scale.totalSteps, testLimit: scale.testLimit, trainLatents: scale.trainLatents, dataDir: o.dataDir,
      config: { ...r.config, backend, threads, ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
    };
    const logFile = path.join(dir, 'worker.log');
    appendFileSync(logFile, `--- ${new Date().toISOString()} ${st === 'resume' ? 'resume' : 'start'}\n`);
    const child = spawn(process.execPath, [workerScript(), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    children.add(child);
    let lastErr = '';
    const keep = (b: Buffer) => {
      appendFileSync(logFile, b);
      const lines = b.toString().trim().split('\n');
      if (lines.length && lines[lines.length - 1]) lastErr = lines[lines.length - 1];
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let started = false;
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'phase') {
        if ((m.phase === 'train' || m.phase === 'resume') && !started) {
          started = true;
          trainedNow++;
          log(`${m.phase === 'resume' ? 'resume' : 'start '} ${r.name}: ${r.title}`);
        } else if (m.phase === 'evaluate' && !started) {
          log(`eval   ${r.name}: trained earlier, evaluating`);
        }
      } else if (m.type === 'progress') {
        stepsDone.set(r.name, m.step);
        updateBar();
      } else if (m.type === 'log') {
        appendFileSync(logFile, `${m.line}\n`);
        if (/^resumed /.test(m.line)) log(`       ${r.name}: ${m.line.replace(/^resumed \S+ /, 'resumed ')}`);
      }
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      const f = code === 0 ? readFigures(r.name) : null;
      if (f) {
        figures.set(r.name, f);
        stepsDone.set(r.name, scale.totalSteps);
        updateBar();
        log(`done   ${r.name}: ${fmtFig(f)}`);
      } else if (interrupted || code === 130) {
        failures.push({ name: r.name, message: 'interrupted' });
        log(`stop   ${r.name}: interrupted`);
      } else {
        failures.push({ name: r.name, message: lastErr || `exit ${code ?? signal}` });
        log(`FAIL   ${r.name}: ${lastErr || `exit ${code ?? signal}`} (see ${logFile})`);
      }
      resolve();
    });
  });

  // a small pool: `jobs` runs at a time
  const queue = [...pending];
  await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
    while (queue.length && !interrupted) await runOne(queue.shift()!);
  }));
  for (const r of queue) failures.push({ name: r.name, message: 'not started' });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  (bar as Progress | null)?.stop();
  if (interrupted) return 130;

  if (o.report !== false) {
    const files = await writeStudyReport(out, runs, figures, {
      scale, jobs, threads, backend, failures, trainedNow, wallSeconds: (Date.now() - t0) / 1000,
      command: `latentlab ${process.argv.slice(2).join(' ')}`,
    });
    for (const f of files) process.stdout.write(`wrote ${f}\n`);
  }
  process.stderr.write(`study: ${figures.size} of ${runs.length} runs finished in ${((Date.now() - t0) / 1000).toFixed(0)} s${failures.length ? `; ${failures.length} failed` : ''}\n`);
  return failures.length ? 1 : 0;
}

/** Draws the combined pictures and writes report.md and report.html; returns the files written. */
export async function writeStudyReport(out: string, runs: StudyRun[], figures: Map<string, RunFigures>, s: {
  scale: ReturnType<typeof studyScale>; jobs: number; threads: number; backend: string; failures: { name: string; message: string }[];
  trainedNow: number; wallSeconds: number; command: string;
}): Promise<string[]> {
  const runsDir = path.join(out, 'runs');
  const wrote: string[] = [];
  const combined: StudyReportInput['combined'] = {};
  const lossOf = async (file: string, names: string[], log?: boolean) => {
    const have = names.filter((n) => figures.has(n));
    if (have.length < 2) return undefined;
    const { bytes } = await lossPicture(have.map((n) => readLossSource(path.join(runsDir, n))), { log });
    writeFileAtomic(path.join(out, file), bytes);
    wrote.push(path.join(out, file));
    return file;
  };
  combined.lossModels = await lossOf('loss-latents.png', ['opt-adam', 'z10-adam', 'conv-adam'], true);
  combined.lossOptim = await lossOf('loss-optimisers.png', ['unsup-s0', ...runs.filter((r) => r.section === 'optim').map((r) => r.name)]);
  combined.family = {};
  for (const latent of FAMILY_LATENTS) {
    const names = FAMILY_KINDS.map((k) => familyRunName(k, latent));
    if (!names.every((n) => figures.has(n))) continue;
    const opened: OpenedRun[] = [];
    try {
      for (const n of names) opened.push(await openRunForPictures(path.join(runsDir, n)));
      const kindTitle: Record<string, string> = { plain: 'plain', vae: 'variational (VAE)', denoising: 'denoising' };
      const pic = await familyPicture(opened.map((o, i) => ({ run: o.run, title: kindTitle[FAMILY_KINDS[i]], prior: FAMILY_KINDS[i] === 'vae' })), {
        title: `Plain vs variational vs denoising, ${latent}-D latent (test set, same axes)`,
        caption: `${latent > 2 ? 'each model on its own PCA plane; ' : ''}titles: the 1-99% range of each model's latents; dashed box: the region its grid decodes (plain, denoising: 1st-99th percentile of its latents; VAE: the prior's 5-95% quantiles)`,
      });
      const file = `family-z${latent}.png`;
      writeFileAtomic(path.join(out, file), pic.bytes);
      wrote.push(path.join(out, file));
      combined.family[latent] = file;
    } finally {
      for (const o of opened) o.close();
    }
  }
  const configs = new Map<string, Record<string, unknown>>();
  for (const r of runs) {
    const f = RunFolder.at(path.join(runsDir, r.name));
    if (f.has('config')) configs.set(r.name, f.readConfigRecord());
  }
  const doc = buildStudyReport({
    runs, figures, configs, scale: s.scale, runsDir: 'runs', combined, jobs: s.jobs, threads: s.threads, backend: s.backend,
    wallSeconds: s.wallSeconds, trainedNow: s.trainedNow, command: s.command, failures: s.failures,
  });
  const md = path.join(out, 'report.md'), html = path.join(out, 'report.html');
  writeFileAtomic(md, toMarkdown(doc));
  writeFileAtomic(html, toHtml(doc, (src) => readFileSync(path.join(out, src))));
  wrote.push(md, html);
  return wrote;
}
