/**
 * Sequential, after torch.nn.Sequential: children named "0", "1", ... so that state-dict keys match
 * PyTorch's. A BatchNorm2d directly followed by an activation runs as one fused kernel (the
 * activation's own forward and backward are then skipped); the result is the same.
 */
import { NO_ACT } from '../kernels/index.js';
import { Tensor } from '../tensor.js';
import { Activation } from './activation.js';
import { BatchNorm2d } from './batchnorm.js';
import { Module } from './module.js';

export class Sequential extends Module {
  readonly layers: Module[];
  /** Set false to run every layer on its own (for testing the fusion). */
  fuse = true;
  private fusedAt = new Set<number>();

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  get length(): number { return this.layers.length; }
  at(i: number): Module { return this.layers[i]; }

  forward(x: Tensor): Tensor {
    this.fusedAt.clear();
    const L = this.layers;
    for (let i = 0; i < L.length; i++) {
      const m = L[i], next = L[i + 1];
      if (this.fuse && m instanceof BatchNorm2d && next instanceof Activation && next.fusable) {
        m.fusedAct = next.act;
        x = m.forward(x);
        m.fusedAct = NO_ACT;
        this.fusedAt.add(i + 1);
        i++;
      } else {
        x = m.forward(x);
      }
    }
    return x;
  }

  backward(dy: Tensor): Tensor {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      if (this.fusedAt.has(i)) continue;
      dy = this.layers[i].backward(dy);
    }
    return dy;
  }
}
