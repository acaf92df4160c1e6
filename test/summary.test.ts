import { describe, expect, it } from 'vitest';
import { AutoEncoder } from '../src/lab/models/autoencoder.js';
import { formatSummary, summarize } from '../src/lab/models/summary.js';

describe('summary', () => {
  it("gives the study's table for bn, z=2", () => {
    const s = summarize(new AutoEncoder({ model: 'bn', latent: 2 }));
    const layers = s.rows.filter((r) => r.depth === 2);
    expect(layers.filter((r) => r.params > 0).map((r) => r.params)).toEqual([320, 129, 18496, 257, 36928, 257, 6274, 9408, 36928, 257, 18464, 129, 289]);
    expect(layers.map((r) => r.type).slice(0, 12)).toEqual(['Conv2d', 'BatchNorm2d', 'LeakyReLU', 'Conv2d', 'BatchNorm2d', 'LeakyReLU', 'Conv2d', 'BatchNorm2d', 'LeakyReLU', 'Flatten', 'Linear', 'LeakyReLU']);
    expect(layers.map((r) => r.outputShape.join(','))).toContain('-1,64,7,7');
    expect(s.rows.find((r) => r.layer === 'encoder')!.outputShape).toEqual([-1, 2]);
    expect(s.rows.find((r) => r.layer === 'decoder')!.outputShape).toEqual([-1, 1, 28, 28]);
    expect(s.total).toBe(128136);
    expect(s.nonTrainable).toBe(517);
    expect(s.trainable).toBe(128136 - 517);
    const text = formatSummary(s);
    expect(text).toMatch(/\| {4}└─10\s+Linear\s+\(-1, 2\)\s+6,274/);
    expect(text).toMatch(/Total params: 128,136/);
  });

  it('follows the variant: simple has no BatchNorm, conv latent is (2,7,7)', () => {
    const simple = summarize(new AutoEncoder({ model: 'simple', latent: 2 }));
    expect(simple.rows.some((r) => r.type === 'BatchNorm2d' || r.type === 'Tanh')).toBe(false);
    const conv = summarize(new AutoEncoder({ model: 'bn', latent: 'conv' }));
    expect(conv.rows.find((r) => r.layer === 'encoder')!.outputShape).toEqual([-1, 2, 7, 7]);
  });
});
