/**
 * Interpolation: a strip of decodes along the path between two latent points, each a pin, the drawn
 * digit or an encoded test image; linear, or spherical (slerp, the path that keeps a Gaussian prior's typical norm: the
 * default for a VAE). All frames go to the worker in one decode call. The strip is drawn at the
 * images' own size (28 px a frame, 2 px apart) and scaled by CSS; Export saves it 4x as PNG.
 */
import { IMAGE_H, IMAGE_W } from '../../../lab/data/image.js';
import { toGrey } from '../../../viz/grid.js';
import { $, clearCanvas, el, showError } from '../dom.js';
import { downloadPng, EXPORT_SCALE, pngName, upscale } from '../export.js';
import { model } from '../model-client.js';
import { isVaeRun, on, paintedWithWeights, state } from '../store.js';

const canvas = $<HTMLCanvasElement>('interp');
const selA = $<HTMLSelectElement>('interp-a'), selB = $<HTMLSelectElement>('interp-b');
const idxA = $<HTMLInputElement>('interp-a-index'), idxB = $<HTMLInputElement>('interp-b-index');
const stepsInput = $<HTMLInputElement>('interp-steps');
const pathSel = $<HTMLSelectElement>('interp-path');
const GAP = 2;

/** `steps` points from a to b (both included, exactly): linear, or slerp on the great circle through them. */
export function interpolate(a: Float32Array, b: Float32Array, steps: number, path: 'linear' | 'slerp'): Float32Array {
  const D = a.length, out = new Float32Array(steps * D);
  let na = 0, nb = 0, dot = 0;
  for (let j = 0; j < D; j++) { na += a[j] * a[j]; nb += b[j] * b[j]; dot += a[j] * b[j]; }
  const omega = Math.acos(Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb || 1))));
  const spherical = path === 'slerp' && na > 0 && nb > 0 && Math.sin(omega) > 1e-6;
  for (let s = 0; s < steps; s++) {
    const t = s / (steps - 1);
    const wa = spherical ? Math.sin((1 - t) * omega) / Math.sin(omega) : 1 - t;
    const wb = spherical ? Math.sin(t * omega) / Math.sin(omega) : t;
    for (let j = 0; j < D; j++) out[s * D + j] = wa * a[j] + wb * b[j];
  }
  return out;
}

/** An endpoint: a pin's latent, the drawn digit's, or an encoded test image's (a row of the latents). */
function endpoint(sel: HTMLSelectElement, idx: HTMLInputElement): { z: Float32Array; name: string } | null {
  const v = sel.value;
  if (v === 'drawn') return state.drawn?.z ? { z: state.drawn.z, name: 'the drawn digit' } : null;
  if (v.startsWith('pin:')) {
    const i = Number(v.slice(4)), p = state.pins[i];
    return p ? { z: p.z, name: `pin ${i + 1}` } : null;
  }
  const l = state.latents;
  if (!l) return null;
  const i = Math.round(Number(idx.value));
  if (!Number.isInteger(i) || i < 0 || i >= l.n) throw new Error(`test image: expected a number from 0 to ${l.n - 1}, got '${idx.value}'`);
  return { z: l.z.slice(i * l.dim, (i + 1) * l.dim), name: `test image ${i} (${l.labels[i]})` };
}

/** Paints n decoded images side by side, GAP px apart, at their own size. */
function paintStrip(images: Float32Array, n: number): void {
  canvas.width = n * IMAGE_W + (n - 1) * GAP;
  canvas.height = IMAGE_H;
  const ctx = canvas.getContext('2d')!;
  const id = ctx.createImageData(canvas.width, canvas.height);
  id.data.fill(255);
  for (let f = 0; f < n; f++) for (let y = 0; y < IMAGE_H; y++) for (let x = 0; x < IMAGE_W; x++) {
    const g = toGrey(images[(f * IMAGE_H + y) * IMAGE_W + x]);
    const o = 4 * (y * canvas.width + f * (IMAGE_W + GAP) + x);
    id.data[o] = g; id.data[o + 1] = g; id.data[o + 2] = g;
  }
  ctx.putImageData(id, 0, 0);
}

