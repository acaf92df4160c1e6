import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Act, Backend, ConvGeom } from '../src/engine/kernels/index.js';
import { convOutSize } from '../src/engine/kernels/index.js';
import { ReferenceBackend } from '../src/engine/kernels/reference.js';
import { channelSums } from '../src/engine/kernels/composite.js';
import { mseLoss } from '../src/engine/loss.js';
import type { WasmBackend } from '../src/engine/kernels/wasm/backend.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const ref = new ReferenceBackend();

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296 * 2 - 1;
  };
}
function rand(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * scale;
  return a;
}
function expectClose(ours: Float32Array, want: Float32Array, what: string): void {
  expect(ours.length, what).toBe(want.length);
  let maxRef = 0, maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(want[i]));
    const d = Math.abs(ours[i] - want[i]);
    maxErr = Number.isNaN(d) ? Infinity : Math.max(maxErr, d);
  }
  const tol = 1e-4 * Math.max(1, maxRef);
  if (!(maxErr <= tol)) throw new Error(`${what}: max|ours-ref| = ${maxErr} > ${tol}`);
}

function geom(N: number, C: number, H: number, W: number, K: number, R: number, S: number,
              sh: number, sw: number, ph: number, pw: number): ConvGeom {
  return { N, C, H, W, K, R, S, strideH: sh, strideW: sw, padH: ph, padW: pw,
    OH: convOutSize(H, R, sh, ph), OW: convOutSize(W, S, sw, pw) };
}

const CONV_SHAPES: [string, ConvGeom][] = [
  ['model L1 1->32 28x28 s1 p1', geom(2, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1)],
  ['model L2 32->64 28->14 s2', geom(2, 32, 28, 28, 64, 3, 3, 2, 2, 1, 1)],
  ['model L3 64->64 14->7 s2', geom(3, 64, 14, 14, 64, 3, 3, 2, 2, 1, 1)],
  ['odd 3->5 7x9 r3s2 s(2,1) p(1,0)', geom(3, 3, 7, 9, 5, 3, 2, 2, 1, 1, 0)],
  ['5x5 p2 single image', geom(1, 2, 5, 5, 3, 5, 5, 1, 1, 2, 2)],
  ['1x1 stride 3', geom(5, 4, 11, 10, 7, 1, 1, 3, 3, 0, 0)],
  ['k4 s2 p1', geom(2, 3, 6, 6, 6, 4, 4, 2, 2, 1, 1)],
  ['odd channels 13->9 stride 2 13x13', geom(4, 13, 13, 13, 9, 3, 3, 2, 2, 1, 1)],
  ['1 channel 3x3 stride (2,1) 9x13', geom(2, 1, 9, 13, 5, 3, 3, 2, 1, 0, 1)],
  ['1 channel 3x3 narrow 5x3', geom(1, 1, 5, 3, 4, 3, 3, 1, 1, 1, 1)],
  ['1 channel 3x3 padding 2, 6 channels, 7x19', geom(3, 1, 7, 19, 6, 3, 3, 1, 1, 2, 2)],
  ['1 channel 3x3 padding 0, 3 channels, 10x17', geom(2, 1, 10, 17, 3, 3, 3, 1, 1, 0, 0)],
];

const GEMM_SHAPES: [number, number, number][] = [
  [1, 1, 1], [5, 7, 3], [16, 16, 16], [33, 17, 65], [64, 100, 30], [7, 300, 9], [130, 9, 5], [4, 8, 0],
  [64, 32, 256], [2, 4, 12], [10, 36, 8],
  // at most 4 columns (the model's Linear(3136, 2) and Linear(2, 3136) and their gradients): the small-N path
  [64, 2, 300], [50, 2, 64], [13, 3, 37], [7, 1, 16], [6, 4, 33],
  // at most 4 rows or a K of at most 4, 16 columns or more (Linear(2, 3136) forward, the bias and weight
  // gradients): the rows path, 16 columns at a time and a tail
  [2, 3136, 64], [1, 37, 64], [64, 50, 2], [3, 16, 5], [4, 100, 70], [20, 16, 4],
];

const ACTS: Act[] = [
  { kind: 'none', slope: 0 }, { kind: 'relu', slope: 0 }, { kind: 'leaky', slope: 0.2 },
  { kind: 'tanh', slope: 0 }, { kind: 'sigmoid', slope: 0 },
  // slopes outside [0, 1] take the kernels' other leaky loop (in [0, 1]: max(v, v * slope))
  { kind: 'leaky', slope: 1.5 },
];

