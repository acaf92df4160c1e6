/**
 * The programs in examples/ run as user code: they import 'latentlab' and 'latentlab/node', which
 * Node resolves through the package's own "exports" (self-reference) to the built dist/.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng } from '../src/viz/node.js';
import { ROOT } from './helpers.js';
import { buildDist } from './build-helper.js';

const run = promisify(execFile);
const node = (file: string, ...args: string[]) =>
  run(process.execPath, [path.join(ROOT, 'examples', file), ...args], { cwd: ROOT, env: { ...process.env, LATENTLAB_BACKEND: 'reference' } });

describe('examples', () => {
  let tmp = '';
  beforeAll(() => {
    buildDist();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-examples-'));
  });
  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('type-check against the built declarations (tsc -p examples)', async () => {
    await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'examples'], { cwd: ROOT });
  });

  it('train-tiny: SGD + CyclicLR on a tiny batch; the loss goes down', async () => {
    const { stdout, stderr } = await node('train-tiny.mjs', '4');
    expect(stderr).toBe('');
    const losses = [...stdout.matchAll(/^step (\d+) loss ([\d.]+) lr ([\d.e+-]+)$/gm)].map((m) => Number(m[2]));
    expect(losses.length).toBe(4);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[3]!).toBeLessThan(losses[0]!);
  });

  it('decode-grid: a PNG of 10 x 10 decoded points', async () => {
    const out = path.join(tmp, 'grid.png');
    const { stdout } = await node('decode-grid.mjs', '', out);
    expect(stdout).toContain(`-> ${out}`);
    expect(existsSync(out)).toBe(true);
    const img = await decodePng(out);
    expect([img.width, img.height]).toEqual([840, 840]);
  });

  it('load-pytorch: strict load of a PyTorch state dict; outputs match PyTorch', async () => {
    const { stdout } = await node('load-pytorch.mjs');
    expect(stdout).toMatch(/: 41 tensors, \d+ parameters/);
    const m = /max \|z - z_torch\| = ([\d.e+-]+), max \|y - y_torch\| = ([\d.e+-]+)/.exec(stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(1e-5);
    expect(Number(m![2])).toBeLessThan(1e-5);
  });

  it('load-pytorch: a checkpoint of another shape fails in one line naming the file', async () => {
    const other = path.join(ROOT, 'test/fixtures/model/simple_z2.safetensors');
    const err = await node('load-pytorch.mjs', other).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(err).toContain(`${other}: does not fit --model bn --latent 2`);
  });
});
