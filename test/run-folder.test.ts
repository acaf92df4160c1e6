/**
 * The run folder (src/lab/run/): the one module that names and writes a run's files. Append-only
 * metrics with a tail reader, status.json, the one-writer lock, refusing to replace a run,
 * stale temporary files, finite checkpoints only, data identity, the schema's errors (flag, or
 * file and key), resume rules, a resume that finishes every final file, and a run opened once.
 * On real MNIST, in small runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import '../src/node-backends.js';
import { loadSafetensors, saveSafetensors } from '../src/engine/state.js';
import { train } from '../src/lab/train/train.js';
import { loadDataset, type LoadedDataset } from '../src/lab/data/datasets.js';
import { RunFolder } from '../src/lab/run/folder.js';
import { resolveTrainConfig, parseTrainSettings, resumeConfig, DEFAULT_TRAIN, LATENT_MAX } from '../src/lab/run/config.js';
import { renderRunPictures } from '../src/cli/pictures.js';
import { cli } from './cli-helper.js';
import { MNIST_DIR } from './helpers.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const haveData = existsSync(MNIST_DIR);
const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'latentlab-runfolder-'));
const quick = { batchSize: 16, backend: 'wasm', threads: 1, dataDir: MNIST_DIR, logEvery: 2 } as const;
const small = { testLimit: 100, trainLatents: 100 };
let data: LoadedDataset;

function tensorsOf(file: string): Map<string, number[]> {
  const { tensors } = loadSafetensors(readFileSync(file), file);
  return new Map([...tensors].map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]));
}


/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe.skipIf(!haveData)('run folder', () => {
  let finished = '';
  beforeAll(async () => {
    data = await loadDataset('mnist', { dataDir: MNIST_DIR });
    finished = tmp();
    await train({ ...quick, maxSteps: 12, checkpointEvery: 6 }, { out: finished, data, ...small });
  });

  it('appends metrics.jsonl (the same file grows; never rewritten) and status.json follows the run', async () => {
    const out = tmp();
    const inodes = new Set<number>();
    const sizes: number[] = [];
    const states: string[] = [];
    await train({ ...quick, maxSteps: 12, checkpointEvery: 4 }, {
      out, data, ...small, liveEvery: 1e-6,
      callbacks: {
        onStep: (s) => {
          const f = path.join(out, 'metrics.jsonl');
          if (s.step % 2 === 0 && existsSync(f)) { inodes.add(statSync(f).ino); sizes.push(statSync(f).size); }
          states.push(JSON.parse(readFileSync(path.join(out, 'status.json'), 'utf8')).state);
        },
      },
    });
    expect(inodes.size).toBe(1);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBeGreaterThan(sizes[i - 1]);
    expect(new Set(states)).toEqual(new Set(['running']));
    const st = JSON.parse(readFileSync(path.join(out, 'status.json'), 'utf8'));
    expect(st).toMatchObject({ state: 'finished', pid: process.pid, step: 12, totalSteps: 12, checkpointStep: 12, error: null });
    expect(existsSync(path.join(out, '.lock'))).toBe(false);
    // the live weights: published while training (every step here), the weights of a step before the last
    const live = loadSafetensors(readFileSync(path.join(out, 'live.safetensors')));
    expect(Number(live.metadata.step)).toBeGreaterThanOrEqual(1);
    expect(Number(live.metadata.step)).toBeLessThanOrEqual(12);
    expect([...live.tensors.keys()]).toEqual([...loadSafetensors(readFileSync(path.join(out, 'model.safetensors'))).tensors.keys()]);
  });

  it('reads metrics skipping a torn last line, and tails them from a byte offset', () => {
    const out = tmp();
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'config.json'), JSON.stringify(DEFAULT_TRAIN));
    const f = path.join(out, 'metrics.jsonl');
    writeFileSync(f, '{"step":1,"epoch":0,"loss":0.5}\n{"step":2,"epoch":0,"loss":0.4}\n{"step":3,"ep');
    const folder = RunFolder.open(out);
    expect(folder.readMetrics().map((m) => m.step)).toEqual([1, 2]);
    const t1 = folder.tailMetrics(0);
    expect(t1.lines.map((m) => m.step)).toEqual([1, 2]);
    // the writer finishes the line and adds another
    appendFileSync(f, 'och":0,"loss":0.3}\n{"step":4,"epoch":0,"loss":0.2}\n');
    const t2 = folder.tailMetrics(t1.offset);
    expect(t2.lines.map((m) => m.step)).toEqual([3, 4]);
    expect(t2.offset).toBe(statSync(f).size);
    expect(folder.tailMetrics(t2.offset).lines).toEqual([]);
    // a line broken in the middle (not the last) is an error naming the file and line
    writeFileSync(f, '{"step":1}\nnot json\n{"step":3}\n');
    expect(() => folder.readMetrics()).toThrow(`${f}: line 2 is not JSON`);
  });

  it('refuses a second writer naming its pid, and takes over the lock of a dead one', async () => {
    const out = tmp();
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(out, '.lock'), `${sleeper.pid}\n`);
      await expect(train({ ...quick, maxSteps: 2 }, { out, data, ...small })).rejects.toThrow(`${out}: in use by latentlab process ${sleeper.pid}`);
      expect(existsSync(path.join(out, 'config.json'))).toBe(false);
    } finally {
      sleeper.kill('SIGKILL');
    }
    writeFileSync(path.join(out, '.lock'), `${deadPid()}\n`);
    const r = await train({ ...quick, maxSteps: 2 }, { out, data, ...small });
    expect(r.steps).toBe(2);
    expect(existsSync(path.join(out, '.lock'))).toBe(false);
    // two trainings into one folder in one process: the second is refused while the first runs
    const dir = tmp();
    const first = train({ ...quick, maxSteps: 6, latent: 10 }, { out: dir, data, ...small });
    await expect(train({ ...quick, maxSteps: 6 }, { out: dir, data, ...small, overwrite: true })).rejects.toThrow(`in use by latentlab process ${process.pid}`);
    await first;
    expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).latent).toBe(10);
  });

  it('refuses to replace a run without --overwrite, and replaces it with', async () => {
    const out = tmp();
    await train({ ...quick, maxSteps: 4 }, { out, data, ...small });
    const model = readFileSync(path.join(out, 'model.safetensors'));
    await expect(train({ ...quick, maxSteps: 4, seed: 9 }, { out, data, ...small })).rejects.toThrow(
      `--out ${out}: holds a run (finished at step 4 of 4); continue it with --resume ${out}, or pass --overwrite to replace it`);
    expect(readFileSync(path.join(out, 'model.safetensors'))).toEqual(model);
    expect(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).not.toBe('');
    const r = await cli('train', '--out', out, '--max-steps', '1');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/holds a run .*--overwrite/);
    await train({ ...quick, maxSteps: 4, seed: 9 }, { out, data, ...small, overwrite: true });
    expect(readFileSync(path.join(out, 'model.safetensors'))).not.toEqual(model);
  });

  it('removes temporary files of killed writes when a run is opened (those of live writers stay)', () => {
    const out = tmp();
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(path.join(finished, f), path.join(out, f));
    mkdirSync(path.join(out, 'snapshots'));
    const dead = deadPid();
    const stale = [path.join(out, `.model.safetensors.tmp-${dead}-abc123`), path.join(out, 'snapshots', `.step-0000010.safetensors.tmp-${dead}-x1y2z3`)];
    const live = path.join(out, `.result.json.tmp-${process.ppid}-q9w8e7`);
    for (const f of [...stale, live]) writeFileSync(f, 'half a file');
    RunFolder.open(out);
    for (const f of stale) expect(existsSync(f), f).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('never checkpoints non-finite weights and names only files that exist; eval refuses non-finite weights', async () => {
    const out = tmp();
    const err = await train({ ...quick, model: 'simple', scheduler: 'none', lr: 1e30, maxSteps: 5, checkpointEvery: 1 }, { out, data, ...small })
      .then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/at step \d+; training stopped, no checkpoint was written before it/);
    expect(existsSync(path.join(out, 'checkpoint.safetensors'))).toBe(false);
    const st = JSON.parse(readFileSync(path.join(out, 'status.json'), 'utf8'));
    expect(st.state).toBe('failed');
    expect(st.error).toBe(err!.message);

    // a model with a NaN: eval exits non-zero with one line
    const bad = tmp();
    for (const f of ['config.json', 'train-latents.safetensors', 'latents.safetensors']) copyFileSync(path.join(finished, f), path.join(bad, f));
    const { tensors } = loadSafetensors(readFileSync(path.join(finished, 'model.safetensors')));
    (tensors.get('decoder.0.weight')!.data as Float32Array)[3] = NaN;
    writeFileSync(path.join(bad, 'model.safetensors'), saveSafetensors(tensors));
    const r = await cli('eval', bad, '--backend', 'wasm', '--threads', '1', '--data-dir', MNIST_DIR, '--limit', '50');
    expect(r.code).not.toBe(0);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(`${path.join(bad, 'model.safetensors')}: holds non-finite weights (NaN in decoder.0.weight)`);
  });

  it('records the data identity, and refuses data that are another data set or not the run\'s', async () => {
    const cfg = JSON.parse(readFileSync(path.join(finished, 'config.json'), 'utf8'));
    expect(cfg.data).toEqual({
      dataset: 'mnist', known: 'mnist',
      md5: { trainImages: '6bbc9ace898e44ae57da46a324031adb', trainLabels: 'a25bea736e30d166cdddb491f175f624', testImages: '2646ac647ad5339dbf082846283269ea', testLabels: '27ae3e4e09519cfbb04c329615203637' },
    });
    if (!existsSync(FASHION)) return;
    const out = tmp();
    await expect(train({ ...quick, dataDir: FASHION, dataset: 'mnist', maxSteps: 2 }, { out, ...small }))
      .rejects.toThrow(`${FASHION}: the files are fashion-mnist (by their checksums), not mnist; pass --dataset fashion-mnist`);
    // a resumed MNIST run given Fashion-MNIST's folder
    const run = tmp();
    await train({ ...quick, maxSteps: 4, checkpointEvery: 2 }, { out: run, data, ...small });
    await expect(train({ dataDir: FASHION }, { out: run, resume: true, ...small }))
      .rejects.toThrow(`${FASHION}: the files are fashion-mnist (by their checksums), not mnist`);
    // ... or data of no known set that differ from the run's
    const fewer = { ...data, train: { ...data.train, n: data.train.n - 1 } };
    await expect(train({}, { out: run, resume: true, data: fewer, ...small }))
      .rejects.toThrow(`--resume ${run}: the data in ${data.dir} (mnist (unknown checksums)) are not the data the run was trained on (mnist)`);
    expect(JSON.parse(readFileSync(path.join(run, 'status.json'), 'utf8')).state).toBe('finished');
  });

  it('a resume finishes every final file, even when the kill came between the last checkpoint and model.safetensors', async () => {
    const other = tmp(), b = tmp();
    await train({ ...quick, maxSteps: 6, seed: 7 }, { out: other, data, ...small });
    await train({ ...quick, maxSteps: 12, checkpointEvery: 6 }, { out: b, data, ...small });
    // the state after such a kill: the final checkpoint, older weights, no latents or result
    copyFileSync(path.join(other, 'model.safetensors'), path.join(b, 'model.safetensors'));
    for (const f of ['result.json', 'latents.safetensors', 'train-latents.safetensors']) rmSync(path.join(b, f));
    const r = await train({}, { out: b, resume: true, data, ...small });
    expect(r.steps).toBe(12);
    expect(tensorsOf(path.join(b, 'model.safetensors'))).toEqual(tensorsOf(path.join(finished, 'model.safetensors')));
    for (const f of ['result.json', 'latents.safetensors', 'train-latents.safetensors']) expect(existsSync(path.join(b, f)), f).toBe(true);
  });

  it('resume refuses a changed model or training setting naming it, accepts and records run settings', async () => {
    const out = tmp();
    await train({ ...quick, maxSteps: 4, checkpointEvery: 2, scheduler: 'none', optimizer: 'sgd', lr: 0.01 }, { out, data, ...small });
    for (const [given, re] of [
      [{ latent: 10 }, /^--latent: the run in .* was trained with --latent 2; a resumed run keeps its model settings/],
      [{ activation: 'relu' }, /^--activation: .* --activation "leaky"; a resumed run keeps its model settings/],
      [{ optimizer: 'adam' }, /^--optimizer: .* keeps its training settings/],
      [{ batchSize: 32 }, /^--batch-size: .* keeps its training settings/],
    ] as const) await expect(train(given as object, { out, resume: true, data, ...small })).rejects.toThrow(re);
    const r = await train({ maxSteps: 8, lr: 0.5 }, { out, resume: true, data, ...small });
    expect(r.steps).toBe(8);
    const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ maxSteps: 8, lr: 0.5, resumes: [{ step: 4, changed: { maxSteps: 8, lr: 0.5 } }] });
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.step > 4).every((l) => l.lr === 0.5)).toBe(true);
    expect(lines.filter((l) => l.step <= 4).every((l) => l.lr === 0.01)).toBe(true);
  });

  it('hands one opened run folder to the pictures (no second open)', async () => {
    const folder = RunFolder.open(finished);
    const spy = vi.spyOn(RunFolder, 'open');
    try {
      const files = await renderRunPictures(folder);
      expect(files.map((f) => path.basename(f))).toEqual(['latent.png', 'sample.png', 'loss.png']);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('the training settings schema', () => {
  it('names the flag, or the file and key, for every bad value; bounds latent size and threads', () => {
    expect(() => resolveTrainConfig({}, { latent: 1000000 })).toThrow(`--latent: expected a positive integer (at most ${LATENT_MAX}) or 'conv', got 1000000`);
    expect(() => resolveTrainConfig({}, { threads: 1000 })).toThrow(/^--threads: expected a positive integer, at most \d+/);
    expect(() => resolveTrainConfig({ latent: 'abc' }, {}, { file: 'my.json' })).toThrow(`my.json: key "latent": expected a positive integer (at most ${LATENT_MAX}) or 'conv', got "abc"`);
    expect(() => resolveTrainConfig(null, {}, { file: 'my.json' })).toThrow('my.json: expected a JSON object of training settings, got null');
    expect(() => resolveTrainConfig([1, 2], {}, { file: 'my.json' })).toThrow('my.json: expected a JSON object of training settings, got an array');
    expect(() => resolveTrainConfig(JSON.parse('{"dataset": "__proto__"}'), {}, { file: 'my.json' })).toThrow('my.json: key "dataset": expected mnist or fashion-mnist, got "__proto__"');
    expect(() => resolveTrainConfig(JSON.parse('{"__proto__": {"lr": 5}}'), {}, { file: 'my.json' })).toThrow('my.json: unknown key "__proto__"');
    expect(() => parseTrainSettings({ epochs: '3' }, { file: 'c.json' })).toThrow('c.json: key "epochs": expected a positive integer, got "3"');
    expect(resolveTrainConfig({ latent: 'conv' }, { epochs: 2 }, { file: 'c.json' })).toMatchObject({ latent: 'conv', epochs: 2 });
  });

  it('refuses a setting that has no effect, naming the one that does', () => {
    expect(() => resolveTrainConfig({}, { lr: 0.5 })).toThrow('--lr: has no effect with --scheduler cyclic (CyclicLR sets the LR between --base-lr and --max-lr');
    expect(() => resolveTrainConfig({ lr: 0.5 }, { scheduler: 'onecycle' }, { file: 'c.json' })).toThrow('c.json: key "lr": has no effect with --scheduler onecycle (OneCycleLR sets the LR from --max-lr');
    expect(() => resolveTrainConfig({}, { optimizer: 'adam', scheduler: 'none', momentum: 0.5 })).toThrow('--momentum: has no effect with --optimizer adam (its momentum is --betas)');
    expect(() => resolveTrainConfig({}, { stepSize: 10 })).toThrow('--step-size: has no effect with --scheduler cyclic');
    expect(resolveTrainConfig({}, { lr: 0.5, scheduler: 'none' }).lr).toBe(0.5);
    // the default value changes nothing: accepted (a form may send every field)
    expect(resolveTrainConfig({}, { lr: DEFAULT_TRAIN.lr }).scheduler).toBe('cyclic');
  });

  it('resumeConfig keeps model settings and accepts run settings', () => {
    expect(() => resumeConfig(DEFAULT_TRAIN, { latentActivation: 'none' }, 'runs/x')).toThrow(/^--latent-activation: the run in runs\/x was trained with --latent-activation "leaky"/);
    expect(resumeConfig(DEFAULT_TRAIN, { epochs: 3, threads: 1, latent: 2 }, 'runs/x')).toMatchObject({ changed: ['epochs', 'threads'] });
  });

  it.skipIf(!haveData)('config.json that is null, an array, or wrongly typed: one line naming the file and the key, in eval and resume', async () => {
    const runDir = tmp();
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path.join(runDir, 'checkpoint.safetensors'), 'x');
    const f = path.join(runDir, 'config.json');
    for (const [text, re] of [
      ['null', `${f}: expected a run's settings (a JSON object), got null`],
      ['[1]', `${f}: expected a run's settings (a JSON object), got an array`],
      ['{"dataset": "__proto__"}', `${f}: key "dataset": expected mnist or fashion-mnist, got "__proto__"`],
      ['{"latent": true}', `${f}: key "latent": expected a positive integer`],
    ] as const) {
      writeFileSync(f, text);
      for (const args of [['eval', runDir], ['train', '--resume', runDir]]) {
        const r = await cli(...args);
        expect(r.code, `${args.join(' ')} ${text}`).not.toBe(0);
        expect(r.err.trim().split('\n')).toHaveLength(1);
        expect(r.err).toContain(re);
      }
    }
  });
});

afterAll(() => { /* temporary folders are left in os.tmpdir() for inspection */ });
