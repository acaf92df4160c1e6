// @ts-check
/**
 * Decode a 10 x 10 grid of latent points to a PNG: the model's view of the latent plane.
 *
 *   node examples/decode-grid.mjs [RUN] [out.png]
 *
 * With a run folder (made by `latentlab train`) its trained model and latent box are used;
 * without one, a freshly initialised model and the box [-3, 3]^2 (a picture of noise, but it runs).
 */
import { models, viz } from 'latentlab';
import { openRun, renderPng, writeFileAtomic, latentBox } from 'latentlab/node';

const [runDir, out = 'decode-grid.png'] = process.argv.slice(2);
const g = 10;

let model, box;
if (runDir) {
  const run = await openRun(runDir);
  if (run.model.latentDim !== 2) throw new Error(`${runDir}: expected a 2-D latent, got ${run.model.latentDim}`);
  model = run.model;
  box = latentBox(run.testLatents.z);
} else {
  model = new models.AutoEncoder({ latent: 2 });
  box = /** @type {[number, number, number, number]} */ ([-3, -3, 3, 3]);
}
model.eval();

const points = viz.boxGridPoints(box, g); // row-major, row 0 at the top
const images = model.decode(points, g * g); // g*g x 784 in [-1, 1]

const size = 28 * 3 * g;
const png = await renderPng(size, size, (ctx) => {
  viz.drawImageGrid(ctx, images, g, g, 28, 28, { x: 0, y: 0, width: size, height: size }, { gap: 0 });
});
await writeFileAtomic(out, png);
console.log(`decoded ${g * g} points of [${box.map((v) => v.toFixed(2)).join(', ')}] -> ${out}`);
