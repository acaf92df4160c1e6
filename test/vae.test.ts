/**
 * The VAE and its loss terms against PyTorch (tools/fixtures/gen_vae.py): the heads' forward and
 * backward, the KL and its gradients, the objective, the ELBO per sample, the L1 activity penalty, and a
 * whole VAE step (forward with the noise given, loss, backward, SGD and Adam step), on every backend.
 * A latentlab VAE state dict loads into the PyTorch VAE with strict=True (when a python with torch is found).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { Rng } from '../src/engine/rng.js';
import { SGD, Adam } from '../src/engine/optim/index.js';
import { mseLoss } from '../src/engine/loss.js';
import { f32, loadSafetensors, saveSafetensors, type StateDict } from '../src/engine/state.js';
import {
  gaussianElbo, klDivergence, klPerDimension, klPerSample, klWeight, l1Activity, vaeObjective,
} from '../src/engine/latent_loss.js';
import { AutoEncoder, type ModelConfig } from '../src/lab/models/autoencoder.js';
import { VAE, checkModelKind, isVaeStateDict } from '../src/lab/models/vae.js';
import { expectAdamStepClose, expectClose, f32of, fixture, parityBackends, ROOT } from './helpers.js';

const backends = await parityBackends();

/** The learning rate of the fixtures' Adam step (tools/fixtures/gen_vae.py). */
const ADAM_LR = 1e-3;

function prefixed(sd: StateDict, prefix: string): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

describe('latent loss terms against PyTorch', () => {
  const { t } = fixture('vae/losses.safetensors');
  const mu = f32of(t, 'mu'), logvar = f32of(t, 'logvar');
  const N = 6, D = 10, P = 784;

  it('KL to N(0, I) and its gradients w.r.t. mean and log-variance', () => {
    const dMu = new Float32Array(N * D), dLv = new Float32Array(N * D);
    const kl = klDivergence(mu, logvar, N, D, dMu, dLv);
    expect(Math.abs(kl - f32of(t, 'kl')[0])).toBeLessThan(1e-4 * Math.max(1, Math.abs(kl)));
    expectClose(dMu, f32of(t, 'kl.grad_mu'), 'dKL/dmu');
    expectClose(dLv, f32of(t, 'kl.grad_logvar'), 'dKL/dlogvar');
    const rows = klPerSample(mu, logvar, N, D);
    expectClose(rows, f32of(t, 'kl_rows'), 'KL per sample');
    const dims = klPerDimension(mu, logvar, N, D);
    expect(dims.reduce((a, b) => a + b, 0)).toBeCloseTo(kl, 4);
  });

  it('the VAE objective: reconstruction + w * KL, with the KL gradient scaled by w', () => {
    const w = f32of(t, 'w')[0];
    const dy = new Float32Array(N * P), dMu = new Float32Array(N * D), dLv = new Float32Array(N * D);
    const r = vaeObjective(f32of(t, 'y'), f32of(t, 'x'), mu, logvar, N, P, D, w, dy, dMu, dLv);
    expect(Math.abs(r.reconstruction - f32of(t, 'recon')[0])).toBeLessThan(1e-6);
    expect(Math.abs(r.loss - f32of(t, 'loss')[0])).toBeLessThan(1e-4 * Math.abs(r.loss));
    expect(r.weight).toBe(w);
    const ref = f32of(t, 'kl.grad_mu');
    expectClose(dMu, ref.map((v) => v * w), 'w * dKL/dmu');
    const x = f32of(t, 'x'), y = f32of(t, 'y');
    expect(dy[17]).toBeCloseTo((2 * (y[17] - x[17])) / (N * P), 9);
  });

  it('the ELBO per sample under a unit-variance Gaussian decoder', () => {
    const e = gaussianElbo(f32of(t, 'y'), f32of(t, 'x'), mu, logvar, N, P, D);
    expectClose(e.logLikelihood, f32of(t, 'll'), 'log p(x|z)', 1e-5);
    expectClose(e.elbo, f32of(t, 'elbo'), 'ELBO', 1e-5);
    for (let i = 0; i < N; i++) expect(e.elbo[i]).toBeCloseTo(e.logLikelihood[i] - e.kl[i], 6);
  });

  it("Keras's L1 activity penalty: lambda * sum|z| / batch, gradient lambda * sign(z) / batch (0 at 0)", () => {
    const z = f32of(t, 'z'), lam = f32of(t, 'lambda')[0];
    const g = new Float32Array(N * D);
    const v = l1Activity(z, N, D, lam, g);
    expect(Math.abs(v - f32of(t, 'l1')[0])).toBeLessThan(1e-7);
    expectClose(g, f32of(t, 'l1.grad'), 'dL1/dz', 1e-6);
    expect(g[0]).toBe(0);
  });

  it('the KL weight warms up linearly over the given steps, then stays at beta', () => {
    expect(klWeight(0, 2, 100)).toBe(0);
    expect(klWeight(25, 2, 100)).toBe(0.5);
    expect(klWeight(100, 2, 100)).toBe(2);
    expect(klWeight(5000, 2, 100)).toBe(2);
    expect(klWeight(0, 0.5, 0)).toBe(0.5);
    expect(() => klWeight(3, -1, 10)).toThrow(/^--beta: expected a number >= 0, got -1$/);
    expect(() => klWeight(3, 1, 2.5)).toThrow(/^--kl-warmup: expected a whole number of steps >= 0, got 2.5$/);
  });
});

