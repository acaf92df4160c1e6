/**
 * `latentlab train` stopped by SIGTERM, SIGINT or SIGKILL at several steps, then resumed: a
 * checkpoint at the step it stopped (SIGINT/SIGTERM), exit 130/143 with one line, status.json
 * "stopped", and the resumed run ends with weights and losses bit-identical to an uninterrupted one.
 * Also the one-writer rule between two processes, and output paths that cannot hold a run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSafetensors } from '../src/engine/state.js';
import { MNIST_DIR, ROOT } from './helpers.js';

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const ready = existsSync(CLI) && existsSync(MNIST_DIR);
const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'latentlab-signals-'));
const BASE = ['train', '--max-steps', '64', '--checkpoint-every', '24', '--batch-size', '16', '--test-limit', '100', '--no-pictures',
  '--backend', 'wasm', '--threads', '1', '--seed', '3', '--log-every', '1', '--data-dir', MNIST_DIR];

const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });

function tensorsOf(file: string): Map<string, number[]> {
  const { tensors } = loadSafetensors(readFileSync(file), file);
  return new Map([...tensors].map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]));
}

function metrics(dir: string): [number, number][] {
  return readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((l) => [l.step, l.loss ?? l.testLoss]);
}

/** The last complete metrics step of a run being written (0 before the first). */
function lastStep(dir: string): number {
  try {
    const text = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
    const lines = text.slice(0, text.lastIndexOf('\n')).split('\n').filter(Boolean);
    return lines.length ? JSON.parse(lines.at(-1)!).step : 0;
  } catch { return 0; }
}

/** Starts `args`, sends `signal` once the run has logged step `atStep`; resolves with the exit code, signal and stderr. */
function runAndKill(args: string[], dir: string, atStep: number, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setInterval(() => {
      if (lastStep(dir) >= atStep) { clearInterval(timer); child.kill(signal); }
    }, 10);
    child.on('exit', (code, sig) => { clearInterval(timer); resolve({ code, signal: sig, stderr }); });
    child.on('error', reject);
  });
}

describe.skipIf(!ready)('train stopped by a signal, then resumed', () => {
  let ref = '';
  const reference = (): string => {
    if (!ref) {
      ref = tmp();
      const r = cli([...BASE, '--out', ref]);
      expect(r.status, r.stderr).toBe(0);
    }
    return ref;
  };

  it('SIGTERM at one step, SIGINT at another, then resume: a checkpoint at each stop, exit 143/130, the same weights', async () => {
    const a = reference();
    const b = tmp();
    const stops: number[] = [];
    for (const [signal, atStep, exit, args] of [
      ['SIGTERM', 10, 143, [...BASE, '--out', b]],
      ['SIGINT', 40, 130, ['train', '--resume', b, '--no-pictures', '--data-dir', MNIST_DIR]],
    ] as const) {
      const r = await runAndKill([...args], b, atStep, signal);
      expect(r.code, r.stderr).toBe(exit);
      const line = r.stderr.trim().split('\n').at(-1)!;
      const m = new RegExp(`^latentlab: stopped by ${signal} at step (\\d+): checkpoint written to ${b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/checkpoint.safetensors \\(continue with: latentlab train --resume `).exec(line);
      expect(m, r.stderr).not.toBeNull();
      const step = Number(m![1]);
      expect(step).toBeGreaterThanOrEqual(atStep);
      expect(step).toBeLessThan(64);
      stops.push(step);
      expect(Number(loadSafetensors(readFileSync(path.join(b, 'checkpoint.safetensors'))).metadata.step)).toBe(step);
      expect(JSON.parse(readFileSync(path.join(b, 'status.json'), 'utf8'))).toMatchObject({ state: 'stopped', step, checkpointStep: step, totalSteps: 64 });
      expect(existsSync(path.join(b, '.lock'))).toBe(false);
      expect(existsSync(path.join(b, 'result.json'))).toBe(false);
    }
    expect(stops[1]).toBeGreaterThan(stops[0]);
    const resumed = cli(['train', '--resume', b, '--no-pictures', '--data-dir', MNIST_DIR]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`at step ${stops[1]} of 64`);
    expect(tensorsOf(path.join(b, 'model.safetensors'))).toEqual(tensorsOf(path.join(a, 'model.safetensors')));
    expect(metrics(b)).toEqual(metrics(a));
    expect(JSON.parse(readFileSync(path.join(b, 'status.json'), 'utf8'))).toMatchObject({ state: 'finished', step: 64 });
  }, 600_000);

  it('SIGINT early, then SIGKILL after a later checkpoint, then resume: the same weights', async () => {
    const a = reference();
    const b = tmp();
    const first = await runAndKill([...BASE, '--out', b], b, 4, 'SIGINT');
    expect(first.code, first.stderr).toBe(130);
    // SIGKILL: no handler runs; the run continues from the checkpoint at step 24 or 48
    const second = await runAndKill(['train', '--resume', b, '--no-pictures', '--data-dir', MNIST_DIR], b, 52, 'SIGKILL');
    expect(second.signal).toBe('SIGKILL');
    expect(JSON.parse(readFileSync(path.join(b, 'status.json'), 'utf8')).state).toBe('running');
    const resumed = cli(['train', '--resume', b, '--no-pictures', '--data-dir', MNIST_DIR]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed .* at step 48 of 64/);
    expect(tensorsOf(path.join(b, 'model.safetensors'))).toEqual(tensorsOf(path.join(a, 'model.safetensors')));
    expect(metrics(b)).toEqual(metrics(a));
  }, 600_000);

  it('two train processes on one --out: the second is refused with one line naming the first\'s pid; the run stays whole', async () => {
    const b = tmp();
    const child = spawn(process.execPath, [CLI, ...BASE, '--latent', '10', '--out', b], { stdio: 'ignore' });
    while (!existsSync(path.join(b, '.lock')) && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    const second = cli([...BASE, '--latent', '2', '--out', b, '--overwrite']);
    const resume = cli(['train', '--resume', b, '--data-dir', MNIST_DIR]);
    await new Promise((r) => child.on('exit', r));
    expect(child.exitCode).toBe(0);
    for (const r of [second, resume]) {
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`${b}: in use by latentlab process ${child.pid}`);
    }
    expect(JSON.parse(readFileSync(path.join(b, 'config.json'), 'utf8')).latent).toBe(10);
    const ev = cli(['eval', b, '--backend', 'wasm', '--threads', '1', '--data-dir', MNIST_DIR, '--limit', '50', '--json']);
    expect(ev.status, ev.stderr).toBe(0);
  }, 600_000);
});