let createWasmBackend: typeof import('../src/engine/kernels/wasm/node.js').createWasmBackend;

beforeAll(async () => {
  if (!existsSync(`${root}/build/wasm/kernels.wasm`) || !existsSync(`${root}/build/wasm/kernels-relaxed.wasm`))
    execFileSync(process.execPath, [`${root}/tools/build-wasm.mjs`], { stdio: 'inherit' });
  ({ createWasmBackend } = await import('../src/engine/kernels/wasm/node.js'));
});

/** Copies `src` into an array of `b` (in wasm memory) or a plain Float32Array. */
function put(b: Backend, src: Float32Array, inMem: boolean): Float32Array {
  if (!inMem) return src.slice();
  const a = b.alloc(src.length);
  a.set(src);
  return a;
}

for (const cfg of [
  { threads: 1, relaxed: true }, { threads: 2, relaxed: true },
  { threads: 1, relaxed: false }, { threads: 2, relaxed: false },
]) {
  describe(`wasm backend, ${cfg.threads} thread(s), ${cfg.relaxed ? 'relaxed' : 'plain'} SIMD`, () => {
    let b: WasmBackend;
    beforeAll(async () => {
      b = await createWasmBackend({ threads: cfg.threads, noRelaxed: !cfg.relaxed });
    });
    afterAll(() => b?.dispose());

    it('loads the requested build and thread count', () => {
      expect(b.name).toBe('wasm');
      expect(b.threads).toBe(cfg.threads);
      // Node >= 20 runs relaxed SIMD (behind a flag that node.ts sets before compiling)
      expect(b.relaxed).toBe(cfg.relaxed);
    });

    for (const inMem of [true, false]) {
      const where = inMem ? 'wasm memory' : 'plain arrays';

      it(`mseLoss writes loss.ts's gradient bit for bit and its loss to the last bits (${where})`, () => {
        let seed = 50;
        for (const n of [1, 7, 64 * 784 + 3]) for (const scale of [1, 0.37]) {
          const Y = rand(n, seed++), T = rand(n, seed++);
          const want = new Float32Array(n), lw = mseLoss(Y, T, n, want, scale);
          const y = put(b, Y, inMem), t = put(b, T, inMem), g = put(b, new Float32Array(n), inMem);
          const lg = mseLoss(y, t, n, g, scale, b);
          expect(Array.from(g), `n ${n} scale ${scale}`).toEqual(Array.from(want));
          expect(Math.abs(lg - lw)).toBeLessThanOrEqual(1e-12 * lw);
          if (inMem) { b.free(y); b.free(t); b.free(g); }
        }
      });

      it(`gemm matches the reference (${where})`, () => {
        let seed = 1;
        for (const [M, N, K] of GEMM_SHAPES)
          for (const tA of [false, true]) for (const tB of [false, true])
            for (const [alpha, beta] of [[1, 0], [0.5, 1], [-2, 0.25]]) {
              const A = rand(M * K, seed++), B = rand(K * N, seed++), C0 = rand(M * N, seed++);
              const want = C0.slice();
              ref.gemm(tA, tB, M, N, K, alpha, A, B, beta, want);
              const a = put(b, A, inMem), bb = put(b, B, inMem), c = put(b, C0, inMem);
              b.gemm(tA, tB, M, N, K, alpha, a, bb, beta, c);
              expectClose(c, want, `gemm ${M}x${N}x${K} tA=${tA} tB=${tB} a=${alpha} b=${beta}`);
              if (inMem) { b.free(a); b.free(bb); b.free(c); }
            }
      });

      for (const [name, g] of CONV_SHAPES) {
        it(`conv2d / backward data / backward weight: ${name} (${where})`, () => {
          const { N, C, H, W, K, R, S, OH, OW } = g;
          const xs = rand(N * C * H * W, 11), ws = rand(K * C * R * S, 12, 0.3), bs = rand(K, 13);
          const dys = rand(N * K * OH * OW, 14);
          // forward
          const yWant = new Float32Array(N * K * OH * OW);
          ref.conv2d(g, xs, ws, bs, yWant);
          const x = put(b, xs, inMem), w = put(b, ws, inMem), bias = put(b, bs, inMem);
          const y = put(b, rand(yWant.length, 99), inMem);
          b.conv2d(g, x, w, bias, y);
          expectClose(y, yWant, `conv2d ${name}`);
          const yNoBias = new Float32Array(yWant.length);
          ref.conv2d(g, xs, ws, null, yNoBias);
          b.conv2d(g, x, w, null, y);
          expectClose(y, yNoBias, `conv2d no bias ${name}`);
          // backward data
          const dxWant = new Float32Array(N * C * H * W);
          ref.conv2dBackwardData(g, dys, ws, dxWant);
          const dy = put(b, dys, inMem), dx = put(b, rand(dxWant.length, 98), inMem);
          b.conv2dBackwardData(g, dy, w, dx);
          expectClose(dx, dxWant, `conv2dBackwardData ${name}`);
          // backward weight
          const dwWant = new Float32Array(K * C * R * S), dbWant = new Float32Array(K);
          ref.conv2dBackwardWeight(g, xs, dys, dwWant, dbWant);
          const dw = put(b, rand(dwWant.length, 97), inMem), db = put(b, rand(K, 96), inMem);
          b.conv2dBackwardWeight(g, x, dy, dw, db);
          expectClose(dw, dwWant, `conv2dBackwardWeight dw ${name}`);
          expectClose(db, dbWant, `conv2dBackwardWeight db ${name}`);
          b.conv2dBackwardWeight(g, x, dy, dw, null);
          expectClose(dw, dwWant, `conv2dBackwardWeight (no db) ${name}`);
          if (inMem) for (const a of [x, w, bias, y, dy, dx, dw, db]) b.free(a);
        });
      }

      it(`batch norm (train, backward) and channel affine with fused activations (${where})`, () => {
        let seed = 100;
        for (const [N, C, HW] of [[4, 5, 49], [2, 3, 7], [8, 32, 196], [3, 2, 1], [16, 64, 49]])
          for (const act of ACTS) {
            const n = N * C * HW;
            const xs = rand(n, seed++, 2), gs = rand(C, seed++), bs = rand(C, seed++), dys = rand(n, seed++);
            for (let i = 0; i < n; i++) xs[i] += 0.5; // non-zero mean
            const yW = new Float32Array(n), mW = new Float32Array(C), iW = new Float32Array(C);
            ref.batchNormTrain(N, C, HW, xs, gs, bs, 1e-5, act, yW, mW, iW);
            const x = put(b, xs, inMem), g = put(b, gs, inMem), be = put(b, bs, inMem);
            const y = put(b, new Float32Array(n), inMem), m = put(b, new Float32Array(C), inMem), is = put(b, new Float32Array(C), inMem);
            b.batchNormTrain(N, C, HW, x, g, be, 1e-5, act, y, m, is);
            const tag = `${N}x${C}x${HW} ${act.kind}`;
            expectClose(y, yW, `batchNormTrain y ${tag}`);
            expectClose(m, mW, `batchNormTrain mean ${tag}`);
            expectClose(is, iW, `batchNormTrain invstd ${tag}`);

            const dxW = new Float32Array(n), dgW = new Float32Array(C), dbW = new Float32Array(C);
            ref.batchNormBackward(N, C, HW, xs, yW, dys, gs, mW, iW, act, dxW, dgW, dbW);
            const dy = put(b, dys, inMem), dx = put(b, new Float32Array(n), inMem);
            const dg = put(b, new Float32Array(C), inMem), db = put(b, new Float32Array(C), inMem);
            // use the reference's y/mean/invstd so that only the backward is compared
            const yr = put(b, yW, inMem), mr = put(b, mW, inMem), ir = put(b, iW, inMem);
            b.batchNormBackward(N, C, HW, x, yr, dy, g, mr, ir, act, dx, dg, db);
            expectClose(dx, dxW, `batchNormBackward dx ${tag}`);
            expectClose(dg, dgW, `batchNormBackward dgamma ${tag}`);
            expectClose(db, dbW, `batchNormBackward dbeta ${tag}`);

            // with the forward's beta, none / relu / leaky take the activation's sign from x by the forward's
            // own arithmetic: y is not read (NaN here), and the result is the backward of this forward's y
            const yOwn = Float32Array.from(y), mOwn = Float32Array.from(m), isOwn = Float32Array.from(is);
            const dxBW = new Float32Array(n), dgBW = new Float32Array(C), dbBW = new Float32Array(C);
            ref.batchNormBackward(N, C, HW, xs, yOwn, dys, gs, mOwn, isOwn, act, dxBW, dgBW, dbBW);
            const signOnly = act.kind === 'none' || act.kind === 'relu' || act.kind === 'leaky';
            const yB = put(b, signOnly ? new Float32Array(n).fill(NaN) : yOwn, inMem);
            const dxB = put(b, new Float32Array(n), inMem), dgB = put(b, new Float32Array(C), inMem), dbB = put(b, new Float32Array(C), inMem);
            b.batchNormBackward(N, C, HW, x, yB, dy, g, m, is, act, dxB, dgB, dbB, undefined, be);
            expectClose(dxB, dxBW, `batchNormBackward with beta dx ${tag}`);
            expectClose(dgB, dgBW, `batchNormBackward with beta dgamma ${tag}`);
            expectClose(dbB, dbBW, `batchNormBackward with beta dbeta ${tag}`);
            if (inMem) for (const a of [yB, dxB, dgB, dbB]) b.free(a);

            const afW = new Float32Array(n);
            ref.channelAffine(N, C, HW, xs, gs, bs, act, afW);
            const af = put(b, new Float32Array(n), inMem);
            b.channelAffine(N, C, HW, x, g, be, act, af);
            expectClose(af, afW, `channelAffine ${tag}`);
            if (inMem) for (const a of [x, g, be, y, m, is, dy, dx, dg, db, yr, mr, ir, af]) b.free(a);
          }
      });

      it(`channelSums: the per-channel sums of composite.ts's loop, over every plane size's tail (${where})`, () => {
        let seed = 700;
        for (const [N, C, HW] of [[1, 1, 1], [3, 5, 7], [2, 3, 12], [64, 32, 784], [64, 1, 784], [5, 64, 49]] as const) {
          const xs = rand(N * C * HW, seed++, 2), want = new Float32Array(C);
          channelSums(ref, N, C, HW, xs, want);
          const x = put(b, xs, inMem), out = put(b, new Float32Array(C).fill(NaN), inMem);
          b.channelSums!(N, C, HW, x, out);
          expectClose(out, want, `channelSums [${N},${C},${HW}]`);
          if (inMem) { b.free(x); b.free(out); }
        }
        expect(() => b.channelSums!(1, 16, 1, new Float32Array(16), new Float32Array(16), 'blocked')).toThrow(/no blocked layout/);
      });

      it(`activation and its backward, in place too (${where})`, () => {
        let seed = 500;
        for (const [n, scale] of [[1, 3], [7, 3], [1000, 3], [70001, 3], [999, 120], [50, 0.01]])
          for (const act of ACTS) {
            const xs = rand(n, seed++, scale), dys = rand(n, seed++);
            const yW = new Float32Array(n);
            ref.activation(act, n, xs, yW);
            const x = put(b, xs, inMem), y = put(b, new Float32Array(n), inMem);
            b.activation(act, n, x, y);
            expectClose(y, yW, `activation ${act.kind} n=${n}`);
            const dxW = new Float32Array(n);
            ref.activationBackward(act, n, xs, yW, dys, dxW);
            const dy = put(b, dys, inMem), dx = put(b, new Float32Array(n), inMem);
            b.activationBackward(act, n, x, y, dy, dx);
            expectClose(dx, dxW, `activationBackward ${act.kind} n=${n}`);
            // in place: dx = dy, y = x
            b.activationBackward(act, n, x, y, dy, dy);
            expectClose(dy, dxW, `activationBackward in place ${act.kind} n=${n}`);
            b.activation(act, n, x, x);
            expectClose(x, yW, `activation in place ${act.kind} n=${n}`);
            if (inMem) for (const a of [x, y, dy, dx]) b.free(a);
          }
      });
    }

    it('alloc returns zero-filled views in wasm memory that survive memory growth', () => {
      const a = b.alloc(1000);
      expect(a.every(v => v === 0)).toBe(true);
      expect(b.owns(a)).toBe(true);
      for (let i = 0; i < a.length; i++) a[i] = i;
      const before = b.memory.buffer.byteLength;
      const big = b.alloc(16 * 1024 * 1024); // 64 MiB forces a grow
      expect(b.memory.buffer.byteLength).toBeGreaterThan(before);
      expect(a.length).toBe(1000);
      expect(a[999]).toBe(999);
      a[5] = 42;
      big[big.length - 1] = 7;
      // a kernel still works on the old view
      const out = b.alloc(1000);
      b.activation({ kind: 'relu', slope: 0 }, 1000, a, out);
      expect(out[5]).toBe(42);
      expect(out[999]).toBe(999);
      b.free(big); b.free(a); b.free(out);
      const again = b.alloc(1000);
      expect(again.every(v => v === 0)).toBe(true);
      b.free(again);
      expect(() => b.free(new Float32Array(4))).toThrow();
    });
  });
}

