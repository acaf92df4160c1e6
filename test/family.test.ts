/**
 * The autoencoder family's helpers: input corruption (--noise) and denoising, PSNR, sparsity statistics,
 * latent health, the worst-N anomaly search, the VAE's evaluation per test image and its prior grid.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/engine/rng.js';
import { klPerDimension } from '../src/engine/latent_loss.js';
import { corrupt, formatNoise, parseNoise } from '../src/lab/data/noise.js';
import { readIdxSplit } from '../src/lab/data/idx.js';
import { denoise } from '../src/lab/analysis/denoise.js';
import { perImageMse, perImagePsnr, psnr, psnrFromMse } from '../src/lab/analysis/quality.js';
import { psnrOfUnitMse } from '../src/lab/data/image.js';
import { sparsityStats } from '../src/lab/analysis/sparsity.js';
import { latentHealth } from '../src/lab/analysis/latent_health.js';
import { errorHistogram, worstN } from '../src/lab/analysis/anomaly.js';
import { evaluateVae, normalQuantile, priorGridPoints } from '../src/lab/analysis/vae_eval.js';
import { VAE } from '../src/lab/models/vae.js';
import { f32of, fixture, MNIST_DIR } from './helpers.js';

function images(n: number, seed: number): Float32Array {
  // digit-like: background -1, a bright square in the middle
  const x = new Float32Array(n * 784).fill(-1), r = new Rng(seed);
  for (let i = 0; i < n; i++)
    for (let y = 8; y < 20; y++) for (let c = 8; c < 20; c++) x[i * 784 + y * 28 + c] = r.uniform(0.5, 1);
  return x;
}

describe('--noise', () => {
  it('parses gaussian:SIGMA, saltpepper:P, mask:P and none, and prints them back', () => {
    expect(parseNoise('gaussian:0.5')).toEqual({ kind: 'gaussian', sigma: 0.5 });
    expect(parseNoise('saltpepper:0.1')).toEqual({ kind: 'saltpepper', p: 0.1 });
    expect(parseNoise('mask:1')).toEqual({ kind: 'mask', p: 1 });
    expect(parseNoise('none')).toBeNull();
    for (const s of ['gaussian:0.25', 'saltpepper:0.05', 'mask:0.3', 'none']) expect(formatNoise(parseNoise(s))).toBe(s);
  });

  it('rejects bad specs with one line naming the flag and what was expected', () => {
    const bad: [string, RegExp][] = [
      ['gaussian:abc', /^--noise gaussian:abc: SIGMA must be a number >= 0 \(in \[0, 1\] pixel units\), got 'abc'$/],
      ['gaussian:-0.1', /^--noise gaussian:-0\.1: SIGMA must be a number >= 0/],
      ['gaussian:', /^--noise gaussian:: SIGMA must be a number >= 0/],
      ['saltpepper:1.5', /^--noise saltpepper:1\.5: P must be a probability in \[0, 1\], got '1\.5'$/],
      ['mask:-0.2', /^--noise mask:-0\.2: P must be a probability in \[0, 1\], got '-0\.2'$/],
      ['blur:2', /^--noise: expected gaussian:SIGMA, saltpepper:P, mask:P or none, got 'blur:2'$/],
      ['gaussian', /^--noise: expected gaussian:SIGMA, saltpepper:P, mask:P or none, got 'gaussian'$/],
    ];
    for (const [s, re] of bad) {
      let msg = '';
      try { parseNoise(s); } catch (e) { msg = (e as Error).message; }
      expect(msg, s).toMatch(re);
      expect(msg.includes('\n')).toBe(false);
    }
    expect(() => parseNoise('mask:2', 'config.json: noise')).toThrow(/^config\.json: noise mask:2: P must be/);
  });

  it('corrupts the inputs only, stays in [-1, 1], is seeded, and has the asked strength', () => {
    const clean = images(50, 1), keep = clean.slice();
    const n = clean.length;
    const g = corrupt(clean, parseNoise('gaussian:0.1'), new Rng(3));
    expect(clean).toEqual(keep);
    expect(g).toEqual(corrupt(clean, parseNoise('gaussian:0.1'), new Rng(3)));
    expect(g).not.toEqual(corrupt(clean, parseNoise('gaussian:0.1'), new Rng(4)));
    // background pixels at -1 are clipped from below: the unclipped half has std 2 * 0.1 on the [-1, 1] scale
    let s = 0, c = 0, min = 0, max = 0;
    for (let i = 0; i < n; i++) { min = Math.min(min, g[i]); max = Math.max(max, g[i]); if (clean[i] === -1 && g[i] > -1) { s += (g[i] + 1) ** 2; c++; } }
    expect(min).toBe(-1);
    expect(max).toBeLessThanOrEqual(1);
    expect(c / (n * (1 - 144 / 784))).toBeGreaterThan(0.45);
    expect(Math.sqrt(s / c)).toBeGreaterThan(0.17);
    expect(Math.sqrt(s / c)).toBeLessThan(0.23);

    const sp = corrupt(clean, parseNoise('saltpepper:0.2'), new Rng(3));
    let changed = 0, white = 0, black = 0;
    for (let i = 0; i < n; i++) if (sp[i] !== clean[i]) { changed++; expect(Math.abs(sp[i])).toBe(1); if (sp[i] === 1) white++; else black++; }
    // 20% of pixels drawn, about half of them to a value they already had (black on the background)
    expect(white / n).toBeGreaterThan(0.09);
    expect(white / n).toBeLessThan(0.11);
    expect(black).toBeGreaterThan(0);
    expect(changed / n).toBeGreaterThan(0.1);

    const m = corrupt(clean, parseNoise('mask:0.5'), new Rng(3));
    let ink = 0, dropped = 0;
    for (let i = 0; i < n; i++) if (clean[i] > -1) { ink++; if (m[i] === -1) dropped++; else expect(m[i]).toBe(clean[i]); }
    expect(dropped / ink).toBeGreaterThan(0.45);
    expect(dropped / ink).toBeLessThan(0.55);

    expect(corrupt(clean, null, new Rng(3))).toEqual(clean);
    expect(() => corrupt(clean, parseNoise('mask:0.5'), new Rng(3), clean)).toThrow(/out must not be the clean input/);
  });
});

describe('PSNR and denoising', () => {
  it('PSNR is 10 log10(1 / mse01) with mse01 = mse / 4, per image and together', () => {
    const a = images(3, 1), b = a.slice();
    for (let i = 0; i < 784; i++) b[i] += 0.2; // image 0: mse 0.04
    for (let i = 784; i < 2 * 784; i++) b[i] -= 0.02; // image 1: mse 0.0004
    const e = perImageMse(b, a, 3);
    expect(e[0]).toBeCloseTo(0.04, 6);
    expect(e[1]).toBeCloseTo(0.0004, 8);
    expect(e[2]).toBe(0);
    const p = perImagePsnr(b, a, 3);
    expect(p[0]).toBeCloseTo(10 * Math.log10(4 / 0.04), 4);
    expect(p[2]).toBe(Infinity);
    expect(psnrFromMse(0.04)).toBeCloseTo(psnrOfUnitMse(0.01), 12);
    const all = psnr(b, a, 3);
    expect(all.mse).toBeCloseTo((0.04 + 0.0004) / 3, 7);
    expect(all.psnr).toBeCloseTo(10 * Math.log10(4 / all.mse), 8);
  });

  it('denoise: PSNR of noisy vs clean before, of the model output vs clean after', () => {
    const clean = images(8, 2);
    const spec = parseNoise('gaussian:0.3');
    const identity = { reconstruct: (x: Float32Array, n: number) => x.slice(0, n * 784) };
    const r = denoise(identity, clean, 8, spec, new Rng(5));
    expect(r.noisy).toEqual(corrupt(clean, spec, new Rng(5)));
    expect(r.after.psnr).toBeCloseTo(r.before.psnr, 10);
    expect(r.before.psnr).toBeLessThan(20);
    const oracle = { reconstruct: (_x: Float32Array, n: number) => clean.slice(0, n * 784) };
    expect(denoise(oracle, clean, 8, spec, new Rng(5)).after.psnr).toBe(Infinity);
    // a real (untrained) model gives a finite, different figure
    const vae = new VAE({ latent: 2 }, new Rng(1));
    const v = denoise(vae, clean, 4, spec, new Rng(5));
    expect(v.denoised).toHaveLength(4 * 784);
    expect(Number.isFinite(v.after.psnr)).toBe(true);
    expect(v.after.psnr).not.toBeCloseTo(v.before.psnr, 3);
  });
});

describe('sparsity', () => {
  it('mean absolute activation, near-zero share and dead units', () => {
    const N = 100, D = 4, z = new Float32Array(N * D);
    for (let r = 0; r < N; r++) {
      z[r * D] = 1; // always on
      z[r * D + 1] = r % 2 ? 0 : -0.5; // half near zero
      z[r * D + 2] = 0.005; // dead (below tol)
      z[r * D + 3] = r === 0 ? 2 : 0; // dead on 99% of inputs
    }
    const s = sparsityStats(z, N, D);
    expect(s.meanAbs).toBeCloseTo((100 + 25 + 0.5 + 2) / 400, 6);
    expect(s.nearZeroShare).toBeCloseTo((50 + 100 + 99) / 400, 10);
    expect(s.perUnit.map((u) => u.nearZeroShare)).toEqual([0, 0.5, 1, 0.99]);
    expect(s.deadUnitShare).toBe(0.5);
    expect(sparsityStats(z, N, D, 0.001).perUnit[2].nearZeroShare).toBe(0);
  });
});

describe('latent health', () => {
  const grid = (N: number, f: (r: number) => [number, number]): Float32Array => {
    const z = new Float32Array(N * 2);
    for (let r = 0; r < N; r++) { const [a, b] = f(r); z[2 * r] = a; z[2 * r + 1] = b; }
    return z;
  };

  it("names LeakyReLU's negative slope and its fix", () => {
    // the one-epoch latent: [-0.06, 0] x [-0.1, 0.8], nearly all negative
    const z = grid(1000, (r) => [-0.06 * ((r % 97) / 96) - 1e-4, r % 25 === 0 ? 0.8 * ((r % 100) / 99) : -0.1 * ((r % 89) / 88) - 1e-4]);
    const h = latentHealth(z, 1000, 2, 'leaky');
    expect(h.condition).toBe('negative-slope');
    expect(h.dims[0].negativeShare).toBe(1);
    expect(h.inactiveShare).toBeCloseTo((1000 + 960) / 2000, 10);
    expect(h.message).toMatch(/^z is 98% in LeakyReLU's negative slope \(1-99% range \[-0\.059, -1\.0e-4\] x \[-0\.099, 0\.40\]\): try --latent-activation none$/);
    expect(h.dims[0].min).toBeCloseTo(-0.0601, 4);
    expect(h.dims[1].max).toBeCloseTo(0.8 * 75 / 99, 5);
  });

  it("names ReLU's dead units", () => {
    const z = grid(200, (r) => [0, r % 4 === 0 ? r / 50 : 0]);
    const h = latentHealth(z, 200, 2, 'relu');
    expect(h.condition).toBe('dead');
    expect(h.message).toBe("z is 88% zero in ReLU's flat region (dimension 1 dead): try --latent-activation none or leaky");
  });

  it('names a dimension that does not vary, and a latent that does not vary at all', () => {
    const z = grid(300, (r) => [Math.sin(r), 0.5 + 1e-5 * Math.cos(r)]);
    const h = latentHealth(z, 300, 2, 'none');
    expect(h.condition).toBe('collapsed');
    expect(h.message).toMatch(/^z dimension 2 barely varies \(std 7\.\de-6 vs 0\.71\): the decoder ignores it; train longer or use a smaller --latent$/);
    const flat = latentHealth(grid(10, () => [0.3, 0.3]), 10, 2, 'none');
    expect(flat.message).toBe('z does not vary between images (std 0): every point decodes to the same image; check the learning rate and train longer');
  });

  it("names a VAE's unused dimensions from their KL, and says healthy otherwise", () => {
    const N = 500, z = grid(N, (r) => [Math.sin(r), Math.cos(r * 1.3)]);
    const mu = z, logvar = grid(N, (r) => [-2, r % 2 ? -0.001 : 0.001]);
    const muPrior = grid(N, (r) => [Math.sin(r), 0]);
    const kl = klPerDimension(muPrior, logvar, N, 2);
    const h = latentHealth(mu, N, 2, 'none', { klPerDim: kl });
    expect(kl[1]).toBeLessThan(1e-5);
    expect(h.condition).toBe('posterior-collapse');
    expect(h.message).toBe('z dimension 2 carries almost no information (KL < 0.01 nats, the posterior is the prior): lower --beta or use --kl-warmup');
    const ok = latentHealth(z, N, 2, 'leaky');
    expect(ok.condition).toBe('healthy');
    expect(ok.message).toMatch(/^z is healthy: every dimension spreads \(1-99% range \[-1\.0, 1\.0\] x \[-1\.0, 1\.0\]\), \d+% in LeakyReLU's negative slope$/);
    expect(ok.dims[0].std).toBeCloseTo(Math.SQRT1_2, 1);
  });
});

describe('anomaly search', () => {
  const names = ['zero', 'one', 'two'];
  const errors = [0.1, 0.5, 0.2, 0.9, 0.5, 0.05, 0.3];
  const labels = [0, 1, 2, 1, 0, 2, 2];

  it('the N worst images, highest error first, with their label and class name', () => {
    expect(worstN(errors, labels, 3, names)).toEqual([
      { index: 3, error: 0.9, label: 1, className: 'one' },
      { index: 1, error: 0.5, label: 1, className: 'one' },
      { index: 4, error: 0.5, label: 0, className: 'zero' },
    ]);
    expect(worstN(errors, labels, 100, names)).toHaveLength(7);
    expect(() => worstN(errors, labels, 0, names)).toThrow(/^--worst: expected a whole number >= 1, got 0$/);
  });

  it('the per-class histogram of the error', () => {
    const h = errorHistogram(errors, labels, names, 3);
    expect(h.edges.map((e) => +e.toFixed(6))).toEqual([0, 0.3, 0.6, 0.9]);
    expect(h.counts).toEqual([[1, 1, 0], [0, 1, 1], [2, 1, 0]]);
    expect(h.counts.flat().reduce((a, b) => a + b, 0)).toBe(7);
    expect(h.perClass[2]).toEqual({ className: 'two', n: 3, mean: (0.2 + 0.05 + 0.3) / 3, max: 0.3 });
    expect(() => errorHistogram(errors, [0, 1, 2, 1, 0, 2, 3], names)).toThrow(/label 3 of image 6 has no class name \(3 given\)/);
  });
});

describe('VAE evaluation and the prior grid', () => {
  it("the standard normal's quantiles match torch.special.ndtri", () => {
    const { t } = fixture('vae/losses.safetensors');
    const p = f32of(t, 'ndtri.p'), x = f32of(t, 'ndtri.x');
    // the fixture's float64 values load as float32: compare to float32 precision
    for (let i = 0; i < p.length; i++) expect(Math.abs(normalQuantile(p[i]) - x[i]), `p = ${p[i]}`).toBeLessThan(2e-6 * Math.max(1, Math.abs(x[i])));
    expect(() => normalQuantile(1)).toThrow(/expected p in \(0, 1\)/);
  });

  it('the prior grid: normal quantiles of 0.05 ... 0.95, row 0 at the top, other dimensions at 0', () => {
    const g = priorGridPoints(3, 4);
    const q = normalQuantile(0.95);
    expect(g[0]).toBeCloseTo(-q, 6); // top left: x low, y high
    expect(g[1]).toBeCloseTo(q, 6);
    expect(g[2]).toBe(0);
    expect(g[3]).toBe(0);
    expect(g[4 * 4]).toBeCloseTo(0, 6); // centre
    expect(g[8 * 4]).toBeCloseTo(q, 6); // bottom right
    expect(g[8 * 4 + 1]).toBeCloseTo(-q, 6);
  });

  it.skipIf(!existsSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte.gz')))('reconstruction, KL and ELBO per test image', () => {
    const test = readIdxSplit(path.join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'), path.join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
    const vae = new VAE({ latent: 2 }, new Rng(2));
    const r = evaluateVae(vae, test, 16, 8);
    expect(r.n).toBe(16);
    const x = new Float32Array(16 * 784);
    for (let i = 0; i < x.length; i++) x[i] = test.images[i] / 127.5 - 1;
    const mse = perImageMse(vae.reconstruct(x, 16), x, 16);
    for (let i = 0; i < 16; i++) {
      expect(r.reconstruction[i]).toBeCloseTo(mse[i], 6);
      expect(r.kl[i]).toBeGreaterThanOrEqual(0);
      // ELBO = -0.5 * SSE - 0.5 * 784 log(2 pi) - KL
      expect(r.elbo[i]).toBeCloseTo(-0.5 * 784 * r.reconstruction[i] - 392 * Math.log(2 * Math.PI) - r.kl[i], 3);
    }
    expect(r.mean.kl).toBeCloseTo(r.klPerDim[0] + r.klPerDim[1], 6);
    expect(r.labels).toEqual(test.labels.slice(0, 16));
  });
});
