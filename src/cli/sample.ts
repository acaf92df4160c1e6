/** `latentlab sample RUN`: the latent plane with a box, beside images decoded on a grid inside it. */
import type { Command } from 'commander';
import { numList, oneOf } from './options.js';
import { checkBox, intInRange, openRunForPictures, parseFlag, samplePicture, writeOut } from './pictures.js';

interface SampleOpts { box?: string; grid?: string; projection?: string; out?: string }

export function register(program: Command): void {
  program.command('sample')
    .description('decode an N x N grid of evenly spaced latent points inside a box (PCA plane for more than 2 dimensions)')
    .argument('<run>', 'run folder')
    .option('--box <x0,y0,x1,y1>', 'the box on the latent (or PCA) plane (default: spans the latents)')
    .option('--grid <n>', 'images per side, 1-40 (default 10)')
    .option('--projection <p>', 'plane for latents of more than 2 dimensions: pca (UMAP has no inverse)')
    .option('--out <file>', 'output PNG (default RUN/sample.png)')
    .action(async (dir: string, o: SampleOpts) => {
      if (o.projection !== undefined) parseFlag(oneOf('--projection', ['pca'] as const), o.projection);
      const box = o.box === undefined ? undefined : checkBox(parseFlag(numList('--box', 4), o.box));
      const gridN = o.grid === undefined ? 10 : parseFlag(intInRange('--grid', 1, 40), o.grid);
      const opened = await openRunForPictures(dir);
      try {
        const pic = await samplePicture(opened.run, { box, gridN });
        await writeOut(o.out ?? opened.run.folder.picture('sample.png'), pic.bytes);
      } finally {
        opened.close();
      }
    });
}