describe('wasm backend registration', () => {
  it('registers as "wasm" in select.ts', async () => {
    const { createBackend } = await import('../src/engine/kernels/select.js');
    await import('../src/engine/kernels/wasm/node.js');
    const b = await createBackend('wasm', { threads: 2 });
    try {
      expect(b.name).toBe('wasm');
      expect(b.threads).toBe(2);
    } finally { b.dispose?.(); }
  });
});

describe('wasm convolutions share their images among the threads', () => {
  it('give the same bits on 1 and 2 threads, call after call, whichever thread takes which image', async () => {
    const { createWasmBackend } = await import('../src/engine/kernels/wasm/node.js');
    const one = await createWasmBackend({ threads: 1 }), two = await createWasmBackend({ threads: 2 });
    try {
      for (const g of [geom(7, 32, 28, 28, 64, 3, 3, 2, 2, 1, 1), geom(9, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1), geom(5, 64, 14, 14, 64, 3, 3, 2, 2, 1, 1)]) {
        const { N, C, H, W, K, R, S, OH, OW } = g;
        const xs = rand(N * C * H * W, 21), ws = rand(K * C * R * S, 22, 0.3), bs = rand(K, 23), dys = rand(N * K * OH * OW, 24);
        const run = (b: WasmBackend) => {
          const y = new Float32Array(N * K * OH * OW), dx = new Float32Array(N * C * H * W);
          b.conv2d(g, xs, ws, bs, y);
          b.conv2dBackwardData(g, dys, ws, dx);
          return [y, dx];
        };
        const [y1, dx1] = run(one);
        for (let rep = 0; rep < 5; rep++) {
          const [y2, dx2] = run(two);
          expect(Buffer.compare(Buffer.from(y2.buffer), Buffer.from(y1.buffer)), `forward N=${N} C=${C}`).toBe(0);
          expect(Buffer.compare(Buffer.from(dx2.buffer), Buffer.from(dx1.buffer)), `backward data N=${N} C=${C}`).toBe(0);
        }
      }
    } finally { one.dispose(); two.dispose(); }
  }, 120_000);
});

