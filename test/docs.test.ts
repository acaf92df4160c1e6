/** The API reference is generated from the doc comments (typedoc) without errors. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from './helpers.js';

it('npm run docs generates the API reference from the doc comments', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'latentlab-docs-'));
  const r = spawnSync('npx', ['typedoc', '--entryPoints', 'src/index.ts', 'src/node.ts', '--out', out, '--excludePrivate', '--readme', 'none', '--tsconfig', 'tsconfig.build.json'],
    { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  expect(r.stdout + r.stderr).not.toMatch(/\[error\]/);
  expect(existsSync(path.join(out, 'index.html'))).toBe(true);
  // a documented class carries its doc comment into the reference
  const conv = readFileSync(path.join(out, 'classes', 'latentlab.nn.Conv2d.html'), 'utf8');
  expect(conv).toMatch(/the backward-data pass is skipped/);
});
