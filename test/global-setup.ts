/**
 * Once per `vitest run`: clears the record of skipped tests before the files run, and afterwards
 * prints one line naming what was skipped for a missing requirement and the commands that install
 * them (test/requirements.ts; with CI=true nothing is skipped, a missing requirement fails).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { REQUIREMENTS, SKIP_LOG, type RequirementName } from './requirements.js';

export function setup(): void {
  rmSync(SKIP_LOG, { force: true });
}

export function teardown(): void {
  if (!existsSync(SKIP_LOG)) return;
  const byName = new Map<RequirementName, Set<string>>();
  for (const line of readFileSync(SKIP_LOG, 'utf8').split('\n')) {
    if (!line) continue;
    const { name, by } = JSON.parse(line) as { name: RequirementName; by: string };
    if (!byName.has(name)) byName.set(name, new Set());
    byName.get(name)!.add(by);
  }
  const parts = [...byName].map(([n, by]) => `${REQUIREMENTS[n].what} (${[...by].join(', ')}): ${REQUIREMENTS[n].install}`);
  process.stdout.write(`\nSkipped for missing requirements: ${parts.join('; ')}\n`);
}
