/**
 * Batch-norm in place (in-place activated batch-norm): the forward writes y over x and the backward recovers
 * x from y, as (act^-1(y) - beta) / gamma. On every parity backend: the kernels' contract (batchNormTrain
 * with y = x, batchNormBackward with x = null) against the reference's ordinary backward, and what it refuses.
 * The planner's use of it in a Sequential is tested in planner.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Act } from '../src/engine/kernels/index.js';
import { ReferenceBackend } from '../src/engine/kernels/reference.js';
import { Rng } from '../src/engine/rng.js';
import { expectClose, parityBackends } from './helpers.js';

const backends = await parityBackends();
const ref = new ReferenceBackend();
const rng = new Rng(11);
const rand = (n: number, lo = -1, hi = 1): Float32Array => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));
const INVERTIBLE: Act[] = [{ kind: 'none', slope: 0 }, { kind: 'leaky', slope: 0.01 }, { kind: 'leaky', slope: 0.2 }, { kind: 'leaky', slope: 3 }];
// odd planes (scalar tails), one channel, and the study's larger shapes
const SHAPES = [[3, 5, 7], [2, 1, 33], [4, 16, 49], [8, 32, 196]] as const;
// the recovered x costs a few ulps of y, no more (the gradients agree to 1e-5 of their scale, not 1e-4)
const TOL = 1e-5;

describe('batch-norm in place', () => {
  for (const { name, backend: be } of backends) {
    it(`writes y over x, and its backward from y alone matches the ordinary backward (${name})`, () => {
      for (const [N, C, HW] of SHAPES) for (const act of INVERTIBLE) {
        const n = N * C * HW, what = `[${N},${C},${HW}] ${act.kind}/${act.slope}`;
        const x = rand(n, -2, 3), dy = rand(n), beta = rand(C, -0.5, 0.5);
        // gamma of both signs, |beta| well inside 16 |gamma|
        const gamma = rand(C, 0.5, 1.5).map((g, c) => (c % 3 === 1 ? -g : g));
        const y = new Float32Array(n), mean = new Float32Array(C), invstd = new Float32Array(C);
        ref.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, y, mean, invstd);
        const want = { dx: new Float32Array(n), dg: new Float32Array(C), db: new Float32Array(C) };
        ref.batchNormBackward(N, C, HW, x, y, dy, gamma, mean, invstd, act, want.dx, want.dg, want.db);

        const buf = x.slice(), m = new Float32Array(C), is = new Float32Array(C), sep = new Float32Array(n);
        be.batchNormTrain(N, C, HW, x, gamma, beta, 1e-5, act, sep, m, is);
        be.batchNormTrain(N, C, HW, buf, gamma, beta, 1e-5, act, buf, m, is);
        expect(Array.from(buf), `${what}: y over x is the same y`).toEqual(Array.from(sep));
        expectClose(buf, y, `${what} y`, TOL);

        const got = { dx: new Float32Array(n), dg: new Float32Array(C), db: new Float32Array(C) };
        be.batchNormBackward(N, C, HW, null, buf, dy, gamma, m, is, act, got.dx, got.dg, got.db, 'nchw', beta);
        expectClose(got.dx, want.dx, `${what} dx`, TOL);
        expectClose(got.dg, want.dg, `${what} dgamma`, TOL);
        expectClose(got.db, want.db, `${what} dbeta`, TOL);
        // and dx over dy, as a Sequential asks
        const dy2 = dy.slice();
        be.batchNormBackward(N, C, HW, null, buf, dy2, gamma, m, is, act, dy2, got.dg, got.db, 'nchw', beta);
        expectClose(dy2, want.dx, `${what} dx over dy`, TOL);
      }
    });

    it(`refuses the backward without x for an activation it cannot invert, or without beta (${name})`, () => {
      const [N, C, HW] = [2, 3, 4], n = N * C * HW;
      const a = (): Float32Array => new Float32Array(n), c = (): Float32Array => new Float32Array(C).fill(1);
      const call = (act: Act, beta?: Float32Array) => () =>
        be.batchNormBackward(N, C, HW, null, a(), a(), c(), c(), c(), act, a(), c(), c(), 'nchw', beta);
      for (const act of [{ kind: 'relu', slope: 0 }, { kind: 'tanh', slope: 0 }, { kind: 'sigmoid', slope: 0 }, { kind: 'leaky', slope: 0 }] as Act[])
        expect(call(act, c()), `${act.kind}/${act.slope}`).toThrow(/without x \(in place\) it needs beta and an activation none or leaky with slope > 0/);
      expect(call({ kind: 'leaky', slope: 0.01 })).toThrow(/and no beta/);
    });
  }
});
