/**
 * Axes: nice round tick values, data <-> pixel transforms and the drawing of frames, ticks,
 * grid lines, titles and axis labels.
 */
import { type Ctx2D, type Rect, font, text } from './ctx.js';

export type Range = [number, number];

/** A "nice" number near x: 1, 2, 5 × 10^k (Heckbert's algorithm). */
export function niceNumber(x: number, round: boolean): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const exp = Math.floor(Math.log10(x));
  const f = x / 10 ** exp;
  let nf: number;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * 10 ** exp;
}

/** Decimal places needed to print multiples of `step` exactly. */
export function tickDecimals(step: number): number {
  if (!(step > 0) || !Number.isFinite(step)) return 0;
  return Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
}

/** Round multiples of a nice step lying inside [min, max] (about `target` of them). */
export function niceTicks(min: number, max: number, target = 6): { ticks: number[]; step: number } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { ticks: [], step: 1 };
  if (min > max) [min, max] = [max, min];
  if (min === max) { min -= 1; max += 1; }
  const step = niceNumber((max - min) / Math.max(1, target - 1), true);
  const dec = tickDecimals(step);
  const eps = step * 1e-9;
  const ticks: number[] = [];
  for (let k = Math.ceil((min - eps) / step); k * step <= max + eps; k++) {
    const v = Number((k * step).toFixed(dec));
    ticks.push(Object.is(v, -0) ? 0 : v);
    if (ticks.length > 1000) break;
  }
  return { ticks, step };
}

