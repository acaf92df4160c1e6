/** `latentlab gif RUN`: training.gif again, from the run's snapshots. */
import type { Command } from 'commander';
import { num } from './options.js';
import { gifPicture, openRunForPictures, parseFlag, writeOut } from './pictures.js';

interface GifOpts { fps?: string; out?: string }

export function register(program: Command): void {
  program.command('gif')
    .description('animate the snapshots: latents on fixed axes beside the decoded grid, step and loss written in')
    .argument('<run>', 'run folder (trained with --snapshot-every N)')
    .option('--fps <f>', 'frames per second, more than 0 and at most 50 (default 4)')
    .option('--out <file>', 'output GIF (default RUN/training.gif)')
    .action(async (dir: string, o: GifOpts) => {
      const fps = o.fps === undefined ? 4 : parseFlag(num('--fps'), o.fps);
      if (!(fps > 0 && fps <= 50)) throw new Error(`--fps: expected a number more than 0 and at most 50, got '${o.fps}'`);
      const opened = await openRunForPictures(dir);
      try {
        const pic = await gifPicture(opened.run, { fps });
        await writeOut(o.out ?? opened.run.folder.picture('training.gif'), pic.bytes);
      } finally {
        opened.close();
      }
    });
}
