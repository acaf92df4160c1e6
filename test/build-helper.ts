/** Builds dist/ (tsc -p tsconfig.build.json) once per test file that needs the built package. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

/**
 * Compiles the TypeScript into dist/. Type errors elsewhere in the tree do not stop tsc from
 * emitting, so only missing outputs fail here.
 */
export function buildDist(): void {
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '');
    process.stderr.write(`tsc reported errors (emitting anyway):\n${out.split('\n').slice(0, 10).join('\n')}\n`);
  }
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/cli/bin.js'])
    if (!existsSync(path.join(ROOT, f))) throw new Error(`${f}: not built`);
}
