/**
 * The nearest real images: beside the decoded point, the k test images whose encoded latents lie
 * nearest to it (Euclidean distance in the whole latent space, not on the plane), with their labels
 * and distances. The images are the ones the run's latents encode (served by
 * /api/runs/<name>/test-images; src/lab/run/test-latents.ts says which), fetched at the first hover.
 */
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W, datasetInfo, className, toModelImages } from '../../../lab/data/image.js';
import { $, el, paintDigit } from '../dom.js';
import { on, state } from '../store.js';

/** How many neighbours are shown. */
export const NEAREST_K = 8;
/** The source name runs.ts gives the latents of latents.safetensors (the ones that have images). */
const TEST_LATENTS = 'test latents';

const box = $('nearest');
const caption = $('nearest-caption');
let images: { token: number; bytes: Uint8Array } | null = null;
let loading: { token: number; bytes: Promise<Uint8Array | null> } | null = null;

/** The indices of the k rows of z [n, D] nearest to q, nearest first, and their distances. */
export function nearestRows(z: Float32Array, n: number, D: number, q: Float32Array, k: number): { index: number[]; dist: number[] } {
  const index: number[] = [], d2: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) { const t = z[i * D + j] - q[j]; s += t * t; }
    if (index.length === k && s >= d2[k - 1]) continue;
    let p = Math.min(index.length, k - 1);
    while (p > 0 && d2[p - 1] > s) p--;
    index.splice(p, 0, i); d2.splice(p, 0, s);
    if (index.length > k) { index.pop(); d2.pop(); }
  }
  return { index, dist: d2.map(Math.sqrt) };
}

/** The bytes of the test images behind the latents (null: these latents have none, or they cannot be had). */
async function testImages(): Promise<Uint8Array | null> {
  const l = state.latents, token = state.token;
  if (!l || l.source !== TEST_LATENTS) return null;
  if (images && images.token === token) return images.bytes;
  if (loading && loading.token === token) return loading.bytes;
  const bytes = (async () => {
    try {
      const res = await fetch(`/api/runs/${encodeURIComponent(state.runName)}/test-images`, { cache: 'no-store' });
      if (!res.ok) throw new Error(((await res.json().catch(() => ({}))) as { error?: string }).error ?? String(res.status));
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.length !== l.n * IMAGE_PIXELS) throw new Error(`expected ${l.n} images (${l.n * IMAGE_PIXELS} bytes), got ${bytes.length} bytes`);
      if (token === state.token) images = { token, bytes };
      return bytes;
    } catch (e) {
      if (token === state.token) caption.textContent = `Nearest test images: not available (${(e as Error).message})`;
      return null;
    } finally { if (loading?.token === token) loading = null; }
  })();
  loading = { token, bytes };
  return bytes;
}

async function showNearest(): Promise<void> {
  const l = state.latents, q = state.hoverZ, token = state.token;
  if (!l || !q || q.length !== l.dim) return;
  const bytes = await testImages();
  if (!bytes || token !== state.token || state.hoverZ !== q) return;
  const { index, dist } = nearestRows(l.z, l.n, l.dim, q, NEAREST_K);
  const info = datasetInfo(state.run?.config?.dataset as string | undefined);
  const x = new Float32Array(IMAGE_PIXELS);
  box.replaceChildren(...index.map((i, r) => {
    const c = el('canvas', { width: String(IMAGE_W), height: String(IMAGE_H), class: 'digit', role: 'img', 'aria-label': `test image ${i}, ${info.classNoun} ${className(info, l.labels[i])}` });
    paintDigit(c, toModelImages(bytes, x, i, 1));
    return el('figure', { 'data-index': String(i) }, c, el('figcaption', { text: `${className(info, l.labels[i])} · ${Number(dist[r].toPrecision(2))}` }));
  }));
  box.dataset.indices = index.join(',');
  box.dataset.labels = index.map((i) => l.labels[i]).join(',');
  box.dataset.dists = dist.map((d) => d.toPrecision(6)).join(',');
  box.dataset.z = Array.from(q).join(',');
  box.dataset.run = state.runName;
  caption.textContent = `The ${index.length} nearest of ${l.n} test images (encoded; distance in the whole ${l.dim}-D latent space):`;
}

function clear(): void {
  box.replaceChildren();
  for (const k of ['indices', 'labels', 'dists', 'z']) delete box.dataset[k];
  box.dataset.run = '';
  const l = state.latents;
  caption.textContent = !l ? '' : l.source === TEST_LATENTS ? 'Hover the plane: the nearest test images appear here.'
    : 'Nearest test images: shown once the run has written its test latents (at the end of training).';
}

export function mountNearest(): void {
  on('hover', () => void showNearest());
  on('latents', clear);
  on('reset', () => { images = null; clear(); });
  clear();
}
