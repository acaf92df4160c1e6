/**
 * The pictures of a run, shared by `latentlab train` (at the end) and the picture commands
 * (plot, sample, generate, recon, gif). Each `xxxPicture` function returns encoded bytes plus
 * what a caller (or a test) needs to read the picture: sizes, the data -> pixel transform, the
 * decoded images.
 */
import { InvalidArgumentError } from 'commander';
import { createBackend } from '../engine/kernels/select.js';
import type { Backend } from '../engine/kernels/index.js';
import { openRun, type Latents, type MetricsLine, type Run } from '../lab/run/run.js';
import { RunFolder, type RunResult } from '../lab/run/folder.js';
import { writeFileAtomic } from '../lab/run/atomic.js';
import { isVae, type LatentModel } from '../lab/models/family.js';
import { normalQuantile, priorGridPoints } from '../lab/analysis/vae_eval.js';
import { IMAGE_H, IMAGE_W } from '../lab/data/image.js';
import { latentCentreSpread } from '../lab/study/study.js';
import { drawImageGrid } from '../viz/grid.js';
import { project, UMAP_MAX_POINTS, type ProjectionMethod, type Projected } from '../lab/analysis/projection.js';
import { latentBox } from '../lab/train/train.js';
import { type Ctx2D, type Rect, clearRect, text } from '../viz/ctx.js';
import { type Range, type Transform, dataRange } from '../viz/axes.js';
import { drawScatter, type ScatterOptions } from '../viz/scatter.js';
import type { CurveSeries } from '../viz/curves.js';
import { labelNamer } from '../viz/palette.js';
import {
  boxGridPoints, latentFigure, latentFigureSize, lossFigure, lossFigureSize, lossHasLatent, lossRunFromMetrics, sampleFigure, sampleFigureSize,
  trainingFrame, trainingFrameSize, type LatentFigureOptions, type SampleFigureOptions,
} from '../viz/figures.js';
import { encodeGifFrom } from '../viz/gif.js';
import { renderPng, rgbaRenderer } from '../viz/node.js';
import '../node-backends.js';

export type Box = [number, number, number, number];

// ---------------------------------------------------------------------------------------------
// flags and runs

/** Runs a flag parser from ./options.js, turning its error into a plain one-line Error. */
export function parseFlag<T>(parser: (v: string) => T, value: string): T {
  try {
    return parser(value);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new Error(e.message, { cause: e });
    throw e;
  }
}

/** An integer flag within [lo, hi]. */
export function intInRange(flag: string, lo: number, hi: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < lo || n > hi)
      throw new Error(`${flag}: expected an integer from ${lo} to ${hi}, got '${v}'`);
    return n;
  };
}

/** An open run and the backend its model computes on; call close() when done. */
export interface OpenedRun { run: Run; backend: Backend; close(): void }

/**
 * The backend pictures decode on: $LATENTLAB_BACKEND if set, else wasm (pictures decode a few
 * hundred images at most, and wasm starts faster than the native backend's first-call warm-up),
 * else whatever loads.
 */
async function picturesBackend(): Promise<Backend> {
  if (process.env.LATENTLAB_BACKEND) return createBackend();
  try {
    return await createBackend('wasm');
  } catch {
    return createBackend('auto');
  }
}

/** Opens a run folder for pictures (backend: see picturesBackend): once, checked before a backend is made. */
export async function openRunForPictures(dir: string | RunFolder): Promise<OpenedRun> {
  const folder = typeof dir === 'string' ? RunFolder.open(dir) : dir;
  const backend = await picturesBackend();
  try {
    const run = await openRun(folder, { backend });
    return { run, backend, close: () => backend.dispose?.() };
  } catch (e) {
    backend.dispose?.();
    throw e;
  }
}

/** Writes bytes atomically and says so on stdout. */
export async function writeOut(file: string, bytes: Uint8Array, quiet = false): Promise<string> {
  writeFileAtomic(file, bytes);
  if (!quiet) process.stdout.write(`wrote ${file}\n`);
  return file;
}

// ---------------------------------------------------------------------------------------------
// shared pieces

export interface Picture {
  bytes: Uint8Array;
  width: number;
  height: number;
}

/** A figure's scatter and the transform its 800 × 800 scatter panel at (0, 0) uses. */
export interface ScatterPicture extends Picture {
  transform: Transform;
  caption: string;
  projected: Projected;
}

const SCATTER_RECT: Rect = { x: 0, y: 0, width: 800, height: 800 };

function labelsOf(l: Latents, n = l.n): Uint8Array { return l.labels.subarray(0, n); }

