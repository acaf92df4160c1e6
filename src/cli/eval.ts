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
import '../node-backends.js';

export function register(program: Command): void {
  program.command('eval [run]')
    .description('test MSE ([-1,1] and [0,1]), PSNR, k-NN accuracy of the latents per class (digit, article), confused pairs; target accuracy for supervised runs')
    .option('--checkpoint <file>', 'a safetensors state dict made elsewhere (e.g. by the study\'s PyTorch code)')
    .option('--model <variant>', 'bn or simple (with --checkpoint)', oneOf('--model', ['bn', 'simple'] as const))
    .option('--latent <n|conv>', "latent size or 'conv' (with --checkpoint)", parseLatent)
    .option('--activation <a>', 'leaky or relu (with --checkpoint)', oneOf('--activation', ['leaky', 'relu'] as const))
    .option('--latent-activation <a>', 'leaky, relu or none (with --checkpoint)', oneOf('--latent-activation', ['leaky', 'relu', 'none'] as const))
    .option('--supervised <map.json>', 'the latent map a --checkpoint was trained with')
    .option('--dataset <name>', 'mnist or fashion-mnist', oneOf('--dataset', ['mnist', 'fashion-mnist'] as const))
    .option('--data-dir <dir>', 'folder with the IDX files')
    .option('--limit <n>', 'evaluate the first n test images', int('--limit'))
    .option('--backend <b>', 'auto | native | wasm | reference', oneOf('--backend', ['auto', 'native', 'wasm', 'reference'] as const))
    .option('--threads <n>', 'compute threads', int('--threads'))
    .option('--json', 'one JSON object on stdout')
    .action(async (run: string | undefined, o: Record<string, unknown>) => {
      const report = await runEval(run, o);
      process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    });
}

export async function runEval(run: string | undefined, o: Record<string, unknown>): Promise<EvalReport> {
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
  for (const k of ['model', 'latent', 'activation', 'latentActivation'] as const) if (o[k] !== undefined) (cfg as Record<string, unknown>)[k] = o[k];
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
  return evaluate(model, data.test, { limit: o.limit as number | undefined, reference, supervised: cfg.supervised, dataset: data.descriptor });
}

export function formatReport(r: EvalReport): string {
  return formatEval(r);
}
