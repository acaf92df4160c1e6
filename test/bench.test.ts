/**
 * What `npm run bench` reports is attributed right: the FMA peak probes run and say what ran, and the
 * per-convolution timing inside a training step finds every convolution of the model in each direction
 * with its FLOP count. No speed is asserted (the machine is shared).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { convOutSize } from '../src/engine/kernels/index.js';
import { KERNEL_TABLE } from '../src/engine/kernels/table.js';
import { benchStep, convGflopPerStep, outsideConv } from '../src/bench/step.js';
import { nativePeak, wasmPeak } from '../src/bench/peak.js';
import { need } from './requirements.js';

describe('bench', () => {
  it('wasm FMA peak probe runs on the requested threads and names its instruction set', async () => {
    const p = await wasmPeak(2, 2, 0.01);
    expect(p.threads).toBe(2);
    expect(p.isa).toMatch(/^wasm (relaxed-simd fma|simd128 mul\+add)$/);
    expect(p.gflops).toBeGreaterThan(0);
    expect(p.gflops).toBeGreaterThanOrEqual(p.medianGflops);
  });

  it('the wasm probe does the flops it reports: FMA_PEAK_FLOPS_PER_ITER / 8 chains of 4 lanes, every one in its result', () => {
    // the mul + add build, emulated exactly in float32: a chain too few or too many changes the sum
    const module = new WebAssembly.Module(readFileSync('build/wasm/kernels.wasm'));
    const memory = new WebAssembly.Memory({ initial: 1, maximum: KERNEL_TABLE.wasmMaxPages, shared: true });
    const ex = new WebAssembly.Instance(module, { env: { memory } }).exports as
      { fmaPeak(iters: number): number; FMA_PEAK_FLOPS_PER_ITER: WebAssembly.Global };
    const chains = ex.FMA_PEAK_FLOPS_PER_ITER.value / 8, f = Math.fround, iters = 5;
    expect(chains).toBe(12);
    const a = Array.from({ length: chains }, (_, j) => f(1 + 0.1 * j));
    for (let i = 0; i < iters; i++) for (let j = 0; j < chains; j++) a[j] = f(f(a[j] * f(0.999999)) + f(1e-7));
    // the kernel's sum: chains added pairwise in groups of eight, then the four lanes (all equal) by hsum
    const pair = (x: number, y: number) => f(x + y);
    let s = pair(pair(pair(a[0], a[1]), pair(a[2], a[3])), pair(pair(a[4], a[5]), pair(a[6], a[7])));
    s = pair(s, pair(pair(a[8], a[9]), pair(a[10], a[11])));
    expect(ex.fmaPeak(iters)).toBe(f(f(s + s) + f(s + s)));
  });

  it.runIf(need('native', 'bench.test'))('native FMA peak probe', () => {
    const p = nativePeak(1, 2, 0.01);
    expect(p.isa).toMatch(/^(avx512f|avx2\+fma|scalar)$/);
    expect(p.gflops).toBeGreaterThan(0);
  });

  it('bench --train refuses a bad flag with one line naming it, before any run', () => {
    for (const [flag, value] of [['--rounds', '0'], ['--threads', 'two'], ['--configs', 'native,gpu'], ['--seeds', '-1']]) {
      const r = spawnSync(process.execPath, ['dist/bench/main.js', '--train', flag, value], { encoding: 'utf8' });
      expect(r.status, `${flag} ${value}`).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(flag);
      expect(r.stdout).toBe('');
    }
  });

  it('the GFLOP per step is the most a latentlab configuration timed: PyTorch\'s rows and fused (missing) rows do not lower it', () => {
    const wasm = { convs: [{ gflop: 0.5 }, { gflop: 0.25 }, { gflop: 0.03 }] }, native = { convs: [{ gflop: 0.5 }, { gflop: 0.25 }] };
    const torch = { convs: [{ layer: 'encoder.0', ms: 1 }] as unknown as { gflop?: number }[] };
    expect(convGflopPerStep([native, torch, wasm])).toBeCloseTo(0.78, 12);
    expect(convGflopPerStep([torch, native])).toBeCloseTo(0.75, 12);
    expect(convGflopPerStep([torch, {}])).toBeNaN();
  });

  it('both bench modes print their usage for --help and refuse an unknown flag or a missing value with one line, before any run', () => {
    for (const mode of [[], ['--train']]) {
      const run = (...a: string[]) => spawnSync(process.execPath, ['dist/bench/main.js', ...mode, ...a], { encoding: 'utf8', timeout: 20_000 });
      const help = run('--help');
      expect(help.status, `${mode} --help`).toBe(0);
      expect(help.stdout).toMatch(/^usage: npm run bench -- /);
      expect(help.stdout).toContain('--rounds');
      for (const [args, named] of [[['--frobnicate'], '--frobnicate'], [['--rounds'], '--rounds']] as const) {
        const r = run(...args);
        expect(r.status, `${mode} ${args}`).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain(named);
        expect(r.stdout).toBe('');
      }
    }
  });

  const N = 2;
  const conv = (C: number, H: number, K: number, s: number) => { const O = convOutSize(H, 3, s, 1); return 2 * N * K * O * O * C * 9 / 1e9; };

  it('times each convolution of a training step per layer and direction, with its FLOPs', async () => {
    const r = await benchStep('wasm', 1, N, 'fp32', 1, 1, 1);
    // the model's six convolutions as (C, H, K, stride) of the convolution they compute or transpose
    const layers: [string, number][] = [
      ['encoder.0 Conv2d', conv(1, 28, 32, 1)], ['encoder.3 Conv2d', conv(32, 28, 64, 2)], ['encoder.6 Conv2d', conv(64, 14, 64, 2)],
      ['decoder.3 ConvTranspose2d', conv(64, 14, 64, 2)], ['decoder.6 ConvTranspose2d', conv(32, 28, 64, 2)],
      ['decoder.9 ConvTranspose2d', conv(1, 28, 32, 1)],
    ];
    const want = layers.flatMap(([l, g]) => (['fwd', 'bwd-weight', 'bwd-data'] as const)
      .filter((d) => !(l === 'encoder.0 Conv2d' && d === 'bwd-data')) // the input needs no gradient
      .map((d) => `${l}|${d}|${g.toPrecision(6)}`));
    const got = r.convs.map((c) => `${c.layer}|${c.dir}|${c.gflop.toPrecision(6)}`);
    expect(got.sort()).toEqual(want.sort());
    for (const c of r.convs) expect(c.ms).toBeGreaterThan(0);
    const sum = r.convs.reduce((s, c) => s + c.ms, 0);
    expect(r.convMs).toBeCloseTo(sum, 6);
    expect(r.convMs).toBeLessThan(r.profiledStepMs);
    expect(r.fusedMs).toBe(0);
    // the time outside the kernels, by part: each part non-negative, together the whole
    const o = outsideConv(r);
    expect(o.total).toBeCloseTo(r.profiledStepMs - r.convMs, 9);
    expect(o.batchNorm + o.otherLayers + o.aroundKernels + o.between).toBeCloseTo(o.total, 9);
    for (const k of ['batchNorm', 'otherLayers', 'aroundKernels', 'between'] as const) expect(o[k], k).toBeGreaterThan(0);
    const bn = r.layers.filter((l) => l.name.includes('BatchNorm2d')).reduce((s, l) => s + l.forwardMs + l.backwardMs, 0);
    expect(o.batchNorm).toBeCloseTo(bn, 9);
  });

  it.runIf(need('native', 'bench.test'))('native: a kernel that computes a convolution with its batch-norm is timed as that convolution, with its FLOPs', async () => {
    const r = await benchStep('native', 1, N, 'fp32', 1, 1, 1);
    const last = conv(1, 28, 32, 1);
    const got = r.convs.filter((c) => c.dir.endsWith('+bn')).map((c) => `${c.layer}|${c.dir}|${c.gflop.toPrecision(6)}`);
    // encoder.0 with encoder.1: its forward, and its weight gradient (a first layer: no input gradient); decoder.9 with
    // decoder.7: its forward, then its input and weight gradients in one kernel
    expect(got.sort()).toEqual([`decoder.9 ConvTranspose2d|bwd+bn|${(2 * last).toPrecision(6)}`, `decoder.9 ConvTranspose2d|fwd+bn|${last.toPrecision(6)}`,
      `encoder.0 Conv2d|bwd+bn|${last.toPrecision(6)}`, `encoder.0 Conv2d|fwd+bn|${last.toPrecision(6)}`]);
    expect(r.convs.some((c) => /^(decoder\.9|encoder\.0)/.test(c.layer) && !c.dir.endsWith('+bn'))).toBe(false);
    // the same FLOPs per step as the unfused rows of another backend
    const wasm = await benchStep('wasm', 1, N, 'fp32', 1, 1, 1);
    expect(convGflopPerStep([r])).toBeCloseTo(convGflopPerStep([wasm]), 9);
    const fused = r.convs.filter((c) => c.dir.endsWith('+bn')).reduce((s, c) => s + c.ms, 0);
    expect(r.fusedMs).toBeCloseTo(fused, 6);
    expect(r.fusedMs).toBeGreaterThan(0);
    expect(r.convMs).toBeCloseTo(r.convs.reduce((s, c) => s + c.ms, 0), 6);
    const o = outsideConv(r);
    expect(o.fused).toBe(r.fusedMs);
    expect(o.batchNorm + o.otherLayers + o.aroundKernels + o.between).toBeCloseTo(o.total, 9);
  });
});
