/**
 * The study's experiments (../shared/seed/study-autoencoder-mnist.txt) as a list of training runs,
 * and what each run reports back (`RunFigures`, written by the study worker as study-eval.json in
 * the run folder). Browser-safe: plain data, no Node modules.
 *
 *   1. unsup-s<k>     unsupervised 2-D, bn, SGD + CyclicLR (the study's recipe), one per seed
 *   2. sup-leaky      supervised 2-D with the study's latent map, LeakyReLU after the latent (the study)
 *      sup-linear     the same with no activation after the latent
 *   3. z10-adam       10-D latent, Adam 1e-3, no scheduler
 *   4. conv-adam      (2,7,7) conv latent, Adam 1e-3, no scheduler
 *   5. relu           ReLU instead of LeakyReLU everywhere, after the latent too (compared with unsup-s0)
 *   6. opt-*          optimiser/scheduler comparison on 2-D (SGD + CyclicLR is unsup-s0)
 *   7. fam-*          plain vs variational vs denoising, 2-D and 10-D, the study's recipe (seed 0)
 */
import { DEFAULT_BETA, DEFAULT_TRAIN, STUDY_LATENT_MAP, type TrainConfig } from '../run/config.js';
import { DEFAULT_DENOISE_NOISE } from '../data/noise.js';
import type { Block, ReportDoc } from './report.js';
import {
  FAMILY_KINDS, FAMILY_REFERENCE, FAMILY_REFERENCE_FILE as FAMILY_REFERENCE_FILE_NAME, SUPERVISED_REFERENCE, familyReferenceRun, supervisedReferenceSentence,
  type FamilyKind, type FamilyReference, type SupervisedReference,
} from './reference.js';

export type Section = 'unsup' | 'sup' | 'z10' | 'conv' | 'act' | 'optim' | 'family';

/** The latent sizes of the family comparison. */
export const FAMILY_LATENTS = [2, 10] as const;

/** The run of the family comparison of a kind and latent size. */
export const familyRunName = (kind: FamilyKind, latent: number): string => `fam-${kind}-z${latent}`;

/** The settings that make each member of the family (on top of the study's recipe). */
export const FAMILY_CONFIG: Readonly<Record<FamilyKind, Partial<TrainConfig>>> = {
  plain: {},
  vae: { vae: true, beta: DEFAULT_BETA, latentActivation: 'none' },
  denoising: { noise: DEFAULT_DENOISE_NOISE },
};

export interface StudyRun {
  /** Folder name under <study>/runs/. */
  name: string;
  section: Section;
  /** A short description for tables and legends. */
  title: string;
  /** Settings on top of the defaults (the study's recipe). */
  config: Partial<TrainConfig>;
  /** A run of the family comparison: which member, which latent size. */
  family?: { kind: FamilyKind; latent: number };
}

export interface StudyOptions {
  /** A few hundred steps per experiment instead of whole epochs (tests, CI). */
  quick?: boolean;
  /** Epochs per experiment (full study; default 1). */
  epochs?: number;
  /** Steps per experiment (overrides the quick/epoch length). */
  steps?: number;
  /** Seeds of the unsupervised 2-D experiment (default 3). */
  seeds?: number;
  /** Runs to keep (by name; default all). */
  only?: string[];
}

/** Batches in one MNIST epoch at batch 64 (drop_last). */
export const MNIST_STEPS_PER_EPOCH = Math.floor(60000 / 64);

/** Steps per experiment of a quick study. */
export const QUICK_STEPS = 60;

/** How a study's runs are sized: steps, evaluation size, snapshots. */
export interface StudyScale {
  quick: boolean;
  epochs: number;
  /** Steps per run (maxSteps; undefined: epochs × batches per epoch). */
  maxSteps?: number;
  /** Steps one run makes. */
  totalSteps: number;
  /** Test images evaluated (undefined: all 10,000). */
  testLimit?: number;
  /** Train images encoded for k-NN and centroids. */
  trainLatents: number;
  snapshotEvery: number;
  snapshotPoints: number;
  checkpointEvery: number;
  logEvery: number;
}

export function studyScale(o: StudyOptions = {}): StudyScale {
  const quick = !!o.quick;
  const epochs = quick ? 1 : (o.epochs ?? 1);
  const totalSteps = o.steps ?? (quick ? QUICK_STEPS : epochs * MNIST_STEPS_PER_EPOCH);
  const maxSteps = o.steps ?? (quick ? QUICK_STEPS : undefined);
  return {
    quick, epochs, maxSteps, totalSteps,
    testLimit: quick ? 1000 : undefined,
    trainLatents: quick ? 2000 : 10000,
    // about 12 frames (quick) or 24 frames (full) per run
    snapshotEvery: Math.max(1, Math.round(totalSteps / (quick ? 12 : 24))),
    snapshotPoints: quick ? 500 : 2000,
    checkpointEvery: Math.max(1, Math.min(200, Math.round(totalSteps / 6))),
    logEvery: quick ? 2 : 5,
  };
}

