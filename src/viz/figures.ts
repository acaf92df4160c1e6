/**
 * Composite figures. Each takes plain data (no model), draws into a context whose size is given
 * by its companion `xxxSize(...)` function, and returns nothing. White background throughout.
 */
import { type Ctx2D, type Rect, clearRect, text } from './ctx.js';
import type { Range } from './axes.js';
import { drawScatter, type ScatterOptions } from './scatter.js';
import { drawImageGrid } from './grid.js';
import { type LabelNamer, digitName } from './palette.js';
import { type CurveSeries, type CurvesOptions, drawCurves } from './curves.js';

export interface Size { width: number; height: number }

const CAPTION_H = 32;
const HEADER_H = 40;

function caption(ctx: Ctx2D, s: string, width: number, y: number): void {
  text(ctx, s, width / 2, y + CAPTION_H / 2, { align: 'center', baseline: 'middle', color: '#333333' });
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}

// ---------------------------------------------------------------------------------------------
// latent scatter

export type LatentFigureOptions = ScatterOptions & { caption?: string };

export function latentFigureSize(opts: { caption?: string } = {}): Size {
  return { width: 800, height: 800 + (opts.caption ? CAPTION_H : 0) };
}

/** The latent scatter alone (800 × 800, plus a caption strip if given). */
export function latentFigure(ctx: Ctx2D, opts: LatentFigureOptions): void {
  const size = latentFigureSize(opts);
  clearRect(ctx, { x: 0, y: 0, ...size });
  drawScatter(ctx, { title: 'Latent space (test set)', ...opts }, { x: 0, y: 0, width: 800, height: 800 });
  if (opts.caption) caption(ctx, opts.caption, size.width, 800);
}

// ---------------------------------------------------------------------------------------------
// sampling a box of the latent plane

/**
 * The N × N points of a box [x0, y0, x1, y1] in the order the sample grid shows them: row-major,
 * row 0 at the top (y1), column 0 at the left (x0), edges included. Returns N·N (x, y) pairs.
 */
export function boxGridPoints(box: [number, number, number, number], n: number): Float32Array {
  const [x0, y0, x1, y1] = box;
  const out = new Float32Array(n * n * 2);
  const f = (i: number) => (n === 1 ? 0.5 : i / (n - 1));
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const k = (r * n + c) * 2;
      out[k] = x0 + (x1 - x0) * f(c);
      out[k + 1] = y1 + (y0 - y1) * f(r);
    }
  }
  return out;
}

export type SampleFigureOptions = ScatterOptions & {
  box: [number, number, number, number];
  /** gridN² decoded images, in boxGridPoints order. */
  images: Float32Array;
  gridN: number;
  h?: number;
  w?: number;
  caption?: string;
  gridTitle?: string;
};

export function sampleFigureSize(_gridN?: number): Size {
  return { width: 1600, height: 800 + CAPTION_H };
}

/** Scatter with the box drawn, and beside it the grid of images decoded inside the box. */
export function sampleFigure(ctx: Ctx2D, opts: SampleFigureOptions): void {
  const size = sampleFigureSize(opts.gridN);
  clearRect(ctx, { x: 0, y: 0, ...size });
  drawScatter(ctx, { title: 'Latent space (test set)', ...opts }, { x: 0, y: 0, width: 800, height: 800 });
  const [x0, y0, x1, y1] = opts.box;
  const gridTitle = opts.gridTitle ?? `Decoded from x ∈ [${fmt(x0)}, ${fmt(x1)}], y ∈ [${fmt(y0)}, ${fmt(y1)}]`;
  drawImageGrid(ctx, opts.images, opts.gridN, opts.gridN, opts.h ?? 28, opts.w ?? 28,
    { x: 820, y: 8, width: 760, height: 784 }, { gap: 1, title: gridTitle });
  caption(ctx, opts.caption ?? '', size.width, 800);
}

// ---------------------------------------------------------------------------------------------
// reconstructions

export interface ReconFigureOptions {
  /** rows·perDigit images, row-major (row r holds the perDigit examples of class rowLabels[r]). */
  originals: Float32Array;
  /** The reconstructions, same layout. */
  recons: Float32Array;
  perDigit: number;
  /** Default 10 (digits 0-9). */
  rows?: number;
  h?: number;
  w?: number;
  title?: string;
  /** Row names (default: the digit). */
  labelName?: LabelNamer;
  rowLabels?: string[];
  caption?: string;
}

const CELL = 56; // 28 px × 2
const PANEL_GAP = 40;

function panelWidth(cols: number, w: number): number {
  const cell = Math.max(CELL, w * 2);
  return cols * cell + (cols - 1) * 2;
}

export function reconFigureSize(perDigit: number, rows = 10, h = 28, w = 28, opts: { caption?: string } = {}): Size {
  const cellH = Math.max(CELL, h * 2);
  const pw = panelWidth(perDigit, w);
  return {
    width: 20 + 40 + pw + PANEL_GAP + pw + 20,
    height: HEADER_H + 24 + rows * cellH + (rows - 1) * 2 + 16 + (opts.caption ? CAPTION_H : 0),
  };
}

