/**
 * The autoencoder family wired into the commands: the flags' settings (one schema, one clear line for
 * bad values), VAE / denoising / sparse training on real MNIST (both loss terms in the metrics, a
 * bit-identical resume with the VAE's noise generator and the corruption's in the checkpoint), --init,
 * eval's VAE, latent-health, sparsity and --worst outputs, and `latentlab denoise`.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '../src/node-backends.js';
import { loadSafetensors } from '../src/engine/state.js';
import { train } from '../src/lab/train/train.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/datasets.js';
import { resolveTrainConfig, DEFAULT_BETA } from '../src/lab/run/config.js';
import { loadModel } from '../src/lab/run/run.js';
import { VAE } from '../src/lab/models/vae.js';
import { AutoEncoder } from '../src/lab/models/autoencoder.js';
import { lossRunFromMetrics } from '../src/viz/figures.js';
import { main } from '../src/cli/main.js';
import { modelFromSafetensors } from '../src/api/models.js';
import { runEval } from '../src/cli/eval.js';
import { MNIST_DIR } from './helpers.js';
import { FASHION_DIR, need } from './requirements.js';
import { FASHION_MNIST_INFO } from '../src/lab/data/image.js';
import { decodePng } from '../src/viz/node.js';

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'latentlab-family-'));
let data: LoadedDataset;
const quick = { batchSize: 16, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 2 };
const opts = (out: string) => ({ out, data, testLimit: 200, trainLatents: 200 });

beforeAll(async () => {
  data = await loadDataset('mnist', { dataDir: MNIST_DIR });
});

function weights(file: string): Map<string, number[]> {
  const { tensors } = loadSafetensors(readFileSync(file), file);
  return new Map([...tensors].map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]));
}

/** Runs the CLI in-process; returns the exit code and what went to stderr. */
async function cli(args: string[]): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [], out: string[] = [];
  const we = process.stderr.write.bind(process.stderr), wo = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((s: string) => { err.push(String(s)); return true; }) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => { out.push(String(s)); return true; }) as typeof process.stdout.write;
  try {
    const code = await main(['node', 'latentlab', ...args]);
    return { code, err: err.join(''), out: out.join('') };
  } finally {
    process.stderr.write = we; process.stdout.write = wo;
  }
}