describe.skipIf(!existsSync(CLI))('output paths that cannot hold a run: one line naming the path', () => {
  /** The one error line (progress lines of a run that started may come before it). */
  const one = (r: ReturnType<typeof cli>) => {
    const errs = r.stderr.trim().split('\n').filter((l) => l.startsWith('latentlab:'));
    expect(errs, r.stderr).toHaveLength(1);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(errs[0]);
    return errs[0];
  };

  it('--out under /proc, or naming a file: usage errors (exit 2), at once', () => {
    const r = cli(['train', '--out', '/proc/latentlab-run', '--max-steps', '1']);
    expect(r.error).toBeUndefined(); // no timeout: it used to spin forever
    expect(r.status).toBe(2);
    expect(one(r)).toContain('--out /proc/latentlab-run: under /proc, a virtual file system of the kernel');
    const file = path.join(tmp(), 'a-file');
    writeFileSync(file, 'x');
    const f = cli(['train', '--out', file, '--max-steps', '1']);
    expect(f.status).toBe(2);
    expect(one(f)).toContain(`--out ${file}: is a file, not a folder`);
    expect(readFileSync(file, 'utf8')).toBe('x');
    // out of range and wrongly typed values are both usage errors
    for (const args of [['--latent', '1000000'], ['--threads', '1000'], ['--epochs', 'x'], ['--lr', '-1']]) {
      const u = cli(['train', '--out', tmp(), ...args]);
      expect(u.status, args.join(' ')).toBe(2);
      expect(u.stderr.trim().split('\n'), u.stderr).toHaveLength(1);
      expect(u.stderr).toContain(args[0]);
    }
  });

  /** A tmpfs of `size` mounted (as root) for the test; null when mounting is not possible here. */
  function mountTmpfs(opts: string): string | null {
    if (process.getuid?.() !== 0) return null;
    const dir = tmp();
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
    return r.status === 0 ? dir : null;
  }
  const canMount = (() => { const d = mountTmpfs('size=16k'); if (d) { spawnSync('umount', [d]); return true; } return false; })();

  it.skipIf(!canMount || !existsSync(MNIST_DIR))('a read-only file system and a full disk: one line naming the path and what it means', () => {
    const ro = mountTmpfs('ro,size=64k')!;
    try {
      const r = cli(['train', '--out', path.join(ro, 'run'), '--max-steps', '1', '--data-dir', MNIST_DIR]);
      expect(r.status).toBe(1);
      expect(one(r)).toContain(`--out ${path.join(ro, 'run')}: cannot create the run folder: read-only file system (EROFS)`);
    } finally { spawnSync('umount', [ro]); }
    const full = mountTmpfs('size=200k')!;
    try {
      mkdirSync(path.join(full, 'run'));
      const r = cli(['train', '--out', path.join(full, 'run'), '--max-steps', '4', '--batch-size', '8', '--backend', 'wasm', '--threads', '1',
        '--test-limit', '50', '--no-pictures', '--latent', '64', '--data-dir', MNIST_DIR]);
      expect(r.status).toBe(1);
      expect(one(r)).toMatch(new RegExp(`${path.join(full, 'run')}/[a-z.-]+: cannot write: no space left on the device \\(ENOSPC\\)`));
    } finally { spawnSync('umount', [full]); rmSync(full, { recursive: true, force: true }); }
  });
});
