/**
 * The native backend's channel-blocked activation layout (nChw16c): its kernels on blocked data match
 * the reference on NCHW data, and a Sequential that keeps activations blocked between layers computes
 * the same outputs and gradients as one that keeps them NCHW, while handing layers that do not declare
 * `blockedInput` only NCHW tensors.
 */
import { describe, expect, it } from 'vitest';
import type { Act, ConvGeom, Layout } from '../src/engine/kernels/index.js';
import { convOutSize } from '../src/engine/kernels/index.js';
import { ReferenceBackend } from '../src/engine/kernels/reference.js';
import { createNativeBackend, loadNativeAddon, type NativeBackend } from '../src/engine/kernels/native/index.js';
import {
  BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, Module, Sequential, Tanh, Unflatten,
} from '../src/engine/nn/index.js';
import { Rng } from '../src/engine/rng.js';
import { Tensor } from '../src/engine/tensor.js';
import { need } from './requirements.js';

let loadError: string | null = null;
try { loadNativeAddon(); } catch (e) { loadError = (e as Error).message; }
const suite = need('native', 'native-blocked.test') ? describe : describe.skip;

const ref = new ReferenceBackend();
const rng = new Rng(99);
const B = 16;

function rand(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.random();
  return a;
}
/** NCHW -> nChw16c, written out from the definition. */
function toBlocked(N: number, C: number, HW: number, a: Float32Array): Float32Array {
  const o = new Float32Array(a.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++)
    o[((n * (C / B) + Math.floor(c / B)) * HW + i) * B + (c % B)] = a[(n * C + c) * HW + i];
  return o;
}
function toPlain(N: number, C: number, HW: number, a: Float32Array): Float32Array {
  const o = new Float32Array(a.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++)
    o[(n * C + c) * HW + i] = a[((n * (C / B) + Math.floor(c / B)) * HW + i) * B + (c % B)];
  return o;
}
function expectClose(got: Float32Array, want: Float32Array, rel: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let err = 0, m = 1;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
    m = Math.max(m, Math.abs(want[i]));
  }
  if (!(err <= rel * m)) expect.fail(`${what}: max abs error ${err} > tolerance ${rel * m}`);
}
const FP32 = 1e-4;

function geom(N: number, C: number, H: number, K: number, stride: number): ConvGeom {
  const O = convOutSize(H, 3, stride, 1);
  return { N, C, H, W: H, K, R: 3, S: 3, strideH: stride, strideW: stride, padH: 1, padW: 1, OH: O, OW: O };
}