/** Pads the union of ranges. */
function unionRange(ranges: Range[], pad = 0.05): Range {
  let lo = Infinity, hi = -Infinity;
  for (const [a, b] of ranges) { lo = Math.min(lo, a, b); hi = Math.max(hi, a, b); }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [-1, 1];
  if (lo === hi) return [lo - 1, hi + 1];
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

function minMax(v: ArrayLike<number>): Range {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < v.length; i++) { const a = v[i]; if (Number.isFinite(a)) { if (a < lo) lo = a; if (a > hi) hi = a; } }
  return lo === Infinity ? [-1, 1] : [lo, hi];
}

/**
 * The transform drawScatter will use for `opts` in `rect`: the same call with every label hidden
 * (same legend, same margins), drawn first and then painted over by the real figure.
 */
function scatterTransform(ctx: Ctx2D, opts: ScatterOptions, rect: Rect): Transform {
  const hidden = new Set<number>(Array.from(opts.labels as ArrayLike<number>));
  for (let l = 0; l < 10; l++) hidden.add(l);
  return drawScatter(ctx, { title: 'Latent space (test set)', ...opts, hidden, box: undefined, marks: undefined }, rect);
}

/** The test latents put on a plane (PCA/UMAP for more than two dimensions). */
export function projectLatents(l: Latents, method: ProjectionMethod, seed = 0): { projected: Projected; labels: Uint8Array; note: string } {
  if (method === 'umap' && l.n > UMAP_MAX_POINTS) {
    const n = UMAP_MAX_POINTS;
    return {
      projected: project(l.z.subarray(0, n * l.dim), l.dim, 'umap', { seed }),
      labels: labelsOf(l, n),
      note: ` (first ${n} of ${l.n} test points)`,
    };
  }
  return { projected: project(l.z.subarray(0, l.n * l.dim), l.dim, method, { seed }), labels: labelsOf(l), note: '' };
}

// ---------------------------------------------------------------------------------------------
// latent.png

export async function latentPicture(run: Run, method: ProjectionMethod = 'pca', seed = 0,
                                    over?: (ctx: Ctx2D, t: Transform) => void, note2 = ''): Promise<ScatterPicture> {
  const { projected, labels, note } = projectLatents(run.testLatents, method, seed);
  const p = projected.projection;
  const caption = p.caption ? `${p.caption}${note}${note2}` : note2.replace(/^; /, '');
  const opts: LatentFigureOptions = {
    x: projected.x, y: projected.y, labels,
    xRange: dataRange(projected.x), yRange: dataRange(projected.y),
    xLabel: p.xLabel, yLabel: p.yLabel || undefined, labelName: labelNamer(run.config.dataset),
    title: `Latent space of ${run.name} (test set)`, caption: caption || undefined,
  };
  const size = latentFigureSize(opts);
  let transform!: Transform;
  const bytes = await renderPng(size.width, size.height, (ctx) => {
    transform = scatterTransform(ctx, opts, SCATTER_RECT);
    latentFigure(ctx, opts);
    over?.(ctx, transform);
  });
  return { bytes, ...size, transform, caption, projected };
}

// ---------------------------------------------------------------------------------------------
// sample.png

export interface SamplePicture extends ScatterPicture {
  box: Box;
  gridN: number;
  /** The gridN² decoded images (boxGridPoints order: row 0 at the top). */
  images: Float32Array;
  /** The gridN² latent points decoded (gridN² × dim). */
  latents: Float32Array;
}

/** Checks and orders a box: x0 < x1, y0 < y1, finite. */
export function checkBox(box: number[], flag = '--box'): Box {
  if (box.length !== 4 || !box.every(Number.isFinite)) throw new Error(`${flag}: expected 4 comma-separated numbers x0,y0,x1,y1, got '${box.join(',')}'`);
  const [a, b, c, d] = box;
  const out: Box = [Math.min(a, c), Math.min(b, d), Math.max(a, c), Math.max(b, d)];
  if (out[0] === out[2] || out[1] === out[3]) throw new Error(`${flag}: expected a box of non-zero width and height (x0 != x1, y0 != y1), got '${box.join(',')}'`);
  return out;
}

/**
 * The latent scatter with a box, beside the gridN × gridN images decoded at evenly spaced points
 * of the box. Without a box, the box spans the latents (1st-99th percentile, padded by 5%). For
 * more than two dimensions the plane is the PCA plane and its points are mapped back with the
 * PCA inverse (the other components at their mean).
 */
