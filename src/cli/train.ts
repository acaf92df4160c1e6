/** `latentlab train`: flags -> TrainConfig -> lab.train(), with a progress bar, then the run's pictures. */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { parseNoise } from '../lab/data/noise.js';
import { DEFAULT_BETA, MODEL_CHOICES, OPTIMIZERS, SCHEDULERS, STUDY_LATENT_MAP, checkLatentMap, resolveTrainConfig, type TrainConfig } from '../lab/run/config.js';
import { parseLatent } from '../lab/models/autoencoder.js';
import { readJson, readJsonObject, UsageError } from '../lab/run/atomic.js';
import { RunFolder } from '../lab/run/folder.js';
import { train } from '../lab/train/train.js';
import { SIGNAL_EXIT } from '../lab/train/signals.js';
import { int, num, numList, oneOf } from './options.js';
import { progress, type Progress } from './progress.js';
import { collectGarbage, releaseMemory } from './memory.js';
import '../node-backends.js';

/** Steps between the full garbage collections of a training run (one takes a few ms). */
const GC_EVERY_STEPS = 200;

/** Reads a --supervised value: a JSON file path, or empty for the study's map. */
export function readLatentMap(v: string | true): TrainConfig['supervised'] {
  if (v === true || v === '' || v === 'study') return STUDY_LATENT_MAP;
  return checkLatentMap(readJson(v, 'a latent map: JSON mapping the digits 0-9 to [x, y]'), v);
}

