/** `latentlab encode RUN IMAGE... [--plot] [--out DIR]`: your own pictures of digits in a run's latent space. */
import type { Command } from 'commander';
import { createBackend } from '../engine/kernels/select.js';
import { openRun } from '../lab/run/run.js';
import { encodeImages, formatLatent, writeEncodeOutputs } from '../lab/analysis/encode.js';
import '../node-backends.js';

interface EncodeOpts { plot?: boolean; out?: string; json?: boolean }

export function register(program: Command): void {
  program.command('encode')
    .description('encode PNG/JPEG pictures of digits (any size; preprocessed MNIST-style): print their latent points, write the 28x28 inputs and reconstructions')
    .argument('<run>', 'run folder')
    .argument('<images...>', 'PNG or JPEG files')
    .option('--plot', 'also write encode-latent.png: the latent scatter with the pictures marked')
    .option('--out <dir>', 'output folder (default RUN/encode)')
    .option('--json', 'print the latent points as JSON lines instead of text')
    .action(async (dir: string, files: string[], o: EncodeOpts) => {
      const backend = await createBackend();
      try {
        const run = await openRun(dir, { backend });
        const encoded = await encodeImages(run, files);
        for (const e of encoded)
          process.stdout.write(o.json ? `${JSON.stringify({ file: e.file, z: [...e.z] })}\n` : `${formatLatent(e)}\n`);
        const out = await writeEncodeOutputs(run, encoded, o.out ?? run.folder.picture('encode'), { plot: !!o.plot });
        for (const f of [...out.inputs, ...out.recons, ...(out.plot ? [out.plot] : [])])
          process.stdout.write(o.json ? '' : `wrote ${f}\n`);
      } finally {
        backend.dispose?.();
      }
    });
}