export async function samplePicture(run: Run, opts: { box?: Box; gridN?: number } = {}): Promise<SamplePicture> {
  const gridN = opts.gridN ?? 10;
  const l = run.testLatents;
  const { projected, labels } = projectLatents(l, 'pca');
  const p = projected.projection;
  if (!p.inverse) throw new Error('sample: the projection has no inverse');
  const box = opts.box ?? latentBox(projected.coords);
  const pts = boxGridPoints(box, gridN);
  const latents = p.inverse(pts, gridN * gridN);
  const images = run.model.decode(latents, gridN * gridN);
  const dim = l.dim;
  const what = `${gridN}×${gridN} images decoded at evenly spaced points of the box${opts.box ? '' : ' (the 1st-99th percentile range of the latents)'}`;
  const caption = p.method === 'pca'
    ? `${p.caption}; ${what}, mapped back to ${dim}-D with the PCA inverse`
    : p.caption ? `${p.caption}; ${what}` : what;
  const fopts: SampleFigureOptions = {
    x: projected.x, y: projected.y, labels, box, images, gridN,
    xRange: unionRange([minMax(projected.x), [box[0], box[2]]]),
    yRange: unionRange([minMax(projected.y), [box[1], box[3]]]),
    xLabel: p.xLabel, yLabel: p.yLabel || undefined, labelName: labelNamer(run.config.dataset),
    title: `Latent space of ${run.name} (test set)`, caption,
  };
  const size = sampleFigureSize(gridN);
  let transform!: Transform;
  const bytes = await renderPng(size.width, size.height, (ctx) => {
    transform = scatterTransform(ctx, fopts, SCATTER_RECT);
    sampleFigure(ctx, fopts);
  });
  return { bytes, ...size, transform, caption, projected, box, gridN, images, latents };
}

// ---------------------------------------------------------------------------------------------
// loss.png

export interface LossSource { name: string; metrics: MetricsLine[]; result: RunResult | Record<string, unknown> | null }

/** Reads the metrics of a run folder (a path, or a folder already opened) without loading its model. */
export function readLossSource(dir: string | RunFolder): LossSource {
  const folder = typeof dir === 'string' ? RunFolder.open(dir) : dir;
  if (!folder.has('metrics')) throw new Error(`${folder.file('metrics')}: not found (expected a run folder made by latentlab train)`);
  return { name: folder.name, metrics: folder.readMetrics(), result: folder.readResult() };
}

/**
 * The reconstruction loss against step: training (solid) and test (dashed, with dots) on one scale,
 * one colour per run; a supervised run's latent-map term in a panel of its own (see lossFigure).
 * The test loss is the per-epoch evaluation; a run that ended mid-epoch adds its final test MSE.
 */
export async function lossPicture(sources: LossSource[], opts: { log?: boolean } = {}): Promise<Picture & { series: CurveSeries[] }> {
  const runs = sources.map((s) => lossRunFromMetrics(s.name, s.metrics, { step: Number(s.result?.steps), testMse: Number(s.result?.testMse) }));
  const size = lossFigureSize({ latent: lossHasLatent(runs) });
  let series: CurveSeries[] = [];
  const bytes = await renderPng(size.width, size.height, (ctx) => {
    series = lossFigure(ctx, runs, { title: sources.length === 1 ? `Reconstruction loss of ${sources[0].name}` : 'Reconstruction loss', logY: opts.log }).series;
  });
  return { bytes, ...size, series };
}

// ---------------------------------------------------------------------------------------------
// training.gif

export interface GifPicture extends Picture { frames: number; xRange: Range; yRange: Range }

/**
 * training.gif from the run's snapshots: each frame the snapshot's latents on axes fixed for the
 * whole film (the union of every snapshot's range) beside its decoded grid, with step and loss.
 * Latents of more than two dimensions go through one PCA, fitted on the last snapshot.
 */
