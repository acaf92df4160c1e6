/** Small DOM and fetch helpers shared by the panels. */
import { toGrey } from '../../viz/grid.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W } from '../../lab/data/image.js';

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e as T;
};

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v; else if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

/** The page's one error line (null hides it). */
export function showError(msg: string | null): void {
  const box = $('error');
  if (!msg) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  box.textContent = msg;
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { cache: 'no-store' });
  const body = await res.json().catch(() => ({})) as { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${url}: ${res.status}`);
  return body as T;
}

export async function getBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** POSTs JSON to the server; the reply's body, or its error line thrown. */
export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const reply = await res.json().catch(() => ({})) as { error?: string };
  if (!res.ok) throw new Error(reply.error ?? String(res.status));
  return reply as T;
}

export const fmt = (v: number, d = 3): string => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(d));

export function gauss(): number {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

/** Paints one 28x28 image (values in [-1, 1]) into a 28x28 canvas. */
export function paintDigit(canvas: HTMLCanvasElement, img: Float32Array, offset = 0): void {
  const ctx = canvas.getContext('2d')!;
  const id = ctx.createImageData(IMAGE_W, IMAGE_H);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const g = toGrey(img[offset + i]);
    id.data[4 * i] = g; id.data[4 * i + 1] = g; id.data[4 * i + 2] = g; id.data[4 * i + 3] = 255;
  }
  ctx.putImageData(id, 0, 0);
  canvas.dataset.count = String(Number(canvas.dataset.count ?? 0) + 1);
}

/** Empties a canvas (transparent). */
export function clearCanvas(canvas: HTMLCanvasElement): void {
  const ctx = canvas.getContext('2d')!;
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.restore();
}

/** Sizes a canvas's backing store to its CSS box times devicePixelRatio; returns the CSS size. */
export function fitCanvas(c: HTMLCanvasElement): { w: number; h: number; dpr: number } {
  const r = c.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(r.width)), h = Math.max(1, Math.round(r.height));
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  return { w, h, dpr };
}