/** Originals (left) beside their reconstructions (right), perDigit per row, one row per class. */
export function reconFigure(ctx: Ctx2D, opts: ReconFigureOptions): void {
  const rows = opts.rows ?? 10, h = opts.h ?? 28, w = opts.w ?? 28;
  const size = reconFigureSize(opts.perDigit, rows, h, w, opts);
  clearRect(ctx, { x: 0, y: 0, ...size });
  const nameOf = opts.labelName ?? digitName;
  const rowLabels = opts.rowLabels ?? Array.from({ length: rows }, (_, r) => nameOf(r));
  const pw = panelWidth(opts.perDigit, w);
  const top = HEADER_H + 24;
  const gridH = size.height - top - (opts.caption ? CAPTION_H : 0) - 8;
  text(ctx, opts.title ?? 'Reconstructions', size.width / 2, 28, { size: 16, bold: true, align: 'center', baseline: 'bottom' });
  const left: Rect = { x: 20, y: top, width: 40 + pw, height: gridH };
  const right: Rect = { x: 20 + 40 + pw + PANEL_GAP, y: top, width: pw, height: gridH };
  drawImageGrid(ctx, opts.originals, rows, opts.perDigit, h, w, left, { gap: 2, rowLabels });
  drawImageGrid(ctx, opts.recons, rows, opts.perDigit, h, w, right, { gap: 2 });
  text(ctx, 'original', left.x + 40 + pw / 2, HEADER_H + 10, { align: 'center', baseline: 'middle', bold: true });
  text(ctx, 'reconstruction', right.x + pw / 2, HEADER_H + 10, { align: 'center', baseline: 'middle', bold: true });
  if (opts.caption) caption(ctx, opts.caption, size.width, size.height - CAPTION_H);
}

// ---------------------------------------------------------------------------------------------
// training animation frame

export type TrainingFrameOptions = Omit<ScatterOptions, 'xRange' | 'yRange'> & {
  /** Fixed axes, so frames line up in the animation. */
  xRange: Range;
  yRange: Range;
  /** gridN² decoded images (e.g. of a fixed box, in boxGridPoints order). */
  images: Float32Array;
  gridN: number;
  h?: number;
  w?: number;
  step: number;
  loss: number;
  gridTitle?: string;
};

export function trainingFrameSize(): Size {
  return { width: 1200, height: 600 + HEADER_H };
}

/** One animation frame: scatter with fixed axes beside a decoded grid, "step S · loss L" on top. */
export function trainingFrame(ctx: Ctx2D, opts: TrainingFrameOptions): void {
  const size = trainingFrameSize();
  clearRect(ctx, { x: 0, y: 0, ...size });
  text(ctx, `step ${opts.step} · loss ${fmt(opts.loss)}`, size.width / 2, HEADER_H / 2 + 2,
    { size: 18, bold: true, align: 'center', baseline: 'middle' });
  drawScatter(ctx, { pointSize: 3, ...opts }, { x: 0, y: HEADER_H, width: 600, height: 600 });
  drawImageGrid(ctx, opts.images, opts.gridN, opts.gridN, opts.h ?? 28, opts.w ?? 28,
    { x: 610, y: HEADER_H, width: 580, height: 592 }, { gap: 1, title: opts.gridTitle ?? 'Decoded' });
}

// ---------------------------------------------------------------------------------------------
// generated digits sheet

export interface SheetFigureOptions {
  images: Float32Array;
  rows: number;
  cols: number;
  h?: number;
  w?: number;
  title?: string;
  rowLabels?: string[];
  caption?: string;
}

export function sheetFigureSize(rows: number, cols: number, h = 28, w = 28, opts: { caption?: string; rowLabels?: string[] } = {}): Size {
  const cw = Math.max(CELL, w * 2), ch = Math.max(CELL, h * 2);
  const labelW = opts.rowLabels && opts.rowLabels.length ? 60 : 0;
  return {
    width: Math.max(400, 40 + labelW + cols * cw + (cols - 1) * 2),
    height: HEADER_H + rows * ch + (rows - 1) * 2 + 20 + (opts.caption ? CAPTION_H : 0),
  };
}

/** A sheet of generated digits. */
export function sheetFigure(ctx: Ctx2D, opts: SheetFigureOptions): void {
  const h = opts.h ?? 28, w = opts.w ?? 28;
  const size = sheetFigureSize(opts.rows, opts.cols, h, w, opts);
  clearRect(ctx, { x: 0, y: 0, ...size });
  text(ctx, opts.title ?? 'Generated digits', size.width / 2, 28, { size: 16, bold: true, align: 'center', baseline: 'bottom' });
  const gridH = size.height - HEADER_H - (opts.caption ? CAPTION_H : 0) - 10;
  drawImageGrid(ctx, opts.images, opts.rows, opts.cols, h, w,
    { x: 20, y: HEADER_H, width: size.width - 40, height: gridH }, { gap: 2, rowLabels: opts.rowLabels });
  if (opts.caption) caption(ctx, opts.caption, size.width, size.height - CAPTION_H);
}

// ---------------------------------------------------------------------------------------------
// loss curves

export function lossFigureSize(): Size {
  return { width: 900, height: 600 };
}

/** Loss against step for one or more series (e.g. train/test of several runs). */
export function lossFigure(ctx: Ctx2D, series: CurveSeries[], opts: CurvesOptions = {}): void {
  const size = lossFigureSize();
  drawCurves(ctx, series, { x: 0, y: 0, ...size }, { title: 'Loss', ...opts });
}
