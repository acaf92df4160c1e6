/** `latentlab eval` and checkpoints that cross to PyTorch and back. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '../src/node-backends.js';
import { createBackend } from '../src/engine/kernels/select.js';
import { f32, loadSafetensors, saveSafetensors } from '../src/engine/state.js';
import { train } from '../src/lab/train/train.js';
import { loadModel } from '../src/lab/run/run.js';
import { runEval, formatReport } from '../src/cli/eval.js';
import { loadDataset } from '../src/lab/data/datasets.js';
import { expectClose, f32of, FIXTURES, MNIST_DIR, ROOT } from './helpers.js';
import { need, pythonWithTorch } from './requirements.js';

const FASHION_DIR = process.env.LATENTLAB_FASHION_MNIST ?? '/usr/share/datasets/fashion-mnist';

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
let run: string;

const py = pythonWithTorch();

beforeAll(async () => {
  run = mkdtempSync(path.join(os.tmpdir(), 'latentlab-eval-'));
  await train({ maxSteps: 40, batchSize: 32, backend: 'wasm', threads: 1, dataDir: MNIST_DIR }, { out: run, testLimit: 500, trainLatents: 1000 });
});

describe('eval', () => {
  it('reports MSE on both scales, PSNR, k-NN accuracy and confused pairs for a run', async () => {
    const r = await runEval(run, { limit: 500, dataDir: MNIST_DIR, backend: 'wasm' });
    expect(r.n).toBe(500);
    expect(r.mse01).toBeCloseTo(r.mse / 4, 10);
    expect(r.psnr).toBeCloseTo(10 * Math.log10(1 / r.mse01), 8);
    expect(r.knn!.k).toBe(5);
    expect(r.knn!.references).toBe(1000);
    expect(r.knn!.accuracy).toBeGreaterThan(0.15); // well above chance after 40 steps
    expect(r.knn!.perClass).toHaveLength(10);
    expect(r.knn!.confused.length).toBeGreaterThan(0);
    expect(r.dataset).toBe('mnist');
    expect(r.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const text = formatReport(r);
    expect(text).toMatch(/k-NN \(k=5, 1000 train latents\) digit accuracy: \d+\.\d%/);
    expect(text).toMatch(/^per digit: 0: \d+%, 1: \d+%, .*9: \d+%$/m);
  });

  it('evaluates a safetensors checkpoint made by PyTorch (--checkpoint): the MSE of its reconstructions, k-NN over 10,000 train latents', async () => {
    const file = path.join(FIXTURES, 'pytorch', 'study_z2.safetensors');
    const r = await runEval(undefined, { checkpoint: file, model: 'bn', latent: 2, limit: 300, dataDir: MNIST_DIR, backend: 'wasm' });
    expect(r.n).toBe(300);
    // the same number computed here from the checkpoint's reconstructions of the first 300 test images
    const data = await loadDataset('mnist', { dataDir: MNIST_DIR });
    const model = loadModel(file, { model: 'bn', latent: 2 }, await createBackend('wasm'));
    const x = Float32Array.from(data.test.images.subarray(0, 300 * 784), (v) => v / 127.5 - 1);
    const y = model.reconstruct(x, 300);
    let se = 0;
    for (let i = 0; i < x.length; i++) se += (y[i] - x[i]) ** 2;
    expect(r.mse).toBeCloseTo(se / x.length, 6);
    expect(r.mse01).toBeCloseTo(r.mse / 4, 10);
    // k-NN against the first 10,000 train latents; the confused pairs add up to no more than the errors
    expect(r.knn!.references).toBe(10000);
    const errors = Math.round((1 - r.knn!.accuracy) * 300);
    expect(r.knn!.confused.reduce((s, c) => s + c.count, 0)).toBeLessThanOrEqual(errors);
    for (const c of r.knn!.confused) expect(c.a).toBeLessThan(c.b);
  });

  it.skipIf(!need('fashion', 'eval.test'))('Fashion-MNIST: the report speaks of classes and names them (not digits)', async () => {
    const r = await runEval(undefined, {
      checkpoint: path.join(FIXTURES, 'pytorch', 'study_z2.safetensors'), model: 'bn', latent: 2, limit: 200, dataset: 'fashion-mnist', dataDir: FASHION_DIR, backend: 'wasm',
    });
    expect(r.dataset).toBe('fashion-mnist');
    expect(r.classes).toEqual(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
    const text = formatReport(r);
    expect(text).not.toMatch(/digit/);
    expect(text).toMatch(/^data set: Fashion-MNIST/m);
    expect(text).toMatch(/k-NN \(k=5, 10000 train latents\) class accuracy: \d+\.\d%/);
    expect(text).toMatch(/^per class: T-shirt\/top: \d+%, Trouser: \d+%, .*Ankle boot: \d+%$/m);
    // names hold slashes ("T-shirt/top"), so a pair is written "A vs B"
    const pairs = text.split('\n').find((l) => l.startsWith('most confused pairs: '))!;
    for (const c of r.knn!.confused) expect(pairs).toContain(`${r.classes[c.a]} vs ${r.classes[c.b]} (${c.count})`);
    // an MNIST run evaluated on Fashion-MNIST: k-NN against Fashion-MNIST train latents, not the run's 1000 MNIST ones
    const cross = await runEval(run, { limit: 100, dataset: 'fashion-mnist', dataDir: FASHION_DIR, backend: 'wasm' });
    expect(cross.dataset).toBe('fashion-mnist');
    expect(cross.knn!.references).toBe(10000);
  });

  it.skipIf(!need('cli', 'eval.test'))('CLI: --json, and a checkpoint of another architecture is a one-line error', () => {
    const ok = spawnSync(process.execPath, [CLI, 'eval', run, '--json', '--limit', '200', '--data-dir', MNIST_DIR], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout);
    expect(j).toMatchObject({ n: 200 });
    const bad = spawnSync(process.execPath, [CLI, 'eval', '--checkpoint', path.join(FIXTURES, 'pytorch', 'study_z2.safetensors'), '--model', 'bn', '--latent', '10', '--data-dir', MNIST_DIR], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/study_z2\.safetensors: does not fit --model bn --latent 10 \(.*size mismatch for encoder\.10\.weight/);
    const missing = spawnSync(process.execPath, [CLI, 'eval', '/nonexistent/run'], { encoding: 'utf8' });
    expect(missing.status).not.toBe(0);
    // one wording in every command (the run folder module's)
    expect(missing.stderr).toMatch(/\/nonexistent\/run: no such run folder/);
  });

  it.skipIf(!need('pytorch', 'eval.test round trip'))("a latentlab checkpoint loads into the study's PyTorch code with strict=True and computes the same", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-rt-'));
    const io = loadSafetensors(readFileSync(path.join(FIXTURES, 'pytorch', 'study_z2_io.safetensors'))).tensors;
    const x = f32of(io, 'x');
    writeFileSync(path.join(dir, 'in.safetensors'), saveSafetensors(new Map([['x', f32([x.length / 784, 1, 28, 28], x)]])));
    const out = path.join(dir, 'out.safetensors');
    const r = spawnSync(py!, [path.join(ROOT, 'tools', 'fixtures', 'roundtrip.py'), path.join(run, 'model.safetensors'), path.join(dir, 'in.safetensors'), out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ref = loadSafetensors(readFileSync(out)).tensors;
    const model = loadModel(path.join(run, 'model.safetensors'), { model: 'bn', latent: 2 }, await createBackend('reference'));
    const n = x.length / 784;
    const z = model.encode(x, n);
    expectClose(z, f32of(ref, 'z'), 'z');
    expectClose(model.decode(z, n), f32of(ref, 'y'), 'y');
  });
});
