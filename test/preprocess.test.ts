import { describe, expect, it } from 'vitest';
import { mnistFromPixels, mnistPixelsFromPixels } from '../src/lab/data/preprocess.js';

/** An RGBA canvas of (w, h) filled with `bg`, with a filled rectangle of `fg`. */
function rect(w: number, h: number, bg: [number, number, number, number], fg: [number, number, number, number], r: { x: number; y: number; w: number; h: number }): Uint8ClampedArray {
  const d = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const c = x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h ? fg : bg;
    d.set(c, (y * w + x) * 4);
  }
  return d;
}

function stats(p: Uint8Array) {
  let x0 = 28, x1 = -1, y0 = 28, y1 = -1, m = 0, mx = 0, my = 0;
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const v = p[y * 28 + x]!;
    if (v > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    m += v; mx += v * x; my += v * y;
  }
  return { w: x1 - x0 + 1, h: y1 - y0 + 1, cx: mx / m, cy: my / m };
}

describe('mnistFromPixels', () => {
  it('dark ink on white paper (large, off-centre) becomes a centred white 20-px digit on black', () => {
    const d = rect(300, 200, [255, 255, 255, 255], [0, 0, 0, 255], { x: 10, y: 20, w: 40, h: 160 });
    const p = mnistPixelsFromPixels(d, 300, 200);
    const s = stats(p);
    expect(s.h).toBe(20);
    expect(s.w).toBe(5);
    expect(Math.abs(s.cx - 14)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(s.cy - 14)).toBeLessThanOrEqual(0.5);
    expect(p[14 * 28 + 14]).toBe(255);
    expect(p[0]).toBe(0);
    const x = mnistFromPixels(d, 300, 200);
    expect(x.length).toBe(784);
    expect(x[0]).toBe(-1);
    expect(x[14 * 28 + 14]).toBe(1);
  });

  it('light-on-dark input is kept; small inputs are enlarged bilinearly', () => {
    const d = rect(10, 10, [0, 0, 0, 255], [255, 255, 255, 255], { x: 2, y: 3, w: 4, h: 5 });
    const s = stats(mnistPixelsFromPixels(d, 10, 10));
    expect(s.h).toBe(20);
    expect(s.w).toBe(16);
    expect(Math.abs(s.cx - 14)).toBeLessThanOrEqual(0.5);
  });

  it('transparent canvas with black strokes: alpha is composited on white', () => {
    const d = rect(100, 100, [0, 0, 0, 0], [0, 0, 0, 255], { x: 40, y: 10, w: 20, h: 80 });
    const s = stats(mnistPixelsFromPixels(d, 100, 100));
    expect(s.h).toBe(20);
    expect(s.w).toBe(5);
  });

  it('grey channel input and a grey paper background', () => {
    const w = 50, h = 50;
    const g = new Uint8Array(w * h).fill(200);
    for (let y = 10; y < 40; y++) for (let x = 20; x < 30; x++) g[y * w + x] = 30;
    const p = mnistPixelsFromPixels(g, w, h, 1);
    expect(p[0]).toBe(0);
    expect(Math.max(...p)).toBe(255);
  });

  it('a blank image throws naming the input', () => {
    const d = rect(64, 64, [255, 255, 255, 255], [255, 255, 255, 255], { x: 0, y: 0, w: 0, h: 0 });
    expect(() => mnistFromPixels(d, 64, 64, 4, { name: 'pad.png' })).toThrow(/^pad\.png: no ink found/);
    expect(() => mnistFromPixels(d, 64, 64)).toThrow(/64x64 image: no ink/);
    expect(() => mnistFromPixels(new Uint8Array(5), 2, 2)).toThrow(/2x2 image: expected/);
  });
});
