/** The draw pad: a digit drawn with the pointer is encoded, reconstructed and marked on the plane. */
import { mnistFromPixels } from '../../../lab/data/preprocess.js';
import { $, clearCanvas, paintDigit, showError } from '../dom.js';
import { model } from '../model-client.js';
import { emit, on, paintedWithWeights, state, toPlane } from '../store.js';

const pad = $<HTMLCanvasElement>('pad');
const padCtx = pad.getContext('2d', { willReadFrequently: true })!;
const recon = $<HTMLCanvasElement>('recon');
const input = $<HTMLCanvasElement>('pad-input');
let stroke: { id: number; x: number; y: number } | null = null;
let padTimer = 0;
let padBusy = false, padAgain = false;

function clearPad(): void {
  padCtx.fillStyle = '#000000';
  padCtx.fillRect(0, 0, pad.width, pad.height);
  pad.dataset.ink = '0';
}

/** Forgets the encoding (not the ink): the reconstruction, z and the mark on the plane. */
function clearEncoding(): void {
  state.drawn = null;
  clearCanvas(recon);
  recon.dataset.run = '';
  $('drawn-z').textContent = '';
}

function padPoint(e: PointerEvent): { x: number; y: number } {
  const r = pad.getBoundingClientRect();
  return { x: ((e.clientX - r.left) * pad.width) / r.width, y: ((e.clientY - r.top) * pad.height) / r.height };
}

async function encodePad(): Promise<void> {
  if (!state.modelReady || pad.dataset.ink !== '1') return;
  if (padBusy) { padAgain = true; return; }
  padBusy = true;
  try {
    do {
      padAgain = false;
      const rgba = padCtx.getImageData(0, 0, pad.width, pad.height).data;
      let x: Float32Array;
      try { x = mnistFromPixels(rgba, pad.width, pad.height, 4, { name: 'draw pad', darkOnLight: false }); } catch { return; }
      paintDigit(input, x);
      const token = state.token;
      const { z } = await model.encode(x, 1);
      const { images } = await model.decode(z, 1);
      if (token !== state.token) return;
      paintDigit(recon, images);
      recon.dataset.run = state.runName;
      paintedWithWeights(recon);
      state.drawn = { ...toPlane(z), z };
      $('drawn-z').textContent = `drawn: z = [${Array.from(z.slice(0, 6), (v) => v.toFixed(2)).join(', ')}${z.length > 6 ? ', …' : ''}]`;
      emit('overlay');
    } while (padAgain);
  } catch (e) {
    showError(`draw pad: ${(e as Error).message}`);
  } finally {
    padBusy = false;
  }
}

export function mountDrawPad(): void {
  clearPad();
  pad.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    const p = padPoint(e);
    stroke = { id: e.pointerId, ...p };
    padCtx.fillStyle = '#ffffff';
    padCtx.beginPath(); padCtx.arc(p.x, p.y, 8, 0, Math.PI * 2); padCtx.fill();
    pad.dataset.ink = '1';
  });
  pad.addEventListener('pointermove', (e) => {
    if (!stroke || e.pointerId !== stroke.id) return;
    const p = padPoint(e);
    padCtx.strokeStyle = '#ffffff'; padCtx.lineWidth = 16; padCtx.lineCap = 'round'; padCtx.lineJoin = 'round';
    padCtx.beginPath(); padCtx.moveTo(stroke.x, stroke.y); padCtx.lineTo(p.x, p.y); padCtx.stroke();
    stroke.x = p.x; stroke.y = p.y;
    if (!padTimer) padTimer = window.setTimeout(() => { padTimer = 0; void encodePad(); }, 120);
  });
  const endStroke = (e: PointerEvent): void => {
    if (!stroke || e.pointerId !== stroke.id) return;
    stroke = null;
    void encodePad();
  };
  pad.addEventListener('pointerup', endStroke);
  pad.addEventListener('pointercancel', endStroke);
  $('pad-clear').addEventListener('click', () => {
    clearPad();
    clearEncoding();
    clearCanvas(input);
    emit('overlay');
  });
  on('reset', clearEncoding);
  // the drawing stays on the pad: the weights of the run now shown encode it again
  on('model', () => { if (state.modelReady) void encodePad(); });
}
