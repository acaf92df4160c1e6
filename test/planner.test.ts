/**
 * The planner (src/engine/kernels/planner.ts) on its own: which layers fuse, where activations stay blocked,
 * where it converts, and what it passes to layers that did not ask for options. The numerics of blocked plans
 * are tested against NCHW ones in native-blocked.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/engine/kernels/index.js';
import { planChain, type Step } from '../src/engine/kernels/planner.js';
import { ReferenceBackend } from '../src/engine/kernels/reference.js';
import {
  BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, Module, Sequential, Sigmoid, Tanh, Unflatten,
} from '../src/engine/nn/index.js';
import { Tensor } from '../src/engine/tensor.js';
import { Rng } from '../src/engine/rng.js';
import { parityBackends } from './helpers.js';

const backends = await parityBackends();

/** A backend that only claims the blocked layout (planChain reads nothing else). */
const blockedBackend = Object.assign(new ReferenceBackend(), { channelBlock: 16 }) as Backend;

function describeSteps(steps: Step[]): string[] {
  return steps.map((s) => (s.kind === 'reorder' ? `reorder->${s.to}` :
    `${s.index}${s.fused ? '+' : ''}${s.opts?.layout === 'blocked' ? ' blocked' : ''}${s.opts?.act ? ` act=${s.opts.act.kind}` : ''}` +
    `${s.opts?.skipBias ? ' skipBias' : ''}${s.opts?.inputBias ? ' inputBias' : ''}${s.opts?.inPlace ? ' inPlace' : ''}` +
    `${s.opts?.inFeatures ? ` in=${s.opts.inFeatures}` : ''}${s.opts?.outFeatures ? ` out=${s.opts.outFeatures}` : ''}` +
    `${s.opts?.statsOnly ? ' statsOnly' : ''}${s.backwardInNext ? ' backwardInNext' : ''}${s.opts?.preNorm ? ' preNorm' : ''}` +
    `${s.opts?.postNorm ? ' postNorm' : ''}${s.opts?.postNormBackward ? ' +backward' : ''}${s.opts?.normApplied ? ' normApplied' : ''}` +
    `${s.backwardInPrev ? ' backwardInPrev' : ''}`));
}

