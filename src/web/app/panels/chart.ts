/** The loss chart: train and test loss per step, on a log scale. */
import { drawCurves, type CurveSeries } from '../../../viz/curves.js';
import { $, fitCanvas } from '../dom.js';
import { on, state } from '../store.js';

const canvas = $<HTMLCanvasElement>('curve');

export function drawCurve(): void {
  const { w, h, dpr } = fitCanvas(canvas);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const m = state.metrics;
  const tr = m.filter((l) => typeof l.loss === 'number');
  const te = m.filter((l) => typeof l.testLoss === 'number');
  const series: CurveSeries[] = [];
  if (tr.length) series.push({ name: 'train loss', steps: tr.map((l) => l.step), values: tr.map((l) => l.loss!) });
  if (te.length) series.push({ name: 'test loss', steps: te.map((l) => l.step), values: te.map((l) => l.testLoss!), dashed: true });
  if (!series.length) {
    ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#666666'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
    ctx.fillText(!state.runName ? '' : !state.run ? `loading ${state.runName}…` : 'no metrics yet', w / 2, h / 2);
  } else {
    drawCurves(ctx, series, { x: 0, y: 0, width: w, height: h }, { logY: true, title: undefined });
  }
  canvas.dataset.points = String(tr.length);
  canvas.dataset.run = series.length ? state.runName : '';
}

export function mountChart(): void {
  on('metrics', drawCurve);
  on('reset', drawCurve);
  new ResizeObserver(() => drawCurve()).observe($('plane-wrap'));
  drawCurve();
}
