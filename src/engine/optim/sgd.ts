/**
 * torch.optim.SGD (PyTorch 1.13, single-tensor path), float32 arithmetic per element:
 *   g = maximize ? -grad : grad
 *   if weightDecay != 0:  g = g + weightDecay * p
 *   if momentum != 0:     buf = first step ? g : momentum * buf + (1 - dampening) * g
 *                         g = nesterov ? g + momentum * buf : buf
 *   p = p - lr * g
 * The momentum buffer starts as a copy of the gradient (no dampening on the first step).
 * Multiply-adds with a scalar (`add(x, alpha=a)`) round once, like PyTorch's fused CPU kernel;
 * results are bit-identical to the PyTorch 1.13 fixtures.
 * PyTorch 2.x: recent releases give `lr` a default (1e-3) where 1.13 requires it; we follow 1.13
 * (lr must be given, in the options or in every group). The update rule is unchanged.
 */
import { checkNumber, fr, Optimizer, type ParamGroup, type ParamsInput } from './optimizer.js';

export interface SGDGroup extends ParamGroup {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export interface SGDOptions {
  /** Required (PyTorch has no default) unless every group sets it. */
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

export class SGD extends Optimizer<SGDGroup> {
  constructor(params: ParamsInput<SGDGroup>, options: SGDOptions = {}) {
    const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false, maximize = false } = options;
    if (lr !== undefined) checkNumber('SGD', 'lr', lr);
    super(params, { ...(lr !== undefined ? { lr } : {}), momentum, dampening, weightDecay, nesterov, maximize });
  }

  protected override validateGroup(g: SGDGroup): void {
    checkNumber('SGD', 'lr', g.lr);
    checkNumber('SGD', 'momentum', g.momentum);
    checkNumber('SGD', 'weightDecay', g.weightDecay);
    checkNumber('SGD', 'dampening', g.dampening, -Infinity);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
      throw new Error(`SGD: nesterov requires momentum > 0 and dampening 0 (got momentum ${g.momentum}, dampening ${g.dampening})`);
  }

  protected override updateGroup(g: SGDGroup): void {
    const wd = fr(g.weightDecay), mom = fr(g.momentum), damp1 = fr(1 - g.dampening), negLr = fr(-g.lr);
    const useWd = g.weightDecay !== 0, useMom = g.momentum !== 0, nesterov = g.nesterov, sign = g.maximize ? -1 : 1;
    for (const p of this.active(g)) {
      const data = p.data, grad = p.grad, n = data.length;
      let state = this.state.get(p);
      if (!state) this.state.set(p, (state = {}));
      let buf = state.momentumBuffer as Float32Array | undefined;
      const first = useMom && !buf;
      if (first) buf = state.momentumBuffer = this.stateBuffer(p, n);
      if (useMom && !first && !useWd && !nesterov) {
        // the common case (plain momentum) without per-element branches: the same arithmetic
        if (p.device?.sgdMomentumStep) p.device.sgdMomentumStep(n, data, grad, buf!, mom, damp1 * sign, negLr);
        else momentumStep(data, grad, buf!, n, sign, mom, damp1, negLr);
        continue;
      }
      for (let i = 0; i < n; i++) {
        let d = sign * grad[i];
        if (useWd) d = fr(d + wd * data[i]);
        if (useMom) {
          let b: number;
          if (first) b = d;
          else b = fr(fr(buf![i] * mom) + damp1 * d);
          buf![i] = b;
          d = nesterov ? fr(d + mom * b) : b;
        }
        data[i] = fr(data[i] + negLr * d);
      }
    }
  }
}

/** buf = fr(buf * mom) + damp1 * (sign * grad), rounded; p = p + negLr * buf, rounded. */
function momentumStep(data: Float32Array, grad: Float32Array, buf: Float32Array, n: number, sign: number, mom: number,
                      damp1: number, negLr: number): void {
  const ds = damp1 * sign;  // exact: sign is +-1
  for (let i = 0; i < n; i++) {
    const b = fr(fr(buf[i] * mom) + ds * grad[i]);
    buf[i] = b;
    data[i] = fr(data[i] + negLr * b);
  }
}