/** The experiment list. */
export function studyRuns(o: StudyOptions = {}): StudyRun[] {
  const s = studyScale(o);
  const seeds = o.seeds ?? 3;
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`--seeds: expected a positive integer, got ${seeds}`);
  const snap = { snapshotEvery: s.snapshotEvery, snapshotPoints: s.snapshotPoints };
  const adam = { optimizer: 'adam', lr: 1e-3, scheduler: 'none' } as const;
  const runs: StudyRun[] = [];
  for (let k = 0; k < seeds; k++)
    runs.push({ name: `unsup-s${k}`, section: 'unsup', title: `2-D, SGD + CyclicLR, seed ${k}`, config: { seed: k, ...snap } });
  runs.push(
    { name: 'sup-leaky', section: 'sup', title: '2-D supervised, LeakyReLU after the latent (the study)', config: { supervised: STUDY_LATENT_MAP, latentWeight: 1, ...snap } },
    { name: 'sup-linear', section: 'sup', title: '2-D supervised, no activation after the latent', config: { supervised: STUDY_LATENT_MAP, latentWeight: 1, latentActivation: 'none', ...snap } },
    { name: 'z10-adam', section: 'z10', title: '10-D, Adam 1e-3', config: { latent: 10, ...adam } },
    { name: 'conv-adam', section: 'conv', title: '(2,7,7) conv latent, Adam 1e-3', config: { latent: 'conv', ...adam } },
    { name: 'relu', section: 'act', title: '2-D, ReLU everywhere (hidden layers and after the latent), SGD + CyclicLR, seed 0', config: { activation: 'relu', latentActivation: 'relu', seed: 0, ...snap } },
    { name: 'opt-onecycle', section: 'optim', title: '2-D, SGD + OneCycleLR (max 1e-2)', config: { scheduler: 'onecycle', maxLr: 1e-2, ...snap } },
    { name: 'opt-step', section: 'optim', title: `2-D, SGD 1e-2 + StepLR (×0.1 every ${Math.max(1, Math.ceil(s.totalSteps / 3))} steps)`,
      config: { scheduler: 'step', lr: 1e-2, stepSize: Math.max(1, Math.ceil(s.totalSteps / 3)), gamma: 0.1, ...snap } },
    { name: 'opt-adam', section: 'optim', title: '2-D, Adam 1e-3', config: { ...adam, ...snap } },
    { name: 'opt-adam-cosine', section: 'optim', title: '2-D, Adam 1e-3 + CosineAnnealingLR', config: { optimizer: 'adam', lr: 1e-3, scheduler: 'cosine', ...snap } },
  );
  const familyTitle: Record<FamilyKind, string> = { plain: 'plain', vae: `variational (beta ${DEFAULT_BETA.toPrecision(3)})`, denoising: `denoising (${DEFAULT_DENOISE_NOISE})` };
  for (const latent of FAMILY_LATENTS)
    for (const kind of FAMILY_KINDS)
      runs.push({ name: familyRunName(kind, latent), section: 'family', title: `${latent}-D, ${familyTitle[kind]}, SGD + CyclicLR, seed 0`,
        config: { latent, seed: 0, ...FAMILY_CONFIG[kind] }, family: { kind, latent } });
  for (const r of runs) {
    r.config = {
      ...r.config, epochs: s.epochs, checkpointEvery: s.checkpointEvery, logEvery: s.logEvery,
      ...(s.maxSteps !== undefined ? { maxSteps: s.maxSteps } : {}),
    };
  }
  if (o.only?.length) {
    const names = new Set(runs.map((r) => r.name));
    for (const n of o.only) if (!names.has(n)) throw new Error(`--only: no run named '${n}' (runs: ${[...names].join(', ')})`);
    return runs.filter((r) => o.only!.includes(r.name));
  }
  return runs;
}

/** The region of digits 4, 5 and 9 in the study's latent map (targets (6,2), (2,4), (2,-2)). */
export const ZOOM_459: [number, number, number, number] = [0.5, -3.5, 7.5, 5.5];

/** Whole-plane box of the study's latent map (all targets with a margin). */
export const STUDY_PLANE: [number, number, number, number] = [-8, -8, 8, 8];

/** What a finished run reports (study-eval.json in its folder). */
export interface RunFigures {
  name: string;
  steps: number;
  totalSteps: number;
  /** Test MSE on [-1, 1] over `testImages` images. */
  testMse: number;
  psnr: number;
  testImages: number;
  /** k-NN (k = 5) accuracy of the test latents against `references` train latents. */
  knnAccuracy: number | null;
  references: number;
  /** The most confused digit pairs under k-NN. */
  confused: { a: number; b: number; count: number }[];
  /** Supervised runs: the share of test latents nearest to their own digit's target. */
  targetAccuracy?: number;
  targetPerDigit?: number[];
  meanTargetDistance?: number;
  /** Share of test latents with a coordinate below -1 (clearly negative, as 7 of the 10 targets need). */
  negativeShare: number;
  /** A VAE: the mean KL of a test image's posterior to the prior (nats). */
  kl?: number;
  /** Where the test latents (a VAE's posterior means) are: the length of their mean vector, and their standard deviation averaged over the dimensions. */
  latentCentre?: number;
  latentSpread?: number;
  /** Latent units that are <= 0 for every test image (a ReLU there would output 0 for all: dead). */
  nonPositiveUnits: number;
  /** Latent units that are exactly 0 for every test image. */
  zeroUnits: number;
  latentDim: number;
  finalLoss: number;
  seconds: number;
  samplesPerSec: number;
  backend: string;
  threads: number;
  /** Picture files in the run folder. */
  pictures: Record<string, string>;
}

