/**
 * `latentlab study --quick` on real MNIST, through the built CLI (npm test builds first): every
 * experiment runs, report.md and a self-contained report.html are written; a second invocation
 * skips the finished runs; an interrupted study resumes from the checkpoints. Plus the pure parts
 * (experiment list, report rendering) without training.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAMILY_LATENTS, buildStudyReport, familyRunName, latentCentreSpread, latentUnitStats, negativeTargets, studyRuns, studyScale, type RunFigures } from '../src/lab/study/study.js';
import {
  FAMILY_KINDS, FAMILY_REFERENCE, SUPERVISED_REFERENCE, checkFamilyReference, checkSupervisedReference, type FamilyReference, type SupervisedReference,
} from '../src/lab/study/reference.js';
import { DEFAULT_BETA } from '../src/lab/run/config.js';
import { DEFAULT_DENOISE_NOISE } from '../src/lab/data/noise.js';
import { decodePng } from '../src/viz/node.js';
import { inlineHtml, toHtml, toMarkdown } from '../src/lab/study/report.js';
import { need } from './requirements.js';

const DATA = process.env.LATENTLAB_MNIST ?? path.resolve('../shared/data/mnist');
const CLI = path.resolve('dist/cli/main.js');
const canRun = need('mnist', 'study.test') && need('cli', 'study.test');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-study-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface CliRun { code: number | null; stdout: string; stderr: string; ms: number }

function cli(args: string[], onStart?: (all: string, kill: () => void, child: ChildProcess) => void): Promise<CliRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LATENTLAB_PLAIN_PROGRESS: '1' } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    onStart?.(stderr, () => child.kill('SIGKILL'), child);
    child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
  });
}

describe('study plan and report (no training)', () => {
  it('lists every experiment of the study', () => {
    const runs = studyRuns({ quick: true });
    expect(runs.map((r) => r.name)).toEqual(['unsup-s0', 'unsup-s1', 'unsup-s2', 'sup-leaky', 'sup-linear', 'z10-adam', 'conv-adam', 'relu',
      'opt-onecycle', 'opt-step', 'opt-adam', 'opt-adam-cosine',
      'fam-plain-z2', 'fam-vae-z2', 'fam-denoising-z2', 'fam-plain-z10', 'fam-vae-z10', 'fam-denoising-z10']);
    expect(runs.find((r) => r.name === 'fam-vae-z10')!.config).toMatchObject({ latent: 10, vae: true, beta: DEFAULT_BETA, latentActivation: 'none', seed: 0 });
    expect(runs.find((r) => r.name === 'fam-denoising-z2')!.config).toMatchObject({ latent: 2, noise: DEFAULT_DENOISE_NOISE });
    expect(runs.find((r) => r.name === 'fam-plain-z2')!.config).not.toHaveProperty('noise');
    expect(runs.find((r) => r.name === 'sup-linear')!.config).toMatchObject({ latentActivation: 'none', latentWeight: 1 });
    expect(runs.find((r) => r.name === 'conv-adam')!.config).toMatchObject({ latent: 'conv', optimizer: 'adam', lr: 1e-3, scheduler: 'none' });
    for (const r of runs) expect(r.config.maxSteps).toBe(studyScale({ quick: true }).totalSteps);
    expect(studyRuns({ seeds: 5 }).filter((r) => r.section === 'unsup')).toHaveLength(5);
    expect(studyRuns({}).every((r) => r.config.maxSteps === undefined && r.config.epochs === 1)).toBe(true);
    expect(() => studyRuns({ only: ['nope'] })).toThrow(/--only: no run named 'nope'/);
    expect(negativeTargets()).toEqual([0, 1, 2, 3, 7, 8, 9]);
  });

  it('measures where the latents sit: the length of their mean and their mean standard deviation', () => {
    // dimension 0: values 1, 3 (mean 2, std 1); dimension 1: 0, 0 (mean 0, std 0)
    const r = latentCentreSpread(Float32Array.from([1, 0, 3, 0]), 2);
    expect(r.latentCentre).toBeCloseTo(2, 12);
    expect(r.latentSpread).toBeCloseTo(0.5, 12);
  });

  it('counts latent units that are never positive', () => {
    // unit 0 always <= 0, unit 1 positive once, unit 2 always exactly 0
    const z = Float32Array.from([-1.5, 2, 0, -0.5, -1, 0, 0, -3, 0]);
    expect(latentUnitStats(z, 3)).toEqual({ nonPositiveUnits: 2, zeroUnits: 1, negativeShare: 2 / 3 });
  });

  it('renders Markdown and a self-contained HTML page', () => {
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47]);
    const doc = { title: 'T <1>', blocks: [
      { kind: 'p' as const, text: 'a **b** `c` [run](runs/x/) <script>' },
      { kind: 'table' as const, head: ['a', 'b'], rows: [['1', '2|3']] },
      { kind: 'figures' as const, items: [{ src: 'runs/x/latent.png', alt: 'l', caption: 'cap' }, { src: 'y.png', alt: 'y' }] },
    ] };
    const md = toMarkdown(doc);
    expect(md).toContain('![l](runs/x/latent.png)');
    expect(md).toContain('| 1 | 2\\|3 |');
    const html = toHtml(doc, () => png);
    expect(html).not.toContain('<script>');
    expect(html.match(/src="data:image\/png;base64,iVBORw=="/g)).toHaveLength(2);
    expect(html).toContain('<a href="runs/x/">run</a>');
    expect(inlineHtml('**x** & `y`')).toBe('<strong>x</strong> &amp; <code>y</code>');
  });

  it("quotes PyTorch's figures from the reference JSON written by tools/fixtures/gen_study_reference.py, saying what was run", () => {
    const committed = JSON.parse(readFileSync(path.resolve('src/lab/study/reference/supervised.json'), 'utf8'));
    expect(committed.generator).toBe('tools/fixtures/gen_study_reference.py');
    expect(existsSync(path.resolve(committed.generator))).toBe(true);
    expect(committed.seeds).toHaveLength(committed.runCount);
    expect(SUPERVISED_REFERENCE).toEqual(committed);
    const runs = studyRuns({ quick: true, only: ['sup-leaky', 'sup-linear'] });
    const base = {
      runs, figures: new Map<string, RunFigures>(), configs: new Map(), scale: studyScale({ quick: true }), runsDir: 'runs', combined: {},
      jobs: 1, threads: 1, backend: 'wasm', wallSeconds: 1, trainedNow: 0, command: 'latentlab study --quick', failures: [],
    };
    const text = (ref?: SupervisedReference): string => toMarkdown(buildStudyReport({ ...base, ...(ref ? { reference: ref } : {}) }));
    // the committed file's figures, by default
    const leaky = committed.variants['sup-leaky'].mean.targetAccuracy, linear = committed.variants['sup-linear'].mean.targetAccuracy;
    expect(text()).toContain(`target accuracy ${leaky.toFixed(3)} with LeakyReLU vs ${linear.toFixed(3)} without`);
    expect(text()).toContain(`torch ${committed.torch}`);
    // another file's figures and run description come through; nothing is typed into the sentence
    const other = structuredClone(committed) as SupervisedReference;
    Object.assign(other, { seeds: [3, 4, 5], runCount: 3, steps: 2 * other.stepsPerEpoch, torch: '9.9.9' });
    for (const v of ['sup-leaky', 'sup-linear'] as const) other.variants[v].runs = [3, 4, 5].map((seed) => ({ seed, targetAccuracy: 0.5, testMse: 0.1 }));
    other.variants['sup-leaky'].mean.targetAccuracy = 0.1234;
    other.variants['sup-linear'].mean.targetAccuracy = 0.9876;
    const t = text(checkSupervisedReference(other));
    expect(t).toContain('target accuracy 0.123 with LeakyReLU vs 0.988 without');
    expect(t).toContain('the mean of 3 runs per variant (seeds 3, 4, 5), 2 epochs');
    expect(t).toContain('torch 9.9.9');
    expect(t).not.toMatch(/0\.53 vs 0\.89/);
    // a broken file is one line naming the file and the key
    expect(() => checkSupervisedReference({ ...committed, runCount: 0 })).toThrow(/^src\/lab\/study\/reference\/supervised\.json: runCount: expected a positive integer/);
    expect(() => checkSupervisedReference({ ...committed, variants: {} })).toThrow(/supervised\.json: variants\.sup-leaky: expected an object/);
  });
});

describe('plain vs variational vs denoising: the section and its PyTorch reference', () => {
  const committed = JSON.parse(readFileSync(path.resolve('src/lab/study/reference/family.json'), 'utf8')) as FamilyReference;
  const fig = (name: string, testMse: number, knn: number, kl?: number, steps = 937): RunFigures => ({
    name, steps, totalSteps: steps, testMse, psnr: 20, testImages: 10000, knnAccuracy: knn, references: 10000, confused: [],
    ...(kl !== undefined ? { kl } : {}), negativeShare: 0, nonPositiveUnits: 0, zeroUnits: 0, latentDim: 2, finalLoss: 0.2, seconds: 1, samplesPerSec: 1,
    backend: 'wasm', threads: 1, pictures: { latent: 'latent.png' },
  });
  const report = (o: { quick?: boolean; ref?: FamilyReference; figures?: Map<string, RunFigures> } = {}): string => {
    const runs = studyRuns({ quick: o.quick, only: FAMILY_LATENTS.flatMap((l) => FAMILY_KINDS.map((k) => familyRunName(k, l))) });
    return toMarkdown(buildStudyReport({
      runs, figures: o.figures ?? new Map(), configs: new Map(), scale: studyScale({ quick: o.quick }), runsDir: 'runs',
      combined: { family: { 2: 'family-z2.png', 10: 'family-z10.png' } }, jobs: 1, threads: 1, backend: 'wasm', wallSeconds: 1, trainedNow: 0,
      command: 'latentlab study', failures: [], ...(o.ref ? { familyReference: o.ref } : {}),
    }));
  };

  it('the committed family.json was written by its generator with our defaults, for every kind and latent size', () => {
    expect(committed.generator).toBe('tools/fixtures/gen_family_reference.py');
    expect(existsSync(path.resolve(committed.generator))).toBe(true);
    expect(FAMILY_REFERENCE).toEqual(committed);
    // the generator declares the VAE's beta and the denoising noise itself: they must be ours
    expect(committed.beta).toBe(DEFAULT_BETA);
    expect(committed.noise).toBe(DEFAULT_DENOISE_NOISE);
    expect(committed.knn).toMatchObject({ k: 5, references: studyScale({}).trainLatents });
    expect(committed.testImages).toBe(10000);
    for (const latent of FAMILY_LATENTS) for (const kind of FAMILY_KINDS)
      expect(committed.runs.filter((r) => r.kind === kind && r.latent === latent), `${kind} z=${latent}`).toHaveLength(1);
    for (const r of committed.runs) {
      expect(r.testMse).toBeGreaterThan(0);
      expect(r.knnAccuracy).toBeGreaterThan(0.1);
      expect(r.knnAccuracy).toBeLessThanOrEqual(1);
      if (r.kind === 'vae') expect(r.kl).toBeGreaterThan(0);
    }
  });

  it("puts PyTorch's figures from the file beside ours, says what PyTorch ran, and types none of them", () => {
    const ref = structuredClone(committed);
    Object.assign(ref, { torch: '9.9.9', date: '2031-01-02T03:04:05Z', steps: 937, stepsPerEpoch: 937 });
    ref.runs = FAMILY_LATENTS.flatMap((latent) => FAMILY_KINDS.map((kind, i) => ({ kind, latent, testMse: 0.1111 * (i + 1) + latent / 1e4, knnAccuracy: 0.5 + i / 10 + latent / 1e3, ...(kind === 'vae' ? { kl: 7.7777 + latent } : {}) })));
    const figures = new Map([
      ['fam-plain-z2', fig('fam-plain-z2', 0.2628, 0.363)], ['fam-vae-z2', { ...fig('fam-vae-z2', 0.2179, 0.476, 5.4321), latentCentre: 2.0512, latentSpread: 0.7123 }], ['fam-denoising-z2', fig('fam-denoising-z2', 0.3003, 0.401)],
    ]);
    const md = report({ ref: checkFamilyReference(ref), figures });
    expect(md).toContain('# 7. Plain vs variational vs denoising');
    expect(md).toContain('torch 9.9.9, 2031-01-02T03:04:05Z');
    expect(md).toContain('1 epoch (937 steps)');
    // one row per run: ours, then PyTorch's, for test MSE, KL and k-NN
    expect(md).toContain('| [fam-vae-z2](runs/fam-vae-z2/) | variational (VAE) | 937 | 0.2179 | 0.2224 | 5.4321 | 9.7777 | 0.476 | 0.602 | 2.05 | 0.71 |');
    expect(md).toContain('| [fam-plain-z2](runs/fam-plain-z2/) | plain | 937 | 0.2628 | 0.1113 |  |  | 0.363 | 0.502 | – | – |');
    expect(md).toContain('| [fam-denoising-z10](runs/fam-denoising-z10/) | denoising | not finished | – | 0.3343 |  |  | – | 0.710 | – | – |');
    expect(md).toContain("2-D: the VAE's test MSE is lower than the plain model's (0.2179 vs 0.2628), the denoising model's higher (0.3003).");
    expect(md).toContain('![plain, VAE and denoising latents, 2-D](family-z2.png)');
    expect(md).toContain("Here the VAE's codes sit at 2-D: centre 2.05, spread 0.71 (the prior: 0 and 1).");
    expect(md).not.toContain('Not comparable here');
    expect(md).not.toContain('other settings');
    // a reference made with other settings or another length is said to be so
    const other = checkFamilyReference({ ...ref, beta: 1, steps: 300 });
    const t = report({ ref: other, figures });
    expect(t).toContain(`its VAE used beta 1, ours ${DEFAULT_BETA}`);
    expect(t).toMatch(/\*\*Not comparable here:\*\* our runs trained 937 steps, PyTorch's 300/);
    expect(t).toContain('300 steps (0.32 of an epoch)');
    // a quick study is labelled as such
    expect(report({ quick: true })).toMatch(/\*\*Not comparable here:\*\* our runs trained 60 steps \(a quick run, on the first 1000 test images\)/);
    // a broken file is one line naming the file and the key
    expect(() => checkFamilyReference({ ...committed, steps: 0 })).toThrow(/^src\/lab\/study\/reference\/family\.json: steps: expected a positive integer/);
    expect(() => checkFamilyReference({ ...committed, runs: [{ kind: 'vae', latent: 2, testMse: 0.2, knnAccuracy: 0.5 }] })).toThrow(/family\.json: runs\[0\]\.kl: expected a number/);
  });
});

describe.skipIf(!canRun)('latentlab study --quick on real MNIST', () => {
  const out = path.join(tmp, 'quick');
  const args = ['study', '--quick', '--out', out, '--data-dir', DATA, '--backend', 'wasm'];
  let first: CliRun;

  it('runs every experiment and writes report.md and a self-contained report.html', async () => {
    first = await cli(args);
    expect(first.code, first.stderr).toBe(0);
    const runs = studyRuns({ quick: true });
    for (const r of runs) expect(first.stderr).toMatch(new RegExp(`done +${r.name}: test MSE`));
    const md = readFileSync(path.join(out, 'report.md'), 'utf8');
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(md).toMatch(/quick run/);
    // the table of every run, with links to the run folders
    for (const r of runs) {
      expect(md).toContain(`[${r.name}](runs/${r.name}/)`);
      expect(html).toContain(`<a href="runs/${r.name}/">${r.name}</a>`);
    }
    // no external resources: every src= is a data: URI, no http(s) anywhere
    expect(html).not.toMatch(/https?:/);
    const srcs = [...html.matchAll(/src="([^"]*)"/g)].map((m) => m[1]);
    expect(srcs.length).toBeGreaterThanOrEqual(15);
    for (const s of srcs) expect(s).toMatch(/^data:image\/(png|gif);base64,[A-Za-z0-9+/=]+$/);
    expect(html).not.toMatch(/<link|<script|url\(/);
    // the pictures the Markdown names exist
    for (const m of md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) expect(existsSync(path.join(out, decodeURIComponent(m[1]))), m[1]).toBe(true);
    // supervised accuracies are numbers in [0, 1], and the report states them
    for (const name of ['sup-leaky', 'sup-linear']) {
      const f = JSON.parse(readFileSync(path.join(out, 'runs', name, 'study-eval.json'), 'utf8')) as RunFigures;
      expect(f.targetAccuracy).toBeGreaterThanOrEqual(0);
      expect(f.targetAccuracy).toBeLessThanOrEqual(1);
      expect(md).toContain(f.targetAccuracy!.toFixed(3));
      expect(f.pictures).toMatchObject({ latent: 'latent.png', sample: 'sample.png', zoom: 'zoom-459.png', digits: 'digits.png', gif: 'training.gif' });
    }
    const z10 = JSON.parse(readFileSync(path.join(out, 'runs', 'z10-adam', 'study-eval.json'), 'utf8')) as RunFigures;
    expect(z10.latentDim).toBe(10);
    expect(z10.confused.length).toBeGreaterThan(0);
    expect(existsSync(path.join(out, 'loss-latents.png'))).toBe(true);
    expect(existsSync(path.join(out, 'loss-optimisers.png'))).toBe(true);
    expect(md).toMatch(/target accuracy \*\*0\.\d{3}\*\* with LeakyReLU vs \*\*0\.\d{3}\*\* without/);
    // plain vs variational vs denoising: the VAE's KL and prior grid, the combined pictures, the quick label
    const vae = JSON.parse(readFileSync(path.join(out, 'runs', 'fam-vae-z2', 'study-eval.json'), 'utf8')) as RunFigures;
    expect(vae.kl).toBeGreaterThan(0);
    expect(vae.pictures.prior).toBe('prior.png');
    expect(md).toContain('# 7. Plain vs variational vs denoising');
    expect(md).toMatch(/\*\*Not comparable here:\*\* our runs trained 60 steps \(a quick run/);
    for (const latent of FAMILY_LATENTS) {
      expect(md).toContain(`](family-z${latent}.png)`);
      const png = await decodePng(path.join(out, `family-z${latent}.png`));
      expect([png.width, png.height]).toEqual([1800, 1276]);
    }
  }, 1_800_000);

  it('skips the finished runs when run again', async () => {
    expect(first?.code).toBe(0);
    const again = await cli(args);
    expect(again.code, again.stderr).toBe(0);
    const n = studyRuns({ quick: true }).length;
    expect(again.stderr).toMatch(new RegExp(`${n} runs \\(${n} finished, 0 to resume, 0 new\\)`));
    expect(again.stderr).not.toMatch(/^(start|resume) /m);
    expect(again.stderr.match(/^skip +\S+: finished/gm)).toHaveLength(n);
    expect(again.ms).toBeLessThan(Math.max(60_000, first.ms / 3));
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('this invocation trained 0 of them');
  }, 300_000);
});

describe.skipIf(!canRun)('an interrupted study resumes', () => {
  it('continues the runs from their checkpoints after the study process is killed', async () => {
    const out = path.join(tmp, 'interrupted');
    const args = ['study', '--steps', '40', '--only', 'sup-linear,relu', '--out', out, '--data-dir', DATA, '--backend', 'wasm', '--jobs', '2', '--no-report'];
    const names = ['sup-linear', 'relu'];
    const has = (n: string, f: string) => existsSync(path.join(out, 'runs', n, f));
    // kill the study (SIGKILL: no chance to clean up) once every run has a checkpoint and none has finished
    let killedAt = -1;
    const first = await cli(args, (_all, kill, child) => {
      if (killedAt >= 0) return;
      const timer = setInterval(() => {
        if (child.exitCode !== null) { clearInterval(timer); return; }
        if (names.every((n) => has(n, 'checkpoint.safetensors')) && !names.some((n) => has(n, 'result.json'))) {
          killedAt = Date.now();
          clearInterval(timer);
          kill();
        }
      }, 100);
    });
    expect(killedAt, first.stderr).toBeGreaterThan(0);
    expect(first.code).toBeNull();
    // the orphaned workers notice the parent is gone, checkpoint and exit
    const deadline = Date.now() + 60_000;
    const stopped = () => names.every((n) => /stopped at step \d+/.test(readFileSync(path.join(out, 'runs', n, 'worker.log'), 'utf8')));
    while (!stopped() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(stopped()).toBe(true);
    for (const n of names) expect(has(n, 'result.json')).toBe(false);

    const second = await cli(args);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/2 runs \(0 finished, 2 to resume, 0 new\)/);
    for (const n of names) {
      expect(second.stderr).toMatch(new RegExp(`^resume ${n}:`, 'm'));
      const at = Number(new RegExp(`${n}: resumed at step (\\d+) of 40`).exec(second.stderr)?.[1]);
      expect(at).toBeGreaterThan(0);
      expect(at).toBeLessThan(40);
      const result = JSON.parse(readFileSync(path.join(out, 'runs', n, 'result.json'), 'utf8')) as { steps: number; stopped: boolean };
      expect(result).toMatchObject({ steps: 40, stopped: false });
      // one metrics line per logged step, no step twice
      const steps = readFileSync(path.join(out, 'runs', n, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number })
        .filter((m) => m.loss !== undefined).map((m) => m.step);
      expect(new Set(steps).size).toBe(steps.length);
      expect(steps[steps.length - 1]).toBe(40);
    }
  }, 600_000);
});
