/**
 * What some tests need from the machine beyond `npm ci`, declared once: how to tell it is there and
 * the command that installs it.
 *
 * `need(name)` answers whether it is there. When it is not:
 * - with CI=true it throws, naming what is missing and how to install it, so a missing install step
 *   in .ci/run fails the run instead of hiding behind skipped tests;
 * - otherwise the test is skipped, and the skip is recorded in test-output/skipped.jsonl so that the
 *   run ends with one line listing what was skipped and what installs it (test/global-setup.ts).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SKIP_LOG = path.join(ROOT, 'test-output', 'skipped.jsonl');
export const MNIST_DIR = process.env.LATENTLAB_MNIST ?? path.resolve(ROOT, '../shared/data/mnist');
export const CHROMIUM = '/usr/bin/chromium';
export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

/** Python interpreters that may have PyTorch, in order of preference. */
const PYTHONS = [process.env.LATENTLAB_PYTHON, path.join(ROOT, '.venv-torch/bin/python'), path.join(ROOT, '.venv/bin/python'), '/usr/bin/python3', path.join(ROOT, '../.venv-torch/bin/python')]
  .filter((p): p is string => !!p);

let foundPython: string | null | undefined;
function torchPython(): string | null {
  if (foundPython !== undefined) return foundPython;
  foundPython = null;
  for (const py of PYTHONS) {
    if (!existsSync(py)) continue;
    try { execFileSync(py, ['-c', 'import torch, numpy'], { stdio: 'ignore', timeout: 60_000 }); return (foundPython = py); } catch { /* next */ }
  }
  return null;
}

function nativeLoads(): boolean {
  // the addon file is what `npm run build:native` writes; loading it is tested by the native suites
  return existsSync(path.join(ROOT, 'native', 'build', 'Release', 'latentlab.node'));
}

interface Requirement { what: string; present: () => boolean; install: string }

export const REQUIREMENTS = {
  chromium: { what: `Chromium (${CHROMIUM})`, present: () => existsSync(CHROMIUM), install: 'apt-get install chromium' },
  native: { what: 'the native oneDNN addon', present: nativeLoads, install: 'apt-get install libdnnl-dev && npm run build:native' },
  pytorch: { what: 'a Python with PyTorch and numpy', present: () => torchPython() !== null, install: 'apt-get install python3-torch (or python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy)' },
  mnist: { what: `the MNIST files (${MNIST_DIR})`, present: () => existsSync(MNIST_DIR), install: 'latentlab data download mnist, then set LATENTLAB_MNIST to its folder' },
  fashion: { what: `Fashion-MNIST (${FASHION_DIR})`, present: () => existsSync(FASHION_DIR), install: 'apt-get install dataset-fashion-mnist' },
  cli: { what: `the built CLI (${CLI})`, present: () => existsSync(CLI), install: 'npm run build' },
} satisfies Record<string, Requirement>;

export type RequirementName = keyof typeof REQUIREMENTS;

const answers = new Map<RequirementName, boolean>();

/** True when `name` is present; see the module comment for what happens when it is not. */
export function need(name: RequirementName, by = 'a test'): boolean {
  let ok = answers.get(name);
  if (ok === undefined) { ok = REQUIREMENTS[name].present(); answers.set(name, ok); }
  if (ok) return true;
  const r = REQUIREMENTS[name];
  if (process.env.CI === 'true') throw new Error(`CI=true, and this is missing: ${r.what} (needed by ${by}); install: ${r.install}`);
  mkdirSync(path.dirname(SKIP_LOG), { recursive: true });
  appendFileSync(SKIP_LOG, `${JSON.stringify({ name, by })}\n`);
  return false;
}

/** The Python with PyTorch, or null (after `need('pytorch')`, which decides between skip and failure). */
export function pythonWithTorch(): string | null {
  return torchPython();
}
