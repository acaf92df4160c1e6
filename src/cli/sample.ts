/** `latentlab sample RUN`: the latent plane with a box, beside images decoded on a grid inside it. */
import type { Command } from 'commander';
import { numList, oneOf } from './options.js';
import type { Run } from '../lab/run/run.js';
import { isVae } from '../lab/models/family.js';
import { UsageError } from '../lab/run/errors.js';
import { normalQuantile, priorGridPoints } from '../lab/analysis/vae_eval.js';
import { sheetFigure, sheetFigureSize } from '../viz/figures.js';
import { renderPng } from '../viz/node.js';
import { IMAGE_H, IMAGE_W } from '../lab/data/image.js';
import { checkBox, intInRange, openRunForPictures, parseFlag, samplePicture, writeOut } from './pictures.js';

interface SampleOpts { box?: string; grid?: string; projection?: string; out?: string; prior?: boolean }

/** `sample --prior`: a VAE's decoder over a grid at the standard normal's quantiles (5% to 95%) of the first two latent dimensions. */
export async function priorPicture(run: Run, gridN: number): Promise<{ bytes: Buffer; points: Float32Array; images: Float32Array }> {
  const m = run.model;
  if (!isVae(m)) throw new UsageError(`--prior: ${run.dir} is a plain autoencoder (its latent has no prior): use a VAE run (--model vae), or sample without --prior`);
  const D = m.latentDim;
  if (D < 2) throw new UsageError(`--prior: needs a latent of 2 or more dimensions, got ${D}`);
  const points = priorGridPoints(gridN, D);
  const images = m.decode(points, gridN * gridN);
  const sheet = {
    images, rows: gridN, cols: gridN, title: `Decoded from the prior N(0, I): ${run.name}`,
    caption: `z1 right, z2 up: normal quantiles 5-95% (${normalQuantile(0.05).toFixed(2)} .. ${normalQuantile(0.95).toFixed(2)})${D > 2 ? `; z3.. at 0` : ''}`,
  };
  const size = sheetFigureSize(gridN, gridN, IMAGE_H, IMAGE_W, sheet);
  return { bytes: await renderPng(size.width, size.height, (ctx) => sheetFigure(ctx, sheet)), points, images };
}

export function register(program: Command): void {
  program.command('sample')
    .description('decode an N x N grid of evenly spaced latent points inside a box (PCA plane for more than 2 dimensions)')
    .argument('<run>', 'run folder')
    .option('--box <x0,y0,x1,y1>', 'the box on the latent (or PCA) plane (default: spans the latents)')
    .option('--grid <n>', 'images per side, 1-40 (default 10)')
    .option('--projection <p>', 'plane for latents of more than 2 dimensions: pca (UMAP has no inverse)')
    .option('--prior', "a VAE: decode a grid at the prior's normal quantiles (the Keras tutorial's manifold) instead of a box of the latents")
    .option('--out <file>', 'output PNG (default RUN/sample.png, RUN/prior.png with --prior)')
    .action(async (dir: string, o: SampleOpts) => {
      if (o.projection !== undefined) parseFlag(oneOf('--projection', ['pca'] as const), o.projection);
      const box = o.box === undefined ? undefined : checkBox(parseFlag(numList('--box', 4), o.box));
      const gridN = o.grid === undefined ? 10 : parseFlag(intInRange('--grid', 1, 40), o.grid);
      if (o.prior && o.box !== undefined) throw new UsageError('--box: not with --prior (the prior grid is at the normal quantiles)');
      const opened = await openRunForPictures(dir);
      try {
        if (o.prior) {
          const pic = await priorPicture(opened.run, gridN);
          await writeOut(o.out ?? opened.run.folder.picture('prior.png'), pic.bytes);
          return;
        }
        const pic = await samplePicture(opened.run, { box, gridN });
        await writeOut(o.out ?? opened.run.folder.picture('sample.png'), pic.bytes);
      } finally {
        opened.close();
      }
    });
}
