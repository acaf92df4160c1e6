/** `latentlab eval` and checkpoints that cross to PyTorch and back. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '../src/node-backends.js';
import { createBackend } from '../src/engine/kernels/select.js';
import { f32, loadSafetensors, saveSafetensors } from '../src/engine/state.js';
import { train } from '../src/lab/train/train.js';
import { loadModel } from '../src/lab/run/run.js';
import { runEval, formatReport } from '../src/cli/eval.js';
import { expectClose, f32of, FIXTURES, MNIST_DIR, ROOT } from './helpers.js';

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
let run: string;

function torchPython(): string | null {
  try { execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }); return '/usr/bin/python3'; } catch { return null; }
}
const py = torchPython();
if (!py && process.env.CI === 'true') throw new Error('CI needs python3-torch for the PyTorch round-trip test');

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
    expect(r.knn!.perDigit).toHaveLength(10);
    expect(r.knn!.confused.length).toBeGreaterThan(0);
    expect(formatReport(r)).toMatch(/k-NN \(k=5, 1000 train latents\) digit accuracy: \d+\.\d%/);
  });

  it('evaluates a safetensors checkpoint made by PyTorch (--checkpoint)', async () => {
    const r = await runEval(undefined, { checkpoint: path.join(FIXTURES, 'pytorch', 'study_z2.safetensors'), model: 'bn', latent: 2, limit: 300, dataDir: MNIST_DIR });
    expect(r.n).toBe(300);
    expect(Number.isFinite(r.mse)).toBe(true);
  });

  it.skipIf(!existsSync(CLI))('CLI: --json, and a checkpoint of another architecture is a one-line error', () => {
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

  it.skipIf(!py)("a latentlab checkpoint loads into the study's PyTorch code with strict=True and computes the same", async () => {
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
