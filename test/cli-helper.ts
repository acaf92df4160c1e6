/** Runs the `latentlab` CLI in this process (its `main`), capturing stdout and stderr. */
import { vi } from 'vitest';
import { main } from '../src/cli/main.js';

export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err += String(s); return true; });
  try {
    return { code: await main(['node', 'latentlab', ...args]), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}
