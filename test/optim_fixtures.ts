/** Shared helpers for test/optim.test.ts and test/lr_scheduler.test.ts: fixtures from tools/fixtures/gen_optim.py. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Parameter } from '../src/engine/nn/parameter.js';
import { loadSafetensors, type Safetensors } from '../src/engine/state.js';
import { Adam, AdamW, SGD, type Optimizer, type ParamGroup } from '../src/engine/optim/index.js';
import {
  CosineAnnealingLR, CyclicLR, ExponentialLR, MultiStepLR, OneCycleLR, ReduceLROnPlateau, StepLR, type LRScheduler,
} from '../src/engine/lr_scheduler.js';

export function loadFixture(name: string): Safetensors {
  const path = fileURLToPath(new URL(`./fixtures/optim/${name}`, import.meta.url));
  return loadSafetensors(new Uint8Array(readFileSync(path)), path);
}

/** `weight_decay` -> `weightDecay`, `T_max` -> `tMax`. */
export function camel(key: string): string {
  const c = key.replace(/_([a-zA-Z])/g, (_m, ch: string) => ch.toUpperCase());
  return c[0].toLowerCase() + c.slice(1);
}

export function camelKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));
}

/** Float64 values stored bit-for-bit as I64 by the generator. */
export function f64(st: Safetensors, name: string): Float64Array {
  const e = st.tensors.get(name);
  if (!e) throw new Error(`fixture tensor ${name} missing`);
  const d = e.data as BigInt64Array;
  return new Float64Array(d.buffer, d.byteOffset, d.length);
}

export function tensor(st: Safetensors, name: string): Float32Array {
  const e = st.tensors.get(name);
  if (!e) throw new Error(`fixture tensor ${name} missing`);
  return e.data as Float32Array;
}

export function cases(st: Safetensors): [string, Record<string, unknown>][] {
  return Object.entries(st.metadata)
    .filter(([k]) => k.startsWith('case.'))
    .map(([k, v]) => [k.slice(5), JSON.parse(v) as Record<string, unknown>]);
}

export interface OptSpec { class: string; options: Record<string, unknown>; groups: ({ params: number[] } & Record<string, unknown>)[] }

export function makeOptimizer(spec: OptSpec, params: Parameter[]): Optimizer<ParamGroup> {
  const groups = spec.groups.map(({ params: idx, ...rest }) => ({ ...camelKeys(rest), params: idx.map((i) => params[i]) }));
  const options = camelKeys(spec.options);
  switch (spec.class) {
    case 'SGD': return new SGD(groups, options);
    case 'Adam': return new Adam(groups, options);
    case 'AdamW': return new AdamW(groups, options);
    default: throw new Error(`unknown optimizer ${spec.class}`);
  }
}

/** The generator's custom CyclicLR scale functions. */
export const SCALE_FNS: Record<string, (x: number) => number> = {
  half_sine: (x) => 0.5 * (1.0 + Math.sin((x * Math.PI) / 2.0)),
  inv_sqrt: (x) => 1.0 / Math.sqrt(x + 1.0),
};

export function makeScheduler(opt: Optimizer<ParamGroup>, cls: string, kwargs: Record<string, unknown>): LRScheduler | ReduceLROnPlateau {
  const o = camelKeys(kwargs) as never;
  if (typeof kwargs.scale_fn === 'string') (o as Record<string, unknown>).scaleFn = SCALE_FNS[kwargs.scale_fn];
  switch (cls) {
    case 'StepLR': return new StepLR(opt, o);
    case 'MultiStepLR': return new MultiStepLR(opt, o);
    case 'ExponentialLR': return new ExponentialLR(opt, o);
    case 'CosineAnnealingLR': return new CosineAnnealingLR(opt, o);
    case 'CyclicLR': return new CyclicLR(opt, o);
    case 'OneCycleLR': return new OneCycleLR(opt, o);
    case 'ReduceLROnPlateau': return new ReduceLROnPlateau(opt, o);
    default: throw new Error(`unknown scheduler ${cls}`);
  }
}

export function makeParams(shapes: number[][], init?: (k: number) => Float32Array): Parameter[] {
  return shapes.map((s, k) => {
    const n = s.reduce((a, b) => a * b, 1);
    return new Parameter(s, init ? init(k).slice() : new Float32Array(n), new Float32Array(n));
  });
}
