/**
 * The native (oneDNN) backend against the reference backend, kernel by kernel, on random data.
 *
 * Tolerances: fp32 max|ours - ref| <= 1e-4 * max(1, max|ref|); bf16 convolutions (inputs rounded to
 * bf16, fp32 accumulation) max|ours - ref| <= 2e-2 * max(1, max|ref|).
 *
 * When the addon is not built the tests are skipped with a message, unless CI=true, where that fails.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Act, ConvGeom } from '../src/engine/kernels/index.js';
import { convOutSize } from '../src/engine/kernels/index.js';
import { ReferenceBackend } from '../src/engine/kernels/reference.js';
import { createBackend } from '../src/engine/kernels/select.js';
import { mseLoss } from '../src/engine/loss.js';
import { Rng } from '../src/engine/rng.js';
import {
  createNativeBackend, loadNativeAddon, NATIVE_HINT, NativeBackend, type NativeLayout,
} from '../src/engine/kernels/native/index.js';
import '../src/engine/kernels/native/register.js';
import { need } from './requirements.js';

const suite = need('native', 'native-kernels.test') ? describe : describe.skip;

const ref = new ReferenceBackend();
const rng = new Rng(1234);

function rand(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.random();
  return a;
}
function nans(n: number): Float32Array { return new Float32Array(n).fill(NaN); }

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
/** Asserts max|got - want| <= rel * max(1, max|want|) (NaN fails). */
function expectClose(got: Float32Array, want: Float32Array, rel: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let err = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  const tol = rel * Math.max(1, maxAbs(want));
  if (!(err <= tol)) expect.fail(`${what}: max abs error ${err} > tolerance ${tol}`);
}

function geom(N: number, C: number, H: number, W: number, K: number, R: number, S: number,
              stride: number, pad: number): ConvGeom {
  return {
    N, C, H, W, K, R, S, strideH: stride, strideW: stride, padH: pad, padW: pad,
    OH: convOutSize(H, R, stride, pad), OW: convOutSize(W, S, stride, pad),
  };
}

interface ConvCase { name: string; g: ConvGeom }
const CONV_CASES: ConvCase[] = [
  // the model's convolutions (batch 4-8)
  { name: 'enc1 conv 1->32 28x28 k3 p1 (and dec3 ConvT 32->1)', g: geom(8, 1, 28, 28, 32, 3, 3, 1, 1) },
  { name: 'enc2 conv 32->64 28->14 s2 p1 (and dec2 ConvT 64->32)', g: geom(4, 32, 28, 28, 64, 3, 3, 2, 1) },
  { name: 'enc3 conv 64->64 14->7 s2 p1', g: geom(6, 64, 14, 14, 64, 3, 3, 2, 1) },
  // ConvTranspose2d(64,64,3,s2,p1,op1) forward = backward-data of this conv (input 14 from output_padding)
  { name: 'dec1 ConvT 64->64 7->14 (conv [N,64,14,14] -> [N,64,7,7])', g: geom(8, 64, 14, 14, 64, 3, 3, 2, 1) },
  // other shapes
  { name: 'small odd 3->5 9x7 k3 p1', g: { ...geom(2, 3, 9, 7, 5, 3, 3, 1, 1) } },
  { name: 'stride 2 with unused last row (8x8 k3 s2 p0)', g: geom(3, 4, 8, 8, 6, 3, 3, 2, 0) },
  { name: 'k5 p2 non-square 2->3 11x6', g: geom(2, 2, 11, 6, 3, 5, 5, 1, 2) },
  { name: 'k1 s1 p0 16->8 5x5', g: geom(5, 16, 5, 5, 8, 1, 1, 1, 0) },
  { name: 'batch 1, 17->19 6x6 k3 s2 p1', g: geom(1, 17, 6, 6, 19, 3, 3, 2, 1) },
  { name: 'mixed strides/pads 3->4 10x9', g: { N: 2, C: 3, H: 10, W: 9, K: 4, R: 3, S: 2, strideH: 2, strideW: 1, padH: 1, padW: 0, OH: convOutSize(10, 3, 2, 1), OW: convOutSize(9, 2, 1, 0) } },
];