/** --noise: a usage error (exit 2) naming the flag and what was expected. */
const noiseFlag = (v: string): string => {
  try { parseNoise(v); return v.trim(); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
};

/** --latent: a usage error (exit 2) when it is not a size or 'conv'. */
const latentFlag = (v: string): ReturnType<typeof parseLatent> => {
  try { return parseLatent(v); } catch (e) { throw new UsageError((e as Error).message); }
};

export function register(program: Command): void {
  program.command('train')
    .description("train the study's autoencoder (defaults: bn, z=2, SGD momentum 0.9 + CyclicLR 1e-4..1e-2, batch 64, MSE)")
    .option('--config <file>', 'JSON file with the same keys as the flags (camelCase), overridden by flags')
    .option('--out <dir>', 'run folder (default runs/<time>)')
    .option('--resume <dir>', 'continue a stopped run from its last checkpoint')
    .option('--overwrite', 'replace the run already in --out')
    .option('--dataset <name>', 'mnist or fashion-mnist', oneOf('--dataset', ['mnist', 'fashion-mnist'] as const))
    .option('--data-dir <dir>', 'folder with the IDX files (else $LATENTLAB_DATA, the cache, /usr/share/datasets, download)')
    .option('--model <variant>', 'bn (the study), simple (no BatchNorm, no Tanh), vae (a VAE on the bn body) or vae-simple', oneOf('--model', MODEL_CHOICES))
    .option('--beta <x>', `a VAE's KL weight: loss = MSE + beta * KL (default 1/784 = ${DEFAULT_BETA.toPrecision(3)}, a Gaussian decoder's scale)`, num('--beta'))
    .option('--kl-warmup <steps>', "raise a VAE's KL weight linearly from 0 to --beta over this many steps", int('--kl-warmup'))
    .option('--noise <spec>', 'denoising: corrupt the inputs (targets stay clean): gaussian:SIGMA | saltpepper:P | mask:P | none', noiseFlag)
    .option('--activity-l1 <lambda>', "sparse: L1 penalty on the latent, lambda * sum|z| / batch (Keras's activity_regularizer)", num('--activity-l1'))
    .option('--init <file>', 'start from the weights of a checkpoint (safetensors, or a PyTorch torch.save state_dict)')
    .option('--latent <n|conv>', "latent size (2, 10, any n >= 1) or 'conv' for (2,7,7)", latentFlag)
    .option('--activation <a>', 'leaky or relu', oneOf('--activation', ['leaky', 'relu'] as const))
    .option('--latent-activation <a>', 'after the latent: leaky (the study), relu or none', oneOf('--latent-activation', ['leaky', 'relu', 'none'] as const))
    .option('--optimizer <name>', OPTIMIZERS.join(' | '), oneOf('--optimizer', OPTIMIZERS))
    .option('--lr <x>', 'learning rate (cyclic/onecycle set it from --base-lr/--max-lr)', num('--lr'))
    .option('--momentum <x>', 'SGD momentum', num('--momentum'))
    .option('--weight-decay <x>', 'weight decay', num('--weight-decay'))
    .option('--nesterov', 'Nesterov momentum')
    .option('--betas <b1,b2>', 'Adam betas', numList('--betas', 2))
    .option('--scheduler <name>', SCHEDULERS.join(' | '), oneOf('--scheduler', SCHEDULERS))
    .option('--base-lr <x>', 'CyclicLR base_lr', num('--base-lr'))
    .option('--max-lr <x>', 'CyclicLR / OneCycleLR max_lr', num('--max-lr'))
    .option('--step-size-up <n>', 'CyclicLR step_size_up (batches)', int('--step-size-up'))
    .option('--step-size-down <n>', 'CyclicLR step_size_down (batches)', int('--step-size-down'))
    .option('--mode <m>', 'CyclicLR mode: triangular | triangular2 | exp_range', oneOf('--mode', ['triangular', 'triangular2', 'exp_range'] as const))
    .option('--gamma <x>', 'exp_range / StepLR / MultiStepLR / ExponentialLR gamma', num('--gamma'))
    .option('--no-cycle-momentum', 'do not cycle the momentum with the LR')
    .option('--pct-start <x>', 'OneCycleLR pct_start', num('--pct-start'))
    .option('--anneal-strategy <s>', 'OneCycleLR cos | linear', oneOf('--anneal-strategy', ['cos', 'linear'] as const))
    .option('--three-phase', 'OneCycleLR three_phase')
    .option('--step-size <n>', 'StepLR step_size (batches)', int('--step-size'))
    .option('--milestones <a,b,...>', 'MultiStepLR milestones (batches)', numList('--milestones'))
    .option('--t-max <n>', 'CosineAnnealingLR T_max (batches; default the whole run)', int('--t-max'))
    .option('--eta-min <x>', 'CosineAnnealingLR eta_min', num('--eta-min'))
    .option('--factor <x>', 'ReduceLROnPlateau factor', num('--factor'))
    .option('--patience <n>', 'ReduceLROnPlateau patience (epochs)', int('--patience'))
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--max-steps <n>', 'stop after n batches', int('--max-steps'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--seed <n>', 'seed of initialisation, shuffling and sampling', int('--seed'))
    .option('--threads <n>', 'compute threads (default all cores)', int('--threads'))
    .option('--backend <b>', 'auto | native | wasm | reference (or $LATENTLAB_BACKEND)', oneOf('--backend', ['auto', 'native', 'wasm', 'reference'] as const))
    .option('--precision <p>', 'fp32 or bf16 (native backend)', oneOf('--precision', ['fp32', 'bf16'] as const))
    .option('--loss <l>', 'mse or bce', oneOf('--loss', ['mse', 'bce'] as const))
    .option('--checkpoint-every <n>', 'checkpoint every n steps', int('--checkpoint-every'))
    .option('--snapshot-every <n>', 'record the latent space every n steps for training.gif (0: off)', int('--snapshot-every'))
    .option('--log-every <n>', 'a metrics line every n steps', int('--log-every'))
    .option('--supervised [map.json]', "pin each digit to a point of the latent plane (default: the study's map)")
    .option('--latent-weight <w>', 'weight of the latent-map term', num('--latent-weight'))
    .option('--test-limit <n>', 'evaluate on the first n test images only', int('--test-limit'))
    .option('--no-pictures', 'do not draw the pictures at the end')
    .action(async (o: Record<string, unknown>) => {
      await runTrain(o);
    });
}

