/** Shared test helpers: fixtures, tolerances and the backends to run parity tests on. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { expect } from 'vitest';
import { loadSafetensors, type StateDict } from '../src/engine/state.js';
import type { Backend } from '../src/engine/kernels/index.js';
import { createBackend } from '../src/engine/kernels/select.js';
import { need } from './requirements.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const MNIST_DIR = process.env.LATENTLAB_MNIST ?? path.resolve(ROOT, '../shared/data/mnist');

export function fixture(rel: string): { t: StateDict; meta: Record<string, string> } {
  const { tensors, metadata } = loadSafetensors(readFileSync(path.join(FIXTURES, rel)), rel);
  return { t: tensors, meta: metadata };
}

export function f32of(sd: StateDict, key: string): Float32Array {
  const e = sd.get(key);
  if (!e) throw new Error(`fixture has no tensor '${key}'`);
  return e.dtype === 'F32' ? (e.data as Float32Array) : Float32Array.from(e.data as BigInt64Array, Number);
}

/** The engine's tolerance: max |ours - ref| <= tol * max(1, max |ref|). */
export function maxErr(ours: ArrayLike<number>, ref: ArrayLike<number>): { err: number; bound: number } {
  let err = 0, mx = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    mx = Math.max(mx, Math.abs(ref[i]));
  }
  return { err, bound: Math.max(1, mx) };
}

export function expectClose(ours: ArrayLike<number>, ref: ArrayLike<number>, what: string, tol = 1e-4): void {
  expect(ours.length, `${what}: length`).toBeGreaterThanOrEqual(ref.length);
  const { err, bound } = maxErr(ours, ref);
  expect(err, `${what}: max |ours - ref| = ${err}, allowed ${tol * bound}`).toBeLessThanOrEqual(tol * bound);
}

/**
 * One parameter after one Adam step from fresh state, against PyTorch's. That step moves each element by
 * lr * g / (|g| + eps): +-lr once |g| is well above eps, whatever its size, so an element whose gradient is
 * rounding noise in both implementations (for example every element of a bias right before a BatchNorm,
 * whose gradient is mathematically zero) moves by +-lr with a sign neither controls. There, and only there,
 * the bound is the difference of two such steps, 2 lr; elsewhere `tol` as in expectClose. `grads`: every
 * reference gradient of the model (noise is relative to the largest of them), `grad`: this parameter's.
 */
export function expectAdamStepClose(ours: ArrayLike<number>, ref: ArrayLike<number>, grad: ArrayLike<number>,
                                    grads: Iterable<ArrayLike<number>>, lr: number, what: string, tol = 1e-4): void {
  let gmax = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) gmax = Math.max(gmax, Math.abs(g[i]));
  const noise = 1e-6 * gmax, { bound } = maxErr(ours, ref);
  for (let i = 0; i < ref.length; i++) {
    const allowed = Math.abs(grad[i]) <= noise ? 2.01 * lr : tol * bound, d = Math.abs(ours[i] - ref[i]);
    if (!(d <= allowed)) expect(d, `${what}[${i}]: |ours - ref| (reference gradient ${grad[i]}), allowed ${allowed}`).toBeLessThanOrEqual(allowed);
  }
}

const REGISTER: Record<string, string> = {
  wasm: '../src/engine/kernels/wasm/node.js',
  native: '../src/engine/kernels/native/register.js',
};

/**
 * The backends parity tests run on: reference and wasm always, native when its addon is built
 * (test/requirements.ts: required with CI=true, else skipped and listed at the end of the run).
 */
export async function parityBackends(): Promise<{ name: string; backend: Backend }[]> {
  const out: { name: string; backend: Backend }[] = [{ name: 'reference', backend: await createBackend('reference') }];
  for (const name of ['wasm', 'native']) {
    if (process.env.LATENTLAB_TEST_BACKENDS && !process.env.LATENTLAB_TEST_BACKENDS.split(',').includes(name)) continue;
    if (name === 'native' && !need('native', 'the parity suites')) continue;
    try {
      await import(REGISTER[name]);
      for (const threads of name === 'wasm' ? [1, 2] : [2])
        out.push({ name: `${name}/${threads}t`, backend: await createBackend(name, { threads }) });
    } catch (e) {
      throw new Error(`backend ${name} did not load: ${(e as Error).message}`, { cause: e });
    }
  }
  return out;
}
