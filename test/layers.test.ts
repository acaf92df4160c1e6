/** Every layer's forward and backward against PyTorch's tensors (tools/fixtures/gen_layers.py), on every backend. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import type { Backend } from '../src/engine/kernels/index.js';
import {
  BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, Module, ReLU, Sequential, Sigmoid, Tanh,
} from '../src/engine/nn/index.js';
import { Rng } from '../src/engine/rng.js';
import { bceLoss, mseLoss } from '../src/engine/loss.js';
import type { StateDict } from '../src/engine/state.js';
import { expectClose, f32of, fixture, FIXTURES, parityBackends } from './helpers.js';

const backends = await parityBackends();
const files = readdirSync(path.join(FIXTURES, 'layers')).filter((f) => /^(conv|deconv|bn|linear|leaky|relu|tanh|sigmoid)/.test(f));

function build(name: string, m: Record<string, string>): Module {
  const n = (k: string): number => Number(m[k]);
  if (name.startsWith('conv_')) return new Conv2d(n('in'), n('out'), n('k'), { stride: n('stride'), padding: n('padding'), bias: m.bias === '1' });
  if (name.startsWith('deconv_'))
    return new ConvTranspose2d(n('in'), n('out'), n('k'), { stride: n('stride'), padding: n('padding'), outputPadding: n('output_padding'), bias: m.bias === '1' });
  if (name.startsWith('bnact_')) {
    const act = m.act === 'leaky' ? new LeakyReLU() : m.act === 'relu' ? new ReLU() : new Tanh();
    return new Sequential(new BatchNorm2d(n('c')), act);
  }
  if (name.startsWith('bn_')) return new BatchNorm2d(n('c'), m.momentum === undefined ? {} : { momentum: n('momentum') });
  if (name.startsWith('linear_')) return new Linear(n('in'), n('out'), { bias: m.bias !== '0' });
  if (name.startsWith('leaky_relu')) return new LeakyReLU(Number(m.slope));
  if (name === 'relu') return new ReLU();
  if (name === 'tanh') return new Tanh();
  if (name === 'sigmoid') return new Sigmoid();
  throw new Error(`no layer for fixture ${name}`);
}

function strip(sd: StateDict, prefix: string): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

function inBackend(b: Backend, shape: number[], a: Float32Array): Tensor {
  const d = b.alloc(a.length);
  d.set(a);
  return new Tensor(shape, d);
}

for (const { name: bname, backend } of backends) {
  describe(`layers on ${bname}`, () => {
    for (const file of files) {
      const name = file.replace('.safetensors', '');
      it(name, () => {
        const { t, meta } = fixture(`layers/${file}`);
        const layer = build(name, meta).to(backend);
        layer.loadStateDict(strip(t, 'param.'));
        layer.train(meta.train === '1');
        const xe = t.get('x')!, dye = t.get('dy')!;
        const y = layer.forward(inBackend(backend, xe.shape, f32of(t, 'x')));
        expect([...y.shape]).toEqual(t.get('y')!.shape);
        expectClose(y.data, f32of(t, 'y'), `${name} y`);
        layer.zeroGrad();
        const dx = layer.backward(inBackend(backend, dye.shape, f32of(t, 'dy')));
        expectClose(dx.data, f32of(t, 'dx'), `${name} dx`);
        for (const [k, p] of layer.namedParameters()) expectClose(p.grad, f32of(t, `grad.${k}`), `${name} grad.${k}`);
        for (const [k, b] of layer.namedBuffers()) expectClose(b.data, f32of(t, `after.${k}`), `${name} ${k}`);
      });
    }
  });
}

// zeroGrad is lazy (Parameter): the next backward writes each gradient in place of the zeros
describe('gradients after zeroGrad are written, later ones added', () => {
  const withParams = files.filter((f) => /^(conv|deconv|bn|linear)/.test(f));
  for (const { name: bname, backend } of backends) {
    it(`every layer with parameters (${bname})`, () => {
      for (const file of withParams) {
        const name = file.replace('.safetensors', '');
        const { t, meta } = fixture(`layers/${file}`);
        const layer = build(name, meta).to(backend);
        layer.loadStateDict(strip(t, 'param.'));
        layer.train(meta.train === '1');
        const xe = t.get('x')!, dye = t.get('dy')!;
        const pass = (): void => {
          layer.forward(inBackend(backend, xe.shape, f32of(t, 'x')));
          layer.backward(inBackend(backend, dye.shape, f32of(t, 'dy')));
        };
        const params = [...layer.namedParameters()];
        // an older gradient that must not leak into the new one: NaN would survive an addition
        for (const [, p] of params) p.gradBuffer.fill(NaN);
        layer.zeroGrad();
        for (const [k, p] of params) expect(p.grad.every((v) => v === 0), `${name} grad.${k} reads as zeros`).toBe(true);
        for (const [, p] of params) p.gradBuffer.fill(NaN);
        layer.zeroGrad();
        pass();
        for (const [k, p] of params) expectClose(p.grad, f32of(t, `grad.${k}`), `${name} grad.${k}`);
        // a second backward without zeroGrad adds (PyTorch accumulates): exactly twice the first
        const first = params.map(([, p]) => p.grad.slice());
        pass();
        params.forEach(([k, p], i) => expect([...p.grad], `${name} grad.${k} after two passes`).toEqual([...first[i]].map((v) => 2 * v)));
      }
    });
  }
});

describe('zeroGrad on a container', () => {
  it('reaches the parameters of nested children, and a parameter shared by two layers', () => {
    const shared = new Linear(3, 3);
    const inner = new Sequential(new Conv2d(1, 2, 3), new BatchNorm2d(2), shared);
    const outer = new Sequential(inner, new Sequential(new Linear(4, 2), shared));
    const params = outer.parameters();
    expect(params.length).toBe(10);  // conv, bn, shared, Linear(4, 2), shared again: two each
    for (const p of params) p.gradBuffer.fill(NaN);
    outer.zeroGrad();
    for (const p of params) expect(p.grad.every((v) => v === 0)).toBe(true);
  });
});

describe('BatchNorm2d running statistics at full precision', () => {
  // A batch variance (~1e-10) far below eps (1e-5), momentum 1: PyTorch's running_var is the unbiased batch
  // variance. Deriving it back from invstd = 1/sqrt(var + eps) loses it to cancellation (~1e-2 relative).
  for (const { name: bname, backend } of backends) {
    it(`running_var is the batch variance itself, to float32 rounding (${bname})`, () => {
      const { t } = fixture('layers/bn_tinyvar_train.safetensors');
      const bn = new BatchNorm2d(4, { momentum: 1 }).to(backend);
      bn.loadStateDict(strip(t, 'param.'));
      bn.forward(inBackend(backend, t.get('x')!.shape, f32of(t, 'x')));
      const want = f32of(t, 'after.running_var'), got = bn.runningVar.data;
      for (let c = 0; c < 4; c++) {
        expect(want[c]).toBeLessThan(1e-8);
        expect(Math.abs(got[c] - want[c]) / want[c], `channel ${c}: ${got[c]} vs PyTorch ${want[c]}`).toBeLessThan(1e-5);
      }
    });
  }
});

describe('losses', () => {
  for (const [name, fn] of [['mse', mseLoss], ['bce', bceLoss]] as const) {
    it(`${name} loss and gradient match PyTorch`, () => {
      const { t } = fixture(`layers/loss_${name}.safetensors`);
      const input = f32of(t, 'input'), target = f32of(t, 'target');
      const grad = new Float32Array(input.length);
      const loss = fn(input, target, input.length, grad);
      expect(Math.abs(loss - f32of(t, 'loss')[0])).toBeLessThan(1e-6);
      expectClose(grad, f32of(t, 'grad'), `${name} grad`);
    });
  }
  it('bce rejects values outside [0, 1]', () => {
    expect(() => bceLoss(Float32Array.of(1.5), Float32Array.of(1), 1)).toThrow(/probability in \[0, 1\]/);
  });
});

describe('initialisation', () => {
  it('draws within PyTorch bounds and fills them (kaiming_uniform a=sqrt(5); ConvTranspose fan_in from dim 1)', () => {
    const { t } = fixture('layers/init_bounds.safetensors');
    const cases: [string, Module & { weight: { data: Float32Array }; bias: { data: Float32Array } | null }, number][] = [
      ['conv', new Conv2d(32, 64, 3), 32 * 9],
      ['deconv', new ConvTranspose2d(64, 32, 3), 32 * 9],
      ['linear', new Linear(3136, 2), 3136],
    ];
    for (const [name, m, fan] of cases) {
      const bound = 1 / Math.sqrt(fan);
      const wmax = Math.max(...Array.from(m.weight.data, Math.abs));
      const bmax = Math.max(...Array.from(m.bias!.data, Math.abs));
      expect(wmax).toBeLessThanOrEqual(bound);
      expect(wmax).toBeGreaterThan(bound * 0.95);
      // PyTorch's own draws sit under the same bound
      expect(f32of(t, `${name}.weight_absmax`)[0]).toBeLessThanOrEqual(bound);
      expect(Math.abs(wmax - f32of(t, `${name}.weight_absmax`)[0])).toBeLessThan(bound * 0.05);
      expect(bmax).toBeLessThanOrEqual(bound);
      expect(f32of(t, `${name}.bias_absmax`)[0]).toBeLessThanOrEqual(bound);
    }
  });
});

describe('Sequential backward: element-wise layers write their gradient over the one they receive', () => {
  for (const { name, backend: be } of backends) {
    it(`gradients match layer-by-layer backward with own buffers, and the caller's dy is untouched (${name})`, () => {
      const make = (): Sequential => {
        const r = new Rng(3);
        return new Sequential(new Conv2d(1, 16, 3, { padding: 1, rng: r }), new BatchNorm2d(16), new LeakyReLU(),
          new Conv2d(16, 16, 3, { stride: 2, padding: 1, rng: r }), new BatchNorm2d(16), new Tanh(), new Flatten()).to(be);
      };
      const seq = make(), manual = make();
      const xr = new Rng(4), n = 3 * 784, x = be.alloc(n);
      for (let i = 0; i < n; i++) x[i] = xr.uniform(-1, 1);
      const xt = new Tensor([3, 1, 28, 28], x);
      const y = seq.forward(xt);
      const dy = be.alloc(y.size);
      for (let i = 0; i < dy.length; i++) dy[i] = xr.uniform(-1, 1);
      const dyCopy = dy.slice();
      seq.backward(new Tensor(y.shape, dy));
      expect(Array.from(dy)).toEqual(Array.from(dyCopy));
      // the same layers run one by one, unfused, each backward into its own buffer
      let t: Tensor = xt;
      for (const m of manual.layers) t = m.forward(t);
      let g = new Tensor(t.shape, dyCopy.slice());
      for (let i = manual.layers.length - 1; i >= 0; i--) g = manual.layers[i].backward(g);
      const a = seq.parameters(), b = manual.parameters();
      a.forEach((p, i) => expectClose(p.grad, b[i].grad, `gradient ${i}`));
    });
  }
});

describe('Module.releaseScratch', () => {
  for (const { name, backend: be } of backends) {
    it(`a model computes the same after its buffers are released and their memory reused (${name})`, () => {
      const r = new Rng(8);
      const m = new Sequential(new ConvTranspose2d(16, 16, 3, { stride: 2, padding: 1, outputPadding: 1, rng: r }),
        new BatchNorm2d(16), new LeakyReLU(), new Flatten(), new Linear(16 * 8 * 8, 5, { rng: r })).to(be);
      m.eval();
      const x = be.alloc(2 * 16 * 16);
      for (let i = 0; i < x.length; i++) x[i] = r.uniform(-1, 1);
      const run = (): number[] => Array.from(m.forward(new Tensor([2, 16, 4, 4], x)).data);
      const before = run();
      m.releaseScratch();
      // whatever reuses the released memory next writes garbage into it
      const others = Array.from({ length: 64 }, (_, i) => be.alloc(i % 2 ? 16 : 16 * 8 * 8 * 2).fill(123));
      expect(run()).toEqual(before);
      for (const o of others) be.free(o);
    });
  }
});