describe('wasm kernels as compiled', () => {
  // Written as one loop with a test of the activation that folds away where it is inlined with a constant, the six
  // copies were merged by Binaryen back into one loop testing the activation for every vector (the batch-norm
  // forward at 64x32x28x28 spent half its time there). Each activation's loops must stay its own.
  it('every activation has loops of its own in affineAct and opActBwd (no test of the kind per vector)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latentlab-wat-'));
    try {
      const { buildWasm } = await import('../tools/build-wasm.mjs');
      await buildWasm({ outDir: dir, wat: true, only: ['kernels.wasm'], generate: false });
      const wat = readFileSync(join(dir, 'kernels.wat'), 'utf8');
      const body = (name: string): string => {
        const start = wat.indexOf(` (func $assembly/kernels/${name} `);
        expect(start, `${name} in the compiled module`).toBeGreaterThanOrEqual(0);
        const end = wat.indexOf('\n (func ', start + 1);
        return wat.slice(start, end < 0 ? undefined : end);
      };
      const loops = (name: string): number => body(name).split('\n').filter((l) => /^\s*loop \$/.test(l)).length;
      // six activations (LeakyReLU twice: a slope in [0, 1] or not), each with its 8-lane and 4-lane loops at least;
      // opActBwd: five, each with its 4-lane loop at least
      expect(loops('affineAct')).toBeGreaterThanOrEqual(12);
      expect(loops('opActBwd')).toBeGreaterThanOrEqual(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
