/**
 * The training loop on real MNIST: the run folder, seeded reproducibility, NaN handling, bad input,
 * and resuming a run killed with SIGKILL in the middle of an epoch to the same weights.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '../src/node-backends.js';
import { loadSafetensors } from '../src/engine/state.js';
import { train, TrainingError } from '../src/lab/train/train.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/datasets.js';
import { openRun } from '../src/lab/run/run.js';
import { AutoEncoder } from '../src/lab/models/autoencoder.js';
import { MNIST_DIR, ROOT } from './helpers.js';
import { need } from './requirements.js';

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'latentlab-train-'));
let data: LoadedDataset;
const quick = { batchSize: 32, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 5 };

beforeAll(async () => {
  data = await loadDataset('mnist', { dataDir: MNIST_DIR });
});

function tensorsOf(file: string): Map<string, number[]> {
  const { tensors } = loadSafetensors(readFileSync(file), file);
  return new Map([...tensors].map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]));
}

describe('train()', () => {
  it('writes a complete run folder and learns', async () => {
    const out = tmp();
    const r = await train({ ...quick, maxSteps: 60, checkpointEvery: 20 }, { out, data, testLimit: 500, trainLatents: 500 });
    for (const f of ['config.json', 'metrics.jsonl', 'model.safetensors', 'checkpoint.safetensors', 'latents.safetensors', 'train-latents.safetensors', 'result.json'])
      expect(existsSync(path.join(out, f)), f).toBe(true);
    const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model: 'bn', latent: 2, optimizer: 'sgd', momentum: 0.9, scheduler: 'cyclic', baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 400, batchSize: 32, backend: 'wasm', threads: 1 });
    expect(cfg.version).toMatch(/^\d+\.\d+\.\d+/);
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBe(12);
    for (const l of lines) expect(Object.keys(l)).toEqual(expect.arrayContaining(['step', 'epoch', 'loss', 'lr', 'elapsed', 'samplesPerSec']));
    expect(lines.map((l) => l.step)).toEqual([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]);
    // CyclicLR rises from base_lr by (max - base) / step_size_up per step
    expect(lines[0].lr).toBeCloseTo(1e-4 + 5 * (1e-2 - 1e-4) / 400, 8);
    const first = (lines[0].loss + lines[1].loss) / 2, last = (lines.at(-1).loss + lines.at(-2).loss) / 2;
    expect(last).toBeLessThan(first);
    expect(r.testMse).toBeGreaterThan(0);
    expect(r.testMse).toBeLessThan(1);
    const run = await openRun(out, { backendName: 'reference' });
    expect(run.testLatents.n).toBe(500);
    expect(run.testLatents.dim).toBe(2);
    expect([...tensorsOf(path.join(out, 'model.safetensors')).keys()]).toContain('encoder.10.weight');
  });

  it('a run that ends with an epoch evaluates the test set once: the epoch\'s test loss is the result\'s', async () => {
    const out = tmp();
    const small = { ...data, train: { ...data.train, n: 320 } };   // one epoch = 10 steps of 32
    const proto = AutoEncoder.prototype, encode = proto.encode;
    let encoded = 0;
    proto.encode = function (this: AutoEncoder, ...a: Parameters<AutoEncoder['encode']>) { encoded += a[1]; return encode.apply(this, a); };
    let r;
    try {
      r = await train({ ...quick, epochs: 1 }, { out, data: small, testLimit: 200, trainLatents: 100 });
    } finally { proto.encode = encode; }
    expect(r.steps).toBe(10);
    expect(encoded).toBe(200 + 100);   // the test images once, then the train-latents subset
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.testLoss !== undefined).map((l) => l.testLoss)).toEqual([r.testMse]);
  });

  it('is reproducible from its seed, and another seed differs', async () => {
    const [a, b, c] = [tmp(), tmp(), tmp()];
    await train({ ...quick, maxSteps: 12, seed: 3 }, { out: a, data, testLimit: 100, trainLatents: 100 });
    await train({ ...quick, maxSteps: 12, seed: 3 }, { out: b, data, testLimit: 100, trainLatents: 100 });
    await train({ ...quick, maxSteps: 12, seed: 4 }, { out: c, data, testLimit: 100, trainLatents: 100 });
    const ta = tensorsOf(path.join(a, 'model.safetensors')), tb = tensorsOf(path.join(b, 'model.safetensors')), tc = tensorsOf(path.join(c, 'model.safetensors'));
    expect(tb).toEqual(ta);
    expect(tc.get('encoder.0.weight')).not.toEqual(ta.get('encoder.0.weight'));
  });

  it('stops on a NaN or infinite loss with a clear message and keeps the last good checkpoint', async () => {
    const out = tmp();
    const err = await train({ ...quick, model: 'simple', scheduler: 'none', optimizer: 'sgd', lr: 50, maxSteps: 50, checkpointEvery: 1 }, { out, data, testLimit: 100 })
      .then(() => null, (e) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect(err.message).toMatch(/the loss became (NaN|Infinity) at step \d+; training stopped, the last good checkpoint \(step \d+\) is kept in/);
    const step = Number(/step (\d+)\)/.exec(err.message)![1]);
    const { metadata, tensors } = loadSafetensors(readFileSync(path.join(out, 'checkpoint.safetensors')));
    expect(Number(metadata.step)).toBe(step);
    for (const [, v] of tensors) expect(Array.from(v.data as ArrayLike<number | bigint>, Number).every(Number.isFinite)).toBe(true);
  });

  it('trains the supervised latent map: the latent term pulls digits toward their targets', async () => {
    const out = tmp();
    const r = await train({ ...quick, maxSteps: 60, supervised: { 0: [-2, 6], 1: [-2, -6], 2: [-6, 2], 3: [-3, 4], 4: [6, 2], 5: [2, 4], 6: [0, 2], 7: [0, -2], 8: [-2, 0], 9: [2, -2] }, latentActivation: 'none' },
      { out, data, testLimit: 300, trainLatents: 100 });
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].latent).toBeGreaterThan(lines.at(-1).latent);
    expect(r.steps).toBe(60);
  });
});

describe('datasets', () => {
  it.skipIf(!need('fashion', 'train.test'))('trains on Fashion-MNIST (--dataset fashion-mnist), found in /usr/share/datasets', async () => {
    const out = tmp();
    const r = await train({ ...quick, dataDir: undefined, dataset: 'fashion-mnist', maxSteps: 10 }, { out, testLimit: 200, trainLatents: 100 });
    expect(r.steps).toBe(10);
    const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.dataset).toBe('fashion-mnist');
    expect(cfg.dataSource).toBe('system');
  });
});

describe('latentlab train (CLI)', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

  it.skipIf(!need('cli', 'train.test'))('rejects bad input with one line naming the culprit, and damages nothing', () => {
    const out = tmp();
    writeFileSync(path.join(out, 'keep.txt'), 'precious');
    const cases: [string[], RegExp][] = [
      [['--lr', '-1'], /--lr: expected a positive number, got -1/],
      [['--batch-size', '0'], /--batch-size: expected an integer >= 2/],
      [['--scheduler', 'foo'], /--scheduler: expected one of none, cyclic/],
      [['--latent', 'x'], /--latent: expected a positive integer or 'conv'/],
      [['--data-dir', '/nonexistent/mnist'], /\/nonexistent\/mnist/],
    ];
    const map9 = path.join(out, 'map9.json');
    writeFileSync(map9, JSON.stringify({ 0: [0, 0], 1: [1, 1], 2: [2, 2], 3: [3, 3], 4: [4, 4], 5: [5, 5], 6: [6, 6], 7: [7, 7], 8: [8, 8] }));
    cases.push([['--supervised', map9], /map9\.json: expected ten points, one for each digit 0-9/]);
    const badCfg = path.join(out, 'bad.json');
    writeFileSync(badCfg, '{"lr": 0.1,');
    cases.push([['--config', badCfg], /bad\.json: not valid JSON/]);
    for (const [args, re] of cases) {
      const r = cli(['train', '--out', out, '--max-steps', '1', ...args]);
      expect(r.status, args.join(' ')).not.toBe(0);
      const errLines = r.stderr.trim().split('\n');
      expect(errLines.length, r.stderr).toBe(1);
      expect(r.stderr).toMatch(re);
    }
    expect(readFileSync(path.join(out, 'keep.txt'), 'utf8')).toBe('precious');
  });

  it.skipIf(!need('cli', 'train.test'))('resumes a run killed with SIGKILL mid-epoch to the same weights as an uninterrupted run', async () => {
    const base = ['train', '--max-steps', '90', '--checkpoint-every', '30', '--batch-size', '32', '--test-limit', '200', '--no-pictures',
      '--backend', 'wasm', '--threads', '1', '--seed', '5', '--data-dir', MNIST_DIR];
    const a = tmp(), b = tmp();
    const full = cli([...base, '--out', a]);
    expect(full.status, full.stderr).toBe(0);
    // start the same run, kill it once it has checkpointed at step 30 or 60
    const child = spawn(process.execPath, [CLI, ...base, '--out', b], { stdio: 'ignore' });
    const ckpt = path.join(b, 'checkpoint.safetensors');
    let killedAt = -1;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (!existsSync(ckpt)) return;
        try {
          const step = Number(loadSafetensors(readFileSync(ckpt)).metadata.step);
          if (step >= 30 && step < 90) { killedAt = step; child.kill('SIGKILL'); clearInterval(timer); }
        } catch { /* being renamed */ }
      }, 20);
      child.on('exit', () => { clearInterval(timer); resolve(); });
      child.on('error', reject);
    });
    expect(killedAt).toBeGreaterThanOrEqual(30);
    expect(existsSync(path.join(b, 'result.json'))).toBe(false);
    const resumed = cli(['train', '--resume', b, '--no-pictures', '--data-dir', MNIST_DIR]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resumed .* at step ${killedAt} of 90`));
    expect(tensorsOf(path.join(b, 'model.safetensors'))).toEqual(tensorsOf(path.join(a, 'model.safetensors')));
    const la = readFileSync(path.join(a, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const lb = readFileSync(path.join(b, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lb.map((l) => [l.step, l.loss])).toEqual(la.map((l) => [l.step, l.loss]));
  });
});