for (const { name: bname, backend } of backends) {
  describe(`VAE on ${bname}`, () => {
    for (const [file, latent] of [['heads_z2', 2], ['heads_conv', 'conv']] as const) {
      it(`${file}: the heads' forward (mu, logvar, z) and backward (head gradients, dL/dh) with a KL term`, () => {
        const { t } = fixture(`vae/${file}.safetensors`);
        const vae = new VAE({ latent }).to(backend);
        const sd = vae.stateDict();
        for (const [k, v] of prefixed(t, 'init.')) sd.set(k, v);
        vae.loadStateDict(sd);
        const h = f32of(t, 'h'), N = 4, D = vae.latentDim;
        const hb = backend.alloc(h.length);
        hb.set(h);
        const ht = new Tensor(latent === 'conv' ? [N, 64, 7, 7] : [N, 3136], hb);
        vae.train();
        vae.zeroGrad();
        const r = vae.heads(ht, f32of(t, 'eps'));
        expectClose(r.mu.data, f32of(t, 'mu'), 'mu');
        expectClose(r.logvar.data, f32of(t, 'logvar'), 'logvar');
        expectClose(r.z.data, f32of(t, 'z'), 'z');
        const w = f32of(t, 'w')[0];
        const dMu = new Float32Array(N * D), dLv = new Float32Array(N * D);
        const kl = klDivergence(r.mu.data, r.logvar.data, N, D, dMu, dLv, w);
        expect(Math.abs(kl - f32of(t, 'kl')[0])).toBeLessThan(1e-4 * Math.max(1, kl));
        const dzb = backend.alloc(N * D);
        dzb.set(f32of(t, 'dz'));
        const dh = vae.headsBackward(new Tensor(r.z.shape, dzb), dMu, dLv);
        expectClose(dh.data, f32of(t, 'dh'), 'dL/dh');
        for (const [k, p] of vae.namedParameters())
          if (k.startsWith('mu.') || k.startsWith('logvar.')) expectClose(p.grad, f32of(t, `grad.${k}`), `grad.${k}`);
      });
    }

    const variants: [string, Partial<ModelConfig>, boolean][] = [
      ['bn_z2', { model: 'bn', latent: 2 }, true],
      ['simple_z2', { model: 'simple', latent: 2 }, false],
      ['bn_conv', { model: 'bn', latent: 'conv' }, false],
    ];
    for (const [file, cfg, steps] of variants) {
      const { t } = fixture(`vae/step_${file}.safetensors`);
      const init = prefixed(t, 'init.');
      const x = f32of(t, 'x'), eps = f32of(t, 'eps'), w = f32of(t, 'w')[0];
      const N = x.length / 784;

      const step = (vae: VAE): { y: Float32Array; terms: ReturnType<typeof vaeObjective> } => {
        const xb = backend.alloc(x.length);
        xb.set(x);
        vae.train();
        vae.zeroGrad();
        const y = vae.forward(new Tensor([N, 1, 28, 28], xb), eps);
        const D = vae.latentDim;
        const dy = backend.alloc(y.size), dMu = new Float32Array(N * D), dLv = new Float32Array(N * D);
        const terms = vaeObjective(y.data, xb, vae.lastMu!.data, vae.lastLogvar!.data, N, 784, D, w, dy, dMu, dLv);
        const ycopy = y.data.slice(0, y.size);
        vae.backward(new Tensor(y.shape, dy), dMu, dLv);
        return { y: ycopy, terms };
      };

      it(`${file}: mu, logvar, z, reconstruction, loss terms and every gradient of one step`, () => {
        const vae = new VAE(cfg).to(backend);
        vae.loadStateDict(init);
        const { y, terms } = step(vae);
        expectClose(vae.lastMu!.data, f32of(t, 'mu'), `${file} mu`);
        expectClose(vae.lastLogvar!.data, f32of(t, 'logvar'), `${file} logvar`);
        expectClose(vae.lastLatent!.data, f32of(t, 'z'), `${file} z`);
        expectClose(y, f32of(t, 'y'), `${file} y`);
        expect(Math.abs(terms.reconstruction - f32of(t, 'recon')[0])).toBeLessThan(1e-5);
        expect(Math.abs(terms.kl - f32of(t, 'kl')[0])).toBeLessThan(1e-4 * Math.max(1, terms.kl));
        expect(Math.abs(terms.loss - f32of(t, 'loss')[0])).toBeLessThan(1e-4 * Math.max(1, terms.loss));
        for (const [k, p] of vae.namedParameters()) expectClose(p.grad, f32of(t, `grad.${k}`), `${file} grad.${k}`);
      });

      if (!steps) continue;
      for (const opt of ['sgd', 'adam'] as const) {
        it(`${file}: every parameter and running statistic after one ${opt} step`, () => {
          const vae = new VAE(cfg).to(backend);
          vae.loadStateDict(init);
          const o = opt === 'sgd' ? new SGD(vae.parameters(), { lr: 0.01, momentum: 0.9 }) : new Adam(vae.parameters(), { lr: ADAM_LR });
          step(vae);
          o.step();
          const after = prefixed(t, `${opt}.`);
          const params = new Set([...vae.namedParameters()].map(([k]) => k));
          const grads = [...params].map((k) => f32of(t, `grad.${k}`));
          for (const [k, e] of vae.stateDict()) {
            const ours = e.dtype === 'F32' ? (e.data as Float32Array) : Float32Array.from(e.data as BigInt64Array, Number);
            // Adam's step is +-lr where the gradient is rounding noise (helpers.ts, expectAdamStepClose)
            if (opt === 'adam' && params.has(k)) expectAdamStepClose(ours, f32of(after, k), f32of(t, `grad.${k}`), grads, ADAM_LR, `${file} ${opt}.${k}`);
            else expectClose(ours, f32of(after, k), `${file} ${opt}.${k}`);
          }
        });
      }
    }

    it("sparse: the study's autoencoder with Keras's L1 activity penalty on z, every gradient of one step", () => {
      const { t } = fixture('vae/sparse_bn_z2.safetensors');
      const model = new AutoEncoder({ model: 'bn', latent: 2 }).to(backend);
      model.loadStateDict(prefixed(t, 'init.'));
      const x = f32of(t, 'x'), N = x.length / 784, lam = f32of(t, 'lambda')[0];
      const xb = backend.alloc(x.length);
      xb.set(x);
      model.train();
      model.zeroGrad();
      const y = model.forward(new Tensor([N, 1, 28, 28], xb));
      const z = model.lastLatent!;
      expectClose(z.data, f32of(t, 'z'), 'z');
      const dy = backend.alloc(y.size), dz = new Float32Array(N * 2);
      const recon = mseLoss(y.data, xb, y.size, dy);
      const penalty = l1Activity(z.data, N, 2, lam, dz);
      expect(Math.abs(recon - f32of(t, 'recon')[0])).toBeLessThan(1e-5);
      expect(Math.abs(penalty - f32of(t, 'penalty')[0])).toBeLessThan(1e-6);
      model.backward(new Tensor(y.shape, dy), dz);
      for (const [k, p] of model.namedParameters()) expectClose(p.grad, f32of(t, `grad.${k}`), `sparse grad.${k}`);
    });

    it('draws the noise from the seeded generator: the same seed gives the same z, eval mode gives the mean', () => {
      const { t } = fixture('vae/step_bn_z2.safetensors');
      const x = f32of(t, 'x'), N = 4;
      const run = (seed: number): Float32Array => {
        const vae = new VAE({ latent: 2 }, undefined, { noise: new Rng(seed) }).to(backend);
        vae.loadStateDict(prefixed(t, 'init.'));
        const xb = backend.alloc(x.length);
        xb.set(x);
        vae.train();
        vae.forward(new Tensor([N, 1, 28, 28], xb));
        const z = vae.lastLatent!.data.slice(0, 2 * N);
        const eps = vae.lastEps!.data, mu = vae.lastMu!.data, lv = vae.lastLogvar!.data;
        for (let i = 0; i < 2 * N; i++) expect(z[i]).toBeCloseTo(mu[i] + Math.exp(0.5 * lv[i]) * eps[i], 5);
        vae.eval();
        vae.forward(new Tensor([N, 1, 28, 28], xb));
        expect(vae.lastLatent!.data.slice(0, 2 * N)).toEqual(vae.lastMu!.data.slice(0, 2 * N));
        return z;
      };
      const a = run(1), b = run(1), c = run(2);
      expect(a).toEqual(b);
      expect(a).not.toEqual(c);
    });
  });
}