let busy = false, again = false;
/** Decodes the strip for the current choices (one call at a time; a change meanwhile decodes again after). */
export async function decodeStrip(): Promise<void> {
  if (!state.modelReady || !state.latents) return;
  if (busy) { again = true; return; }
  busy = true;
  try {
    do {
      again = false;
      const a = endpoint(selA, idxA), b = endpoint(selB, idxB);
      if (!a || !b || a.z.length !== b.z.length) return;
      const steps = Math.max(2, Math.min(24, Math.round(Number(stepsInput.value) || 10)));
      stepsInput.value = String(steps);
      const path = pathSel.value === 'slerp' ? 'slerp' : 'linear';
      const token = state.token;
      const { images, ms } = await model.decode(interpolate(a.z, b.z, steps, path), steps);
      if (token !== state.token) return;
      paintStrip(images, steps);
      canvas.hidden = false;
      canvas.dataset.frames = String(steps);
      canvas.dataset.path = path;
      canvas.dataset.run = state.runName;
      paintedWithWeights(canvas);
      ($('interp-export') as HTMLButtonElement).disabled = false;
      $('interp-caption').textContent = `${steps} decodes from ${a.name} to ${b.name}, ${path === 'slerp' ? 'spherical (slerp)' : 'linear'} (${ms.toFixed(0)} ms)`;
    } while (again);
  } catch (e) {
    showError(`interpolation: ${(e as Error).message}`);
  } finally { busy = false; }
}

/** Endpoints the user chose "test image" for (kept when pins come and go). */
const choseTest = new Set<HTMLSelectElement>();

/** The endpoint choices: the pins, then "test image" (with its number field); two pins are taken by default. */
function renderChoices(): void {
  for (const [sel, idx, fallback] of [[selA, idxA, 0], [selB, idxB, 1]] as const) {
    const was = sel.value;
    sel.replaceChildren(...state.pins.map((_, i) => el('option', { value: `pin:${i}`, text: `pin ${i + 1}` })),
      ...(state.drawn?.z ? [el('option', { value: 'drawn', text: 'drawn digit' })] : []), el('option', { value: 'test', text: 'test image #' }));
    const dflt = state.pins.length >= 2 && !choseTest.has(sel) ? `pin:${fallback}` : 'test';
    sel.value = was !== 'test' && [...sel.options].some((o) => o.value === was) ? was : dflt;
    idx.hidden = sel.value !== 'test';
  }
}

function reset(): void {
  choseTest.clear();
  clearCanvas(canvas);
  canvas.hidden = true;
  canvas.dataset.run = '';
  delete canvas.dataset.frames;
  ($('interp-export') as HTMLButtonElement).disabled = true;
  $('interp-caption').textContent = 'Pick two pins or two test images.';
  renderChoices();
}

export function mountInterp(): void {
  for (const [e, idx] of [[selA, idxA], [selB, idxB]] as const) e.addEventListener('change', () => {
    if (e.value === 'test') choseTest.add(e); else choseTest.delete(e);
    idx.hidden = e.value !== 'test';
    void decodeStrip();
  });
  for (const e of [idxA, idxB, stepsInput, pathSel]) e.addEventListener('change', () => void decodeStrip());
  $('interp-export').addEventListener('click', () => void downloadPng(upscale(canvas, EXPORT_SCALE), pngName(state.runName, 'interpolation')).catch((e: Error) => showError(e.message)));
  on('pins', () => { const had = selA.value; renderChoices(); if (state.pins.length >= 2 || had.startsWith('pin:')) void decodeStrip(); });
  // a run's default path, chosen once when its settings arrive: spherical for a VAE's Gaussian prior
  let pathFor = '';
  on('run', () => { if (state.run && state.run.name !== pathFor) { pathFor = state.run.name; pathSel.value = isVaeRun() ? 'slerp' : 'linear'; } });
  on('model', () => { if (state.modelReady) void decodeStrip(); });
  on('latents', () => { if (state.modelReady) void decodeStrip(); });
  // a new drawing (or none): the choices follow, and a strip from the drawn digit is decoded again
  let drawn = state.drawn;
  on('overlay', () => {
    if (state.drawn === drawn) return;
    drawn = state.drawn;
    renderChoices();
    if (selA.value === 'drawn' || selB.value === 'drawn') void decodeStrip();
  });
  on('reset', reset);
  reset();
}
