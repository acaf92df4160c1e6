/**
 * The latent plane: the scatter (plane canvas), the marks over it (overlay canvas: pins, box, drawn
 * digit, generated point, hover), the legend, and the interaction (hover, click to pin, drag to pan,
 * box drag, wheel and keys to zoom and pan); how D > 2 latents get onto it is projection.ts's. Everything is pointer
 * events, so a finger works like the mouse: Scrub mode (the default on a touch screen) decodes under a
 * dragged finger, a tap pins, Box mode drags a box.
 */
import { labelColor } from '../../../viz/palette.js';
import { drawScatter } from '../../../viz/scatter.js';
import { $, el, fitCanvas } from '../dom.js';
import { emit, latentDim, on, resetView, state, type View } from '../store.js';
import { hoverDecode, pinAt } from './decoded.js';
import { decodeGrid } from './grid.js';
import { drawPrior } from './prior.js';

const plane = $<HTMLCanvasElement>('plane');
const overlay = $<HTMLCanvasElement>('overlay');

interface Drag { id: number; kind: 'pan' | 'box' | 'scrub'; x0: number; y0: number; x: number; y: number; moved: boolean; view0: View }
let drag: Drag | null = null;

// ------------------------------------------------------------------------------------------ drawing

function axisLabels(): { xLabel: string; yLabel: string } {
  const D = latentDim();
  if (state.projection === 'umap') return { xLabel: 'UMAP 1', yLabel: 'UMAP 2' };
  if (D > 2 && state.pca) {
    const r = state.pca.explainedRatio;
    return { xLabel: `PC1 (${(100 * r[0]).toFixed(1)}%)`, yLabel: `PC2 (${(100 * r[1]).toFixed(1)}%)` };
  }
  return { xLabel: 'z₁', yLabel: D > 1 ? 'z₂' : '' };
}

let planeQueued = false;
/** Redraws the plane at the next frame (once however often asked). */
export function drawPlane(): void {
  if (planeQueued) return;
  planeQueued = true;
  requestAnimationFrame(() => { planeQueued = false; drawPlaneNow(); });
}

function drawPlaneNow(): void {
  const { w, h, dpr } = fitCanvas(plane);
  fitCanvas(overlay);
  const ctx = plane.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const l = state.latents;
  if (!l || !state.view) {
    ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
    const msg = !state.runName ? 'open a run' : !state.run ? `loading ${state.runName}…` : 'no latents yet (they appear with the first snapshot or at the end of training)';
    ctx.fillText(msg, w / 2, h / 2);
    state.T = null;
    overlay.dataset.points = '0';
    overlay.dataset.run = '';
    delete overlay.dataset.plot;
    drawOverlay();
    return;
  }
  state.T = drawScatter(ctx, {
    x: state.px, y: state.py, labels: l.labels, xRange: state.view.x, yRange: state.view.y, hidden: state.hidden,
    legend: false, pointSize: l.n > 4000 ? 3 : 4, alpha: 0.75, ...axisLabels(),
  }, { x: 0, y: 0, width: w, height: h });
  overlay.dataset.points = String(l.n);
  overlay.dataset.run = state.runName;
  // the plot area in CSS pixels of the canvas (tests and touch users aim inside it)
  overlay.dataset.plot = [state.T.plot.x, state.T.plot.y, state.T.plot.width, state.T.plot.height].map((v) => Math.round(v)).join(',');
  drawOverlay();
}

