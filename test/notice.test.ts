/**
 * Without the native addon, `auto` falls back to wasm and says so ONCE, with the two commands that
 * enable the native backend: on a terminal (progress bar) and in plain output alike.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, MNIST_DIR, need } from './requirements.js';

const HINT = 'apt-get install libdnnl-dev, then npm run build:native';

describe.skipIf(!need('mnist', 'notice.test') || !need('cli', 'notice.test'))('the native backend notice', () => {
  const args = (out: string) => [CLI, 'train', '--max-steps', '3', '--data-dir', MNIST_DIR, '--out', out, '--threads', '1', '--test-limit', '64', '--no-pictures'];
  const env = { ...process.env, LATENTLAB_NATIVE_ADDON: '/nonexistent/latentlab.node', LATENTLAB_BACKEND: 'auto' };
  const count = (s: string) => s.split(HINT).length - 1;

  it('prints once in plain output', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'latentlab-notice-'));
    const r = spawnSync(process.execPath, args(path.join(out, 'run')), { encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    expect(count(r.stderr + r.stdout), r.stderr).toBe(1);
  });

  it('prints once on a terminal, with the progress bar', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'latentlab-notice-'));
    // script(1) gives the command a pseudo-terminal, so the progress bar path is taken
    const cmd = [process.execPath, ...args(path.join(out, 'run'))].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/ETA/);   // the bar was drawn
    expect(count(r.stdout), r.stdout).toBe(1);
  });
});
