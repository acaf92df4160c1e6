/**
 * The whole study model over one training step against PyTorch (tools/fixtures/gen_model.py): the
 * latent, the reconstruction, the loss, every gradient, and every parameter and running statistic
 * after one SGD-with-momentum step and after one Adam step. On every backend.
 */
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { mseLoss } from '../src/engine/loss.js';
import { SGD, Adam } from '../src/engine/optim/index.js';
import { AutoEncoder, type ModelConfig } from '../src/lab/models/autoencoder.js';
import type { StateDict } from '../src/engine/state.js';
import { expectAdamStepClose, expectClose, f32of, fixture, parityBackends } from './helpers.js';

const backends = await parityBackends();

/** The learning rate of the fixtures' Adam step (tools/fixtures/gen_model.py). */
const ADAM_LR = 1e-3;

function prefixed(sd: StateDict, prefix: string): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

const variants: [string, Partial<ModelConfig>, boolean][] = [
  ['bn_z2', { model: 'bn', latent: 2 }, true],
  ['simple_z2', { model: 'simple', latent: 2 }, false],
  ['bn_conv', { model: 'bn', latent: 'conv' }, false],
];

for (const { name: bname, backend } of backends) {
  describe(`study model on ${bname}`, () => {
    for (const [file, cfg, steps] of variants) {
      const { t } = fixture(`model/${file}.safetensors`);
      const init = prefixed(t, 'init.');
      const x = f32of(t, 'x');
      const N = x.length / 784;

      const forwardBackward = (model: AutoEncoder): { loss: number; y: Float32Array } => {
        const xb = backend.alloc(x.length);
        xb.set(x);
        const xt = new Tensor([N, 1, 28, 28], xb);
        model.train();
        model.zeroGrad();
        const y = model.forward(xt);
        const grad = backend.alloc(y.size);
        const loss = mseLoss(y.data, xb, y.size, grad);
        const ycopy = y.data.slice(0, y.size);
        model.backward(new Tensor(y.shape, grad));
        return { loss, y: ycopy };
      };

      it(`${file}: loss, latent, reconstruction and every gradient`, () => {
        const model = new AutoEncoder(cfg).to(backend);
        model.loadStateDict(init);
        const { loss, y } = forwardBackward(model);
        expectClose(y, f32of(t, 'y'), `${file} y`);
        expect(Math.abs(loss - f32of(t, 'loss')[0])).toBeLessThan(1e-5);
        expectClose(model.lastLatent!.data, f32of(t, 'z'), `${file} z`);
        for (const [k, p] of model.namedParameters()) expectClose(p.grad, f32of(t, `grad.${k}`), `${file} grad.${k}`);
      });

      it(`${file}: the layers' input gradients share two buffers, a second pass gives the same gradients, releaseScratch lets go of both`, () => {
        const model = new AutoEncoder(cfg).to(backend);
        model.loadStateDict(init);
        forwardBackward(model);
        const first = model.parameters().map((p) => p.grad.slice());
        // the two largest input gradients, of the first and the second conv block (not one per layer)
        expect(model.gradientBuffers!.size).toBe(N * 32 * 28 * 28 + N * 64 * 14 * 14);
        forwardBackward(model);
        model.parameters().forEach((p, i) => expect(p.grad, `parameter ${i}`).toEqual(first[i]));
        // released: the buffers, and the tensors the forward pass kept (views of them) for backward
        model.releaseScratch();
        expect(model.gradientBuffers!.size).toBe(0);
        expect(model.lastLatent).toBeNull();
        expect(() => model.backward(new Tensor([N, 1, 28, 28], new Float32Array(N * 784)))).toThrow(/before forward/);
      });

      if (!steps) continue;
      for (const opt of ['sgd', 'adam'] as const) {
        it(`${file}: every parameter and running statistic after one ${opt} step`, () => {
          const model = new AutoEncoder(cfg).to(backend);
          model.loadStateDict(init);
          const o = opt === 'sgd' ? new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }) : new Adam(model.parameters(), { lr: ADAM_LR });
          forwardBackward(model);
          o.step();
          const after = prefixed(t, `${opt}.`);
          const params = new Set([...model.namedParameters()].map(([k]) => k));
          const grads = [...params].map((k) => f32of(t, `grad.${k}`));
          for (const [k, e] of model.stateDict()) {
            const ours = e.dtype === 'F32' ? (e.data as Float32Array) : Float32Array.from(e.data as BigInt64Array, Number);
            // Adam's step is +-lr where the gradient is rounding noise (helpers.ts, expectAdamStepClose)
            if (opt === 'adam' && params.has(k)) expectAdamStepClose(ours, f32of(after, k), f32of(t, `grad.${k}`), grads, ADAM_LR, `${file} ${opt}.${k}`);
            else expectClose(ours, f32of(after, k), `${file} ${opt}.${k}`);
          }
        });
      }
    }
  });
}

describe('state dict', () => {
  it("has the study's PyTorch key names and loads strictly", () => {
    const { t } = fixture('model/bn_z2.safetensors');
    const init = prefixed(t, 'init.');
    const model = new AutoEncoder({ model: 'bn', latent: 2 });
    expect([...model.stateDict().keys()]).toEqual([...init.keys()]);
    expect(() => model.loadStateDict(init)).not.toThrow();
  });

  it('reports missing and unexpected keys and shape mismatches like PyTorch', () => {
    const model = new AutoEncoder({ model: 'bn', latent: 2 });
    const other = new AutoEncoder({ model: 'bn', latent: 10 }).stateDict();
    expect(() => model.loadStateDict(other)).toThrow(/size mismatch for encoder\.10\.weight: copying a param with shape \[10, 3136\]/);
    const missing = new Map(model.stateDict());
    missing.delete('decoder.4.running_mean');
    missing.set('decoder.99.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    expect(() => model.loadStateDict(missing)).toThrow(/Missing key\(s\) in state_dict: "decoder\.4\.running_mean"\. Unexpected key\(s\) in state_dict: "decoder\.99\.weight"/);
    const r = model.loadStateDict(missing, false);
    expect(r.missingKeys).toEqual(['decoder.4.running_mean']);
    expect(r.unexpectedKeys).toEqual(['decoder.99.weight']);
  });
});

describe('encode and decode into a given buffer', () => {
  it('write the same values as the copies, in place, and refuse a buffer too small', () => {
    const model = new AutoEncoder({ model: 'bn', latent: 2 });
    const n = 70, x = Float32Array.from({ length: n * 784 }, (_, i) => Math.sin(i * 0.37));
    const z = model.encode(x, n, 32);
    const zOut = new Float32Array(n * 2 + 5).fill(7);
    expect(model.encode(x, n, 32, zOut)).toBe(zOut);
    expect(Array.from(zOut.subarray(0, n * 2))).toEqual(Array.from(z));
    expect(zOut[n * 2]).toBe(7);
    const y = model.decode(z, n, 32), yOut = new Float32Array(n * 784);
    expect(model.decode(z, n, 32, yOut)).toBe(yOut);
    expect(Array.from(yOut)).toEqual(Array.from(y));
    expect(() => model.decode(z, n, 32, new Float32Array(10))).toThrow(/^decode: out holds 10 floats, expected at least 54880$/);
  });
});
