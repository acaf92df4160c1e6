import { describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { deflateSync } from 'node:zlib';
import {
  TAB10_RGB, boxGridPoints, cellRect, countGifFrames, drawCurves, drawImageGrid, drawScatter, encodeGif,
  formatTick, latentFigure, latentFigureSize, logTicks, lossFigure, lossFigureSize, lossRunFromMetrics, makeTransform, niceTicks,
  reconFigure, reconFigureSize, sampleFigure, sampleFigureSize, sheetFigure, sheetFigureSize, trainingFrame,
  trainingFrameSize, type GridLayout, type Transform,
} from '../src/viz/index.js';
import { decodePng, renderPng, renderRgba, rgbaRenderer, writeFileAtomic } from '../src/viz/node.js';
import { pngRgba } from '../src/viz/png-pixels.js';
import { nearestIndex, PCA, project, symmetricEigen, umap2d } from '../src/lab/analysis/projection.js';
import { Rng } from '../src/engine/rng.js';

function pixel(img: { width: number; data: Uint8ClampedArray }, x: number, y: number): number[] {
  const o = (Math.round(y) * img.width + Math.round(x)) * 4;
  return Array.from(img.data.subarray(o, o + 4));
}

/** n fake digits: a bright square whose position depends on the index. */
function fakeDigits(n: number, h = 28, w = 28): Float32Array {
  const out = new Float32Array(n * h * w).fill(-1);
  for (let k = 0; k < n; k++) {
    const r0 = (k * 3) % (h - 6), c0 = (k * 7) % (w - 6);
    for (let r = r0; r < r0 + 6; r++) for (let c = c0; c < c0 + 6; c++) out[k * h * w + r * w + c] = 1;
  }
  return out;
}

function fakeLatents(n: number) {
  const rng = new Rng(1);
  const x = new Float32Array(n), y = new Float32Array(n), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 10;
    x[i] = Math.cos(labels[i]) * 5 + rng.normal();
    y[i] = Math.sin(labels[i]) * 5 + rng.normal();
  }
  return { x, y, labels };
}

describe('axes', () => {
  it('nice ticks are round', () => {
    expect(niceTicks(0, 10, 6).ticks).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(-0.27, 0.93, 6).ticks).toEqual([-0.2, 0, 0.2, 0.4, 0.6, 0.8]);
    const { ticks, step } = niceTicks(0.1, 0.35, 6);
    expect(ticks.map((v) => formatTick(v, step))).toEqual(['0.10', '0.15', '0.20', '0.25', '0.30', '0.35']);
    expect(logTicks(0.01, 10)).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]);
  });

  it('transforms round-trip and put y upwards', () => {
    const t = makeTransform([-2, 2], [0, 10], { x: 100, y: 50, width: 400, height: 200 });
    expect(t.toPx(-2)).toBe(100);
    expect(t.toPx(0)).toBe(300);
    expect(t.toPy(0)).toBe(250);
    expect(t.toPy(10)).toBe(50);
    expect(t.fromPx(t.toPx(1.25))).toBeCloseTo(1.25, 12);
    expect(t.fromPy(t.toPy(3.5))).toBeCloseTo(3.5, 12);
    const lg = makeTransform([0, 1], [0.01, 1], { x: 0, y: 0, width: 100, height: 100 }, true);
    expect(lg.toPy(0.1)).toBeCloseTo(50, 9);
    expect(lg.fromPy(50)).toBeCloseTo(0.1, 9);
  });
});

