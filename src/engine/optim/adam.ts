/**
 * torch.optim.Adam and torch.optim.AdamW (PyTorch 1.13 single-tensor, non-fused, non-foreach path).
 * Per element, in float32 like PyTorch's CPU kernels (scalars rounded to float32 where PyTorch does):
 *   g = maximize ? -grad : grad
 *   Adam:  if weightDecay != 0: g = g + weightDecay * p          (L2 penalty, coupled)
 *   AdamW: p = p * (1 - lr * weightDecay)                        (decoupled, before the moments)
 *   m = m * beta1 + (1 - beta1) * g
 *   v = v * beta2 + (1 - beta2) * g * g   (addcmul: the last multiply-add is fused, one rounding, as in
 *                                         PyTorch's FMA-contracted CPU kernel; products of two float32s
 *                                         are exact in float64, so fround(a + b*c) emulates fma)
 *   bc1 = 1 - beta1^step, bc2 = 1 - beta2^step                  (float64, like Python)
 *   amsgrad: vmax = max(vmax, v), used instead of v below
 *   denom = sqrt(v) / sqrt(bc2) + eps
 *   p = p + (-lr / bc1) * m / denom
 * Against the PyTorch 1.13 fixtures every parameter value is bit-identical (test/optim.test.ts).
 * State per parameter: `step` (number), `expAvg`, `expAvgSq`, and `maxExpAvgSq` when amsgrad.
 */
import { checkNumber, fr, Optimizer, type ParamGroup, type ParamsInput } from './optimizer.js';

export interface AdamGroup extends ParamGroup {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Default 0 for Adam, 1e-2 for AdamW. */
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}

export class Adam extends Optimizer<AdamGroup> {
  /** AdamW applies weight decay to the parameters directly instead of adding it to the gradient. */
  protected readonly decoupled: boolean = false;

  constructor(params: ParamsInput<AdamGroup>, options: AdamOptions = {}) {
    super(params, Adam.defaultsFrom(options, 0));
  }

  protected static defaultsFrom(o: AdamOptions, weightDecay: number): Omit<AdamGroup, 'params'> {
    return {
      lr: o.lr ?? 1e-3,
      betas: o.betas ? [o.betas[0], o.betas[1]] : [0.9, 0.999],
      eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? weightDecay,
      amsgrad: o.amsgrad ?? false,
      maximize: o.maximize ?? false,
    };
  }

  protected override validateGroup(g: AdamGroup): void {
    const name = this.constructor.name;
    checkNumber(name, 'lr', g.lr);
    checkNumber(name, 'eps', g.eps);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new Error(`${name}: invalid betas ${JSON.stringify(g.betas)} (expected [beta1, beta2])`);
    checkNumber(name, 'betas[0]', g.betas[0], 0, 1);
    checkNumber(name, 'betas[1]', g.betas[1], 0, 1);
    checkNumber(name, 'weightDecay', g.weightDecay);
  }

  protected override updateGroup(g: AdamGroup): void {
    const [beta1, beta2] = g.betas;
    const b1 = fr(beta1), b2 = fr(beta2), omb1 = fr(1 - beta1), omb2 = fr(1 - beta2), eps = fr(g.eps);
    const wd = fr(g.weightDecay), useWd = g.weightDecay !== 0, sign = g.maximize ? -1 : 1;
    const decay = fr(1 - g.lr * g.weightDecay);
    for (const p of this.active(g)) {
      const data = p.data, grad = p.grad, n = data.length;
      let s = this.state.get(p);
      if (!s || s.step === undefined) {
        s = { step: 0, expAvg: this.stateBuffer(p, n), expAvgSq: this.stateBuffer(p, n) };
        if (g.amsgrad) s.maxExpAvgSq = this.stateBuffer(p, n);
        this.state.set(p, s);
      }
      if (g.amsgrad && !s.maxExpAvgSq) s.maxExpAvgSq = this.stateBuffer(p, n);
      const step = (s.step as number) + 1;
      s.step = step;
      const m = s.expAvg as Float32Array, v = s.expAvgSq as Float32Array;
      const vmax = g.amsgrad ? (s.maxExpAvgSq as Float32Array) : null;
      const bc1 = 1 - beta1 ** step;
      const bc2 = 1 - beta2 ** step;
      const negStepSize = fr(-(g.lr / bc1));
      const bc2Sqrt = fr(Math.sqrt(bc2));
      if (!vmax && p.device?.adamStep) {
        p.device.adamStep(n, data, grad, m, v, {
          sign, beta1: b1, oneMinusBeta1: omb1, beta2: b2, oneMinusBeta2: omb2, eps, weightDecay: wd, decay,
          negStepSize, bc2Sqrt, useWeightDecay: useWd, decoupled: this.decoupled,
        });
        continue;
      }
      for (let i = 0; i < n; i++) {
        let d = sign * grad[i];
        if (this.decoupled) {
          if (useWd) data[i] = fr(data[i] * decay);
        } else if (useWd) d = fr(d + wd * data[i]);
        const mi = (m[i] = fr(fr(m[i] * b1) + omb1 * d));
        let vi = (v[i] = fr(fr(v[i] * b2) + fr(omb2 * d) * d));
        if (vmax) vi = vmax[i] = Math.max(vmax[i], vi);
        const denom = fr(fr(fr(Math.sqrt(vi)) / bc2Sqrt) + eps);
        data[i] = fr(data[i] + fr(fr(negStepSize * mi) / denom));
      }
    }
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay (default weightDecay 1e-2). */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(params: ParamsInput<AdamGroup>, options: AdamOptions = {}) {
    super(params, { ...options, weightDecay: options.weightDecay ?? 1e-2 });
  }
}