export async function gifPicture(run: Run, opts: { fps?: number } = {}): Promise<GifPicture> {
  const steps = run.snapshotSteps();
  if (!steps.length) throw new Error(`${run.folder.file('snapshots')}: no snapshots (train with --snapshot-every N to record them)`);
  const labels = run.snapshotLabels();
  const snaps = steps.map((s) => run.snapshot(s));
  const dim = snaps[0].dim;
  const n = snaps[0].z.length / dim;
  const lab = labels ?? new Uint8Array(n);
  let toPlane: (z: Float32Array) => { x: Float32Array; y: Float32Array };
  let xLabel = 'z₁', yLabel: string | undefined = dim > 1 ? 'z₂' : undefined;
  if (dim <= 2) {
    toPlane = (z) => project(z, dim, 'none');
  } else {
    const last = project(snaps[snaps.length - 1].z, dim, 'pca');
    const pca = last.projection.pca!;
    xLabel = 'PC1'; yLabel = 'PC2';
    toPlane = (z) => {
      const c = pca.transform(z, z.length / dim);
      const m = c.length / 2, x = new Float32Array(m), y = new Float32Array(m);
      for (let i = 0; i < m; i++) { x[i] = c[2 * i]; y[i] = c[2 * i + 1]; }
      return { x, y };
    };
  }
  const planes = snaps.map((s) => toPlane(s.z));
  const xRange = unionRange([...planes.map((p) => minMax(p.x)), ...snaps.filter((s) => s.box && dim === 2).map((s) => [s.box![0], s.box![2]] as Range)]);
  const yRange = unionRange([...planes.map((p) => minMax(p.y)), ...snaps.filter((s) => s.box && dim === 2).map((s) => [s.box![1], s.box![3]] as Range)]);
  const size = trainingFrameSize();
  const fps = opts.fps ?? 4;
  // drawn on demand, each once, at most four alive (all of them at once were about 3 MB each); the
  // palette comes from the first, middle and last frames. Each read of Skia's pixels also costs
  // @napi-rs/canvas 1.1's its size in memory it never gives back, so no frame is drawn twice.
  const render = rgbaRenderer(size.width, size.height);
  const frame = (k: number) => { const s = snaps[k]; return render((ctx) => {
    trainingFrame(ctx, {
      x: planes[k].x, y: planes[k].y, labels: lab, xRange, yRange, xLabel, yLabel,
      box: dim === 2 && s.box ? s.box : undefined, labelName: labelNamer(run.config.dataset),
      images: s.grid, gridN: s.gridSize, step: s.step, loss: s.loss,
      gridTitle: dim === 2 && s.box ? 'Decoded from the box' : 'Reconstructions (test images)',
    });
    if (!Number.isFinite(s.loss)) {
      clearRect(ctx, { x: 0, y: 0, width: size.width, height: 40 });
      text(ctx, `step ${s.step} · before training`, size.width / 2, 22, { size: 18, bold: true, align: 'center', baseline: 'middle' });
    }
  }); };
  const last = snaps.length - 1;
  const bytes = encodeGifFrom(snaps.length, size.width, size.height, frame,
    { delay: Math.round(1000 / fps), lastFrameExtra: 1500, paletteFrom: [0, last >> 1, last] });
  return { bytes, ...size, frames: snaps.length, xRange, yRange };
}

// ---------------------------------------------------------------------------------------------
// the end of `latentlab train`

/**
 * Draws a finished run's pictures into its folder: latent.png, sample.png, loss.png and, when it
 * has snapshots, training.gif. Returns the paths written. With `trained` (the model just trained into
 * `dir`), the pictures decode with it on its backend instead of loading it again on another backend
 * (whose memory and threads would add to the training run's peak).
 */
export async function renderRunPictures(dir: string | RunFolder, trained?: LatentModel): Promise<string[]> {
  const folder = typeof dir === 'string' ? RunFolder.open(dir) : dir;
  const opened: OpenedRun = trained
    ? { run: await openRun(folder, { model: trained }), backend: trained.device, close: () => {} }
    : await openRunForPictures(folder);
  try {
    const { run } = opened;
    const wrote: string[] = [];
    const put = async (name: string, bytes: Uint8Array) => { wrote.push(folder.writePicture(name, bytes)); };
    await put('latent.png', (await latentPicture(run, 'pca')).bytes);
    await put('sample.png', (await samplePicture(run, { gridN: 10 })).bytes);
    await put('loss.png', (await lossPicture([readLossSource(folder)])).bytes);
    if (run.snapshotSteps().length) await put('training.gif', (await gifPicture(run)).bytes);
    return wrote;
  } finally {
    opened.close();
  }
}

// ---------------------------------------------------------------------------------------------
// the study's family figure: plain vs variational vs denoising

/** One run of the family figure: its run, what the panel calls it, and whether its grid is the prior's. */
export interface FamilyPanel { run: Run; title: string; prior: boolean }

export interface FamilyPicture extends Picture {
  /** The axis ranges every latent panel shares. */
  xRange: Range; yRange: Range;
  /** Per panel: the box its grid decodes (on the panel's plane; null for a prior grid of a latent above 2-D, which is not on the PCA plane). */
  boxes: (Box | null)[];
  /** Per panel: the decoded grid (gridN² images). */
  grids: Float32Array[];
  gridN: number;
}

const FAMILY_PANEL = 600;

