/** The loss chart, like with like: training reconstruction against test MSE per step (log scale); the latent-map term apart. */
import { drawCurves, type CurveSeries } from '../../../viz/curves.js';
import { $, fitCanvas } from '../dom.js';
import { on, state } from '../store.js';
import { lossRunFromMetrics } from '../../../viz/figures.js';

const canvas = $<HTMLCanvasElement>('curve');

export function drawCurve(): void {
  const { w, h, dpr } = fitCanvas(canvas);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const m = state.metrics;
  const { train: tr, test: te, latent } = lossRunFromMetrics('', m);
  const series: CurveSeries[] = [];
  if (tr.steps.length) series.push({ name: 'train reconstruction', ...tr });
  if (te.steps.length) series.push({ name: 'test reconstruction', ...te, dashed: true });
  if (latent) series.push({ name: 'latent-map term (train)', ...latent, color: '#888888' });
  if (!series.length) {
    ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
    ctx.fillText(!state.runName ? '' : !state.run ? `loading ${state.runName}…` : 'no metrics yet', w / 2, h / 2);
  } else {
    drawCurves(ctx, series, { x: 0, y: 0, width: w, height: h }, { logY: true, title: undefined });
  }
  canvas.dataset.points = String(tr.steps.length);
  canvas.dataset.run = series.length ? state.runName : '';
}

export function mountChart(): void {
  on('metrics', drawCurve);
  on('reset', drawCurve);
  new ResizeObserver(() => drawCurve()).observe($('plane-wrap'));
  drawCurve();
}
