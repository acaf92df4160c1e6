/**
 * One run of `latentlab study`, in its own process (spawned by src/cli/study.ts with an IPC
 * channel): train (or resume from the checkpoint, or skip when finished), evaluate (test MSE,
 * k-NN, confused pairs, target accuracy, latent units), draw the run's pictures, write
 * study-eval.json. When the parent goes away (killed or Ctrl-C) or sends SIGTERM, it writes a
 * checkpoint at the current step and exits, so the next `latentlab study` continues from there.
 *
 *   node dist/cli/study-worker.js '<job JSON>'
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { createBackend } from '../engine/kernels/select.js';
import { Rng } from '../engine/rng.js';
import type { TrainConfig } from '../lab/run/config.js';
import { loadDataset } from '../lab/data/datasets.js';
import { evaluate } from '../lab/analysis/eval.js';
import { digitLatents } from '../lab/analysis/generate.js';
import { writeJsonAtomic } from '../lab/run/atomic.js';
import { RunFolder } from '../lab/run/folder.js';
import { openRun } from '../lab/run/run.js';
import { latentCentreSpread, latentUnitStats, STUDY_PLANE, ZOOM_459, type RunFigures } from '../lab/study/study.js';
import { train } from '../lab/train/train.js';
import { sheetFigure, sheetFigureSize } from '../viz/figures.js';
import { renderPng } from '../viz/node.js';
import { gifPicture, latentPicture, samplePicture, writeOut } from './pictures.js';
import { priorPicture } from './sample.js';
import { isVae } from '../lab/models/family.js';
import '../node-backends.js';
import { IMAGE_H, IMAGE_W, className, datasetInfo } from '../lab/data/image.js';

export interface StudyJob {
  name: string;
  dir: string;
  config: Partial<TrainConfig>;
  totalSteps: number;
  testLimit?: number;
  trainLatents: number;
  dataDir?: string;
}

export type WorkerMessage =
  | { type: 'progress'; step: number; totalSteps: number; loss: number; samplesPerSec: number }
  | { type: 'log'; line: string }
  | { type: 'phase'; phase: 'train' | 'resume' | 'evaluate' | 'pictures'; step?: number }
  | { type: 'done'; figures: RunFigures };

/** A message to the parent; a parent gone (send fails) means stop, like a lost channel. */
const send = (m: WorkerMessage): void => {
  if (process.connected) process.send?.(m, undefined, {}, (err) => { if (err) requestStop(); });
};

let stopRequested = false;
let training = false;
function requestStop(): void {
  stopRequested = true;
  // outside the training loop there is nothing worth keeping: the next study redoes it
  if (!training) process.exit(130);
}

function finished(folder: RunFolder, totalSteps: number): boolean {
  if (!folder.has('model')) return false;
  try {
    const r = folder.readResult();
    return !!r && !r.stopped && (r.steps ?? 0) >= totalSteps;
  } catch { return false; }
}