interface ConvRef {
  x: Float32Array; w: Float32Array; b: Float32Array; dy: Float32Array;
  y: Float32Array; yNoBias: Float32Array; dx: Float32Array; dw: Float32Array; db: Float32Array;
}
const refCache = new Map<string, ConvRef>();
function convRef(c: ConvCase): ConvRef {
  const hit = refCache.get(c.name);
  if (hit) return hit;
  const g = c.g;
  const xN = g.N * g.C * g.H * g.W, wN = g.K * g.C * g.R * g.S, yN = g.N * g.K * g.OH * g.OW;
  const r: ConvRef = {
    x: rand(xN), w: rand(wN, -0.5, 0.5), b: rand(g.K), dy: rand(yN),
    y: nans(yN), yNoBias: nans(yN), dx: nans(xN), dw: nans(wN), db: nans(g.K),
  };
  ref.conv2d(g, r.x, r.w, r.b, r.y);
  ref.conv2d(g, r.x, r.w, null, r.yNoBias);
  ref.conv2dBackwardData(g, r.dy, r.w, r.dx);
  ref.conv2dBackwardWeight(g, r.x, r.dy, r.dw, r.db);
  refCache.set(c.name, r);
  return r;
}

function checkConvs(be: NativeBackend, rel: number): void {
  for (const c of CONV_CASES) {
    const g = c.g, r = convRef(c);
    const y = nans(r.y.length);
    be.conv2d(g, r.x, r.w, r.b, y);
    expectClose(y, r.y, rel, `${c.name}: conv2d with bias`);
    be.conv2d(g, r.x, r.w, null, y);
    expectClose(y, r.yNoBias, rel, `${c.name}: conv2d`);
    const dx = nans(r.dx.length);
    be.conv2dBackwardData(g, r.dy, r.w, dx);
    expectClose(dx, r.dx, rel, `${c.name}: conv2dBackwardData`);
    const dw = nans(r.dw.length), db = nans(g.K);
    be.conv2dBackwardWeight(g, r.x, r.dy, dw, db);
    expectClose(dw, r.dw, rel, `${c.name}: conv2dBackwardWeight dw`);
    expectClose(db, r.db, rel, `${c.name}: conv2dBackwardWeight db`);
    const dw2 = nans(r.dw.length);
    be.conv2dBackwardWeight(g, r.x, r.dy, dw2, null);
    expectClose(dw2, r.dw, rel, `${c.name}: conv2dBackwardWeight without db`);
    // cached primitives: a second call with other data must be right too
    const x2 = rand(r.x.length), y2 = nans(r.y.length), y2ref = nans(r.y.length);
    ref.conv2d(g, x2, r.w, r.b, y2ref);
    be.conv2d(g, x2, r.w, r.b, y2);
    expectClose(y2, y2ref, rel, `${c.name}: conv2d, second call`);
  }
}

const ACTS: Act[] = [
  { kind: 'none', slope: 0 }, { kind: 'relu', slope: 0 }, { kind: 'leaky', slope: 0.01 },
  { kind: 'leaky', slope: 0.2 }, { kind: 'tanh', slope: 0 }, { kind: 'sigmoid', slope: 0 },
];
const FP32 = 1e-4;
const BF16 = 2e-2;