describe('scatter', () => {
  it('a point lands on its pixel in its digit colour; far pixels are white', async () => {
    let t!: Transform;
    const png = await renderPng(800, 800, (ctx) => {
      t = drawScatter(ctx, {
        x: [1.5], y: [-0.5], labels: [3], xRange: [-4, 4], yRange: [-4, 4], pointSize: 10,
        title: 'one point', xLabel: 'z1', yLabel: 'z2',
      }, { x: 0, y: 0, width: 800, height: 800 });
    });
    const img = await decodePng(png);
    expect([img.width, img.height]).toEqual([800, 800]);
    const px = t.toPx(1.5), py = t.toPy(-0.5);
    // the plot maps [-4,4] linearly onto its area
    expect(px).toBeCloseTo(t.plot.x + (5.5 / 8) * t.plot.width, 9);
    expect(py).toBeCloseTo(t.plot.y + (4.5 / 8) * t.plot.height, 9);
    expect(pixel(img, px, py)).toEqual([...TAB10_RGB[3], 255]);
    expect(pixel(img, t.toPx(-3.4), t.toPy(3.3))).toEqual([255, 255, 255, 255]);
    expect(pixel(img, 2, 2)).toEqual([255, 255, 255, 255]);
  });

  it('hidden labels are not drawn', async () => {
    let t!: Transform;
    const img = await decodePng(await renderPng(400, 400, (ctx) => {
      t = drawScatter(ctx, { x: [0], y: [0], labels: [5], xRange: [-1, 1], yRange: [-1, 1], pointSize: 8, hidden: new Set([5]) },
        { x: 0, y: 0, width: 400, height: 400 });
    }));
    // (0,0) is on a grid line (light grey) but not the point's colour
    expect(pixel(img, t.toPx(0) + 2, t.toPy(0) + 2)).toEqual([255, 255, 255, 255]);
  });
});

describe('image grid', () => {
  it('distinct images give distinct cells, drawn as white digits on black', async () => {
    const h = 28, w = 28, rows = 3, cols = 4;
    const images = fakeDigits(rows * cols);
    let g!: GridLayout;
    const img = await decodePng(await renderPng(500, 400, (ctx) => {
      g = drawImageGrid(ctx, images, rows, cols, h, w, { x: 0, y: 0, width: 500, height: 400 }, { gap: 2, title: 'grid', rowLabels: ['a', 'b', 'c'] });
    }));
    expect(g.cellWidth % w).toBe(0); // whole-number upscaling
    const cells = new Set<string>();
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const cr = cellRect(g, r, c);
        const k = r * cols + c;
        // sample every source pixel at its block centre; must match the source
        let sig = '';
        for (let sr = 0; sr < h; sr++) {
          for (let sc = 0; sc < w; sc++) {
            const v = pixel(img, cr.x + (sc + 0.5) * (cr.width / w) - 0.5, cr.y + (sr + 0.5) * (cr.height / h) - 0.5)[0];
            expect(v).toBe(images[k * h * w + sr * w + sc] > 0 ? 255 : 0);
            sig += v > 127 ? '1' : '0';
          }
        }
        cells.add(sig);
      }
    }
    expect(cells.size).toBe(rows * cols);
  });
});