/** "z₁ 1-99%: [a, b], z₂: [c, d]": where the bulk of a panel's points is (a tiny cloud on shared axes still says its size). */
function spanText(x: ArrayLike<number>, y: ArrayLike<number>, names: [string, string]): string {
  const q = (v: ArrayLike<number>): string => {
    const a = Float64Array.from(v).sort();
    const at = (p: number) => a[Math.min(a.length - 1, Math.max(0, Math.round(p * (a.length - 1))))];
    const f = (t: number) => String(Number(t.toPrecision(2)));
    return `[${f(at(0.01))}, ${f(at(0.99))}]`;
  };
  return `${names[0]} ${q(x)}, ${names[1]} ${q(y)}`;
}

/**
 * The family side by side: on top each run's test latents (PCA plane above 2-D) on the SAME axis ranges,
 * so that where each model puts its code can be compared; below each, the images its decoder makes over a
 * grid: the box of its own latents (1st-99th percentile) for a plain or denoising autoencoder, the prior's
 * normal quantiles (5-95%) for a VAE (sample --prior). The box each grid decodes is drawn on its panel.
 */
export async function familyPicture(panels: FamilyPanel[], opts: { gridN?: number; title: string; caption: string }): Promise<FamilyPicture> {
  const gridN = opts.gridN ?? 12;
  const P = FAMILY_PANEL, HEAD = 44, CAP = 32;
  const proj = panels.map((p) => projectLatents(p.run.testLatents, 'pca'));
  const boxes: (Box | null)[] = [];
  const grids: Float32Array[] = [];
  for (let i = 0; i < panels.length; i++) {
    const { run, prior } = panels[i];
    const D = run.testLatents.dim;
    if (prior) {
      if (!isVae(run.model)) throw new Error(`familyPicture: ${run.name} is not a VAE (its latent has no prior)`);
      const pts = priorGridPoints(gridN, D);
      grids.push(run.model.decode(pts, gridN * gridN));
      const lo = normalQuantile(0.05), hi = normalQuantile(0.95);
      boxes.push(D === 2 ? [lo, lo, hi, hi] : null);
    } else {
      const p = proj[i].projected.projection;
      const box = latentBox(proj[i].projected.coords);
      grids.push(run.model.decode(p.inverse!(boxGridPoints(box, gridN), gridN * gridN), gridN * gridN));
      boxes.push(box);
    }
  }
  const xRange = unionRange([...proj.map((p) => minMax(p.projected.x)), ...boxes.filter((b): b is Box => !!b).map((b): Range => [b[0], b[2]])]);
  const yRange = unionRange([...proj.map((p) => minMax(p.projected.y)), ...boxes.filter((b): b is Box => !!b).map((b): Range => [b[1], b[3]])]);
  const width = P * panels.length, height = HEAD + 2 * P + CAP;
  const bytes = await renderPng(width, height, (ctx) => {
    clearRect(ctx, { x: 0, y: 0, width, height });
    text(ctx, opts.title, width / 2, HEAD / 2, { align: 'center', baseline: 'middle', size: 18, bold: true });
    panels.forEach((panel, i) => {
      const pr = proj[i].projected.projection;
      drawScatter(ctx, {
        x: proj[i].projected.x, y: proj[i].projected.y, labels: proj[i].labels, xRange, yRange, pointSize: 3,
        xLabel: pr.xLabel, yLabel: pr.yLabel || undefined, labelName: labelNamer(panel.run.config.dataset),
        title: `${panel.title}: ${spanText(proj[i].projected.x, proj[i].projected.y, pr.method === 'pca' ? ['PC1', 'PC2'] : ['z₁', 'z₂'])}`,
        ...(boxes[i] ? { box: boxes[i]! } : {}),
      }, { x: i * P, y: HEAD, width: P, height: P });
      const l = panel.run.testLatents, centre = latentCentreSpread(l.z.subarray(0, l.n * l.dim), l.dim).latentCentre;
      const gridTitle = panel.prior
        ? `prior grid (N(0,1) 5-95%${l.dim > 2 ? ', z₃.. = 0' : ''}); codes' centre ${centre.toFixed(1)} from 0`
        : `decoded over the box of its latents${panel.run.testLatents.dim > 2 ? ' (PCA plane)' : ''}`;
      drawImageGrid(ctx, grids[i], gridN, gridN, IMAGE_H, IMAGE_W, { x: i * P + 10, y: HEAD + P + 4, width: P - 20, height: P - 8 },
        { gap: 1, title: gridTitle });
    });
    text(ctx, opts.caption, width / 2, HEAD + 2 * P + CAP / 2, { align: 'center', baseline: 'middle', color: '#333333' });
  });
  return { bytes, width, height, xRange, yRange, boxes, grids, gridN };
}