/** Per-dimension latent statistics for dead-unit counting. */
export function latentUnitStats(z: ArrayLike<number>, dim: number): { nonPositiveUnits: number; zeroUnits: number; negativeShare: number } {
  const n = Math.floor(z.length / dim);
  let nonPos = 0, zero = 0, neg = 0;
  for (let j = 0; j < dim; j++) {
    let max = -Infinity, maxAbs = 0;
    for (let i = 0; i < n; i++) { const v = z[i * dim + j]; if (v > max) max = v; if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v); }
    if (max <= 0) nonPos++;
    if (maxAbs === 0) zero++;
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) if (z[i * dim + j] < -1) { neg++; break; }
  }
  return { nonPositiveUnits: nonPos, zeroUnits: zero, negativeShare: n ? neg / n : 0 };
}

/** The length of the mean of n latents of `dim` values, and their per-dimension standard deviation averaged over the dimensions. */
export function latentCentreSpread(z: ArrayLike<number>, dim: number): { latentCentre: number; latentSpread: number } {
  const n = Math.floor(z.length / dim);
  let c2 = 0, sd = 0;
  for (let j = 0; j < dim; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += z[i * dim + j] / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (z[i * dim + j] - m) ** 2 / n;
    c2 += m * m;
    sd += Math.sqrt(v) / dim;
  }
  return { latentCentre: Math.sqrt(c2), latentSpread: sd };
}

/** Digits whose target in a latent map has a negative coordinate (unreachable when z >= 0). */
export function negativeTargets(map: Record<string, readonly number[]> = STUDY_LATENT_MAP): number[] {
  return Object.entries(map).filter(([, p]) => p[0] < 0 || p[1] < 0).map(([d]) => Number(d)).sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------
// the report


export interface StudyReportInput {
  runs: StudyRun[];
  /** Figures of finished runs (by name); absent: not finished or failed. */
  figures: Map<string, RunFigures>;
  /** Resolved settings of each run (its config.json), by name. */
  configs: Map<string, Record<string, unknown>>;
  scale: StudyScale;
  /** Folder of the run folders, relative to the report. */
  runsDir: string;
  /** Combined pictures (relative to the report) that exist. */
  combined: { lossModels?: string; lossOptim?: string; family?: Partial<Record<number, string>> };
  jobs: number;
  threads: number;
  backend: string;
  /** Wall time of this invocation (seconds) and how many runs it trained. */
  wallSeconds: number;
  trainedNow: number;
  command: string;
  failures: { name: string; message: string }[];
  /** PyTorch's figures for the supervised experiment (default: the committed reference/supervised.json). */
  reference?: SupervisedReference;
  /** PyTorch's figures for the family comparison (default: the committed reference/family.json). */
  familyReference?: FamilyReference;
}

const f4 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(4));
const pct = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)} %`);
const f2 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(2));
const acc = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3));

function optLabel(c: Record<string, unknown>): string {
  const o = String(c.optimizer ?? 'sgd');
  const s = String(c.scheduler ?? 'none');
  const sched: Record<string, string> = { none: '', cyclic: ' + CyclicLR', onecycle: ' + OneCycleLR', step: ' + StepLR', cosine: ' + CosineAnnealingLR', multistep: ' + MultiStepLR', exp: ' + ExponentialLR', plateau: ' + ReduceLROnPlateau' };
  const name = o === 'sgd' ? `SGD m${c.momentum ?? 0.9}` : o === 'adam' ? 'Adam' : 'AdamW';
  const lr = s === 'cyclic' ? ` ${c.baseLr}..${c.maxLr}` : s === 'onecycle' ? ` max ${c.maxLr}` : ` ${c.lr}`;
  return `${name}${lr}${sched[s] ?? ` + ${s}`}`;
}

/** Mean over digits of the per-digit target accuracy. */
function meanOf(v: number[], digits: number[]): number {
  const xs = digits.map((d) => v[d]).filter(Number.isFinite);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** What every section of the report reads: the figures, the scale, the input, and small helpers; sections push onto B. */
interface ReportCtx {
  F: Map<string, RunFigures>; s: StudyReportInput['scale']; inp: StudyReportInput; B: Block[];
  runLink: (name: string) => string; pic: (name: string, key: string) => string | null;
  figs: (items: { name: string; key: string; caption: string }[]) => void; of: (section: Section) => StudyRun[]; has: (name: string) => boolean;
}

/** The report's section: intro. */
function introSection({ s, inp, B }: ReportCtx): void {

  B.push({ kind: 'p', text: 'A reproduction of the blog study of a convolutional autoencoder on MNIST (`../shared/seed/study-autoencoder-mnist.txt`): '
    + 'the study\'s model (BatchNorm, LeakyReLU, Tanh output) trained by latentlab, one training run per experiment, each in its own folder under '
    + `[${inp.runsDir}/](${inp.runsDir}/). Test MSE is on pixels scaled to [-1, 1] (the study's normalisation); k-NN is 5-nearest-neighbour accuracy of the test latents against ${s.trainLatents.toLocaleString('en')} training latents.` });
  if (s.quick) {
    B.push({ kind: 'note', text: `**This is a quick run** (\`--quick\`): ${s.totalSteps} steps per experiment instead of the ${MNIST_STEPS_PER_EPOCH} of one epoch, evaluated on the first ${s.testLimit} test images, `
      + 'so the numbers show that the pipeline works, not what the study found. Run `latentlab study --epochs 1` for the real figures.' });
  } else {
    B.push({ kind: 'p', text: `Each experiment trains ${s.maxSteps ?? s.epochs * MNIST_STEPS_PER_EPOCH} steps (${s.epochs} epoch${s.epochs > 1 ? 's' : ''} of batch 64) and is evaluated on all 10,000 test images.` });
  }
  if (inp.failures.length)
    B.push({ kind: 'note', text: `Not finished: ${inp.failures.map((f) => `**${f.name}** (${f.message})`).join('; ')}. Run the same command again to continue.` });
}