describe('native backend: loading', () => {
  it('says how to enable it when the addon is missing', () => {
    expect(NATIVE_HINT).toContain('apt-get install libdnnl-dev, then npm run build:native');
    expect(() => loadNativeAddon('/nonexistent/latentlab.node')).toThrow(NATIVE_HINT);
  });

  it('says how to enable it when the addon does not load (e.g. libdnnl missing)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latentlab-native-'));
    const bogus = join(dir, 'latentlab.node');
    writeFileSync(bogus, 'not a shared object');
    try {
      expect(() => loadNativeAddon(bogus)).toThrow(/failed to load.*apt-get install libdnnl-dev, then npm run build:native/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('createBackend("native") rejects with that message when the addon is missing', async () => {
    const saved = process.env.LATENTLAB_NATIVE_ADDON;
    process.env.LATENTLAB_NATIVE_ADDON = '/nonexistent/latentlab.node';
    try {
      await expect(createBackend('native')).rejects.toThrow(NATIVE_HINT);
      // bf16 exists on native only: auto does not fall back to an fp32 backend for it
      await expect(createBackend('auto', { precision: 'bf16' })).rejects.toThrow(/backend 'native' did not load.*npm run build:native/);
    } finally {
      if (saved === undefined) delete process.env.LATENTLAB_NATIVE_ADDON;
      else process.env.LATENTLAB_NATIVE_ADDON = saved;
    }
  });

  it('a backend without bf16 refuses --precision bf16 instead of running fp32', async () => {
    await expect(createBackend('reference', { precision: 'bf16' }))
      .rejects.toThrow("--precision bf16: the reference backend computes in fp32 only; bf16 needs the native backend");
    expect((await createBackend('reference', { precision: 'fp32' })).name).toBe('reference');
  });
});

suite('native backend: setup', () => {
  it('loads and reports oneDNN', async () => {
    const be = await createNativeBackend({ threads: 2 });
    expect(be.name).toBe('native');
    expect(be.threads).toBe(2);
    expect(be.info.dnnl).toMatch(/^\d+\.\d+/);
    const a = be.alloc(10);
    expect(a).toBeInstanceOf(Float32Array);
    expect(a.length).toBe(10);
    be.dispose();
  });

  it('is created by createBackend("native") once registered', async () => {
    const be = await createBackend('native', { threads: 1, precision: 'bf16' });
    expect(be.name).toBe('native');
    expect((be as NativeBackend).precision).toBe('bf16');
    be.dispose?.();
  });

  it('aligned allocation is zero-filled and 64-byte aligned', async () => {
    const be = await createNativeBackend({ threads: 1, alignedAlloc: true });
    const a = be.alloc(1000);
    expect(a.length).toBe(1000);
    expect(maxAbs(a)).toBe(0);
    a[999] = 1;
    expect(a[999]).toBe(1);
    be.dispose();
  });

  it('rejects arrays that are too short', async () => {
    const be = await createNativeBackend({ threads: 1 });
    const g = geom(2, 3, 5, 5, 4, 3, 3, 1, 1);
    expect(() => be.conv2d(g, new Float32Array(10), new Float32Array(108), null, new Float32Array(200))).toThrow(/x/);
    expect(() => be.gemm(false, false, 4, 4, 4, 1, new Float32Array(16), new Float32Array(15), 0, new Float32Array(16)))
      .toThrow(/B/);
    be.dispose();
  });
});

suite('native backend: edge cases', () => {
  it('empty batch and K = 0', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const g = geom(0, 3, 5, 5, 4, 3, 3, 1, 1);
    const dw = nans(4 * 3 * 9), db = nans(4);
    be.conv2d(g, new Float32Array(0), rand(108), null, new Float32Array(0));
    be.conv2dBackwardWeight(g, new Float32Array(0), new Float32Array(0), dw, db);
    expect(maxAbs(dw)).toBe(0);
    expect(maxAbs(db)).toBe(0);
    const C = Float32Array.from([1, 2, 3, 4]);
    be.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 0.5, C);
    expect(Array.from(C)).toEqual([0.5, 1, 1.5, 2]);
    be.dispose();
    expect(() => be.gemm(false, false, 1, 1, 1, 1, C, C, 0, C)).toThrow(/dispose/);
  });
});