export async function runJob(job: StudyJob): Promise<RunFigures> {
  const c = job.config;
  const backend = await createBackend(c.backend ?? 'auto', { threads: c.threads, onNotice: (l) => send({ type: 'log', line: l }) });
  const data = await loadDataset(c.dataset ?? 'mnist', { dataDir: c.dataDir ?? job.dataDir });
  const dir = job.dir;
  const folder = RunFolder.at(dir);
  if (!finished(folder, job.totalSteps)) {
    const resume = folder.has('checkpoint') && folder.has('config');
    send({ type: 'phase', phase: resume ? 'resume' : 'train' });
    let lastSend = 0;
    training = true;
    const res = await train(c, {
      out: dir, resume, overwrite: !resume, data, backend, testLimit: job.testLimit, trainLatents: job.trainLatents,
      callbacks: {
        onLog: (line) => send({ type: 'log', line }),
        onStep: (s, trainer) => {
          const now = Date.now();
          if (now - lastSend > 500 || s.step === s.totalSteps) {
            lastSend = now;
            send({ type: 'progress', step: s.step, totalSteps: s.totalSteps, loss: s.loss, samplesPerSec: s.samplesPerSec });
          }
          // the trainer writes a checkpoint at this step and marks the run stopped
          if (stopRequested && s.step < s.totalSteps) trainer.requestStop('SIGTERM');
        },
      },
    });
    training = false;
    if (res.signal) {
      // into the log file directly: the parent that read our stderr may be gone
      appendFileSync(folder.file('workerLog'), `stopped at step ${res.steps}: checkpoint written\n`);
      process.exit(130);
    }
  }
  if (stopRequested) process.exit(130);

  send({ type: 'phase', phase: 'evaluate' });
  const run = await openRun(RunFolder.open(dir), { backend });
  const cfg = run.config;
  const ev = evaluate(run.model, data.test, { limit: job.testLimit, reference: run.trainLatents, supervised: cfg.supervised, dataset: data.descriptor });
  const units = latentUnitStats(run.testLatents.z, run.testLatents.dim);
  const result = (run.result ?? {}) as Record<string, unknown>;

  send({ type: 'phase', phase: 'pictures' });
  const pictures: Record<string, string> = {};
  const put = async (key: string, file: string, bytes: Uint8Array) => {
    await writeOut(run.folder.picture(file), bytes, true);
    pictures[key] = file;
  };
  await put('latent', 'latent.png', (await latentPicture(run, 'pca')).bytes);
  if (cfg.supervised) {
    await put('sample', 'sample.png', (await samplePicture(run, { box: STUDY_PLANE, gridN: 16 })).bytes);
    await put('zoom', 'zoom-459.png', (await samplePicture(run, { box: ZOOM_459, gridN: 12 })).bytes);
  } else {
    await put('sample', 'sample.png', (await samplePicture(run, { gridN: 12 })).bytes);
  }
  if (cfg.supervised || run.testLatents.dim === 2) {
    // generated digits 0-9: 10 per digit near its target (supervised) or its centroid
    const per = 10, rng = new Rng(cfg.seed ?? 0);
    const z = new Float32Array(10 * per * run.testLatents.dim);
    for (let d = 0; d < 10; d++) z.set(digitLatents(run, d, per, cfg.supervised ? 0.5 : 0.5, rng), d * per * run.testLatents.dim);
    const images = run.model.decode(z, 10 * per);
    const sheet = {
      images, rows: 10, cols: per, rowLabels: Array.from({ length: 10 }, (_, d) => className(datasetInfo(cfg.dataset), d)),
      title: `Generated digits of ${run.name}`,
      caption: cfg.supervised ? 'decoded near each digit\'s target point (noise σ = 0.5)' : 'decoded near each digit\'s centroid (noise 0.5 × its spread)',
    };
    const size = sheetFigureSize(10, per, IMAGE_H, IMAGE_W, sheet);
    await put('digits', 'digits.png', await renderPng(size.width, size.height, (ctx) => sheetFigure(ctx, sheet)));
  }
  if (isVae(run.model) && run.testLatents.dim >= 2) await put('prior', 'prior.png', (await priorPicture(run, 12)).bytes);
  if (run.snapshotSteps().length) await put('gif', 'training.gif', (await gifPicture(run)).bytes);

  const figures: RunFigures = {
    name: job.name,
    steps: Number(result.steps ?? 0), totalSteps: job.totalSteps,
    testMse: ev.mse, psnr: ev.psnr, testImages: ev.n,
    knnAccuracy: ev.knn?.accuracy ?? null, references: ev.knn?.references ?? 0, confused: ev.knn?.confused ?? [],
    ...(ev.supervised ? {
      targetAccuracy: ev.supervised.nearestTargetAccuracy, targetPerDigit: ev.supervised.perClass, meanTargetDistance: ev.supervised.meanDistance,
    } : {}),
    ...(ev.vae ? { kl: ev.vae.kl } : {}),
    ...latentCentreSpread(run.testLatents.z, run.testLatents.dim),
    ...units, latentDim: run.testLatents.dim,
    finalLoss: Number(result.finalLoss ?? NaN), seconds: Number(result.seconds ?? 0), samplesPerSec: Number(result.samplesPerSec ?? 0),
    backend: String(result.backend ?? backend.name), threads: Number(result.threads ?? backend.threads),
    pictures,
  };
  writeJsonAtomic(run.folder.file('studyEval'), figures);
  backend.dispose?.();
  return figures;
}

const invokedDirectly = process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]));
if (invokedDirectly) {
  // a parent killed outright closes our pipes: ignore write errors, notice the lost IPC channel
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  process.on('disconnect', requestStop);
  process.on('SIGTERM', requestStop);
  process.on('SIGINT', requestStop);
  const job = JSON.parse(process.argv[2] ?? '{}') as StudyJob;
  runJob(job).then((figures) => {
    if (process.connected && process.send) process.send({ type: 'done', figures } satisfies WorkerMessage, () => process.exit(0));
    else process.exit(0);
  }, (e: unknown) => {
    process.stderr.write(`${job.name}: ${e instanceof Error ? (process.env.LATENTLAB_DEBUG ? e.stack : e.message) : String(e)}\n`);
    process.exit(1);
  });
}