/** Ticks for a log10 axis over [min, max] (both > 0): powers of ten, plus 2 and 5 for short ranges. */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max > 0)) return [];
  if (min > max) [min, max] = [max, min];
  const e0 = Math.floor(Math.log10(min) + 1e-9), e1 = Math.ceil(Math.log10(max) - 1e-9);
  const decades = e1 - e0;
  const mult = decades <= 1 ? [1, 2, 3, 5] : decades <= 3 ? [1, 2, 5] : [1];
  const every = Math.max(1, Math.ceil(decades / 8));
  const out: number[] = [];
  for (let e = e0; e <= e1; e++) {
    if ((e - e0) % every !== 0) continue;
    for (const m of mult) {
      const v = Number((m * 10 ** e).toPrecision(6));
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/** Tick label for a value on a linear axis with the given step. */
export function formatTick(v: number, step: number): string {
  const s = v.toFixed(tickDecimals(step));
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** Tick label for a log axis. */
export function formatLogTick(v: number): string {
  const e = Math.log10(v);
  if (e >= -3 && e < 5) return String(Number(v.toPrecision(3)));
  const m = v / 10 ** Math.floor(e + 1e-9);
  const ms = Number(m.toPrecision(2));
  return `${ms === 1 ? '' : `${ms}×`}1e${Math.floor(e + 1e-9)}`;
}

/** The range of the finite values of `v` (optionally only where keep(i)), padded by `pad` of its width. */
export function dataRange(v: ArrayLike<number>, pad = 0.05, keep?: (i: number) => boolean): Range {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    const a = v[i];
    if (!Number.isFinite(a) || (keep && !keep(i))) continue;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
  }
  if (lo === Infinity) return [-1, 1];
  if (lo === hi) { const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1; return [lo - d, hi + d]; }
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

/** Positive-value range for a log axis, padded by a fraction of a decade. */
export function logDataRange(v: ArrayLike<number>, pad = 0.05): Range {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    const a = v[i];
    if (!(a > 0) || !Number.isFinite(a)) continue;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
  }
  if (lo === Infinity) return [0.1, 10];
  if (lo === hi) return [lo / 2, hi * 2];
  const l0 = Math.log10(lo), l1 = Math.log10(hi), d = (l1 - l0) * pad;
  return [10 ** (l0 - d), 10 ** (l1 + d)];
}

/** A data <-> pixel mapping for one plot area. y grows upwards in data space. */
export interface Transform {
  xRange: Range;
  yRange: Range;
  /** The plot area in canvas pixels. */
  plot: Rect;
  logY: boolean;
  toPx(x: number): number;
  toPy(y: number): number;
  fromPx(px: number): number;
  fromPy(py: number): number;
}

/** The linear (or log-y) transform mapping xRange × yRange onto `plot`. */
export function makeTransform(xRange: Range, yRange: Range, plot: Rect, logY = false): Transform {
  const [x0, x1] = xRange;
  const fy = logY ? Math.log10 : (v: number) => v;
  const gy = logY ? (v: number) => 10 ** v : (v: number) => v;
  const y0 = fy(yRange[0]), y1 = fy(yRange[1]);
  const sx = plot.width / (x1 - x0 || 1), sy = plot.height / (y1 - y0 || 1);
  return {
    xRange: [x0, x1], yRange: [yRange[0], yRange[1]], plot: { ...plot }, logY,
    toPx: (x) => plot.x + (x - x0) * sx,
    toPy: (y) => plot.y + plot.height - (fy(y) - y0) * sy,
    fromPx: (px) => x0 + (px - plot.x) / sx,
    fromPy: (py) => gy(y0 + (plot.y + plot.height - py) / sy),
  };
}

export interface AxesLabels {
  title?: string;
  xLabel?: string;
  yLabel?: string;
}

export interface PlotMargins { top: number; right: number; bottom: number; left: number }

/** Margins around the plot area for titles, tick labels and axis labels. */
export function plotMargins(labels: AxesLabels, extraRight = 0): PlotMargins {
  return {
    top: labels.title ? 44 : 16,
    right: 20 + extraRight,
    bottom: labels.xLabel ? 56 : 34,
    left: labels.yLabel ? 76 : 56,
  };
}

/** The plot area inside `rect` (integer pixels) leaving room for labels and a right-hand legend. */
export function plotArea(rect: Rect, labels: AxesLabels, extraRight = 0): Rect {
  const m = plotMargins(labels, extraRight);
  const x = Math.round(rect.x + m.left), y = Math.round(rect.y + m.top);
  return {
    x, y,
    width: Math.max(10, Math.round(rect.x + rect.width - m.right) - x),
    height: Math.max(10, Math.round(rect.y + rect.height - m.bottom) - y),
  };
}

export interface TickSet { values: number[]; labels: string[] }

/** Ticks for the x axis of a transform. */
export function xTicks(t: Transform, target = 7): TickSet {
  const { ticks, step } = niceTicks(t.xRange[0], t.xRange[1], target);
  return { values: ticks, labels: ticks.map((v) => formatTick(v, step)) };
}

/** Ticks for the y axis of a transform (log-aware). */
export function yTicks(t: Transform, target = 7): TickSet {
  if (t.logY) {
    const values = logTicks(t.yRange[0], t.yRange[1]);
    return { values, labels: values.map(formatLogTick) };
  }
  const { ticks, step } = niceTicks(t.yRange[0], t.yRange[1], target);
  return { values: ticks, labels: ticks.map((v) => formatTick(v, step)) };
}

/** Light grid lines at the ticks (draw before the data). */
export function drawGrid(ctx: Ctx2D, t: Transform, color = '#e8e8e8'): void {
  const p = t.plot;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.setLineDash([]);
  ctx.beginPath();
  for (const v of xTicks(t).values) {
    const px = Math.round(t.toPx(v)) + 0.5;
    ctx.moveTo(px, p.y); ctx.lineTo(px, p.y + p.height);
  }
  for (const v of yTicks(t).values) {
    const py = Math.round(t.toPy(v)) + 0.5;
    ctx.moveTo(p.x, py); ctx.lineTo(p.x + p.width, py);
  }
  ctx.stroke();
  ctx.restore();
}

/** Frame, ticks, tick labels, axis labels and title (draw after the data). */
export function drawFrame(ctx: Ctx2D, t: Transform, labels: AxesLabels): void {
  const p = t.plot;
  ctx.save();
  ctx.strokeStyle = '#000000';
  ctx.lineWidth = 1;
  ctx.setLineDash([]);
  ctx.strokeRect(p.x + 0.5, p.y + 0.5, p.width - 1, p.height - 1);
  const xt = xTicks(t), yt = yTicks(t);
  ctx.beginPath();
  for (const v of xt.values) {
    const px = Math.round(t.toPx(v)) + 0.5;
    ctx.moveTo(px, p.y + p.height); ctx.lineTo(px, p.y + p.height + 5);
  }
  for (const v of yt.values) {
    const py = Math.round(t.toPy(v)) + 0.5;
    ctx.moveTo(p.x, py); ctx.lineTo(p.x - 5, py);
  }
  ctx.stroke();
  ctx.restore();
  xt.values.forEach((v, i) => text(ctx, xt.labels[i], t.toPx(v), p.y + p.height + 8, { size: 12, align: 'center', baseline: 'top', color: '#222222' }));
  yt.values.forEach((v, i) => text(ctx, yt.labels[i], p.x - 8, t.toPy(v), { size: 12, align: 'right', baseline: 'middle', color: '#222222' }));
  if (labels.xLabel) text(ctx, labels.xLabel, p.x + p.width / 2, p.y + p.height + 30, { align: 'center', baseline: 'top' });
  if (labels.yLabel) {
    ctx.save();
    ctx.font = font(12);
    let w = 0;
    for (const s of yt.labels) w = Math.max(w, ctx.measureText(s).width);
    ctx.restore();
    text(ctx, labels.yLabel, p.x - 16 - w, p.y + p.height / 2, { align: 'center', baseline: 'bottom', rotate: -Math.PI / 2 });
  }
  if (labels.title) text(ctx, labels.title, p.x + p.width / 2, p.y - 14, { size: 16, bold: true, align: 'center', baseline: 'bottom' });
}

/** Clip drawing to the plot area (caller must ctx.restore()). */
export function clipToPlot(ctx: Ctx2D, t: Transform): void {
  ctx.save();
  ctx.beginPath();
  ctx.rect(t.plot.x, t.plot.y, t.plot.width, t.plot.height);
  ctx.clip();
}
