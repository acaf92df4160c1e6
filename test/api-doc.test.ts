/** docs/api.md says what the code does: the model's options, the random generator, the image contract. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { checkModelConfig, DEFAULT_MODEL, type ModelConfig } from '../src/lab/models/autoencoder.js';
import * as data from '../src/api/data.js';
import { ROOT } from './helpers.js';

const doc = readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8');

/** The quoted values of a documented union, e.g. `activation: 'leaky' | 'relu'`. */
function documentedUnion(key: string): string[] {
  const m = doc.match(new RegExp(`\\b${key}: ((?:'[^']+'(?:\\s*\\|\\s*)?)+)`));
  expect(m, `docs/api.md documents ${key}`).not.toBeNull();
  return [...m![1].matchAll(/'([^']+)'/g)].map((x) => x[1]);
}

it("documents exactly the activations the model accepts ('relu' after the latent too)", () => {
  const candidates = ['leaky', 'relu', 'none', 'tanh', 'sigmoid', 'gelu'];
  for (const key of ['activation', 'latentActivation'] as const) {
    const accepted = candidates.filter((a) => {
      try { checkModelConfig({ ...DEFAULT_MODEL, [key]: a } as ModelConfig); return true; } catch { return false; }
    });
    expect(documentedUnion(key).sort(), key).toEqual(accepted.sort());
  }
});

it('does not call Rng PyTorch-compatible, and names the generator the source implements', () => {
  const line = doc.split('\n').find((l) => l.startsWith('- `Rng`'))!;
  expect(line).toBeDefined();
  expect(line).not.toMatch(/PyTorch-compatible/i);
  const src = readFileSync(path.join(ROOT, 'src', 'engine', 'rng.ts'), 'utf8');
  expect(src).toMatch(/xoshiro128\*\*/);
  expect(line.replace(/\\/g, '')).toMatch(/xoshiro128\*\*/);
  expect(doc).toMatch(/not\s+PyTorch's generator/);
});

it("every name of the documented image contract is exported by the browser entry's data", () => {
  const start = doc.indexOf('- the image contract');
  expect(start).toBeGreaterThan(0);
  const bullet = doc.slice(start, doc.indexOf('\n- ', start + 1));
  const names = [...bullet.matchAll(/`([A-Za-z_]+)(?:\([^`]*\))?`/g)].map((m) => m[1]);
  expect(names.length).toBeGreaterThan(10);
  for (const n of names) expect(data, n).toHaveProperty(n);
  expect(data.IMAGE_PIXELS).toBe(data.IMAGE_H * data.IMAGE_W * data.IMAGE_C);
});