function drawOverlay(): void {
  const { w, h, dpr } = fitCanvas(overlay);
  const ctx = overlay.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  if (state.drawn) overlay.dataset.drawn = `${state.drawn.x},${state.drawn.y}`; else delete overlay.dataset.drawn;
  const T = state.T;
  if (!T) return;
  ctx.save();
  ctx.beginPath();
  ctx.rect(T.plot.x, T.plot.y, T.plot.width, T.plot.height);
  ctx.clip();
  drawPrior(ctx, T);
  const cross = (x: number, y: number, color: string, label?: string): void => {
    const px = T.toPx(x), py = T.toPy(y);
    ctx.strokeStyle = '#ffffff'; ctx.lineWidth = 4;
    ctx.beginPath(); ctx.moveTo(px - 7, py - 7); ctx.lineTo(px + 7, py + 7); ctx.moveTo(px - 7, py + 7); ctx.lineTo(px + 7, py - 7); ctx.stroke();
    ctx.strokeStyle = color; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(px - 7, py - 7); ctx.lineTo(px + 7, py + 7); ctx.moveTo(px - 7, py + 7); ctx.lineTo(px + 7, py - 7); ctx.stroke();
    if (label) {
      ctx.font = 'bold 13px sans-serif'; ctx.lineWidth = 3; ctx.strokeStyle = '#ffffff'; ctx.fillStyle = color;
      ctx.strokeText(label, px + 9, py - 8); ctx.fillText(label, px + 9, py - 8);
    }
  };
  state.pins.forEach((p, i) => cross(p.x, p.y, '#000000', String(i + 1)));
  if (state.drawn) {
    const px = T.toPx(state.drawn.x), py = T.toPy(state.drawn.y);
    ctx.fillStyle = '#ffeb3b'; ctx.strokeStyle = '#000000'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(px, py, 8, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
    ctx.font = 'bold 13px sans-serif'; ctx.fillStyle = '#000000'; ctx.fillText('drawn', px + 11, py - 8);
  }
  if (state.gen) cross(state.gen.x, state.gen.y, labelColor(state.gen.digit), `gen ${state.gen.digit}`);
  const box = drag && drag.kind === 'box' && drag.moved ? [T.fromPx(drag.x0), T.fromPy(drag.y0), T.fromPx(drag.x), T.fromPy(drag.y)] : state.box;
  if (box) {
    const x0 = T.toPx(Math.min(box[0], box[2])), x1 = T.toPx(Math.max(box[0], box[2]));
    const y0 = T.toPy(Math.max(box[1], box[3])), y1 = T.toPy(Math.min(box[1], box[3]));
    ctx.setLineDash([8, 5]); ctx.lineWidth = 2; ctx.strokeStyle = '#000000';
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.setLineDash([]);
  }
  if (state.hover) {
    const px = T.toPx(state.hover.x), py = T.toPy(state.hover.y);
    ctx.strokeStyle = 'rgba(0,0,0,0.6)'; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(px, py, 6, 0, Math.PI * 2); ctx.stroke();
  }
  ctx.restore();
}

// --------------------------------------------------------------------------------- legend, sliders

function renderLegend(): void {
  const box = $('legend');
  box.replaceChildren();
  const l = state.latents;
  const present = new Set<number>(l ? l.labels : []);
  for (let d = 0; d < 10; d++) {
    const on = !state.hidden.has(d);
    const b = el('button', { type: 'button', 'aria-pressed': String(on), title: `show or hide digit ${d}`, 'data-digit': String(d) },
      el('span', { class: 'sw' }), String(d));
    (b.firstChild as HTMLElement).style.background = labelColor(d);
    b.disabled = !!l && !present.has(d);
    b.addEventListener('click', (e) => {
      if ((e as MouseEvent).altKey) { state.hidden = new Set([...Array(10).keys()].filter((k) => k !== d)); }
      else if (state.hidden.has(d)) state.hidden.delete(d); else state.hidden.add(d);
      renderLegend();
      drawPlane();
    });
    box.append(b);
  }
  const all = el('button', { type: 'button', text: 'All' });
  all.addEventListener('click', () => { state.hidden.clear(); renderLegend(); drawPlane(); });
  box.append(all);
}

// ------------------------------------------------------------------------------------- interaction

function local(e: { clientX: number; clientY: number }): { x: number; y: number } {
  const r = overlay.getBoundingClientRect();
  return { x: e.clientX - r.left, y: e.clientY - r.top };
}

function inPlot(p: { x: number; y: number }): boolean {
  const T = state.T;
  return !!T && p.x >= T.plot.x && p.x <= T.plot.x + T.plot.width && p.y >= T.plot.y && p.y <= T.plot.y + T.plot.height;
}

function zoom(factor: number, cx?: number, cy?: number): void {
  const v = state.view;
  if (!v) return;
  const mx = cx ?? (v.x[0] + v.x[1]) / 2, my = cy ?? (v.y[0] + v.y[1]) / 2;
  state.view = { x: [mx + (v.x[0] - mx) * factor, mx + (v.x[1] - mx) * factor], y: [my + (v.y[0] - my) * factor, my + (v.y[1] - my) * factor] };
  state.userView = true;
  drawPlane();
  emit('view');
}

function pan(fx: number, fy: number): void {
  const v = state.view;
  if (!v) return;
  const dx = (v.x[1] - v.x[0]) * fx, dy = (v.y[1] - v.y[0]) * fy;
  state.view = { x: [v.x[0] + dx, v.x[1] + dx], y: [v.y[0] + dy, v.y[1] + dy] };
  state.userView = true;
  drawPlane();
  emit('view');
}

function endDrag(e: PointerEvent, cancel: boolean): void {
  if (!drag || e.pointerId !== drag.id) return;
  const d = drag;
  drag = null;
  overlay.classList.remove('panning');
  try { overlay.releasePointerCapture(e.pointerId); } catch { /* already released */ }
  const T = state.T;
  if (cancel || !T) { drawOverlay(); return; }
  if (!d.moved) {
    const x = T.fromPx(d.x0), y = T.fromPy(d.y0);
    state.hover = { x, y };
    void pinAt(x, y);
  } else if (d.kind === 'box') {
    state.box = [T.fromPx(Math.min(d.x0, d.x)), T.fromPy(Math.max(d.y0, d.y)), T.fromPx(Math.max(d.x0, d.x)), T.fromPy(Math.min(d.y0, d.y))];
    drawOverlay();
    void decodeGrid();
  }
  if (d.moved && d.kind !== 'scrub') emit('view');
}

/** Decodes the point under the pointer (hover, or a finger scrubbing). */
function scrubTo(p: { x: number; y: number }): void {
  const T = state.T;
  if (!T) return;
  state.hover = { x: T.fromPx(p.x), y: T.fromPy(p.y) };
  drawOverlay();
  void hoverDecode(state.hover.x, state.hover.y);
}

function setMode(m: 'pan' | 'box' | 'scrub'): void {
  state.mode = m;
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) r.checked = r.value === m;
}