describe('planner', () => {
  const model = (): Module[] => [
    new Conv2d(1, 32, 3), new BatchNorm2d(32), new LeakyReLU(),
    new Flatten(), new Linear(32 * 4, 3), new Linear(3, 64 * 4), new Unflatten(1, [64, 2, 2]), new LeakyReLU(),
    new ConvTranspose2d(64, 16, 3), new Tanh(),
  ];

  it('fuses batch-norm with the activation after it, and only then', () => {
    const plan = planChain(model(), new ReferenceBackend(), { fuse: true, blocked: true });
    expect(describeSteps(plan.steps)).toEqual(['0', '1+ act=leaky inPlace', '3', '4', '5', '6', '7 inPlace', '8', '9 inPlace']);
    const unfused = planChain(model(), new ReferenceBackend(), { fuse: false, blocked: true });
    expect(describeSteps(unfused.steps)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // a LeakyReLU with a negative slope is not fusable (its input's sign is not its output's)
    const neg = planChain([new BatchNorm2d(4), new LeakyReLU(-0.5)], new ReferenceBackend(), { fuse: true, blocked: true });
    expect(describeSteps(neg.steps)).toEqual(['0', '1']);
  });

  it('keeps activations blocked between layers that take them, through Flatten and Unflatten next to a Linear, converting at the end', () => {
    const plan = planChain(model(), blockedBackend, { fuse: true, blocked: true });
    expect(describeSteps(plan.steps)).toEqual([
      '0 blocked', '1+ act=leaky inPlace', '3 blocked', '4 in=32', '5 out=64', '6 blocked', '7 inPlace', '8 blocked', '9 inPlace', 'reorder->nchw',
    ]);
    expect(plan.layouts).toEqual(['blocked', 'blocked', 'blocked', 'blocked', 'nchw', 'blocked', 'blocked', 'blocked', 'blocked', 'blocked']);
    const plain = planChain(model(), blockedBackend, { fuse: true, blocked: false });
    expect(plain.steps.every((s) => s.kind === 'layer')).toBe(true);
    expect(plain.layouts.every((l) => l === 'nchw')).toBe(true);
  });

  it('converts before a Flatten and after an Unflatten that have no Linear beside them', () => {
    const plan = planChain([new Conv2d(1, 16, 3), new BatchNorm2d(16), new Flatten(), new Tanh(), new Unflatten(1, [16, 2, 2]),
      new Conv2d(16, 16, 3)], blockedBackend, { fuse: true, blocked: true });
    expect(describeSteps(plan.steps)).toEqual(['0 blocked', '1 inPlace', 'reorder->nchw', '2', '3', '4', 'reorder->blocked', '5 blocked', 'reorder->nchw']);
    // a Linear before an Unflatten whose output stays NCHW (a layer that takes only NCHW follows) writes PyTorch's order
    class NchwOnly extends Module {
      forward(x: Tensor): Tensor { return x; }
      backward(dy: Tensor): Tensor { return dy; }
    }
    const nchw = planChain([new Linear(3, 64), new Unflatten(1, [16, 2, 2]), new NchwOnly()], blockedBackend, { fuse: true, blocked: true });
    expect(describeSteps(nchw.steps)).toEqual(['0', '1', '2']);
    // a Flatten that keeps more than one dimension after the batch cannot hand on blocked features
    const partial = planChain([new Conv2d(1, 16, 3), new Flatten(2), new Linear(4, 3)], blockedBackend, { fuse: true, blocked: true });
    expect(describeSteps(partial.steps)).toEqual(['0 blocked', 'reorder->nchw', '1', '2']);
  });

  it('keeps NCHW when the channels are not a multiple of the block, or a layer that takes only NCHW follows', () => {
    const odd = planChain([new Conv2d(1, 8, 3), new Tanh()], blockedBackend, { fuse: true, blocked: true });
    expect(odd.layouts).toEqual(['nchw', 'nchw']);
    class Probe extends Module {
      forward(x: Tensor): Tensor { return x; }
      backward(dy: Tensor): Tensor { return dy; }
    }
    const probe = planChain([new Conv2d(1, 16, 3), new Sigmoid(), new Probe()], blockedBackend, { fuse: true, blocked: true });
    expect(probe.steps.every((s) => s.kind === 'layer')).toBe(true);
    expect(probe.layouts).toEqual(['nchw', 'nchw', 'nchw']);
  });

  it('calls a module that declared nothing with its input alone, forward and backward', () => {
    const calls: number[] = [];
    class Custom extends Module {
      forward(x: Tensor, ...rest: unknown[]): Tensor { calls.push(rest.length); return x; }
      backward(dy: Tensor, ...rest: unknown[]): Tensor { calls.push(rest.length); return dy; }
    }
    const s = new Sequential(new BatchNorm2d(2), new Custom(), new Tanh());
    const y = s.forward(new Tensor([2, 2, 1, 1], Float32Array.from([1, 2, 3, 5])));
    s.backward(new Tensor(y.shape, new Float32Array(4).fill(1)));
    expect(calls).toEqual([0, 0]);
  });

  it('folds a ConvTranspose2d bias into the batch-norm after it, only in training and only with a bias', () => {
    const chain = (bias = true): Module[] => [new ConvTranspose2d(4, 16, 3, { bias }), new BatchNorm2d(16), new LeakyReLU(), new ConvTranspose2d(16, 1, 3), new Tanh()];
    const layers = chain();
    const plan = planChain(layers, new ReferenceBackend(), { fuse: true, blocked: true });
    expect(describeSteps(plan.steps)).toEqual(['0 skipBias', '1+ act=leaky inputBias inPlace', '3', '4 inPlace']);
    const step1 = plan.steps[1];
    expect(step1.kind === 'layer' && step1.opts?.inputBias).toBe((layers[0] as ConvTranspose2d).bias!.data);
    expect(describeSteps(planChain(chain(false), new ReferenceBackend(), { fuse: true, blocked: true }).steps)).toEqual(['0', '1+ act=leaky inPlace', '3', '4 inPlace']);
    expect(describeSteps(planChain(chain(), new ReferenceBackend(), { fuse: false, blocked: true }).steps)).toEqual(['0', '1', '2', '3', '4']);
    const inEval = chain();
    for (const m of inEval) m.eval();
    expect(describeSteps(planChain(inEval, new ReferenceBackend(), { fuse: true, blocked: true }).steps)).toEqual(['0', '1+ act=leaky inPlace', '3', '4 inPlace']);
  });

  it('leaves a batch-norm in training to the ConvTranspose2d after it when the backend fuses the pair, and only then', () => {
    // a backend that claims the blocked layout and the fusion for what the native one takes (one output channel, 3x3)
    const asked: string[] = [];
    const fusing = Object.assign(new ReferenceBackend(), {
      channelBlock: 16,
      fusesNormConvTranspose: (s: { C: number; K: number; R: number }, act: { kind: string }) => {
        asked.push(`C=${s.C} K=${s.K} R=${s.R} ${act.kind}`);
        return s.C === 1 && act.kind !== 'tanh';
      },
    }) as unknown as Backend;
    const chain = (act: Module = new LeakyReLU(), out = 1): Module[] =>
      [new ConvTranspose2d(4, 16, 3, { bias: false }), new BatchNorm2d(16), act, new ConvTranspose2d(16, out, 3, { padding: 1 }), new Tanh()];
    const steps = (layers: Module[], opts = { fuse: true, blocked: true }, be = fusing): string[] => describeSteps(planChain(layers, be, opts).steps);
    // the batch-norm computes its statistics only (no longer in place: it writes nothing), the convolution applies it
    expect(steps(chain())).toEqual(['0 blocked', '1+ act=leaky statsOnly backwardInNext', '3 preNorm', '4 inPlace']);
    expect(asked).toEqual(['C=1 K=16 R=3 leaky']);
    const layers = chain(), plan = planChain(layers, fusing, { fuse: true, blocked: true });
    const convStep = plan.steps[2];
    expect(convStep.kind === 'layer' && convStep.opts?.preNorm?.args().gamma).toBe((layers[1] as BatchNorm2d).weight.data);
    // not when the backend declines (tanh here, or more than one output channel), nor on one without the fusion
    expect(steps(chain(new Tanh()))).toEqual(['0 blocked', '1+ act=tanh inPlace', '3', '4 inPlace']);
    expect(steps(chain(new LeakyReLU(), 2))).toEqual(['0 blocked', '1+ act=leaky inPlace', '3', '4 inPlace']);
    expect(steps(chain(), undefined, blockedBackend)).toEqual(['0 blocked', '1+ act=leaky inPlace', '3', '4 inPlace']);
    // not unfused, not on NCHW activations, not in eval mode, not when the convolution's input gradient is not needed
    expect(steps(chain(), { fuse: false, blocked: true })).toEqual(['0 blocked', '1', '2', '3', '4']);
    expect(steps(chain(), { fuse: true, blocked: false })).toEqual(['0', '1+ act=leaky inPlace', '3', '4 inPlace']);
    const inEval = chain();
    for (const m of inEval) m.eval();
    expect(steps(inEval)).toEqual(['0 blocked', '1+ act=leaky inPlace', '3', '4 inPlace']);
    const noGrad = chain();
    (noGrad[3] as ConvTranspose2d).needsInputGrad = false;
    expect(steps(noGrad)).toEqual(['0 blocked', '1+ act=leaky inPlace', '3', '4 inPlace']);
    // without an activation between them too
    expect(steps([new ConvTranspose2d(4, 16, 3, { bias: false }), new BatchNorm2d(16), new ConvTranspose2d(16, 1, 3, { padding: 1 })]))
      .toEqual(['0 blocked', '1 statsOnly backwardInNext', '2 preNorm']);
  });

  it('lets a convolution from one channel apply the batch-norm after it when the backend fuses the pair, and only then', () => {
    const asked: string[] = [];
    const fusing = Object.assign(new ReferenceBackend(), {
      channelBlock: 16,
      fusesConvNorm: (s: { C: number; K: number; R: number }, act: { kind: string }) => {
        asked.push(`C=${s.C} K=${s.K} R=${s.R} ${act.kind}`);
        return s.C === 1 && act.kind !== 'tanh';
      },
    }) as unknown as Backend;
    const chain = (act: Module = new LeakyReLU(), C = 1): Module[] => [new Conv2d(C, 16, 3, { padding: 1 }), new BatchNorm2d(16), act, new Conv2d(16, 16, 3)];
    const steps = (layers: Module[], opts = { fuse: true, blocked: true }, be = fusing): string[] => describeSteps(planChain(layers, be, opts).steps);
    expect(steps(chain())).toEqual(['0 blocked postNorm', '1+ act=leaky normApplied', '3 blocked', 'reorder->nchw']);
    expect(asked).toEqual(['C=1 K=16 R=3 leaky']);
    const layers = chain(), plan = planChain(layers, fusing, { fuse: true, blocked: true });
    const convStep = plan.steps[0];
    const args = convStep.kind === 'layer' ? convStep.opts?.postNorm?.args() : undefined;
    expect(args?.gamma).toBe((layers[1] as BatchNorm2d).weight.data);
    expect(args?.eps).toBe(1e-5);
    // without an activation between them too; not when the backend declines (tanh; two channels in) or cannot
    expect(steps([new Conv2d(1, 16, 3), new BatchNorm2d(16)])).toEqual(['0 blocked postNorm', '1 normApplied', 'reorder->nchw']);
    expect(steps(chain(new Tanh()))).toEqual(['0 blocked', '1+ act=tanh inPlace', '3 blocked', 'reorder->nchw']);
    expect(steps(chain(new LeakyReLU(), 2))).toEqual(['0 blocked', '1+ act=leaky inPlace', '3 blocked', 'reorder->nchw']);
    expect(steps(chain(), undefined, blockedBackend)).toEqual(['0 blocked', '1+ act=leaky inPlace', '3 blocked', 'reorder->nchw']);
    // not unfused, not in eval mode, not when y would not keep x (x is never stored); a LeakyReLU with a negative
    // slope stays a layer of its own after the pair
    expect(steps(chain(), { fuse: false, blocked: true })).toEqual(['0 blocked', '1', '2', '3 blocked', 'reorder->nchw']);
    expect(steps(chain(), { fuse: true, blocked: false })).toEqual(['0 postNorm', '1+ act=leaky normApplied', '3']);
    const inEval = chain();
    for (const m of inEval) m.eval();
    // (in place as asked: the batch-norm itself decides, in training only and when y keeps x)
    expect(steps(inEval)).toEqual(['0 blocked', '1+ act=leaky inPlace', '3 blocked', 'reorder->nchw']);
    const far = chain();
    (far[1] as BatchNorm2d).bias.data[2] = 20;
    expect(steps(far)).toEqual(['0 blocked', '1+ act=leaky inPlace', '3 blocked', 'reorder->nchw']);
    expect(steps(chain(new LeakyReLU(-0.5)))).toEqual(['0 blocked postNorm', '1 normApplied', '2', '3 blocked', 'reorder->nchw']);
  });

  it('lets a first convolution compute the backward of the batch-norm it applies when the backend fuses that too, and only then', () => {
    const fusing = (backward: boolean): Backend => Object.assign(new ReferenceBackend(), {
      channelBlock: 16,
      fusesConvNorm: (s: { C: number }) => s.C === 1,
      ...(backward ? { fusesConvNormBackward: (s: { K: number }, act: { kind: string }) => s.K === 16 && act.kind === 'leaky' } : {}),
    }) as unknown as Backend;
    const chain = (first: boolean, K = 16, act: Module = new LeakyReLU()): Module[] => {
      const conv = new Conv2d(1, K, 3, { padding: 1 });
      conv.needsInputGrad = !first;
      return [conv, new BatchNorm2d(K), act, new Conv2d(K, 16, 3)];
    };
    const steps = (layers: Module[], be = fusing(true)): string[] => describeSteps(planChain(layers, be, { fuse: true, blocked: true }).steps);
    expect(steps(chain(true))).toEqual(['0 blocked postNorm +backward', '1+ act=leaky normApplied backwardInPrev', '3 blocked', 'reorder->nchw']);
    // not when the convolution's input needs a gradient, nor when the backend does not take the shape, the activation
    // or the backward at all
    expect(steps(chain(false))).toEqual(['0 blocked postNorm', '1+ act=leaky normApplied', '3 blocked', 'reorder->nchw']);
    expect(steps(chain(true, 32))).toEqual(['0 blocked postNorm', '1+ act=leaky normApplied', '3 blocked', 'reorder->nchw']);
    expect(steps([chain(true)[0], new BatchNorm2d(16)])).toEqual(['0 blocked postNorm', '1 normApplied', 'reorder->nchw']);
    expect(steps(chain(true), fusing(false))).toEqual(['0 blocked postNorm', '1+ act=leaky normApplied', '3 blocked', 'reorder->nchw']);
  });

  it('lets a batch-norm write over the output of the convolution before it, and nothing else', () => {
    const ref = new ReferenceBackend();
    const steps = (layers: Module[], fuse = true): string[] => describeSteps(planChain(layers, ref, { fuse, blocked: true }).steps);
    expect(steps([new Conv2d(1, 16, 3), new BatchNorm2d(16), new Tanh()])).toEqual(['0', '1+ act=tanh inPlace']);
    expect(steps([new ConvTranspose2d(4, 16, 3, { bias: false }), new BatchNorm2d(16)])).toEqual(['0', '1 inPlace']);
    // not the chain's input (the caller's), not after a layer whose output its backward reads or is not its own
    expect(steps([new BatchNorm2d(16), new LeakyReLU()])).toEqual(['0+ act=leaky']);
    expect(steps([new Conv2d(1, 16, 3), new Tanh(), new BatchNorm2d(16)])).toEqual(['0', '1 inPlace', '2']);
    expect(steps([new Flatten(), new BatchNorm2d(16)])).toEqual(['0', '1']);
    // through views of a Linear's output (its backward reads its input, not its output)
    expect(steps([new Linear(4, 64), new Unflatten(1, [16, 2, 2]), new BatchNorm2d(16)])).toEqual(['0', '1', '2 inPlace']);
    // not unfused (the reference plan)
    expect(steps([new Conv2d(1, 16, 3), new BatchNorm2d(16), new LeakyReLU()], false)).toEqual(['0', '1', '2']);
  });

  it('runs batch-norm in place only on a backend that declares it (batchNormInPlace)', () => {
    class Plain extends ReferenceBackend { override readonly batchNormInPlace = false; }
    for (const [be, want] of [[new ReferenceBackend(), true], [new Plain(), false]] as const) {
      const r = new Rng(1);
      const s = new Sequential(new Conv2d(1, 16, 3, { rng: r }), new BatchNorm2d(16), new LeakyReLU()).to(be);
      const x = new Tensor([2, 1, 6, 6], Float32Array.from({ length: 72 }, () => r.normal()));
      const args: unknown[][] = [];
      const orig = be.batchNormBackward.bind(be);
      be.batchNormBackward = (...a: Parameters<typeof orig>) => { args.push(a); orig(...a); };
      const y = s.forward(x);
      s.backward(new Tensor(y.shape, new Float32Array(y.size).fill(1)));
      expect(args.length).toBe(1);
      expect(args[0][3] === null, be.constructor.name).toBe(want);
    }
  });

  for (const { name, backend } of backends) it(`gives the same output, gradients and running statistics with batch-norm in place, and falls back where it must (${name})`, () => {
    const rng = new Rng(5);
    const x = new Tensor([4, 3, 9, 9], Float32Array.from({ length: 4 * 3 * 81 }, () => rng.normal()));
    const dy = Float32Array.from({ length: 4 * 16 * 5 * 5 }, () => rng.normal());
    type Setup = (bn: BatchNorm2d) => void;
    const run = (fuse: boolean, act: Module, setup: Setup = () => {}) => {
      const r = new Rng(9);
      const s = new Sequential(new Conv2d(3, 16, 3, { stride: 2, padding: 1, rng: r }), new BatchNorm2d(16), act).to(backend);
      s.fuse = fuse;
      const conv = s.at(0) as Conv2d, bn = s.at(1) as BatchNorm2d;
      bn.weight.data.forEach((_, c, w) => { w[c] = c % 4 === 1 ? -0.5 - c / 16 : 0.5 + c / 16; });
      bn.bias.data.forEach((_, c, b) => { b[c] = (c - 8) / 10; });
      setup(bn);
      // what the kernels were handed: y over x in the forward, and no x in the backward
      const seen = { overX: false, noX: false };
      const be = backend as unknown as Record<string, (...a: unknown[]) => unknown>;
      const train = be.batchNormTrain, bwd = be.batchNormBackward;
      be.batchNormTrain = (...a: unknown[]) => { seen.overX = a[3] === a[8]; return train.apply(backend, a); };
      be.batchNormBackward = (...a: unknown[]) => { seen.noX = a[3] === null; return bwd.apply(backend, a); };
      let y: Float32Array, dx: Float32Array;
      try {
        y = s.forward(x).data.slice();
        dx = s.backward(new Tensor([4, 16, 5, 5], dy.slice())).data.slice();
      } finally { be.batchNormTrain = train; be.batchNormBackward = bwd; }
      return { seen, y, dx, dw: conv.weight.grad.slice(), db: conv.bias!.grad.slice(), dg: bn.weight.grad.slice(),
               dbeta: bn.bias.grad.slice(), rm: bn.runningMean.data.slice(), rv: bn.runningVar.data.slice() };
    };
    const same = (a: ReturnType<typeof run>, b: ReturnType<typeof run>, what: string): void => {
      for (const k of ['y', 'dx', 'dw', 'db', 'dg', 'dbeta', 'rm', 'rv'] as const) {
        // the conv's bias gradient is rounding noise either way (a batch-norm follows): measured on dw's scale
        const scale = Math.max(...Array.from(b[k === 'db' ? 'dw' : k], Math.abs));
        expect(scale, `${what} ${k}`).toBeGreaterThan(0);
        for (let i = 0; i < a[k].length; i++) expect(Math.abs(a[k][i] - b[k][i]), `${what} ${k}[${i}]`).toBeLessThanOrEqual(1e-5 * scale);
      }
    };
    for (const slope of [0.01, 0.3]) {
      const inPlace = run(true, new LeakyReLU(slope)), plain = run(false, new LeakyReLU(slope));
      expect(inPlace.seen, `leaky ${slope}`).toEqual({ overX: true, noX: true });
      expect(plain.seen).toEqual({ overX: false, noX: false });
      same(inPlace, plain, `leaky ${slope}`);
    }
    // a channel whose beta is far from gamma's scale (y no longer holds x to float precision): not in place
    const far: Setup = (bn) => { bn.bias.data[3] = 20 * Math.abs(bn.weight.data[3]); };
    const fallback = run(true, new LeakyReLU(0.01), far);
    expect(fallback.seen).toEqual({ overX: false, noX: false });
    same(fallback, run(false, new LeakyReLU(0.01), far), 'beta far from gamma');
    // an activation that cannot be inverted: fused, not in place
    const tanh = run(true, new Tanh());
    expect(tanh.seen).toEqual({ overX: false, noX: false });
    same(tanh, run(false, new Tanh()), 'tanh');
  });

  for (const { name, backend } of backends) it(`gives the same output, gradients and running statistics with the bias folded, without its two passes (${name})`, () => {
    const build = (): Sequential => {
      const r = new Rng(7);
      return new Sequential(new ConvTranspose2d(3, 16, 3, { stride: 2, padding: 1, outputPadding: 1, rng: r }), new BatchNorm2d(16), new LeakyReLU()).to(backend);
    };
    const rng = new Rng(3);
    const x = new Tensor([4, 3, 5, 5], Float32Array.from({ length: 4 * 3 * 25 }, () => rng.normal()));
    const dy = Float32Array.from({ length: 4 * 16 * 10 * 10 }, () => rng.normal());
    const run = (fuse: boolean) => {
      const s = build();
      s.fuse = fuse;
      const conv = s.at(0) as ConvTranspose2d, bn = s.at(1) as BatchNorm2d;
      // a bias far from zero, so that leaving it out would show in the running mean
      conv.bias!.data.forEach((_, c, b) => { b[c] = c - 8; });
      // the bias add is the backend's channelAffine (the bias gradient's sum is a kernel only on some backends)
      const calls = { channelAffine: 0 };
      const be = backend as unknown as Record<string, (...a: unknown[]) => unknown>;
      const orig = be.channelAffine;
      be.channelAffine = (...a: unknown[]) => { calls.channelAffine++; return orig.apply(backend, a); };
      let y: Float32Array, dx: Float32Array;
      try {
        y = s.forward(x).data.slice();
        dx = s.backward(new Tensor([4, 16, 10, 10], dy.slice())).data.slice();
      } finally { be.channelAffine = orig; }
      return { y, dx, calls, dw: conv.weight.grad.slice(), db: conv.bias!.grad.slice(), dg: bn.weight.grad.slice(),
               dbeta: bn.bias.grad.slice(), rm: bn.runningMean.data.slice(), rv: bn.runningVar.data.slice() };
    };
    const folded = run(true), plain = run(false);
    expect(plain.calls).toEqual({ channelAffine: 1 });
    expect(folded.calls).toEqual({ channelAffine: 0 });
    for (const k of ['y', 'dx', 'dw', 'dg', 'dbeta', 'rm', 'rv'] as const) {
      const a = folded[k], b = plain[k];
      const scale = Math.max(...Array.from(b, Math.abs));
      expect(scale, k).toBeGreaterThan(0);
      for (let i = 0; i < a.length; i++) expect(Math.abs(Number(a[i]) - Number(b[i])), `${k}[${i}]`).toBeLessThanOrEqual(1e-5 * scale);
    }
    // the running mean holds the bias: momentum 0.1 of a mean near c - 8
    expect(folded.rm[0]).toBeLessThan(-0.5);
    // the bias gradient is exactly zero folded, rounding noise unfolded (next to dgamma's size)
    expect(Array.from(folded.db)).toEqual(new Array(16).fill(0));
    const gScale = Math.max(...Array.from(plain.dg, Math.abs));
    for (const v of plain.db) expect(Math.abs(v)).toBeLessThan(1e-4 * gScale);
  });
  for (const { name, backend } of backends) it(`gives the same output and gradients with an activation written over a Linear's or a convolution's output (${name})`, () => {
    const rng = new Rng(5);
    const x = new Tensor([4, 6], Float32Array.from({ length: 24 }, () => rng.normal()));
    const dy = Float32Array.from({ length: 4 * 16 * 3 * 3 }, () => rng.normal());
    const acts = (): Module[] => [new LeakyReLU(), new LeakyReLU(0), new LeakyReLU(0.2), new Tanh(), new Sigmoid()];
    for (let a = 0; a < acts().length; a++) {
      const run = (fuse: boolean) => {
        const r = new Rng(8);
        // Linear -> Unflatten -> activation (the decoder's start), then a convolution -> activation
        const s = new Sequential(new Linear(6, 16 * 4 * 4, { rng: r }), new Unflatten(1, [16, 4, 4]), acts()[a],
          new Conv2d(16, 16, 2, { rng: r }), acts()[a]).to(backend);
        s.fuse = fuse;
        const lin = s.at(0) as Linear, conv = s.at(3) as Conv2d;
        const y = s.forward(x);
        const steps = planChain(s.layers, backend, { fuse, blocked: true }).steps;
        const out = y.data.slice();
        const dx = s.backward(new Tensor([4, 16, 3, 3], dy.slice())).data.slice();
        return { steps: describeSteps(steps), out, dx, dwl: lin.weight.grad.slice(), dbl: lin.bias!.grad.slice(),
                 dwc: conv.weight.grad.slice(), dbc: conv.bias!.grad.slice() };
      };
      const inPlace = run(true), plain = run(false), what = `${acts()[a].typeName} ${(acts()[a] as LeakyReLU).negativeSlope ?? ''}`;
      expect(inPlace.steps.filter((t) => t.endsWith('inPlace')), what).toEqual(['2 inPlace', '4 inPlace']);
      expect(plain.steps.some((t) => t.includes('inPlace')), what).toBe(false);
      for (const k of ['out', 'dx', 'dwl', 'dbl', 'dwc', 'dbc'] as const) {
        expect(Math.max(...Array.from(plain[k], Math.abs)), `${what} ${k}`).toBeGreaterThan(0);
        expect(Array.from(inPlace[k]), `${what} ${k}`).toEqual(Array.from(plain[k]));
      }
    }
    // what the kernel was handed: y over x (the Linear's output), and not the chain's input
    const be = backend as unknown as Record<string, (...a: unknown[]) => unknown>, act = be.activation;
    const seen: boolean[] = [];
    be.activation = (...a: unknown[]) => {
      const [ax, ay] = a.slice(2, 4) as Float32Array[];
      seen.push(ax.buffer === ay.buffer && ax.byteOffset === ay.byteOffset);
      return act.apply(backend, a);
    };
    try {
      new Sequential(new Linear(6, 16, { rng: new Rng(1) }), new LeakyReLU()).to(backend).forward(x);
      new Sequential(new LeakyReLU()).to(backend).forward(x);
    } finally { be.activation = act; }
    expect(seen).toEqual([true, false]);
  });
});
