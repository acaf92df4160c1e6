/**
 * The latent scatter: one dot per test image at its latent (or projected) coordinates, coloured
 * by digit, with a legend, an optional box (the region decoded by `sample`) and marks.
 */
import { type Ctx2D, type Rect, clearRect, text } from './ctx.js';
import { type Range, type Transform, clipToPlot, dataRange, drawFrame, drawGrid, makeTransform, plotArea } from './axes.js';
import { type LabelNamer, digitName, labelColor } from './palette.js';

export type NumArray = Float32Array | Float64Array | number[];
export type LabelArray = Uint8Array | Int32Array | number[];

export interface ScatterMark { x: number; y: number; label?: string }

export interface ScatterOptions {
  x: NumArray;
  y: NumArray;
  labels: LabelArray;
  xRange?: Range;
  yRange?: Range;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** A rectangle [x0, y0, x1, y1] in data coordinates, drawn as a dashed black outline. */
  box?: [number, number, number, number];
  /** Points to mark with a black cross (and optional text). */
  marks?: ScatterMark[];
  /** Labels not to draw (greyed out in the legend). */
  hidden?: Set<number>;
  /** Dot diameter in pixels (default 4). */
  pointSize?: number;
  /** Dot opacity (default 1). */
  alpha?: number;
  /** Legend names (default: the digit). */
  labelName?: LabelNamer;
  /** Which labels the legend lists (default 0-9 plus any other label present). */
  legendLabels?: number[];
  /** Draw the legend (default true). */
  legend?: boolean;
}

const LEGEND_SWATCH = 12;

function legendLabelsOf(opts: ScatterOptions): number[] {
  if (opts.legendLabels) return opts.legendLabels;
  const set = new Set<number>([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (let i = 0; i < opts.labels.length; i++) set.add(opts.labels[i]);
  return [...set].sort((a, b) => a - b);
}

function legendWidth(ctx: Ctx2D, names: string[]): number {
  ctx.save();
  ctx.font = '14px sans-serif';
  let w = 0;
  for (const s of names) w = Math.max(w, ctx.measureText(s).width);
  ctx.restore();
  return Math.ceil(LEGEND_SWATCH + 8 + w + 12);
}

/**
 * Draw a scatter plot into `rect` (white background) and return the data → pixel transform used.
 */
export function drawScatter(ctx: Ctx2D, opts: ScatterOptions, rect: Rect): Transform {
  const { x, y, labels } = opts;
  const n = Math.min(x.length, y.length, labels.length);
  const hidden = opts.hidden ?? new Set<number>();
  const nameOf = opts.labelName ?? digitName;
  const showLegend = opts.legend ?? true;
  const legendLabels = showLegend ? legendLabelsOf(opts) : [];
  const names = legendLabels.map((l) => nameOf(l));
  const lw = showLegend ? legendWidth(ctx, names) : 0;

  clearRect(ctx, rect);
  const plot = plotArea(rect, opts, lw);
  const visible = (i: number) => i < n && !hidden.has(labels[i]);
  const xRange = opts.xRange ?? dataRange(x, 0.05, visible);
  const yRange = opts.yRange ?? dataRange(y, 0.05, visible);
  const t = makeTransform(xRange, yRange, plot);

  drawGrid(ctx, t);
  clipToPlot(ctx, t);
  drawPoints(ctx, t, opts, n, hidden);
  if (opts.box) drawBox(ctx, t, opts.box);
  if (opts.marks) drawMarks(ctx, t, opts.marks);
  ctx.restore();
  drawFrame(ctx, t, opts);

  if (showLegend) {
    const lx = plot.x + plot.width + 12;
    let ly = plot.y + 4;
    for (let k = 0; k < legendLabels.length; k++) {
      const l = legendLabels[k];
      const off = hidden.has(l);
      ctx.save();
      ctx.fillStyle = off ? '#dddddd' : labelColor(l);
      ctx.beginPath();
      ctx.arc(lx + LEGEND_SWATCH / 2, ly + LEGEND_SWATCH / 2, LEGEND_SWATCH / 2, 0, Math.PI * 2);
      ctx.fill();
      ctx.restore();
      text(ctx, names[k], lx + LEGEND_SWATCH + 8, ly + LEGEND_SWATCH / 2, { baseline: 'middle', color: off ? '#aaaaaa' : '#000000' });
      ly += 22;
    }
  }
  return t;
}

function drawPoints(ctx: Ctx2D, t: Transform, opts: ScatterOptions, n: number, hidden: Set<number>): void {
  const { x, y, labels } = opts;
  const size = opts.pointSize ?? 4;
  const r = size / 2;
  const round = size >= 3;
  ctx.save();
  ctx.globalAlpha = opts.alpha ?? 1;
  // Draw in data order (like matplotlib) but batch runs of the same label into one path.
  let i = 0;
  while (i < n) {
    const l = labels[i];
    let j = i;
    ctx.fillStyle = labelColor(l);
    ctx.beginPath();
    let any = false;
    while (j < n && labels[j] === l) {
      const xv = x[j], yv = y[j];
      if (!hidden.has(l) && Number.isFinite(xv) && Number.isFinite(yv)) {
        const px = t.toPx(xv), py = t.toPy(yv);
        if (round) { ctx.moveTo(px + r, py); ctx.arc(px, py, r, 0, Math.PI * 2); }
        else ctx.rect(px - r, py - r, size, size);
        any = true;
      }
      j++;
    }
    if (any) ctx.fill();
    i = j;
  }
  ctx.restore();
}

function drawBox(ctx: Ctx2D, t: Transform, box: [number, number, number, number]): void {
  const [x0, y0, x1, y1] = box;
  const px0 = t.toPx(Math.min(x0, x1)), px1 = t.toPx(Math.max(x0, x1));
  const py0 = t.toPy(Math.max(y0, y1)), py1 = t.toPy(Math.min(y0, y1));
  ctx.save();
  ctx.lineWidth = 2;
  ctx.strokeStyle = '#000000';
  ctx.setLineDash([8, 5]);
  ctx.strokeRect(px0, py0, px1 - px0, py1 - py0);
  ctx.restore();
}

function drawMarks(ctx: Ctx2D, t: Transform, marks: ScatterMark[]): void {
  ctx.save();
  ctx.strokeStyle = '#000000';
  ctx.lineWidth = 2;
  ctx.setLineDash([]);
  for (const m of marks) {
    const px = t.toPx(m.x), py = t.toPy(m.y);
    ctx.beginPath();
    ctx.moveTo(px - 6, py - 6); ctx.lineTo(px + 6, py + 6);
    ctx.moveTo(px - 6, py + 6); ctx.lineTo(px + 6, py - 6);
    ctx.stroke();
    if (m.label) text(ctx, m.label, px + 9, py - 9, { bold: true, baseline: 'bottom' });
  }
  ctx.restore();
}