/** The report's section: every run. */
function allRunsSection({ F, inp, B, runLink }: ReportCtx): void {
  B.push({ kind: 'h', level: 1, text: 'All runs' });
  B.push({ kind: 'table', head: ['run', 'experiment', 'latent', 'activation / after latent', 'optimiser', 'seed', 'steps', 'test MSE', 'PSNR dB', 'k-NN acc', 'target acc', 'time s', 'samples/s'],
    align: ['l', 'l', 'l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows: inp.runs.map((r) => {
      const c = { ...DEFAULT_TRAIN, ...r.config, ...(inp.configs.get(r.name) ?? {}) } as Record<string, unknown>;
      const f = F.get(r.name);
      return [runLink(r.name), r.title, `${c.latent ?? 2}${c.supervised ? ' (latent map)' : ''}`, `${c.activation ?? 'leaky'} / ${c.latentActivation ?? 'leaky'}`,
        optLabel(c), String(c.seed ?? 0), f ? String(f.steps) : 'not finished', f4(f?.testMse), f ? f.psnr.toFixed(2) : '–', acc(f?.knnAccuracy),
        acc(f?.targetAccuracy), f ? f.seconds.toFixed(0) : '–', f ? String(f.samplesPerSec) : '–'];
    }) });
}

/** The report's section: 1. unsupervised 2-D, seeds. */
function unsupervisedSection({ F, B, runLink, figs, of }: ReportCtx): void {
  const unsup = of('unsup').filter((r) => F.has(r.name));
  if (of('unsup').length) {
    B.push({ kind: 'h', level: 1, text: '1. Unsupervised 2-D latent, SGD + CyclicLR, several seeds' });
    B.push({ kind: 'p', text: 'The study found SGD (momentum 0.9) with CyclicLR (1e-4 to 1e-2, 400 steps up) the best recipe for a 2-D latent and ran it several times: '
      + 'the clusters come out differently every time — sometimes well separated, sometimes a "failed model" where only 0 and 1 are clear.' });
    if (unsup.length) {
      const sorted = [...unsup].sort((a, b) => F.get(a.name)!.testMse - F.get(b.name)!.testMse);
      const best = sorted[0], worst = sorted[sorted.length - 1];
      const mses = sorted.map((r) => F.get(r.name)!.testMse);
      B.push({ kind: 'table', head: ['run', 'seed', 'test MSE', 'k-NN acc', 'most confused pairs'], align: ['l', 'r', 'r', 'r', 'l'],
        rows: of('unsup').map((r) => { const f = F.get(r.name); return [runLink(r.name), String(r.config.seed), f4(f?.testMse), acc(f?.knnAccuracy), f ? f.confused.slice(0, 3).map((p) => `${p.a}/${p.b}`).join(', ') : '–']; }) });
      if (unsup.length > 1)
        B.push({ kind: 'p', text: `Across ${unsup.length} seeds the test MSE ranges from ${f4(mses[0])} (**${best.name}**) to ${f4(mses[mses.length - 1])} (**${worst.name}**), `
          + `k-NN accuracy from ${acc(Math.min(...unsup.map((r) => F.get(r.name)!.knnAccuracy ?? NaN)))} to ${acc(Math.max(...unsup.map((r) => F.get(r.name)!.knnAccuracy ?? NaN)))}: the seed alone changes the picture.` });
      figs(of('unsup').map((r) => ({ name: r.name, key: 'latent', caption: `${r.name}: test MSE ${f4(F.get(r.name)?.testMse)}` })));
      B.push({ kind: 'p', text: 'Sampling the plane: images decoded at evenly spaced points of the box around the latents (the black frame), for the best and the worst seed. Where several digits overlap the decoded images are ambiguous, as in the study.' });
      figs([{ name: best.name, key: 'sample', caption: `best: ${best.name} (test MSE ${f4(F.get(best.name)!.testMse)})` },
        ...(worst !== best ? [{ name: worst.name, key: 'sample', caption: `worst: ${worst.name} (test MSE ${f4(F.get(worst.name)!.testMse)})` }] : [])]);
    }
  }
}

