/**
 * Composite figures. Each takes plain data (no model), draws into a context whose size is given
 * by its companion `xxxSize(...)` function, and returns nothing. White background throughout.
 */
import { type Ctx2D, type Rect, clearRect, text } from './ctx.js';
import { type Range, type Transform, dataRange, logDataRange } from './axes.js';
import { drawScatter, type ScatterOptions } from './scatter.js';
import { drawImageGrid } from './grid.js';
import { type LabelNamer, TAB10, digitName } from './palette.js';
import { type CurveSeries, drawCurves } from './curves.js';
import { IMAGE_H, IMAGE_W } from '../lab/data/image.js';

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
  drawImageGrid(ctx, opts.images, opts.gridN, opts.gridN, opts.h ?? IMAGE_H, opts.w ?? IMAGE_W,
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

const CELL = 2 * IMAGE_W; // an image pixel is 2 × 2 figure pixels
const PANEL_GAP = 40;

function panelWidth(cols: number, w: number): number {
  const cell = Math.max(CELL, w * 2);
  return cols * cell + (cols - 1) * 2;
}

export function reconFigureSize(perDigit: number, rows = 10, h = IMAGE_H, w = IMAGE_W, opts: { caption?: string } = {}): Size {
  const cellH = Math.max(CELL, h * 2);
  const pw = panelWidth(perDigit, w);
  return {
    width: 20 + 40 + pw + PANEL_GAP + pw + 20,
    height: HEADER_H + 24 + rows * cellH + (rows - 1) * 2 + 16 + (opts.caption ? CAPTION_H : 0),
  };
}

/** Originals (left) beside their reconstructions (right), perDigit per row, one row per class. */
export function reconFigure(ctx: Ctx2D, opts: ReconFigureOptions): void {
  const rows = opts.rows ?? 10, h = opts.h ?? IMAGE_H, w = opts.w ?? IMAGE_W;
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
  drawImageGrid(ctx, opts.images, opts.gridN, opts.gridN, opts.h ?? IMAGE_H, opts.w ?? IMAGE_W,
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

export function sheetFigureSize(rows: number, cols: number, h = IMAGE_H, w = IMAGE_W, opts: { caption?: string; rowLabels?: string[] } = {}): Size {
  const cw = Math.max(CELL, w * 2), ch = Math.max(CELL, h * 2);
  const labelW = opts.rowLabels && opts.rowLabels.length ? 60 : 0;
  return {
    width: Math.max(400, 40 + labelW + cols * cw + (cols - 1) * 2),
    height: HEADER_H + rows * ch + (rows - 1) * 2 + 20 + (opts.caption ? CAPTION_H : 0),
  };
}

/** A sheet of generated digits. */
export function sheetFigure(ctx: Ctx2D, opts: SheetFigureOptions): void {
  const h = opts.h ?? IMAGE_H, w = opts.w ?? IMAGE_W;
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

/** Points of one curve. */
export interface Points { steps: number[]; values: number[] }

/** The losses of one run, each term on its own: like is plotted with like. */
export interface LossRun {
  name: string;
  /** Default: tab10 by run index. */
  color?: string;
  /** The training reconstruction term (MSE on [-1, 1]) at the logged steps. */
  train: Points;
  /** What `latent` holds (default 'map'). */
  latentKind?: LatentTermKind;
  /** The test reconstruction MSE on [-1, 1] (per epoch, and at the end); drawn dashed with dots. */
  test: Points;
  /** The latent-map term (MSE of z to its class's target) of a supervised run, unweighted. */
  latent?: Points;
}

/** The fields of a metrics line (metrics.jsonl) that the loss figure reads. */
export interface LossLine { step: number; loss?: number; recon?: number; latent?: number; kl?: number; l1?: number; testLoss?: number }

/** What a run's latent term is: the supervised latent map's MSE, a VAE's KL (nats per image), or the L1 activity penalty. */
export type LatentTermKind = 'map' | 'kl' | 'l1';

export const LATENT_TERM: Record<LatentTermKind, { name: string; title: string; yLabel: string }> = {
  map: { name: 'latent term', title: "Latent-map term: MSE of z to its class's target (training batches)", yLabel: 'MSE in latent units' },
  kl: { name: 'KL', title: 'KL term: KL(q(z|x) || N(0, I)) per image (training batches; the loss adds beta x KL)', yLabel: 'nats per image' },
  l1: { name: 'L1 activity', title: 'L1 activity term: lambda x sum |z| / batch (training batches)', yLabel: 'penalty (added to the loss)' },
};

/**
 * A run's curves from its metrics lines: the reconstruction term of each training line (`recon`;
 * lines written before it existed carry only `loss`, which is the reconstruction term when the
 * line has no `latent`), the test MSE of the evaluation lines, plus `final` (the end-of-run test
 * MSE, when it was not an epoch's), and the latent-map term when there is one.
 */
export function lossRunFromMetrics(name: string, lines: readonly LossLine[], final?: { step: number; testMse: number } | null): LossRun {
  const train: Points = { steps: [], values: [] }, test: Points = { steps: [], values: [] }, latent: Points = { steps: [], values: [] };
  let latentKind: LatentTermKind | undefined;
  for (const m of lines) {
    const r = m.recon ?? (m.latent === undefined ? m.loss : undefined);
    if (r !== undefined && Number.isFinite(r)) { train.steps.push(m.step); train.values.push(r); }
    const t = m.latent ?? m.kl ?? m.l1;
    if (t !== undefined && Number.isFinite(t)) {
      latent.steps.push(m.step); latent.values.push(t);
      latentKind ??= m.latent !== undefined ? 'map' : m.kl !== undefined ? 'kl' : 'l1';
    }
    if (m.testLoss !== undefined && Number.isFinite(m.testLoss)) { test.steps.push(m.step); test.values.push(m.testLoss); }
  }
  if (final && Number.isFinite(final.step) && Number.isFinite(final.testMse) && !test.steps.includes(final.step)) {
    test.steps.push(final.step); test.values.push(final.testMse);
  }
  return { name, train, test, ...(latent.steps.length ? { latent, latentKind } : {}) };
}

export interface LossFigureOptions {
  title?: string;
  logY?: boolean;
}

const LOSS_W = 900, LOSS_RECON_H = 600, LOSS_LATENT_H = 360;

/** 900 × 600, or 900 × 960 when a run has a latent-map term (a second panel below). */
export function lossFigureSize(opts: { latent?: boolean } = {}): Size {
  return { width: LOSS_W, height: LOSS_RECON_H + (opts.latent ? LOSS_LATENT_H : 0) };
}

/** Whether the loss figure of these runs has the latent-term panel. */
export function lossHasLatent(runs: readonly LossRun[]): boolean {
  return runs.some((r) => !!r.latent && r.latent.steps.length > 0);
}

function rangeOf(v: number[], logY: boolean): Range {
  return logY ? logDataRange(v) : dataRange(v, 0.05);
}

/**
 * The reconstruction loss of one or more runs against step: training (solid) and test (dashed, with
 * a dot per evaluation) on the same scale, both MSE on [-1, 1]; one colour per run. A supervised
 * run's latent-map term gets its own panel below (its scale is unrelated to the pixels').
 * Returns the panels' transforms and the series drawn.
 */
export function lossFigure(ctx: Ctx2D, runs: readonly LossRun[], opts: LossFigureOptions = {}): { recon: Transform; latent: Transform | null; series: CurveSeries[] } {
  const latent = lossHasLatent(runs);
  const size = lossFigureSize({ latent });
  clearRect(ctx, { x: 0, y: 0, ...size });
  const logY = opts.logY ?? false;
  const recon: CurveSeries[] = [], terms: CurveSeries[] = [];
  runs.forEach((r, k) => {
    const color = r.color ?? TAB10[k % TAB10.length];
    recon.push({ name: `${r.name} train`, ...r.train, color });
    if (r.test.steps.length) recon.push({ name: `${r.name} test`, ...r.test, color, dashed: true });
    if (r.latent?.steps.length) terms.push({ name: `${r.name} ${LATENT_TERM[r.latentKind ?? 'map'].name}`, ...r.latent, color });
  });
  const all = [...recon, ...terms];
  const xRange = dataRange(all.flatMap((c) => Array.from(c.steps)), 0.02);
  const scale = logY ? ' (log scale)' : '';
  const reconValues = recon.flatMap((c) => Array.from(c.values));
  const tRecon = drawCurves(ctx, recon, { x: 0, y: 0, width: LOSS_W, height: LOSS_RECON_H }, {
    title: opts.title ?? 'Reconstruction loss', yLabel: `MSE on [-1, 1]${scale}`, xRange,
    xLabel: 'step  (solid: training batches; dashed, dots: test set)', logY, yRange: rangeOf(reconValues, logY),
  });
  ctx.save();
  runs.forEach((r, k) => {
    ctx.fillStyle = r.color ?? TAB10[k % TAB10.length];
    for (let i = 0; i < r.test.steps.length; i++) {
      const v = r.test.values[i];
      if (!Number.isFinite(v) || (logY && !(v > 0))) continue;
      ctx.beginPath();
      ctx.arc(tRecon.toPx(r.test.steps[i]), tRecon.toPy(v), 4, 0, Math.PI * 2);
      ctx.fill();
    }
  });
  ctx.restore();
  let tLatent: Transform | null = null;
  if (latent) {
    // one kind of term per panel: runs of mixed kinds (a map and a KL) say so in the title
    const kinds = [...new Set(runs.filter((r) => r.latent?.steps.length).map((r) => r.latentKind ?? 'map'))];
    const words = kinds.length === 1 ? LATENT_TERM[kinds[0]] : { title: `Latent terms: ${kinds.map((k) => LATENT_TERM[k].name).join(', ')} (each in its own units)`, yLabel: 'term value' };
    tLatent = drawCurves(ctx, terms, { x: 0, y: LOSS_RECON_H, width: LOSS_W, height: LOSS_LATENT_H }, {
      title: words.title, yLabel: `${words.yLabel}${scale}`, xRange, logY,
      yRange: rangeOf(terms.flatMap((c) => Array.from(c.values)), logY),
    });
  }
  return { recon: tRecon, latent: tLatent, series: all };
}

// ---------------------------------------------------------------------------------------------
// anomaly search: the worst-reconstructed images, the error per class

export interface LabelledSheetOptions {
  /** n images (n * h * w values in [-1, 1]). */
  images: Float32Array;
  /** One line under each image (its class and error). */
  labels: string[];
  cols: number;
  title: string;
  caption?: string;
}

const LSHEET_CELL = 84, LSHEET_LABEL = 34, LSHEET_GAP = 8;

export function labelledSheetSize(n: number, cols: number, opts: { caption?: string } = {}): Size {
  const c = Math.max(1, Math.min(cols, n)), rows = Math.ceil(n / c);
  return {
    width: Math.max(420, 40 + c * (LSHEET_CELL + LSHEET_GAP)),
    height: HEADER_H + rows * (LSHEET_CELL + LSHEET_LABEL) + 20 + (opts.caption ? CAPTION_H : 0),
  };
}

/** Images, each with a line of text under it (e.g. "7 · MSE 0.31"), `cols` per row. */
export function labelledSheetFigure(ctx: Ctx2D, opts: LabelledSheetOptions): void {
  const n = opts.labels.length, cols = Math.max(1, Math.min(opts.cols, n));
  const size = labelledSheetSize(n, opts.cols, opts);
  clearRect(ctx, { x: 0, y: 0, ...size });
  text(ctx, opts.title, size.width / 2, 28, { size: 16, bold: true, align: 'center', baseline: 'bottom' });
  const P = IMAGE_H * IMAGE_W;
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / cols), c = i % cols;
    const x = 20 + c * (LSHEET_CELL + LSHEET_GAP), y = HEADER_H + r * (LSHEET_CELL + LSHEET_LABEL);
    drawImageGrid(ctx, opts.images.subarray(i * P, (i + 1) * P), 1, 1, IMAGE_H, IMAGE_W, { x, y, width: LSHEET_CELL, height: LSHEET_CELL }, { gap: 0 });
    const [first, ...rest] = opts.labels[i].split('\n');
    text(ctx, first, x + LSHEET_CELL / 2, y + LSHEET_CELL + 13, { size: 11, align: 'center', baseline: 'middle' });
    if (rest.length) text(ctx, rest.join(' '), x + LSHEET_CELL / 2, y + LSHEET_CELL + 27, { size: 11, align: 'center', baseline: 'middle' });
  }
  if (opts.caption) caption(ctx, opts.caption, size.width, size.height - CAPTION_H);
}

export interface ErrorHistogramFigureOptions {
  /** bins + 1 edges; counts[c][b] per class; class names. */
  edges: number[];
  counts: number[][];
  classNames: string[];
  title: string;
  xLabel: string;
}

export function errorHistogramFigureSize(): Size { return { width: 900, height: 560 }; }

/** The error histogram of each class as a line (bin centre -> share of the class's images), one colour per class. */
export function errorHistogramFigure(ctx: Ctx2D, opts: ErrorHistogramFigureOptions): Transform {
  const size = errorHistogramFigureSize();
  clearRect(ctx, { x: 0, y: 0, ...size });
  const centres = opts.edges.slice(0, -1).map((e, b) => (e + opts.edges[b + 1]) / 2);
  const series: CurveSeries[] = opts.counts.map((row, c) => {
    const total = row.reduce((a, v) => a + v, 0) || 1;
    return { name: opts.classNames[c] ?? String(c), steps: centres, values: row.map((v) => v / total), color: TAB10[c % TAB10.length] };
  });
  return drawCurves(ctx, series, { x: 0, y: 0, ...size }, {
    title: opts.title, xLabel: opts.xLabel, yLabel: "share of the class's test images",
    xRange: [opts.edges[0], opts.edges[opts.edges.length - 1]],
  });
}