describe('figures', () => {
  const { x, y, labels } = fakeLatents(500);
  const cases: [string, { width: number; height: number }, (ctx: Parameters<typeof latentFigure>[0]) => void][] = [
    ['latent', latentFigureSize({ caption: 'PCA plane: other dimensions at their mean' }), (ctx) => latentFigure(ctx, {
      x, y, labels, xLabel: 'z1', yLabel: 'z2', caption: 'PCA plane: other dimensions at their mean',
      marks: [{ x: 0, y: 0, label: 'origin' }],
    })],
    ['sample', sampleFigureSize(10), (ctx) => sampleFigure(ctx, {
      x, y, labels, box: [-2, -2, 2, 2], images: fakeDigits(100), gridN: 10, caption: 'box sample',
    })],
    ['recon', reconFigureSize(6), (ctx) => reconFigure(ctx, { originals: fakeDigits(60), recons: fakeDigits(60).map((v) => v * 0.5), perDigit: 6 })],
    ['frame', trainingFrameSize(), (ctx) => trainingFrame(ctx, {
      x, y, labels, xRange: [-10, 10], yRange: [-10, 10], images: fakeDigits(64), gridN: 8, step: 1200, loss: 0.0123456, box: [-3, -3, 3, 3],
    })],
    ['sheet', sheetFigureSize(4, 8), (ctx) => sheetFigure(ctx, { images: fakeDigits(32), rows: 4, cols: 8, title: 'digit 7, spread 1' })],
    ['loss', lossFigureSize(), (ctx) => lossFigure(ctx, [
      { name: 'run', train: { steps: [0, 100, 200, 300], values: [1, 0.3, 0.1, 0.05] }, test: { steps: [100, 300], values: [0.4, 0.08] } },
    ], { logY: true })],
  ];
  for (const [name, size, draw] of cases) {
    it(`${name} renders to a PNG of its declared size`, async () => {
      const img = await decodePng(await renderPng(size.width, size.height, draw));
      expect([img.width, img.height]).toEqual([size.width, size.height]);
      expect(pixel(img, 1, 1)).toEqual([255, 255, 255, 255]);
      // something was drawn: not all white
      let dark = 0;
      for (let i = 0; i < img.data.length; i += 4) if (img.data[i] < 128) dark++;
      expect(dark).toBeGreaterThan(500);
    });
  }

  it('box grid points run left→right, top→bottom, edges included', () => {
    const p = boxGridPoints([0, 0, 2, 1], 3);
    expect(Array.from(p.subarray(0, 6))).toEqual([0, 1, 1, 1, 2, 1]);
    expect(Array.from(p.subarray(12, 18))).toEqual([0, 0, 1, 0, 2, 0]);
  });

  it('loss: the training reconstruction term is plotted against the test MSE, the latent term in a panel of its own', async () => {
    // metrics lines of a supervised run: loss = recon + latent; old lines (no recon) of an unsupervised run
    const lines = [
      { step: 10, loss: 0.9, recon: 0.4, latent: 0.5 },
      { step: 20, loss: 0.6, recon: 0.3, latent: 0.3 },
      { step: 20, testLoss: 0.35 },
      { step: 30, loss: 0.45, recon: 0.25, latent: 0.2 },
    ];
    const run = lossRunFromMetrics('sup', lines, { step: 30, testMse: 0.28 });
    expect(run.train).toEqual({ steps: [10, 20, 30], values: [0.4, 0.3, 0.25] }); // recon, not the total
    expect(run.latent).toEqual({ steps: [10, 20, 30], values: [0.5, 0.3, 0.2] });
    expect(run.test).toEqual({ steps: [20, 30], values: [0.35, 0.28] });
    const old = lossRunFromMetrics('old', [{ step: 5, loss: 0.7 }, { step: 6, loss: 2, latent: 1 }], { step: 6, testMse: NaN });
    expect(old.train).toEqual({ steps: [5], values: [0.7] }); // a total with a latent term is never taken for recon
    expect(old.test.steps).toEqual([]);

    const size = lossFigureSize({ latent: true });
    expect(size.height).toBeGreaterThan(lossFigureSize().height);
    let t: ReturnType<typeof lossFigure> | undefined;
    const img = await decodePng(await renderPng(size.width, size.height, (ctx) => { t = lossFigure(ctx, [run]); }));
    const { recon, latent } = t!;
    expect(latent).not.toBeNull();
    // the reconstruction panel's y range covers train recon and test MSE, and not the totals (0.9)
    expect(recon.yRange[1]).toBeLessThan(0.5);
    expect(recon.yRange[0]).toBeLessThanOrEqual(0.25);
    // the latent panel lies below the reconstruction panel, on the same steps
    expect(latent!.plot.y).toBeGreaterThanOrEqual(recon.plot.y + recon.plot.height);
    expect(latent!.xRange).toEqual(recon.xRange);
    // a test evaluation is a dot in the run's colour at (step, MSE) of the top panel
    const blue = TAB10_RGB[0];
    const dot = pixel(img, recon.toPx(20), recon.toPy(0.35));
    for (let k = 0; k < 3; k++) expect(Math.abs(dot[k] - blue[k])).toBeLessThanOrEqual(3);
    // the latent term's curve passes through (20, 0.3) in the bottom panel
    const onCurve = pixel(img, latent!.toPx(20), latent!.toPy(0.3));
    for (let k = 0; k < 3; k++) expect(Math.abs(onCurve[k] - blue[k])).toBeLessThanOrEqual(40);
    expect(t!.series.map((s) => s.name)).toEqual(['sup train', 'sup test', 'sup latent term']);
  });

  it('curves with non-positive values in log mode do not throw', async () => {
    const png = await renderPng(600, 400, (ctx) => {
      drawCurves(ctx, [{ name: 'a', steps: [0, 1, 2], values: [1, 0, NaN] }], { x: 0, y: 0, width: 600, height: 400 }, { logY: true, title: 't' });
    });
    expect((await decodePng(png)).width).toBe(600);
  });
});