suite('native backend: mseLoss', () => {
  it('writes the gradient of loss.ts mseLoss bit for bit and its loss to the last bits, on one and two threads', async () => {
    for (const threads of [1, 2]) {
      const be = await createNativeBackend({ threads });
      for (const n of [1, 17, 16384 + 5, 300001]) for (const scale of [1, 0.37]) {
        const y = Float32Array.from({ length: n }, () => rng.normal()), t = Float32Array.from({ length: n }, () => rng.normal() * 0.5);
        const want = new Float32Array(n), got = new Float32Array(n);
        const lw = mseLoss(y, t, n, want, scale), lg = mseLoss(y, t, n, got, scale, be);
        expect(Array.from(got), `n ${n} scale ${scale}`).toEqual(Array.from(want));
        expect(Math.abs(lg - lw)).toBeLessThanOrEqual(1e-12 * lw);
      }
      expect(Number.isNaN(be.mseLoss(0, new Float32Array(0), new Float32Array(0), new Float32Array(0), 1))).toBe(true);
      expect(() => be.mseLoss(8, new Float32Array(8), new Float32Array(4), new Float32Array(8), 1)).toThrow(/target/);
      be.dispose();
    }
  });
});

suite('native backend: gemm', () => {
  it('matches the reference for all transposes, alpha/beta and the model\'s Linear shapes', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const shapes: [number, number, number][] = [[1, 1, 1], [7, 5, 3], [33, 17, 65], [64, 64, 64], [8, 2, 3136],
      [8, 3136, 2], [3136, 2, 8], [2, 3136, 8], [100, 37, 129],
      // the model's own (the addon's small-product forms: dots along K, rows of C, rows of C^T), and a
      // small product that fits none of them (oneDNN on one thread)
      [64, 2, 3136], [64, 3136, 2], [3136, 2, 64], [2, 3136, 64], [1, 3136, 64], [4, 4, 60000],
      // above the addon's serial threshold (1 << 20 multiply-adds): the multi-threaded path
      [256, 96, 129]];
    for (const [M, N, K] of shapes)
      for (const tA of [false, true]) for (const tB of [false, true])
        for (const [alpha, beta] of [[1, 0], [0.5, 1], [-2, 0.25]]) {
          const A = rand(M * K), B = rand(K * N), C0 = rand(M * N);
          const want = C0.slice(), got = beta === 0 ? nans(M * N) : C0.slice();
          ref.gemm(tA, tB, M, N, K, alpha, A, B, beta, want);
          be.gemm(tA, tB, M, N, K, alpha, A, B, beta, got);
          expectClose(got, want, FP32, `gemm ${M}x${N}x${K} tA=${tA} tB=${tB} alpha=${alpha} beta=${beta}`);
        }
    be.dispose();
  });
});

for (const layout of ['any', 'plain', 'tuned', 'auto'] as NativeLayout[]) {
  suite(`native backend: fp32 convolutions, layout ${layout}`, () => {
    it('conv2d / backward-data / backward-weight match the reference', async () => {
      const be = await createNativeBackend({ threads: 2, layout });
      checkConvs(be, FP32);
      be.dispose();
    });
  });
}

