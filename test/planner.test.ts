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

/** A backend that only claims the blocked layout (planChain reads nothing else). */
const blockedBackend = Object.assign(new ReferenceBackend(), { channelBlock: 16 }) as Backend;

function describeSteps(steps: Step[]): string[] {
  return steps.map((s) => (s.kind === 'reorder' ? `reorder->${s.to}` :
    `${s.index}${s.fused ? '+' : ''}${s.opts?.layout === 'blocked' ? ' blocked' : ''}${s.opts?.act ? ` act=${s.opts.act.kind}` : ''}`));
}

describe('planner', () => {
  const model = (): Module[] => [
    new Conv2d(1, 32, 3), new BatchNorm2d(32), new LeakyReLU(),
    new Flatten(), new Linear(32 * 4, 3), new Linear(3, 64 * 4), new Unflatten(1, [64, 2, 2]), new LeakyReLU(),
    new ConvTranspose2d(64, 16, 3), new Tanh(),
  ];

  it('fuses batch-norm with the activation after it, and only then', () => {
    const plan = planChain(model(), new ReferenceBackend(), { fuse: true, blocked: true });
    expect(describeSteps(plan.steps)).toEqual(['0', '1+ act=leaky', '3', '4', '5', '6', '7', '8', '9']);
    const unfused = planChain(model(), new ReferenceBackend(), { fuse: false, blocked: true });
    expect(describeSteps(unfused.steps)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // a LeakyReLU with a negative slope is not fusable (its input's sign is not its output's)
    const neg = planChain([new BatchNorm2d(4), new LeakyReLU(-0.5)], new ReferenceBackend(), { fuse: true, blocked: true });
    expect(describeSteps(neg.steps)).toEqual(['0', '1']);
  });

  it('keeps activations blocked between layers that take them, converting before Flatten, after Unflatten and at the end', () => {
    const plan = planChain(model(), blockedBackend, { fuse: true, blocked: true });
    expect(describeSteps(plan.steps)).toEqual([
      '0 blocked', '1+ act=leaky', 'reorder->nchw', '3', '4', '5', '6', 'reorder->blocked', '7', '8 blocked', '9', 'reorder->nchw',
    ]);
    expect(plan.layouts).toEqual(['blocked', 'blocked', 'blocked', 'nchw', 'nchw', 'nchw', 'blocked', 'blocked', 'blocked', 'blocked']);
    const plain = planChain(model(), blockedBackend, { fuse: true, blocked: false });
    expect(plain.steps.every((s) => s.kind === 'layer')).toBe(true);
    expect(plain.layouts.every((l) => l === 'nchw')).toBe(true);
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
});
