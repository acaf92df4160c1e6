/** The decoded image under the pointer, and the pinned points. */
import { $, clearCanvas, el, paintDigit, showError } from '../dom.js';
import { model } from '../model-client.js';
import { emit, fromPlane, on, paintedWithWeights, state } from '../store.js';
import { IMAGE_H, IMAGE_W } from '../../../lab/data/image.js';

const decoded = $<HTMLCanvasElement>('decoded');
let hoverBusy = false;
let hoverNext: { x: number; y: number } | null = null;

/** Decodes the point (x, y) of the plane into the Decoded card; calls while one is running keep only the last point. */
export async function hoverDecode(x: number, y: number): Promise<void> {
  hoverNext = { x, y };
  if (hoverBusy || !state.modelReady) return;
  hoverBusy = true;
  const token = state.token;
  try {
    while (hoverNext && token === state.token) {
      const p = hoverNext;
      hoverNext = null;
      const z = fromPlane(p.x, p.y);
      const { images, ms } = await model.decode(z, 1);
      if (token !== state.token) break;
      paintDigit(decoded, images);
      decoded.dataset.run = state.runName;
      paintedWithWeights(decoded);
      $('decoded-z').textContent = `z = [${Array.from(z.slice(0, 8), (v) => v.toFixed(2)).join(', ')}${z.length > 8 ? ', …' : ''}]`;
      $('decode-time').textContent = `decoded in ${ms.toFixed(1)} ms`;
      state.hoverZ = z;
      emit('hover');
    }
  } catch (e) {
    showError(`decode: ${(e as Error).message}`);
  } finally {
    hoverBusy = false;
  }
}

/** Pins the point (x, y): decoded, listed, marked on the plane. */
export async function pinAt(x: number, y: number): Promise<void> {
  if (!state.modelReady) return;
  const token = state.token;
  const z = fromPlane(x, y);
  const { images } = await model.decode(z, 1);
  if (token !== state.token) return;
  state.pins.push({ x, y, z, img: images });
  paintDigit(decoded, images);
  decoded.dataset.run = state.runName;
  emit('pins', 'overlay');
}

function renderPins(): void {
  const ul = $('pins');
  ul.replaceChildren();
  state.pins.forEach((p, i) => {
    const c = el('canvas', { width: String(IMAGE_W), height: String(IMAGE_H), role: 'img', 'aria-label': `pinned point ${i + 1}` });
    paintDigit(c, p.img);
    const b = el('button', { type: 'button', 'aria-label': `remove pin ${i + 1}`, text: '×' });
    b.addEventListener('click', () => { state.pins.splice(i, 1); emit('pins', 'overlay'); });
    ul.append(el('li', {}, c, `${i + 1}: (${p.x.toFixed(2)}, ${p.y.toFixed(2)})`, b));
  });
  ul.dataset.count = String(state.pins.length);
}

export function mountDecoded(): void {
  $('pins-clear').addEventListener('click', () => { state.pins = []; emit('pins', 'overlay'); });
  on('pins', renderPins);
  on('mapping', () => { if (state.hover) void hoverDecode(state.hover.x, state.hover.y); });
  // new weights (a run training): the point under the pointer is decoded again with them
  on('model', () => { if (state.modelReady && state.hover) void hoverDecode(state.hover.x, state.hover.y); });
  on('reset', () => {
    hoverNext = null;
    clearCanvas(decoded);
    decoded.dataset.run = '';
    $('decoded-z').textContent = '—';
    $('decode-time').textContent = '';
    renderPins();
  });
  renderPins();
}