describe('VAE state dict and configuration', () => {
  it("has the PyTorch VAE's key names in its order, and tells a VAE's weights from an autoencoder's", () => {
    const { t } = fixture('vae/step_bn_z2.safetensors');
    const init = prefixed(t, 'init.');
    const vae = new VAE({ latent: 2 });
    expect([...vae.stateDict().keys()]).toEqual([...init.keys()]);
    expect(isVaeStateDict(init)).toBe(true);
    const ae = new AutoEncoder({ latent: 2 }).stateDict();
    expect(isVaeStateDict(ae)).toBe(false);
    expect(() => checkModelKind(ae, true, 'run/model.safetensors'))
      .toThrow(/^run\/model\.safetensors: holds a plain autoencoder's weights, not a VAE's \(no mu\/logvar heads\): drop --model vae or use a VAE run$/);
    expect(() => checkModelKind(init, false, 'x.safetensors')).toThrow(/^x\.safetensors: holds a VAE's weights/);
    expect(() => checkModelKind(init, true, 'x')).not.toThrow();
    expect(() => new VAE({ latentActivation: 'leaky' })).toThrow(/^--latent-activation: a VAE's mean and log-variance heads take no activation; expected none, got 'leaky'$/);
  });

  it('the same weight seed gives the same weights; sample() decodes N(0, I) draws', () => {
    const a = new VAE({ latent: 2 }, new Rng(3)).stateDict(), b = new VAE({ latent: 2 }, new Rng(3)).stateDict();
    expect(a.get('mu.weight')!.data).toEqual(b.get('mu.weight')!.data);
    expect(a.get('mu.weight')!.data).not.toEqual(a.get('logvar.weight')!.data);
    const vae = new VAE({ latent: 2 }, new Rng(3));
    const s = vae.sample(5, new Rng(9));
    expect(s.images).toHaveLength(5 * 784);
    expect(s.images).toEqual(vae.decode(s.z, 5));
    for (const v of s.images) expect(Math.abs(v)).toBeLessThanOrEqual(1);
  });
});

function torchPython(): string | null {
  for (const py of ['/usr/bin/python3', '/work/.venv-torch/bin/python']) {
    try { execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' }); return py; } catch { /* next */ }
  }
  return null;
}
const py = torchPython();
if (!py && process.env.CI === 'true') throw new Error('CI needs python3-torch for the PyTorch VAE load test');

describe.skipIf(!py)('a latentlab VAE in PyTorch', () => {
  for (const [latent, args] of [[10, ['10']], ['conv', ['conv']]] as const) {
    it(`latent ${latent}: loads with strict=True and gives the same mean, log-variance and reconstruction`, () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-vae-'));
      const vae = new VAE({ latent }, new Rng(4), { noise: new Rng(5) });
      // a training step first, so that the running statistics are not the initial ones
      const x = new Float32Array(8 * 784);
      new Rng(6).fillUniform(x, -1, 1);
      vae.train();
      const y = vae.forward(new Tensor([8, 1, 28, 28], x));
      const dy = new Float32Array(y.size), D = vae.latentDim;
      const dMu = new Float32Array(8 * D), dLv = new Float32Array(8 * D);
      vaeObjective(y.data, x, vae.lastMu!.data, vae.lastLogvar!.data, 8, 784, D, 1, dy, dMu, dLv);
      vae.backward(new Tensor(y.shape, dy), dMu, dLv);
      new SGD(vae.parameters(), { lr: 0.01 }).step();
      writeFileSync(path.join(dir, 'model.safetensors'), saveSafetensors(vae.stateDict()));
      const xin = x.subarray(0, 3 * 784);
      writeFileSync(path.join(dir, 'in.safetensors'), saveSafetensors(new Map([['x', f32([3, 1, 28, 28], xin.slice())]])));
      const out = path.join(dir, 'out.safetensors');
      const r = spawnSync(py!, [path.join(ROOT, 'tools', 'fixtures', 'gen_vae.py'), '--load', path.join(dir, 'model.safetensors'),
        path.join(dir, 'in.safetensors'), out, ...args], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^ok: strict load/);
      const ref = loadSafetensors(readFileSync(out), 'out').tensors;
      const stats = vae.encodeStats(xin, 3);
      expectClose(stats.mu, f32of(ref, 'mu'), 'mu');
      expectClose(stats.logvar, f32of(ref, 'logvar'), 'logvar');
      expectClose(vae.reconstruct(xin, 3), f32of(ref, 'y'), 'reconstruction');
    });
  }
});
