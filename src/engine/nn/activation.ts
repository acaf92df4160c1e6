/** Element-wise activations, after torch.nn.LeakyReLU, ReLU, Tanh and Sigmoid. */
import type { Act } from '../kernels/index.js';
import type { BackwardOptions, ForwardOptions } from '../kernels/planner.js';
import { Tensor } from '../tensor.js';
import { Module } from './module.js';

export abstract class Activation extends Module {
  abstract readonly act: Act;
  readonly blockedInput = 'keep' as const;
  readonly inPlaceGrad = true;
  private x: Tensor | null = null;
  private y: Tensor | null = null;

  protected override forgetForward(): void { this.x = null; this.y = null; }

  /**
   * `opts.inPlace` (the planner's: nothing else reads x): y is written over x, and the backward takes the
   * derivative from y in x's place, which gives the same values for the activations that declare `inPlaceForward`.
   */
  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    const inPlace = opts.inPlace === true && this.inPlaceForward;
    const y = inPlace ? x.data.subarray(0, x.size) : this.scratch('y', x.size);
    this.backend.activation(this.act, x.size, x.data, y);
    this.y = new Tensor(x.shape, y, x.layout);
    this.x = inPlace ? this.y : x;
    return this.y;
  }

  /** dx = dy * act'(x); `opts.inPlace`: dx may overwrite dy. */
  backward(dy: Tensor, opts: BackwardOptions = {}): Tensor {
    const x = this.x, y = this.y;
    if (!x || !y) throw new Error(`${this.typeName}.backward called before forward`);
    if (dy.layout !== x.layout) throw new Error(`${this.typeName}.backward: dy is ${dy.layout}, the forward pass was ${x.layout}`);
    const dx = opts.inPlace ? dy.data.subarray(0, x.size) : this.scratch('dx', x.size);
    this.backend.activationBackward(this.act, x.size, x.data, y.data, dy.data, dx);
    return new Tensor(x.shape, dx, x.layout);
  }

  /** Whether a preceding BatchNorm2d may fuse this activation (its derivative is known from its output). */
  get fusable(): boolean { return this.act.kind !== 'leaky' || this.act.slope >= 0; }
  /**
   * Whether forward may write y over x (ForwardOptions.inPlace): the derivative is known from y (tanh, sigmoid),
   * or needs only x's sign, which y has (none, relu, leaky with a slope >= 0).
   */
  get inPlaceForward(): boolean { return this.fusable; }
  /** The activation a preceding layer may apply instead (the planner's fusion), or null. */
  get fusableAct(): Act | null { return this.fusable ? this.act : null; }
}

export class LeakyReLU extends Activation {
  readonly act: Act;
  constructor(readonly negativeSlope = 0.01) {
    super();
    this.act = { kind: 'leaky', slope: negativeSlope };
  }
  override extraRepr(): string { return `negative_slope=${this.negativeSlope}`; }
}

export class ReLU extends Activation {
  readonly act: Act = { kind: 'relu', slope: 0 };
}

export class Tanh extends Activation {
  readonly act: Act = { kind: 'tanh', slope: 0 };
}

export class Sigmoid extends Activation {
  readonly act: Act = { kind: 'sigmoid', slope: 0 };
}
