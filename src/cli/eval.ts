/** `latentlab eval (RUN | --checkpoint FILE --model M --latent L) [--json]`. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { createBackend } from '../engine/kernels/select.js';
import { checkLatentMap, type TrainConfig } from '../lab/run/config.js';
import { loadDataset } from '../lab/data/datasets.js';
import { evaluate, formatEval, type EvalReport } from '../lab/analysis/eval.js';
import { IMAGE_PIXELS, toModelImages } from '../lab/data/image.js';
import { readJson } from '../lab/run/atomic.js';
import { parseLatent } from '../lab/models/autoencoder.js';
import { loadModel, readLatents } from '../lab/run/run.js';
import { RunFolder } from '../lab/run/folder.js';
import { int, oneOf } from './options.js';
import { MODEL_CHOICES, splitModelChoice, type ModelChoice } from '../lab/run/config.js';
import { UsageError } from '../lab/run/errors.js';
import type { LatentModel } from '../lab/models/family.js';
import type { Split } from '../lab/data/idx.js';
import { perImageMse } from '../lab/analysis/quality.js';
import { errorHistogram, worstN, type ErrorHistogram, type WorstImage } from '../lab/analysis/anomaly.js';
import { errorHistogramFigure, errorHistogramFigureSize, labelledSheetFigure, labelledSheetSize } from '../viz/figures.js';
import { renderPng } from '../viz/node.js';
import { writeOut } from './pictures.js';
import path from 'node:path';
import '../node-backends.js';

export function register(program: Command): void {
  program.command('eval [run]')
    .description('test MSE ([-1,1] and [0,1]), PSNR, k-NN accuracy of the latents per class (digit, article), confused pairs; target accuracy for supervised runs')
    .option('--checkpoint <file>', 'a safetensors state dict made elsewhere (e.g. by the study\'s PyTorch code)')
    .option('--model <variant>', 'bn, simple, vae or vae-simple (with --checkpoint)', oneOf('--model', MODEL_CHOICES))
    .option('--latent <n|conv>', "latent size or 'conv' (with --checkpoint)", parseLatent)
    .option('--activation <a>', 'leaky or relu (with --checkpoint)', oneOf('--activation', ['leaky', 'relu'] as const))
    .option('--latent-activation <a>', 'leaky, relu or none (with --checkpoint)', oneOf('--latent-activation', ['leaky', 'relu', 'none'] as const))
    .option('--supervised <map.json>', 'the latent map a --checkpoint was trained with')
    .option('--dataset <name>', 'mnist or fashion-mnist', oneOf('--dataset', ['mnist', 'fashion-mnist'] as const))
    .option('--data-dir <dir>', 'folder with the IDX files')
    .option('--limit <n>', 'evaluate the first n test images', int('--limit'))
    .option('--backend <b>', 'auto | native | wasm | reference', oneOf('--backend', ['auto', 'native', 'wasm', 'reference'] as const))
    .option('--threads <n>', 'compute threads', int('--threads'))
    .option('--worst <n>', 'anomaly search: write the n worst-reconstructed test images (worst.png) and the per-class error histogram (error-histogram.png)', int('--worst'))
    .option('--out <dir>', 'folder for the --worst pictures (default: the run folder, or the current folder with --checkpoint)')
    .option('--json', 'one JSON object on stdout')
    .action(async (run: string | undefined, o: Record<string, unknown>) => {
      if (o.worst !== undefined && !((o.worst as number) >= 1)) throw new UsageError(`--worst: expected a whole number >= 1, got ${o.worst}`);
      const ctx: EvalContext = {};
      const report = await runEval(run, o, ctx);
      let worst: WorstReport | undefined;
      if (o.worst !== undefined) worst = await worstPictures(ctx, o.worst as number, (o.out as string | undefined) ?? (run ?? '.'), !!o.json);
      process.stdout.write(o.json ? `${JSON.stringify(worst ? { ...report, worst } : report)}\n` : formatReport(report) + (worst ? formatWorst(worst) : ''));
    });
}

/** What runEval loaded, for --worst. */
export interface EvalContext { model?: LatentModel; test?: Split; classes?: string[]; limit?: number; name?: string }

