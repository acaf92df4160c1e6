/** `latentlab plot latent RUN` and `latentlab plot loss RUN [RUN...]`. */
import type { Command } from 'commander';
import type { ProjectionMethod } from '../lab/analysis/projection.js';
import { RunFolder } from '../lab/run/folder.js';
import type { Run } from '../lab/run/run.js';
import { isVae } from '../lab/models/family.js';
import { UsageError } from '../lab/run/errors.js';
import { loadDataset } from '../lab/data/datasets.js';
import { IMAGE_PIXELS, toModelImages } from '../lab/data/image.js';
import type { Ctx2D } from '../viz/ctx.js';
import type { Transform } from '../viz/axes.js';
import { TAB10 } from '../viz/palette.js';
import { int, oneOf } from './options.js';
import { intInRange, latentPicture, lossPicture, openRunForPictures, parseFlag, readLossSource, writeOut } from './pictures.js';

interface LatentOpts { projection?: string; out?: string; seed?: string; ellipses?: string | boolean }

/** The first n test images' posterior means and 1-sigma radii of a 2-D VAE, as ellipses drawn over the scatter. */
async function ellipses(run: Run, n: number): Promise<(ctx: Ctx2D, t: Transform) => void> {
  const m = run.model;
  if (!isVae(m)) throw new UsageError(`--ellipses: ${run.dir} is a plain autoencoder (its codes are points, not distributions): use a VAE run`);
  if (m.latentDim !== 2) throw new UsageError(`--ellipses: needs a 2-D latent (the ellipses are drawn on the latent plane itself), got ${m.latentDim} dimensions`);
  const data = await loadDataset(run.config.dataset ?? 'mnist', { dataDir: run.config.dataDir });
  const k = Math.min(n, data.test.n);
  const x = toModelImages(data.test.images, new Float32Array(k * IMAGE_PIXELS), 0, k);
  const { mu, logvar } = m.encodeStats(x, k);
  return (ctx, t) => {
    ctx.save();
    ctx.lineWidth = 1;
    ctx.globalAlpha = 0.6;
    for (let i = 0; i < k; i++) {
      const cx = t.toPx(mu[2 * i]), cy = t.toPy(mu[2 * i + 1]);
      const rx = Math.abs(t.toPx(mu[2 * i] + Math.exp(0.5 * logvar[2 * i])) - cx);
      const ry = Math.abs(t.toPy(mu[2 * i + 1] + Math.exp(0.5 * logvar[2 * i + 1])) - cy);
      ctx.strokeStyle = TAB10[data.test.labels[i] % TAB10.length];
      // an axis-aligned ellipse as a polygon (the context has arc, lineTo)
      ctx.beginPath();
      for (let a = 0; a <= 48; a++) {
        const th = (a / 48) * 2 * Math.PI, px = cx + Math.max(rx, 0.5) * Math.cos(th), py = cy + Math.max(ry, 0.5) * Math.sin(th);
        if (a === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
      ctx.stroke();
    }
    ctx.restore();
  };
}
interface LossOpts { log?: boolean; out?: string }

export function register(program: Command): void {
  const plot = program.command('plot').description('plot a run: the latent space, the loss curves');
  plot.command('latent')
    .description('scatter of the test latents coloured by digit (PCA or UMAP for more than 2 dimensions)')
    .argument('<run>', 'run folder')
    .option('--projection <p>', 'pca or umap, for latents of more than 2 dimensions (default pca)')
    .option('--seed <n>', 'UMAP seed (default 0)')
    .option('--ellipses [n]', "a 2-D VAE: each of the first n test images' 1-sigma posterior ellipse (default 200)")
    .option('--out <file>', 'output PNG (default RUN/latent.png)')
    .action(async (dir: string, o: LatentOpts) => {
      const nEll = o.ellipses === undefined ? 0 : o.ellipses === true ? 200 : parseFlag(intInRange('--ellipses', 1, 10000), String(o.ellipses));
      const method = parseFlag(oneOf('--projection', ['pca', 'umap'] as const), o.projection ?? 'pca') as ProjectionMethod;
      const seed = o.seed === undefined ? 0 : parseFlag(int('--seed'), o.seed);
      const opened = await openRunForPictures(dir);
      try {
        const over = nEll ? await ellipses(opened.run, nEll) : undefined;
        const pic = await latentPicture(opened.run, method, seed, over, nEll ? `; ellipses: 1-sigma posteriors of the first ${nEll} test images` : '');
        await writeOut(o.out ?? opened.run.folder.picture('latent.png'), pic.bytes);
      } finally {
        opened.close();
      }
    });
  plot.command('loss')
    .description('training and test loss against step, one colour per run')
    .argument('<runs...>', 'run folders')
    .option('--log', 'log-scale loss axis')
    .option('--out <file>', 'output PNG (default loss.png in the first run folder)')
    .action(async (dirs: string[], o: LossOpts) => {
      const folders = dirs.map((d) => RunFolder.open(d));
      const pic = await lossPicture(folders.map(readLossSource), { log: !!o.log });
      await writeOut(o.out ?? folders[0].picture('loss.png'), pic.bytes);
    });
}
