/**
 * Loss curves: several series of (step, value) drawn as lines with a legend, optional log-y.
 */
import { type Ctx2D, type Rect, clearRect, font, text } from './ctx.js';
import { type Range, type Transform, clipToPlot, dataRange, drawFrame, drawGrid, logDataRange, makeTransform, plotArea } from './axes.js';
import { TAB10 } from './palette.js';

export interface CurveSeries {
  name: string;
  steps: ArrayLike<number>;
  values: ArrayLike<number>;
  dashed?: boolean;
  /** Default: tab10 by series index. */
  color?: string;
}

export interface CurvesOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  xRange?: Range;
  yRange?: Range;
  lineWidth?: number;
}

function concat(series: CurveSeries[], key: 'steps' | 'values'): number[] {
  const out: number[] = [];
  for (const s of series) {
    const a = s[key];
    const m = Math.min(s.steps.length, s.values.length);
    for (let i = 0; i < m; i++) out.push(a[i]);
  }
  return out;
}

/** Draw the curves into `rect` (white background); returns the transform. */
export function drawCurves(ctx: Ctx2D, series: CurveSeries[], rect: Rect, opts: CurvesOptions = {}): Transform {
  const labels = { title: opts.title, xLabel: opts.xLabel ?? 'step', yLabel: opts.yLabel ?? 'loss' };
  clearRect(ctx, rect);
  const plot = plotArea(rect, labels);
  const logY = opts.logY ?? false;
  const steps = concat(series, 'steps'), values = concat(series, 'values');
  const xRange = opts.xRange ?? dataRange(steps, 0.02);
  const yRange = opts.yRange ?? (logY ? logDataRange(values) : dataRange(values, 0.05));
  const t = makeTransform(xRange, yRange, plot, logY);
  drawGrid(ctx, t);

  clipToPlot(ctx, t);
  series.forEach((s, k) => {
    ctx.save();
    ctx.strokeStyle = s.color ?? TAB10[k % TAB10.length];
    ctx.lineWidth = opts.lineWidth ?? 2;
    ctx.lineJoin = 'round';
    ctx.setLineDash(s.dashed ? [7, 5] : []);
    ctx.beginPath();
    let pen = false;
    const m = Math.min(s.steps.length, s.values.length);
    for (let i = 0; i < m; i++) {
      const xv = s.steps[i], yv = s.values[i];
      if (!Number.isFinite(xv) || !Number.isFinite(yv) || (logY && !(yv > 0))) { pen = false; continue; }
      const px = t.toPx(xv), py = t.toPy(yv);
      if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
    }
    ctx.stroke();
    ctx.restore();
  });
  ctx.restore();
  drawFrame(ctx, t, labels);

  // legend, top-right inside the plot
  if (series.length) {
    ctx.save();
    ctx.font = font(14);
    let tw = 0;
    for (const s of series) tw = Math.max(tw, ctx.measureText(s.name).width);
    ctx.restore();
    const lineLen = 28, rowH = 20, pad = 8;
    const w = Math.ceil(pad + lineLen + 8 + tw + pad), h = pad * 2 + rowH * series.length - 4;
    const x0 = plot.x + plot.width - w - 10, y0 = plot.y + 10;
    ctx.save();
    ctx.fillStyle = 'rgba(255,255,255,0.9)';
    ctx.strokeStyle = '#bbbbbb';
    ctx.lineWidth = 1;
    ctx.fillRect(x0, y0, w, h);
    ctx.strokeRect(x0 + 0.5, y0 + 0.5, w - 1, h - 1);
    ctx.restore();
    series.forEach((s, k) => {
      const cy = y0 + pad + rowH * k + 8;
      ctx.save();
      ctx.strokeStyle = s.color ?? TAB10[k % TAB10.length];
      ctx.lineWidth = opts.lineWidth ?? 2;
      ctx.setLineDash(s.dashed ? [7, 5] : []);
      ctx.beginPath();
      ctx.moveTo(x0 + pad, cy); ctx.lineTo(x0 + pad + lineLen, cy);
      ctx.stroke();
      ctx.restore();
      text(ctx, s.name, x0 + pad + lineLen + 8, cy, { baseline: 'middle' });
    });
  }
  return t;
}