suite('native backend: bf16 convolutions', () => {
  for (const layout of ['any', 'plain', 'auto'] as NativeLayout[])
    it(`match the reference within ${BF16} relative (layout ${layout})`, async () => {
      const be = await createNativeBackend({ threads: 2, precision: 'bf16', layout });
      checkConvs(be, BF16);
      be.dispose();
    });

  it('with bf16 weight gradients too', async () => {
    const be = await createNativeBackend({ threads: 2, precision: 'bf16', bf16WeightGrad: true });
    expect(be.bf16WeightGrad).toBe(true);
    checkConvs(be, BF16);
    be.dispose();
  });

  it('bf16Timed: each convolution in the faster of bf16 and fp32, within the bf16 tolerance', async () => {
    const be = await createNativeBackend({ threads: 2, precision: 'bf16', bf16Timed: true });
    expect(be.bf16Timed).toBe(true);
    checkConvs(be, BF16);
    // every primitive created says what it timed
    const g = CONV_CASES[0].g;
    for (const [kind, bias] of [['fwd', true], ['bwd-data', false], ['bwd-weight', true]] as const)
      expect(be.convImpl(kind, g, bias)).toMatch(/\[timed: bf16 \d+\.\d+ ms, fp32 \d+\.\d+ ms\]/);
    be.dispose();
    const fp = await createNativeBackend({ threads: 2, precision: 'fp32', bf16Timed: true });
    expect(fp.bf16Timed).toBe(false);
    fp.dispose();
  });

  it('single thread works too', async () => {
    const be = await createNativeBackend({ threads: 1, precision: 'bf16' });
    checkConvs(be, BF16);
    be.dispose();
  });

  it('round each input to the nearest bf16, ties to even (an identity 1x1 convolution gives the rounded input back)', async () => {
    // y[k] = sum_c w[k, c] x[c] with w = I: every product but one is an exact zero, so y = bf16(x) exactly
    const bits = new Uint32Array(1), f = new Float32Array(bits.buffer);
    const bf16 = (v: number): number => {
      f[0] = v;
      const b = bits[0];
      bits[0] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
      return f[0];
    };
    const values = (n: number): Float32Array => {
      const x = new Float32Array(n), xb = new Uint32Array(x.buffer);
      for (let i = 0; i < n; i++) {
        // normal values of every sign and a wide range of exponents; a quarter of them ties (low half 0x8000),
        // with an even and an odd kept half, and a quarter just either side of a tie
        const e = 64 + Math.floor(rng.random() * 128), hi = ((i & 1) << 31 | e << 23 | Math.floor(rng.random() * (1 << 23))) >>> 0;
        const low = [0x8000, 0x7fff, 0x8001, Math.floor(rng.random() * 0x10000)][(i >> 1) & 3];
        xb[i] = ((hi & 0xffff0000) | low) >>> 0;
      }
      return x;
    };
    for (const threads of [1, 2])
      for (const [layout, blocked, N, C, H, W] of [['plain', false, 5, 3, 7, 9], ['plain', false, 64, 16, 8, 8],
        ['any', true, 64, 16, 8, 8]] as const) {
        const be = await createNativeBackend({ threads, precision: 'bf16', layout });
        const g = { ...geom(N, C, H, W, C, 1, 1, 1, 0), xLayout: blocked ? 'blocked' : 'nchw', yLayout: blocked ? 'blocked' : 'nchw' } as ConvGeom;
        const w = new Float32Array(C * C);
        for (let k = 0; k < C; k++) w[k * C + k] = 1;
        const x = values(N * C * H * W), y = nans(x.length);
        be.conv2d(g, x, w, null, y);
        let wrong = 0;
        for (let i = 0; i < x.length; i++) if (!Object.is(y[i], bf16(x[i]))) wrong++;
        expect(wrong, `${layout} [${N},${C},${H},${W}] on ${threads} thread(s): values not rounded to the nearest bf16`).toBe(0);
        be.dispose();
      }
  });
});