/** The report's section: 2. supervised. */
function supervisedSection({ F, inp, B, runLink, figs, of }: ReportCtx): void {
  if (of('sup').length) {
    const neg = negativeTargets();
    const pos = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((d) => !neg.includes(d));
    B.push({ kind: 'h', level: 1, text: '2. Supervised 2-D latent: the study\'s latent map' });
    B.push({ kind: 'p', text: 'The study pinned every digit to a point of the plane (0: (-2, 6), 1: (-2, -6), 2: (-6, 2), 3: (-3, 4), 4: (6, 2), 5: (2, 4), 6: (0, 2), 7: (0, -2), 8: (-2, 0), 9: (2, -2)) '
      + 'by adding the MSE between z and the digit\'s target to the loss (weight 1). We train it twice: with the study\'s LeakyReLU after the latent, and with no activation there. '
      + '"Target accuracy" is the share of test images whose latent is nearer to their own digit\'s target than to any other.' });
    B.push({ kind: 'table', head: ['run', 'after the latent', 'target acc', `mean acc, digits ${neg.join(', ')} (a negative target coordinate)`, `mean acc, digits ${pos.join(', ')}`, 'latents with a coordinate < -1', 'mean distance to target', 'test MSE'],
      align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
      rows: of('sup').map((r) => {
        const f = F.get(r.name);
        const pd = f?.targetPerDigit ?? [];
        return [runLink(r.name), r.config.latentActivation === 'none' ? 'nothing (linear)' : 'LeakyReLU (the study)', acc(f?.targetAccuracy),
          acc(f ? meanOf(pd, neg) : NaN), acc(f ? meanOf(pd, pos) : NaN), pct(f?.negativeShare), f ? (f.meanTargetDistance ?? NaN).toFixed(2) : '–', f4(f?.testMse)];
      }) });
    const a = F.get('sup-leaky')?.targetAccuracy, b = F.get('sup-linear')?.targetAccuracy;
    B.push({ kind: 'p', text: `**Why the LeakyReLU hurts here:** LeakyReLU(0.01) after the latent maps every negative pre-activation to a hundredth of itself, so z can hardly be negative: `
      + `reaching -2 needs a pre-activation of -200. Seven of the ten targets (digits ${neg.join(', ')}) have a negative coordinate and are out of reach; their latents pile up near the axes and get mistaken for the digits whose targets are there. `
      + `Without the activation the encoder's last Linear layer can place z anywhere. `
      + (a !== undefined && b !== undefined ? `Here: target accuracy **${acc(a)}** with LeakyReLU vs **${acc(b)}** without. ` : '')
      + supervisedReferenceSentence(inp.reference ?? SUPERVISED_REFERENCE, acc) });
    figs(of('sup').map((r) => ({ name: r.name, key: 'latent', caption: `${r.name}: target acc ${acc(F.get(r.name)?.targetAccuracy)}` })));
    B.push({ kind: 'p', text: 'The whole plane (-8..8 on both axes) sampled on a 16 × 16 grid:' });
    figs(of('sup').map((r) => ({ name: r.name, key: 'sample', caption: `${r.name}: whole plane` })));
    B.push({ kind: 'p', text: `A zoom on the region of 4, 5 and 9 (x ${ZOOM_459[0]}..${ZOOM_459[2]}, y ${ZOOM_459[1]}..${ZOOM_459[3]}), as in the study:` });
    figs(of('sup').map((r) => ({ name: r.name, key: 'zoom', caption: `${r.name}: region of 4, 5, 9` })));
    B.push({ kind: 'p', text: 'Generated digits 0-9: latents drawn around each digit\'s target (σ = 0.5) and decoded.' });
    figs(of('sup').map((r) => ({ name: r.name, key: 'digits', caption: `${r.name}: generated digits` })));
  }
}

/** The report's section: 3. 10-D. */
function tenDSection({ F, B, figs, has }: ReportCtx): void {
  if (has('z10-adam')) {
    const f = F.get('z10-adam');
    const study = [[5, 6], [3, 8], [4, 9]];
    B.push({ kind: 'h', level: 1, text: '3. 10-D latent (Adam 1e-3)' });
    if (f) {
      const top = f.confused.slice(0, 5);
      const seen = study.filter(([x, y]) => top.some((p) => (p.a === x && p.b === y) || (p.a === y && p.b === x)));
      B.push({ kind: 'p', text: `Test MSE **${f4(f.testMse)}** (PSNR ${f.psnr.toFixed(2)} dB), k-NN accuracy **${acc(f.knnAccuracy)}**. `
        + `The most confused digit pairs under k-NN: ${top.map((p) => `${p.a}/${p.b} (${p.count})`).join(', ') || 'none'}. `
        + `The study saw the model struggle with 5/6, 3/8 and 4/9; ${seen.length ? `of those, ${seen.map((p) => p.join('/')).join(', ')} ${seen.length > 1 ? 'are' : 'is'} among the five most confused here` : 'none of those is among the five most confused here'}.` });
    }
    B.push({ kind: 'p', text: 'The 10-D latents on their first two principal components, and images decoded along that plane (the other components at their mean):' });
    figs([{ name: 'z10-adam', key: 'latent', caption: 'z10-adam: PCA of the test latents' }, { name: 'z10-adam', key: 'sample', caption: 'z10-adam: decoded over the PCA plane' }]);
  }
}

