/**
 * Choosing a backend: by option, then $LATENTLAB_BACKEND, else 'auto' (the fastest that loads).
 * Backends other than `reference` register a factory here from their own entry point, so that a
 * browser bundle pulls in only what it uses.
 */
import type { Backend } from './index.js';
import { ReferenceBackend } from './reference.js';

export type BackendName = 'auto' | 'native' | 'wasm' | 'reference';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'native', 'wasm', 'reference'];

export interface BackendOptions {
  /** Threads to compute with; default all cores. */
  threads?: number;
  /** Numeric precision of the heavy kernels (native only). */
  precision?: 'fp32' | 'bf16';
  /** Called with one line when `auto` falls back from a faster backend. */
  onNotice?: (line: string) => void;
}

export type BackendFactory = (opts: BackendOptions) => Promise<Backend>;

const factories = new Map<string, BackendFactory>();
/** Preference order of `auto`. */
const autoOrder = ['native', 'wasm', 'reference'];

factories.set('reference', async () => new ReferenceBackend());

export function registerBackend(name: string, factory: BackendFactory): void {
  factories.set(name, factory);
}

export function availableBackends(): string[] {
  return [...factories.keys()];
}

function envVar(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name];
}

/** Creates the backend asked for; throws a one-line error naming what was expected. */
export async function createBackend(name?: string, opts: BackendOptions = {}): Promise<Backend> {
  const chosen = (name ?? envVar('LATENTLAB_BACKEND') ?? 'auto').toLowerCase();
  if (!BACKEND_NAMES.includes(chosen as BackendName))
    throw new Error(`--backend: unknown backend '${chosen}', expected one of ${BACKEND_NAMES.join(', ')}`);
  const threadsEnv = envVar('LATENTLAB_THREADS');
  const o: BackendOptions = { ...opts };
  if (o.threads === undefined && threadsEnv) o.threads = Number(threadsEnv);
  if (o.threads !== undefined && (!Number.isInteger(o.threads) || o.threads < 1))
    throw new Error(`--threads: expected a positive integer, got '${o.threads}'`);
  if (chosen !== 'auto') {
    const f = factories.get(chosen);
    if (!f) throw new Error(`--backend: backend '${chosen}' is not available here (available: ${availableBackends().join(', ')})`);
    return withPrecision(await f(o), o);
  }
  const reasons: string[] = [];
  // bf16 exists on the native backend only
  for (const n of o.precision === 'bf16' ? ['native'] : autoOrder) {
    const f = factories.get(n);
    if (!f) continue;
    try {
      return withPrecision(await f(o), o);
    } catch (e) {
      const msg = `backend '${n}' did not load (${(e as Error).message})`;
      reasons.push(msg);
      o.onNotice?.(msg);
    }
  }
  throw new Error(`no backend could be loaded: ${reasons.join('; ')}`);
}

/** The backend, if it computes in the precision asked for; else it is disposed and an error says so. */
function withPrecision(b: Backend, o: BackendOptions): Backend {
  const has = (b as { precision?: string }).precision ?? 'fp32';
  if ((o.precision ?? 'fp32') === has) return b;
  b.dispose?.();
  throw new Error(`--precision ${o.precision}: the ${b.name} backend computes in ${has} only; ` +
    'bf16 needs the native backend (apt-get install libdnnl-dev, then npm run build:native)');
}
