/**
 * PyTorch checkpoints read without Python (src/engine/torch_load.ts) against the tensors PyTorch
 * wrote beside them (tools/fixtures/gen_torch_checkpoints.py): zip and legacy formats, strided and
 * shared storages, every float type, int64; a pickle naming anything else is refused, never run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, loadStateDict } from '../src/engine/state.js';
import { isTorchCheckpoint, loadTorchCheckpoint } from '../src/engine/torch_load.js';
import { FIXTURES, ROOT } from './helpers.js';
import { CLI, MNIST_DIR, need, pythonWithTorch } from './requirements.js';

const dir = path.join(FIXTURES, 'torch');
const read = (f: string) => readFileSync(path.join(dir, f));
const expected = loadSafetensors(read('expected.safetensors'), 'expected').tensors;

describe('PyTorch checkpoints', () => {
  for (const f of ['state_zip.pt', 'state_legacy.pt', 'nested_zip.pt']) {
    it(`${f}: every tensor, its shape, dtype and values`, () => {
      const bytes = read(f);
      expect(isTorchCheckpoint(bytes)).toBe(true);
      const sd = loadTorchCheckpoint(bytes, f);
      expect([...sd.keys()]).toEqual([...expected.keys()]);
      for (const [k, want] of expected) {
        const got = sd.get(k)!;
        expect(got.shape, k).toEqual(want.shape);
        expect(got.dtype, k).toBe(want.dtype);
        expect(Array.from(got.data as ArrayLike<number | bigint>), k).toEqual(Array.from(want.data as ArrayLike<number | bigint>));
      }
    });
  }

  it('loadStateDict takes safetensors and PyTorch files alike', () => {
    expect(loadStateDict(read('state_zip.pt'), 'x').tensors.get('bn.num_batches_tracked')!.data).toEqual(BigInt64Array.of(937n));
    expect(loadStateDict(read('expected.safetensors'), 'x').tensors.size).toBe(expected.size);
  });

  it('a pickle that calls os.system is refused with one line, and nothing runs', () => {
    rmSync('/tmp/latentlab-pwned', { force: true });
    expect(() => loadTorchCheckpoint(read('evil.pt'), 'evil.pt')).toThrow(/^evil\.pt: refused: its pickle names '(posix|os)\.system', and only tensors and dicts of tensors are read$/);
    expect(existsSync('/tmp/latentlab-pwned')).toBe(false);
  });

  it('a whole saved module (not its state_dict) is refused naming its class', () => {
    expect(() => loadTorchCheckpoint(read('module_zip.pt'), 'module_zip.pt')).toThrow(/^module_zip\.pt: refused: its pickle names 'torch\.nn\.modules\.linear\.Linear'/);
  });

  it('truncated and damaged files are one-line errors naming the file', () => {
    const zip = read('state_zip.pt'), legacy = read('state_legacy.pt');
    expect(() => loadTorchCheckpoint(zip.subarray(0, zip.length - 100), 'cut.pt')).toThrow(/^cut\.pt: /);
    expect(() => loadTorchCheckpoint(legacy.subarray(0, legacy.length - 10), 'cut.pt')).toThrow(/^cut\.pt: truncated/);
    expect(() => loadTorchCheckpoint(legacy.subarray(0, 40), 'cut.pt')).toThrow(/^cut\.pt: refused: it ends in the middle of a pickle$/);
    expect(() => loadTorchCheckpoint(new Uint8Array([1, 2, 3]), 'junk.bin')).toThrow(/^junk\.bin: not a PyTorch checkpoint/);
  });
});

describe.skipIf(!need('pytorch', 'torch-load.test') || !need('mnist', 'torch-load.test'))('eval --checkpoint model.pt (the study notebook\'s torch.save)', () => {
  it('evaluates a torch.save state_dict, zip and legacy, exactly as the same weights in safetensors', async () => {
    const py = pythonWithTorch()!;
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-pt-'));
    const run = path.join(tmp, 'run');
    const tr = spawnSync(process.execPath, [CLI, 'train', '--max-steps', '20', '--data-dir', MNIST_DIR, '--out', run, '--backend', 'wasm', '--threads', '1', '--test-limit', '100', '--no-pictures'], { encoding: 'utf8' });
    expect(tr.status, tr.stderr).toBe(0);
    const evalOf = (file: string) => {
      const r = spawnSync(process.execPath, [CLI, 'eval', '--checkpoint', file, '--model', 'bn', '--latent', '2', '--data-dir', MNIST_DIR, '--limit', '300', '--backend', 'wasm', '--json'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { mse: number };
    };
    const want = evalOf(path.join(run, 'model.safetensors'));
    for (const legacy of [false, true]) {
      const pt = path.join(tmp, legacy ? 'legacy.pt' : 'model.pt');
      const conv = spawnSync(py, [path.join(ROOT, 'tools/fixtures/to_torch.py'), path.join(run, 'model.safetensors'), pt, ...(legacy ? ['--legacy'] : [])], { encoding: 'utf8' });
      expect(conv.status, conv.stderr).toBe(0);
      expect(evalOf(pt).mse).toBe(want.mse);
    }
    // and a pickle that is not a state dict is one line, exit 1
    const bad = spawnSync(process.execPath, [CLI, 'eval', '--checkpoint', path.join(dir, 'evil.pt'), '--model', 'bn', '--latent', '2', '--data-dir', MNIST_DIR], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/evil\.pt: refused: its pickle names '(posix|os)\.system'/);
  });
});