/** The report's section: 4. conv latent. */
function convLatentSection({ F, inp, B, has }: ReportCtx): void {
  if (has('conv-adam')) {
    const f = F.get('conv-adam');
    B.push({ kind: 'h', level: 1, text: '4. Keeping the convolution: a (2, 7, 7) latent (Adam 1e-3)' });
    const cmp = ['opt-adam', 'z10-adam', 'conv-adam'].filter((n) => F.has(n));
    B.push({ kind: 'p', text: 'The study kept the latent as a (2, 7, 7) feature map (98 numbers) and found training much faster and more accurate, in steps, within one epoch. '
      + `Test MSE: ${cmp.map((n) => `${n} **${f4(F.get(n)!.testMse)}**`).join(', ')}${f ? '' : ' (conv-adam not finished)'}. `
      + 'All three use Adam 1e-3 without a scheduler, so the curves differ by the latent only.' });
    if (inp.combined.lossModels) B.push({ kind: 'figures', items: [{ src: inp.combined.lossModels, alt: 'loss of the 2-D, 10-D and conv runs', caption: 'Reconstruction MSE against step, training batches (solid) and test set (dashed): 2-D, 10-D and (2,7,7) latents' }] });
  }
}

/** The report's section: 5. LeakyReLU vs ReLU. */
function activationsSection({ F, B, runLink, figs, has }: ReportCtx): void {
  if (has('relu')) {
    B.push({ kind: 'h', level: 1, text: '5. LeakyReLU vs ReLU' });
    B.push({ kind: 'p', text: 'The study: "LeakyReLU gave better results than ReLU. With so few latent units, if even one goes to 0 learning stops there; negative values can be meaningful weights and biases." '
      + 'A unit is dead when it is 0 (≤ 0 before a ReLU) for every test image: it passes no gradient and carries no information.' });
    const pair = ['unsup-s0', 'relu'].filter(has);
    B.push({ kind: 'table', head: ['run', 'hidden activation', 'test MSE', 'k-NN acc', 'latent units ≤ 0 for every test image', 'latent units exactly 0', 'latents with a coordinate < -1'],
      align: ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
      rows: pair.map((n) => {
        const f = F.get(n);
        return [runLink(n), n === 'relu' ? 'ReLU' : 'LeakyReLU', f4(f?.testMse), acc(f?.knnAccuracy), f ? `${f.nonPositiveUnits} of ${f.latentDim}` : '–', f ? `${f.zeroUnits} of ${f.latentDim}` : '–', pct(f?.negativeShare)];
      }) });
    B.push({ kind: 'note', text: 'The `relu` run has ReLU in every hidden layer and after the latent (`--activation relu --latent-activation relu`); '
      + 'its "exactly 0" column counts the latent units that died. For the LeakyReLU run the "≤ 0" column counts the units a ReLU would have silenced.' });
    figs(pair.map((n) => ({ name: n, key: 'latent', caption: `${n}: test MSE ${f4(F.get(n)?.testMse)}` })));
  }
}

/** The report's section: 6. optimisers. */
function optimisersSection({ F, inp, B, runLink, of, has }: ReportCtx): void {
  const optRuns = ['unsup-s0', ...of('optim').map((r) => r.name)].filter(has);
  if (of('optim').length) {
    B.push({ kind: 'h', level: 1, text: '6. Optimisers and LR schedulers on the 2-D latent' });
    B.push({ kind: 'p', text: 'The study tried several optimisers and schedulers and kept SGD + CyclicLR; "depending on the LR scheduler the course of training was very different". Same model, data order and seed 0 for all:' });
    B.push({ kind: 'table', head: ['run', 'optimiser + scheduler', 'test MSE', 'k-NN acc', 'final train loss'], align: ['l', 'l', 'r', 'r', 'r'],
      rows: optRuns.map((n) => {
        const r = inp.runs.find((x) => x.name === n)!;
        const c = { ...DEFAULT_TRAIN, ...r.config, ...(inp.configs.get(n) ?? {}) } as Record<string, unknown>;
        const f = F.get(n);
        return [runLink(n), optLabel(c), f4(f?.testMse), acc(f?.knnAccuracy), f4(f?.finalLoss)];
      }) });
    const done = optRuns.filter((n) => F.has(n)).sort((a, b) => F.get(a)!.testMse - F.get(b)!.testMse);
    if (done.length > 1) B.push({ kind: 'p', text: `Lowest test MSE: **${done[0]}** (${f4(F.get(done[0])!.testMse)}); highest: **${done[done.length - 1]}** (${f4(F.get(done[done.length - 1])!.testMse)}).` });
    if (inp.combined.lossOptim) B.push({ kind: 'figures', items: [{ src: inp.combined.lossOptim, alt: 'loss curves of the optimisers', caption: 'Reconstruction MSE against step, training batches (solid) and test set (dashed), one colour per optimiser/scheduler' }] });
  }
}

