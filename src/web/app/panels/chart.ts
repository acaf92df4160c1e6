/**
 * The loss charts. The main one plots like with like: the reconstruction error (MSE per pixel) of the
 * training batches and of the test images, on a log scale. A supervised run's latent-map term (how far
 * codes are from their digit's target spot) is another quantity, so it gets its own chart below.
 */
import { drawCurves, type CurveSeries } from '../../../viz/curves.js';
import { $, fitCanvas } from '../dom.js';
import { on, state, type MetricLine } from '../store.js';

const canvas = $<HTMLCanvasElement>('curve');
const latentCanvas = $<HTMLCanvasElement>('curve-latent');

/** A line's training reconstruction error: `recon`, or `loss` when the loss has no other term. */
function trainRecon(l: MetricLine): number | undefined {
  if (typeof l.recon === 'number') return l.recon;
  return typeof l.loss === 'number' && l.latent === undefined ? l.loss : undefined;
}

function emptyChart(ctx: CanvasRenderingContext2D, w: number, h: number): void {
  ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
  ctx.fillText(!state.runName ? '' : !state.run ? `loading ${state.runName}…` : 'no metrics yet', w / 2, h / 2);
}

export function drawCurve(): void {
  const { w, h, dpr } = fitCanvas(canvas);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const m = state.metrics;
  const tr = m.filter((l) => trainRecon(l) !== undefined);
  const te = m.filter((l) => typeof l.testLoss === 'number');
  const series: CurveSeries[] = [];
  if (tr.length) series.push({ name: 'train reconstruction (MSE)', steps: tr.map((l) => l.step), values: tr.map((l) => trainRecon(l)!) });
  if (te.length) series.push({ name: 'test reconstruction (MSE)', steps: te.map((l) => l.step), values: te.map((l) => l.testLoss!), dashed: true });
  if (!series.length) emptyChart(ctx, w, h);
  else drawCurves(ctx, series, { x: 0, y: 0, width: w, height: h }, { logY: true, yLabel: 'reconstruction MSE' });
  canvas.dataset.points = String(tr.length);
  canvas.dataset.testPoints = String(te.length);
  canvas.dataset.series = series.map((s) => s.name).join('|');
  canvas.dataset.trainLast = tr.length ? String(trainRecon(tr.at(-1)!)) : '';
  canvas.dataset.run = series.length ? state.runName : '';

  const lat = m.filter((l) => typeof l.latent === 'number');
  latentCanvas.hidden = !lat.length;
  latentCanvas.dataset.points = String(lat.length);
  latentCanvas.dataset.last = lat.length ? String(lat.at(-1)!.latent) : '';
  if (lat.length) {
    const f = fitCanvas(latentCanvas);
    const c2 = latentCanvas.getContext('2d')!;
    c2.setTransform(f.dpr, 0, 0, f.dpr, 0, 0);
    drawCurves(c2, [{ name: 'latent-map term', steps: lat.map((l) => l.step), values: lat.map((l) => l.latent!), color: '#9467bd' }],
      { x: 0, y: 0, width: f.w, height: f.h }, { logY: true, yLabel: 'latent-map term' });
  }
}

export function mountChart(): void {
  on('metrics', drawCurve);
  on('reset', drawCurve);
  new ResizeObserver(() => drawCurve()).observe($('plane-wrap'));
  drawCurve();
}