describe('gif', () => {
  it('5 frames encode to a looping GIF with 5 image descriptors', () => {
    const w = 120, h = 80;
    const frames = Array.from({ length: 5 }, (_, k) => renderRgba(w, h, (ctx) => {
      ctx.fillStyle = '#1f77b4';
      ctx.fillRect(k * 20, 10, 20, 20);
    }));
    for (const mode of ['global', 'per-frame'] as const) {
      const gif = encodeGif(frames, w, h, { delay: 80, palette: mode });
      expect(String.fromCharCode(...gif.subarray(0, 6))).toBe('GIF89a');
      expect(gif[6] | (gif[7] << 8)).toBe(w);
      expect(gif[8] | (gif[9] << 8)).toBe(h);
      expect(countGifFrames(gif)).toBe(5);
      expect(Buffer.from(gif).includes(Buffer.from('NETSCAPE2.0'))).toBe(true);
    }
    expect(() => encodeGif([new Uint8ClampedArray(10)], w, h)).toThrow(/bytes/);
  });

  it('decoded GIF frame via canvas has the expected size', async () => {
    const frames = [renderRgba(64, 48, () => {}), renderRgba(64, 48, (ctx) => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, 10, 10); })];
    const img = await decodePng(encodeGif(frames, 64, 48)); // @napi-rs/canvas decodes GIF too
    expect([img.width, img.height]).toEqual([64, 48]);
  });
});

describe('frame pixels through a PNG', () => {
  /** A PNG of `rows` (each width * channels bytes), row y filtered with filters[y % filters.length]. */
  function png(width: number, rows: Uint8Array[], channels: 3 | 4, filters: number[]): Uint8Array {
    const stride = width * channels, raw = new Uint8Array((stride + 1) * rows.length);
    rows.forEach((row, y) => {
      const f = filters[y % filters.length], up = y > 0 ? rows[y - 1] : new Uint8Array(stride);
      raw[(stride + 1) * y] = f;
      for (let i = 0; i < stride; i++) {
        const a = i >= channels ? row[i - channels] : 0, b = up[i], c = i >= channels ? up[i - channels] : 0;
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
        raw[(stride + 1) * y + 1 + i] = (row[i] - pred) & 255;
      }
    });
    const chunk = (type: string, body: Uint8Array): Buffer => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(body.length, 0);
      head.write(type, 4, 'latin1');
      return Buffer.concat([head, body, Buffer.alloc(4)]);   // the CRC is not read
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(rows.length, 4);
    ihdr[8] = 8; ihdr[9] = channels === 4 ? 6 : 2;
    const z = deflateSync(raw);
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
      chunk('IDAT', z.subarray(0, 10)), chunk('IDAT', z.subarray(10)), chunk('IEND', new Uint8Array(0))]);
  }

  it('decodes every row filter, RGBA and RGB, from several IDAT chunks', () => {
    const r = new Rng(5), w = 7, h = 10;
    for (const channels of [4, 3] as const) {
      const rows = Array.from({ length: h }, () => Uint8Array.from({ length: w * channels }, () => Math.floor(r.uniform(0, 256))));
      const got = pngRgba(png(w, rows, channels, [0, 1, 2, 3, 4]));
      expect([got.width, got.height]).toEqual([w, h]);
      const want = new Uint8ClampedArray(w * h * 4);
      rows.forEach((row, y) => { for (let x = 0; x < w; x++) for (let k = 0; k < 4; k++) want[(y * w + x) * 4 + k] = k < channels ? row[x * channels + k] : 255; });
      expect(got.data).toEqual(want);
    }
    expect(() => pngRgba(new Uint8Array([1, 2, 3]))).toThrow(/not a PNG/);
  });

  it("gives a frame's pixels exactly as Skia's own read-back does", () => {
    const w = 300, h = 200;
    const drawFn = (ctx: import('../src/viz/ctx.js').Ctx2D): void => {
      for (let i = 0; i < 200; i++) {
        ctx.fillStyle = `hsla(${(i * 37) % 360}, 70%, 50%, 0.4)`;
        ctx.beginPath(); ctx.arc((i * 37) % w, (i * 91) % h, 2 + (i % 5), 0, 7); ctx.fill();
      }
      ctx.fillStyle = '#000'; ctx.font = '16px sans-serif'; ctx.fillText('step 50 · loss 0.123', 10, 20);
    };
    const { createCanvas } = createRequire(import.meta.url)('@napi-rs/canvas') as typeof import('@napi-rs/canvas');
    const c = createCanvas(w, h), ctx = c.getContext('2d');
    ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
    drawFn(ctx as unknown as import('../src/viz/ctx.js').Ctx2D);
    const render = rgbaRenderer(w, h);
    render(() => {});   // the canvas is cleared between frames
    expect(render(drawFn)).toEqual(ctx.getImageData(0, 0, w, h).data);
  });
});