/** The report's section: 7. plain vs variational vs denoising, PyTorch's figures beside ours. */
function familySection({ F, s, inp, B, runLink }: ReportCtx): void {
  const fam = inp.runs.filter((r) => r.family);
  if (!fam.length) return;
  const ref = inp.familyReference ?? FAMILY_REFERENCE;
  const kindName: Record<FamilyKind, string> = { plain: 'plain', vae: 'variational (VAE)', denoising: 'denoising' };
  B.push({ kind: 'h', level: 1, text: '7. Plain vs variational vs denoising' });
  B.push({ kind: 'p', text: 'The autoencoder family the tutorials teach next, on the study\'s own model and recipe (SGD + CyclicLR, batch 64, seed 0): '
    + 'the **plain** autoencoder; a **variational** one (`--model vae`: the encoder ends in a mean and a log-variance head, z is sampled by reparameterisation, '
    + `and the loss adds beta × KL(q(z|x) ‖ N(0, I)) with beta ${DEFAULT_BETA.toPrecision(3)} = 1/784, the ELBO of a Gaussian decoder on this scale); `
    + `and a **denoising** one (\`--noise ${DEFAULT_DENOISE_NOISE}\`: the inputs are corrupted, the targets stay clean). `
    + 'Test MSE is of the reconstruction (a VAE\'s decoded from its posterior mean), KL is a VAE\'s per test image in nats, k-NN is 5-nearest-neighbour accuracy of the test latents '
    + '(a VAE\'s posterior means) against training latents — as `latentlab eval` reports them.' });
  const epochs = ref.steps / ref.stepsPerEpoch;
  const refLength = ref.steps % ref.stepsPerEpoch === 0 ? `${epochs} epoch${epochs === 1 ? '' : 's'} (${ref.steps} steps)` : `${ref.steps} steps (${epochs.toFixed(2)} of an epoch)`;
  B.push({ kind: 'p', text: `PyTorch's columns come from \`${FAMILY_REFERENCE_FILE_NAME}\`, written by \`${ref.generator}\` (torch ${ref.torch}, ${ref.date}): `
    + `the same models, recipe and measurements, one run each, seed ${ref.seed}, ${refLength}, ${ref.testImages.toLocaleString('en')} test images, k-NN with k = ${ref.knn.k} against ${ref.knn.references.toLocaleString('en')} training latents. `
    + 'Its random streams (initial weights, data order, noise) are PyTorch\'s, not ours, so the two columns agree as two seeds of one recipe do, not digit for digit.' });
  const mismatch: string[] = [];
  if (ref.beta !== DEFAULT_BETA) mismatch.push(`its VAE used beta ${ref.beta}, ours ${DEFAULT_BETA}`);
  if (ref.noise !== DEFAULT_DENOISE_NOISE) mismatch.push(`its denoising runs used ${ref.noise}, ours ${DEFAULT_DENOISE_NOISE}`);
  if (mismatch.length) B.push({ kind: 'note', text: `The PyTorch reference was made with other settings: ${mismatch.join('; ')}. Regenerate it.` });
  if (s.quick || s.totalSteps !== ref.steps)
    B.push({ kind: 'note', text: `**Not comparable here:** our runs trained ${s.totalSteps} steps${s.quick ? ` (a quick run, on the first ${s.testLimit} test images)` : ''}, PyTorch's ${ref.steps}. `
      + 'The PyTorch columns are shown for the layout; run `latentlab study` (one epoch) to compare.' });
  for (const latent of FAMILY_LATENTS) {
    const rows = fam.filter((r) => r.family!.latent === latent);
    if (!rows.length) continue;
    B.push({ kind: 'h', level: 2, text: `${latent}-D latent` });
    B.push({ kind: 'table', head: ['run', 'model', 'steps', 'test MSE', 'PyTorch', 'KL nats', 'PyTorch', 'k-NN acc', 'PyTorch', 'latent centre ‖mean z‖', 'latent spread (mean std)'],
      align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      rows: rows.map((r) => {
        const f = F.get(r.name), t = familyReferenceRun(ref, r.family!.kind, latent);
        const isV = r.family!.kind === 'vae';
        return [runLink(r.name), kindName[r.family!.kind], f ? String(f.steps) : 'not finished', f4(f?.testMse), f4(t?.testMse),
          isV ? f4(f?.kl) : '', isV ? f4(t?.kl) : '', acc(f?.knnAccuracy), acc(t?.knnAccuracy), f2(f?.latentCentre), f2(f?.latentSpread)];
      }) });
    const file = inp.combined.family?.[latent];
    if (file) {
      B.push({ kind: 'figures', items: [{ src: file, alt: `plain, VAE and denoising latents, ${latent}-D`,
        caption: `Top: the test latents of the three models${latent > 2 ? ' on each one\'s PCA plane' : ''}, on the same axes; the dashed box is what the grid below decodes. `
          + `Bottom: the plain and denoising decoders over the box of their own latents (1st-99th percentile), the VAE's over the prior's normal quantiles 5-95% (\`sample --prior\`${latent > 2 ? ', z₃.. at 0' : ''}).` }] });
    }
  }
  B.push({ kind: 'p', text: 'What to look for: only the VAE\'s loss has a term that pulls its codes towards the prior N(0, I) (centre 0, spread 1). '
    + 'The nearer its latent centre is to 0 and its spread to 1, the more of the prior\'s box its codes fill and the more of the prior grid decodes to digits; '
    + 'where the box misses the codes the decoder was never trained, and decodes noise. The plain and denoising autoencoders have no such term: '
    + 'their codes sit wherever the encoder put them (the titles give their 1-99% ranges), so their grids must be placed on their own latents.' });
  const where = FAMILY_LATENTS.map((latent) => {
    const f = F.get(familyRunName('vae', latent));
    return f && f.latentCentre !== undefined ? `${latent}-D: centre ${f2(f.latentCentre)}, spread ${f2(f.latentSpread)}` : '';
  }).filter(Boolean);
  if (where.length) B.push({ kind: 'p', text: `Here the VAE's codes sit at ${where.join('; ')} (the prior: 0 and 1).` });
  const cmp = FAMILY_LATENTS.map((latent) => {
    const m = (k: FamilyKind) => F.get(familyRunName(k, latent))?.testMse;
    const p = m('plain'), v = m('vae'), d = m('denoising');
    if (p === undefined || v === undefined || d === undefined) return '';
    const word = (x: number) => (x > p ? 'higher' : x < p ? 'lower' : 'the same');
    return `${latent}-D: the VAE's test MSE is ${word(v)} than the plain model's (${f4(v)} vs ${f4(p)}), the denoising model's ${word(d)} (${f4(d)}).`;
  }).filter(Boolean);
  if (cmp.length) B.push({ kind: 'p', text: `Reconstruction here — ${cmp.join(' ')}` });
}