suite('native backend: the blocked layout nChw16c', () => {
  it('the addon is built (required in CI)', () => { expect(loadError).toBeNull(); });

  it('reorderLayout is the nChw16c permutation, both ways', async () => {
    const be = await createNativeBackend({ threads: 2 });
    expect(be.channelBlock).toBe(16);
    for (const [N, C, HW] of [[2, 16, 5], [3, 32, 49], [64, 64, 49]]) {
      const x = rand(N * C * HW), b = new Float32Array(x.length), p = new Float32Array(x.length);
      be.reorderLayout(N, C, HW, x, b, 'blocked');
      expect(Array.from(b)).toEqual(Array.from(toBlocked(N, C, HW, x)));
      be.reorderLayout(N, C, HW, b, p, 'nchw');
      expect(Array.from(p)).toEqual(Array.from(x));
    }
    expect(() => be.reorderLayout(1, 8, 4, new Float32Array(32), new Float32Array(32), 'blocked')).toThrow(/divisible by 16/);
    be.dispose();
  });

  it('batch-norm (train, backward), channelAffine and channelSums on blocked data match the reference', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const acts: Act[] = [{ kind: 'none', slope: 0 }, { kind: 'leaky', slope: 0.01 }, { kind: 'relu', slope: 0 }, { kind: 'tanh', slope: 0 }];
    for (const [N, C, HW] of [[4, 16, 9], [2, 16, 3], [3, 16, 7], [8, 32, 196], [64, 32, 784], [5, 64, 49]] as const) for (const act of acts) {
      const n = N * C * HW, what = `[${N},${C},${HW}] ${act.kind}`;
      const x = rand(n, -2, 3), gamma = rand(C, 0.5, 1.5), beta = rand(C, -0.5, 0.5), dy = rand(n);
      const y = new Float32Array(n), mean = new Float32Array(C), invstd = new Float32Array(C);
      ref.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, y, mean, invstd);
      const by = new Float32Array(n), bm = new Float32Array(C), bi = new Float32Array(C);
      const xb = toBlocked(N, C, HW, x);
      be.batchNormTrain(N, C, HW, xb, gamma, beta, 1e-5, act, by, bm, bi, 'blocked');
      expectClose(toPlain(N, C, HW, by), y, FP32, `batchNormTrain ${what} y`);
      expectClose(bm, mean, FP32, `batchNormTrain ${what} mean`);
      expectClose(bi, invstd, FP32, `batchNormTrain ${what} invstd`);

      const dx = new Float32Array(n), dg = new Float32Array(C), db = new Float32Array(C);
      ref.batchNormBackward(N, C, HW, x, y, dy, gamma, mean, invstd, act, dx, dg, db);
      const bdx = new Float32Array(n), bdg = new Float32Array(C), bdb = new Float32Array(C);
      be.batchNormBackward(N, C, HW, xb, toBlocked(N, C, HW, y), toBlocked(N, C, HW, dy), gamma, mean, invstd, act,
        bdx, bdg, bdb, 'blocked');
      expectClose(toPlain(N, C, HW, bdx), dx, FP32, `batchNormBackward ${what} dx`);
      expectClose(bdg, dg, FP32, `batchNormBackward ${what} dgamma`);
      expectClose(bdb, db, FP32, `batchNormBackward ${what} dbeta`);
      // with beta, the activation's mask comes from x (y is not read: NaN there must not matter)
      const xdx = new Float32Array(n), xdg = new Float32Array(C), xdb = new Float32Array(C);
      const yIgnored = act.kind === 'tanh' ? toBlocked(N, C, HW, y) : new Float32Array(n).fill(NaN);
      be.batchNormBackward(N, C, HW, xb, yIgnored, toBlocked(N, C, HW, dy), gamma, bm, bi, act, xdx, xdg, xdb, 'blocked', beta);
      expectClose(toPlain(N, C, HW, xdx), dx, FP32, `batchNormBackward ${what} dx (mask from x)`);
      expectClose(xdg, dg, FP32, `batchNormBackward ${what} dgamma (mask from x)`);
      expectClose(xdb, db, FP32, `batchNormBackward ${what} dbeta (mask from x)`);
      // in place (none, leaky): the forward writes y over x, the backward recovers x from y
      if (act.kind === 'none' || act.kind === 'leaky') {
        const buf = xb.slice(), im = new Float32Array(C), ii = new Float32Array(C);
        be.batchNormTrain(N, C, HW, buf, gamma, beta, 1e-5, act, buf, im, ii, 'blocked');
        expect(Array.from(buf), `batchNormTrain ${what} in place`).toEqual(Array.from(by));
        const idx = new Float32Array(n), idg = new Float32Array(C), idb = new Float32Array(C);
        be.batchNormBackward(N, C, HW, null, buf, toBlocked(N, C, HW, dy), gamma, im, ii, act, idx, idg, idb, 'blocked', beta);
        expectClose(toPlain(N, C, HW, idx), dx, FP32, `batchNormBackward ${what} dx (in place)`);
        expectClose(idg, dg, FP32, `batchNormBackward ${what} dgamma (in place)`);
        expectClose(idb, db, FP32, `batchNormBackward ${what} dbeta (in place)`);
      }

      const ay = new Float32Array(n), bay = new Float32Array(n);
      ref.channelAffine(N, C, HW, x, gamma, beta, act, ay);
      be.channelAffine(N, C, HW, xb, gamma, beta, act, bay, 'blocked');
      expectClose(toPlain(N, C, HW, bay), ay, FP32, `channelAffine ${what}`);
    }
    {
      // a large offset from zero (the one-pass moments are shifted by each channel's first value)
      const [N, C, HW] = [4, 16, 100], n = N * C * HW, act: Act = { kind: 'leaky', slope: 0.01 };
      const x = rand(n, 1000, 1001), gamma = rand(C, 0.5, 1.5), beta = rand(C);
      const y = new Float32Array(n), mean = new Float32Array(C), invstd = new Float32Array(C);
      const by = new Float32Array(n), bm = new Float32Array(C), bi = new Float32Array(C);
      ref.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, y, mean, invstd);
      be.batchNormTrain(N, C, HW, toBlocked(N, C, HW, x), gamma, beta, 1e-5, act, by, bm, bi, 'blocked');
      expectClose(bm, mean, 1e-6, 'batchNormTrain offset 1000: mean');
      expectClose(bi, invstd, 1e-3, 'batchNormTrain offset 1000: invstd');
      expectClose(toPlain(N, C, HW, by), y, 1e-2, 'batchNormTrain offset 1000: y');
    }
    for (const layout of ['nchw', 'blocked'] as Layout[]) {
      const [N, C, HW] = [6, 32, 50];
      const x = rand(N * C * HW), want = new Float64Array(C), got = new Float32Array(C);
      for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++) want[c] += x[(n * C + c) * HW + i];
      be.channelSums(N, C, HW, layout === 'blocked' ? toBlocked(N, C, HW, x) : x, got, layout);
      expectClose(got, Float32Array.from(want), 1e-5, `channelSums ${layout}`);
    }
    be.dispose();
  });

  it('convNormForward (a one-channel convolution applying the batch-norm after it) matches conv2d + batchNormTrain', async () => {
    const fp32 = await createNativeBackend({ threads: 2 }), bf16 = await createNativeBackend({ threads: 2, precision: 'bf16' });
    const leaky: Act = { kind: 'leaky', slope: 0.01 };
    // [N, H, W, K, kernel, stride, pad, y blocked, act, bias]: the model's first layer (the 3x3 loops), a row wider than
    // 32 and a 5x5 stride 2 (the general loops), rows narrower than 16
    const cases: [number, number, number, number, number, number, number, boolean, Act, boolean][] = [
      [64, 28, 28, 32, 3, 1, 1, true, leaky, true], [5, 9, 40, 16, 3, 1, 1, false, { kind: 'relu', slope: 0 }, false],
      [4, 11, 11, 16, 5, 2, 2, true, { kind: 'none', slope: 0 }, true], [6, 7, 7, 32, 3, 1, 1, true, { kind: 'leaky', slope: 0.3 }, true],
    ];
    for (const [N, H, W, K, k, st, pad, blocked, act, hasBias] of cases) {
      const OH = convOutSize(H, k, st, pad), OW = convOutSize(W, k, st, pad), HW = OH * OW, n = N * K * HW;
      const g: ConvGeom = { N, C: 1, H, W, K, R: k, S: k, strideH: st, strideW: st, padH: pad, padW: pad, OH, OW,
                            xLayout: 'nchw', yLayout: blocked ? 'blocked' : 'nchw' };
      // MNIST-like: a background of -1 (the channels' means far from zero), strokes in (0, 1]
      const x = Float32Array.from({ length: N * H * W }, () => (rng.random() < 0.7 ? -1 : rng.random()));
      const w = rand(K * k * k, -0.5, 0.5), bias = hasBias ? rand(K, -0.2, 0.2) : null;
      for (let t = 0; t < k * k; t++) w[t] = ((t % k) - (k - 1) / 2) * 0.3;  // channel 0: an edge filter (cancelling taps)
      const gamma = rand(K, 0.5, 1.5), beta = rand(K, -0.5, 0.5);
      const y = new Float32Array(n), mean = new Float32Array(K), invstd = new Float32Array(K), variance = new Float32Array(K);
      ref.conv2d({ ...g, yLayout: 'nchw' }, x, w, bias, y);
      ref.batchNormTrain(N, K, HW, y, gamma, beta, 1e-5, act, y, mean, invstd, 'nchw', variance);
      // bf16 as fp32: the fused convolution runs in fp32 (bf16 weights would move y's batch mean off beta)
      for (const [be, name] of [[fp32, 'fp32'], [bf16, 'bf16']] as const) {
        const what = `[${N},1,${H},${W}] -> ${K}, ${k}x${k}/${st}, ${act.kind} (${name})`;
        const got = new Float32Array(n), gm = new Float32Array(K), gi = new Float32Array(K), gv = new Float32Array(K);
        be.convNormForward(g, x, w, bias, { gamma, beta, eps: 1e-5, act, mean: gm, invstd: gi, variance: gv }, got);
        expectClose(blocked ? toPlain(N, K, HW, got) : got, y, FP32, `convNormForward ${what} y`);
        expectClose(gm, mean, FP32, `convNormForward ${what} mean`);
        expectClose(gi, invstd, FP32, `convNormForward ${what} invstd`);
        expectClose(gv, variance, FP32, `convNormForward ${what} variance`);
      }
    }
    const g: ConvGeom = { ...geom(2, 2, 8, 16, 1), xLayout: 'nchw', yLayout: 'blocked' };
    const C16 = () => new Float32Array(16);
    const norm = { gamma: C16().fill(1), beta: C16(), eps: 1e-5, act: leaky, mean: C16(), invstd: C16(), variance: C16() };
    expect(() => fp32.convNormForward(g, rand(2 * 2 * 64), rand(16 * 2 * 9), null, norm, new Float32Array(2 * 16 * 64))).toThrow(/fusesConvNorm/);
    const g1 = { ...g, C: 1 };
    expect(() => fp32.convNormForward(g1, rand(2 * 64), rand(16 * 9), null, { ...norm, act: { kind: 'tanh', slope: 0 } },
      new Float32Array(2 * 16 * 64))).toThrow(/fusesConvNorm/);
    expect(fp32.fusesConvNorm(g1, leaky)).toBe(true);
    expect(fp32.fusesConvNorm({ ...g1, R: 9, S: 9 }, leaky)).toBe(false);
    fp32.dispose();
    bf16.dispose();
  });

  it('convNormBackward (a first layer\'s weight gradient with the batch-norm\'s backward) matches batchNormBackward + conv2dBackwardWeight', async () => {
    const be = await createNativeBackend({ threads: 2 });
    // [N, H, K, stride, y blocked, act]: the model's first layer, an odd batch with stride 2 into NCHW, a steep leaky
    const cases: [number, number, number, number, boolean, Act][] = [
      [64, 28, 32, 1, true, { kind: 'leaky', slope: 0.01 }], [5, 9, 16, 2, false, { kind: 'none', slope: 0 }],
      [3, 12, 32, 1, false, { kind: 'leaky', slope: 0.3 }], [7, 13, 16, 2, true, { kind: 'leaky', slope: 0.1 }],
    ];
    for (const [N, H, K, st, blocked, act] of cases) {
      const g: ConvGeom = { ...geom(N, 1, H, K, st), xLayout: 'nchw', yLayout: blocked ? 'blocked' : 'nchw' };
      const HW = g.OH * g.OW, n = N * K * HW, what = `[${N},1,${H},${H}] -> ${K}, s${st}, ${blocked ? 'blocked' : 'nchw'}, ${act.kind}`;
      const x = Float32Array.from({ length: N * H * H }, () => (rng.random() < 0.7 ? -1 : rng.random()));
      const w = rand(K * 9, -0.5, 0.5), bias = rand(K, -0.2, 0.2), gamma = rand(K, 0.5, 1.5), beta = rand(K, -0.5, 0.5);
      const mean = new Float32Array(K), invstd = new Float32Array(K), y = new Float32Array(n);
      be.convNormForward(g, x, w, bias, { gamma, beta, eps: 1e-5, act, mean, invstd, variance: new Float32Array(K) }, y);
      const dyPlain = rand(n), dy = blocked ? toBlocked(N, K, HW, dyPlain) : dyPlain;
      const dw = new Float32Array(K * 9).fill(NaN), db = new Float32Array(K).fill(NaN);
      const dg = new Float32Array(K).fill(NaN), dbeta = new Float32Array(K).fill(NaN);
      be.convNormBackward(g, x, { gamma, beta, mean, invstd, act }, y, dy, dw, db, dg, dbeta);
      // the reference: the convolution's output, the batch-norm's backward from it, the weight gradient of its dx
      const z = new Float32Array(n), dx = new Float32Array(n), yRef = new Float32Array(n);
      ref.conv2d({ ...g, yLayout: 'nchw' }, x, w, bias, z);
      ref.batchNormTrain(N, K, HW, z, gamma, beta, 1e-5, act, yRef, new Float32Array(K), new Float32Array(K), 'nchw', new Float32Array(K));
      const dgWant = new Float32Array(K), dbetaWant = new Float32Array(K), dwWant = new Float32Array(K * 9), dbWant = new Float32Array(K);
      ref.batchNormBackward(N, K, HW, z, yRef, dyPlain, gamma, mean, invstd, act, dx, dgWant, dbetaWant, 'nchw');
      ref.conv2dBackwardWeight({ ...g, yLayout: 'nchw' }, x, dx, dwWant, dbWant);
      expectClose(dw, dwWant, FP32, `convNormBackward ${what} dw`);
      expectClose(dg, dgWant, FP32, `convNormBackward ${what} dgamma`);
      expectClose(dbeta, dbetaWant, FP32, `convNormBackward ${what} dbeta`);
      // the bias before a batch-norm: its gradient is zero but for rounding, in both
      const dwMax = dwWant.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      for (let k = 0; k < K; k++) expect(Math.abs(db[k] - dbWant[k]), `${what} db[${k}]`).toBeLessThan(1e-5 * dwMax);
      be.convNormBackward(g, x, { gamma, beta, mean, invstd, act }, y, dy, dw, null, dg, dbeta);  // no bias
      expectClose(dw, dwWant, FP32, `convNormBackward ${what} dw, no bias`);
    }
    const leaky: Act = { kind: 'leaky', slope: 0.01 };
    expect(be.fusesConvNormBackward(geom(2, 1, 8, 16, 1), leaky)).toBe(true);
    expect(be.fusesConvNormBackward(geom(2, 1, 8, 16, 1), { kind: 'relu', slope: 0 })).toBe(false);
    expect(be.fusesConvNormBackward(geom(2, 1, 8, 24, 1), leaky)).toBe(false);
    expect(be.fusesConvNormBackward({ ...geom(2, 1, 8, 16, 1), R: 5, S: 5 }, leaky)).toBe(false);
    const C16 = () => new Float32Array(16);
    expect(() => be.convNormBackward({ ...geom(2, 1, 8, 16, 1), R: 5, S: 5 }, rand(128), { gamma: C16(), beta: C16(), mean: C16(),
      invstd: C16(), act: leaky }, rand(2 * 16 * 64), rand(2 * 16 * 64), new Float32Array(16 * 25), null, C16(), C16())).toThrow(/fusesConvNormBackward/);
    be.dispose();
  });

  it('a Sequential whose first Conv2d applies the batch-norm after it gives the outputs, gradients and running statistics of one that does not', async () => {
    const build = async (fused: boolean, first: boolean) => {
      const be = await createNativeBackend({ threads: 2 });
      if (!fused) be.fusesConvNorm = () => false;
      const r = new Rng(4);
      const conv0 = new Conv2d(1, 32, 3, { padding: 1, rng: r });
      conv0.needsInputGrad = !first;  // a first layer: its backward computes the batch-norm's too (convNormBackward)
      const s = new Sequential(conv0, new BatchNorm2d(32), new LeakyReLU(),
        new Conv2d(32, 16, 3, { stride: 2, padding: 1, rng: r })).to(be);
      const bn = s.at(1) as BatchNorm2d;
      bn.weight.data.forEach((_, c, w) => { w[c] = 0.6 + c / 40; });
      bn.bias.data.forEach((_, c, b) => { b[c] = (c - 16) / 20; });
      const calls = { fused: 0, backward: 0 };
      const cnf = be.convNormForward.bind(be), cnb = be.convNormBackward.bind(be);
      be.convNormForward = (...a: Parameters<NativeBackend['convNormForward']>) => { calls.fused++; return cnf(...a); };
      be.convNormBackward = (...a: Parameters<NativeBackend['convNormBackward']>) => { calls.backward++; return cnb(...a); };
      return { s, be, bn, calls };
    };
    const x = new Tensor([8, 1, 12, 12], Float32Array.from({ length: 8 * 144 }, () => (rng.random() < 0.6 ? -1 : rng.random())));
    const dy = rand(8 * 16 * 36);
    const run = async (fused: boolean, first: boolean) => {
      const { s, be, bn, calls } = await build(fused, first);
      const outs: Float32Array[] = [];
      for (let step = 0; step < 2; step++) {
        s.zeroGrad();
        outs.push(s.forward(x).data.slice());
        s.backward(new Tensor([8, 16, 6, 6], dy.slice()));
        const conv = s.at(0) as Conv2d;
        outs.push(conv.weight.grad.slice(), conv.bias!.grad.slice(), bn.weight.grad.slice(), bn.bias.grad.slice(),
          bn.runningMean.data.slice() as Float32Array, bn.runningVar.data.slice() as Float32Array);
        bn.weight.data[5] *= 0.9;  // the second step with other parameters
      }
      be.dispose();
      return { outs, calls };
    };
    for (const first of [false, true]) {
      const fused = await run(true, first), plain = await run(false, first);
      expect(fused.calls).toEqual({ fused: 2, backward: first ? 2 : 0 });
      expect(plain.calls).toEqual({ fused: 0, backward: 0 });
      const names = ['y', 'conv dw', 'conv db', 'dgamma', 'dbeta', 'running mean', 'running var'];
      fused.outs.forEach((a, i) => expectClose(a, plain.outs[i], FP32, `${first ? 'first layer, ' : ''}step ${Math.floor(i / 7)} ${names[i % 7]}`));
    }
  });

  it('convolutions with blocked x and/or y match the reference', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const cases: ConvGeom[] = [geom(4, 32, 28, 64, 2), geom(3, 64, 14, 64, 2), geom(2, 1, 28, 32, 1), geom(2, 32, 28, 1, 1),
      geom(2, 16, 9, 16, 1), geom(3, 1, 9, 16, 2),
      // one input channel with an odd kernel, strides and paddings (the direct C = 1 kernels)
      { N: 2, C: 1, H: 11, W: 8, K: 32, R: 5, S: 3, strideH: 2, strideW: 1, padH: 2, padW: 0,
        OH: convOutSize(11, 5, 2, 2), OW: convOutSize(8, 3, 1, 0) },
      { N: 3, C: 1, H: 13, W: 21, K: 48, R: 3, S: 3, strideH: 1, strideW: 1, padH: 2, padW: 1,
        OH: convOutSize(13, 3, 1, 2), OW: convOutSize(21, 3, 1, 1) },
      { N: 2, C: 1, H: 9, W: 30, K: 16, R: 3, S: 5, strideH: 1, strideW: 2, padH: 0, padW: 2,
        OH: convOutSize(9, 3, 1, 0), OW: convOutSize(30, 5, 2, 2) }];
    for (const g0 of cases) for (const xl of ['nchw', 'blocked'] as Layout[]) for (const yl of ['nchw', 'blocked'] as Layout[]) {
      if ((xl === 'blocked' && g0.C % B) || (yl === 'blocked' && g0.K % B)) continue;
      const g = { ...g0, xLayout: xl, yLayout: yl }, what = `conv ${g.C}->${g.K} ${g.H}x${g.W} s${g.strideH} x:${xl} y:${yl}`;
      const HWx = g.H * g.W, HWy = g.OH * g.OW;
      const X = (a: Float32Array) => (xl === 'blocked' ? toBlocked(g.N, g.C, HWx, a) : a);
      const Y = (a: Float32Array) => (yl === 'blocked' ? toBlocked(g.N, g.K, HWy, a) : a);
      const XP = (a: Float32Array) => (xl === 'blocked' ? toPlain(g.N, g.C, HWx, a) : a);
      const YP = (a: Float32Array) => (yl === 'blocked' ? toPlain(g.N, g.K, HWy, a) : a);
      const x = rand(g.N * g.C * HWx), w = rand(g.K * g.C * g.R * g.S, -0.3, 0.3), bias = rand(g.K), dy = rand(g.N * g.K * HWy);
      const y = new Float32Array(dy.length), dx = new Float32Array(x.length), dw = new Float32Array(w.length), db = new Float32Array(g.K);
      ref.conv2d(g0, x, w, bias, y);
      ref.conv2dBackwardData(g0, dy, w, dx);
      ref.conv2dBackwardWeight(g0, x, dy, dw, db);
      const gy = new Float32Array(y.length), gdx = new Float32Array(x.length), gdw = new Float32Array(w.length), gdb = new Float32Array(g.K);
      be.conv2d(g, X(x), w, bias, gy);
      expectClose(YP(gy), y, FP32, `${what} fwd`);
      be.conv2dBackwardData(g, Y(dy), w, gdx);
      expectClose(XP(gdx), dx, FP32, `${what} bwd-data`);
      be.conv2dBackwardWeight(g, X(x), Y(dy), gdw, gdb);
      expectClose(gdw, dw, FP32, `${what} bwd-weight`);
      expectClose(gdb, db, FP32, `${what} bwd-bias`);
    }
    be.dispose();
  });

  it('bf16: activations already blocked are converted by the addon\'s own loop exactly as oneDNN\'s reorder does', async () => {
    const be = await createNativeBackend({ threads: 2, precision: 'bf16' });
    for (const g0 of [geom(4, 32, 28, 64, 2), geom(3, 64, 14, 64, 2)]) {
      const HWx = g0.H * g0.W, HWy = g0.OH * g0.OW;
      const x = rand(g0.N * g0.C * HWx), w = rand(g0.K * g0.C * 9, -0.3, 0.3), dy = rand(g0.N * g0.K * HWy);
      // values that round differently: exact halfway cases (ties to even), NaN
      x[0] = 1 + 2 ** -8; x[1] = 1 + 3 * 2 ** -8; x[2] = -(1 + 2 ** -8) - 2 ** -20;
      const want = new Float32Array(dy.length);
      ref.conv2d(g0, x, w, null, want);
      // x NCHW: oneDNN's reorder converts (and blocks) it; x blocked: the addon's loop converts it
      const viaReorder = new Float32Array(dy.length), viaOwn = new Float32Array(dy.length);
      be.conv2d({ ...g0, xLayout: 'nchw', yLayout: 'blocked' }, x, w, null, viaReorder);
      be.conv2d({ ...g0, xLayout: 'blocked', yLayout: 'blocked' }, toBlocked(g0.N, g0.C, HWx, x), w, null, viaOwn);
      expect(be.convImpl('fwd', { ...g0, xLayout: 'blocked', yLayout: 'blocked' })).toMatch(/\+bf16\(in0\)/);
      expect(be.convImpl('fwd', { ...g0, xLayout: 'nchw', yLayout: 'blocked' })).toMatch(/\+reorder\(in0\)/);
      expect(Array.from(viaOwn)).toEqual(Array.from(viaReorder));
      expectClose(toPlain(g0.N, g0.K, HWy, viaOwn), want, 2e-2, 'bf16 conv2d with blocked x');
      const dxWant = new Float32Array(x.length), dxR = new Float32Array(x.length), dxO = new Float32Array(x.length);
      ref.conv2dBackwardData(g0, dy, w, dxWant);
      be.conv2dBackwardData({ ...g0, xLayout: 'blocked', yLayout: 'nchw' }, dy, w, dxR);
      be.conv2dBackwardData({ ...g0, xLayout: 'blocked', yLayout: 'blocked' }, toBlocked(g0.N, g0.K, HWy, dy), w, dxO);
      expect(Array.from(dxO)).toEqual(Array.from(dxR));
      expectClose(toPlain(g0.N, g0.C, HWx, dxO), dxWant, 2e-2, 'bf16 conv2dBackwardData with blocked dy');
      x[5] = NaN;
      be.conv2d({ ...g0, xLayout: 'blocked', yLayout: 'blocked' }, toBlocked(g0.N, g0.C, HWx, x), w, null, viaOwn);
      expect(viaOwn.some(Number.isNaN)).toBe(true);
    }
    be.dispose();
  });

  it('bf16 weight gradients: the addon\'s vdpbf16ps kernel is the exact sum of products of bf16-rounded x and dy', async () => {
    /** fp32 -> bf16, nearest, ties to even (what the kernel's vcvtne2ps2bf16 does), back as a number. */
    const bf16 = (v: number): number => {
      const u = new Uint32Array(new Float32Array([v]).buffer);
      u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
      return new Float32Array(u.buffer)[0];
    };
    for (const threads of [1, 2]) {
      const be = await createNativeBackend({ threads, precision: 'bf16', bf16WeightGrad: true });
      // the model's two shapes with an odd batch (the last image pairs with zeros), a thread taking several groups
      // of image pairs (37 images of 7x7 outputs: 19 pairs, 8 to a group), a group of more pixels than a chunk
      // (stride 1, 28x28: 784), stride 1 at 9x9, and a shape the kernel does not take (4 x 6 tiles: 9 taps x 1 block
      // is not a multiple of 6)
      for (const [g0, own] of [[geom(3, 32, 28, 64, 2), true], [geom(5, 64, 14, 64, 2), true], [geom(37, 64, 14, 64, 2), true],
        [geom(3, 32, 28, 16, 1), true], [geom(2, 32, 9, 16, 1), true], [geom(1, 16, 5, 32, 2), false]] as const) {
        const HWx = g0.H * g0.W, HWy = g0.OH * g0.OW;
        const x = rand(g0.N * g0.C * HWx), dy = rand(g0.N * g0.K * HWy);
        // halfway cases: truncating instead of rounding to nearest even moves these
        x[1] = 1 + 2 ** -8; x[2] = 1 + 3 * 2 ** -8; dy[3] = -(1 + 3 * 2 ** -8);
        const g = { ...g0, xLayout: 'blocked', yLayout: 'blocked' } as const;
        const dw = new Float32Array(g0.K * g0.C * 9).fill(NaN), db = new Float32Array(g0.K).fill(NaN);
        be.conv2dBackwardWeight(g, toBlocked(g0.N, g0.C, HWx, x), toBlocked(g0.N, g0.K, HWy, dy), dw, db);
        const dwWant = new Float32Array(dw.length), dbWant = new Float32Array(db.length);
        if (own) {
          expect(be.convImpl('bwd-weight', g, true)).toMatch(/^latentlab bf16/);
          ref.conv2dBackwardWeight(g0, x.map(bf16), dy.map(bf16), dwWant, dbWant);
          expectClose(dw, dwWant, 1e-5, `bf16 kernel dw ${g0.C}->${g0.K} ${g0.H}x${g0.W} s${g0.strideH}, ${threads} thread(s)`);
          ref.conv2dBackwardWeight(g0, x, dy, dwWant, dbWant);  // the bias gradient from the fp32 dy
          expectClose(db, dbWant, FP32, `bf16 kernel db, ${threads} thread(s)`);
        } else {
          expect(be.convImpl('bwd-weight', g, true)).not.toMatch(/^latentlab/);
          ref.conv2dBackwardWeight(g0, x, dy, dwWant, dbWant);
          expectClose(dw, dwWant, 2e-2, 'bf16 weight gradient of a shape the kernel does not take');
        }
      }
      be.dispose();
    }
    // the default on a CPU with AVX512-BF16 and no AMX (this project's machine): the kernel computes them
    const be = await createNativeBackend({ threads: 2, precision: 'bf16' });
    if (be.info.isa === 'avx512_core_bf16') {
      const g = { ...geom(2, 32, 28, 64, 2), xLayout: 'blocked', yLayout: 'blocked' } as const;
      be.conv2dBackwardWeight(g, rand(2 * 32 * 784), rand(2 * 64 * 196), new Float32Array(64 * 32 * 9), null);
      expect(be.bf16WeightGrad).toBe(true);
      expect(be.convImpl('bwd-weight', g)).toMatch(/^latentlab bf16/);
    }
    be.dispose();
  });

  /** The study's bn model as one Sequential, on a backend, with blocked layouts on or off. */
  function model(be: NativeBackend, blocked: boolean): Sequential {
    const r = new Rng(5);
    const s = new Sequential(
      new Conv2d(1, 32, 3, { padding: 1, rng: r }), new BatchNorm2d(32), new LeakyReLU(),
      new Conv2d(32, 64, 3, { stride: 2, padding: 1, rng: r }), new BatchNorm2d(64), new LeakyReLU(),
      new Flatten(), new Linear(64 * 14 * 14, 3, { rng: r }), new Linear(3, 64 * 7 * 7, { rng: r }), new Unflatten(1, [64, 7, 7]),
      new LeakyReLU(),
      new ConvTranspose2d(64, 32, 3, { stride: 2, padding: 1, outputPadding: 1, rng: r }), new BatchNorm2d(32), new LeakyReLU(),
      new ConvTranspose2d(32, 16, 3, { stride: 2, padding: 1, outputPadding: 1, rng: r }), new LeakyReLU(),
      new Conv2d(16, 16, 3, { stride: 2, padding: 1, rng: r }),
    ).to(be);
    s.blockedLayouts = blocked;
    return s;
  }

  it('a Sequential computes the same outputs and gradients (within the engine tolerance 1e-4) with blocked layouts between layers, train and eval', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const x = new Tensor([4, 1, 28, 28], rand(4 * 784)), dy = rand(4 * 16 * 14 * 14);
    const [plain, blocked] = [model(be, false), model(be, true)];
    for (const mode of ['train', 'eval'] as const) {
      const outs = [plain, blocked].map((m) => {
        m.train(mode === 'train');
        m.zeroGrad();
        const y = m.forward(x);
        expect(y.layout).toBe('nchw');
        const yc = y.data.slice();
        const dx = m.backward(new Tensor(y.shape, dy));
        return { y: yc, grads: m.parameters().map((p) => p.grad.slice()), dx: dx.data.slice(), dxLayout: dx.layout };
      });
      expectClose(outs[1].y, outs[0].y, FP32, `${mode}: output`);
      expect(outs[1].dxLayout).toBe('nchw');
      expectClose(outs[1].dx, outs[0].dx, FP32, `${mode}: input gradient`);
      outs[0].grads.forEach((g, i) => expectClose(outs[1].grads[i], g, FP32, `${mode}: gradient of parameter ${i}`));
    }
    // every 4-D activation ran blocked (the last one is converted at the end), and so did the features next to
    // them (Flatten's output, the second Linear's); only the latent between the two Linear layers is NCHW
    expect(blocked.lastLayouts).toEqual(['blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'nchw',
      'blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'blocked']);
    expect(plain.lastLayouts.every((l) => l === 'nchw')).toBe(true);
    // used on its own afterwards, a layer returns NCHW
    const conv = blocked.at(0) as Conv2d;
    expect(conv.forward(x).layout).toBe('nchw');
    be.dispose();
  });

  it('one Linear between a Flatten and an Unflatten reads and writes blocked features: the same as NCHW, parameters in PyTorch order', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const make = (blocked: boolean): Sequential => {
      const r = new Rng(9);
      const s = new Sequential(new Conv2d(1, 32, 3, { padding: 1, rng: r }), new BatchNorm2d(32), new LeakyReLU(), new Flatten(),
        new Linear(32 * 5 * 5, 16 * 5 * 5, { rng: r }), new Unflatten(1, [16, 5, 5]), new LeakyReLU(),
        new Conv2d(16, 16, 3, { padding: 1, rng: r })).to(be);
      s.blockedLayouts = blocked;
      return s;
    };
    const [plain, blocked] = [make(false), make(true)];
    const x = new Tensor([3, 1, 5, 5], rand(75)), dy = rand(3 * 16 * 25);
    const outs = [plain, blocked].map((m) => {
      m.zeroGrad();
      const y = m.forward(x);
      const yc = y.data.slice();
      const dx = m.backward(new Tensor(y.shape, dy));
      return { y: yc, grads: m.parameters().map((p) => p.grad.slice()), dx: dx.data.slice() };
    });
    expect(blocked.lastLayouts.slice(2, 6)).toEqual(['blocked', 'blocked', 'blocked', 'blocked']);
    expectClose(outs[1].y, outs[0].y, FP32, 'output');
    expectClose(outs[1].dx, outs[0].dx, FP32, 'input gradient');
    outs[0].grads.forEach((g, i) => expectClose(outs[1].grads[i], g, FP32, `gradient of parameter ${i}`));
    // the weights themselves are untouched, in PyTorch's order
    const [lp, lb] = [plain.at(4) as Linear, blocked.at(4) as Linear];
    expect([...lb.weight.data]).toEqual([...lp.weight.data]);
    be.dispose();
  });

  it('batch-norm + activation fused into a ConvTranspose2d into one channel: the reference layers\' outputs and gradients', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const acts: Act[] = [{ kind: 'none', slope: 0 }, { kind: 'leaky', slope: 0.01 }, { kind: 'relu', slope: 0 }];
    for (const [N, K, H, W] of [[3, 16, 5, 7], [64, 32, 28, 28], [2, 48, 1, 9]] as const) for (const act of acts) for (const withBias of [true, false]) {
      const HW = H * W, n = N * K * HW, what = `[${N},${K},${H},${W}] ${act.kind}${withBias ? ' bias' : ''}`;
      // the ConvTranspose2d(K, 1, 3, padding 1) as its equivalent Conv2d: x the output (1 channel), y the input (K)
      const g: ConvGeom = { N, C: 1, H, W, K, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, OH: H, OW: W, xLayout: 'nchw', yLayout: 'blocked' };
      expect(be.fusesNormConvTranspose(g, act), what).toBe(true);
      const x = rand(n, -2, 3), gamma = rand(K, 0.5, 1.5), beta = rand(K, -0.5, 0.5), w = rand(K * 9), bias = withBias ? rand(1) : null;
      // no pre-activation within rounding of the activation's kink: there the two sides' statistics, rounded
      // differently, could pick different slopes (one value of dx, and the sums, off by that value's gradient)
      if (act.kind !== 'none') {
        const m0 = new Float32Array(K), i0 = new Float32Array(K);
        ref.batchNormTrain(N, K, HW, x, gamma, beta, 1e-5, act, new Float32Array(n), m0, i0);
        for (let i = 0; i < n; i++) {
          const c = Math.floor(i / HW) % K;
          if (Math.abs((x[i] - m0[c]) * i0[c] * gamma[c] + beta[c]) < 1e-4) x[i] += 3e-4 / (i0[c] * gamma[c]);
        }
      }
      const dy = rand(N * HW), xb = toBlocked(N, K, HW, x);
      // reference: batch-norm, then the transposed convolution (+ bias); backward through both
      const z = new Float32Array(n), mean = new Float32Array(K), invstd = new Float32Array(K), y = new Float32Array(N * HW);
      ref.batchNormTrain(N, K, HW, x, gamma, beta, 1e-5, act, z, mean, invstd);
      ref.conv2dBackwardData(g, z, w, y);
      if (bias) for (let i = 0; i < y.length; i++) y[i] += bias[0];
      const dz = new Float32Array(n), dw = new Float32Array(K * 9), dx = new Float32Array(n), dg = new Float32Array(K), dbt = new Float32Array(K);
      ref.conv2d(g, dy, w, null, dz);
      ref.conv2dBackwardWeight(g, dy, z, dw, null);
      ref.batchNormBackward(N, K, HW, x, z, dz, gamma, mean, invstd, act, dx, dg, dbt);
      const db = dy.reduce((a, v) => a + v, 0);

      // native: the statistics alone are batchNormTrain's, exactly
      const bm = new Float32Array(K), bi = new Float32Array(K), bv = new Float32Array(K);
      be.batchNormStats(N, K, HW, xb, 1e-5, bm, bi, bv, 'blocked');
      const tm = new Float32Array(K), ti = new Float32Array(K), tv = new Float32Array(K);
      be.batchNormTrain(N, K, HW, xb, gamma, beta, 1e-5, act, new Float32Array(n), tm, ti, 'blocked', tv);
      expect([Array.from(bm), Array.from(bi), Array.from(bv)], `batchNormStats ${what}`).toEqual([Array.from(tm), Array.from(ti), Array.from(tv)]);
      const norm = { gamma, beta, mean: bm, invstd: bi, act };
      const got = new Float32Array(N * HW).fill(NaN);
      be.normConvTransposeForward(g, xb, w, bias, norm, got);
      expectClose(got, y, FP32, `normConvTransposeForward ${what}`);
      const gdw = new Float32Array(K * 9).fill(NaN), gdb = new Float32Array(1).fill(NaN), gdg = new Float32Array(K).fill(NaN);
      const gdbt = new Float32Array(K).fill(NaN), gdx = new Float32Array(n).fill(NaN);
      be.normConvTransposeBackward(g, xb, w, norm, dy, gdw, bias ? gdb : null, gdg, gdbt, gdx);
      expectClose(toPlain(N, K, HW, gdx), dx, FP32, `normConvTransposeBackward ${what} dx`);
      expectClose(gdw, dw, FP32, `normConvTransposeBackward ${what} dw`);
      expectClose(gdg, dg, FP32, `normConvTransposeBackward ${what} dgamma`);
      expectClose(gdbt, dbt, FP32, `normConvTransposeBackward ${what} dbeta`);
      if (bias) expectClose(gdb, Float32Array.of(db), FP32, `normConvTransposeBackward ${what} db`);
    }
    // what it does not take: more output channels, another kernel size or stride, tanh, channels not a multiple of 16
    const base = { C: 1, K: 32, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 }, leaky: Act = { kind: 'leaky', slope: 0.01 };
    expect(be.fusesNormConvTranspose({ ...base, C: 2 }, leaky)).toBe(false);
    expect(be.fusesNormConvTranspose({ ...base, R: 5, S: 5, padH: 2, padW: 2 }, leaky)).toBe(false);
    expect(be.fusesNormConvTranspose({ ...base, strideH: 2, strideW: 2 }, leaky)).toBe(false);
    expect(be.fusesNormConvTranspose({ ...base, K: 24 }, leaky)).toBe(false);
    expect(be.fusesNormConvTranspose(base, { kind: 'tanh', slope: 0 })).toBe(false);
    be.dispose();
  });

  it('the autoencoder\'s decoder end (batch-norm, LeakyReLU, ConvTranspose2d into one channel) runs fused: the same output, gradients and running statistics', async () => {
    const make = async (fuse: boolean): Promise<{ be: NativeBackend; s: Sequential; calls: string[] }> => {
      const be = await createNativeBackend({ threads: 2 });
      const calls: string[] = [];
      if (!fuse) be.fusesNormConvTranspose = () => false;
      for (const k of ['batchNormTrain', 'batchNormStats', 'normConvTransposeForward', 'normConvTransposeBackward', 'batchNormBackward'] as const) {
        const f = (be[k] as (...a: unknown[]) => void).bind(be);
        (be as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => { calls.push(k); f(...a); };
      }
      const r = new Rng(5);
      const s = new Sequential(new ConvTranspose2d(16, 32, 3, { stride: 2, padding: 1, outputPadding: 1, rng: r }), new BatchNorm2d(32),
        new LeakyReLU(), new ConvTranspose2d(32, 1, 3, { padding: 1, rng: r }), new Tanh()).to(be);
      return { be, s, calls };
    };
    const x = new Tensor([6, 16, 7, 7], rand(6 * 16 * 49)), dy = rand(6 * 784);
    const [plain, fused] = [await make(false), await make(true)];
    for (const mode of ['train', 'eval'] as const) {
      const outs = [plain, fused].map(({ s, calls }) => {
        calls.length = 0;
        s.train(mode === 'train');
        s.zeroGrad();
        const y = s.forward(x).data.slice();
        const dx = s.backward(new Tensor([6, 1, 28, 28], dy)).data.slice();
        const bn = s.at(1) as BatchNorm2d;
        return { y, dx, grads: s.parameters().map((p) => p.grad.slice()), rm: bn.runningMean.data.slice(), rv: bn.runningVar.data.slice() };
      });
      // the forward is the same arithmetic (the normalised value computed into a scratch instead of an activation)
      expect(Array.from(outs[1].y), `${mode}: output`).toEqual(Array.from(outs[0].y));
      expect(Array.from(outs[1].rm), `${mode}: running mean`).toEqual(Array.from(outs[0].rm));
      expect(Array.from(outs[1].rv), `${mode}: running var`).toEqual(Array.from(outs[0].rv));
      expectClose(outs[1].dx, outs[0].dx, FP32, `${mode}: input gradient`);
      outs[0].grads.forEach((g, i) => expectClose(outs[1].grads[i], g, FP32, `${mode}: gradient of parameter ${i}`));
      expect(fused.calls, mode).toEqual(mode === 'train' ? ['batchNormStats', 'normConvTransposeForward', 'normConvTransposeBackward'] : []);
      expect(plain.calls, mode).toEqual(mode === 'train' ? ['batchNormTrain', 'batchNormBackward'] : []);
    }
    plain.be.dispose();
    fused.be.dispose();
  });

  it('layers that do not declare blockedInput only ever see NCHW tensors', async () => {
    const be = await createNativeBackend({ threads: 2 });
    const seen: string[] = [];
    class Probe extends Module {
      forward(x: Tensor): Tensor { seen.push(x.layout); return x; }
      backward(dy: Tensor): Tensor { seen.push(dy.layout); return dy; }
    }
    const r = new Rng(1);
    const s = new Sequential(new Conv2d(1, 16, 3, { padding: 1, rng: r }), new BatchNorm2d(16), new LeakyReLU(), new Probe(),
      new Conv2d(16, 16, 3, { padding: 1, rng: r }), new Tanh()).to(be);
    const y = s.forward(new Tensor([2, 1, 8, 8], rand(128)));
    s.backward(new Tensor(y.shape, rand(y.size)));
    expect(seen).toEqual(['nchw', 'nchw']);
    expect(s.lastLayouts).toEqual(['nchw', 'nchw', 'nchw', 'nchw', 'blocked', 'blocked']);
    expect(y.layout).toBe('nchw');
    be.dispose();
  });
});