export async function runEval(run: string | undefined, o: Record<string, unknown>, out: EvalContext = {}): Promise<EvalReport> {
  if (!run && !o.checkpoint) throw new Error('eval: give a run folder or --checkpoint FILE (with --model and --latent)');
  let cfg: Partial<TrainConfig> = {};
  let file: string;
  let reference = null;
  if (run) {
    // the run folder first (its settings checked, naming the file and key), then a backend
    const folder = RunFolder.open(run);
    cfg = folder.readConfig();
    file = folder.file('model');
    const tl = folder.latentsFile('train');
    // the run's train latents are of its own data set: k-NN on another (--dataset) encodes that one's
    if (existsSync(tl) && (o.dataset === undefined || o.dataset === (cfg.dataset ?? 'mnist'))) reference = readLatents(tl);
  } else {
    file = o.checkpoint as string;
  }
  for (const k of ['latent', 'activation', 'latentActivation'] as const) if (o[k] !== undefined) (cfg as Record<string, unknown>)[k] = o[k];
  if (o.model !== undefined) Object.assign(cfg, splitModelChoice(o.model as ModelChoice));
  if (o.supervised) cfg.supervised = checkLatentMap(readJson(o.supervised as string, 'a latent map'), o.supervised as string);
  const backend = await createBackend(o.backend as string | undefined, o.threads ? { threads: o.threads as number } : {});
  const model = loadModel(file, cfg, backend);
  const data = await loadDataset((o.dataset as string | undefined) ?? cfg.dataset ?? 'mnist', { dataDir: (o.dataDir as string | undefined) ?? cfg.dataDir });
  if (!reference) {
    // k-NN needs train latents: encode a fixed 10,000-image subset of the training set
    const n = Math.min(10000, data.train.n);
    const x = toModelImages(data.train.images, new Float32Array(n * IMAGE_PIXELS), 0, n);
    reference = { z: model.encode(x, n), labels: data.train.labels.slice(0, n), dim: model.latentDim, n };
  }
  Object.assign(out, { model, test: data.test, classes: [...data.descriptor.classes], limit: o.limit as number | undefined, name: run ?? file });
  return evaluate(model, data.test, { limit: o.limit as number | undefined, reference, supervised: cfg.supervised, dataset: data.descriptor });
}

export function formatReport(r: EvalReport): string {
  return formatEval(r);
}

export interface WorstReport { images: WorstImage[]; histogram: ErrorHistogram; files: string[] }

/** `eval --worst N`: the N test images reconstructed worst (with class and error) and the per-class error histogram, as pictures and numbers. */
export async function worstPictures(ctx: EvalContext, n: number, dir: string, quiet: boolean): Promise<WorstReport> {
  const model = ctx.model!, test = ctx.test!, classes = ctx.classes!;
  const N = Math.min(ctx.limit ?? test.n, test.n);
  const x = toModelImages(test.images, new Float32Array(N * IMAGE_PIXELS), 0, N);
  const y = model.reconstruct(x, N);
  const errors = perImageMse(y, x, N);
  const labels = test.labels.subarray(0, N);
  const worst = worstN(errors, labels, Math.min(n, N), classes);
  const histogram = errorHistogram(errors, labels, classes, 25);
  const k = worst.length, imgs = new Float32Array(2 * k * IMAGE_PIXELS);
  // each worst image beside its reconstruction
  worst.forEach((w, i) => {
    imgs.set(x.subarray(w.index * IMAGE_PIXELS, (w.index + 1) * IMAGE_PIXELS), 2 * i * IMAGE_PIXELS);
    imgs.set(y.subarray(w.index * IMAGE_PIXELS, (w.index + 1) * IMAGE_PIXELS), (2 * i + 1) * IMAGE_PIXELS);
  });
  const sheetLabels = worst.flatMap((w) => [`#${w.index} ${w.className}`, `MSE ${w.error.toFixed(3)}`]);
  const sheet = {
    images: imgs, labels: sheetLabels, cols: 10,
    title: `The ${k} worst-reconstructed test images of ${path.basename(path.resolve(ctx.name ?? '.'))}`,
    caption: `pairs: test image (#index, class) then its reconstruction (MSE on [-1, 1]); mean test MSE ${(errors.reduce((a, v) => a + v, 0) / N).toFixed(4)}`,
  };
  const s1 = labelledSheetSize(2 * k, 10, sheet);
  const files: string[] = [];
  files.push(await writeOut(path.join(dir, 'worst.png'), await renderPng(s1.width, s1.height, (c) => labelledSheetFigure(c, sheet)), quiet));
  const s2 = errorHistogramFigureSize();
  const hist = { ...histogram, title: `Reconstruction error per class (${N} test images)`, xLabel: 'MSE of the image on [-1, 1]' };
  files.push(await writeOut(path.join(dir, 'error-histogram.png'), await renderPng(s2.width, s2.height, (c) => { errorHistogramFigure(c, hist); }), quiet));
  return { images: worst, histogram, files };
}

export function formatWorst(w: WorstReport): string {
  const lines = [`worst reconstructed: ${w.images.map((i) => `#${i.index} ${i.className} (MSE ${i.error.toFixed(4)})`).join(', ')}`,
    'reconstruction error per class (mean, max):'];
  for (const p of w.histogram.perClass) lines.push(`  ${p.className}: ${p.mean.toFixed(4)}, ${p.max.toFixed(4)} (${p.n} images)`);
  return `${lines.join('\n')}\n`;
}