/** The report's section: 8. GIFs. */
function gifsSection({ s, inp, B, pic }: ReportCtx): void {
  const gifs = inp.runs.filter((r) => pic(r.name, 'gif'));
  if (gifs.length) {
    B.push({ kind: 'h', level: 1, text: '8. Training films' });
    B.push({ kind: 'p', text: `The latent space of the test set (${s.snapshotPoints} images) and images decoded from its box, every ${s.snapshotEvery} steps of training (open the GIFs; they are not inlined to keep this page small):` });
    B.push({ kind: 'list', items: gifs.map((r) => `[${r.name}/training.gif](${pic(r.name, 'gif')}): ${r.title}`) });
  }
}

/** The report's section: how it was run. */
function howRunSection({ inp, B }: ReportCtx): void {
  B.push({ kind: 'h', level: 1, text: 'How this was run' });
  B.push({ kind: 'list', items: [
    `Command: \`${inp.command}\``,
    `${inp.runs.length} runs, ${inp.jobs} at a time with ${inp.threads} thread${inp.threads > 1 ? 's' : ''} each, backend ${inp.backend}; this invocation trained ${inp.trainedNow} of them in ${inp.wallSeconds.toFixed(0)} s wall time.`,
    `Defaults (the study's recipe): bn model, LeakyReLU(0.01), batch 64, MSE loss, SGD momentum 0.9 + CyclicLR 1e-4..1e-2 (400 steps up); each run's full settings are in its \`config.json\`.`,
    'Interrupted studies continue where they stopped: finished runs are skipped, the others resume from their checkpoint.',
  ] });
}

export function buildStudyReport(inp: StudyReportInput): ReportDoc {
  const { figures: F, scale: s } = inp;
  const B: Block[] = [];
  const runLink = (name: string): string => `[${name}](${inp.runsDir}/${name}/)`;
  const pic = (name: string, key: string): string | null => {
    const f = F.get(name)?.pictures[key];
    return f ? `${inp.runsDir}/${name}/${f}` : null;
  };
  const figs = (items: { name: string; key: string; caption: string }[]): void => {
    const list = items.map((i) => ({ src: pic(i.name, i.key), alt: `${i.key} of ${i.name}`, caption: i.caption })).filter((i): i is { src: string; alt: string; caption: string } => !!i.src);
    if (list.length) B.push({ kind: 'figures', items: list });
  };
  const of = (section: Section) => inp.runs.filter((r) => r.section === section);
  const has = (name: string) => inp.runs.some((r) => r.name === name);
  const ctx: ReportCtx = { F, s, inp, B, runLink, pic, figs, of, has };
  for (const section of [introSection, allRunsSection, unsupervisedSection, supervisedSection, tenDSection, convLatentSection, activationsSection, optimisersSection, familySection, gifsSection, howRunSection])
    section(ctx);
  return { title: s.quick ? 'Autoencoder on MNIST: the study, reproduced (quick run)' : 'Autoencoder on MNIST: the study, reproduced', blocks: B };
}