const FLAG_KEYS = ['dataset', 'dataDir', 'model', 'latent', 'activation', 'latentActivation', 'optimizer', 'lr', 'momentum', 'weightDecay',
  'nesterov', 'betas', 'scheduler', 'baseLr', 'maxLr', 'stepSizeUp', 'stepSizeDown', 'mode', 'gamma', 'pctStart', 'annealStrategy',
  'threePhase', 'stepSize', 'milestones', 'tMax', 'etaMin', 'factor', 'patience', 'epochs', 'maxSteps', 'batchSize', 'seed', 'threads',
  'backend', 'precision', 'loss', 'checkpointEvery', 'snapshotEvery', 'logEvery', 'latentWeight', 'beta', 'klWarmup', 'noise', 'activityL1', 'init'] as const;

export async function runTrain(o: Record<string, unknown>): Promise<void> {
  const flags: Partial<TrainConfig> = {};
  for (const k of FLAG_KEYS) if (o[k] !== undefined) (flags as Record<string, unknown>)[k] = o[k];
  if (o.cycleMomentum === false) flags.cycleMomentum = false;
  if (o.supervised !== undefined) flags.supervised = readLatentMap(o.supervised as string | true);
  let fromFile: Record<string, unknown> = {};
  const configFile = o.config as string | undefined;
  if (configFile) fromFile = readJsonObject(configFile, 'a JSON object of training settings');
  const resume = o.resume as string | undefined;
  if (resume && o.out !== undefined && path.resolve(o.out as string) !== path.resolve(resume))
    throw new Error(`--out: not with --resume (the run continues in ${resume})`);
  // the settings are checked (naming the flag, or the --config file and key) before any folder is touched
  if (!resume) resolveTrainConfig(fromFile, flags, { file: configFile });
  const out = resume ?? (o.out as string | undefined) ?? path.join('runs', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19));
  const folder = RunFolder.forTraining(out, { resume: !!resume, overwrite: !!o.overwrite });
  try {
    await trainInto(folder, { ...fromFile, ...flags } as Partial<TrainConfig>, o, !!resume);
  } finally {
    folder.unlock();
  }
}

async function trainInto(folder: RunFolder, config: Partial<TrainConfig>, o: Record<string, unknown>, resume: boolean): Promise<void> {
  const out = folder.dir;
  let bar: Progress | null = null;
  const lines: string[] = [];
  const result = await train(config, {
    folder, resume, testLimit: o.testLimit as number | undefined, handleSignals: true,
    callbacks: {
      onLog: (l) => (bar ? bar.log(l) : lines.push(l)),
      onStep: (s) => {
        if (!bar) {
          bar = progress(s.totalSteps, 'train');
          for (const l of lines) bar.log(l);
          lines.length = 0;   // shown once: not again after the bar
        }
        bar.update(s.step, {
          epoch: `${s.epoch + 1}`, loss: s.loss.toFixed(4), lr: s.lr.toExponential(2), 'samples/s': s.samplesPerSec.toFixed(0),
        });
        // a full collection now and then, and before the evaluation at the end: V8 otherwise lets the old
        // generation fill with the steps' garbage (a few MB on top of the run's peak) before it collects
        if (s.step % GC_EVERY_STEPS === 0 || s.step === s.totalSteps) collectGarbage();
      },
    },
  });
  (bar as Progress | null)?.stop();
  for (const l of lines) process.stderr.write(`${l}\n`);
  if (result.signal) {
    throw Object.assign(new Error(`stopped by ${result.signal} at step ${result.steps}: checkpoint written to ${folder.file('checkpoint')}`
      + ` (continue with: latentlab train --resume ${out})`), { exitCode: SIGNAL_EXIT[result.signal] });
  }
  const wrote = [folder.file('model'), folder.file('metrics'), folder.file('latents')];
  // the pictures decode with the trained model, on its backend, without its training buffers
  result.model.releaseScratch();
  await releaseMemory();
  if (o.pictures !== false) {
    // loaded only now: the figures' modules (projections, the study's tables, ...) are not carried while training
    const { renderRunPictures } = await import('./pictures.js');
    wrote.push(...await renderRunPictures(folder, result.model));
  }
  process.stdout.write(`test MSE ${result.testMse.toFixed(4)} on [-1, 1] after ${result.steps} steps; training throughput ${Math.round(result.samplesPerSec)} samples/s\n`);
  for (const f of wrote) process.stdout.write(`wrote ${f}\n`);
}
