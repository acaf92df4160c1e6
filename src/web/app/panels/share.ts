/**
 * Shareable state and export: the page's address holds the run, the view (zoom and pan), the box and
 * the pins, so that a reload or a link shows the same thing:
 *
 *   ?run=NAME&view=x0,x1,y0,y1&box=x0,y0,x1,y1&pins=x,y;x,y
 *
 * (numbers on the plane's axes, 6 significant digits). The address follows every change (replaceState,
 * no history entries); at load the run is opened (main.ts), then its view, box and pins are restored.
 * Export saves the plane (with its marks) or the box grid (4x its own size) as PNG.
 */
import { $, showError } from '../dom.js';
import { composite, downloadPng, EXPORT_SCALE, pngName, upscale } from '../export.js';
import { emit, on, state, type Box, type View } from '../store.js';
import { pinAt } from './decoded.js';
import { decodeGrid } from './grid.js';

/** The address as it was when the page loaded (the run opening resets the state before it is restored). */
const initial = new URLSearchParams(location.search);
let restoring = true;

const num = (v: number): string => String(Number(v.toPrecision(6)));

/** Numbers separated by commas: exactly `count` finite ones, or one line naming the parameter. */
function numbers(name: string, text: string, count: number): number[] {
  const v = text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
  if (v.length !== count || v.some((x) => !Number.isFinite(x))) throw new Error(`address: ${name}=${text}: expected ${count} numbers separated by commas`);
  return v;
}

export interface Shared { view: View | null; box: Box | null; pins: { x: number; y: number }[] }

/** The view, box and pins of an address (each absent is null / none); bad values throw one line. */
export function parseShared(q: URLSearchParams): Shared {
  const out: Shared = { view: null, box: null, pins: [] };
  const v = q.get('view'), b = q.get('box'), p = q.get('pins');
  if (v) {
    const [x0, x1, y0, y1] = numbers('view', v, 4);
    if (!(x1 > x0 && y1 > y0)) throw new Error(`address: view=${v}: expected x0,x1,y0,y1 with x0 < x1 and y0 < y1`);
    out.view = { x: [x0, x1], y: [y0, y1] };
  }
  if (b) out.box = numbers('box', b, 4) as Box;
  if (p) out.pins = p.split(';').map((s) => { const [x, y] = numbers('pins', s, 2); return { x, y }; });
  return out;
}

/** The address of the current state (other parameters, e.g. backend, kept). */
export function sharedQuery(base: URLSearchParams): URLSearchParams {
  const q = new URLSearchParams(base);
  for (const k of ['run', 'view', 'box', 'pins']) q.delete(k);
  if (state.runName) q.set('run', state.runName);
  const v = state.view;
  if (v && state.userView) q.set('view', [v.x[0], v.x[1], v.y[0], v.y[1]].map(num).join(','));
  if (state.box) q.set('box', state.box.map(num).join(','));
  if (state.pins.length) q.set('pins', state.pins.map((p) => `${num(p.x)},${num(p.y)}`).join(';'));
  return q;
}

let queued = false;
function writeAddress(): void {
  if (restoring || queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    const q = sharedQuery(new URLSearchParams(location.search)).toString().replace(/%2C/g, ',').replace(/%3B/g, ';');
    const url = `${location.pathname}${q ? `?${q}` : ''}${location.hash}`;
    if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(null, '', url);
  });
}

/** After the page's first run has opened: its view, box and pins from the address the page loaded with. */
export async function restoreShared(): Promise<void> {
  try {
    if (!state.runName || initial.get('run') !== state.runName || !state.latents) return;
    const s = parseShared(initial);
    if (s.view) { state.view = s.view; state.userView = true; emit('plane'); }
    if (s.box) { state.box = s.box; emit('overlay'); await decodeGrid(); }
    for (const p of s.pins) await pinAt(p.x, p.y);
  } catch (e) {
    showError((e as Error).message);
  } finally {
    restoring = false;
    writeAddress();
  }
}

export function mountShare(): void {
  for (const t of ['view', 'pins', 'run', 'reset'] as const) on(t, writeAddress);
  $('export-plane').addEventListener('click', () => {
    if (!state.T) return;
    void downloadPng(composite($<HTMLCanvasElement>('plane'), $<HTMLCanvasElement>('overlay')), pngName(state.runName, 'plane')).catch((e: Error) => showError(e.message));
  });
  $('export-grid').addEventListener('click', () => {
    const g = $<HTMLCanvasElement>('grid');
    if (g.hidden) return;
    void downloadPng(upscale(g, EXPORT_SCALE), pngName(state.runName, 'grid')).catch((e: Error) => showError(e.message));
  });
}
