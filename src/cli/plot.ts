/** `latentlab plot latent RUN` and `latentlab plot loss RUN [RUN...]`. */
import type { Command } from 'commander';
import type { ProjectionMethod } from '../lab/analysis/projection.js';
import { RunFolder } from '../lab/run/folder.js';
import { int, oneOf } from './options.js';
import { latentPicture, lossPicture, openRunForPictures, parseFlag, readLossSource, writeOut } from './pictures.js';

interface LatentOpts { projection?: string; out?: string; seed?: string }
interface LossOpts { log?: boolean; out?: string }

export function register(program: Command): void {
  const plot = program.command('plot').description('plot a run: the latent space, the loss curves');
  plot.command('latent')
    .description('scatter of the test latents coloured by digit (PCA or UMAP for more than 2 dimensions)')
    .argument('<run>', 'run folder')
    .option('--projection <p>', 'pca or umap, for latents of more than 2 dimensions (default pca)')
    .option('--seed <n>', 'UMAP seed (default 0)')
    .option('--out <file>', 'output PNG (default RUN/latent.png)')
    .action(async (dir: string, o: LatentOpts) => {
      const method = parseFlag(oneOf('--projection', ['pca', 'umap'] as const), o.projection ?? 'pca') as ProjectionMethod;
      const seed = o.seed === undefined ? 0 : parseFlag(int('--seed'), o.seed);
      const opened = await openRunForPictures(dir);
      try {
        const pic = await latentPicture(opened.run, method, seed);
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
