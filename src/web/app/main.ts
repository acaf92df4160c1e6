/**
 * The explorer page: puts the panels together. The state lives in store.ts; each panel is one module
 * under panels/ (plane, projection, decoded and pins, box grid, draw pad, generate, chart, runs,
 * training, compare). The model runs in a dedicated Worker (worker.ts, driven through
 * model-client.ts) on latentlab's engine; UMAP and k-NN in analysis workers (analysis-client.ts).
 */
import { model } from './model-client.js';
import { mountChart } from './panels/chart.js';
import { mountCompare } from './panels/compare.js';
import { mountDecoded } from './panels/decoded.js';
import { mountDrawPad } from './panels/drawpad.js';
import { mountGenerate } from './panels/generate.js';
import { mountGrid } from './panels/grid.js';
import { mountInterp } from './panels/interp.js';
import { mountNearest } from './panels/nearest.js';
import { mountPlane } from './panels/plane.js';
import { mountProjection } from './panels/projection.js';
import { mountRuns, openRun, refreshRuns } from './panels/runs.js';
import { mountShare, restoreShared } from './panels/share.js';
import { mountTraining } from './panels/training.js';
import { state } from './store.js';

mountPlane();
mountProjection();
mountDecoded();
mountGrid();
mountDrawPad();
mountGenerate();
mountChart();
mountRuns();
mountCompare();
mountNearest();
mountInterp();
mountShare();
void mountTraining();
void model.start();
void refreshRuns().then(async () => {
  await model.ready;
  const want = new URLSearchParams(location.search).get('run');
  if (want && state.runs.some((r) => r.name === want)) await openRun(want);
  await restoreShared();
  document.body.dataset.ready = '1';
});
