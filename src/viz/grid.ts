/**
 * A grid of small greyscale images (digits), upscaled with nearest-neighbour sampling so each
 * source pixel is a crisp block. Values in [-1, 1] map to grey (v + 1) * 127.5: white digit on
 * black, the MNIST look.
 */
import { type Ctx2D, type Rect, clearRect, font, text } from './ctx.js';
import { toByte } from '../lab/data/image.js';

export interface GridOptions {
  /** Gap between cells in pixels (default 2). */
  gap?: number;
  title?: string;
  /** One label per row, written to the left of the row. */
  rowLabels?: string[];
  /** One label per column, written above the column. */
  colLabels?: string[];
  /** Background behind the cells (default white). */
  background?: string;
  /** Prefer whole-number upscaling when it fills at least 80% of the room (default true). */
  integerScale?: boolean;
}

/** Where the cells went. */
export interface GridLayout {
  /** Top-left of cell (0, 0). */
  x: number;
  y: number;
  cellWidth: number;
  cellHeight: number;
  gap: number;
  rows: number;
  cols: number;
}

/** The rectangle of cell (row, col). */
export function cellRect(g: GridLayout, row: number, col: number): Rect {
  return { x: g.x + col * (g.cellWidth + g.gap), y: g.y + row * (g.cellHeight + g.gap), width: g.cellWidth, height: g.cellHeight };
}

/** Grey byte for an image value in [-1, 1]. */
export function toGrey(v: number): number {
  if (!(v === v)) return 0;
  return toByte(v);
}

/** Compute the cell layout without drawing. */
export function gridLayout(ctx: Ctx2D, rows: number, cols: number, h: number, w: number, rect: Rect, options: GridOptions = {}): GridLayout {
  const gap = options.gap ?? 2;
  let top = options.title ? 36 : 0;
  if (options.colLabels) top += 20;
  let left = 0;
  if (options.rowLabels && options.rowLabels.length) {
    ctx.save();
    ctx.font = font(14);
    for (const s of options.rowLabels) left = Math.max(left, ctx.measureText(s).width);
    ctx.restore();
    left = Math.ceil(left) + 10;
  }
  const availW = rect.width - left - gap * (cols - 1);
  const availH = rect.height - top - gap * (rows - 1);
  let cw = Math.max(1, Math.floor(availW / cols)), ch = Math.max(1, Math.floor(availH / rows));
  // keep the aspect ratio of the source images
  const scale = Math.min(cw / w, ch / h);
  // whole-number upscaling keeps every source pixel the same size, unless it would waste > 20% of the room
  const s = scale >= 1 && (options.integerScale ?? true) && Math.floor(scale) / scale >= 0.8 ? Math.floor(scale) : scale;
  cw = Math.max(1, Math.floor(w * s));
  ch = Math.max(1, Math.floor(h * s));
  const gridW = cols * cw + (cols - 1) * gap, gridH = rows * ch + (rows - 1) * gap;
  const x = Math.round(rect.x + left + (rect.width - left - gridW) / 2);
  const y = Math.round(rect.y + top + (rect.height - top - gridH) / 2);
  return { x, y, cellWidth: cw, cellHeight: ch, gap, rows, cols };
}

function isIdentity(ctx: Ctx2D): boolean {
  if (!ctx.getTransform) return false;
  const m = ctx.getTransform();
  return m.a === 1 && m.b === 0 && m.c === 0 && m.d === 1 && m.e === 0 && m.f === 0;
}

/**
 * Draw `rows × cols` images (row-major; image k at row floor(k/cols)) from `images` (n·h·w values
 * in [-1, 1]) into `rect`. Missing images leave an empty (light grey) cell. Returns the layout.
 */
export function drawImageGrid(
  ctx: Ctx2D, images: Float32Array | number[], rows: number, cols: number, h: number, w: number,
  rect: Rect, options: GridOptions = {},
): GridLayout {
  clearRect(ctx, rect, options.background ?? '#ffffff');
  const g = gridLayout(ctx, rows, cols, h, w, rect, options);
  const n = Math.floor(images.length / (h * w));
  const fast = isIdentity(ctx);
  // source column/row of each cell pixel (nearest neighbour)
  const sx = new Int32Array(g.cellWidth), sy = new Int32Array(g.cellHeight);
  for (let i = 0; i < g.cellWidth; i++) sx[i] = Math.min(w - 1, Math.floor((i * w) / g.cellWidth));
  for (let i = 0; i < g.cellHeight; i++) sy[i] = Math.min(h - 1, Math.floor((i * h) / g.cellHeight));
  const img = fast ? ctx.createImageData(g.cellWidth, g.cellHeight) : null;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = r * cols + c;
      const cell = cellRect(g, r, c);
      if (k >= n) {
        ctx.save(); ctx.fillStyle = '#eeeeee'; ctx.fillRect(cell.x, cell.y, cell.width, cell.height); ctx.restore();
        continue;
      }
      const base = k * h * w;
      if (img) {
        const d = img.data;
        for (let py = 0; py < g.cellHeight; py++) {
          const row = base + sy[py] * w;
          for (let px = 0; px < g.cellWidth; px++) {
            const v = toGrey(images[row + sx[px]]);
            const o = (py * g.cellWidth + px) * 4;
            d[o] = v; d[o + 1] = v; d[o + 2] = v; d[o + 3] = 255;
          }
        }
        ctx.putImageData(img, cell.x, cell.y);
      } else {
        drawCellRects(ctx, images, base, h, w, cell);
      }
    }
  }
  if (options.title) text(ctx, options.title, rect.x + rect.width / 2, rect.y + 26, { size: 16, bold: true, align: 'center', baseline: 'bottom' });
  if (options.colLabels) {
    const y = g.y - 6;
    options.colLabels.forEach((s, c) => { if (c < cols) text(ctx, s, cellRect(g, 0, c).x + g.cellWidth / 2, y, { align: 'center', baseline: 'bottom' }); });
  }
  if (options.rowLabels) {
    options.rowLabels.forEach((s, r) => { if (r < rows) text(ctx, s, g.x - 8, cellRect(g, r, 0).y + g.cellHeight / 2, { align: 'right', baseline: 'middle' }); });
  }
  return g;
}

/** Transform-safe fallback: a black cell, then runs of equal non-black greys as rectangles. */
function drawCellRects(ctx: Ctx2D, images: Float32Array | number[], base: number, h: number, w: number, cell: Rect): void {
  const bx = cell.width / w, by = cell.height / h;
  ctx.save();
  ctx.fillStyle = '#000000';
  ctx.fillRect(cell.x, cell.y, cell.width, cell.height);
  for (let r = 0; r < h; r++) {
    let c = 0;
    while (c < w) {
      const v = toGrey(images[base + r * w + c]);
      let e = c + 1;
      while (e < w && toGrey(images[base + r * w + e]) === v) e++;
      if (v > 0) {
        ctx.fillStyle = `rgb(${v},${v},${v})`;
        ctx.fillRect(cell.x + c * bx, cell.y + r * by, (e - c) * bx, by);
      }
      c = e;
    }
  }
  ctx.restore();
}