describe('writeFileAtomic', () => {
  it('writes the bytes and leaves no temporary file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'latentlab-viz-'));
    try {
      const p = join(dir, 'sub', 'a.png');
      await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
      await writeFileAtomic(p, new Uint8Array([4, 5]));
      expect(Array.from(await readFile(p))).toEqual([4, 5]);
      expect(await readdir(join(dir, 'sub'))).toEqual(['a.png']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('projection', () => {
  it('Jacobi eigen-decomposition satisfies A v = λ v', () => {
    const rng = new Rng(3);
    const n = 12;
    const b = Array.from({ length: n * n }, () => rng.normal());
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += b[i * n + k] * b[j * n + k];
    const { values, vectors } = symmetricEigen(a, n);
    for (let r = 0; r < n; r++) {
      if (r > 0) expect(values[r]).toBeLessThanOrEqual(values[r - 1]);
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let j = 0; j < n; j++) av += a[i * n + j] * vectors[r * n + j];
        expect(av).toBeCloseTo(values[r] * vectors[r * n + i], 8);
      }
    }
  });

  it('PCA recovers a planted plane in 10-D and inverse∘transform is the identity on it', () => {
    const rng = new Rng(7);
    const n = 2000, d = 10;
    // an orthonormal pair u, v
    const u = Array.from({ length: d }, () => rng.normal());
    const v = Array.from({ length: d }, () => rng.normal());
    const nu = Math.hypot(...u); u.forEach((_, j) => (u[j] /= nu));
    const uv = u.reduce((s, a, j) => s + a * v[j], 0); v.forEach((_, j) => (v[j] -= uv * u[j]));
    const nv = Math.hypot(...v); v.forEach((_, j) => (v[j] /= nv));
    const mean = Array.from({ length: d }, (_, j) => j - 4);
    const data = new Float32Array(n * d);
    const planeOnly = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const a = 5 * rng.normal(), b = 2 * rng.normal();
      for (let j = 0; j < d; j++) {
        planeOnly[i * d + j] = mean[j] + a * u[j] + b * v[j];
        data[i * d + j] = planeOnly[i * d + j] + 0.01 * rng.normal();
      }
    }
    const pca = PCA.fit(data, n, d, 2);
    const c1 = Array.from(pca.components.subarray(0, d)), c2 = Array.from(pca.components.subarray(d, 2 * d));
    expect(Math.abs(c1.reduce((s, a, j) => s + a * u[j], 0))).toBeGreaterThan(0.999);
    expect(Math.abs(c2.reduce((s, a, j) => s + a * v[j], 0))).toBeGreaterThan(0.999);
    expect(pca.explainedRatio[0] + pca.explainedRatio[1]).toBeGreaterThan(0.999);
    // points on the fitted plane: inverse then transform gives them back, and transform then inverse too
    const pts = new Float32Array([0, 0, 1, -2, 3.5, 0.25]);
    const back = pca.transform(pca.inverse(pts, 3), 3);
    for (let i = 0; i < pts.length; i++) expect(back[i]).toBeCloseTo(pts[i], 4);
    const onPlane = pca.inverse(pca.transform(planeOnly, 5), 5);
    const again = pca.inverse(pca.transform(onPlane, 5), 5);
    for (let i = 0; i < onPlane.length; i++) expect(again[i]).toBeCloseTo(onPlane[i], 4);
    // and the projection of the clean plane data is close to the data itself
    for (let i = 0; i < onPlane.length; i++) expect(Math.abs(onPlane[i] - planeOnly[i])).toBeLessThan(0.01);

    const p = project(data, d, 'pca');
    expect(p.projection.method).toBe('pca');
    expect(p.projection.caption).toMatch(/other dimensions at their mean/);
    expect(p.x.length).toBe(n);
    expect(p.projection.inverse!(new Float32Array([1, 2]), 1).length).toBe(d);
  });

  it('project keeps 2-D latents as they are', () => {
    const z = new Float32Array([1, 2, 3, 4]);
    const p = project(z, 2, 'pca');
    expect(p.projection.method).toBe('identity');
    expect(Array.from(p.x)).toEqual([1, 3]);
    expect(Array.from(p.y)).toEqual([2, 4]);
  });

  it('UMAP reports its progress (the neighbour graph, then each epoch) without changing the embedding', () => {
    const rng = new Rng(4);
    const n = 60, d = 5;
    const data = Float32Array.from({ length: n * d }, () => rng.normal());
    const seen: [number, number][] = [];
    const a = umap2d(data, n, d, { seed: 2, nEpochs: 40, onProgress: (e, total) => seen.push([e, total]) });
    expect(Array.from(a)).toEqual(Array.from(umap2d(data, n, d, { seed: 2, nEpochs: 40 })));
    expect(seen).toEqual(Array.from({ length: 41 }, (_, e) => [e, 40]));
  });

  it('nearestIndex finds the row nearest to a point (the stand-in for an inverse UMAP lacks)', () => {
    const pts = Float32Array.of(0, 0, 5, 5, -3, 4, 1, -1);
    expect(nearestIndex(pts, 4, 2, [4, 4.5])).toBe(1);
    expect(nearestIndex(pts, 4, 2, [-2, 3])).toBe(2);
    expect(nearestIndex(pts, 4, 2, [0.7, -0.6])).toBe(3);
    expect(nearestIndex(pts, 0, 2, [0, 0])).toBe(-1);
  });

  it('UMAP is seeded and reproducible, and separates clusters', () => {
    const rng = new Rng(11);
    const n = 150, d = 8;
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = (i % 3) * 10 * (j === i % 3 ? 1 : 0) + rng.normal() * 0.3;
    const a = umap2d(data, n, d, { seed: 5, nEpochs: 100 });
    const b = umap2d(data, n, d, { seed: 5, nEpochs: 100 });
    expect(Array.from(a)).toEqual(Array.from(b));
    const c = umap2d(data, n, d, { seed: 6, nEpochs: 100 });
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(a.every(Number.isFinite)).toBe(true);
    const p = project(data, d, 'umap', { seed: 5, nEpochs: 100 });
    expect(Array.from(p.coords)).toEqual(Array.from(a));
    expect(p.projection.inverse).toBeUndefined();
    // separates: every point's nearest neighbour in the embedding is of its own cluster, and the
    // clusters' centres lie farther apart than twice any cluster's mean spread
    const cluster = (i: number): number => i % 3;
    let sameNN = 0;
    for (let i = 0; i < n; i++) {
      let best = -1, bd = Infinity;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const dd = (a[2 * i] - a[2 * j]) ** 2 + (a[2 * i + 1] - a[2 * j + 1]) ** 2;
        if (dd < bd) { bd = dd; best = j; }
      }
      if (cluster(best) === cluster(i)) sameNN++;
    }
    expect(sameNN).toBe(n);
    const centre = [0, 1, 2].map((c) => {
      let sx = 0, sy = 0, m = 0;
      for (let i = c; i < n; i += 3) { sx += a[2 * i]; sy += a[2 * i + 1]; m++; }
      return [sx / m, sy / m];
    });
    const spread = [0, 1, 2].map((c) => {
      let s = 0, m = 0;
      for (let i = c; i < n; i += 3) { s += Math.hypot(a[2 * i] - centre[c][0], a[2 * i + 1] - centre[c][1]); m++; }
      return s / m;
    });
    for (let u = 0; u < 3; u++) for (let v = u + 1; v < 3; v++)
      expect(Math.hypot(centre[u][0] - centre[v][0], centre[u][1] - centre[v][1])).toBeGreaterThan(2 * Math.max(spread[u], spread[v]));
  });
});
