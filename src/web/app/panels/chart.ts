/**
 * The loss charts. The main one plots like with like: the reconstruction error (MSE per pixel) of the
 * training batches and of the test images, on a log scale. A supervised run's latent-map term (how far
 * codes are from their digit's target spot), or a VAE's KL to its prior, is another quantity, so it gets
 * its own chart below.
 */
import { drawCurves, type CurveSeries } from '../../../viz/curves.js';
import { $, fitCanvas } from '../dom.js';
import { LATENT_TERM, lossRunFromMetrics } from '../../../viz/figures.js';
import { on, state } from '../store.js';

const canvas = $<HTMLCanvasElement>('curve');
const latentCanvas = $<HTMLCanvasElement>('curve-latent');

function emptyChart(ctx: CanvasRenderingContext2D, w: number, h: number): void {
  ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
  ctx.fillText(!state.runName ? '' : !state.run ? `loading ${state.runName}…` : 'no metrics yet', w / 2, h / 2);
}

export function drawCurve(): void {
  const { w, h, dpr } = fitCanvas(canvas);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  // one reading of the metrics for every loss chart (viz/figures.ts): recon of the training lines, the
  // test MSE of the evaluation lines (and a finished run's final one), the latent-map term apart
  const res = state.run?.result;
  const final = res && typeof res.steps === 'number' && typeof res.testMse === 'number' ? { step: res.steps, testMse: res.testMse } : null;
  const { train: tr, test: te, latent, latentKind } = lossRunFromMetrics(state.runName, state.metrics, final);
  const series: CurveSeries[] = [];
  if (tr.steps.length) series.push({ name: 'train reconstruction (MSE)', ...tr });
  if (te.steps.length) series.push({ name: 'test reconstruction (MSE)', ...te, dashed: true });
  if (!series.length) emptyChart(ctx, w, h);
  else drawCurves(ctx, series, { x: 0, y: 0, width: w, height: h }, { logY: true, yLabel: 'reconstruction MSE' });
  canvas.dataset.points = String(tr.steps.length);
  canvas.dataset.testPoints = String(te.steps.length);
  canvas.dataset.series = series.map((s) => s.name).join('|');
  canvas.dataset.trainLast = tr.values.length ? String(tr.values.at(-1)) : '';
  canvas.dataset.run = series.length ? state.runName : '';

  const n = latent?.steps.length ?? 0;
  latentCanvas.hidden = !n;
  latentCanvas.dataset.points = String(n);
  latentCanvas.dataset.last = n ? String(latent!.values.at(-1)) : '';
  latentCanvas.dataset.kind = n ? String(latentKind) : '';
  // a supervised run's second term is the latent-map pull, a VAE's its KL to the prior (viz/figures.ts names it)
  const term = latentKind && latentKind !== 'map' ? LATENT_TERM[latentKind] : { name: 'latent-map term', yLabel: 'latent-map term' };
  if (latent && n) {
    const f = fitCanvas(latentCanvas);
    const c2 = latentCanvas.getContext('2d')!;
    c2.setTransform(f.dpr, 0, 0, f.dpr, 0, 0);
    drawCurves(c2, [{ name: `${term.name} (train)`, ...latent, color: '#9467bd' }], { x: 0, y: 0, width: f.w, height: f.h }, { logY: true, yLabel: term.yLabel });
  }
}

export function mountChart(): void {
  on('metrics', drawCurve);
  on('reset', drawCurve);
  new ResizeObserver(() => drawCurve()).observe($('plane-wrap'));
  drawCurve();
}