describe('the family settings (one schema)', () => {
  it('--model vae / vae-simple split into the body and the family; a VAE takes no latent activation', () => {
    expect(resolveTrainConfig({}, { model: 'vae' as never })).toMatchObject({ model: 'bn', vae: true, latentActivation: 'none', beta: DEFAULT_BETA });
    expect(resolveTrainConfig({ model: 'vae-simple' }, {}, { file: 'c.json' })).toMatchObject({ model: 'simple', vae: true });
    expect(DEFAULT_BETA).toBeCloseTo(1 / 784, 12);
    expect(() => resolveTrainConfig({}, { model: 'vae' as never, latentActivation: 'leaky' })).toThrow(/^--latent-activation: a VAE's mean and log-variance heads take no activation/);
  });

  it('bad values are one line naming the flag or the file and key', () => {
    expect(() => resolveTrainConfig({}, { model: 'vae' as never, beta: -1 })).toThrow(/^--beta: expected a number >= 0, got -1$/);
    expect(() => resolveTrainConfig({}, { noise: 'gaussian:abc' })).toThrow(/^--noise gaussian:abc: SIGMA must be a number >= 0/);
    expect(() => resolveTrainConfig({ noise: 'blur:2' }, {}, { file: 'c.json' })).toThrow(/^c\.json: key "noise": expected gaussian:SIGMA, saltpepper:P, mask:P or none, got 'blur:2'$/);
    expect(() => resolveTrainConfig({}, { klWarmup: 1.5 })).toThrow(/^--kl-warmup: expected a whole number of steps >= 0/);
    expect(() => resolveTrainConfig({}, { activityL1: -0.1 })).toThrow(/^--activity-l1: expected a number >= 0/);
    // a VAE setting on a plain model has no effect: refused
    expect(() => resolveTrainConfig({}, { beta: 0.5 })).toThrow(/^--beta: has no effect without --model vae/);
    expect(() => resolveTrainConfig({}, { model: 'vae' as never, activityL1: 0.1 })).toThrow(/^--activity-l1: not with --model vae/);
  });

  it('the CLI exits 2 with one line for --beta -1, --noise gaussian:abc and an unknown --model', async () => {
    for (const [args, re] of [
      [['--model', 'vae', '--beta', '-1'], /^latentlab: --beta: expected a number >= 0, got -1\n$/],
      [['--noise', 'gaussian:abc'], /--noise gaussian:abc: SIGMA must be a number >= 0.*got 'abc'\n$/],
      [['--model', 'vea'], /--model: expected one of bn, simple, vae, vae-bn, vae-simple, got 'vea'\n$/],
    ] as [string[], RegExp][]) {
      const r = await cli(['train', ...args, '--out', path.join(tmp(), 'r'), '--data-dir', MNIST_DIR]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(re);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('training the family on MNIST', () => {
  it('a VAE run logs both loss terms, warms the KL weight up, and resumes bit-identically', async () => {
    const cfg = { ...quick, model: 'vae' as never, klWarmup: 4, maxSteps: 8, checkpointEvery: 100 };
    const a = tmp(), b = tmp();
    await train(cfg, opts(a));
    const lines = readFileSync(path.join(a, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const steps = lines.filter((l) => l.kl !== undefined);
    expect(steps.length).toBeGreaterThanOrEqual(4);
    for (const l of steps) {
      expect(l.klWeight).toBeCloseTo(DEFAULT_BETA * Math.min(1, (l.step - 1) / 4), 12);
      expect(l.loss).toBeCloseTo(l.recon + l.klWeight * l.kl, 10);
      expect(l.kl).toBeGreaterThan(0);
    }
    // the loss picture puts the KL in the latent panel
    const run = lossRunFromMetrics('a', lines);
    expect(run.latentKind).toBe('kl');
    expect(run.latent!.values).toEqual(steps.map((l) => l.kl));
    expect(run.train.values).toEqual(lines.filter((l) => l.recon !== undefined).map((l) => l.recon));
    const m = loadModel(path.join(a, 'model.safetensors'), {});
    expect(m).toBeInstanceOf(VAE);
    // stopped at step 3 then resumed: the same weights (eps is drawn from the generator the checkpoint carries)
    await train(cfg, { ...opts(b), callbacks: { onStep: (s) => (s.step === 3 ? 'stop' : undefined) } });
    await train({ maxSteps: 8 }, { ...opts(b), resume: true });
    expect(weights(path.join(b, 'model.safetensors'))).toEqual(weights(path.join(a, 'model.safetensors')));
  }, 120_000);

  it('a denoising run corrupts the inputs only and resumes bit-identically; --activity-l1 logs its term', async () => {
    const cfg = { ...quick, noise: 'saltpepper:0.3', maxSteps: 6, checkpointEvery: 100 };
    const a = tmp(), b = tmp(), c = tmp();
    const ra = await train(cfg, opts(a));
    const plain = await train({ ...quick, maxSteps: 6 }, opts(c));
    expect(ra.testMse).not.toBe(plain.testMse); // the noise changes what is learnt
    await train(cfg, { ...opts(b), callbacks: { onStep: (s) => (s.step === 2 ? 'stop' : undefined) } });
    await train({ maxSteps: 6 }, { ...opts(b), resume: true });
    expect(weights(path.join(b, 'model.safetensors'))).toEqual(weights(path.join(a, 'model.safetensors')));
    const d = tmp();
    await train({ ...quick, activityL1: 0.01, maxSteps: 4 }, opts(d));
    const lines = readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.l1 !== undefined);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) { expect(l.l1).toBeGreaterThan(0); expect(l.loss).toBeCloseTo(l.recon + l.l1, 10); }
  }, 120_000);

  it('--init starts from a checkpoint of the same kind; a plain checkpoint for a VAE is one clear line', async () => {
    const a = tmp(), b = tmp();
    await train({ ...quick, maxSteps: 2 }, opts(a));
    const from = path.join(a, 'model.safetensors');
    // zero steps of training is not allowed: the starting weights are those of the file, seen through the first loss
    const r1 = await train({ ...quick, maxSteps: 1, init: from }, opts(b));
    const r0 = await train({ ...quick, maxSteps: 1 }, opts(tmp()));
    expect(r1.testMse).not.toBe(r0.testMse);
    await expect(train({ ...quick, model: 'vae' as never, maxSteps: 1, init: from }, opts(tmp())))
      .rejects.toThrow(/^--init .*model\.safetensors: holds a plain autoencoder's weights, not a VAE's/);
    const r = await cli(['eval', '--checkpoint', from, '--model', 'vae', '--latent', '2', '--data-dir', MNIST_DIR, '--limit', '50', '--backend', 'wasm']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^latentlab: .*model\.safetensors: holds a plain autoencoder's weights, not a VAE's \(no mu\/logvar heads\): drop --model vae or use a VAE run\n$/);
  }, 120_000);
});

describe('eval and denoise of family runs', () => {
  it('eval reports a VAE\'s KL and ELBO, latent health and sparsity; --worst writes its pictures', async () => {
    const a = tmp();
    await train({ ...quick, model: 'vae' as never, maxSteps: 4 }, opts(a));
    const rep = await runEval(a, { limit: 100, backend: 'wasm' });
    expect(rep.vae!.kl).toBeGreaterThan(0);
    expect(rep.vae!.elbo).toBeLessThan(-0.5 * 784 * Math.log(2 * Math.PI)); // the ELBO is at most the constant
    expect(rep.vae!.reconstruction).toBeCloseTo(rep.mse, 6);
    expect(rep.vae!.klPerDim).toHaveLength(2);
    expect(rep.latentHealth.message).toMatch(/^z /);
    expect(rep.sparsity.meanAbs).toBeGreaterThan(0);
    const r = await cli(['eval', a, '--limit', '100', '--worst', '5', '--backend', 'wasm']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/worst reconstructed: #\d+ \d \(MSE [\d.]+\)/);
    expect(r.out).toMatch(/KL per latent dimension/);
    for (const f of ['worst.png', 'error-histogram.png']) expect(existsSync(path.join(a, f)), f).toBe(true);
    const bad = await cli(['eval', a, '--worst', '0']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^latentlab: --worst: expected a whole number >= 1, got 0\n$/);
    // a plain run's eval names its latent activation's condition
    const p = tmp();
    await train({ ...quick, maxSteps: 2 }, opts(p));
    const rp = await runEval(p, { limit: 100, backend: 'wasm' });
    expect(rp.vae).toBeUndefined();
    expect(rp.latentHealth.condition).toMatch(/healthy|negative-slope|collapsed/);
  }, 120_000);

  it('latentlab denoise prints PSNR before and after and writes the picture; a bad --noise is one line, exit 2', async () => {
    const a = tmp();
    await train({ ...quick, noise: 'gaussian:0.5', maxSteps: 4 }, opts(a));
    const r = await cli(['denoise', a, '--count', '4']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/noise gaussian:0\.5 on 4 test images: PSNR before [\d.]+ dB \(noisy vs clean\), after [\d.]+ dB/);
    expect(existsSync(path.join(a, 'denoise.png'))).toBe(true);
    const bad = await cli(['denoise', a, '--noise', 'gaussian:abc']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^latentlab: --noise gaussian:abc: SIGMA must be a number >= 0 .*got 'abc'\n$/);
  }, 120_000);

  it('sample --prior decodes the normal-quantile grid of a VAE; generate --prior draws from it; both refuse a plain run; the API loads VAE weights', async () => {
    const a = tmp(), p = tmp();
    await train({ ...quick, model: 'vae' as never, maxSteps: 2 }, opts(a));
    await train({ ...quick, maxSteps: 2 }, opts(p));
    let r = await cli(['sample', a, '--prior', '--grid', '4']);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(path.join(a, 'prior.png'))).toBe(true);
    r = await cli(['generate', a, '--prior', '--count', '3']);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(path.join(a, 'generate', 'prior-sheet.png'))).toBe(true);
    for (const args of [['sample', p, '--prior'], ['generate', p, '--prior']]) {
      r = await cli(args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^latentlab: --prior: .* is a plain autoencoder \(its latent has no prior\)/);
    }
    r = await cli(['plot', 'latent', a, '--ellipses', '20', '--out', path.join(a, 'ell.png')]);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(path.join(a, 'ell.png'))).toBe(true);
    r = await cli(['plot', 'latent', p, '--ellipses']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^latentlab: --ellipses: .* is a plain autoencoder/);
    const bytes = readFileSync(path.join(a, 'model.safetensors'));
    const m = modelFromSafetensors(bytes, { latent: 2 }, { name: 'vae.safetensors' });
    expect(m).toBeInstanceOf(VAE);
    expect(modelFromSafetensors(readFileSync(path.join(p, 'model.safetensors')))).toBeInstanceOf(AutoEncoder);
    expect(() => modelFromSafetensors(bytes, { vae: false }, { name: 'vae.safetensors' })).toThrow(/^vae\.safetensors: holds a VAE's weights/);
  }, 120_000);
});

describe('anomaly search on Fashion-MNIST, and the family flags against a plain run', () => {
  it.skipIf(!need('fashion', 'family-cli.test'))('eval --worst on a Fashion-MNIST run names the articles in its numbers and pictures', async () => {
    const fashion = await loadDataset('fashion-mnist', { dataDir: FASHION_DIR });
    const a = tmp();
    await train({ ...quick, dataset: 'fashion-mnist', dataDir: FASHION_DIR, maxSteps: 3 }, { ...opts(a), data: fashion });
    const r = await cli(['eval', a, '--limit', '200', '--worst', '6', '--backend', 'wasm', '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { dataset: string; worst: { images: { index: number; error: number; label: number; className: string }[]; histogram: { classNames: string[]; perClass: { className: string; n: number }[] } } };
    expect(j.dataset).toBe('fashion-mnist');
    expect(j.worst.images).toHaveLength(6);
    for (const w of j.worst.images) {
      expect(w.label).toBe(fashion.test.labels[w.index]);
      expect(w.className).toBe(FASHION_MNIST_INFO.classes[w.label]);
    }
    expect(j.worst.images.map((w) => w.error)).toEqual([...j.worst.images.map((w) => w.error)].sort((x, y) => y - x));
    expect(j.worst.histogram.classNames).toEqual([...FASHION_MNIST_INFO.classes]);
    expect(j.worst.histogram.perClass.reduce((s, p) => s + p.n, 0)).toBe(200);
    // the text report: article names, not digits
    const t = await cli(['eval', a, '--limit', '200', '--worst', '3', '--backend', 'wasm']);
    expect(t.code, t.err).toBe(0);
    const line = t.out.split('\n').find((l) => l.startsWith('worst reconstructed: '))!;
    expect(line).toMatch(new RegExp(`^worst reconstructed: #\\d+ (${FASHION_MNIST_INFO.classes.map((c) => c.replace(/[/-]/g, '\\$&')).join('|')}) \\(MSE`));
    for (const c of FASHION_MNIST_INFO.classes) expect(t.out).toContain(`  ${c}: `);
    const sheet = await decodePng(path.join(a, 'worst.png'));
    expect(sheet.width).toBeGreaterThan(400);
    expect(existsSync(path.join(a, 'error-histogram.png'))).toBe(true);
  }, 120_000);

  it('eval --worst abc is one line, exit 2', async () => {
    const r = await cli(['eval', tmp(), '--worst', 'abc']);
    expect(r.code).toBe(2);
    expect(r.err).toBe("error: option '--worst <n>' argument 'abc' is invalid. --worst: expected an integer, got 'abc'\n");
  });

  it('--model vae with --resume of a plain run, or with --checkpoint of a plain model, is one clear line, exit 2', async () => {
    const p = tmp();
    await train({ ...quick, maxSteps: 2 }, opts(p));
    const r = await cli(['train', '--resume', p, '--model', 'vae', '--data-dir', MNIST_DIR, '--backend', 'wasm']);
    expect(r.code, r.err).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toBe(`latentlab: --model: the run in ${p} is a plain autoencoder (--model bn), not a VAE; a resumed run keeps its model (the checkpoint holds its weights; start a new run with --out to change it)\n`);
    const c = await cli(['eval', '--checkpoint', path.join(p, 'model.safetensors'), '--model', 'vae', '--latent', '2', '--data-dir', MNIST_DIR, '--limit', '20', '--backend', 'wasm']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/^latentlab: .*model\.safetensors: holds a plain autoencoder's weights, not a VAE's/);
    expect(c.err.trim().split('\n')).toHaveLength(1);
  }, 120_000);
});
