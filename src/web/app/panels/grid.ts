/** The grid of decodes over the box dragged on the plane. */
import { drawImageGrid } from '../../../viz/grid.js';
import { $, clearCanvas, fmt } from '../dom.js';
import { model } from '../model-client.js';
import { emit, fromPlane, latentDim, on, paintedWithWeights, planeIsUmap, state } from '../store.js';
import { IMAGE_H, IMAGE_W } from '../../../lab/data/image.js';

const canvas = $<HTMLCanvasElement>('grid');
const sizeInput = $<HTMLInputElement>('grid-size');
const HINT = 'Drag a box on the plane (Box mode or Shift-drag).';
const NO_INVERSE = 'No grid on a UMAP plane: UMAP has no inverse, so its points between the dots stand for no latent. Switch the plane to PCA for the grid.';
/** Pixels between two cells of the grid canvas. */
const GAP = 2;

/** Decodes a g×g grid over state.box (g from the size field, 2-24). */
export async function decodeGrid(): Promise<void> {
  if (planeIsUmap()) {
    if (state.box) { state.box = null; emit('overlay'); }
    noGrid(NO_INVERSE);
    return;
  }
  if (!state.box || !state.modelReady) return;
  const g = Math.max(2, Math.min(24, Math.round(Number(sizeInput.value) || 10)));
  sizeInput.value = String(g);
  const [bx0, by0, bx1, by1] = state.box;
  const x0 = Math.min(bx0, bx1), x1 = Math.max(bx0, bx1), y0 = Math.min(by0, by1), y1 = Math.max(by0, by1);
  const D = latentDim();
  const z = new Float32Array(g * g * D);
  // row r from the top (largest y), column c from the left: the grid reads like the plane
  for (let r = 0; r < g; r++) for (let c = 0; c < g; c++) {
    const x = x0 + (c * (x1 - x0)) / (g - 1), y = y1 - (r * (y1 - y0)) / (g - 1);
    z.set(fromPlane(x, y), (r * g + c) * D);
  }
  const token = state.token;
  const { images, ms } = await model.decode(z, g * g);
  if (token !== state.token || !state.box) return;
  canvas.hidden = false;
  // drawn at the images' own size (28 px a cell, GAP apart) and scaled by CSS (pixelated): a few
  // 10^4 pixels to write whatever the screen's size and pixel ratio
  const side = g * IMAGE_W + (g - 1) * GAP;
  if (canvas.width !== side) { canvas.width = side; canvas.height = side; }
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  drawImageGrid(ctx, images, g, g, IMAGE_H, IMAGE_W, { x: 0, y: 0, width: side, height: side }, { gap: GAP });
  canvas.dataset.cells = String(g * g);
  canvas.dataset.run = state.runName;
  paintedWithWeights(canvas);
  $('grid-caption').textContent = `${g}×${g} decoded over x ${fmt(x0, 2)}…${fmt(x1, 2)}, y ${fmt(y0, 2)}…${fmt(y1, 2)} (${ms.toFixed(0)} ms)`;
}

/** Empties the grid, with `caption` under it. */
function noGrid(caption: string): void {
  clearCanvas(canvas);
  delete canvas.dataset.cells;
  canvas.dataset.run = '';
  canvas.hidden = true;
  $('grid-caption').textContent = caption;
}

export function mountGrid(): void {
  sizeInput.addEventListener('change', () => void decodeGrid());
  on('mapping', () => { if (state.box) void decodeGrid(); });
  // new weights of the same run (published while it trains): the grid follows them
  on('model', () => { if (state.modelReady && state.box) void decodeGrid(); });
  on('reset', () => noGrid(HINT));
  // a UMAP plane has no grid; back on PCA the hint returns
  on('latents', () => { if (planeIsUmap()) noGrid(NO_INVERSE); else if (!state.box) noGrid(HINT); });
}