/** Wires the plane's canvases, toolbar and topics. */
export function mountPlane(): void {
  overlay.addEventListener('pointerdown', (e) => {
    if (!state.T || e.button > 0) return;
    const p = local(e);
    if (!inPlot(p)) return;
    e.preventDefault();
    overlay.focus({ preventScroll: true });
    drag = { id: e.pointerId, kind: state.mode === 'box' || e.shiftKey ? 'box' : state.mode, x0: p.x, y0: p.y, x: p.x, y: p.y, moved: false, view0: { x: [...state.view!.x], y: [...state.view!.y] } };
    overlay.setPointerCapture(e.pointerId);
    if (drag.kind === 'scrub') scrubTo(p);
  });

  overlay.addEventListener('pointermove', (e) => {
    const p = local(e);
    const T = state.T;
    if (!T) return;
    if (drag && e.pointerId === drag.id) {
      drag.x = p.x; drag.y = p.y;
      if (Math.hypot(p.x - drag.x0, p.y - drag.y0) > 4) drag.moved = true;
      if (drag.kind === 'pan' && drag.moved) {
        overlay.classList.add('panning');
        const v = drag.view0;
        const dx = -(p.x - drag.x0) * (v.x[1] - v.x[0]) / T.plot.width, dy = (p.y - drag.y0) * (v.y[1] - v.y[0]) / T.plot.height;
        state.view = { x: [v.x[0] + dx, v.x[1] + dx], y: [v.y[0] + dy, v.y[1] + dy] };
        state.userView = true;
        drawPlane();
      } else if (drag.kind === 'box') drawOverlay();
      else if (drag.kind === 'scrub' && inPlot(p)) scrubTo(p);
      return;
    }
    if (e.pointerType === 'touch' || !inPlot(p)) return;
    scrubTo(p);
  });

  overlay.addEventListener('pointerup', (e) => endDrag(e, false));
  overlay.addEventListener('pointercancel', (e) => endDrag(e, true));
  overlay.addEventListener('pointerleave', () => { if (!drag && state.hover) drawOverlay(); });

  overlay.addEventListener('wheel', (e) => {
    const T = state.T;
    if (!T) return;
    e.preventDefault();
    const p = local(e);
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
    const f = Math.exp(Math.max(-0.5, Math.min(0.5, e.deltaY * unit * 0.0015)));
    zoom(f, T.fromPx(p.x), T.fromPy(p.y));
  }, { passive: false });

  overlay.addEventListener('keydown', (e) => {
    const v = state.view;
    if (!v) return;
    const k = e.key;
    if (k === 'ArrowLeft') pan(-0.1, 0); else if (k === 'ArrowRight') pan(0.1, 0);
    else if (k === 'ArrowUp') pan(0, 0.1); else if (k === 'ArrowDown') pan(0, -0.1);
    else if (k === '+' || k === '=') zoom(0.8); else if (k === '-' || k === '_') zoom(1.25);
    else if (k === '0') { resetView(); drawPlane(); emit('view'); }
    else if (k === 'Enter' || k === ' ') {
      const x = (v.x[0] + v.x[1]) / 2, y = (v.y[0] + v.y[1]) / 2;
      state.hover = { x, y };
      void pinAt(x, y);
    } else return;
    e.preventDefault();
  });

  $('zoom-in').addEventListener('click', () => zoom(0.8));
  $('zoom-out').addEventListener('click', () => zoom(1.25));
  $('zoom-reset').addEventListener('click', () => { resetView(); drawPlane(); emit('view'); });
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]'))
    r.addEventListener('change', () => { if (r.checked) state.mode = r.value as 'pan' | 'box' | 'scrub'; });
  // a finger cannot hover: on a touch screen dragging decodes (Scrub) unless Pan or Box is chosen
  if (matchMedia('(pointer: coarse)').matches) setMode('scrub');

  on('plane', drawPlane);
  on('overlay', drawOverlay);
  on('latents', renderLegend);
  on('reset', () => { drag = null; renderLegend(); drawPlaneNow(); });
  new ResizeObserver(() => drawPlane()).observe($('plane-wrap'));
  renderLegend();
}