suite('native backend: batch-norm and activations', () => {
  const shapes: [number, number, number][] = [[8, 32, 784], [4, 64, 196], [6, 64, 49], [3, 5, 7], [1, 1, 1], [2, 3, 1],
    [64, 32, 784]];

  it('batchNormTrain (each activation) matches the reference', async () => {
    const be = await createNativeBackend({ threads: 2 });
    for (const [N, C, HW] of shapes) for (const act of ACTS) {
      const n = N * C * HW;
      const x = rand(n, -2, 4), gamma = rand(C, 0.5, 1.5), beta = rand(C, -0.5, 0.5);
      const want = { y: nans(n), mean: nans(C), invstd: nans(C) };
      const got = { y: nans(n), mean: nans(C), invstd: nans(C) };
      ref.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, want.y, want.mean, want.invstd);
      be.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, got.y, got.mean, got.invstd);
      const what = `batchNormTrain [${N},${C},${HW}] ${act.kind}/${act.slope}`;
      expectClose(got.y, want.y, FP32, `${what} y`);
      expectClose(got.mean, want.mean, FP32, `${what} mean`);
      expectClose(got.invstd, want.invstd, FP32, `${what} invstd`);
    }
    be.dispose();
  });

  it('batchNormTrain with a large mean offset', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const [N, C, HW] = [4, 8, 100], n = N * C * HW;
    const x = rand(n, 100, 101), gamma = rand(C, 0.5, 1.5), beta = rand(C);
    const want = { y: nans(n), mean: nans(C), invstd: nans(C) };
    const got = { y: nans(n), mean: nans(C), invstd: nans(C) };
    const act: Act = { kind: 'leaky', slope: 0.01 };
    ref.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, want.y, want.mean, want.invstd);
    be.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, got.y, got.mean, got.invstd);
    expectClose(got.y, want.y, 1e-3, 'y');
    expectClose(got.mean, want.mean, FP32, 'mean');
    expectClose(got.invstd, want.invstd, 1e-3, 'invstd');
    be.dispose();
  });

  it('channelAffine (each activation) matches the reference', async () => {
    const be = await createNativeBackend({ threads: 2 });
    for (const [N, C, HW] of shapes) for (const act of ACTS) {
      const n = N * C * HW;
      const x = rand(n, -3, 3), scale = rand(C), shift = rand(C);
      const want = nans(n), got = nans(n);
      ref.channelAffine(N, C, HW, x, scale, shift, act, want);
      be.channelAffine(N, C, HW, x, scale, shift, act, got);
      expectClose(got, want, FP32, `channelAffine [${N},${C},${HW}] ${act.kind}`);
    }
    be.dispose();
  });

  it('batchNormBackward (each activation) matches the reference', async () => {
    const be = await createNativeBackend({ threads: 2 });
    for (const [N, C, HW] of shapes) for (const act of ACTS) {
      const n = N * C * HW;
      const x = rand(n, -2, 2), gamma = rand(C, 0.5, 1.5), beta = rand(C, -0.5, 0.5), dy = rand(n);
      const y = nans(n), mean = nans(C), invstd = nans(C);
      ref.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, y, mean, invstd);
      const want = { dx: nans(n), dg: nans(C), db: nans(C) }, got = { dx: nans(n), dg: nans(C), db: nans(C) };
      ref.batchNormBackward(N, C, HW, x, y, dy, gamma, mean, invstd, act, want.dx, want.dg, want.db);
      be.batchNormBackward(N, C, HW, x, y, dy, gamma, mean, invstd, act, got.dx, got.dg, got.db);
      const what = `batchNormBackward [${N},${C},${HW}] ${act.kind}/${act.slope}`;
      expectClose(got.dx, want.dx, FP32, `${what} dx`);
      expectClose(got.dg, want.dg, FP32, `${what} dgamma`);
      expectClose(got.db, want.db, FP32, `${what} dbeta`);
      // dx may overwrite dy
      const dy2 = dy.slice();
      be.batchNormBackward(N, C, HW, x, y, dy2, gamma, mean, invstd, act, dy2, got.dg, got.db);
      expectClose(dy2, want.dx, FP32, `${what} dx in place`);
    }
    be.dispose();
  });

  it('activation / activationBackward (each kind, in place too) match the reference', async () => {
    const be = await createNativeBackend({ threads: 2 });
    for (const n of [1, 15, 1000, 50_176, 200_001]) for (const act of ACTS) {
      const x = rand(n, -4, 4), dy = rand(n);
      const want = nans(n), got = nans(n);
      ref.activation(act, n, x, want);
      be.activation(act, n, x, got);
      expectClose(got, want, FP32, `activation ${act.kind} n=${n}`);
      const inPlace = x.slice();
      be.activation(act, n, inPlace, inPlace);
      expectClose(inPlace, want, FP32, `activation ${act.kind} n=${n} in place`);
      const wdx = nans(n), gdx = nans(n);
      ref.activationBackward(act, n, x, want, dy, wdx);
      be.activationBackward(act, n, x, want, dy, gdx);
      expectClose(gdx, wdx, FP32, `activationBackward ${act.kind} n=${n}`);
      const dyIn = dy.slice();
      be.activationBackward(act, n, x, want, dyIn, dyIn);
      expectClose(dyIn, wdx, FP32, `activationBackward ${act.kind} n=${n} in place`);
    }
    be.dispose();
  });
});
